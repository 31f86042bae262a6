// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* Token buckets and the per-subscriber batch decision: see pacer.h. */
#include "pacer.h"

#define NS PACER_NS_PER_S
#define BURST_MAX (UINT64_MAX / NS)

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Time from then to now; 0 if the clock seems to have gone back. */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/*
 * The fixed-point tokens tb would hold at now_ns. Overflow-free: below the
 * time to fill, elapsed <= ceil(room / rate) - 1 < room / rate, so
 * elapsed * rate < room <= burst * 10^9.
 */
static uint64_t tb_tokens_at(const struct token_bucket *tb, uint64_t now_ns)
{
	uint64_t cap = tb->burst * NS;
	uint64_t room = cap - tb->tokens_fp;
	uint64_t elapsed = since(now_ns, tb->last_ns);
	uint64_t fill_ns = room / tb->rate + (room % tb->rate != 0);

	if (elapsed >= fill_ns)
		return cap;
	return tb->tokens_fp + elapsed * tb->rate;
}

void tb_init(struct token_bucket *tb, uint64_t rate_per_s, uint64_t burst, uint64_t now_ns)
{
	if (burst < 1)
		burst = 1;
	if (burst > BURST_MAX)
		burst = BURST_MAX;
	tb->rate = rate_per_s;
	tb->burst = burst;
	tb->tokens_fp = burst * NS;
	tb->last_ns = now_ns;
}

uint64_t tb_available(struct token_bucket *tb, uint64_t now_ns)
{
	if (tb->rate == 0)
		return UINT64_MAX;
	tb->tokens_fp = tb_tokens_at(tb, now_ns);
	tb->last_ns = max_u64(tb->last_ns, now_ns);
	return tb->tokens_fp / NS;
}

void tb_take(struct token_bucket *tb, uint64_t n)
{
	if (tb->rate == 0)
		return;
	if (n > tb->tokens_fp / NS)
		tb->tokens_fp = 0;
	else
		tb->tokens_fp -= n * NS;
}

uint64_t tb_ready_at(const struct token_bucket *tb, uint64_t n, uint64_t now_ns)
{
	uint64_t have, need;

	if (tb->rate == 0)
		return now_ns;
	if (n > tb->burst)
		return UINT64_MAX;
	have = tb_tokens_at(tb, now_ns);
	if (have >= n * NS)
		return now_ns;
	need = n * NS - have;
	/* Refilling runs from max(last_ns, now_ns), which is now_ns unless the
	 * clock went back; then it starts at last_ns. */
	return add_sat(max_u64(now_ns, tb->last_ns), need / tb->rate + (need % tb->rate != 0));
}

void pace_init(struct pace_state *ps, const struct pace_limits *lim, uint64_t now_ns)
{
	tb_init(&ps->tb, lim->rate, lim->burst, now_ns);
	ps->last_send_ns = 0;
	ps->sent_before = false;
}

uint32_t pace_decide(struct pace_state *ps, const struct pace_limits *lim,
		     struct token_bucket *global, uint64_t queued, uint64_t oldest_ns,
		     uint64_t now_ns, uint64_t *ret_wake_ns)
{
	uint64_t window = lim->window_ns;
	uint64_t batch = lim->max_batch ? lim->max_batch : 1;
	uint64_t window_end = UINT64_MAX;  /* when the subscriber becomes idle */
	uint64_t want, own, shared, own_wake, shared_wake;
	bool idle, due;

	if (queued == 0) {
		*ret_wake_ns = UINT64_MAX;
		return 0;
	}

	if (ps->sent_before)
		window_end = add_sat(ps->last_send_ns, window);
	idle = !ps->sent_before || since(now_ns, ps->last_send_ns) >= window;
	due = idle || queued >= batch || (ps->sent_before && oldest_ns <= ps->last_send_ns);
	if (!due) {
		/* Not idle, so window_end > now_ns; and the oldest came after the
		 * last send, so it has waited less than W at window_end. */
		*ret_wake_ns = window_end;
		return 0;
	}

	want = min_u64(queued, batch);
	if (ps->tb.rate)
		want = min_u64(want, ps->tb.burst);
	if (global && global->rate)
		want = min_u64(want, global->burst);

	own = tb_available(&ps->tb, now_ns);
	shared = global ? tb_available(global, now_ns) : UINT64_MAX;
	if (own >= want && shared >= want) {
		*ret_wake_ns = now_ns;
		return (uint32_t)want;
	}
	if (idle && own >= 1 && shared >= want) {
		*ret_wake_ns = now_ns;
		return (uint32_t)own;        /* own < want here */
	}
	/*
	 * Wait until the global bucket holds a whole batch and the
	 * subscriber's own bucket allows a send: a whole batch, or one token
	 * once the window has ended. This is > now_ns: either the global bucket
	 * is short, or the own bucket is short of a batch and either empty or
	 * not idle (window_end > now_ns).
	 */
	own_wake = min_u64(tb_ready_at(&ps->tb, want, now_ns),
			   max_u64(tb_ready_at(&ps->tb, 1, now_ns), idle ? now_ns : window_end));
	shared_wake = global ? tb_ready_at(global, want, now_ns) : now_ns;
	*ret_wake_ns = max_u64(own_wake, shared_wake);
	return 0;
}

void pace_sent(struct pace_state *ps, struct token_bucket *global, uint32_t n, uint64_t now_ns)
{
	if (n == 0)
		return;
	tb_take(&ps->tb, n);
	if (global)
		tb_take(global, n);
	ps->last_send_ns = now_ns;
	ps->sent_before = true;
}
