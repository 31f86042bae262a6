/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The dispatcher: which subscriber gets the next batch of DOWNs. Subscribers
 * with something to send now sit in a ring served round-robin, one batch
 * (pace_decide(), one frame) per subscriber per turn, so a subscriber with a
 * million queued DOWNs delays another's single DOWN by at most one batch per
 * other busy subscriber. A subscriber that must wait (batch window, tokens)
 * leaves the ring for a min-heap keyed on its wake time; one with nothing to
 * do (empty queue, full socket) leaves both until dispatch_wake(). So a run
 * costs O(batches sent + subscribers visited + due wake-ups x log waiting),
 * never O(all subscribers) when most are idle.
 *
 * Generic over the agent's subscriber type: a struct dsub is embedded in it
 * and the ops reach the rest with container_of. Pure: no I/O, no clock, no
 * allocation; times are nanoseconds passed in by the caller.
 */
#ifndef ZENMOND_DISPATCH_H
#define ZENMOND_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "pacer.h"

/*
 * Embedded in the agent's subscriber. lim is what dispatch_add() (or
 * dispatch_set_limits()) was given; the rest is private to dispatch.c.
 */
struct dsub {
	struct pace_state ps;
	struct pace_limits lim;
	struct dsub *next, *prev;           /* the ring, when linked */
	bool linked;
	uint64_t wake_ns;                   /* heap key, when heaped */
	uint64_t h_seq;                     /* ties on wake_ns: first in, first out */
	bool heaped;
	struct dsub *h_child, *h_next, *h_prev;   /* pairing heap */
};

/*
 * How the dispatcher sees a subscriber. Called only from dispatch_run(),
 * each at most once per visit; they must not call back into the dispatcher.
 */
struct dispatch_ops {
	uint64_t (*queued)(struct dsub *s);          /* DOWNs waiting */
	uint64_t (*oldest_ns)(struct dsub *s);       /* enqueue time of the oldest waiting */
	bool (*writable)(struct dsub *s);            /* its socket can take a batch now */
	/* Send up to n (>= 1) DOWNs, oldest first, as one frame; return how many
	 * went (0..n). Fewer than n means the socket is full: the caller arms
	 * writability and calls dispatch_wake() when it clears. */
	uint32_t (*send)(struct dsub *s, uint32_t n);
};

/* Fields are private to dispatch.c. */
struct dispatcher {
	const struct dispatch_ops *ops;
	struct dsub *cursor;                /* the ring's next to serve; NULL: empty */
	struct dsub *heap;                  /* root of the waiting subscribers */
	uint64_t heap_seq;                  /* insertions so far */
	struct token_bucket global;
	bool global_limited;
};

/*
 * An empty dispatcher. global_rate DOWNs per second with bursts of
 * global_burst is the budget all subscribers share; global_rate 0: none.
 */
void dispatch_init(struct dispatcher *d, const struct dispatch_ops *ops,
		   uint64_t global_rate, uint64_t global_burst, uint64_t now_ns);

/*
 * A new global budget (a reload): the shared bucket restarts full with the
 * new rate and burst; rate 0 lifts the limit. Subscribers keep their places.
 */
void dispatch_set_global(struct dispatcher *d, uint64_t global_rate, uint64_t global_burst,
			 uint64_t now_ns);

/*
 * A new subscriber with these limits (copied), fresh pacing state (idle,
 * bucket full), not in the ring: call dispatch_wake() once it has DOWNs.
 */
void dispatch_add(struct dispatcher *d, struct dsub *s, const struct pace_limits *lim,
		  uint64_t now_ns);

/*
 * New limits for s (a HELLO after the defaults): its bucket restarts full
 * with the new rate and burst; its place in the ring or heap is kept, and
 * the new limits apply from its next turn (dispatch_wake() to make that now).
 */
void dispatch_set_limits(struct dispatcher *d, struct dsub *s, const struct pace_limits *lim,
			 uint64_t now_ns);

/* Forget s, wherever it is; safe for one never woken. s may then be freed. */
void dispatch_remove(struct dispatcher *d, struct dsub *s);

/*
 * s got DOWNs, became writable, or otherwise may have something to do: put it
 * in the ring (at the end of the current round) if it is not there. O(1) when
 * it already is or was idle; O(log waiting) when it was waiting.
 */
void dispatch_wake(struct dispatcher *d, struct dsub *s);

/*
 * Serve the ring at now_ns: move the waiting subscribers whose wake time has
 * come into it, then visit it round-robin from where the previous run
 * stopped. A visit to s:
 *   not writable          -> s leaves the ring until dispatch_wake()
 *   nothing queued        -> s leaves the ring until dispatch_wake()
 *   pace_decide() says 0  -> s waits in the heap until its wake time
 *                            (or leaves, if that is never)
 *   n > 0                 -> send(s, n), one batch; s stays for another turn;
 *                            if it sent nothing, s leaves until dispatch_wake()
 * Stops when the ring is empty (a full round sent nothing) or after
 * max_batches sends. Returns when to run again: now_ns if it stopped with the
 * ring non-empty (let the loop breathe, then call again), else the earliest
 * wake time of the waiting subscribers, UINT64_MAX if none.
 */
uint64_t dispatch_run(struct dispatcher *d, uint64_t now_ns, unsigned max_batches);

#endif
