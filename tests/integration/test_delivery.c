/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The delivery engine, end to end: a fan-out of 100,000 monitors yields one
 * DOWN each, in batches; a subscriber's rate limit holds; a subscriber that
 * stops reading is back-pressured while others flow, and gets everything
 * once it reads; demonitor-with-flush stays exact while DOWNs are queued or
 * in flight; --stall-timeout ends a non-reader with a last ETIMEDOUT; a lone
 * DOWN is not held back; a flood to one subscriber does not hold up
 * another's single DOWN.
 *
 * Many monitors sit on one process (monitors of one target are cheap; 100k
 * processes are not). References count up from 1 on each connection, so a
 * tally indexed by reference checks "exactly once" for every monitor.
 * Timing is asserted only where the issue demands it (a rate limit's lower
 * bound); everything else waits with generous deadlines.
 */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FANOUT_N 100000        /* monitors in the fan-out and rate tests */
#define FANOUT_SUBS 4
#define RATE_LIMIT 20000       /* DOWNs/s: FANOUT_N cannot arrive in under 4 s */
#define RATE_MIN_MS 4000
#define FLOOD_N 200000         /* the stalled and the flooded subscriber's monitors */
#define FLOWING_N 10000
#define FLUSH_N 20000          /* monitors; every other one is demonitored */
#define FLUSH_RATE 10000
#define STALL_N 50000          /* enough to fill any socket buffer many times */
#define LONG_TIMEOUT_MS 60000  /* for what takes seconds by design */

/* ---- counting DOWNs by reference ---------------------------------------- */

/*
 * What one client received: DOWNs per reference (refs 1..n), the frames
 * they came in (one zm_batch_fn call per frame with DOWNs), and anything
 * that should not be there.
 */
struct tally {
	uint8_t *seen;          /* [ref], refs 1..n */
	size_t n;
	pid_t pid;              /* the target every DOWN must name */
	size_t downs, frames, max_frame;
	size_t dups, unknown, wrong;
	uint64_t first_bad;     /* the first ref that was a dup, unknown or wrong */
};

/* Every tally of the running test, freed by its teardown even when an
 * assertion jumps out of it. */
static struct tally *tallies[8];
static size_t n_tallies;

static struct tally *tally_new(size_t n, pid_t pid)
{
	struct tally *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	assert_true(n_tallies < sizeof(tallies) / sizeof(tallies[0]));
	tallies[n_tallies++] = t;
	t->seen = calloc(n + 1, 1);
	assert_non_null(t->seen);
	t->n = n;
	t->pid = pid;
	return t;
}

static int teardown(void **state)
{
	while (n_tallies > 0) {
		struct tally *t = tallies[--n_tallies];

		free(t->seen);
		free(t);
	}
	return zmh_test_teardown(state);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, zmh_test_setup, teardown)

static void tally_add(struct tally *t, const struct zm_down_info *d)
{
	bool bad = false;

	t->downs++;
	if (d->ref == 0 || d->ref > t->n) {
		t->unknown++;
		bad = true;
	} else if (t->seen[d->ref]++ > 0) {
		t->dups++;
		bad = true;
	}
	if (d->pid != t->pid || d->reason != ZM_DOWN_KILLED || d->signal != SIGKILL) {
		t->wrong++;
		bad = true;
	}
	if (bad && !t->first_bad)
		t->first_bad = d->ref;
}

/* zm_batch_fn: one call per frame. */
static void on_batch(struct zm_client *c, const struct zm_down_info *downs, size_t n, void *ud)
{
	struct tally *t = ud;

	(void)c;
	t->frames++;
	if (n > t->max_frame)
		t->max_frame = n;
	for (size_t i = 0; i < n; i++)
		tally_add(t, &downs[i]);
}

/* zm_down_fn, for zm_sync(): DOWNs counted, frames not. */
static void on_down(struct zm_client *c, const struct zm_down_info *d, void *ud)
{
	(void)c;
	tally_add(ud, d);
}

/* Every ref in [1, n] for which want(ref) holds was seen exactly once, and
 * every other ref never; nothing else arrived. */
static void tally_check(const struct tally *t, const char *who, bool (*want)(uint64_t ref))
{
	size_t missing = 0, extra = 0;
	uint64_t first_missing = 0, first_extra = 0;

	if (t->dups || t->unknown || t->wrong)
		fail_msg("%s: %zu duplicate DOWNs, %zu for unknown refs, %zu with a wrong pid or "
			 "reason (first ref %llu)", who, t->dups, t->unknown, t->wrong,
			 (unsigned long long)t->first_bad);
	for (uint64_t ref = 1; ref <= t->n; ref++) {
		bool w = want ? want(ref) : true;

		if (w && t->seen[ref] != 1) {
			if (!missing++)
				first_missing = ref;
		} else if (!w && t->seen[ref] != 0) {
			if (!extra++)
				first_extra = ref;
		}
	}
	if (missing || extra)
		fail_msg("%s: %zu refs without their one DOWN (first %llu), %zu demonitored refs "
			 "with a DOWN (first %llu); %zu DOWNs in all", who, missing,
			 (unsigned long long)first_missing, extra, (unsigned long long)first_extra,
			 t->downs);
}

/* ---- helpers -------------------------------------------------------------- */

static struct zm_client *connect_with(const struct zmh_env *env, const char *name,
				      uint32_t max_rate, struct zmh_collector *col)
{
	struct zm_connect_options o;
	struct zm_client *c;

	memset(&o, 0, sizeof(o));
	o.name = name;
	o.max_rate = max_rate;
	assert_int_equal(zmh_connect_opts(&env->agent, &o, col, &c), 0);
	return c;
}

/*
 * n monitors on pid, pipelined, then a round trip: every one is active in
 * the agent when this returns. The library numbers refs 1, 2, ... on a
 * fresh connection; the tallies rely on it.
 */
static void monitor_many(struct zm_client *c, struct zmh_collector *col, pid_t pid, size_t n)
{
	int64_t t0 = zmh_mono_ms();

	for (size_t i = 0; i < n; i++) {
		uint64_t ref = 0;

		assert_int_equal(zm_monitor_pid(c, pid, &ref), 0);
		if (ref != i + 1)
			fail_msg("monitor %zu got ref %llu: the tallies assume refs 1, 2, ...", i,
				 (unsigned long long)ref);
	}
	assert_int_equal(zmh_sync(c, col), 0);
	assert_int_equal(col->n, 0);
	assert_int_equal(col->nerr, 0);
	assert_int_equal(zm_active_monitors(c), n);
	print_message("  %zu monitors on pid %d in %lld ms\n", n, (int)pid,
		      (long long)(zmh_mono_ms() - t0));
}

static void spawn(struct zmh_child *ch)
{
	assert_int_equal(zmh_child_spawn(ch), 0);
}

static void kill_and_reap(struct zmh_child *ch)
{
	assert_int_equal(zmh_child_kill(ch, SIGKILL), 0);
	assert_int_equal(zmh_child_reap(ch), 0);
}

/*
 * Dispatch the clients in batches until every tally holds want[i] DOWNs
 * or timeout_ms passes (the caller checks the counts).
 */
static void pump(struct zm_client *const *cs, struct tally *const *ts, const size_t *want,
		 size_t n, int timeout_ms)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;
	struct pollfd pfd[8];

	assert_true(n <= 8);
	for (;;) {
		bool done = true;

		for (size_t i = 0; i < n; i++)
			done = done && ts[i]->downs >= want[i];
		if (done || zmh_mono_ms() >= deadline)
			return;
		for (size_t i = 0; i < n; i++) {
			pfd[i].fd = zm_fd(cs[i]);
			pfd[i].events = POLLIN | (zm_pending(cs[i]) ? POLLOUT : 0);
			pfd[i].revents = 0;
		}
		(void)poll(pfd, n, 20);
		for (size_t i = 0; i < n; i++) {
			int r = zm_dispatch_batch(cs[i], on_batch, ts[i]);

			if (r < 0)
				fail_msg("dispatch of client %zu: %s", i, strerror(-r));
		}
	}
}

static void pump1(struct zm_client *c, struct tally *t, size_t want, int timeout_ms)
{
	pump(&c, &t, &want, 1, timeout_ms);
}

/* A round trip, then ZMH_QUIET_MS more of reading: nothing more may come. */
static void expect_quiet(struct zm_client *c, struct tally *t)
{
	size_t before = t->downs;
	int64_t end;

	assert_int_equal(zm_sync(c, ZMH_TIMEOUT_MS, on_down, t), 0);
	end = zmh_mono_ms() + ZMH_QUIET_MS;
	while (zmh_mono_ms() < end) {
		int r = zm_wait_batch(c, ZMH_QUIET_MS / 5, on_batch, t);

		assert_true(r >= 0);
	}
	if (t->downs != before)
		fail_msg("%zu DOWNs more after all were in", t->downs - before);
}

static uint32_t granted_batch(struct zm_client *c)
{
	uint32_t batch = 0;

	assert_int_equal(zm_limits(c, NULL, &batch, NULL), 0);
	assert_true(batch > 0);
	return batch;
}

static char *status_text(struct zm_client *statc)
{
	char *text = NULL;

	assert_int_equal(zmh_status(statc, &text), 0);
	return text;
}

static uint64_t status_u64(struct zm_client *statc, const char *key)
{
	char *text = status_text(statc);
	uint64_t v = 0;

	if (zmh_status_u64(text, key, &v) < 0)
		fail_msg("no '%s' line in the status:\n%s", key, text);
	free(text);
	return v;
}

static uint64_t status_sub(struct zm_client *statc, const char *name, const char *field)
{
	char *text = status_text(statc);
	uint64_t v = 0;

	if (zmh_status_sub_u64(text, name, field, &v) < 0)
		fail_msg("no %s= for subscriber %s in the status:\n%s", field, name, text);
	free(text);
	return v;
}

/*
 * Poll the status until subscriber name's sent= stops moving while its
 * queued= is above 0: its socket is full and the rest waits in the agent.
 * Returns queued=.
 */
static uint64_t wait_backpressured(struct zm_client *statc, const char *name)
{
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	uint64_t last_sent = UINT64_MAX;

	for (;;) {
		uint64_t sent = status_sub(statc, name, "sent");
		uint64_t queued = status_sub(statc, name, "queued");

		if (sent > 0 && queued > 0 && sent == last_sent)
			return queued;
		if (zmh_mono_ms() > deadline)
			fail_msg("subscriber %s never settled with DOWNs queued (sent=%llu queued=%llu)",
				 name, (unsigned long long)sent, (unsigned long long)queued);
		last_sent = sent;
		zmh_sleep_ms(100);
	}
}

/* ---- tests ---------------------------------------------------------------- */

static void test_lone_down_on_idle_agent_arrives_in_frame_of_one(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *c;
	struct zmh_child ch;
	struct tally *t;

	spawn(&ch);
	assert_int_equal(zmh_connect(&env->agent, "it-lone", col, &c), 0);
	t = tally_new(1, ch.pid);
	monitor_many(c, col, ch.pid, 1);
	kill_and_reap(&ch);

	pump1(c, t, 1, ZMH_TIMEOUT_MS);
	tally_check(t, "lone", NULL);
	assert_int_equal(t->frames, 1);
	assert_int_equal(t->max_frame, 1);
	expect_quiet(c, t);
	assert_int_equal(col->nerr, 0);
}

static void test_100k_monitors_on_one_process_across_4_subscribers_each_get_one_down(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zm_client *cs[FANOUT_SUBS], *statc;
	struct tally *ts[FANOUT_SUBS];
	struct zmh_collector *cols[FANOUT_SUBS];
	size_t want[FANOUT_SUBS];
	const size_t per = FANOUT_N / FANOUT_SUBS;
	size_t frames = 0, downs = 0;
	struct zmh_child ch;
	int64_t t0;

	spawn(&ch);
	assert_int_equal(zmh_connect(&env->agent, "it-fanout-status", NULL, &statc), 0);
	for (int i = 0; i < FANOUT_SUBS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "it-fanout-%d", i);
		cols[i] = zmh_collector_new();
		assert_int_equal(zmh_connect(&env->agent, name, cols[i], &cs[i]), 0);
		ts[i] = tally_new(per, ch.pid);
		want[i] = per;
		monitor_many(cs[i], cols[i], ch.pid, per);
	}
	/* One kernel watch for them all. */
	assert_int_equal(zmh_map_count(env->agent.pin_dir, ch.pid), 1);
	assert_int_equal(status_u64(statc, "monitors"), FANOUT_N);

	t0 = zmh_mono_ms();
	kill_and_reap(&ch);
	pump(cs, ts, want, FANOUT_SUBS, LONG_TIMEOUT_MS);
	print_message("  %d DOWNs to %d subscribers in %lld ms\n", FANOUT_N, FANOUT_SUBS,
		      (long long)(zmh_mono_ms() - t0));

	for (int i = 0; i < FANOUT_SUBS; i++) {
		uint32_t max_batch = granted_batch(cs[i]);

		tally_check(ts[i], "fan-out subscriber", NULL);
		expect_quiet(cs[i], ts[i]);
		assert_int_equal(cols[i]->nerr, 0);
		assert_int_equal(zm_active_monitors(cs[i]), 0);
		print_message("  subscriber %d: %zu DOWNs in %zu frames (largest %zu, granted %u)\n",
			      i, ts[i]->downs, ts[i]->frames, ts[i]->max_frame, max_batch);
		if (ts[i]->max_frame > max_batch)
			fail_msg("a frame held %zu DOWNs, above the granted max_batch %u",
				 ts[i]->max_frame, max_batch);
		frames += ts[i]->frames;
		downs += ts[i]->downs;
	}
	/* Batched: more than one record per frame on average. */
	if (downs <= frames)
		fail_msg("%zu DOWNs came in %zu frames: not batched", downs, frames);
	assert_int_equal(status_u64(statc, "downs_queued"), 0);
	assert_int_equal(status_u64(statc, "monitors"), 0);
}

static void test_max_rate_20000_spreads_100k_downs_over_at_least_4_s(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *c;
	struct zmh_child ch;
	struct tally *t;
	uint32_t rate = 0;
	int64_t t0, ms;

	spawn(&ch);
	c = connect_with(env, "it-rate", RATE_LIMIT, col);
	assert_int_equal(zm_limits(c, &rate, NULL, NULL), 0);
	assert_int_equal(rate, RATE_LIMIT);
	t = tally_new(FANOUT_N, ch.pid);
	monitor_many(c, col, ch.pid, FANOUT_N);

	t0 = zmh_mono_ms();
	kill_and_reap(&ch);
	pump1(c, t, FANOUT_N, LONG_TIMEOUT_MS);
	ms = zmh_mono_ms() - t0;
	print_message("  %zu DOWNs at max_rate %d in %lld ms (%.0f/s), %zu frames, largest %zu\n",
		      t->downs, RATE_LIMIT, (long long)ms, ms ? t->downs * 1000.0 / ms : 0.0,
		      t->frames, t->max_frame);
	tally_check(t, "rate-limited subscriber", NULL);
	/* The one timing assertion: the limit's lower bound. */
	if (ms < RATE_MIN_MS)
		fail_msg("%d DOWNs at max_rate %d arrived in %lld ms (< %d ms)", FANOUT_N, RATE_LIMIT,
			 (long long)ms, RATE_MIN_MS);
	assert_true(t->max_frame <= granted_batch(c));
	expect_quiet(c, t);
	assert_int_equal(col->nerr, 0);
}

static void test_stalled_subscriber_is_back_pressured_while_another_flows(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *scol = zmh_collector_new(), *fcol = zmh_collector_new();
	struct zm_client *stalled, *flowing, *statc;
	struct zmh_child p1, p2;
	struct tally *st, *ft;
	uint64_t queued, dropped0;
	int64_t t0;

	spawn(&p1);
	spawn(&p2);
	assert_int_equal(zmh_connect(&env->agent, "it-bp-status", NULL, &statc), 0);
	assert_int_equal(zmh_connect(&env->agent, "it-bp-stalled", scol, &stalled), 0);
	assert_int_equal(zmh_connect(&env->agent, "it-bp-flowing", fcol, &flowing), 0);
	st = tally_new(FLOOD_N, p1.pid);
	ft = tally_new(FLOWING_N, p2.pid);
	monitor_many(stalled, scol, p1.pid, FLOOD_N);
	monitor_many(flowing, fcol, p2.pid, FLOWING_N);
	dropped0 = status_u64(statc, "subscribers_dropped");

	/* The stalled one never dispatches from here until the end. */
	kill_and_reap(&p1);
	queued = wait_backpressured(statc, "it-bp-stalled");
	print_message("  stalled subscriber: %llu DOWNs queued in the agent, %llu sent\n",
		      (unsigned long long)queued,
		      (unsigned long long)status_sub(statc, "it-bp-stalled", "sent"));

	t0 = zmh_mono_ms();
	kill_and_reap(&p2);
	pump1(flowing, ft, FLOWING_N, ZMH_TIMEOUT_MS);
	print_message("  the other subscriber got its %zu DOWNs in %lld ms\n", ft->downs,
		      (long long)(zmh_mono_ms() - t0));
	tally_check(ft, "flowing subscriber", NULL);
	expect_quiet(flowing, ft);

	/* Still there, still waiting: back-pressured, not dropped. */
	assert_true(status_sub(statc, "it-bp-stalled", "queued") > 0);
	assert_int_equal(status_u64(statc, "subscribers_dropped"), dropped0);

	/* Now it reads, and gets every DOWN exactly once. */
	t0 = zmh_mono_ms();
	pump1(stalled, st, FLOOD_N, LONG_TIMEOUT_MS);
	print_message("  the stalled subscriber read its %zu DOWNs in %lld ms\n", st->downs,
		      (long long)(zmh_mono_ms() - t0));
	tally_check(st, "stalled subscriber", NULL);
	expect_quiet(stalled, st);
	assert_int_equal(scol->nerr, 0);
	assert_int_equal(fcol->nerr, 0);
	assert_int_equal(status_sub(statc, "it-bp-stalled", "queued"), 0);
}

static bool is_odd(uint64_t ref)
{
	return ref & 1;
}

static void test_demonitor_flush_of_10k_queued_and_in_flight_refs_yields_none(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *c, *statc;
	struct zmh_child ch;
	struct tally *t;
	uint64_t flushed0, flushed, sent_before, sent;

	spawn(&ch);
	assert_int_equal(zmh_connect(&env->agent, "it-flush-status", NULL, &statc), 0);
	c = connect_with(env, "it-flush", FLUSH_RATE, col);
	t = tally_new(FLUSH_N, ch.pid);
	monitor_many(c, col, ch.pid, FLUSH_N);
	flushed0 = status_u64(statc, "downs_flushed");

	/* Let some DOWNs go out (they sit unread in our socket) while the
	 * rate keeps the rest queued in the agent. */
	kill_and_reap(&ch);
	(void)wait_backpressured(statc, "it-flush");
	sent_before = status_sub(statc, "it-flush", "sent");
	print_message("  before the demonitors: %llu sent (unread), %llu queued in the agent\n",
		      (unsigned long long)sent_before,
		      (unsigned long long)status_sub(statc, "it-flush", "queued"));

	/* Every even ref: half of those in flight, half of those queued. */
	for (uint64_t ref = 2; ref <= FLUSH_N; ref += 2)
		assert_int_equal(zm_demonitor(c, ref, ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zm_active_monitors(c), FLUSH_N / 2);

	assert_int_equal(zm_sync(c, LONG_TIMEOUT_MS, on_down, t), 0);
	pump1(c, t, FLUSH_N / 2, LONG_TIMEOUT_MS);
	expect_quiet(c, t);
	tally_check(t, "demonitoring subscriber", is_odd);
	assert_int_equal(col->nerr, 0);   /* the ENOENTs for crossed DOWNs are swallowed */
	assert_int_equal(zm_active_monitors(c), 0);

	/* Each demonitored ref was either taken back from the agent's queue
	 * (downs_flushed) or already sent, and then dropped by the library. */
	flushed = status_u64(statc, "downs_flushed") - flushed0;
	sent = status_sub(statc, "it-flush", "sent");
	print_message("  %llu demonitored DOWNs flushed in the agent, %llu dropped in flight\n",
		      (unsigned long long)flushed, (unsigned long long)(sent - FLUSH_N / 2));
	assert_int_equal(flushed + (sent - FLUSH_N / 2), FLUSH_N / 2);
	assert_true(flushed > 0);
	assert_true(flushed < FLUSH_N / 2);
}

static void test_stall_timeout_ends_non_reader_with_final_etimedout(void **state)
{
	struct zmh_env *env = zmh_env(state);
	static const char *const args[] = { "--stall-timeout", "1", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zm_connect_options o;
	struct zm_client *c, *statc;
	struct zmh_agent agent;
	struct zmh_child ch;
	struct tally *t;
	int64_t deadline;
	size_t nerr_at_end = 0;
	int r = 0;

	(void)env;
	assert_int_equal(zmh_extra_agent_start(&agent, args), 0);
	spawn(&ch);
	memset(&o, 0, sizeof(o));
	o.name = "it-stall-status";
	assert_int_equal(zmh_connect_opts(&agent, &o, NULL, &statc), 0);
	o.name = "it-stall";
	assert_int_equal(zmh_connect_opts(&agent, &o, col, &c), 0);
	t = tally_new(STALL_N, ch.pid);
	monitor_many(c, col, ch.pid, STALL_N);

	kill_and_reap(&ch);
	/* Not reading: the agent gives up after about a second (it checks a
	 * few times a second). */
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while (status_u64(statc, "subscribers_dropped") == 0) {
		if (zmh_mono_ms() > deadline) {
			zmh_agent_dump_log(&agent);
			fail_msg("the non-reading subscriber was not dropped within %d ms",
				 ZMH_TIMEOUT_MS);
		}
		zmh_sleep_ms(100);
	}
	assert_int_equal(status_u64(statc, "subscribers"), 1);   /* the status client */
	assert_true(zmh_agent_log_has(&agent, "--stall-timeout"));

	/* Reading now: what was in the socket, then the ERROR saying why,
	 * then the end. */
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while (r != -ENOTCONN) {
		r = zm_wait_batch(c, 100, on_batch, t);
		if (r < 0 && r != -ENOTCONN)
			fail_msg("dispatch after the drop: %s", strerror(-r));
		if (zmh_mono_ms() > deadline)
			fail_msg("the connection did not end within %d ms", ZMH_TIMEOUT_MS);
	}
	nerr_at_end = col->nerr;
	print_message("  dropped after %zu of %d DOWNs; %zu ERROR(s) before -ENOTCONN%s%s\n",
		      t->downs, STALL_N, nerr_at_end, nerr_at_end ? ": " : "",
		      nerr_at_end ? col->errs[nerr_at_end - 1].message : "");
	if (t->dups || t->unknown || t->wrong)
		fail_msg("bad DOWNs before the drop (first ref %llu)", (unsigned long long)t->first_bad);
	assert_true(t->downs < STALL_N);
	if (nerr_at_end == 0) {
		zmh_agent_dump_log(&agent);
		fail_msg("no ERROR reached the error handler before -ENOTCONN");
	}
	assert_int_equal(col->errs[nerr_at_end - 1].error, ETIMEDOUT);
	assert_int_equal(col->errs[nerr_at_end - 1].ref, 0);
	assert_int_equal(zm_dispatch_batch(c, on_batch, t), -ENOTCONN);

	zmh_client_close(c);
	zmh_client_close(statc);
	assert_int_equal(zmh_extra_agent_stop(&agent), 0);
}

static void test_single_down_is_not_held_up_by_another_subscribers_flood(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *acol = zmh_collector_new(), *bcol = zmh_collector_new();
	struct zm_client *a, *b;
	struct zmh_child p1, p2;
	struct tally *at, *bt;
	uint32_t rate = 1;
	size_t a_at_b = 0;
	int64_t deadline, t0;

	spawn(&p1);
	spawn(&p2);
	a = connect_with(env, "it-fair-flood", 0, acol);   /* the agent's default: no limit */
	assert_int_equal(zm_limits(a, &rate, NULL, NULL), 0);
	assert_int_equal(rate, 0);
	b = connect_with(env, "it-fair-single", 0, bcol);
	at = tally_new(FLOOD_N, p1.pid);
	bt = tally_new(1, p2.pid);
	monitor_many(a, acol, p1.pid, FLOOD_N);
	monitor_many(b, bcol, p2.pid, 1);

	/* The flood starts; A reads it at a steady pace, a frame or so at a
	 * time, as a busy subscriber would. */
	kill_and_reap(&p1);
	pump1(a, at, 1, ZMH_TIMEOUT_MS);
	assert_true(at->downs > 0);

	/* B's one DOWN, while A's flood is under way. */
	t0 = zmh_mono_ms();
	kill_and_reap(&p2);
	deadline = t0 + ZMH_TIMEOUT_MS;
	while (bt->downs == 0) {
		struct pollfd pfd = { .fd = zm_fd(b), .events = POLLIN };
		int r;

		if (zmh_mono_ms() > deadline)
			fail_msg("B's DOWN did not come within %d ms", ZMH_TIMEOUT_MS);
		(void)poll(&pfd, 1, 10);
		r = zm_dispatch_batch(b, on_batch, bt);
		assert_true(r >= 0);
		if (bt->downs) {
			a_at_b = at->downs;
			break;
		}
		r = zm_dispatch_batch(a, on_batch, at);
		assert_true(r >= 0);
	}
	print_message("  B's DOWN came %lld ms after its kill, with A at %zu of %d DOWNs\n",
		      (long long)(zmh_mono_ms() - t0), a_at_b, FLOOD_N);
	if (a_at_b >= FLOOD_N)
		fail_msg("A had all its %d DOWNs before B got its one", FLOOD_N);
	tally_check(bt, "single", NULL);

	pump1(a, at, FLOOD_N, LONG_TIMEOUT_MS);
	tally_check(at, "flooded subscriber", NULL);
	expect_quiet(a, at);
	expect_quiet(b, bt);
	assert_int_equal(acol->nerr, 0);
	assert_int_equal(bcol->nerr, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_lone_down_on_idle_agent_arrives_in_frame_of_one),
		TEST(test_100k_monitors_on_one_process_across_4_subscribers_each_get_one_down),
		TEST(test_max_rate_20000_spreads_100k_downs_over_at_least_4_s),
		TEST(test_stalled_subscriber_is_back_pressured_while_another_flows),
		TEST(test_demonitor_flush_of_10k_queued_and_in_flight_refs_yields_none),
		TEST(test_stall_timeout_ends_non_reader_with_final_etimedout),
		TEST(test_single_down_is_not_held_up_by_another_subscribers_flood),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
