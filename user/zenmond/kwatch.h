/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * kwatch: the agent's hold on the kernel side. Loads the BPF object from the
 * embedded skeleton, pins its maps under a directory, attaches the programs
 * (process exit, TCP close), and offers the watched-process and watched-socket
 * maps and the ring buffer to the rest of the agent. It is the only module
 * that talks to libbpf.
 */
#ifndef ZENMOND_KWATCH_H
#define ZENMOND_KWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "zenmon/kern.h"

struct kwatch;

struct kwatch_opts {
	const char *pin_dir;          /* e.g. /sys/fs/bpf/zenmon; created if missing */
	uint64_t wakeup_interval_ns;  /* 0: ZM_DEFAULT_WAKEUP_INTERVAL_NS */
	uint32_t ring_bytes;          /* 0: ZM_RINGBUF_BYTES; else a power of two >= a page */
};

/*
 * Called for each process-exit record, from kwatch_drain() and
 * kwatch_scan_fired(). Returns whether the death was news to the caller: a
 * scan finds the FIRED watches of deaths already handled too (their entries
 * stay until the DOWNs are sent), and counts as recovered only the news.
 */
typedef bool (*kwatch_event_fn)(void *ctx, const struct zm_event *ev);

/*
 * Called for each TCP-close record, from kwatch_drain() and kwatch_scan_fired().
 * A record rebuilt from the map by kwatch_scan_fired() has family 0 and no
 * addresses or ports: the map keeps only what the close decided.
 */
typedef bool (*kwatch_tcp_fn)(void *ctx, const struct zm_tcp_event *ev);

/*
 * Mount bpffs on /sys/fs/bpf if nothing is mounted there, take the pin
 * directory (an flock on it: a second agent on the same directory fails with
 * -EBUSY), load, attach, pin. Maps a previous agent pinned there are reused
 * when their layout fits (their watches, and the exits the kernel recorded
 * while no agent ran, carry over: see kwatch_inherited()), created afresh
 * with a warning when it does not; the previous agent's programs are
 * replaced by ours, attach first, detach after (kwatch.c says why).
 * Logs what went wrong and what to do (not root, no BTF, bpffs missing, ...)
 * and returns -errno.
 */
int kwatch_open(const struct kwatch_opts *opts, kwatch_event_fn on_event, void *ctx,
		struct kwatch **ret);

/* The ring buffer's epoll fd: readable when records wait. */
int kwatch_fd(const struct kwatch *k);

/*
 * Records per kwatch_drain(). A mass death puts tens of thousands in the ring
 * at once; handling them all before any DOWN leaves would make the first
 * subscriber wait for the last death. The loop comes back for the rest
 * after one pass: the ring's fd stays readable while records wait.
 */
#define KWATCH_DRAIN_MAX 4096

/*
 * Consume waiting records, at most KWATCH_DRAIN_MAX, calling on_event for
 * each. Count consumed (KWATCH_DRAIN_MAX: more may wait), -EAGAIN when none
 * was committed but one is still being written, or other -errno.
 */
int kwatch_drain(struct kwatch *k);

/* Arm a watch. 0; -EEXIST if already present (its state is left alone);
 * -E2BIG when the map is full; other -errno. */
int kwatch_add_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks);
/*
 * Disarm a watch, later: the delete waits for kwatch_flush_deletes() (the
 * agent's loop calls it once per pass), which every other call here runs
 * first, so no add, lookup or walk sees a watch deleted here.
 */
void kwatch_del_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks);
/* Read a watch. 0 or -ENOENT. */
/*
 * The exit generation of tgid's slot (ZM_EXIT_GEN_SLOTS): it changes
 * whenever a process of that slot finishes exiting. Read it before checking
 * that a process is alive; the same value later proves it still is.
 */
uint32_t kwatch_exit_gen(const struct kwatch *k, uint32_t tgid);
int kwatch_lookup_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks,
		       struct zm_proc_watch *ret);
/* Number of entries in the watched-process map (walks it: for tests and status). */
long kwatch_count_procs(struct kwatch *k);

/*
 * Where TCP-close records go. Until one is set, such records are dropped with
 * a warning (their watches stay FIRED in the map) and kwatch_scan_fired()
 * leaves the socket map alone. fn NULL unsets.
 */
void kwatch_set_tcp_handler(struct kwatch *k, kwatch_tcp_fn fn, void *ctx);

/*
 * Arm a watch on the TCP socket with this cookie (SO_COOKIE, sock_diag). 0;
 * -EINVAL for cookie 0 (no socket has it); -EEXIST if already present (its
 * state is left alone); -E2BIG when the map is full; other -errno. The
 * caller checks afterwards that the socket is still open: a socket that
 * closed before the watch existed fires nothing.
 */
int kwatch_add_tcp(struct kwatch *k, uint64_t cookie);
/* Disarm a socket watch, later, as kwatch_del_proc(). */
void kwatch_del_tcp(struct kwatch *k, uint64_t cookie);

/*
 * Send the waiting deletes to the kernel, one batch per map. A watch already
 * gone is skipped; any other failure is logged (the watches stay).
 */
void kwatch_flush_deletes(struct kwatch *k);
/* Read a socket watch. 0 or -ENOENT. state is ZM_WATCH_FIRED once it closed;
 * ZM_WATCH_ARMED_RST_SENT counts as armed. */
int kwatch_lookup_tcp(struct kwatch *k, uint64_t cookie, struct zm_tcp_watch *ret);
/* Number of entries in the watched-socket map (walks it: for tests and status). */
long kwatch_count_tcp(struct kwatch *k);

/* Sum the per-CPU counters. 0 or -errno. */
int kwatch_read_stats(struct kwatch *k, struct zm_kstats *ret);

/*
 * Walk the watched-process map and call on_event for each FIRED entry (the
 * exits whose ring-buffer record was dropped, and those handled already),
 * then, if a TCP handler is set, the watched-socket map likewise. The
 * entries stay in the map: the caller deletes them as it handles them.
 * Count of the deaths that were news (both kinds), or -errno.
 */
int kwatch_scan_fired(struct kwatch *k);

/* Records the agent took from the ring buffer and from map scans, by kind. */
struct kwatch_counters {
	uint64_t proc_records;     /* process-exit records read from the ring buffer */
	uint64_t tcp_records;      /* TCP-close records read from the ring buffer */
	uint64_t bad_records;      /* records ignored: short, or of an unknown kind */
	uint64_t proc_recovered;   /* deaths kwatch_scan_fired() found that were news */
	uint64_t tcp_recovered;    /* closes kwatch_scan_fired() found that were news */
};

void kwatch_read_counters(const struct kwatch *k, struct kwatch_counters *ret);

/*
 * Walk the watched-process map (fn gets each key and value) or the
 * watched-socket map (each cookie and value), until fn returns non-zero.
 * An entry deleted during the walk may be missed; the map is read in
 * batches (BPF_MAP_LOOKUP_BATCH), as by kwatch_scan_fired(). 0, fn's
 * non-zero value, or -errno.
 */
int kwatch_foreach_proc(struct kwatch *k,
			int (*fn)(void *ctx, const struct zm_proc_key *key, const struct zm_proc_watch *w),
			void *ctx);
int kwatch_foreach_tcp(struct kwatch *k,
		       int (*fn)(void *ctx, uint64_t cookie, const struct zm_tcp_watch *w), void *ctx);

uint64_t kwatch_wakeup_interval_ns(const struct kwatch *k);
const char *kwatch_pin_dir(const struct kwatch *k);

/* Did kwatch_open() reuse maps a previous agent pinned? Their entries are
 * watches nobody in this agent holds yet (the agent adopts them). */
bool kwatch_inherited(const struct kwatch *k);

/*
 * Release the lock and free, leaving the programs attached and the maps,
 * the ring buffer's unread records included, pinned for the next agent
 * (kwatch_cleanup() removes them). NULL-safe.
 */
void kwatch_close(struct kwatch *k);

/*
 * An agent that failed to start: unpin what kwatch_open() created, unless it
 * took over a previous agent's pins (those stay for the next). Call before
 * kwatch_close(). NULL-safe.
 */
void kwatch_discard(struct kwatch *k);

/*
 * zenmond --cleanup: remove what agents pinned in pin_dir (maps and program
 * links, so the programs detach and the maps are freed) and the directory
 * if that leaves it empty. -EBUSY when a running agent holds it; 0 when
 * there was nothing. Logs what it did or what went wrong.
 */
int kwatch_cleanup(const char *pin_dir);

#endif
