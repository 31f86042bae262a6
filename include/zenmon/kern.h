/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The layout shared by the kernel programs (bpf/zenmon.bpf.c) and the agent:
 * the watched-target map's key and value, the ring-buffer record and the
 * statistics counters. Fixed-width __u types only, so that one definition
 * serves both sides (the BPF side includes vmlinux.h first, the agent
 * <linux/types.h>), and explicit padding, so that no compiler adds its own.
 *
 * Every struct here is in the BPF object's BTF, which is what lets
 * `bpftool map dump pinned /sys/fs/bpf/zenmon/zm_procs` print named fields.
 */
#ifndef ZENMON_KERN_H
#define ZENMON_KERN_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * /proc/PID/stat reports a process's start time in clock ticks since boot
 * (USER_HZ, which is 100 on every Linux ABI); the kernel keeps nanoseconds
 * (task->start_boottime). Identity is kept in ticks so that users can name a
 * process by the number they can read; the BPF side divides.
 */
#define ZM_USER_HZ 100
#define ZM_NSEC_PER_TICK (1000000000ULL / ZM_USER_HZ)

/* A watched process: its thread-group id and its start time in ticks. */
struct zm_proc_key {
	__u32 tgid;
	__u32 _pad;
	__u64 start_ticks;
};

enum zm_watch_state {
	ZM_WATCH_ARMED = 0, /* waiting for the last thread to exit */
	ZM_WATCH_FIRED = 1, /* exited: exit_ns and exit_code are valid */
};

/*
 * The map value. The BPF program writes the exit into the value before it
 * tries the ring buffer, so the map stays the durable truth: if a ring-buffer
 * reserve fails, the agent finds FIRED entries by scanning the map and no
 * exit is lost. The compare-and-swap on state makes exactly one exiting
 * thread the reporter even when several see the thread group empty.
 */
struct zm_proc_watch {
	__u64 added_ns;  /* CLOCK_BOOTTIME when the agent armed the watch */
	__u64 exit_ns;   /* CLOCK_BOOTTIME of the exit (FIRED only) */
	__u32 exit_code; /* wait(2) status (FIRED only) */
	__u32 state;     /* enum zm_watch_state */
};

enum zm_event_kind {
	ZM_EV_PROC_EXIT = 1,
};

/* One ring-buffer record. */
struct zm_event {
	__u32 kind;      /* enum zm_event_kind */
	__u32 tgid;
	__u64 start_ticks;
	__u64 exit_ns;   /* CLOCK_BOOTTIME */
	__u32 exit_code; /* wait(2) status */
	__u32 tid;       /* the thread whose exit ended the process */
};

/*
 * Counters, one copy per CPU (a per-CPU array of one element) so that the
 * exit path never contends on a cache line; readers sum the copies.
 */
struct zm_kstats {
	__u64 exits;       /* process exits seen (last thread of a group) */
	__u64 matched;     /* exits of watched processes */
	__u64 rb_dropped;  /* failed ring-buffer reserves: each one is a
			      FIRED map entry the agent must find by scan */
	__u64 wakeups;     /* records submitted with a consumer wakeup */
};

/*
 * Wakeup policy (see bpf/zenmon.bpf.c): a record wakes the agent only if no
 * record woke it in the last interval; the agent, after any drain that found
 * records, re-drains after the same interval until a drain finds none.
 */
#define ZM_DEFAULT_WAKEUP_INTERVAL_NS 200000ULL /* 200 µs */

/* Ring-buffer size: 1 MiB lost nothing in ~17M events here. */
#define ZM_RINGBUF_BYTES (1U << 20)

/* Watched-process map capacity. */
#define ZM_MAX_PROC_WATCHES (1U << 20)

#endif /* ZENMON_KERN_H */
