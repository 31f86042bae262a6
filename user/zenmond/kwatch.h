/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * kwatch: the agent's hold on the kernel side. Loads the BPF object from the
 * embedded skeleton, pins its maps under a directory, attaches the exit
 * program, and offers the watched-process map and the ring buffer to the rest
 * of the agent. It is the only module that talks to libbpf.
 */
#ifndef ZENMOND_KWATCH_H
#define ZENMOND_KWATCH_H

#include <stdint.h>

#include "zenmon/kern.h"

struct kwatch;

struct kwatch_opts {
	const char *pin_dir;          /* e.g. /sys/fs/bpf/zenmon; created if missing */
	uint64_t wakeup_interval_ns;  /* 0: ZM_DEFAULT_WAKEUP_INTERVAL_NS */
};

/* Called for each process-exit record, from kwatch_drain() and kwatch_scan_fired(). */
typedef void (*kwatch_event_fn)(void *ctx, const struct zm_event *ev);

/*
 * Mount bpffs on /sys/fs/bpf if nothing is mounted there, take the pin
 * directory (an flock on it: a second agent on the same directory fails with
 * -EBUSY), remove pins a dead agent left, load, pin, attach.
 * Logs what went wrong and what to do (not root, no BTF, bpffs missing, ...)
 * and returns -errno.
 */
int kwatch_open(const struct kwatch_opts *opts, kwatch_event_fn on_event, void *ctx,
		struct kwatch **ret);

/* The ring buffer's epoll fd: readable when records wait. */
int kwatch_fd(const struct kwatch *k);

/* Consume every waiting record (calling on_event). Count consumed or -errno. */
int kwatch_drain(struct kwatch *k);

/* Arm a watch. 0; -EEXIST if already present (its state is left alone);
 * -E2BIG when the map is full; other -errno. */
int kwatch_add_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks);
/* Disarm a watch. 0 or -ENOENT. */
int kwatch_del_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks);
/* Read a watch. 0 or -ENOENT. */
int kwatch_lookup_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks,
		       struct zm_proc_watch *ret);
/* Number of entries in the watched-process map (walks it: for tests and status). */
long kwatch_count_procs(struct kwatch *k);

/* Sum the per-CPU counters. 0 or -errno. */
int kwatch_read_stats(struct kwatch *k, struct zm_kstats *ret);

/*
 * Walk the watched-process map and call on_event for each FIRED entry (the
 * exits whose ring-buffer record was dropped). The entries stay in the map:
 * the caller deletes them as it handles them. Count found or -errno.
 */
int kwatch_scan_fired(struct kwatch *k);

uint64_t kwatch_wakeup_interval_ns(const struct kwatch *k);
const char *kwatch_pin_dir(const struct kwatch *k);

/* Drain what is left, detach, remove the pins and the directory if empty,
 * release the lock, free. NULL-safe. */
void kwatch_close(struct kwatch *k);

#endif
