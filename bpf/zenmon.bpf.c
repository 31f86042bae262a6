// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * zenmon's kernel side: report the death of watched processes and the close
 * of watched TCP connections.
 *
 * zm_process_exit, on sched_process_exit. A process is down when its last
 * thread exits, so most exits (every thread that is not the last one) cost
 * one pointer chase and a compare. For a group-dead exit the program looks
 * the process up in zm_procs, which the agent fills.
 *
 * zm_tcp_close, on inet_sock_set_state. A connection is down when its socket
 * reaches TCP_CLOSE. Most state changes are not to TCP_CLOSE, and most
 * sockets that close were never asked for their cookie, so those cost a
 * compare or two; the rest are looked up in zm_tcp by socket cookie.
 * zm_tcp_rst, on tcp_send_reset, marks a watched socket that sends an RST
 * while still open, which is one of the clues to how it closed (see
 * zm_tcp_how_of()).
 *
 * On a hit a program records the event in the map entry first (the durable
 * truth: state FIRED) and then sends a record through the zm_events ring
 * buffer. A failed reserve is counted in zm_stats.rb_dropped and the agent
 * recovers the event by scanning for FIRED entries. The programs never delete
 * a map entry; the agent does.
 *
 * Wakeup policy
 * -------------
 * Measured on a 2 vCPU VM with Linux 6.18 (MEASUREMENTS.md): a record
 * submitted with a consumer wakeup costs the exiting task ~2.2-2.5 us, one
 * without ~0.4 us, and a wakeup per exit cut a two-thread process storm to
 * 0.54x of its rate with nothing attached. The wakeup (an irq_work, then
 * waking the agent) is the cost, so we rate-limit it, across both kinds of
 * record (they share the ring and last_wakeup_ns; see zm_submit()):
 *
 *   - A record is submitted with BPF_RB_FORCE_WAKEUP if at least
 *     wakeup_interval_ns passed since the last such record (last_wakeup_ns),
 *     and with BPF_RB_NO_WAKEUP otherwise.
 *   - The agent watches the ring's epoll fd level-triggered, and after any
 *     drain that consumed records, or that returned -EAGAIN (a record was
 *     reserved but not yet committed), it drains again after one interval,
 *     until a drain finds nothing.
 *
 * So a lone event wakes the agent at once, and a storm costs about one wakeup
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
 *
 * Element reuse: why a program cannot fire the wrong watch
 * --------------------------------------------------------
 * Hash-map elements are reused at once: between a program's lookup of key K
 * (which returns a pointer to element E) and its writes through that
 * pointer, the agent may delete K (E is freed) and insert K' (the allocator
 * hands E out again, the kernel copies K''s whole value into E, then links
 * E under K'). A program holding E must then not mark K' FIRED: K''s real
 * event would find it fired already and never be reported.
 *
 * So a program changes a watch only by a 64-bit compare-and-swap on the
 * value's last word, {payload, state}, from the armed word *it computes from
 * K* ({zm_*_tag(K), ARMED}, kern.h) to the fired word. The agent inserts
 * every watch with exactly that armed word. Take every point at which the
 * agent's copy of K''s value can write E's word, relative to our swap:
 *   - after it: our swap hit K's watch (fine: that is the event we saw, and
 *     K was deleted, so the agent ignores our record), and the copy then
 *     replaces our fired word with K''s armed word: K' starts clean.
 *   - before it: E's word is K''s armed word. If K' and K have different
 *     tags the swap fails and we return; if they have the same tag, K' names
 *     the same target (kern.h says why tags do not collide otherwise) and
 *     firing it is right: it is the same process or socket going down.
 * No interleaving leaves K' fired by a program that saw K. This assumes the
 * copy writes the aligned 64-bit word whole, as every 64-bit store of an
 * aligned word is; a copy that tore the word byte by byte while our swap
 * landed in the middle of it could still mix the two.
 *
 * What a stale program can still do: the exit or close time is written just
 * before the swap (so that it is valid once FIRED is visible), after
 * checking the word. If E is reused between that check and the write (one
 * instruction, so only an NMI or a stolen vCPU fits there), a watch of K'
 * gets our timestamp, which is then no older than the stall; only the map
 * copy, never the record. And if K was deleted and re-inserted in another
 * element, a program holding the old one fails its swap and reports
 * nothing: the agent's registration rule (insert, then check liveness, and
 * a target already going down counts as gone) covers that target.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "zenmon/kern.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The 64-bit compare-and-swaps below rely on this layout of kern.h. */
_Static_assert(__builtin_offsetof(struct zm_proc_watch, exit_code) % 8 == 0 &&
		       __builtin_offsetof(struct zm_proc_watch, state) ==
			       __builtin_offsetof(struct zm_proc_watch, exit_code) + 4,
	       "zm_proc_watch: exit_code and state must form one aligned 64-bit word");
_Static_assert(__builtin_offsetof(struct zm_tcp_watch, armed_tag) % 8 == 0 &&
		       __builtin_offsetof(struct zm_tcp_watch, state) ==
			       __builtin_offsetof(struct zm_tcp_watch, armed_tag) + 4,
	       "zm_tcp_watch: armed_tag and state must form one aligned 64-bit word");

/* include/linux/sched/signal.h; a #define, so not in BTF. 0x4 since 2.6. */
#define SIGNAL_GROUP_EXIT 0x00000004

/* include/linux/socket.h; #defines, so not in BTF. */
#define ZM_AF_INET 2
#define ZM_AF_INET6 10

/*
 * include/uapi/asm-generic/errno*.h, which x86 and arm64 use; #defines, so
 * not in BTF. (alpha, mips, parisc and sparc number them differently.)
 */
#define ZM_EPIPE 32
#define ZM_ECONNRESET 104
#define ZM_ETIMEDOUT 110

/* Set by the agent before load (kwatch_opts.wakeup_interval_ns). */
const volatile __u64 wakeup_interval_ns = ZM_DEFAULT_WAKEUP_INTERVAL_NS;

/* CLOCK_BOOTTIME of the last record submitted with a wakeup. */
__u64 last_wakeup_ns = 0;

/*
 * Exit generations (see ZM_EXIT_GEN_SLOTS), one per key. Mmapable: the agent
 * maps the array read-only, so checking one costs it a memory load, and
 * bpftool shows any slot by key. 64-bit values because an array lays its
 * elements out 8 bytes apart anyway.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ZM_EXIT_GEN_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);   /* tgid & (ZM_EXIT_GEN_SLOTS - 1) */
	__type(value, __u64); /* process deaths in that slot so far */
} zm_exit_gen SEC(".maps");

/*
 * Watched processes and sockets. Only the agent inserts, so elements are
 * allocated on insert (BPF_F_NO_PREALLOC) rather than all at load:
 * preallocating 1M entries would pin ~100 MiB of kernel memory on a host
 * that watches a few.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_PROC_WATCHES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zm_proc_key);
	__type(value, struct zm_proc_watch);
} zm_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_TCP_WATCHES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64); /* socket cookie */
	__type(value, struct zm_tcp_watch);
} zm_tcp SEC(".maps");

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

/* The last word of a watch value, as two halves in memory order. */
struct zm_word {
	__u32 payload; /* armed_tag, or what the fired watch records */
	__u32 state;   /* enum zm_watch_state */
};

static __always_inline __u64 zm_word_pack(__u32 payload, __u32 state)
{
	struct zm_word h = { .payload = payload, .state = state };
	__u64 w;

	__builtin_memcpy(&w, &h, sizeof(w));
	return w;
}

static __always_inline struct zm_word zm_word_unpack(__u64 w)
{
	struct zm_word h;

	__builtin_memcpy(&h, &w, sizeof(h));
	return h;
}

static __always_inline struct zm_kstats *zm_kstats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&zm_stats, &zero);
}

/*
 * Reserve a record; a failure is counted, and the caller's FIRED map entry is
 * what the agent recovers it from. size must be a constant.
 */
static __always_inline void *zm_reserve(__u64 size, struct zm_kstats *st)
{
	void *rec = bpf_ringbuf_reserve(&zm_events, size, 0);

	if (!rec && st)
		__sync_fetch_and_add(&st->rb_dropped, 1);
	return rec;
}

/*
 * Submit a reserved record under the wakeup policy above; now is the
 * CLOCK_BOOTTIME the caller decided at. Signed difference: another CPU may
 * have stored a later "now" than ours, and its record carries the wakeup we
 * would otherwise add.
 */
static __always_inline void zm_submit(void *rec, struct zm_kstats *st, __u64 now)
{
	__u64 flags;

	if ((__s64)(now - last_wakeup_ns) >= (__s64)wakeup_interval_ns) {
		last_wakeup_ns = now;
		flags = BPF_RB_FORCE_WAKEUP;
		if (st)
			__sync_fetch_and_add(&st->wakeups, 1);
	} else {
		flags = BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(rec, flags);
}

/* ---- processes ---------------------------------------------------------- */

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
	__u64 *word, armed, fired, *gen;
	__u64 now;
	__u32 code, slot;

	/*
	 * The tracepoint runs after atomic_dec_and_test(&signal->live) in
	 * do_exit() on every kernel, so 0 means every thread has passed that
	 * point: the process is dead. Several of its last threads may read 0
	 * at once; the compare-and-swap below picks one reporter. (So stats.exits
	 * can count such a process more than once; matched cannot.)
	 */
	if (sig->live.counter != 0)
		return 0;

	/* Before anything can return: every process death moves its slot. */
	slot = task->tgid & (ZM_EXIT_GEN_SLOTS - 1);
	gen = bpf_map_lookup_elem(&zm_exit_gen, &slot);
	if (gen)
		__sync_fetch_and_add(gen, 1);

	st = zm_kstats();
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
	 */
	w = bpf_map_lookup_elem(&zm_procs, &key);
	if (!w)
		return 0;
	/*
	 * exit_code and state share one aligned 64-bit word, and one 64-bit
	 * compare-and-swap on it both picks the reporter and publishes the
	 * exit code with FIRED. (A 32-bit cmpxchg on state alone would need
	 * -mcpu=v3; this needs nothing newer than the atomics themselves.)
	 * The word we expect is computed from the key, never read from the
	 * element: see "Element reuse" above.
	 */
	armed = zm_word_pack(zm_proc_tag(key.tgid, key.start_ticks), ZM_WATCH_ARMED);
	word = (__u64 *)&w->exit_code;
	if (*(volatile __u64 *)word != armed)
		return 0; /* fired already (a sibling thread won), or not ours any more */

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
	 * with its own, nanoseconds later, "now": harmless. So do the uids: who
	 * could signal the process, for an agent that finds the death later
	 * (one that was not running) and must not tell it to anyone else.
	 */
	w->ruid = BPF_CORE_READ(task, real_cred, uid.val);
	w->suid = BPF_CORE_READ(task, real_cred, suid.val);
	w->exit_ns = now;
	fired = zm_word_pack(code, ZM_WATCH_FIRED);
	if (__sync_val_compare_and_swap(word, armed, fired) != armed)
		return 0;

	if (st)
		__sync_fetch_and_add(&st->matched, 1);

	e = zm_reserve(sizeof(*e), st);
	if (!e)
		return 0; /* the FIRED entry stays in the map; the agent finds it by scan */
	e->kind = ZM_EV_PROC_EXIT;
	e->tgid = key.tgid;
	e->start_ticks = key.start_ticks;
	e->exit_ns = now;
	e->exit_code = code;
	e->tid = (__u32)task->pid;
	zm_submit(e, st, now);
	return 0;
}

/* ---- TCP connections ---------------------------------------------------- */

/*
 * How a watched socket reached TCP_CLOSE, from what the kernel left on it at
 * that moment: sk_err, sk_err_soft, the state it left, whether it sent an RST
 * while open (zm_tcp_rst), and whether it had received the peer's FIN
 * (SOCK_DONE) or had been closed by its owner (SOCK_DEAD: an orphan). Linux
 * 6.18 paths, and what each leaves:
 *
 *  - tcp_reset(), an RST arrived: sk_err = ECONNRESET, or EPIPE in
 *    CLOSE_WAIT, set just before tcp_done() (tcp_done_with_error()).
 *    -> RESET_RX. Nothing else sets those two before a close.
 *  - tcp_write_err(), retransmissions, zero-window probes or keepalives gave
 *    up (TCP_USER_TIMEOUT, tcp_retries2, tcp_keepalive_probes): sk_err =
 *    sk_err_soft if an ICMP error or a failed route left one (then the two
 *    are equal), else ETIMEDOUT. -> TIMEOUT, whatever RST the keepalive
 *    timer sent first.
 *  - tcp_abort() (sock_diag destroy, ss -K; bpf_sock_destroy()), an orphan
 *    out of memory (tcp_out_of_resources()), an orphan FIN_WAIT2 with
 *    TCP_LINGER2 < 0: the RST is sent *before* the close, so zm_tcp_rst has
 *    marked the watch. -> RESET_TX (sk_err is ECONNABORTED after tcp_abort).
 *  - close() with unread data, close() with SO_LINGER {1, 0},
 *    connect(AF_UNSPEC) (tcp_disconnect()): the socket is moved to
 *    TCP_CLOSE *first* and the RST sent after, with sk_err still 0, so no
 *    mark helps. They are told by the state left: ESTABLISHED or CLOSE_WAIT
 *    go to TCP_CLOSE with no error only this way. -> RESET_TX. From
 *    FIN_WAIT1/2 (after shutdown(SHUT_WR)), see the next point.
 *  - The normal ends: LAST_ACK -> CLOSE when our FIN is acked (the peer
 *    closed first); CLOSING or FIN_WAIT2 -> CLOSE in tcp_time_wait() once
 *    the peer's FIN arrived (SOCK_DONE is set); FIN_WAIT2 -> CLOSE right
 *    after our FIN is acked when the owner has closed the socket
 *    (SOCK_DEAD; the time-wait socket waits for the peer's FIN). -> FIN. A
 *    FIN_WAIT1/2 socket that reaches TCP_CLOSE with neither flag is being
 *    aborted by its owner after a shutdown(SHUT_WR). -> RESET_TX.
 *  - Any other error (an ICMP error made hard by IP_RECVERR, tcp_abort() of
 *    a socket that was not open, a refused connect) -> ERROR, with sk_err.
 *
 * Known misses, all after the owner shut the socket down: data arriving on a
 * FIN_WAIT socket whose reading side is shut makes the kernel call
 * tcp_reset() itself and then send an RST (TCPAbortOnData): reported as
 * RESET_RX with ECONNRESET. CLOSING or LAST_ACK aborted with unsent data, or
 * an orphan closed by TCP_LINGER2 < 0 on the final ACK: reported as FIN.
 *
 * The evidence follows the function.
 */
static __always_inline __u8 zm_tcp_how_of(const struct sock *sk, int oldstate, int sk_err,
					  bool rst_sent)
{
	unsigned long done_or_dead;

	if (sk_err == ZM_ECONNRESET || sk_err == ZM_EPIPE)
		return ZM_KTCP_RESET_RX;
	if (sk_err == ZM_ETIMEDOUT || (sk_err != 0 && sk_err == sk->sk_err_soft))
		return ZM_KTCP_TIMEOUT;
	if (rst_sent)
		return ZM_KTCP_RESET_TX;
	if (sk_err != 0)
		return ZM_KTCP_ERROR;
	switch (oldstate) {
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
		return ZM_KTCP_RESET_TX;
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
		done_or_dead = (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE)) |
			       (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DEAD));
		return (sk->__sk_common.skc_flags & done_or_dead) ? ZM_KTCP_FIN : ZM_KTCP_RESET_TX;
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		return ZM_KTCP_FIN;
	default:
		return ZM_KTCP_ERROR; /* never established: SYN_SENT, SYN_RECV */
	}
}

/*
 * Evidence: Linux 6.18, each case run for real with both ends watched, over
 * IPv4 and IPv6 loopback and a veth pair between two network namespaces
 * (the timeouts and errors on the veth pair only). Every run gave what the
 * last column says, identically on all four. "closer" is the side that acts.
 *
 *   case                                      side    state left   sk_err       how
 *   close(); the peer reads EOF, close()s     closer  FIN_WAIT2    0 (DEAD)     fin
 *                                             peer    LAST_ACK     0            fin
 *   shutdown(SHUT_WR), fd kept; peer closes   closer  FIN_WAIT2    0 (DONE)     fin
 *   SO_LINGER {1,5} close() after peer's FIN  closer  LAST_ACK     0            fin
 *   close() with SO_LINGER {1,0}              closer  ESTABLISHED  0            reset_tx
 *                                             peer    ESTABLISHED  ECONNRESET   reset_rx
 *   the same after shutdown(SHUT_WR)          closer  FIN_WAIT2    0            reset_tx
 *                                             peer    CLOSE_WAIT   EPIPE        reset_rx
 *   close() with unread data                  closer  ESTABLISHED  0            reset_tx
 *                                             peer    ESTABLISHED  ECONNRESET   reset_rx
 *   the same in CLOSE_WAIT                    closer  CLOSE_WAIT   0            reset_tx
 *     (the peer's FIN not yet acked)          peer    FIN_WAIT1    ECONNRESET   reset_rx
 *   connect(AF_UNSPEC)                        closer  ESTABLISHED  0            reset_tx
 *                                             peer    ESTABLISHED  ECONNRESET   reset_rx
 *   ss -K (sock_diag destroy)                 closer  ESTABLISHED  ECONNABORTED reset_tx
 *                                             peer    ESTABLISHED  ECONNRESET   reset_rx
 *   TCP_USER_TIMEOUT 1 s, unacked data, the
 *     peer's veth end down                    closer  ESTABLISHED  ETIMEDOUT    timeout
 *   the same, our own end down: IPv4          closer  ESTABLISHED  ETIMEDOUT    timeout
 *                               IPv6 (soft)   closer  ESTABLISHED  ENETUNREACH  timeout
 *   the same, our IPv4 route deleted          closer  ESTABLISHED  ETIMEDOUT    timeout
 *   keepalive 1 s x 2 probes, peer end down   closer  ESTABLISHED  ETIMEDOUT    timeout
 *     (tcp_send_reset fired first, reason TCP_KEEPALIVE_TIMEOUT: the RST mark
 *     is set, and the timeout still wins)
 *   connect() refused (RST to a SYN)          closer  SYN_SENT     ECONNREFUSED error
 *   ss -K of a connecting socket (no RST)     closer  SYN_SENT     ECONNABORTED error
 *   shutdown(SHUT_RDWR); the peer sends data  closer  FIN_WAIT2    ECONNRESET   reset_rx (*)
 *
 * (*) The known miss: tcp_reset() ran on a data segment and the RST went
 * out afterwards (tcp_send_reset, reason TCP_ABORT_ON_DATA, state already
 * TCP_CLOSE). Ordering seen with the tracepoints: for close() with unread
 * data, linger 0 and connect(AF_UNSPEC), inet_sock_set_state -> TCP_CLOSE
 * comes before tcp_send_reset (state=TCP_CLOSE); for ss -K and the keepalive
 * timeout, tcp_send_reset (state=TCP_ESTABLISHED) comes first. Deleting an
 * IPv6 route does not cut a connected socket (it keeps its cached route), so
 * the soft-error timeout was produced by taking the link down instead.
 */

/*
 * The cookie of a socket, or 0 if it never had one. Cookies are handed out
 * lazily: sk_cookie stays 0 until something asks (SO_COOKIE, sock_diag,
 * bpf_get_socket_cookie()). The agent learns a socket's cookie only by asking
 * one of those before it arms the watch, so a watched socket always has its
 * cookie set here, and a socket with none cannot be watched. Reading the
 * field, rather than calling bpf_get_socket_cookie() (which tracing programs
 * may do since 5.12), keeps us from handing a cookie to every socket that
 * closes.
 */
static __always_inline __u64 zm_sk_cookie(const struct sock *sk)
{
	return sk->__sk_common.skc_cookie.counter;
}

/*
 * sk's watch, its armed word read for a compare-and-swap: NULL if sk has no
 * cookie, no watch, or a watch whose word carries another tag (an entry the
 * agent freed and reused for another connection). *ret_old is the word as
 * read, *ret_h it unpacked: the caller checks for the state it expects.
 */
static __always_inline struct zm_tcp_watch *zm_tcp_watch_read(const struct sock *sk,
							      __u64 *ret_cookie,
							      __u64 *ret_old,
							      struct zm_word *ret_h)
{
	struct zm_tcp_watch *w;
	__u64 cookie = zm_sk_cookie(sk);

	if (cookie == 0)
		return NULL;
	w = bpf_map_lookup_elem(&zm_tcp, &cookie);
	if (!w)
		return NULL;
	*ret_old = *(volatile __u64 *)&w->armed_tag;
	*ret_h = zm_word_unpack(*ret_old);
	if (ret_h->payload != zm_tcp_tag(cookie))
		return NULL;
	*ret_cookie = cookie;
	return w;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(zm_tcp_close, const struct sock *sk, const int oldstate, const int newstate)
{
	struct zm_tcp_watch *w;
	struct zm_tcp_event *e;
	struct zm_kstats *st;
	struct zm_word h;
	__u64 *word, old, fired, cookie, now;
	__u8 how;
	int sk_err;

	if (newstate != TCP_CLOSE || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	st = zm_kstats();
	if (st)
		__sync_fetch_and_add(&st->tcp_closes, 1);
	/*
	 * As for processes, but two armed words are ours: zm_tcp_rst may have
	 * marked the watch. Read, check it is one of them, and swap from what
	 * was read. The socket lock serializes this with zm_tcp_rst on the
	 * same socket, so the swap does not race it.
	 */
	w = zm_tcp_watch_read(sk, &cookie, &old, &h);
	if (!w || (h.state != ZM_WATCH_ARMED && h.state != ZM_WATCH_ARMED_RST_SENT))
		return 0; /* fired already (a reconnected socket), or not ours any more */
	word = (__u64 *)&w->armed_tag;

	sk_err = sk->sk_err;
	how = zm_tcp_how_of(sk, oldstate, sk_err, h.state == ZM_WATCH_ARMED_RST_SENT);
	now = bpf_ktime_get_boot_ns();
	w->uid = BPF_CORE_READ(sk, sk_uid.val); /* whose it was, as ruid for processes */
	w->close_ns = now; /* before FIRED is visible, as exit_ns */
	{
		struct zm_tcp_watch f = {
			.how = how,
			.old_state = (__u8)oldstate,
			.sk_err = (__u16)sk_err,
			.state = ZM_WATCH_FIRED,
		};

		__builtin_memcpy(&fired, &f.armed_tag, sizeof(fired));
	}
	if (__sync_val_compare_and_swap(word, old, fired) != old)
		return 0;

	if (st)
		__sync_fetch_and_add(&st->tcp_matched, 1);

	e = zm_reserve(sizeof(*e), st);
	if (!e)
		return 0;
	e->kind = ZM_EV_TCP_CLOSE;
	e->family = sk->__sk_common.skc_family;
	e->old_state = (__u8)oldstate;
	e->how = how;
	e->cookie = cookie;
	e->close_ns = now;
	__builtin_memset(e->saddr, 0, sizeof(e->saddr));
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	if (e->family == ZM_AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__builtin_memcpy(e->saddr, &sk->__sk_common.skc_rcv_saddr, 4);
		__builtin_memcpy(e->daddr, &sk->__sk_common.skc_daddr, 4);
	}
	/*
	 * Not skc_num: tcp_set_state() gives the port back (inet_put_port()
	 * zeroes inet_num) before this tracepoint runs. inet_sport stays.
	 */
	e->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	e->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	e->sk_err = sk_err;
	zm_submit(e, st, now);
	return 0;
}

/*
 * An RST is being sent. Mark the watch of the socket it is sent on, if that
 * socket is watched and still open: the RSTs sent before a close are told
 * apart this way (see zm_tcp_how_of()). Only the first argument is read: it
 * is the only one every kernel's tracepoint has. sk is NULL for an RST in
 * answer to a segment no socket owns, and may be a time-wait or request
 * socket, so only struct sock_common is read.
 */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(zm_tcp_rst, const struct sock *sk)
{
	struct zm_tcp_watch *w;
	struct zm_word h;
	__u64 old, cookie;
	int state;

	if (!sk)
		return 0;
	state = sk->__sk_common.skc_state;
	if (state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT && state != TCP_FIN_WAIT1 &&
	    state != TCP_FIN_WAIT2 && state != TCP_CLOSING && state != TCP_LAST_ACK)
		return 0;
	w = zm_tcp_watch_read(sk, &cookie, &old, &h);
	if (!w || h.state != ZM_WATCH_ARMED)
		return 0;
	/* A failed swap means the watch changed under us: nothing to mark. */
	__sync_val_compare_and_swap((__u64 *)&w->armed_tag, old,
				    zm_word_pack(h.payload, ZM_WATCH_ARMED_RST_SENT));
	return 0;
}
