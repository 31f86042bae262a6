// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* The dispatcher: round-robin, paced batches over fake subscribers that count
 * what they are asked, on an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"

#define MS 1000000ULL
#define S  1000000000ULL
#define NEVER UINT64_MAX

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- fake subscribers ------------------------------------------------------ */

#define RUNS 16        /* distinct enqueue times a fake queue can hold */
#define LOG_MAX 64

/* A subscriber: a queue of DOWNs as runs of (enqueue time, count), a socket
 * that takes `room` DOWNs before it is full, and counters. */
struct fsub {
	struct dsub ds;
	uint64_t run_t[RUNS], run_n[RUNS];
	unsigned head, nruns;
	uint64_t queued;
	uint64_t room;              /* NEVER: the socket never fills */
	bool stuck;                 /* writable() says no whatever the room */
	bool refuse;                /* send() takes nothing though writable() says yes */
	uint64_t sent, frames;
	uint64_t first_batch;       /* 1-based number of its first frame overall; 0: none */
	uint64_t calls;             /* ops calls about this subscriber */
};

static struct {
	uint64_t calls;             /* every ops call */
	uint64_t batches;           /* every send() */
	struct fsub *log[LOG_MAX];  /* who got each of the first batches */
} g;

static struct fsub *fs(struct dsub *s)
{
	return container_of(s, struct fsub, ds);
}

static void enqueue(struct fsub *f, uint64_t t, uint64_t n)
{
	unsigned last = (f->head + f->nruns - 1) % RUNS;

	if (f->nruns && f->run_t[last] == t) {
		f->run_n[last] += n;
	} else {
		assert_true(f->nruns < RUNS);
		last = (f->head + f->nruns) % RUNS;
		f->run_t[last] = t;
		f->run_n[last] = n;
		f->nruns++;
	}
	f->queued += n;
}

static uint64_t op_queued(struct dsub *s)
{
	g.calls++;
	fs(s)->calls++;
	return fs(s)->queued;
}

static uint64_t op_oldest_ns(struct dsub *s)
{
	struct fsub *f = fs(s);

	g.calls++;
	f->calls++;
	assert_true(f->nruns > 0);
	return f->run_t[f->head];
}

static bool op_writable(struct dsub *s)
{
	struct fsub *f = fs(s);

	g.calls++;
	f->calls++;
	return !f->stuck && f->room > 0;
}

static uint32_t op_send(struct dsub *s, uint32_t n)
{
	struct fsub *f = fs(s);
	uint64_t take = n, left;

	g.calls++;
	f->calls++;
	assert_true(n >= 1);
	assert_true(n <= f->queued);
	if (f->refuse) {
		g.batches++;
		return 0;
	}
	if (take > f->room)
		take = f->room;
	if (f->room != NEVER)
		f->room -= take;
	for (left = take; left; ) {
		uint64_t k = f->run_n[f->head] < left ? f->run_n[f->head] : left;

		f->run_n[f->head] -= k;
		left -= k;
		if (f->run_n[f->head] == 0) {
			f->head = (f->head + 1) % RUNS;
			f->nruns--;
		}
	}
	f->queued -= take;
	f->sent += take;
	f->frames++;
	if (g.batches < LOG_MAX)
		g.log[g.batches] = f;
	g.batches++;
	if (!f->first_batch)
		f->first_batch = g.batches;
	return (uint32_t)take;
}

static const struct dispatch_ops ops = {
	.queued = op_queued,
	.oldest_ns = op_oldest_ns,
	.writable = op_writable,
	.send = op_send,
};

static const struct pace_limits unlimited = {
	.rate = 0, .burst = 0, .max_batch = 100, .window_ns = 10 * MS,
};

static void fsub_init(struct fsub *f)
{
	memset(f, 0, sizeof(*f));
	f->room = NEVER;
}

static void fixture_reset(struct dispatcher *d, uint64_t global_rate, uint64_t global_burst)
{
	memset(&g, 0, sizeof(g));
	dispatch_init(d, &ops, global_rate, global_burst, 0);
}

/* A subscriber added at `now` with lim, holding n DOWNs enqueued then, woken. */
static void add_busy(struct dispatcher *d, struct fsub *f, const struct pace_limits *lim,
		     uint64_t n, uint64_t now)
{
	fsub_init(f);
	dispatch_add(d, &f->ds, lim, now);
	if (n) {
		enqueue(f, now, n);
		dispatch_wake(d, &f->ds);
	}
}

/* The agent's loop: run when told, from `from` until `until`. */
static void drive(struct dispatcher *d, uint64_t from, uint64_t until, unsigned max_batches)
{
	uint64_t now = from;

	for (;;) {
		uint64_t next = dispatch_run(d, now, max_batches);

		if (next == NEVER || next > until)
			return;
		assert_true(next >= now);
		now = next;
	}
}

/* ---- tests ---------------------------------------------------------------- */

static void test_empty_dispatcher_never_needs_to_run(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	assert_true(dispatch_run(&d, 0, 100) == NEVER);
	add_busy(&d, &a, &unlimited, 0, 0);             /* added, never woken */
	assert_true(dispatch_run(&d, 0, 100) == NEVER);
	assert_int_equal(g.calls, 0);
}

static void test_lone_down_goes_in_the_first_run(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1, 5 * MS);
	assert_true(dispatch_run(&d, 5 * MS, 100) == NEVER);
	assert_int_equal(a.sent, 1);
	assert_int_equal(a.frames, 1);
}

static void test_woken_subscriber_with_nothing_queued_leaves_the_ring(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 0, 0);
	dispatch_wake(&d, &a.ds);
	assert_true(dispatch_run(&d, 0, 100) == NEVER);
	g.calls = 0;
	assert_true(dispatch_run(&d, 1 * MS, 100) == NEVER);
	assert_int_equal(g.calls, 0);
}

static void test_single_down_goes_within_two_batches_of_a_flood(void **state)
{
	struct dispatcher d;
	struct fsub a, b;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1000000, 0);
	add_busy(&d, &b, &unlimited, 1, 0);
	assert_true(dispatch_run(&d, 0, 2) == 0);
	assert_int_equal(b.sent, 1);
	assert_true(b.first_batch <= 2);
	assert_int_equal(a.sent, 100);
}

static void test_down_arriving_mid_flood_waits_one_batch_per_busy_subscriber(void **state)
{
	struct dispatcher d;
	struct fsub a, b, c;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1000000, 0);
	add_busy(&d, &b, &unlimited, 1000000, 0);
	assert_true(dispatch_run(&d, 0, 5) == 0);        /* the flood is under way */
	add_busy(&d, &c, &unlimited, 1, 0);
	assert_true(dispatch_run(&d, 0, 3) == 0);
	assert_int_equal(c.sent, 1);
	assert_true(c.first_batch <= 5 + 3);
}

static void test_round_robin_resumes_where_the_last_run_stopped(void **state)
{
	struct dispatcher d;
	struct fsub a, b, c;
	int i;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1000000, 0);
	add_busy(&d, &b, &unlimited, 1000000, 0);
	add_busy(&d, &c, &unlimited, 1000000, 0);
	for (i = 0; i < 7; i++)
		assert_true(dispatch_run(&d, 0, 1) == 0);    /* one batch per call */
	assert_ptr_equal(g.log[0], &a);
	assert_ptr_equal(g.log[1], &b);
	assert_ptr_equal(g.log[2], &c);
	assert_ptr_equal(g.log[3], &a);
	assert_ptr_equal(g.log[4], &b);
	assert_ptr_equal(g.log[5], &c);
	assert_ptr_equal(g.log[6], &a);
}

static void test_max_batches_cap_returns_now(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1000000, 7);
	assert_int_equal(dispatch_run(&d, 7, 3), 7);
	assert_int_equal(a.frames, 3);
	assert_int_equal(a.sent, 300);
	assert_int_equal(dispatch_run(&d, 7, 0), 7);     /* no batch at all: still now */
	assert_int_equal(a.frames, 3);
}

static void test_run_drains_everything_it_may_send_now(void **state)
{
	struct dispatcher d;
	struct fsub a, b;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 250, 0);
	add_busy(&d, &b, &unlimited, 30, 0);
	assert_true(dispatch_run(&d, 0, 1000) == NEVER);
	assert_int_equal(a.sent, 250);
	assert_int_equal(a.frames, 3);                   /* 100, 100, then the 50 left */
	assert_int_equal(b.sent, 30);
	assert_int_equal(b.frames, 1);
}

static void test_unwritable_subscriber_is_skipped_and_others_flow(void **state)
{
	struct dispatcher d;
	struct fsub a, b;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 10, 0);
	add_busy(&d, &b, &unlimited, 10, 0);
	a.stuck = true;
	assert_true(dispatch_run(&d, 0, 100) == NEVER);
	assert_int_equal(a.sent, 0);
	assert_int_equal(b.sent, 10);
	/* Out of the ring: later runs do not ask about it again. */
	a.calls = 0;
	enqueue(&b, 1 * S, 1);
	dispatch_wake(&d, &b.ds);
	assert_true(dispatch_run(&d, 1 * S, 100) == NEVER);
	assert_int_equal(b.sent, 11);
	assert_int_equal(a.calls, 0);
}

static void test_waking_unwritable_subscriber_resumes_it(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 10, 0);
	a.stuck = true;
	assert_true(dispatch_run(&d, 0, 100) == NEVER);
	a.stuck = false;
	dispatch_wake(&d, &a.ds);
	assert_true(dispatch_run(&d, 1 * MS, 100) == NEVER);
	assert_int_equal(a.sent, 10);
}

static void test_socket_filling_mid_flood_parks_subscriber_until_woken(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1000, 0);
	a.room = 150;                                    /* 100, then 50 of 100, then full */
	assert_true(dispatch_run(&d, 0, 100) == NEVER);
	assert_int_equal(a.sent, 150);
	assert_int_equal(a.frames, 2);
	a.room = NEVER;
	dispatch_wake(&d, &a.ds);
	assert_true(dispatch_run(&d, 0, 100) == NEVER);
	assert_int_equal(a.sent, 1000);
}

static void test_send_that_moves_nothing_parks_subscriber(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 10, 0);
	a.refuse = true;                                 /* writable, yet takes nothing */
	assert_true(dispatch_run(&d, 0, 1000) == NEVER);
	assert_int_equal(g.batches, 1);                  /* tried once, did not spin */
	/* An empty send is not a send: still idle, its DOWNs go at once, not
	 * at the end of a window. */
	a.refuse = false;
	dispatch_wake(&d, &a.ds);
	assert_true(dispatch_run(&d, 1 * MS, 1000) == NEVER);
	assert_int_equal(a.sent, 10);
}

static void test_remove_cursor_while_in_ring(void **state)
{
	struct dispatcher d;
	struct fsub a, b, c;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1000, 0);
	add_busy(&d, &b, &unlimited, 1000, 0);
	add_busy(&d, &c, &unlimited, 1000, 0);
	assert_true(dispatch_run(&d, 0, 1) == 0);        /* a went; b is next */
	dispatch_remove(&d, &b.ds);
	b.calls = 0;
	assert_true(dispatch_run(&d, 0, 1000) == NEVER);
	assert_int_equal(a.sent, 1000);
	assert_int_equal(c.sent, 1000);
	assert_int_equal(b.sent, 0);
	assert_int_equal(b.calls, 0);
	assert_ptr_equal(g.log[1], &c);                  /* c took b's turn */
}

static void test_remove_other_while_in_ring(void **state)
{
	struct dispatcher d;
	struct fsub a, b, c;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1000, 0);
	add_busy(&d, &b, &unlimited, 1000, 0);
	add_busy(&d, &c, &unlimited, 1000, 0);
	assert_true(dispatch_run(&d, 0, 1) == 0);
	dispatch_remove(&d, &c.ds);
	dispatch_remove(&d, &a.ds);
	assert_true(dispatch_run(&d, 0, 1000) == NEVER);
	assert_int_equal(a.sent, 100);
	assert_int_equal(b.sent, 1000);
	assert_int_equal(c.sent, 0);
}

static void test_remove_last_in_ring_empties_it(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 1000, 0);
	dispatch_remove(&d, &a.ds);
	assert_true(dispatch_run(&d, 0, 1000) == NEVER);
	assert_int_equal(g.calls, 0);
}

/* a sent one DOWN at 0 and holds a second, enqueued at t, waiting for its
 * window (which ends at lim->window_ns). */
static void make_waiting(struct dispatcher *d, struct fsub *f, const struct pace_limits *lim,
			 uint64_t t)
{
	add_busy(d, f, lim, 1, 0);
	(void)dispatch_run(d, 0, UINT_MAX);
	assert_int_equal(f->sent, 1);
	enqueue(f, t, 1);
	dispatch_wake(d, &f->ds);
	(void)dispatch_run(d, t, 1000);
	assert_int_equal(f->sent, 1);
}

static void test_remove_while_waiting(void **state)
{
	struct pace_limits w10 = unlimited, w20 = unlimited;
	struct dispatcher d;
	struct fsub a, b;

	(void)state;
	w20.window_ns = 20 * MS;
	fixture_reset(&d, 0, 0);
	make_waiting(&d, &a, &w10, 1 * MS);
	make_waiting(&d, &b, &w20, 1 * MS);
	assert_int_equal(dispatch_run(&d, 1 * MS, 1000), 10 * MS);
	dispatch_remove(&d, &a.ds);
	assert_int_equal(dispatch_run(&d, 1 * MS, 1000), 20 * MS);
	a.calls = 0;
	assert_int_equal(dispatch_run(&d, 10 * MS, 1000), 20 * MS);
	assert_int_equal(a.calls, 0);
	assert_true(dispatch_run(&d, 20 * MS, 1000) == NEVER);
	assert_int_equal(b.sent, 2);
	assert_int_equal(a.sent, 1);
}

static void test_second_down_goes_when_its_window_ends(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	make_waiting(&d, &a, &unlimited, 1 * MS);
	assert_int_equal(dispatch_run(&d, 1 * MS, 1000), 10 * MS);
	assert_int_equal(dispatch_run(&d, 10 * MS - 1, 1000), 10 * MS);
	assert_int_equal(a.sent, 1);
	assert_true(dispatch_run(&d, 10 * MS, 1000) == NEVER);
	assert_int_equal(a.sent, 2);
}

static void test_filling_a_batch_while_waiting_sends_it_at_once(void **state)
{
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	make_waiting(&d, &a, &unlimited, 1 * MS);
	enqueue(&a, 2 * MS, 99);                         /* now 100: a full batch */
	dispatch_wake(&d, &a.ds);
	assert_true(dispatch_run(&d, 2 * MS, 1000) == NEVER);
	assert_int_equal(a.sent, 101);
}

static void test_wake_time_returned_is_the_true_earliest(void **state)
{
	enum { N = 300 };
	static struct fsub subs[N];
	static uint64_t due[N];
	static bool removed[N];
	struct dispatcher d;
	uint64_t now = 1 * MS, next, expect;
	unsigned i, rounds = 0;

	(void)state;
	fixture_reset(&d, 0, 0);
	srand(4);
	/* Each sends a first DOWN at 0, then holds a second until its own
	 * window ends: a random time, many of them equal. */
	for (i = 0; i < N; i++) {
		struct pace_limits lim = unlimited;

		lim.window_ns = (2 + (uint64_t)(rand() % 500)) * MS;
		due[i] = lim.window_ns;
		make_waiting(&d, &subs[i], &lim, 1 * MS);
	}
	/* Forget a third of them, wherever they sit in the heap. */
	for (i = 0; i < N; i++) {
		removed[i] = i % 3 == 0;
		if (removed[i])
			dispatch_remove(&d, &subs[i].ds);
	}
	for (;;) {
		next = dispatch_run(&d, now, 1000);
		expect = NEVER;
		for (i = 0; i < N; i++)
			if (!removed[i] && due[i] > now && due[i] < expect)
				expect = due[i];
		assert_int_equal(next, expect);
		if (next == NEVER)
			break;
		now = next;
		(void)dispatch_run(&d, now, 1000);
		for (i = 0; i < N; i++)
			assert_int_equal(subs[i].sent, !removed[i] && due[i] <= now ? 2 : 1);
		rounds++;
	}
	assert_true(rounds > 100);                      /* many distinct times */
}

static void test_idle_subscribers_are_not_visited(void **state)
{
	enum { N = 10000 };
	struct fsub *subs = calloc(N, sizeof(*subs));
	struct dispatcher d;
	struct fsub busy;
	unsigned i;

	(void)state;
	assert_non_null(subs);
	fixture_reset(&d, 0, 0);
	/* Each got a DOWN once and sent it: idle now, nothing queued. */
	for (i = 0; i < N; i++)
		add_busy(&d, &subs[i], &unlimited, 1, 0);
	assert_true(dispatch_run(&d, 0, UINT_MAX) == NEVER);
	add_busy(&d, &busy, &unlimited, 1000000, 1 * S);
	g.calls = 0;
	assert_int_equal(dispatch_run(&d, 1 * S, 100), 1 * S);
	assert_int_equal(busy.frames, 100);
	/* writable, queued, oldest, send: four calls per batch, nothing else. */
	assert_int_equal(g.calls, 4 * 100);
	for (i = 0; i < N; i++)
		assert_int_equal(subs[i].calls, 4 + 2);       /* its first run only */
	free(subs);
}

static void test_waiting_subscribers_are_not_visited_before_their_time(void **state)
{
	enum { N = 10000 };
	struct fsub *subs = calloc(N, sizeof(*subs));
	struct dispatcher d;
	struct fsub busy;
	unsigned i;

	(void)state;
	assert_non_null(subs);
	fixture_reset(&d, 0, 0);
	/* Each sent a DOWN at 0 and holds a second until its window ends at 10 ms. */
	for (i = 0; i < N; i++)
		add_busy(&d, &subs[i], &unlimited, 1, 0);
	assert_true(dispatch_run(&d, 0, UINT_MAX) == NEVER);
	for (i = 0; i < N; i++) {
		enqueue(&subs[i], 1 * MS, 1);
		dispatch_wake(&d, &subs[i].ds);
	}
	assert_int_equal(dispatch_run(&d, 1 * MS, N), 10 * MS);
	add_busy(&d, &busy, &unlimited, 1000000, 2 * MS);
	g.calls = 0;
	assert_int_equal(dispatch_run(&d, 2 * MS, 100), 2 * MS);
	assert_int_equal(g.calls, 4 * 100);
	/* Their time comes: each is visited and sends. */
	(void)dispatch_run(&d, 10 * MS, 2 * N);
	for (i = 0; i < N; i++)
		assert_int_equal(subs[i].sent, 2);
	free(subs);
}

static void test_rate_limit_holds_over_ten_seconds(void **state)
{
	/* 2,000/s, burst 200, batches of 100: 20,000 in 10 s, plus the burst. */
	struct pace_limits lim = { .rate = 2000, .burst = 200, .max_batch = 100, .window_ns = 10 * MS };
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &lim, 1000000, 0);
	drive(&d, 0, 10 * S, 64);
	assert_in_range(a.sent, 2000 * 10, 2000 * 10 + 200);
	assert_true(a.sent / a.frames >= 19);            /* frames of rate * window */
}

static void test_global_budget_caps_the_sum_of_three_subscribers(void **state)
{
	struct dispatcher d;
	struct fsub a, b, c;
	uint64_t sum;

	(void)state;
	fixture_reset(&d, 3000, 300);                    /* 3,000/s for everyone */
	add_busy(&d, &a, &unlimited, 1000000, 0);
	add_busy(&d, &b, &unlimited, 1000000, 0);
	add_busy(&d, &c, &unlimited, 1000000, 0);
	drive(&d, 0, 10 * S, 64);
	sum = a.sent + b.sent + c.sent;
	assert_in_range(sum, 3000 * 10, 3000 * 10 + 300);
	/* Shared in turn, in whole batches. */
	assert_in_range(a.sent, sum / 3 - 100, sum / 3 + 100);
	assert_in_range(b.sent, sum / 3 - 100, sum / 3 + 100);
	assert_in_range(c.sent, sum / 3 - 100, sum / 3 + 100);
	assert_int_equal(sum / (a.frames + b.frames + c.frames), 100);
}

static void test_global_budget_still_lets_a_lone_down_through_soon(void **state)
{
	struct dispatcher d;
	struct fsub a, b;

	(void)state;
	fixture_reset(&d, 3000, 300);
	add_busy(&d, &a, &unlimited, 1000000, 0);
	drive(&d, 0, 1 * S, 64);                         /* the budget is spent */
	add_busy(&d, &b, &unlimited, 1, 1 * S);
	/* b needs one token, not a's batch of 100: it is in within 1/3000 s. */
	drive(&d, 1 * S, 1 * S + 334000, 64);
	assert_int_equal(b.sent, 1);
}

static void test_new_limits_apply_from_the_next_turn(void **state)
{
	struct pace_limits slow = { .rate = 10, .burst = 1, .max_batch = 100, .window_ns = 10 * MS };
	struct dispatcher d;
	struct fsub a;

	(void)state;
	fixture_reset(&d, 0, 0);
	add_busy(&d, &a, &unlimited, 0, 0);
	dispatch_set_limits(&d, &a.ds, &slow, 0);
	enqueue(&a, 0, 5);
	dispatch_wake(&d, &a.ds);
	assert_int_equal(dispatch_run(&d, 0, 100), 100 * MS);   /* one now, the next in 100 ms */
	assert_int_equal(a.sent, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_dispatcher_never_needs_to_run),
		cmocka_unit_test(test_lone_down_goes_in_the_first_run),
		cmocka_unit_test(test_woken_subscriber_with_nothing_queued_leaves_the_ring),
		cmocka_unit_test(test_single_down_goes_within_two_batches_of_a_flood),
		cmocka_unit_test(test_down_arriving_mid_flood_waits_one_batch_per_busy_subscriber),
		cmocka_unit_test(test_round_robin_resumes_where_the_last_run_stopped),
		cmocka_unit_test(test_max_batches_cap_returns_now),
		cmocka_unit_test(test_run_drains_everything_it_may_send_now),
		cmocka_unit_test(test_unwritable_subscriber_is_skipped_and_others_flow),
		cmocka_unit_test(test_waking_unwritable_subscriber_resumes_it),
		cmocka_unit_test(test_socket_filling_mid_flood_parks_subscriber_until_woken),
		cmocka_unit_test(test_send_that_moves_nothing_parks_subscriber),
		cmocka_unit_test(test_remove_cursor_while_in_ring),
		cmocka_unit_test(test_remove_other_while_in_ring),
		cmocka_unit_test(test_remove_last_in_ring_empties_it),
		cmocka_unit_test(test_remove_while_waiting),
		cmocka_unit_test(test_second_down_goes_when_its_window_ends),
		cmocka_unit_test(test_filling_a_batch_while_waiting_sends_it_at_once),
		cmocka_unit_test(test_wake_time_returned_is_the_true_earliest),
		cmocka_unit_test(test_idle_subscribers_are_not_visited),
		cmocka_unit_test(test_waiting_subscribers_are_not_visited_before_their_time),
		cmocka_unit_test(test_rate_limit_holds_over_ten_seconds),
		cmocka_unit_test(test_global_budget_caps_the_sum_of_three_subscribers),
		cmocka_unit_test(test_global_budget_still_lets_a_lone_down_through_soon),
		cmocka_unit_test(test_new_limits_apply_from_the_next_turn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
