/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Baseline "proc connector": what older agents use. A NETLINK_CONNECTOR
 * socket subscribed to cn_proc (PROC_CN_MCAST_LISTEN) receives every
 * process event on the host; the listener keeps the exits of its targets
 * (a hash set of tgids) and counts what the kernel dropped (ENOBUFS on
 * recv: the socket buffer overflowed and events were lost).
 */
#ifndef ZM_BENCH_BASE_CNPROC_H
#define ZM_BENCH_BASE_CNPROC_H

#include <stdint.h>
#include <sys/types.h>

struct cnproc_listener;

/* Called once per dead target (its whole thread group): tag as given to
 * cnproc_listener_add(), the wait status the event carries, and the
 * CLOCK_MONOTONIC time the listener read it. */
typedef void (*cnproc_exit_fn)(uint64_t tag, pid_t pid, int wait_status, uint64_t seen_ns,
			       void *ud);

/* Open and subscribe (needs CAP_NET_ADMIN). rcvbuf 0 keeps the default
 * socket buffer. 0 or -errno. */
int cnproc_listener_new(int rcvbuf, struct cnproc_listener **ret);
void cnproc_listener_free(struct cnproc_listener *l);   /* NULL ok */
int cnproc_listener_add(struct cnproc_listener *l, pid_t pid, uint64_t tag);  /* 0 or -errno */
/* Read what is there (waiting up to timeout_ms, -1 forever) and report the
 * targets' exits. The number reported, or -errno. */
int cnproc_listener_poll(struct cnproc_listener *l, int timeout_ms, cnproc_exit_fn fn, void *ud);
int cnproc_listener_fd(const struct cnproc_listener *l);
uint64_t cnproc_listener_enobufs(const struct cnproc_listener *l); /* recv()s that failed ENOBUFS */
uint64_t cnproc_listener_events(const struct cnproc_listener *l);  /* every event read, any pid */
size_t cnproc_listener_count(const struct cnproc_listener *l);     /* targets not yet seen dead */

#endif
