/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Baseline "pidfd": what a careful C programmer writes today to learn of
 * process deaths without an agent. One pidfd_open() per target, all in one
 * epoll set; a pidfd turns readable when its process has exited, and the
 * exit status comes from PIDFD_GET_INFO (Linux 6.15+) where the kernel has
 * it, or is unknown (-1).
 */
#ifndef ZM_BENCH_BASE_PIDFD_H
#define ZM_BENCH_BASE_PIDFD_H

#include <stdint.h>
#include <sys/types.h>

struct pidfd_watcher;

/* Called once per dead target: tag as given to pidfd_watcher_add(),
 * wait_status as waitpid(2) would give it or -1 when unknown, seen_ns the
 * CLOCK_MONOTONIC time the watcher learned of it. The kernel records the
 * status only once the target's parent has reaped it, so a watcher that is
 * not the parent usually gets -1 at readiness. */
typedef void (*pidfd_exit_fn)(uint64_t tag, pid_t pid, int wait_status, uint64_t seen_ns,
			      void *ud);

int pidfd_watcher_new(struct pidfd_watcher **ret);
void pidfd_watcher_free(struct pidfd_watcher *w);  /* closes every pidfd; NULL ok */
/* 0, or -errno (-ESRCH: the process is already gone; -EMFILE: raise the
 * fd limit). */
int pidfd_watcher_add(struct pidfd_watcher *w, pid_t pid, uint64_t tag);
/* Wait up to timeout_ms (-1: forever) for deaths and report each once.
 * The number reported, or -errno. */
int pidfd_watcher_poll(struct pidfd_watcher *w, int timeout_ms, pidfd_exit_fn fn, void *ud);
int pidfd_watcher_fd(const struct pidfd_watcher *w);   /* the epoll fd, for poll() */
size_t pidfd_watcher_count(const struct pidfd_watcher *w);  /* targets still watched */

#endif
