/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The agent's one event loop: an epoll set whose sources are the ring
 * buffer, the listening socket, every client, every timer and the signals.
 * A source is a struct embedded in its owner; the loop calls its function
 * with the ready events. Before each sleep the loop runs the before-sleep
 * hook, which is where queued writes go out (Redis's beforeSleep): replies
 * produced by many events in one pass leave in one write per client.
 */
#ifndef ZENMOND_LOOP_H
#define ZENMOND_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_source;

typedef void (*loop_fn)(struct loop_source *src, uint32_t events);

struct loop_source {
	int fd;
	loop_fn fn;
};

/* NULL on failure (errno set). */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watch src->fd for events (EPOLLIN, EPOLLOUT, ...). 0 or -errno. */
int loop_add(struct loop *l, struct loop_source *src, uint32_t events);
int loop_mod(struct loop *l, struct loop_source *src, uint32_t events);
/* Stop watching; safe to call for a source whose events are pending in the
 * current pass (the loop skips it). 0 or -errno. */
int loop_del(struct loop *l, struct loop_source *src);

void loop_set_before_sleep(struct loop *l, void (*fn)(void *ctx), void *ctx);
/*
 * Called after each pass (the ready events handled and the before-sleep
 * hook run) with the time the pass took, from epoll_wait() returning to
 * the next epoll_wait(), in CLOCK_MONOTONIC ns. For the agent's metrics.
 */
void loop_set_after_pass(struct loop *l, void (*fn)(void *ctx, uint64_t busy_ns), void *ctx);

/* Run until loop_stop(). 0, or -errno if epoll_wait fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
bool loop_stopping(const struct loop *l);

#endif
