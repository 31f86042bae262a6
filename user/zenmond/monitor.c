// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Monitors: setting them up race-free, taking them down, and turning a
 * process's death into one DOWN per monitor.
 *
 * Registration order is what makes it race-free (DESIGN.md, invariants):
 *   1. read /proc/PID/stat: the process's identity (pid, start time);
 *   2. add the monitor to the registry; for a target nobody watched yet,
 *   3. arm the kernel watch, and only then
 *   4. check liveness again. A process still running with a thread not yet
 *      in do_exit() will pass the exit tracepoint after step 3, so the
 *      kernel reports it. A process gone or already exiting may have passed
 *      the tracepoint before step 3: it is resolved here, from the kernel
 *      map (the BPF program writes every exit it sees into the watched
 *      entry), from the zombie's exit status, or as noproc; one caught in
 *      the middle of do_exit() is waited for with a pidfd, which becomes
 *      readable only once the whole thread group is gone.
 * However many paths report a death, registry_target_fire() fires a target
 * once: later reports find nothing to fire.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "procfs.h"
#include "reason.h"

#define PID_MAX_LIMIT 4194304U   /* the kernel's upper bound for pid_max */

/*
 * Plain-pid monitors on a process already watched skip /proc (70% of the
 * agent's time when every request read it). The hint remembers which
 * identity a pid had when last resolved, and the exit generation of its slot
 * read just before (kwatch_exit_gen()): while the generation has not moved,
 * no process of that slot has died, so the pid still belongs to the same
 * process. Checking costs a memory load, no system call.
 */
#define PID_HINTS 65536U

struct pid_hint {
	uint32_t pid;
	uint32_t exit_gen;      /* the slot's exit generation, read before /proc */
	uint64_t start_ticks;
};

/* A target caught in the middle of its exit: wait for its pidfd. */
struct pending_exit {
	struct loop_source src;
	struct agent *a;
	struct reg_key key;
	struct pending_exit *next;
};

static struct reg_key proc_key(uint32_t tgid, uint64_t start_ticks)
{
	return (struct reg_key){ .kind = ZM_TARGET_PROCESS, .a = tgid, .b = start_ticks };
}

uint64_t agent_now_ns(int clock_id)
{
	struct timespec ts;

	clock_gettime(clock_id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The kernel stamps exits with CLOCK_BOOTTIME; users want wall-clock time. */
uint64_t monitor_boot_to_realtime(uint64_t boot_ns)
{
	uint64_t now_boot = agent_now_ns(CLOCK_BOOTTIME);
	uint64_t now_real = agent_now_ns(CLOCK_REALTIME);

	return boot_ns <= now_boot ? now_real - (now_boot - boot_ns) : now_real;
}

/*
 * Fire a process target: its monitors become queued DOWNs, which the
 * dispatcher sends at each subscriber's pace. Returns false when memory ran
 * out; nothing changed then, and the caller must keep the kernel entry so
 * that the periodic scan retries.
 */
static ssize_t monitor_fire_count(struct agent *a, const struct reg_key *key,
				  const struct zm_down *d)
{
	ssize_t n = registry_target_fire(a->reg, key, d, agent_now_ns(CLOCK_MONOTONIC));

	if (n < 0) {
		log_error("cannot queue the DOWNs of target %llu: out of memory; retrying",
			  (unsigned long long)key->a);
		a->rescan_needed = true;
		return n;
	}
	metrics_downs_enqueued(&a->metrics, d->reason, (uint64_t)n);
	/* A target taken over from the previous agent: its death is also the
	 * DOWN of monitors other clients bring back later. */
	if (a->adopt && n > 0)
		adopt_note_death(a, key, d);
	if (n)
		log_debug("target %llu (kind %u) is down (%s %d): %zd DOWNs", (unsigned long long)key->a,
			  key->kind, zm_reason_name(d->reason), d->value, n);
	return n;
}

bool monitor_fire(struct agent *a, const struct reg_key *key, const struct zm_down *d)
{
	return monitor_fire_count(a, key, d) >= 0;
}

static bool fire_proc(struct agent *a, const struct reg_key *key, struct zm_down *d)
{
	d->kind = ZM_TARGET_PROCESS;
	d->pid = (uint32_t)key->a;
	d->start_ticks = key->b;
	return monitor_fire(a, key, d);
}

static bool fire_exit(struct agent *a, const struct reg_key *key, uint32_t status, uint64_t boot_ns)
{
	struct zm_down d = { .time_ns = monitor_boot_to_realtime(boot_ns) };

	reason_from_wait_status(status, &d);
	return fire_proc(a, key, &d);
}

static bool fire_noproc(struct agent *a, const struct reg_key *key)
{
	struct zm_down d = { .time_ns = agent_now_ns(CLOCK_REALTIME), .reason = ZM_REASON_NOPROC };

	return fire_proc(a, key, &d);
}

/*
 * A monitor whose target was gone before it was set: noproc. It goes
 * through the registry like any other, so that it is paced with the rest and
 * a demonitor still takes it back. If the registry holds a target of that
 * identity already, its death is on its way from the kernel with the real
 * reason: join it instead.
 */
void monitor_queue_gone(struct agent *a, struct client *c, uint64_t ref, const struct reg_key *key,
			const struct zm_down *d, uint16_t request)
{
	bool new_target;
	int r;

	r = registry_monitor_add(a->reg, client_sub(c), ref, key, &new_target);
	if (r < 0) {
		client_error(c, ref, request, -r, "cannot add the monitor: %s", strerror(-r));
		return;
	}
	if (new_target && !monitor_fire(a, key, d)) {
		registry_monitor_remove(a->reg, client_sub(c), ref);
		client_error(c, ref, request, ENOMEM, "cannot queue the DOWN: out of memory");
		return;
	}
	monitor_confirm(a, c, ref, key, true);
}

void monitor_confirm(struct agent *a, struct client *c, uint64_t ref, const struct reg_key *key,
		     bool gone)
{
	struct zm_monitored m = {
		.ref = ref,
		.kind = (uint16_t)key->kind,
		.flags = gone ? ZM_MONITORED_GONE : 0,
	};
	uint8_t body[ZM_MONITORED_LEN];

	if (a->confirm_ref != ref || ref == 0)
		return;
	a->confirm_ref = 0;
	if (key->kind == ZM_TARGET_TCP) {
		m.start_ticks = key->a;
	} else {
		m.pid = (uint32_t)key->a;
		m.start_ticks = key->b;
	}
	client_queue(c, ZM_REC_MONITORED, body, zm_enc_monitored(body, &m));
}

void monitor_forget_kernel(struct agent *a, const struct reg_key *key)
{
	/* Stopping: the next agent adopts it. Adopted: kept for the clients
	 * that bring their monitors back. A death with DOWNs still queued:
	 * kept until they are sent (monitor_released()). */
	if (a->stopping || adopt_owns(a, key) || registry_down_pending(a->reg, key))
		return;
	if (key->kind == ZM_TARGET_TCP)
		kwatch_del_tcp(a->kw, key->a);
	else
		kwatch_del_proc(a->kw, (uint32_t)key->a, key->b);
}

/*
 * The FIRED watch outlives the fire: it is what a restarted agent finds for
 * a monitor brought back whose DOWN this agent queued but never sent (it
 * stopped or was killed first), so it goes only once the last DOWN of the
 * death left the registry (monitor_released()). A death nobody monitors now
 * is an adopted watch waiting for its monitors, a death found again by a
 * map scan while its DOWNs wait, or a watch left behind: the last goes.
 */
bool monitor_kernel_death(struct agent *a, const struct reg_key *key, const struct zm_down *d)
{
	if (registry_target_exists(a->reg, key)) {
		/* On failure the FIRED entry stays in the map for the rescan. */
		return monitor_fire_count(a, key, d) > 0;
	}
	adopt_note_death(a, key, d);
	monitor_forget_kernel(a, key);
	return false;
}

static void queue_noproc(struct agent *a, struct client *c, uint64_t ref, uint32_t pid,
			 uint64_t start_ticks, uint16_t request)
{
	struct reg_key key = proc_key(pid, start_ticks);
	struct zm_down d = {
		.time_ns = agent_now_ns(CLOCK_REALTIME),
		.kind = ZM_TARGET_PROCESS,
		.reason = ZM_REASON_NOPROC,
		.pid = pid,
		.start_ticks = start_ticks,
	};

	monitor_queue_gone(a, c, ref, &key, &d, request);
}

/*
 * The target is gone (or its whole thread group has exited): fire it with
 * the best reason there is, and drop its kernel watch.
 */
static void resolve_gone(struct agent *a, const struct reg_key *key)
{
	uint32_t tgid = (uint32_t)key->a;
	struct zm_proc_watch w;
	struct proc_stat st;

	bool fired;

	if (kwatch_lookup_proc(a->kw, tgid, key->b, &w) == 0 && w.state == ZM_WATCH_FIRED)
		fired = fire_exit(a, key, w.exit_code, w.exit_ns);
	else if (a->zombie_status_readable &&
		 procfs_read_stat(a->opts.proc_root, (pid_t)tgid, &st) == 0 &&
		 st.start_ticks == key->b && st.state == 'Z' && st.exit_code >= 0)
		/* A zombie: it died before the watch existed, and its status is
		 * still readable. Better than noproc. (Without CAP_SYS_PTRACE
		 * the kernel shows 0 for it: noproc, not a made-up exit 0.) */
		fired = fire_exit(a, key, (uint32_t)st.exit_code, agent_now_ns(CLOCK_BOOTTIME));
	else
		fired = fire_noproc(a, key);
	if (fired)
		monitor_forget_kernel(a, key);
}

static void pending_free(struct agent *a, struct pending_exit *p)
{
	for (struct pending_exit **pp = &a->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	loop_del(a->loop, &p->src);
	close(p->src.fd);
	free(p);
}

static void pending_on_events(struct loop_source *src, uint32_t events)
{
	struct pending_exit *p = (struct pending_exit *)src;
	struct agent *a = p->a;

	/* The thread group is gone. If its exit passed the tracepoint with the
	 * watch in place, the record is in the ring buffer (or the map): take
	 * it first, for the real reason. */
	agent_drain_ring(a);
	if (registry_target_exists(a->reg, &p->key))
		resolve_gone(a, &p->key);
	pending_free(a, p);
}

static void wait_for_exit(struct agent *a, const struct reg_key *key)
{
	uint32_t tgid = (uint32_t)key->a;
	struct pending_exit *p;
	struct proc_stat st;
	int fd, r;

	fd = (int)syscall(SYS_pidfd_open, (pid_t)tgid, 0);
	if (fd < 0) {
		resolve_gone(a, key);
		return;
	}
	/* The pid could have been reaped and reused since we read its stat. */
	r = procfs_read_stat(a->opts.proc_root, (pid_t)tgid, &st);
	if (r < 0 || st.start_ticks != key->b || !(p = calloc(1, sizeof(*p)))) {
		close(fd);
		resolve_gone(a, key);
		return;
	}
	p->a = a;
	p->key = *key;
	p->src.fd = fd;
	p->src.fn = pending_on_events;
	if (loop_add(a->loop, &p->src, EPOLLIN) < 0) {
		close(fd);
		free(p);
		resolve_gone(a, key);
		return;
	}
	p->next = a->pending;
	a->pending = p;
	log_debug("process %u caught mid-exit: waiting on its pidfd", tgid);
}

void monitor_free_pending(struct agent *a)
{
	while (a->pending)
		pending_free(a, a->pending);
}

/* Steps 3 and 4 for a new target. 0, or -errno when no watch could be armed. */
static int arm_proc(struct agent *a, const struct reg_key *key)
{
	uint32_t tgid = (uint32_t)key->a;
	struct zm_proc_watch w;
	struct proc_stat st;
	int r;

	adopt_claim(a, key);
	r = kwatch_add_proc(a->kw, tgid, key->b);
	if (r < 0 && r != -EEXIST)
		return r;

	r = procfs_read_stat(a->opts.proc_root, (pid_t)tgid, &st);
	if (r < 0 || st.start_ticks != key->b) {
		resolve_gone(a, key);
		return 0;
	}
	if (st.state != 'Z' && st.state != 'X' && !(st.flags & PROCFS_PF_EXITING))
		return 0; /* the leader runs: its exit is still to come */
	if (procfs_group_exiting(a->opts.proc_root, (pid_t)tgid) == 0)
		return 0; /* another thread runs: the last exit is still to come */
	if (kwatch_lookup_proc(a->kw, tgid, key->b, &w) == 0 && w.state == ZM_WATCH_FIRED) {
		resolve_gone(a, key);
		return 0;
	}
	wait_for_exit(a, key);
	return 0;
}

static struct pid_hint *pid_hint(struct agent *a, uint32_t pid)
{
	if (!a->pid_hints && !(a->pid_hints = calloc(PID_HINTS, sizeof(*a->pid_hints))))
		return NULL; /* no hints: every monitor takes the /proc path */
	return &a->pid_hints[pid % PID_HINTS];
}

/* Remember that pid was the process started at start_ticks when /proc was
 * read, with the exit generation read before that. */
static void pid_hint_set(struct agent *a, uint32_t pid, uint64_t start_ticks, uint32_t exit_gen)
{
	struct pid_hint *h = pid_hint(a, pid);

	if (h)
		*h = (struct pid_hint){ .pid = pid, .exit_gen = exit_gen, .start_ticks = start_ticks };
}

/* The identity of pid without /proc: a watched process that cannot have
 * died since it was seen alive. */
static bool pid_hint_resolve(struct agent *a, uint32_t pid, struct reg_key *ret_key)
{
	struct pid_hint *h = pid_hint(a, pid);
	struct reg_key key;

	if (!h || h->pid != pid || h->exit_gen != kwatch_exit_gen(a->kw, pid))
		return false;
	key = proc_key(pid, h->start_ticks);
	if (!registry_target_exists(a->reg, &key))
		return false;
	*ret_key = key;
	return true;
}

/*
 * Whether pid is a thread-group leader, the cheap way: pidfd_open() refuses
 * (EINVAL) a pid that is a thread of another process, and costs no /proc
 * path walk or text. false when it cannot tell; the caller reads
 * /proc/PID/status then.
 */
static bool pid_is_leader(uint32_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/*
 * May restricted client c monitor key's process: could it signal it
 * (access.h)? Asked of the owner stored on the target first, which costs
 * nothing; when there is none, or it says no (the process may have changed
 * its uids since), of /proc/PID/status, whose answer goes to *ret_owner for
 * the caller to store (*ret_fresh). exit_gen, if not NULL, is the slot's
 * exit generation read before key was resolved from /proc: unchanged after
 * the status read, it proves the status was key's process's. 1 to go on;
 * 0 when c has its answer: ERROR EPERM, or DOWN noproc for a process gone
 * meanwhile (whose owner is then unknown, and which has nothing left to
 * reveal but its death).
 */
static int proc_check_owner(struct agent *a, struct client *c, uint64_t ref,
			    const struct reg_key *key, const uint32_t *exit_gen, uint16_t request,
			    struct reg_owner *ret_owner, bool *ret_fresh)
{
	uint32_t pid = (uint32_t)key->a;
	struct proc_uids uids;
	struct reg_owner o;
	struct proc_stat st;
	int r;

	if (registry_target_owner(a->reg, key, &o) == 0 && access_owns(client_uid(c), &o))
		return 1;
	r = procfs_read_uids(a->opts.proc_root, (pid_t)pid, &uids);
	/* The pid must still name key's process, or the uids are another's. */
	if (r == 0 && !(exit_gen && kwatch_exit_gen(a->kw, pid) == *exit_gen))
		r = procfs_read_stat(a->opts.proc_root, (pid_t)pid, &st) < 0 ||
		    st.start_ticks != key->b ? -ENOENT : 0;
	if (r == -ENOENT) {
		queue_noproc(a, c, ref, pid, key->b, request);
		return 0;
	}
	if (r < 0) {
		client_error(c, ref, request, -r, "cannot read %s/%u/status to tell who owns it: %s",
			     a->opts.proc_root, pid, strerror(-r));
		return 0;
	}
	o = (struct reg_owner){ .ruid = uids.ruid, .suid = uids.suid };
	*ret_owner = o;
	*ret_fresh = true;
	if (access_owns(client_uid(c), &o))
		return 1;
	client_error(c, ref, request, EPERM,
		     "process %u belongs to uid %u (saved uid %u): uid %u may monitor only processes "
		     "it could signal (pass a pidfd, or have allow-uids or allow-groups name it)",
		     pid, o.ruid, o.suid, client_uid(c));
	return 0;
}

/*
 * The monitor for MONITOR_PROC and MONITOR_PIDFD. by_fd: the client passed
 * a pidfd, which is its own proof of access (access.h).
 */
static void watch_proc(struct agent *a, struct client *c, uint64_t ref, uint32_t pid,
		       bool have_start, uint64_t start_ticks, bool by_fd, uint16_t request)
{
	bool check = !by_fd && !client_unrestricted(c), fresh = false;
	struct reg_sub *sub = client_sub(c);
	const uint32_t *gen = NULL;
	struct reg_owner owner;
	struct proc_stat st;
	struct reg_key key;
	uint32_t exit_gen;
	bool new_target;
	pid_t tgid;
	int r;

	/*
	 * A process named by pid and start time that we already watch needs no
	 * look at /proc: its identity is settled and its death is on its way
	 * to the target (the common case of many monitors on one process).
	 */
	key = proc_key(pid, start_ticks);
	if (have_start && registry_target_exists(a->reg, &key))
		goto add;
	if (!have_start && pid_hint_resolve(a, pid, &key))
		goto add;

	exit_gen = kwatch_exit_gen(a->kw, pid);
	r = procfs_read_stat(a->opts.proc_root, (pid_t)pid, &st);
	if (r == -ENOENT || (r == 0 && have_start && st.start_ticks != start_ticks)) {
		queue_noproc(a, c, ref, pid, have_start ? start_ticks : 0, request);
		return;
	}
	if (r < 0) {
		client_error(c, ref, request, -r, "cannot read %s/%u/stat: %s", a->opts.proc_root, pid,
			     strerror(-r));
		return;
	}
	key = proc_key(pid, st.start_ticks);
	if (!registry_target_exists(a->reg, &key) && !pid_is_leader(pid)) {
		/* /proc/TID/stat exists for threads too: make sure pid is a process. */
		r = procfs_read_tgid(a->opts.proc_root, (pid_t)pid, &tgid);
		if (r == -ENOENT) {
			queue_noproc(a, c, ref, pid, st.start_ticks, request);
			return;
		}
		if (r == 0 && (uint32_t)tgid != pid) {
			client_error(c, ref, request, ESRCH,
				     "%u is a thread of process %d, not a process (monitor %d instead)",
				     pid, tgid, tgid);
			return;
		}
	}
	/* The process held the pid when /proc was read (a zombie too: it
	 * joins its target's DOWN). */
	pid_hint_set(a, pid, st.start_ticks, exit_gen);
	gen = &exit_gen;
add:
	if (check && proc_check_owner(a, c, ref, &key, gen, request, &owner, &fresh) <= 0)
		return;
	r = registry_monitor_add(a->reg, sub, ref, &key, &new_target);
	if (r < 0) {
		client_error(c, ref, request, -r, "cannot add the monitor: %s", strerror(-r));
		return;
	}
	if (fresh)
		registry_target_set_owner(a->reg, &key, &owner);
	if (!new_target) {
		monitor_confirm(a, c, ref, &key, false);
		return;
	}
	r = arm_proc(a, &key);
	if (r >= 0)
		monitor_confirm(a, c, ref, &key, false);
	if (r < 0) {
		registry_monitor_remove(a->reg, sub, ref);
		if (r == -E2BIG)
			client_error(c, ref, request, ENOSPC,
				     "the kernel watch map is full (%u processes watched); demonitor some first",
				     ZM_MAX_PROC_WATCHES);
		else
			client_error(c, ref, request, -r, "cannot arm the kernel watch for process %u: %s",
				     pid, strerror(-r));
	}
}

bool monitor_may_learn(struct client *c, const struct reg_owner *owner, bool has_owner)
{
	return client_unrestricted(c) || (has_owner && access_owns(client_uid(c), owner));
}

/* The checks every MONITOR request shares. true when the request may go on. */
bool monitor_check_ref(struct agent *a, struct client *c, uint64_t ref, uint16_t request)
{
	if (ref == 0) {
		client_error(c, 0, request, EINVAL, "reference 0 is reserved: choose a nonzero reference");
		return false;
	}
	if (registry_monitor_find(a->reg, client_sub(c), ref, NULL)) {
		client_error(c, ref, request, EEXIST,
			     "reference %llu is already in use by an active monitor of this connection",
			     (unsigned long long)ref);
		return false;
	}
	return client_monitor_quota(c, ref, request);
}

void monitor_proc(struct agent *a, struct client *c, const struct zm_monitor_proc *m)
{
	struct reg_key key = proc_key(m->pid, m->start_ticks);
	struct reg_owner owner;
	bool has_owner;
	struct zm_down d;

	if (!monitor_check_ref(a, c, m->ref, ZM_REC_MONITOR_PROC))
		return;
	if (m->flags & ~(ZM_MON_START_TIME | ZM_MON_RESUME)) {
		client_error(c, m->ref, ZM_REC_MONITOR_PROC, EINVAL, "unknown flags 0x%x", m->flags);
		return;
	}
	if ((m->flags & ZM_MON_RESUME) && !(m->flags & ZM_MON_START_TIME)) {
		client_error(c, m->ref, ZM_REC_MONITOR_PROC, EINVAL,
			     "RESUME needs START_TIME: a monitor is brought back by pid and start time");
		return;
	}
	if (m->pid == 0 || m->pid > PID_MAX_LIMIT) {
		client_error(c, m->ref, ZM_REC_MONITOR_PROC, EINVAL,
			     "pid %d is out of range (1..%u)", (int32_t)m->pid, PID_MAX_LIMIT);
		return;
	}
	/*
	 * A monitor brought back from an agent that went away: if the target
	 * died meanwhile, the death recorded for it is its DOWN (adopt.c). A
	 * process alive, or one this agent knows nothing of, takes the usual
	 * path. A restricted client (access.h) learns the death only of a
	 * process it could have signalled, by the uids the kernel recorded as
	 * it died; of any other, the usual path says noproc, as for a process
	 * it never monitored.
	 */
	if ((m->flags & ZM_MON_RESUME) && adopt_death(a, &key, &d, &owner, &has_owner) &&
	    monitor_may_learn(c, &owner, has_owner)) {
		monitor_queue_gone(a, c, m->ref, &key, &d, ZM_REC_MONITOR_PROC);
		return;
	}
	a->confirm_ref = client_resumable(c) && !(m->flags & ZM_MON_START_TIME) ? m->ref : 0;
	watch_proc(a, c, m->ref, m->pid, m->flags & ZM_MON_START_TIME, m->start_ticks, false,
		   ZM_REC_MONITOR_PROC);
	a->confirm_ref = 0;
}

void monitor_pidfd(struct agent *a, struct client *c, const struct zm_monitor_pidfd *m, int pidfd)
{
	struct proc_stat st;
	pid_t pid, again;
	int r;

	if (pidfd < 0) {
		client_error(c, m->ref, ZM_REC_MONITOR_PIDFD, EBADF,
			     "no file descriptor came with this MONITOR_PIDFD record "
			     "(send the pidfd as SCM_RIGHTS with the frame that holds the record)");
		return;
	}
	if (!monitor_check_ref(a, c, m->ref, ZM_REC_MONITOR_PIDFD))
		goto out;
	a->confirm_ref = client_resumable(c) ? m->ref : 0;
	r = procfs_pidfd_pid(a->opts.proc_root, pidfd, &pid);
	if (r == -ESRCH) {
		queue_noproc(a, c, m->ref, 0, 0, ZM_REC_MONITOR_PIDFD); /* reaped: no pid left */
		goto out;
	}
	if (r < 0) {
		client_error(c, m->ref, ZM_REC_MONITOR_PIDFD, EBADF,
			     "the file descriptor passed is not a pidfd (open it with pidfd_open(2))");
		goto out;
	}
	r = procfs_read_stat(a->opts.proc_root, pid, &st);
	/* If the pidfd still has its pid after the read, the pid was not
	 * reaped, so not reused: the start time read is its process's. */
	if (r < 0 || procfs_pidfd_pid(a->opts.proc_root, pidfd, &again) < 0 || again != pid) {
		queue_noproc(a, c, m->ref, (uint32_t)pid, 0, ZM_REC_MONITOR_PIDFD);
		goto out;
	}
	watch_proc(a, c, m->ref, (uint32_t)pid, true, st.start_ticks, true, ZM_REC_MONITOR_PIDFD);
out:
	a->confirm_ref = 0;
	close(pidfd);
}

void monitor_demonitor(struct agent *a, struct client *c, const struct zm_demonitor *m)
{
	int r = registry_monitor_remove(a->reg, client_sub(c), m->ref);

	if (r == 1)
		a->downs_flushed++; /* its DOWN was queued: it will never be sent */
	if (r < 0)
		client_error(c, m->ref, ZM_REC_DEMONITOR, ENOENT,
			     "no active monitor has reference %llu (it was never set, was demonitored, "
			     "or its DOWN is already on its way)", (unsigned long long)m->ref);
}

bool monitor_on_kernel_event(void *ctx, const struct zm_event *ev)
{
	struct agent *a = ctx;
	struct reg_key key;
	struct zm_down d = { 0 };

	if (ev->kind != ZM_EV_PROC_EXIT) {
		log_warn("ignoring a kernel record of unknown kind %u", ev->kind);
		return false;
	}
	key = proc_key(ev->tgid, ev->start_ticks);
	d.time_ns = monitor_boot_to_realtime(ev->exit_ns);
	d.kind = ZM_TARGET_PROCESS;
	d.pid = ev->tgid;
	d.start_ticks = ev->start_ticks;
	reason_from_wait_status(ev->exit_code, &d);
	return monitor_kernel_death(a, &key, &d);
}

void monitor_unwatch(void *ctx, const struct reg_key *key)
{
	monitor_forget_kernel(ctx, key);
}

void monitor_released(void *ctx, const struct reg_key *key)
{
	monitor_forget_kernel(ctx, key);
}
