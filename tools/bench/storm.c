// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zm-bench storm: what an observer of process exits costs the host.
 *
 * One worker runs serial fork+exit storms (storm_load.c) for processes and
 * for threads, and the rate it reaches is compared under each observer:
 *
 *   none       nothing attached
 *   idle       a private zenmond, no monitor
 *   100k       the same zenmond holding monitors on 100,000 sleeping
 *              processes that do not die: every storm exit is a filter miss
 *   monitored  every storm process monitored before it exits, and every
 *              DOWN read back (processes only: monitors are per process,
 *              and a thread that is not its process's last one never yields
 *              a DOWN)
 *   exitsnoop  bcc's libbpf-tools exitsnoop, printing every exit to
 *              /dev/null
 *
 * A "monitored" storm cannot be a plain fork+exit loop: a child must be
 * monitored, and the agent must have said so, before it exits. So it forks
 * a batch of STORM_BATCH children that block on a pipe, monitors them all
 * (pipelined, one SYNC), releases them by closing the pipe, reaps them, and
 * reads whatever DOWNs have come; the last DOWNs are waited for inside the
 * timed interval. The same batched procedure without the monitoring is run
 * with nothing attached for that row's baseline, so the ratio compares like
 * with like. Each DOWN is checked exactly once: one per child, reason
 * "exited", status 0, the child's pid.
 *
 * Fairness:
 *   - The storms run in one worker process forked at the start, before the
 *     sleepers are spawned or a client holds 100,000 monitors: fork() copies
 *     the parent's page tables, so a storm from a bigger parent would be
 *     slower for reasons that have nothing to do with the observer.
 *   - The 100,000 sleepers live through the whole module, so every
 *     observer, "none" included, runs on the same host.
 *   - Within each run the three phases (none; zenmond idle, monitored, 100k;
 *     exitsnoop) start from a different one each run, to spread slow drifts
 *     of the machine over all of them; the rows show medians over the runs.
 *   - The same storm sizes for every observer, chosen at the start so that
 *     one storm takes about STORM_QUICK_S (STORM_FULL_S with --full).
 *   - kernel.bpf_stats_enabled stays on throughout (for the "BPF ns per
 *     exit" rows); it costs every BPF program run two clock reads, tens of
 *     ns against the tens of microseconds (or more) of a fork+exit, so it is
 *     left in the figures.
 *
 * Each throughput row's note gives the change against "none" twice: by the
 * wall clock (the row's figure) and per CPU second, n / (CPU time of the
 * storm's tasks + CPU time of the observer's process, the agent's or
 * exitsnoop's). The BPF programs run in the exiting tasks, so their time is
 * in the first term; the agent's reading, matching and sending in the
 * second. Other load on the machine moves the wall clock figure by more
 * than an observer costs; the CPU figure much less.
 *
 * "BPF ns per exit" is (run_time_ns after - before) / (run_cnt after -
 * before) of the observer's exit program over one storm: zenmon's
 * zm_process_exit (tp_btf/sched_process_exit) and exitsnoop's
 * sched_process_exit (tracepoint). Exits elsewhere on the host during the
 * storm are counted too; they are few against the storm's. Its share of
 * the CPU time of one storm exit (the note) is what a filter miss costs the
 * host, free of the run-to-run noise of the throughput rows, which on a
 * small VM is larger than the cost itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "storm_load.h"
#include "zenmon.h"

#define STORM_SLEEPERS 100000L        /* watched targets that never die */
#define STORM_BATCH 64                /* children per batch, "monitored" storm */
#define STORM_QUICK_S 0.5             /* one storm's length, quick pass */
#define STORM_FULL_S 1.0              /* and with --full */
#define STORM_MIN_N 200L
#define STORM_MAX_N 1000000L
#define STORM_CALIB_PROCS 200L        /* storms that size the real ones */
#define STORM_CALIB_THREADS 2000L
#define STORM_WORKER_WAIT_MS 120000   /* one storm, at worst */
#define STORM_ZM_WAIT_MS 30000        /* a SYNC, the last DOWNs */
#define STORM_SNOOP_WAIT_MS 60000     /* exitsnoop loading (1-2 s when idle) / stopping */
#define STORM_MAX_RUNS 99

/* The program names bench_prog_stats() matches (the kernel keeps 15
 * characters: exitsnoop's shows as "sched_process_e"). */
#define STORM_ZM_PROG "zm_process_exit"
#define STORM_SNOOP_PROG "sched_process_exit"
#define STORM_SNOOP_BIN "/usr/sbin/exitsnoop"

/* ---- what is measured --------------------------------------------------- */

/* One figure per run each: rates in /s, BPF costs in ns per exit. */
enum storm_slot {
	S_PROC_NONE, S_PROC_IDLE, S_PROC_100K, S_PROC_SNOOP,
	S_THR_NONE, S_THR_IDLE, S_THR_100K, S_THR_SNOOP,
	S_BATCH_NONE, S_BATCH_MON,
	S_NS_PROC_IDLE, S_NS_PROC_100K, S_NS_PROC_SNOOP, S_NS_BATCH_MON,
	S_NS_THR_100K, S_NS_THR_SNOOP,
	S_N
};

/* For the progress lines (--verbose). */
static const char *const storm_slot_name[S_N] = {
	[S_PROC_NONE] = "processes, none", [S_PROC_IDLE] = "processes, zenmond idle",
	[S_PROC_100K] = "processes, 100k watched", [S_PROC_SNOOP] = "processes, exitsnoop",
	[S_THR_NONE] = "threads, none", [S_THR_IDLE] = "threads, zenmond idle",
	[S_THR_100K] = "threads, 100k watched", [S_THR_SNOOP] = "threads, exitsnoop",
	[S_BATCH_NONE] = "batched, none", [S_BATCH_MON] = "batched, each monitored",
};

struct storm_ctx {
	const struct bench_cfg *cfg;
	long n_proc, n_thr, n_batch;  /* storm sizes, the same for every observer */
	pid_t worker;
	int worker_fd;                /* SOCK_SEQPACKET to the worker */
	pid_t *sleepers;
	long n_sleepers;
	pid_t sleepers_pgid;
	bool have_snoop;              /* false once exitsnoop could not start */
	double v[S_N][STORM_MAX_RUNS];
	double cpu[S_N][STORM_MAX_RUNS];  /* rates per CPU second, storm + observer */
	int runs;
	long failures;                /* failed checks: lost, duplicate or wrong DOWNs */
};

/* ---- the worker ---------------------------------------------------------- */

enum storm_job { JOB_PLAIN, JOB_BATCHED, JOB_QUIT };

struct storm_req {
	int job;                      /* enum storm_job */
	int kind;                     /* enum storm_kind, JOB_PLAIN */
	long n;
	char sock[96];                /* JOB_BATCHED: the agent to monitor through, "" for none */
};

struct storm_rep {
	double rate;                  /* per second, or 0 with err set */
	uint64_t cpu_ns;              /* CPU time the storm took: the worker and its children */
	int err;                      /* -errno */
	long failures;                /* JOB_BATCHED: DOWNs missing, duplicate or wrong */
	char what[160];               /* on failure: what went wrong */
};

/* What a batched storm's subscriber has seen, by reference (1..n). */
struct storm_downs {
	const pid_t *pid;             /* [ref]: the child monitored under ref */
	uint8_t *seen;                /* [ref]: DOWNs received */
	long n, got, dups, bad, errors;
};

static void storm_down_batch(struct zm_client *c, const struct zm_down_info *downs, size_t n,
			     void *ud)
{
	struct storm_downs *d = ud;

	for (size_t i = 0; i < n; i++) {
		uint64_t ref = downs[i].ref;

		if (ref == 0 || ref > (uint64_t)d->n) {
			d->bad++;
			continue;
		}
		if (d->seen[ref]++) {
			d->dups++;
			continue;
		}
		if (downs[i].reason != ZM_DOWN_EXITED || downs[i].status != 0 ||
		    downs[i].pid != d->pid[ref])
			d->bad++;
	}
	d->got += (long)n;
}

static void storm_down_one(struct zm_client *c, const struct zm_down_info *down, void *ud)
{
	storm_down_batch(c, down, 1, ud);
}

static void storm_on_error(struct zm_client *c, const struct zm_error_info *err, void *ud)
{
	struct storm_downs *d = ud;

	d->errors++;
}

static void storm_fail(struct storm_rep *rep, int err, const char *what)
{
	rep->err = err;
	snprintf(rep->what, sizeof(rep->what), "%s: %s", what, strerror(-err));
}

/*
 * Fork m children that block on a pipe; monitor each through c when c is
 * set (pipelined, then one SYNC, so the agent holds every watch before any
 * child can exit); release them; reap them; take the DOWNs already there.
 * pids[*next..] receives the children in monitor order, which is the order
 * of their references. 0 or -errno with rep->what set.
 */
static int storm_one_batch(struct zm_client *c, struct storm_downs *d, pid_t *pids, long *next,
			   long m, struct storm_rep *rep)
{
	int p[2], r = 0;
	long forked = 0;

	if (pipe2(p, O_CLOEXEC) < 0) {
		storm_fail(rep, -errno, "pipe");
		return rep->err;
	}
	for (; forked < m; forked++) {
		pid_t pid = fork();
		char b;

		if (pid < 0) {
			storm_fail(rep, -errno, "fork (out of pids or memory?)");
			r = rep->err;
			break;
		}
		if (pid == 0) {
			close(p[1]);
			while (read(p[0], &b, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		pids[*next + forked] = pid;
	}
	for (long i = 0; c && !r && i < forked; i++) {
		uint64_t ref;

		r = zm_monitor_pid(c, pids[*next + i], &ref);
		if (r == 0 && ref != (uint64_t)(*next + i + 1))
			r = -EPROTO; /* references count from 1, one per MONITOR */
		if (r < 0)
			storm_fail(rep, r, "zm_monitor_pid of a storm child");
	}
	if (c && !r) {
		r = zm_sync(c, STORM_ZM_WAIT_MS, storm_down_one, d);
		if (r < 0)
			storm_fail(rep, r, "zm_sync after the batch's MONITORs");
	}
	/* Release (EOF on every child's read) and reap, whatever happened. */
	close(p[1]);
	close(p[0]);
	for (long i = 0; i < forked; i++)
		while (waitpid(pids[*next + i], NULL, 0) < 0 && errno == EINTR)
			;
	*next += forked;
	if (c && !r) {
		r = zm_dispatch_batch(c, storm_down_batch, d);
		if (r < 0)
			storm_fail(rep, r, "zm_dispatch_batch");
		else
			r = 0;
	}
	return r;
}

/* The batched storm of n processes, monitored through the agent at sock
 * unless sock is "". */
static void storm_batched(long n, const char *sock, struct storm_rep *rep)
{
	struct zm_connect_options o = { .socket_path = sock, .name = "zm-bench-storm" };
	struct storm_downs d = { .n = n };
	struct zm_client *c = NULL;
	pid_t *pids = calloc((size_t)n + 1, sizeof(*pids));
	long next = 0;
	uint64_t t0, t1, deadline;
	int r;

	d.seen = calloc((size_t)n + 1, 1);
	if (!pids || !d.seen) {
		storm_fail(rep, -ENOMEM, "allocating the batched storm");
		goto out;
	}
	/* pids[ref] is the child monitored under ref: references count from 1. */
	d.pid = pids;
	if (sock[0]) {
		r = zm_connect_opts(&o, &c);
		if (r < 0) {
			storm_fail(rep, r, "connecting to the private zenmond");
			goto out;
		}
		zm_set_error_handler(c, storm_on_error, &d);
	}
	t0 = bench_now_ns();
	while (next < n) {
		long m = n - next < STORM_BATCH ? n - next : STORM_BATCH;

		/* pids + 1: the child of reference ref lands at pids[ref]. */
		if (storm_one_batch(c, &d, pids + 1, &next, m, rep) < 0)
			goto out;
	}
	deadline = bench_now_ns() + STORM_ZM_WAIT_MS * 1000000ULL;
	while (c && d.got + d.errors < n && bench_now_ns() < deadline) {
		r = zm_wait_batch(c, 100, storm_down_batch, &d);
		if (r < 0 && r != -EINTR) {
			storm_fail(rep, r, "reading the DOWNs");
			goto out;
		}
	}
	t1 = bench_now_ns();
	rep->rate = (double)n / ((double)(t1 - t0) / 1e9);
	if (c) {
		long missing = 0;

		for (long ref = 1; ref <= n; ref++)
			missing += d.seen[ref] == 0;
		rep->failures = missing + d.dups + d.bad;
		if (rep->failures || d.errors)
			snprintf(rep->what, sizeof(rep->what),
				 "%ld of %ld DOWNs missing, %ld duplicate, %ld wrong; the agent "
				 "refused %ld monitors", missing, n, d.dups, d.bad, d.errors);
		rep->failures += d.errors;
	}
out:
	zm_close(c);
	free(d.seen);
	free(pids);
}

static uint64_t storm_tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000ULL + (uint64_t)tv->tv_usec * 1000ULL;
}

/* CPU time of this process and of its reaped children, in ns. */
static uint64_t storm_rusage_ns(void)
{
	struct rusage self, children;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	return storm_tv_ns(&self.ru_utime) + storm_tv_ns(&self.ru_stime) +
	       storm_tv_ns(&children.ru_utime) + storm_tv_ns(&children.ru_stime);
}

static __attribute__((noreturn)) void storm_worker(int fd)
{
	struct storm_req req;
	struct storm_rep rep;
	uint64_t cpu0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		ssize_t len = recv(fd, &req, sizeof(req), 0);

		if (len < 0 && errno == EINTR)
			continue;
		if (len != (ssize_t)sizeof(req) || req.job == JOB_QUIT)
			_exit(0);
		memset(&rep, 0, sizeof(rep));
		req.sock[sizeof(req.sock) - 1] = '\0';
		cpu0 = storm_rusage_ns();
		if (req.job == JOB_PLAIN) {
			rep.rate = storm_run((enum storm_kind)req.kind, req.n);
			if (rep.rate < 0) {
				storm_fail(&rep, (int)rep.rate, req.kind == STORM_THREADS ?
					   "pthread_create/join" : "fork/waitpid");
				rep.rate = 0;
			}
		} else {
			storm_batched(req.n, req.sock, &rep);
		}
		rep.cpu_ns = storm_rusage_ns() - cpu0;
		if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) != (ssize_t)sizeof(rep))
			_exit(1);
	}
}

static int storm_worker_start(struct storm_ctx *x)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	x->worker = fork();
	if (x->worker < 0) {
		int r = -errno;

		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (x->worker == 0) {
		close(sv[0]);
		storm_worker(sv[1]);
	}
	close(sv[1]);
	x->worker_fd = sv[0];
	return 0;
}

static void storm_worker_stop(struct storm_ctx *x)
{
	struct storm_req req = { .job = JOB_QUIT };

	if (x->worker <= 0)
		return;
	if (send(x->worker_fd, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req))
		kill(x->worker, SIGKILL);
	close(x->worker_fd);
	while (waitpid(x->worker, NULL, 0) < 0 && errno == EINTR)
		;
	x->worker = 0;
}

/*
 * Have the worker run one storm and file its rates under slot for this run:
 * by the wall clock in v, and per CPU second in cpu, counting the CPU time of
 * the storm (the BPF programs run in the exiting tasks: it is in there) and
 * of the observer's process (observer: the agent or exitsnoop, 0 for none).
 * Failed DOWN checks of a batched storm add to x->failures. 0 or -errno,
 * after saying what failed.
 */
static int storm_ask(struct storm_ctx *x, int job, enum storm_kind kind, long n,
		     const char *sock, pid_t observer, int slot, int run)
{
	struct storm_req req = { .job = job, .kind = kind, .n = n };
	struct pollfd pfd = { .fd = x->worker_fd, .events = POLLIN };
	uint64_t obs0 = observer ? bench_proc_cpu_ns(observer) : 0, obs1;
	struct storm_rep rep;
	int r;

	snprintf(req.sock, sizeof(req.sock), "%s", sock ? sock : "");
	if (send(x->worker_fd, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
		fprintf(stderr, "zm-bench storm: the storm worker is gone: %s\n", strerror(errno));
		return -EPIPE;
	}
	do
		r = poll(&pfd, 1, STORM_WORKER_WAIT_MS);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		fprintf(stderr, "zm-bench storm: a storm of %ld took over %d s; is the machine "
			"swapping or out of pids? Giving up\n", n, STORM_WORKER_WAIT_MS / 1000);
		return -ETIMEDOUT;
	}
	if (recv(x->worker_fd, &rep, sizeof(rep), 0) != (ssize_t)sizeof(rep)) {
		fprintf(stderr, "zm-bench storm: the storm worker died (out of memory?)\n");
		return -EPIPE;
	}
	obs1 = observer ? bench_proc_cpu_ns(observer) : 0;
	if (rep.what[0] && (rep.err || rep.failures))
		fprintf(stderr, "zm-bench storm: %s\n", rep.what);
	if (rep.err)
		return rep.err;
	x->failures += rep.failures;
	x->v[slot][run] = rep.rate;
	if (rep.cpu_ns + (obs1 - obs0))
		x->cpu[slot][run] = (double)n / ((double)(rep.cpu_ns + (obs1 - obs0)) / 1e9);
	if (x->cfg->verbose)
		fprintf(stderr, "zm-bench storm:   %-24s %8.0f/s wall, %8.0f/s per CPU s (n %ld)\n",
			storm_slot_name[slot], x->v[slot][run], x->cpu[slot][run], n);
	return 0;
}

/* ---- BPF program costs ---------------------------------------------------- */

struct storm_bpf {
	const char *prog;
	struct bench_prog_stats before;
};

static void storm_bpf_begin(struct storm_bpf *b, const char *prog)
{
	b->prog = prog;
	if (bench_prog_stats(prog, &b->before) < 0)
		memset(&b->before, 0, sizeof(b->before));
}

/* ns per run of b->prog since storm_bpf_begin(), or BENCH_NA. */
static double storm_bpf_end(const struct storm_bpf *b)
{
	struct bench_prog_stats after;

	if (bench_prog_stats(b->prog, &after) < 0 || after.run_cnt <= b->before.run_cnt)
		return BENCH_NA;
	return (double)(after.run_time_ns - b->before.run_time_ns) /
	       (double)(after.run_cnt - b->before.run_cnt);
}

/* One process created and reaped here, so that exit programs run once. */
static void storm_one_exit(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

/* Whether a program named prog runs on process exit now: its run count
 * moves over one exit (kernel.bpf_stats_enabled must be on). */
static bool storm_prog_runs(const char *prog)
{
	struct bench_prog_stats a, b;

	if (bench_prog_stats(prog, &a) < 0)
		return false;
	storm_one_exit();
	return bench_prog_stats(prog, &b) == 0 && b.run_cnt > a.run_cnt;
}

/* ---- exitsnoop --------------------------------------------------------------- */

/*
 * Start exitsnoop, printing to /dev/null (its errors to log), and wait until
 * its program runs on exits. 0 and *ret_pid, or -errno after saying why.
 */
static int storm_snoop_start(const char *log, pid_t *ret_pid)
{
	uint64_t deadline;
	pid_t pid;
	int ws;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		int err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out >= 0)
			dup2(out, 1);
		if (err >= 0)
			dup2(err, 2);
		execl(STORM_SNOOP_BIN, "exitsnoop", (char *)NULL);
		execlp("exitsnoop", "exitsnoop", (char *)NULL);
		fprintf(stderr, "exec exitsnoop: %s\n", strerror(errno));
		_exit(127);
	}
	deadline = bench_now_ns() + STORM_SNOOP_WAIT_MS * 1000000ULL;
	for (;;) {
		if (storm_prog_runs(STORM_SNOOP_PROG))
			break;
		if (waitpid(pid, &ws, WNOHANG) == pid) {
			char buf[2048] = "";

			bench_read_text(log, buf, sizeof(buf));
			fprintf(stderr, "zm-bench storm: exitsnoop did not start (wait status 0x%x)%s%s"
				"zm-bench storm: %s\n", ws, buf[0] ? ":\n" : "\n", buf,
				WIFEXITED(ws) && WEXITSTATUS(ws) == 127 ?
				"install it: apt-get install libbpf-tools (tools/install-deps.sh)" :
				"run exitsnoop by hand to see why");
			return -ENOENT;
		}
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "zm-bench storm: exitsnoop's program did not run within %d s; "
				"left out. Is the machine overloaded? (bpftool prog list shows what "
				"is loaded)\n", STORM_SNOOP_WAIT_MS / 1000);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -ETIMEDOUT;
		}
		usleep(20000);
	}
	*ret_pid = pid;
	return 0;
}

/* SIGINT, as a user would stop it; SIGKILL if it lingers. */
static void storm_snoop_stop(pid_t pid)
{
	uint64_t deadline = bench_now_ns() + STORM_SNOOP_WAIT_MS * 1000000ULL;

	kill(pid, SIGINT);
	while (waitpid(pid, NULL, WNOHANG) != pid) {
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "zm-bench storm: exitsnoop ignored SIGINT for %d s; killing it\n",
				STORM_SNOOP_WAIT_MS / 1000);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return;
		}
		usleep(10000);
	}
}

/* ---- the phases of one run ------------------------------------------------------ */

/* The process and thread storms under observer (0: none), their rates
 * into slots sp and st, and their BPF costs, from prog, into nsp and nst
 * unless those are < 0. */
static int storm_pair(struct storm_ctx *x, int run, pid_t observer, int sp, int st,
		      const char *prog, int nsp, int nst)
{
	struct storm_bpf b;
	int err;

	storm_bpf_begin(&b, prog ? prog : STORM_ZM_PROG);
	err = storm_ask(x, JOB_PLAIN, STORM_PROCESSES, x->n_proc, NULL, observer, sp, run);
	if (err < 0)
		return err;
	if (nsp >= 0)
		x->v[nsp][run] = storm_bpf_end(&b);

	storm_bpf_begin(&b, prog ? prog : STORM_ZM_PROG);
	err = storm_ask(x, JOB_PLAIN, STORM_THREADS, x->n_thr, NULL, observer, st, run);
	if (err < 0)
		return err;
	if (nst >= 0)
		x->v[nst][run] = storm_bpf_end(&b);
	return 0;
}

static int storm_phase_none(struct storm_ctx *x, int run)
{
	int err;

	err = storm_pair(x, run, 0, S_PROC_NONE, S_THR_NONE, NULL, -1, -1);
	if (err < 0)
		return err;
	return storm_ask(x, JOB_BATCHED, STORM_PROCESSES, x->n_batch, NULL, 0, S_BATCH_NONE, run);
}

/* Monitor every sleeper once, pipelined, and wait until the agent holds
 * them all. The client stays open: closing it would drop the monitors. */
static int storm_watch_sleepers(struct storm_ctx *x, const struct bench_agent *a,
				struct zm_client **ret_c)
{
	struct zm_connect_options o = { .socket_path = a->sock, .name = "zm-bench-100k" };
	struct storm_downs d = { 0 };
	struct zm_client *c;
	uint64_t t0 = bench_now_ns(), ref;
	int r;

	r = zm_connect_opts(&o, &c);
	if (r < 0) {
		fprintf(stderr, "zm-bench storm: cannot connect to the private zenmond at %s: %s\n",
			a->sock, strerror(-r));
		return r;
	}
	/* Errors only: a sleeper never dies while watched, so a DOWN here
	 * (NOPROC) would mean a target was gone, counted as an error below. */
	zm_set_error_handler(c, storm_on_error, &d);
	for (long i = 0; i < x->n_sleepers; i++) {
		r = zm_monitor_pid(c, x->sleepers[i], &ref);
		if (r < 0) {
			fprintf(stderr, "zm-bench storm: zm_monitor_pid of sleeper %ld: %s\n", i,
				strerror(-r));
			zm_close(c);
			return r;
		}
	}
	r = zm_sync(c, STORM_ZM_WAIT_MS, NULL, NULL);
	if (r < 0 || d.errors || zm_active_monitors(c) != (size_t)x->n_sleepers) {
		fprintf(stderr, "zm-bench storm: the agent holds %zu of %ld monitors (%ld refused, "
			"sync: %s); see its log and limits (ZM_MAX_PROC_WATCHES)\n",
			zm_active_monitors(c), x->n_sleepers, d.errors, r < 0 ? strerror(-r) : "ok");
		zm_close(c);
		return r < 0 ? r : -ENOSPC;
	}
	if (x->cfg->verbose)
		fprintf(stderr, "zm-bench storm:   %ld monitors registered in %.2f s\n",
			x->n_sleepers, (bench_now_ns() - t0) / 1e9);
	*ret_c = c;
	return 0;
}

static int storm_phase_zenmon(struct storm_ctx *x, int run)
{
	struct bench_agent a;
	struct zm_client *c = NULL;
	struct storm_bpf b;
	int err;

	err = bench_agent_start(&a, x->cfg, NULL);
	if (err < 0) {
		fprintf(stderr, "zm-bench storm: cannot start %s: %s (build it with make; run as "
			"root)\n", x->cfg->zenmond, strerror(-err));
		return err;
	}
	err = storm_pair(x, run, a.pid, S_PROC_IDLE, S_THR_IDLE, STORM_ZM_PROG, S_NS_PROC_IDLE,
			 -1);
	if (err < 0)
		goto out;

	storm_bpf_begin(&b, STORM_ZM_PROG);
	err = storm_ask(x, JOB_BATCHED, STORM_PROCESSES, x->n_batch, a.sock, a.pid, S_BATCH_MON,
			run);
	if (err < 0)
		goto out;
	x->v[S_NS_BATCH_MON][run] = storm_bpf_end(&b);

	err = storm_watch_sleepers(x, &a, &c);
	if (err < 0)
		goto out;
	err = storm_pair(x, run, a.pid, S_PROC_100K, S_THR_100K, STORM_ZM_PROG, S_NS_PROC_100K,
			 S_NS_THR_100K);
out:
	zm_close(c);
	bench_agent_stop(&a);
	return err;
}

static int storm_phase_snoop(struct storm_ctx *x, int run)
{
	char log[64];
	pid_t pid;
	int err;

	if (!x->have_snoop)
		return 0;
	snprintf(log, sizeof(log), "/tmp/zm-bench-exitsnoop-%d.log", (int)getpid());
	err = storm_snoop_start(log, &pid);
	unlink(log);
	if (err < 0) {
		/* A baseline we cannot run is left out, not a failed check. */
		x->have_snoop = false;
		return 0;
	}
	err = storm_pair(x, run, pid, S_PROC_SNOOP, S_THR_SNOOP, STORM_SNOOP_PROG,
			 S_NS_PROC_SNOOP, S_NS_THR_SNOOP);
	storm_snoop_stop(pid);
	return err;
}

static int storm_one_run(struct storm_ctx *x, int run)
{
	static int (*const phase[])(struct storm_ctx *, int) = {
		storm_phase_none, storm_phase_zenmon, storm_phase_snoop,
	};
	static const char *const name[] = { "none", "zenmond", "exitsnoop" };
	const int n = (int)(sizeof(phase) / sizeof(phase[0]));

	for (int i = 0; i < n; i++) {
		int p = (run + i) % n;
		uint64_t t0 = bench_now_ns();
		int err = phase[p](x, run);

		if (err < 0)
			return err;
		if (x->cfg->verbose)
			fprintf(stderr, "zm-bench storm: run %d/%d: %s done in %.1f s\n", run + 1,
				x->runs, name[p], (bench_now_ns() - t0) / 1e9);
	}
	return 0;
}

/* ---- setup ---------------------------------------------------------------------- */

static long storm_size(double rate, double seconds, long multiple)
{
	long n = (long)(rate * seconds);

	if (n < STORM_MIN_N)
		n = STORM_MIN_N;
	if (n > STORM_MAX_N)
		n = STORM_MAX_N;
	return (n + multiple - 1) / multiple * multiple;
}

/* Size the storms from short ones with nothing attached. */
static int storm_calibrate(struct storm_ctx *x)
{
	double secs = x->cfg->full ? STORM_FULL_S : STORM_QUICK_S;
	double rp, rt;
	int err;

	/* Filed under run 0 of "none", which the first run then overwrites. */
	err = storm_ask(x, JOB_PLAIN, STORM_PROCESSES, STORM_CALIB_PROCS, NULL, 0, S_PROC_NONE, 0);
	if (err < 0)
		return err;
	err = storm_ask(x, JOB_PLAIN, STORM_THREADS, STORM_CALIB_THREADS, NULL, 0, S_THR_NONE, 0);
	if (err < 0)
		return err;
	rp = x->v[S_PROC_NONE][0];
	rt = x->v[S_THR_NONE][0];
	x->n_proc = storm_size(rp, secs, 1);
	x->n_thr = storm_size(rt, secs, 1);
	/* The batched storm is slower than the plain one; the same count
	 * keeps it near the same length. */
	x->n_batch = storm_size(rp * 0.8, secs, STORM_BATCH);
	if (x->cfg->verbose)
		fprintf(stderr, "zm-bench storm: %.0f proc/s, %.0f thr/s unobserved: storms of %ld "
			"processes, %ld threads, %ld batched processes\n", rp, rt, x->n_proc,
			x->n_thr, x->n_batch);
	return 0;
}

/* The 100,000 watched targets: light sleepers (bench_spawn_sleepers()). */
static void storm_reap_sleepers(struct storm_ctx *x)
{
	if (x->n_sleepers)
		kill(-x->sleepers_pgid, SIGKILL);
	bench_reap(x->sleepers, x->n_sleepers);
	bench_sleepers_free(x->sleepers);
	free(x->sleepers);
	x->sleepers = NULL;
	x->n_sleepers = 0;
}

static int storm_spawn_sleepers(struct storm_ctx *x, long n)
{
	uint64_t t0 = bench_now_ns();
	int r;

	r = bench_make_room_for_procs(n);
	if (r < 0) {
		fprintf(stderr, "zm-bench storm: no room for %ld more processes: %s (raise "
			"kernel.pid_max and kernel.threads-max, as root)\n", n, strerror(-r));
		return r;
	}
	x->sleepers = calloc((size_t)n, sizeof(*x->sleepers));
	if (!x->sleepers)
		return -ENOMEM;
	r = bench_spawn_sleepers(x->sleepers, n, &x->sleepers_pgid);
	if (r < 0) {
		fprintf(stderr, "zm-bench storm: cannot spawn %ld sleepers: %s (out of memory or "
			"pids? see kernel.pid_max, kernel.threads-max)\n", n, strerror(-r));
		free(x->sleepers);
		x->sleepers = NULL;
		return r;
	}
	x->n_sleepers = n;
	if (x->cfg->verbose)
		fprintf(stderr, "zm-bench storm: %ld sleepers spawned in %.1f s\n", n,
			(bench_now_ns() - t0) / 1e9);
	return 0;
}

/* Another zenmond or exitsnoop would weigh on every column, "none"
 * included: say so, since the figures are then not what they claim. */
static void storm_check_quiet_host(void)
{
	if (storm_prog_runs(STORM_ZM_PROG))
		fprintf(stderr, "zm-bench storm: warning: a zenmond is already running on this "
			"host; its program weighs on every column. Stop it for clean figures\n");
	if (storm_prog_runs(STORM_SNOOP_PROG))
		fprintf(stderr, "zm-bench storm: warning: an exitsnoop (or a program named like "
			"it) is already running; stop it for clean figures\n");
}

/* ---- the rows --------------------------------------------------------------------- */

static double storm_median(const double *runs, int n)
{
	double v[STORM_MAX_RUNS];
	size_t k = 0;

	for (int i = 0; i < n; i++)
		if (!isnan(runs[i]))
			v[k++] = runs[i];
	return k ? bench_median(v, k) : BENCH_NA;
}

/*
 * A throughput row: slot's median rate in column col against none_slot's in
 * "no observer". The note gives the change both by the wall clock (what the
 * row shows) and per CPU second of the storm and its observer, which other
 * load on the machine disturbs far less.
 */
static void storm_rate_row(struct storm_ctx *x, struct bench_table *t, const char *measure,
			   const char *unit, int col, int slot, int none_slot, const char *extra)
{
	struct bench_row row = { .section = "cost" };
	double v = storm_median(x->v[slot], x->runs), none = storm_median(x->v[none_slot], x->runs);
	double cv = storm_median(x->cpu[slot], x->runs);
	double cnone = storm_median(x->cpu[none_slot], x->runs);

	for (int c = 0; c < BCOL_N; c++)
		row.v[c] = BENCH_NA;
	snprintf(row.measure, sizeof(row.measure), "%s", measure);
	snprintf(row.unit, sizeof(row.unit), "%s", unit);
	row.v[col] = v;
	if (isnan(v)) {
		snprintf(row.note, sizeof(row.note), "not measured (see above)");
	} else {
		row.v[BCOL_NONE] = none;
		snprintf(row.note, sizeof(row.note), "wall %+.1f%%, CPU %+.1f%% vs none%s",
			 (v / none - 1) * 100, (cv / cnone - 1) * 100, extra ? extra : "");
	}
	bench_table_add(t, &row);
}

static void storm_rows(struct storm_ctx *x, struct bench_table *t)
{
	/* Per CPU second: a BPF program's time is CPU time of the exit. */
	double pn = storm_median(x->cpu[S_PROC_NONE], x->runs);
	double tn = storm_median(x->cpu[S_THR_NONE], x->runs);
	struct bench_row row = { .section = "cost" };
	char measure[72];

	storm_rate_row(x, t, "fork+exit, processes: zenmond idle", "proc/s", BCOL_ZENMON,
		       S_PROC_IDLE, S_PROC_NONE, NULL);
	snprintf(measure, sizeof(measure), "fork+exit, processes: %ldk watched, all miss",
		 x->n_sleepers / 1000);
	storm_rate_row(x, t, measure, "proc/s", BCOL_ZENMON, S_PROC_100K, S_PROC_NONE, NULL);
	snprintf(measure, sizeof(measure), "fork+exit, processes: each monitored, batch %d",
		 STORM_BATCH);
	storm_rate_row(x, t, measure, "proc/s", BCOL_ZENMON, S_BATCH_MON, S_BATCH_NONE,
		       x->failures ? ", DOWNs LOST" : ", DOWNs ok");
	storm_rate_row(x, t, "fork+exit, processes: exitsnoop", "proc/s", BCOL_EXITSNOOP,
		       S_PROC_SNOOP, S_PROC_NONE, NULL);

	/* No "each monitored" for threads: monitors are per process. */
	storm_rate_row(x, t, "thread create+exit: zenmond idle", "thr/s", BCOL_ZENMON,
		       S_THR_IDLE, S_THR_NONE, NULL);
	snprintf(measure, sizeof(measure), "thread create+exit: %ldk watched, all miss",
		 x->n_sleepers / 1000);
	storm_rate_row(x, t, measure, "thr/s", BCOL_ZENMON, S_THR_100K, S_THR_NONE, NULL);
	storm_rate_row(x, t, "thread create+exit: exitsnoop", "thr/s", BCOL_EXITSNOOP,
		       S_THR_SNOOP, S_THR_NONE, NULL);

	/* The BPF rows have no "none": nothing runs there. */
	for (int c = 0; c < BCOL_N; c++)
		row.v[c] = BENCH_NA;
	snprintf(row.unit, sizeof(row.unit), "ns");
	snprintf(row.measure, sizeof(row.measure), "BPF ns per exit, processes: %ldk watched, miss",
		 x->n_sleepers / 1000);
	row.v[BCOL_ZENMON] = storm_median(x->v[S_NS_PROC_100K], x->runs);
	row.v[BCOL_EXITSNOOP] = storm_median(x->v[S_NS_PROC_SNOOP], x->runs);
	/* What a miss weighs against the CPU time of a whole fork+exit: the
	 * overhead the throughput rows would show without the machine's
	 * noise. */
	snprintf(row.note, sizeof(row.note), "%.3f%% of a fork+exit's CPU; idle %.0f ns",
		 row.v[BCOL_ZENMON] * pn / 1e7, storm_median(x->v[S_NS_PROC_IDLE], x->runs));
	bench_table_add(t, &row);

	row.v[BCOL_EXITSNOOP] = BENCH_NA;
	snprintf(row.measure, sizeof(row.measure), "BPF ns per exit, processes: each monitored");
	row.v[BCOL_ZENMON] = storm_median(x->v[S_NS_BATCH_MON], x->runs);
	snprintf(row.note, sizeof(row.note), "a hit: lookup, mark, ring buffer record");
	bench_table_add(t, &row);

	snprintf(row.measure, sizeof(row.measure), "BPF ns per exit, threads: %ldk watched",
		 x->n_sleepers / 1000);
	row.v[BCOL_ZENMON] = storm_median(x->v[S_NS_THR_100K], x->runs);
	row.v[BCOL_EXITSNOOP] = storm_median(x->v[S_NS_THR_SNOOP], x->runs);
	snprintf(row.note, sizeof(row.note), "%.3f%% of a create+exit's CPU (no lookup)",
		 row.v[BCOL_ZENMON] * tn / 1e7);
	bench_table_add(t, &row);
}

/* ---- the module ------------------------------------------------------------------- */

int bench_storm(const struct bench_cfg *cfg, struct bench_table *t)
{
	struct storm_ctx *x = calloc(1, sizeof(*x));
	int err;

	if (!x) {
		fprintf(stderr, "zm-bench storm: out of memory\n");
		return -1;
	}
	x->cfg = cfg;
	x->runs = cfg->runs < STORM_MAX_RUNS ? cfg->runs : STORM_MAX_RUNS;
	for (int s = 0; s < S_N; s++)
		for (int i = 0; i < STORM_MAX_RUNS; i++)
			x->v[s][i] = x->cpu[s][i] = BENCH_NA;

	err = bench_bpf_stats_enable();
	if (err < 0)
		goto out;
	storm_check_quiet_host();
	/* First, while this process is small: see "Fairness" above. */
	err = storm_worker_start(x);
	if (err < 0) {
		fprintf(stderr, "zm-bench storm: cannot start the storm worker: %s\n",
			strerror(-err));
		goto out;
	}
	err = storm_calibrate(x);
	if (err < 0)
		goto out;
	err = storm_spawn_sleepers(x, STORM_SLEEPERS);
	if (err < 0)
		goto out;
	x->have_snoop = true;
	for (int run = 0; run < x->runs; run++) {
		err = storm_one_run(x, run);
		if (err < 0)
			goto out;
	}
	storm_rows(x, t);
	if (x->failures)
		fprintf(stderr, "zm-bench storm: %ld DOWN checks failed in the monitored storms "
			"(see above)\n", x->failures);
out:
	storm_reap_sleepers(x);
	storm_worker_stop(x);
	err = err < 0 || x->failures ? -1 : 0;
	free(x);
	return err;
}
