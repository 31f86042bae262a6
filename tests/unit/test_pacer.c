// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* The token bucket and the per-subscriber batch decision, on an injected
 * clock: no test sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pacer.h"

#define MS 1000000ULL
#define S  1000000000ULL

/* ---- token bucket ------------------------------------------------------- */

static void test_bucket_starts_full(void **state)
{
	struct token_bucket tb;

	(void)state;
	tb_init(&tb, 100, 40, 5 * S);
	assert_int_equal(tb_available(&tb, 5 * S), 40);
}

static void test_bucket_refills_at_rate(void **state)
{
	struct token_bucket tb;

	(void)state;
	tb_init(&tb, 100, 1000, 0);
	assert_int_equal(tb_available(&tb, 0), 1000);
	tb_take(&tb, 1000);
	assert_int_equal(tb_available(&tb, 0), 0);
	assert_int_equal(tb_available(&tb, 10 * MS - 1), 0);   /* one token per 10 ms */
	assert_int_equal(tb_available(&tb, 10 * MS), 1);
	assert_int_equal(tb_available(&tb, 1 * S), 100);
	assert_int_equal(tb_available(&tb, 3 * S + 5 * MS), 300);
}

static void test_bucket_never_exceeds_burst(void **state)
{
	struct token_bucket tb;

	(void)state;
	tb_init(&tb, 1000, 50, 0);
	tb_take(&tb, 50);
	assert_int_equal(tb_available(&tb, 3600 * S), 50);
	assert_int_equal(tb_available(&tb, UINT64_MAX), 50);   /* no overflow either */
	tb_take(&tb, 20);
	assert_int_equal(tb_available(&tb, UINT64_MAX), 30);
}

static void test_bucket_with_rate_zero_is_unlimited(void **state)
{
	struct token_bucket tb;

	(void)state;
	tb_init(&tb, 0, 10, 0);
	assert_true(tb_available(&tb, 0) == UINT64_MAX);
	tb_take(&tb, 1000000);
	assert_true(tb_available(&tb, 0) == UINT64_MAX);
	assert_int_equal(tb_ready_at(&tb, 1000000, 7), 7);
}

static void test_bucket_burst_zero_reads_as_one(void **state)
{
	struct token_bucket tb;

	(void)state;
	tb_init(&tb, 10, 0, 0);
	assert_int_equal(tb_available(&tb, 0), 1);
	tb_take(&tb, 1);
	assert_int_equal(tb_available(&tb, 100 * MS), 1);
	assert_int_equal(tb_available(&tb, 10 * S), 1);
}

static void test_ready_at_is_exact(void **state)
{
	struct token_bucket tb, probe;
	uint64_t t;

	(void)state;
	tb_init(&tb, 3, 10, 0);                     /* 1/3 s per token: not a whole ns */
	tb_take(&tb, 10);
	assert_int_equal(tb_available(&tb, 1 * MS), 0);
	t = tb_ready_at(&tb, 4, 1 * MS);
	assert_int_equal(t, 1333333334);             /* ceil(4e9 / 3) */
	probe = tb;
	assert_int_equal(tb_available(&probe, t - 1), 3);
	probe = tb;
	assert_int_equal(tb_available(&probe, t), 4);
	assert_int_equal(tb_ready_at(&tb, 0, 1 * MS), 1 * MS);
	assert_int_equal(tb_ready_at(&tb, 4, t + 5), t + 5);   /* already there: now */
	assert_true(tb_ready_at(&tb, 11, 1 * MS) == UINT64_MAX);  /* over burst: never */
}

static void test_ready_at_does_not_change_the_bucket(void **state)
{
	struct token_bucket tb, before;

	(void)state;
	tb_init(&tb, 7, 10, 0);
	tb_take(&tb, 10);
	before = tb;
	(void)tb_ready_at(&tb, 5, 2 * S);
	assert_memory_equal(&tb, &before, sizeof(tb));
}

static void test_bucket_does_not_drift_over_a_million_small_steps(void **state)
{
	struct token_bucket tb;
	uint64_t now = 0, got = 0, i;

	(void)state;
	/* 7 tokens/s in steps of 1,337 ns: each step adds 9,359 fp units, a
	 * tiny fraction of a token, which floating point or per-step rounding
	 * would lose or inflate. */
	tb_init(&tb, 7, 1000000, 0);
	tb_take(&tb, 1000000);
	for (i = 0; i < 1000000; i++) {
		uint64_t a;

		now += 1337;
		a = tb_available(&tb, now);
		tb_take(&tb, a);
		got += a;
	}
	/* Exactly floor(7 * 1.337 s) = 9 tokens, to the unit. */
	assert_int_equal(now, 1337000000ULL);
	assert_int_equal(got, 9);
	assert_int_equal(tb.tokens_fp, 7 * 1337000000ULL - 9 * S);
}

static void test_clock_going_back_refills_nothing(void **state)
{
	struct token_bucket tb;

	(void)state;
	tb_init(&tb, 10, 10, 5 * S);
	tb_take(&tb, 10);
	assert_int_equal(tb_available(&tb, 1 * S), 0);
	assert_int_equal(tb_available(&tb, 5 * S + 100 * MS), 1);   /* from 5 s, not 1 s */
}

/* ---- pace_decide --------------------------------------------------------- */

static const struct pace_limits unlimited_10ms = {
	.rate = 0, .burst = 0, .max_batch = 100, .window_ns = 10 * MS,
};

static void test_nothing_queued_sends_nothing_and_never_wakes(void **state)
{
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &unlimited_10ms, 0);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 0, 0, 0, &wake), 0);
	assert_true(wake == UINT64_MAX);
}

static void test_lone_down_on_idle_subscriber_goes_at_once(void **state)
{
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &unlimited_10ms, 0);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 1, 3 * S, 3 * S, &wake), 1);
	assert_int_equal(wake, 3 * S);
	pace_sent(&ps, NULL, 1, 3 * S);
	/* Idle again once a window has passed since that send. */
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 1, 4 * S, 4 * S, &wake), 1);
}

static void test_second_down_within_window_waits_until_window_elapses(void **state)
{
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &unlimited_10ms, 0);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 1, 0, 0, &wake), 1);
	pace_sent(&ps, NULL, 1, 0);
	/* A second DOWN 1 ms later waits for company until 10 ms after the send. */
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 1, 1 * MS, 1 * MS, &wake), 0);
	assert_int_equal(wake, 10 * MS);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 5, 1 * MS, 10 * MS - 1, &wake), 0);
	assert_int_equal(wake, 10 * MS);
	/* By then company came: all five go in one batch. */
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 5, 1 * MS, 10 * MS, &wake), 5);
}

static void test_tail_of_a_burst_goes_at_once(void **state)
{
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	/* 250 DOWNs at 20 ms: 100, 100, then the 50 left behind, all at once. */
	pace_init(&ps, &unlimited_10ms, 0);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 250, 20 * MS, 20 * MS, &wake), 100);
	pace_sent(&ps, NULL, 100, 20 * MS);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 150, 20 * MS, 20 * MS, &wake), 100);
	pace_sent(&ps, NULL, 100, 20 * MS);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 50, 20 * MS, 20 * MS, &wake), 50);
}

static void test_down_left_behind_by_a_send_does_not_wait_again(void **state)
{
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &unlimited_10ms, 0);
	pace_sent(&ps, NULL, 1, 20 * MS);
	/* Queued at 5 ms, before that send: it has had its wait for company. */
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 3, 5 * MS, 21 * MS, &wake), 3);
	/* Queued at 20.5 ms, after it: waits for the window to end. */
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 3, 20 * MS + 500000, 21 * MS,
				     &wake), 0);
	assert_int_equal(wake, 30 * MS);
}

static void test_full_batch_goes_at_once(void **state)
{
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &unlimited_10ms, 0);
	pace_sent(&ps, NULL, 1, 0);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 99, 1 * MS, 2 * MS, &wake), 0);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 100, 1 * MS, 2 * MS, &wake), 100);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 1000000, 1 * MS, 2 * MS, &wake),
			 100);
}

static void test_max_batch_zero_reads_as_one(void **state)
{
	struct pace_limits lim = { .rate = 0, .max_batch = 0, .window_ns = 10 * MS };
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &lim, 0);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 50, 0, 0, &wake), 1);
}

static void test_waits_for_tokens_until_a_whole_batch_or_the_window(void **state)
{
	/* 1,000/s, burst 100, batches of 50, window 10 ms. */
	struct pace_limits lim = { .rate = 1000, .burst = 100, .max_batch = 50, .window_ns = 10 * MS };
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &lim, 0);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 1000, 0, 0, &wake), 50);
	pace_sent(&ps, NULL, 50, 0);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 950, 0, 0, &wake), 50);
	pace_sent(&ps, NULL, 50, 0);
	/* Bucket empty, not idle: wait for the window's end (10 ms, 10 tokens),
	 * which comes before a whole batch's tokens (50 ms). */
	assert_int_equal(pace_decide(&ps, &lim, NULL, 900, 0, 1 * MS, &wake), 0);
	assert_int_equal(wake, 10 * MS);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 900, 0, 10 * MS, &wake), 10);
}

static void test_batch_waits_for_tokens_when_a_whole_batch_comes_first(void **state)
{
	/* 10,000/s: 50 tokens take 5 ms, before the 10 ms window ends. */
	struct pace_limits lim = { .rate = 10000, .burst = 50, .max_batch = 50, .window_ns = 10 * MS };
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &lim, 0);
	pace_sent(&ps, NULL, 50, 0);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 900, 0, 1 * MS, &wake), 0);
	assert_int_equal(wake, 5 * MS);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 900, 0, 5 * MS, &wake), 50);
}

static void test_idle_subscriber_without_tokens_waits_for_one(void **state)
{
	struct pace_limits lim = { .rate = 4, .burst = 1, .max_batch = 50, .window_ns = 10 * MS };
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &lim, 0);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 1, 0, 0, &wake), 1);
	pace_sent(&ps, NULL, 1, 0);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 1, 100 * MS, 100 * MS, &wake), 0);
	assert_int_equal(wake, 250 * MS);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 1, 100 * MS, 250 * MS, &wake), 1);
}

static void test_want_is_capped_by_burst(void **state)
{
	/* A bucket of 20 can never afford a batch of 100: a full bucket goes. */
	struct pace_limits lim = { .rate = 100, .burst = 20, .max_batch = 100, .window_ns = 1 * S };
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &lim, 0);
	pace_sent(&ps, NULL, 20, 0);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 1000, 0, 1 * MS, &wake), 0);
	assert_int_equal(wake, 200 * MS);
	assert_int_equal(pace_decide(&ps, &lim, NULL, 1000, 0, 200 * MS, &wake), 20);
}

static void test_global_bucket_caps_the_batch_at_its_burst(void **state)
{
	struct token_bucket global;
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	tb_init(&global, 1000, 30, 0);
	pace_init(&ps, &unlimited_10ms, 0);
	/* want = min(queued, batch, global burst) = 30, affordable. */
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, &global, 500, 0, 0, &wake), 30);
	pace_sent(&ps, &global, 30, 0);
	assert_int_equal(tb_available(&global, 0), 0);
}

static void test_global_bucket_is_taken_a_whole_batch_at_a_time(void **state)
{
	struct token_bucket global;
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	tb_init(&global, 1000, 30, 0);
	tb_take(&global, 30);
	pace_init(&ps, &unlimited_10ms, 0);
	/* Idle, but the shared bucket holds 1 of 30: no nibbling, wait for 30. */
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, &global, 470, 0, 1 * MS, &wake), 0);
	assert_int_equal(wake, 30 * MS);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, &global, 470, 0, 20 * MS, &wake), 0);
	assert_int_equal(wake, 30 * MS);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, &global, 470, 0, 30 * MS, &wake), 30);
}

static void test_global_bucket_lets_a_small_batch_through(void **state)
{
	struct token_bucket global;
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	tb_init(&global, 1000, 30, 0);
	tb_take(&global, 30);
	pace_init(&ps, &unlimited_10ms, 0);
	/* Two DOWNs need two tokens, not the global burst. */
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, &global, 2, 0, 1 * MS, &wake), 0);
	assert_int_equal(wake, 2 * MS);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, &global, 2, 0, 2 * MS, &wake), 2);
}

static void test_sending_nothing_does_not_end_idleness(void **state)
{
	struct pace_state ps;
	uint64_t wake = 0;

	(void)state;
	pace_init(&ps, &unlimited_10ms, 0);
	pace_sent(&ps, NULL, 0, 0);
	assert_int_equal(pace_decide(&ps, &unlimited_10ms, NULL, 1, 1 * MS, 1 * MS, &wake), 1);
}

static void test_wake_is_always_later_than_now(void **state)
{
	/* Sweep limits and states: whenever the answer is 0 with DOWNs queued,
	 * the wake time is in the future (else a loop would spin). */
	static const uint32_t rates[] = { 0, 1, 3, 1000, 1000000 };
	static const uint32_t bursts[] = { 0, 1, 7, 100 };
	static const uint64_t windows[] = { 0, 1, 1 * MS, 1 * S };
	static const uint64_t globals[] = { 0, 5, 1000 };  /* 0: no global bucket */
	size_t r, b, w, g;
	uint64_t t, q;

	(void)state;
	for (r = 0; r < sizeof(rates) / sizeof(rates[0]); r++)
	for (b = 0; b < sizeof(bursts) / sizeof(bursts[0]); b++)
	for (w = 0; w < sizeof(windows) / sizeof(windows[0]); w++)
	for (g = 0; g < sizeof(globals) / sizeof(globals[0]); g++) {
		struct pace_limits lim = {
			.rate = rates[r], .burst = bursts[b], .max_batch = 10,
			.window_ns = windows[w],
		};
		struct token_bucket gtb, *global = globals[g] ? &gtb : NULL;
		struct pace_state ps;

		tb_init(&gtb, globals[g], 8, 0);
		pace_init(&ps, &lim, 0);
		for (t = 0; t < 3 * S; t += 7 * MS + 3) {
			for (q = 1; q <= 12; q += 11) {
				uint64_t wake = 0;
				uint32_t n = pace_decide(&ps, &lim, global, q, t / 2, t, &wake);

				if (n == 0)
					assert_true(wake > t);
				else
					pace_sent(&ps, global, n, t);
			}
		}
	}
}

/* Drive one subscriber with a backlog for 10 s of simulated time, asking
 * again exactly when told; returns DOWNs sent, *ret_frames the frames. */
static uint64_t drain_for_10s(const struct pace_limits *lim, uint64_t *ret_frames)
{
	struct pace_state ps;
	uint64_t queued = 1000000, sent = 0, frames = 0, now = 0, wake;

	pace_init(&ps, lim, 0);
	while (now <= 10 * S && queued) {
		uint32_t n = pace_decide(&ps, lim, NULL, queued, 0, now, &wake);

		if (n) {
			pace_sent(&ps, NULL, n, now);
			queued -= n;
			sent += n;
			frames++;
		} else {
			assert_true(wake > now);
			now = wake;
		}
	}
	*ret_frames = frames;
	return sent;
}

static void test_rate_limit_holds_over_ten_seconds(void **state)
{
	struct pace_limits lim = { .rate = 1000, .burst = 100, .max_batch = 50, .window_ns = 10 * MS };
	uint64_t frames, sent = drain_for_10s(&lim, &frames);

	(void)state;
	assert_in_range(sent, 1000 * 10, 1000 * 10 + 100);
}

static void test_rate_limited_frames_carry_rate_times_window(void **state)
{
	/* 1,000/s with a 10 ms window: frames of 10, not of 1. */
	struct pace_limits lim = { .rate = 1000, .burst = 100, .max_batch = 50, .window_ns = 10 * MS };
	uint64_t frames, sent = drain_for_10s(&lim, &frames);

	(void)state;
	assert_true(sent / frames >= 9);
	assert_in_range(frames, 990, 1010);
}

static void test_unlimited_backlog_goes_in_full_batches(void **state)
{
	struct pace_state ps;
	uint64_t wake = 0, queued = 1000;

	(void)state;
	pace_init(&ps, &unlimited_10ms, 0);
	while (queued) {
		uint32_t n = pace_decide(&ps, &unlimited_10ms, NULL, queued, 0, 1 * MS, &wake);

		assert_int_equal(n, 100);
		pace_sent(&ps, NULL, n, 1 * MS);
		queued -= n;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_starts_full),
		cmocka_unit_test(test_bucket_refills_at_rate),
		cmocka_unit_test(test_bucket_never_exceeds_burst),
		cmocka_unit_test(test_bucket_with_rate_zero_is_unlimited),
		cmocka_unit_test(test_bucket_burst_zero_reads_as_one),
		cmocka_unit_test(test_ready_at_is_exact),
		cmocka_unit_test(test_ready_at_does_not_change_the_bucket),
		cmocka_unit_test(test_bucket_does_not_drift_over_a_million_small_steps),
		cmocka_unit_test(test_clock_going_back_refills_nothing),
		cmocka_unit_test(test_nothing_queued_sends_nothing_and_never_wakes),
		cmocka_unit_test(test_lone_down_on_idle_subscriber_goes_at_once),
		cmocka_unit_test(test_second_down_within_window_waits_until_window_elapses),
		cmocka_unit_test(test_tail_of_a_burst_goes_at_once),
		cmocka_unit_test(test_down_left_behind_by_a_send_does_not_wait_again),
		cmocka_unit_test(test_full_batch_goes_at_once),
		cmocka_unit_test(test_max_batch_zero_reads_as_one),
		cmocka_unit_test(test_waits_for_tokens_until_a_whole_batch_or_the_window),
		cmocka_unit_test(test_batch_waits_for_tokens_when_a_whole_batch_comes_first),
		cmocka_unit_test(test_idle_subscriber_without_tokens_waits_for_one),
		cmocka_unit_test(test_want_is_capped_by_burst),
		cmocka_unit_test(test_global_bucket_caps_the_batch_at_its_burst),
		cmocka_unit_test(test_global_bucket_is_taken_a_whole_batch_at_a_time),
		cmocka_unit_test(test_global_bucket_lets_a_small_batch_through),
		cmocka_unit_test(test_sending_nothing_does_not_end_idleness),
		cmocka_unit_test(test_wake_is_always_later_than_now),
		cmocka_unit_test(test_rate_limit_holds_over_ten_seconds),
		cmocka_unit_test(test_rate_limited_frames_carry_rate_times_window),
		cmocka_unit_test(test_unlimited_backlog_goes_in_full_batches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
