/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The layout shared by the kernel programs (bpf/zenmon.bpf.c) and the agent:
 * the watched-target maps' keys and values, the ring-buffer records and the
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
	ZM_WATCH_ARMED = 0, /* waiting for the target to go down */
	ZM_WATCH_FIRED = 1, /* down: the value's "fired" fields are valid */
	/*
	 * TCP only: still armed, and the kernel has sent an RST on the socket
	 * while it was open (tcp_abort(), an orphan out of memory, a keepalive
	 * timeout). Read by the close program to tell a local abort.
	 */
	ZM_WATCH_ARMED_RST_SENT = 2,
};

/*
 * Every watch value ends in one aligned 64-bit word, {32-bit payload,
 * state}, which the kernel side changes only by compare-and-swap:
 *
 *   armed: { armed_tag, ZM_WATCH_ARMED }   written by the agent on insert
 *   fired: { what happened, ZM_WATCH_FIRED } written by the program
 *
 * The armed tag is a function of the key (zm_proc_tag(), zm_tcp_tag()), so
 * the program computes the word it expects from the key it looked up, and its
 * compare-and-swap succeeds only on a watch for that key. That is what makes
 * element reuse harmless: the agent may delete a watch and insert another
 * that the allocator places in the same memory while a program still holds a
 * pointer to it from its lookup (see bpf/zenmon.bpf.c).
 */

/*
 * A process's tag: its tgid (pids are below 2^22, PID_MAX_LIMIT) and the low
 * 10 bits of its start time. Two watches with the same tag name the same pid,
 * and while a process is exiting no other live process has its pid.
 */
static inline __u32 zm_proc_tag(__u32 tgid, __u64 start_ticks)
{
	return (tgid & 0x3fffffU) | ((__u32)(start_ticks & 0x3ffU) << 22);
}

/*
 * A socket's tag: its cookie folded to 32 bits. Cookies come from one 64-bit
 * counter and are never reused, so two tags collide only for sockets created
 * about 2^32 sockets apart.
 */
static inline __u32 zm_tcp_tag(__u64 cookie)
{
	return (__u32)cookie ^ (__u32)(cookie >> 32);
}

/*
 * The map value. The BPF program writes the exit into the value before it
 * tries the ring buffer, so the map stays the durable truth: if a ring-buffer
 * reserve fails, the agent finds FIRED entries by scanning the map and no
 * exit is lost. The compare-and-swap on the last word makes exactly one
 * exiting thread the reporter even when several see the thread group empty.
 */
struct zm_proc_watch {
	__u64 added_ns;  /* CLOCK_BOOTTIME when the agent armed the watch */
	__u64 exit_ns;   /* CLOCK_BOOTTIME of the exit (FIRED only) */
	/* FIRED only: its real and saved uid as it died, so that an agent that
	 * finds the death later can tell who could have monitored it. */
	__u32 ruid;
	__u32 suid;
	union {
		__u32 exit_code; /* FIRED: wait(2) status */
		__u32 armed_tag; /* ARMED: zm_proc_tag() of the key */
	};
	__u32 state;     /* enum zm_watch_state */
};

/*
 * How a TCP connection reached TCP_CLOSE. The rules and the evidence for them
 * are in bpf/zenmon.bpf.c (zm_tcp_how_of()).
 */
enum zm_ktcp_how {
	ZM_KTCP_FIN = 1,      /* closed normally: FIN handshake, either side first */
	ZM_KTCP_RESET_RX = 2, /* the peer reset it (an RST arrived) */
	ZM_KTCP_RESET_TX = 3, /* reset locally: close() with SO_LINGER 0 or with
				unread data, connect(AF_UNSPEC), sock_diag destroy
				(ss -K), an orphan out of memory */
	ZM_KTCP_TIMEOUT = 4,  /* retransmissions, zero-window probes or keepalive
				probes gave up (TCP_USER_TIMEOUT, tcp_retries2, ...) */
	ZM_KTCP_ERROR = 5,    /* another socket error: sk_err says which */
};

/* A watched TCP socket; the map key is its socket cookie (__u64, never 0). */
struct zm_tcp_watch {
	__u64 added_ns;  /* CLOCK_BOOTTIME when the agent armed the watch */
	__u64 close_ns;  /* CLOCK_BOOTTIME of the move to TCP_CLOSE (FIRED only) */
	__u32 uid;       /* FIRED only: the socket's owner (sk_uid), as for ruid above */
	__u32 _pad;
	union {
		__u32 armed_tag; /* ARMED: zm_tcp_tag() of the key */
		struct {         /* FIRED: */
			__u8 how;        /* enum zm_ktcp_how */
			__u8 old_state;  /* the TCP state it left (TCP_ESTABLISHED = 1, ...) */
			__u16 sk_err;    /* sk->sk_err then: a positive errno, or 0 */
		};
	};
	__u32 state;     /* enum zm_watch_state */
};

enum zm_event_kind {
	ZM_EV_PROC_EXIT = 1, /* struct zm_event */
	ZM_EV_TCP_CLOSE = 2, /* struct zm_tcp_event */
};

/* A process-exit ring-buffer record. Every record starts with its __u32 kind. */
struct zm_event {
	__u32 kind;      /* ZM_EV_PROC_EXIT */
	__u32 tgid;
	__u64 start_ticks;
	__u64 exit_ns;   /* CLOCK_BOOTTIME */
	__u32 exit_code; /* wait(2) status */
	__u32 tid;       /* the thread whose exit ended the process */
};

/*
 * A TCP-close ring-buffer record. Addresses and ports are the socket's own
 * view: s = local, d = remote. An AF_INET address fills the first 4 bytes (in
 * network order) and the rest is zero; an AF_INET6 socket talking IPv4 has
 * v4-mapped addresses (::ffff:a.b.c.d). A record that kwatch_scan_fired()
 * rebuilt from the map has family 0 and no addresses.
 */
struct zm_tcp_event {
	__u32 kind;      /* ZM_EV_TCP_CLOSE */
	__u16 family;    /* AF_INET or AF_INET6 */
	__u8 old_state;  /* the TCP state it left */
	__u8 how;        /* enum zm_ktcp_how */
	__u64 cookie;    /* socket cookie: the watch's key */
	__u64 close_ns;  /* CLOCK_BOOTTIME */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;     /* host order */
	__u16 dport;     /* host order */
	__s32 sk_err;    /* sk->sk_err at the close: a positive errno, or 0 */
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
	__u64 tcp_closes;  /* TCP sockets that reached TCP_CLOSE */
	__u64 tcp_matched; /* closes of watched sockets */
};

/*
 * Wakeup policy (see bpf/zenmon.bpf.c): a record wakes the agent only if no
 * record woke it in the last interval; the agent, after any drain that found
 * records, re-drains after the same interval until a drain finds none.
 */
#define ZM_DEFAULT_WAKEUP_INTERVAL_NS 200000ULL /* 200 µs */

/*
 * The default ring-buffer size (zenmond --ring-size). 1 MiB lost nothing in
 * ~17M storm exits here, but a mass death of 100,000 watched processes
 * overflowed it (each death's record must wait for the agent): 4 MiB holds
 * about 100,000 exit records. What finds the ring full is not lost, only
 * slower: it is recovered from the watch maps.
 */
#define ZM_RINGBUF_BYTES (4U << 20)
/* A process-exit record's room in the ring: its 8-byte header and the record. */
#define ZM_RINGBUF_PROC_RECORD (8U + (unsigned)sizeof(struct zm_event))

/*
 * Slots of the exit generation array: the program bumps slot
 * (tgid & (ZM_EXIT_GEN_SLOTS - 1)) whenever a process (any, watched or not)
 * finishes exiting, so that the agent can tell, from memory and without a
 * system call, that a process it saw alive has not died since.
 */
#define ZM_EXIT_GEN_SLOTS 65536U

/* Watched-process map capacity. */
#define ZM_MAX_PROC_WATCHES (1U << 20)

/* Watched-socket map capacity. */
#define ZM_MAX_TCP_WATCHES (1U << 20)

#endif /* ZENMON_KERN_H */
