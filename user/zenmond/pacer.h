/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Pacing: a token bucket, and the decision of how many DOWNs one subscriber
 * gets now. Pure: no I/O, no clock reads. Times are uint64_t nanoseconds on
 * one clock the caller chooses (CLOCK_MONOTONIC in the agent) and passes in,
 * so tests inject the clock and never sleep.
 */
#ifndef ZENMOND_PACER_H
#define ZENMOND_PACER_H

#include <stdbool.h>
#include <stdint.h>

#define PACER_NS_PER_S 1000000000ULL

/*
 * A token bucket in integer fixed point: tokens_fp counts tokens times
 * 10^9, so refilling for e ns adds exactly e * rate and no fraction of a
 * token is ever lost or invented, however small the steps. rate is tokens
 * per second; rate 0 means unlimited. Fields are private to pacer.c.
 */
struct token_bucket {
	uint64_t rate;
	uint64_t burst;
	uint64_t tokens_fp;
	uint64_t last_ns;
};

/*
 * Start full (burst tokens) at now_ns. A burst below 1 is read as 1 (a
 * limited bucket must be able to hold the token it hands out); one above
 * UINT64_MAX / 10^9 (about 1.8e10) is clamped to that.
 */
void tb_init(struct token_bucket *tb, uint64_t rate_per_s, uint64_t burst, uint64_t now_ns);

/*
 * Refill up to now_ns and return the whole tokens held (never more than
 * burst); UINT64_MAX when unlimited. A now_ns earlier than a previous one
 * refills nothing (and does not move the bucket's clock back).
 */
uint64_t tb_available(struct token_bucket *tb, uint64_t now_ns);

/*
 * Spend n tokens. n must be at most what tb_available() just returned; more
 * empties the bucket. A no-op when unlimited.
 */
void tb_take(struct token_bucket *tb, uint64_t n);

/*
 * The earliest time >= now_ns at which tb_available() would return at least
 * n: now_ns if it already would, UINT64_MAX if never (n > burst). Exact:
 * one nanosecond earlier it would return less than n. Does not change tb.
 */
uint64_t tb_ready_at(const struct token_bucket *tb, uint64_t n, uint64_t now_ns);

/*
 * What a subscriber asked for (capped by the agent): at most rate DOWNs per
 * second with bursts of burst (rate 0: unlimited, burst then unused), at most
 * max_batch DOWNs per frame (0 is read as 1), and window_ns, how long a DOWN
 * may wait for company (0: never waits for company).
 */
struct pace_limits {
	uint32_t rate;
	uint32_t burst;
	uint32_t max_batch;
	uint64_t window_ns;
};

/* One subscriber's pacing state. Fields are private to pacer.c. */
struct pace_state {
	struct token_bucket tb;
	uint64_t last_send_ns;
	bool sent_before;
};

/* Fresh state at now_ns: bucket full, nothing sent yet (so "idle"). */
void pace_init(struct pace_state *ps, const struct pace_limits *lim, uint64_t now_ns);

/*
 * How many DOWNs to send this subscriber now, as one frame, given `queued`
 * waiting, the oldest enqueued at oldest_ns, and the global bucket (NULL: no
 * global limit). The rule, with W = window_ns, B = max_batch, "own" the
 * whole tokens in the subscriber's bucket and "shared" those in the global:
 *
 *   idle  = nothing ever sent, or the last send was at least W ago
 *   due   = idle, or queued >= B, or the oldest was already queued at the
 *           last send (oldest_ns <= its time: left behind by the batch cap
 *           or the tokens, it has had its wait for company)
 *   want  = min(queued, B, burst of each limited bucket)
 *
 *   not due                                   -> 0    (batch window: wait for company)
 *   due, own >= want, shared >= want          -> want
 *   due, idle, own >= 1, shared >= want       -> own  (a partial batch)
 *   otherwise                                 -> 0    (wait for tokens)
 *
 * So a lone DOWN on an idle subscriber goes at once; under load DOWNs that
 * arrive after a send wait for a full batch or for the end of the window W
 * after that send, so none waits for company longer than W; the tail of a
 * burst (250 DOWNs at once, B = 100) goes at once as 100, 100, 50; and
 * under its own rate limit a subscriber sends as soon as a whole batch
 * (want) is affordable, or else at most W after its previous send with
 * whatever its bucket holds. With a backlog (want = min(B, burst)) that is one frame of
 * about min(want, rate * W) DOWNs every min(W, want / rate): full-ish frames
 * at the full rate, one DOWN per token only when rate * W is about 1 or
 * less, and no DOWN held more than W beyond what the rate itself imposes.
 * want is capped by burst because a full bucket cannot grow: waiting for
 * more than burst tokens would waste the rate.
 *
 * The global budget is shared, so it is only ever taken a whole batch at a
 * time: a subscriber never sends a partial batch because the global bucket
 * ran short, it waits until the global bucket holds its want. Otherwise
 * subscribers queued behind one another would each nibble single tokens as
 * they trickle in, and a flood under a global limit would go out one DOWN
 * per frame. With the dispatcher's round-robin this hands the global budget
 * out in whole batches, in turn. (Small senders need few tokens, so under a
 * budget oversubscribed by many small senders a big backlog gets what they
 * leave; each monitor fires once, so that demand ends.)
 *
 * Returns n in 0..B, never more than queued or the tokens held. On 0,
 * *ret_wake_ns is when to ask again, always > now_ns unless queued is 0:
 * the earliest time the answer can change without anything else changing
 * (UINT64_MAX when queued is 0: ask again when DOWNs arrive). On n > 0 it is
 * now_ns. Because the global bucket is shared, a wake time computed from it
 * is only a lower bound: asking then may wait again. Refills the buckets;
 * the caller spends tokens with pace_sent().
 */
uint32_t pace_decide(struct pace_state *ps, const struct pace_limits *lim,
		     struct token_bucket *global, uint64_t queued, uint64_t oldest_ns,
		     uint64_t now_ns, uint64_t *ret_wake_ns);

/*
 * n DOWNs went at now_ns: spend n tokens from the subscriber's bucket and
 * the global one (may be NULL) and stamp the send. n = 0 is a no-op (a
 * frame that carried nothing does not end the subscriber's idleness).
 */
void pace_sent(struct pace_state *ps, struct token_bucket *global, uint32_t n, uint64_t now_ns);

#endif
