// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * zenmon's kernel side: report the death of watched processes.
 *
 * One program on the sched_process_exit tracepoint. A process is down when
 * its last thread exits, so most exits (every thread that is not the last one)
 * cost one pointer chase and a compare. For a group-dead exit the program looks
 * the process up in zm_procs, which the agent fills. On a hit it records the
 * exit in the map entry first (the durable truth: state FIRED) and then sends a
 * record through the zm_events ring buffer. A failed reserve is counted in
 * zm_stats.rb_dropped and the agent recovers the exit by scanning for FIRED
 * entries. The program never deletes a map entry; the agent does.
 *
 * Wakeup policy
 * -------------
 * Measured on a 2 vCPU VM with Linux 6.18 (MEASUREMENTS.md): a record
 * submitted with a consumer wakeup costs the exiting task ~2.2-2.5 us, one
 * without ~0.4 us, and a wakeup per exit cut a two-thread process storm to
 * 0.54x of its rate with nothing attached. The wakeup (an irq_work, then
 * waking the agent) is the cost, so we rate-limit it:
 *
 *   - A record is submitted with BPF_RB_FORCE_WAKEUP if at least
 *     wakeup_interval_ns passed since the last such record (last_wakeup_ns),
 *     and with BPF_RB_NO_WAKEUP otherwise.
 *   - The agent watches the ring's epoll fd level-triggered, and after any
 *     drain that consumed records, or that returned -EAGAIN (a record was
 *     reserved but not yet committed), it drains again after one interval,
 *     until a drain finds nothing.
 *
 * So a lone exit wakes the agent at once, and a storm costs about one wakeup
 * per interval (two CPUs may both take a slot), plus one re-drain per
 * interval in the agent.
 *
 * Why no record is left behind. A record R submitted without a wakeup was
 * decided at t_R, when last_wakeup_ns held t_W with |t_R - t_W| < interval:
 * t_W is the decision time of a record W submitted with a forced wakeup,
 * which is issued after W is committed.
 *   - If that wakeup comes after R is committed, the ring is readable and,
 *     level-triggered, stays readable until it is empty (reserved records
 *     count), so the agent keeps draining until R is consumed.
 *   - If it comes before, a drain consumes W (at once, or once whatever was
 *     reserved before W is committed), after t_W; the agent then drains
 *     again one interval later, after t_R. That drain consumes R, or finds R
 *     still reserved (R's program runs with preemption off, so only an NMI
 *     or a stolen vCPU can stretch that) and returns -EAGAIN or a count, and
 *     the agent drains again one interval later, until R is consumed.
 * The kernel's default (adaptive) flags would not do for W: they wake only
 * if the consumer had read everything before W, so a NO_WAKEUP record
 * reserved on another CPU just before W would swallow W's wakeup with no
 * drain coming to rescue either. FORCE_WAKEUP is issued at most once per
 * interval anyway, so there is little for the adaptive check to save.
 *
 * A record takes the wakeup slot only once it is reserved: after a failed
 * reserve, later records must not rely on a wakeup that never happened.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "zenmon/kern.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The 64-bit compare-and-swap below relies on this layout of kern.h. */
_Static_assert(__builtin_offsetof(struct zm_proc_watch, exit_code) % 8 == 0 &&
		       __builtin_offsetof(struct zm_proc_watch, state) ==
			       __builtin_offsetof(struct zm_proc_watch, exit_code) + 4,
	       "zm_proc_watch: exit_code and state must form one aligned 64-bit word");

/* include/linux/sched/signal.h; a #define, so not in BTF. 0x4 since 2.6. */
#define SIGNAL_GROUP_EXIT 0x00000004

/* Set by the agent before load (kwatch_opts.wakeup_interval_ns). */
const volatile __u64 wakeup_interval_ns = ZM_DEFAULT_WAKEUP_INTERVAL_NS;

/* CLOCK_BOOTTIME of the last record submitted with a wakeup. */
__u64 last_wakeup_ns = 0;

/*
 * Watched processes. Only the agent inserts, so elements are allocated on
 * insert (BPF_F_NO_PREALLOC) rather than all at load: preallocating 1M
 * entries would pin ~100 MiB of kernel memory on a host that watches a few.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_PROC_WATCHES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zm_proc_key);
	__type(value, struct zm_proc_watch);
} zm_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, ZM_RINGBUF_BYTES);
} zm_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zm_kstats);
} zm_stats SEC(".maps");

/*
 * Only the first argument: kernels before 6.16 have no group_dead argument,
 * and a program that touched it would not load there.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(zm_process_exit, struct task_struct *task)
{
	struct signal_struct *sig = task->signal;
	struct task_struct *leader;
	struct zm_proc_key key = {};
	struct zm_proc_watch *w;
	struct zm_kstats *st;
	struct zm_event *e;
	struct {
		__u32 exit_code;
		__u32 state;
	} tail;
	__u64 *word, old, fired;
	__u32 zero = 0;
	__u64 flags;
	__u64 now;
	__u32 code;

	/*
	 * The tracepoint runs after atomic_dec_and_test(&signal->live) in
	 * do_exit() on every kernel, so 0 means every thread has passed that
	 * point: the process is dead. Several of its last threads may read 0
	 * at once; the compare-and-swap below picks one reporter. (So stats.exits
	 * can count such a process more than once; matched cannot.)
	 */
	if (sig->live.counter != 0)
		return 0;

	st = bpf_map_lookup_elem(&zm_stats, &zero);
	if (st)
		__sync_fetch_and_add(&st->exits, 1);

	/*
	 * Identity as /proc/PID/stat shows it: field 22 is
	 * nsec_to_clock_t(group_leader->start_boottime), USER_HZ ticks. The
	 * leader may have exited before us; it stays allocated until reaped,
	 * which cannot happen before the group is dead and we have returned.
	 */
	leader = task->group_leader;
	key.tgid = task->tgid;
	key.start_ticks = leader->start_boottime / ZM_NSEC_PER_TICK;

	/*
	 * Nearly every exit is a miss, so nothing else is read before the
	 * lookup: the exit code's fields and the clock cost ~0.3 us of cache
	 * misses per exit here, which a miss has no use for.
	 *
	 * Known limit: between this lookup and the compare-and-swap below
	 * (well under a microsecond) the agent could delete this watch and
	 * insert another that the allocator places in the same element; we
	 * would then fire that other watch. The agent's delete and insert are
	 * two syscalls, so it takes this CPU stalled (NMI, stolen vCPU) right
	 * here. Closing it for good needs the key copied into the value
	 * (kern.h), to re-check after the swap.
	 */
	w = bpf_map_lookup_elem(&zm_procs, &key);
	if (!w)
		return 0;
	/*
	 * exit_code and state share one aligned 64-bit word, and one 64-bit
	 * compare-and-swap on it both picks the reporter and publishes the
	 * exit code with FIRED. (A 32-bit cmpxchg on state alone would need
	 * -mcpu=v3; this needs nothing newer than the atomics themselves.)
	 */
	word = (__u64 *)&w->exit_code;
	old = *(volatile __u64 *)word;
	__builtin_memcpy(&tail, &old, sizeof(tail));
	if (tail.state != ZM_WATCH_ARMED)
		return 0; /* fired already: a sibling thread won */

	/*
	 * What wait(2) will report (wait_task_zombie): the group exit code if
	 * the group was told to exit (exit_group(), a fatal signal; a core dump
	 * sets 0x80 in it), otherwise the leader's own exit code (the leader
	 * called pthread_exit() and the last thread exited with SYS_exit).
	 * Both are written before this tracepoint runs.
	 */
	if (sig->flags & SIGNAL_GROUP_EXIT)
		code = (__u32)sig->group_exit_code;
	else
		code = (__u32)leader->exit_code;
	now = bpf_ktime_get_boot_ns();
	/*
	 * exit_ns goes in first so that it is valid once FIRED is visible (the
	 * compare-and-swap is a full barrier). A losing sibling may overwrite it
	 * with its own, nanoseconds later, "now": harmless.
	 */
	w->exit_ns = now;
	tail.exit_code = code;
	tail.state = ZM_WATCH_FIRED;
	__builtin_memcpy(&fired, &tail, sizeof(fired));
	if (__sync_val_compare_and_swap(word, old, fired) != old)
		return 0;

	if (st)
		__sync_fetch_and_add(&st->matched, 1);

	e = bpf_ringbuf_reserve(&zm_events, sizeof(*e), 0);
	if (!e) {
		/* The FIRED entry stays in the map; the agent finds it by scan. */
		if (st)
			__sync_fetch_and_add(&st->rb_dropped, 1);
		return 0;
	}
	e->kind = ZM_EV_PROC_EXIT;
	e->tgid = key.tgid;
	e->start_ticks = key.start_ticks;
	e->exit_ns = now;
	e->exit_code = code;
	e->tid = (__u32)task->pid;

	/*
	 * Signed difference: another CPU may have stored a later "now" than
	 * ours, and its record carries the wakeup we would otherwise add.
	 */
	if ((__s64)(now - last_wakeup_ns) >= (__s64)wakeup_interval_ns) {
		last_wakeup_ns = now;
		flags = BPF_RB_FORCE_WAKEUP;
		if (st)
			__sync_fetch_and_add(&st->wakeups, 1);
	} else {
		flags = BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(e, flags);
	return 0;
}
