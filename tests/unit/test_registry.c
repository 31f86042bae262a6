// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* The registry: target -> monitors, (subscriber, ref) -> monitor, subscriber ->
 * monitors, and each subscriber's queue of fired DOWNs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

/* ---- fixtures ----------------------------------------------------------- */

#define LOG_MAX 64

/* What a queued callback saw. */
struct queued_call {
	struct reg_sub *sub;
	size_t sub_queued;           /* registry_sub_queued(sub) then */
	size_t all_queued;           /* registry_queued_count() then */
};

struct world {
	struct registry *r;
	struct reg_key unwatched[LOG_MAX];
	size_t nunwatched;
	size_t unwatch_calls;        /* counted even past LOG_MAX */
	struct queued_call queued[LOG_MAX];
	size_t nqueued;
	size_t queued_calls;         /* counted even past LOG_MAX */
};

static void on_unwatch(void *ctx, const struct reg_key *key)
{
	struct world *w = ctx;

	if (w->nunwatched < LOG_MAX)
		w->unwatched[w->nunwatched++] = *key;
	w->unwatch_calls++;
}

static void on_queued(void *ctx, struct reg_sub *s)
{
	struct world *w = ctx;

	if (w->nqueued < LOG_MAX)
		w->queued[w->nqueued++] = (struct queued_call){
			.sub = s,
			.sub_queued = registry_sub_queued(s),
			.all_queued = registry_queued_count(w->r),
		};
	w->queued_calls++;
}

static const struct registry_ops test_ops = { .unwatch = on_unwatch, .queued = on_queued };

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (!w)
		return -1;
	w->r = registry_new(&test_ops, w);
	if (!w->r) {
		free(w);
		return -1;
	}
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	registry_set_calloc(NULL);
	registry_free(w->r);
	free(w);
	return 0;
}

static struct reg_key proc_key(uint64_t tgid, uint64_t start)
{
	return (struct reg_key){ .kind = 1, .a = tgid, .b = start };
}

static bool key_equal(const struct reg_key *x, const struct reg_key *y)
{
	return x->kind == y->kind && x->a == y->a && x->b == y->b;
}

static void add_ok(struct registry *r, struct reg_sub *s, uint64_t ref, struct reg_key key)
{
	bool is_new;

	assert_int_equal(registry_monitor_add(r, s, ref, &key, &is_new), 0);
}

/* The death a fire records: every field set, so a copy is easy to check. */
static struct zm_down death_of(const struct reg_key *key)
{
	return (struct zm_down){
		.ref = 0xbadbadbad,          /* ignored by fire */
		.time_ns = 1700000000123456789ULL + key->a,
		.kind = ZM_TARGET_PROCESS,
		.reason = ZM_REASON_KILLED,
		.flags = ZM_DOWN_CORE_DUMPED,
		.value = 9,
		.pid = (uint32_t)key->a,
		.start_ticks = key->b,
	};
}

/* Fire key with its death_of() at now_ns; returns what fire returned. */
static ssize_t fire(struct registry *r, struct reg_key key, uint64_t now_ns)
{
	struct zm_down d = death_of(&key);

	return registry_target_fire(r, &key, &d, now_ns);
}

/* Is got the death of key, delivered for ref? */
static void assert_down(const struct zm_down *got, uint64_t ref, struct reg_key key)
{
	struct zm_down want = death_of(&key);

	want.ref = ref;
	assert_int_equal(got->ref, want.ref);
	assert_int_equal(got->time_ns, want.time_ns);
	assert_int_equal(got->kind, want.kind);
	assert_int_equal(got->reason, want.reason);
	assert_int_equal(got->flags, want.flags);
	assert_int_equal(got->value, want.value);
	assert_int_equal(got->pid, want.pid);
	assert_int_equal(got->start_ticks, want.start_ticks);
}

/* Pop one DOWN, which must be there. */
static struct zm_down pop_one(struct registry *r, struct reg_sub *s)
{
	struct zm_down d;

	assert_int_equal(registry_sub_pop(r, s, &d, 1), 1);
	return d;
}

/* Allocation failure injection. */
static long fail_countdown;          /* the n-th allocation from now fails; 0: none */
static size_t fail_nmemb_above;      /* fail allocations of more elements than this; 0: none */
static size_t alloc_calls;

static void *failing_calloc(size_t nmemb, size_t size)
{
	alloc_calls++;
	if (fail_nmemb_above && nmemb > fail_nmemb_above)
		return NULL;
	if (fail_countdown > 0 && --fail_countdown == 0)
		return NULL;
	return calloc(nmemb, size);
}

static void fail_nth_alloc(long n)
{
	fail_countdown = n;
	fail_nmemb_above = 0;
	alloc_calls = 0;
	registry_set_calloc(failing_calloc);
}

/* Count allocations from now on, failing none. */
static void count_allocs(void)
{
	fail_nth_alloc(0);
}

/* ---- adding ------------------------------------------------------------- */

static void test_new_registry_is_empty(void **state)
{
	struct world *w = *state;

	assert_int_equal(registry_monitor_count(w->r), 0);
	assert_int_equal(registry_target_count(w->r), 0);
	assert_int_equal(registry_sub_count(w->r), 0);
}

static void test_new_registry_accepts_null_ops(void **state)
{
	struct registry *r = registry_new(NULL, NULL);
	struct reg_sub *s;
	struct reg_key k = proc_key(1, 1);

	(void)state;
	assert_non_null(r);
	s = registry_sub_new(r, NULL);
	assert_non_null(s);
	add_ok(r, s, 1, k);
	assert_int_equal(registry_monitor_remove(r, s, 1), 0);   /* no unwatch to call */
	registry_sub_free(r, s);
	registry_free(r);
}

static void test_first_monitor_creates_target(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(100, 5000);
	bool is_new = false;

	assert_int_equal(registry_monitor_add(w->r, s, 7, &k, &is_new), 0);
	assert_true(is_new);
	assert_true(registry_target_exists(w->r, &k));
	assert_int_equal(registry_target_monitors(w->r, &k), 1);
}

static void test_second_monitor_same_target_is_not_new(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(100, 5000);
	bool is_new = true;

	add_ok(w->r, s1, 1, k);
	assert_int_equal(registry_monitor_add(w->r, s1, 2, &k, &is_new), 0);
	assert_false(is_new);
	is_new = true;
	assert_int_equal(registry_monitor_add(w->r, s2, 1, &k, &is_new), 0);
	assert_false(is_new);
	assert_int_equal(registry_target_count(w->r), 1);
	assert_int_equal(registry_target_monitors(w->r, &k), 3);
}

static void test_new_target_flag_may_be_null(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 2);

	assert_int_equal(registry_monitor_add(w->r, s, 1, &k, NULL), 0);
	assert_int_equal(registry_monitor_count(w->r), 1);
}

static void test_duplicate_ref_rejected(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k1 = proc_key(1, 1), k2 = proc_key(2, 2), found;
	bool is_new = false;

	add_ok(w->r, s, 42, k1);
	assert_int_equal(registry_monitor_add(w->r, s, 42, &k2, &is_new), -EEXIST);
	assert_false(is_new);                             /* untouched on failure */
	assert_false(registry_target_exists(w->r, &k2));
	assert_int_equal(registry_monitor_count(w->r), 1);
	assert_true(registry_monitor_find(w->r, s, 42, &found));
	assert_true(key_equal(&found, &k1));
}

static void test_duplicate_ref_on_same_target_rejected(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s, 42, k);
	assert_int_equal(registry_monitor_add(w->r, s, 42, &k, NULL), -EEXIST);
	assert_int_equal(registry_target_monitors(w->r, &k), 1);
}

static void test_ref_zero_rejected(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	assert_int_equal(registry_monitor_add(w->r, s, 0, &k, NULL), -EINVAL);
	assert_false(registry_target_exists(w->r, &k));
	assert_int_equal(registry_monitor_count(w->r), 0);
}

static void test_same_ref_in_two_subscribers_is_independent(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k1 = proc_key(1, 1), k2 = proc_key(2, 2), found;

	add_ok(w->r, s1, 5, k1);
	add_ok(w->r, s2, 5, k2);
	assert_true(registry_monitor_find(w->r, s1, 5, &found));
	assert_true(key_equal(&found, &k1));
	assert_true(registry_monitor_find(w->r, s2, 5, &found));
	assert_true(key_equal(&found, &k2));

	assert_int_equal(registry_monitor_remove(w->r, s1, 5), 0);
	assert_false(registry_monitor_find(w->r, s1, 5, NULL));
	assert_true(registry_monitor_find(w->r, s2, 5, NULL));
}

static void test_keys_differing_in_one_field_are_distinct_targets(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key base = proc_key(10, 20);
	struct reg_key other_kind = base, other_a = base, other_b = base;

	other_kind.kind = 2;
	other_a.a = 11;
	other_b.b = 21;                 /* same pid, another start time: pid reuse */
	add_ok(w->r, s, 1, base);
	add_ok(w->r, s, 2, other_kind);
	add_ok(w->r, s, 3, other_a);
	add_ok(w->r, s, 4, other_b);
	assert_int_equal(registry_target_count(w->r), 4);
	assert_int_equal(fire(w->r, other_b, 1), 1);
	assert_true(registry_target_exists(w->r, &base));
	assert_true(registry_target_exists(w->r, &other_kind));
	assert_true(registry_target_exists(w->r, &other_a));
	assert_int_equal(pop_one(w->r, s).ref, 4);
}

static void test_key_padding_is_ignored(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(10, 20), padded = k;
	bool is_new = true;

	padded._pad = 0xdead;
	add_ok(w->r, s, 1, k);
	assert_int_equal(registry_monitor_add(w->r, s, 2, &padded, &is_new), 0);
	assert_false(is_new);
	assert_true(registry_target_exists(w->r, &padded));
}

static void test_monitor_find_unknown_ref_is_false(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key untouched = proc_key(99, 99);

	assert_false(registry_monitor_find(w->r, s, 1, &untouched));
	assert_int_equal(untouched.a, 99);
}

/* ---- firing ------------------------------------------------------------- */

static void test_fire_queues_downs_in_add_order_per_subscriber(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(100, 5000), other = proc_key(101, 5000);
	struct zm_down out[8];

	add_ok(w->r, s1, 30, k);
	add_ok(w->r, s2, 10, k);
	add_ok(w->r, s1, 20, other);
	add_ok(w->r, s1, 11, k);
	add_ok(w->r, s2, 99, k);

	assert_int_equal(fire(w->r, k, 777), 4);
	assert_int_equal(registry_sub_queued(s1), 2);
	assert_int_equal(registry_sub_queued(s2), 2);
	assert_int_equal(registry_sub_pop(w->r, s1, out, 8), 2);
	assert_down(&out[0], 30, k);
	assert_down(&out[1], 11, k);
	assert_int_equal(registry_sub_pop(w->r, s2, out, 8), 2);
	assert_down(&out[0], 10, k);
	assert_down(&out[1], 99, k);
}

static void test_fire_disarms_monitors_and_forgets_target(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(100, 5000), other = proc_key(101, 5000);

	add_ok(w->r, s1, 1, k);
	add_ok(w->r, s1, 2, other);
	add_ok(w->r, s2, 1, k);

	fire(w->r, k, 1);
	assert_false(registry_target_exists(w->r, &k));
	assert_int_equal(registry_target_monitors(w->r, &k), 0);
	assert_true(registry_monitor_find(w->r, s1, 2, NULL));
	assert_int_equal(registry_sub_monitors(s1), 1);
	assert_int_equal(registry_sub_monitors(s2), 0);
	assert_int_equal(registry_monitor_count(w->r), 1);
	assert_int_equal(registry_target_count(w->r), 1);
}

static void test_find_reports_queued_monitor_with_its_key(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(100, 5000), found;

	add_ok(w->r, s, 1, k);
	fire(w->r, k, 1);
	assert_true(registry_monitor_find(w->r, s, 1, &found));
	assert_true(key_equal(&found, &k));
}

static void test_fire_does_not_unwatch(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s, 1, k);
	fire(w->r, k, 1);
	pop_one(w->r, s);
	assert_int_equal(w->unwatch_calls, 0);
}

static void test_fire_unknown_target_returns_zero(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1), unknown = proc_key(2, 2);

	add_ok(w->r, s, 1, k);
	assert_int_equal(fire(w->r, unknown, 1), 0);
	assert_int_equal(registry_queued_count(w->r), 0);
	assert_int_equal(w->queued_calls, 0);
	assert_int_equal(registry_monitor_count(w->r), 1);
}

static void test_fire_twice_second_is_noop(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s, 1, k);
	add_ok(w->r, s, 2, k);
	assert_int_equal(fire(w->r, k, 1), 2);
	assert_int_equal(fire(w->r, k, 2), 0);
	assert_int_equal(registry_sub_queued(s), 2);
	assert_int_equal(w->queued_calls, 1);
}

static void test_fire_skips_removed_monitor(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s, 1, k);
	add_ok(w->r, s, 2, k);
	add_ok(w->r, s, 3, k);
	assert_int_equal(registry_monitor_remove(w->r, s, 2), 0);
	assert_int_equal(fire(w->r, k, 1), 2);
	assert_int_equal(pop_one(w->r, s).ref, 1);
	assert_int_equal(pop_one(w->r, s).ref, 3);
	assert_int_equal(registry_sub_queued(s), 0);
}

static void test_queued_callback_once_per_empty_to_nonempty_transition(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key a = proc_key(1, 1), b = proc_key(2, 2), c = proc_key(3, 3);
	struct zm_down out[8];

	add_ok(w->r, s1, 1, a);
	add_ok(w->r, s2, 1, a);
	add_ok(w->r, s1, 2, a);       /* s1 gets two DOWNs from one fire: one call */
	add_ok(w->r, s1, 3, b);
	add_ok(w->r, s1, 4, c);

	fire(w->r, a, 1);             /* s1 and s2: empty -> non-empty */
	assert_int_equal(w->queued_calls, 2);
	assert_true((w->queued[0].sub == s1 && w->queued[1].sub == s2) ||
		    (w->queued[0].sub == s2 && w->queued[1].sub == s1));
	fire(w->r, b, 2);             /* s1 was not empty: no call */
	assert_int_equal(w->queued_calls, 2);
	assert_int_equal(registry_sub_pop(w->r, s1, out, 8), 3);
	fire(w->r, c, 3);             /* s1 empty again */
	assert_int_equal(w->queued_calls, 3);
	assert_ptr_equal(w->queued[2].sub, s1);
}

static void test_queued_callback_sees_the_whole_fire(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s1, 1, k);
	add_ok(w->r, s2, 1, k);
	add_ok(w->r, s1, 2, k);
	add_ok(w->r, s2, 2, k);
	add_ok(w->r, s1, 3, k);
	fire(w->r, k, 1);
	assert_int_equal(w->queued_calls, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(w->queued[i].sub_queued, w->queued[i].sub == s1 ? 3 : 2);
		assert_int_equal(w->queued[i].all_queued, 5);
	}
}

static void test_fire_without_queued_callback_still_queues(void **state)
{
	struct registry *r = registry_new(NULL, NULL);
	struct reg_sub *s;
	struct reg_key k = proc_key(1, 1);

	(void)state;
	assert_non_null(r);
	s = registry_sub_new(r, NULL);
	add_ok(r, s, 1, k);
	assert_int_equal(fire(r, k, 1), 1);
	assert_int_equal(registry_sub_queued(s), 1);
	assert_int_equal(pop_one(r, s).ref, 1);
	registry_free(r);
}

/* ---- popping ------------------------------------------------------------ */

static void test_pop_respects_max_and_fifo_across_targets(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key a = proc_key(1, 1), b = proc_key(2, 2), c = proc_key(3, 3);
	struct zm_down out[4];

	/* Fire order a, c, b; add order within each. */
	add_ok(w->r, s, 10, a);
	add_ok(w->r, s, 20, b);
	add_ok(w->r, s, 30, c);
	add_ok(w->r, s, 11, a);
	add_ok(w->r, s, 31, c);
	add_ok(w->r, s, 21, b);
	fire(w->r, a, 1);
	fire(w->r, c, 2);
	fire(w->r, b, 3);

	assert_int_equal(registry_sub_pop(w->r, s, out, 0), 0);
	assert_int_equal(registry_sub_pop(w->r, s, out, 4), 4);
	assert_down(&out[0], 10, a);
	assert_down(&out[1], 11, a);
	assert_down(&out[2], 30, c);
	assert_down(&out[3], 31, c);
	assert_int_equal(registry_sub_queued(s), 2);
	assert_int_equal(registry_sub_pop(w->r, s, out, 1), 1);
	assert_down(&out[0], 20, b);
	assert_int_equal(registry_sub_pop(w->r, s, out, 4), 1);
	assert_down(&out[0], 21, b);
	assert_int_equal(registry_sub_pop(w->r, s, out, 4), 0);
}

static void test_pop_takes_only_that_subscribers_downs(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);
	struct zm_down out[4];

	add_ok(w->r, s1, 1, k);
	add_ok(w->r, s2, 2, k);
	fire(w->r, k, 1);
	assert_int_equal(registry_sub_pop(w->r, s1, out, 4), 1);
	assert_int_equal(out[0].ref, 1);
	assert_int_equal(registry_sub_queued(s2), 1);
	assert_true(registry_monitor_find(w->r, s2, 2, NULL));
}

static void test_popped_ref_becomes_reusable_and_not_before(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1), k2 = proc_key(2, 2);
	bool is_new = false;

	add_ok(w->r, s, 1, k);
	fire(w->r, k, 1);
	assert_true(registry_monitor_find(w->r, s, 1, NULL));
	assert_int_equal(registry_monitor_add(w->r, s, 1, &k2, &is_new), -EEXIST);
	assert_false(registry_target_exists(w->r, &k2));

	pop_one(w->r, s);
	assert_false(registry_monitor_find(w->r, s, 1, NULL));
	assert_int_equal(registry_monitor_add(w->r, s, 1, &k2, &is_new), 0);
	assert_true(is_new);
	/* The old target came back as new: the caller re-arms the watch. */
	assert_int_equal(registry_monitor_add(w->r, s, 2, &k, &is_new), 0);
	assert_true(is_new);
}

static void test_oldest_ns_follows_the_head(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key a = proc_key(1, 1), b = proc_key(2, 2);

	assert_int_equal(registry_sub_oldest_ns(s), 0);
	add_ok(w->r, s, 1, a);
	add_ok(w->r, s, 2, a);
	add_ok(w->r, s, 3, b);
	fire(w->r, a, 1000);
	assert_int_equal(registry_sub_oldest_ns(s), 1000);
	fire(w->r, b, 2000);
	assert_int_equal(registry_sub_oldest_ns(s), 1000);
	pop_one(w->r, s);
	assert_int_equal(registry_sub_oldest_ns(s), 1000);
	pop_one(w->r, s);
	assert_int_equal(registry_sub_oldest_ns(s), 2000);
	pop_one(w->r, s);
	assert_int_equal(registry_sub_oldest_ns(s), 0);
}

static void test_oldest_ns_moves_when_head_is_demonitored(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key a = proc_key(1, 1), b = proc_key(2, 2);

	add_ok(w->r, s, 1, a);
	add_ok(w->r, s, 2, b);
	fire(w->r, a, 1000);
	fire(w->r, b, 2000);
	assert_int_equal(registry_monitor_remove(w->r, s, 1), 1);
	assert_int_equal(registry_sub_oldest_ns(s), 2000);
}

/* ---- demonitor of queued DOWNs ----------------------------------------- */

static void test_demonitor_queued_ref_returns_one_and_is_never_popped(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);
	struct zm_down out[4];

	add_ok(w->r, s, 1, k);
	add_ok(w->r, s, 2, k);
	add_ok(w->r, s, 3, k);
	fire(w->r, k, 1);
	assert_int_equal(registry_monitor_remove(w->r, s, 2), 1);
	assert_false(registry_monitor_find(w->r, s, 2, NULL));
	assert_int_equal(registry_monitor_remove(w->r, s, 2), -ENOENT);
	assert_int_equal(registry_sub_queued(s), 2);
	assert_int_equal(registry_sub_pop(w->r, s, out, 4), 2);
	assert_int_equal(out[0].ref, 1);
	assert_int_equal(out[1].ref, 3);
	assert_int_equal(w->unwatch_calls, 0);    /* the target is already gone */
}

static void test_demonitor_armed_ref_returns_zero(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s, 1, k);
	assert_int_equal(registry_monitor_remove(w->r, s, 1), 0);
	assert_int_equal(registry_queued_count(w->r), 0);
}

static void test_demonitor_every_queued_down_of_a_target_frees_its_death(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	/* Popped, demonitored, and left to sub_free: the shared death must be
	 * freed exactly once, after the last (ASan/LSan check both ways). */
	add_ok(w->r, s1, 1, k);
	add_ok(w->r, s2, 1, k);
	add_ok(w->r, s1, 2, k);
	fire(w->r, k, 1);
	pop_one(w->r, s1);
	assert_int_equal(registry_monitor_remove(w->r, s2, 1), 1);
	assert_int_equal(registry_monitor_remove(w->r, s1, 2), 1);
	assert_int_equal(registry_queued_count(w->r), 0);
}

/* ---- removing ----------------------------------------------------------- */

static void test_remove_last_monitor_unwatches_target(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(77, 88);

	add_ok(w->r, s, 1, k);
	assert_int_equal(registry_monitor_remove(w->r, s, 1), 0);
	assert_int_equal(w->unwatch_calls, 1);
	assert_true(key_equal(&w->unwatched[0], &k));
	assert_false(registry_target_exists(w->r, &k));
	assert_int_equal(registry_target_count(w->r), 0);
}

static void test_remove_not_last_does_not_unwatch(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(77, 88);

	add_ok(w->r, s1, 1, k);
	add_ok(w->r, s2, 1, k);
	assert_int_equal(registry_monitor_remove(w->r, s1, 1), 0);
	assert_int_equal(w->unwatch_calls, 0);
	assert_int_equal(registry_target_monitors(w->r, &k), 1);
}

static void test_remove_unknown_ref_is_enoent(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s1, 1, k);
	assert_int_equal(registry_monitor_remove(w->r, s1, 2), -ENOENT);
	assert_int_equal(registry_monitor_remove(w->r, s2, 1), -ENOENT);  /* not s2's */
	assert_int_equal(registry_monitor_count(w->r), 1);
	assert_int_equal(w->unwatch_calls, 0);
}

static void test_remove_twice_second_is_enoent(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s, 1, k);
	assert_int_equal(registry_monitor_remove(w->r, s, 1), 0);
	assert_int_equal(registry_monitor_remove(w->r, s, 1), -ENOENT);
	assert_int_equal(w->unwatch_calls, 1);
}

static void test_removed_ref_can_be_reused(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s, 1, k);
	assert_int_equal(registry_monitor_remove(w->r, s, 1), 0);
	add_ok(w->r, s, 1, k);
	assert_true(registry_monitor_find(w->r, s, 1, NULL));
}

/* ---- subscribers -------------------------------------------------------- */

static void test_sub_free_drops_all_and_unwatches_only_emptied_targets(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key only_s1 = proc_key(1, 1), shared = proc_key(2, 2);
	struct reg_key only_s2 = proc_key(3, 3);

	add_ok(w->r, s1, 1, only_s1);
	add_ok(w->r, s1, 2, only_s1);
	add_ok(w->r, s1, 3, shared);
	add_ok(w->r, s2, 1, shared);
	add_ok(w->r, s2, 2, only_s2);

	registry_sub_free(w->r, s1);
	assert_int_equal(w->unwatch_calls, 1);
	assert_true(key_equal(&w->unwatched[0], &only_s1));
	assert_false(registry_target_exists(w->r, &only_s1));
	assert_int_equal(registry_target_monitors(w->r, &shared), 1);
	assert_true(registry_target_exists(w->r, &only_s2));
	assert_int_equal(registry_monitor_count(w->r), 2);
	assert_int_equal(registry_target_count(w->r), 2);
	assert_int_equal(registry_sub_count(w->r), 1);
	assert_true(registry_monitor_find(w->r, s2, 1, NULL));
	assert_true(registry_monitor_find(w->r, s2, 2, NULL));
}

static void test_sub_free_with_queued_downs_frees_them(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key a = proc_key(1, 1), b = proc_key(2, 2), c = proc_key(3, 3);

	/* s1 holds queued DOWNs of two targets, one death shared with s2, and
	 * an armed monitor; the sanitizers check that all of it is freed. */
	add_ok(w->r, s1, 1, a);
	add_ok(w->r, s2, 1, a);
	add_ok(w->r, s1, 2, b);
	add_ok(w->r, s1, 3, b);
	add_ok(w->r, s1, 4, c);
	fire(w->r, a, 1);
	fire(w->r, b, 2);
	registry_sub_free(w->r, s1);
	assert_int_equal(registry_queued_count(w->r), 1);
	assert_int_equal(registry_monitor_count(w->r), 0);
	assert_int_equal(w->unwatch_calls, 1);    /* c only: a and b had fired */
	assert_true(key_equal(&w->unwatched[0], &c));
	assert_int_equal(pop_one(w->r, s2).ref, 1);
}

static void test_sub_free_null_is_noop(void **state)
{
	struct world *w = *state;

	registry_sub_new(w->r, NULL);
	registry_sub_free(w->r, NULL);
	assert_int_equal(registry_sub_count(w->r), 1);
	registry_free(NULL);
}

static void test_sub_ids_count_from_one_and_are_never_reused(void **state)
{
	struct world *w = *state;
	struct reg_sub *a = registry_sub_new(w->r, NULL);
	struct reg_sub *b = registry_sub_new(w->r, NULL);
	struct reg_sub *c;

	assert_int_equal(registry_sub_id(a), 1);
	assert_int_equal(registry_sub_id(b), 2);
	registry_sub_free(w->r, b);
	registry_sub_free(w->r, a);
	for (uint64_t want = 3; want < 1003; want++) {
		c = registry_sub_new(w->r, NULL);
		assert_int_equal(registry_sub_id(c), want);
		registry_sub_free(w->r, c);
	}
	assert_int_equal(registry_sub_count(w->r), 0);
}

static void test_sub_keeps_its_owner(void **state)
{
	struct world *w = *state;
	int owner;
	struct reg_sub *s = registry_sub_new(w->r, &owner);

	assert_ptr_equal(registry_sub_owner(s), &owner);
}

static void test_counts_follow_adds_removes_fires_and_sub_frees(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k1 = proc_key(1, 1), k2 = proc_key(2, 2), k3 = proc_key(3, 3);

	assert_int_equal(registry_sub_count(w->r), 2);
	add_ok(w->r, s1, 1, k1);
	add_ok(w->r, s1, 2, k2);
	add_ok(w->r, s2, 1, k2);
	add_ok(w->r, s2, 2, k3);
	assert_int_equal(registry_monitor_count(w->r), 4);
	assert_int_equal(registry_target_count(w->r), 3);
	assert_int_equal(registry_sub_monitors(s1), 2);
	assert_int_equal(registry_sub_monitors(s2), 2);

	assert_int_equal(registry_monitor_remove(w->r, s1, 1), 0);
	assert_int_equal(registry_monitor_count(w->r), 3);
	assert_int_equal(registry_target_count(w->r), 2);
	assert_int_equal(registry_sub_monitors(s1), 1);

	fire(w->r, k2, 1);
	assert_int_equal(registry_monitor_count(w->r), 1);
	assert_int_equal(registry_queued_count(w->r), 2);
	assert_int_equal(registry_target_count(w->r), 1);
	assert_int_equal(registry_sub_monitors(s1), 0);
	assert_int_equal(registry_sub_queued(s1), 1);
	assert_int_equal(registry_sub_monitors(s2), 1);
	assert_int_equal(registry_sub_queued(s2), 1);

	registry_sub_free(w->r, s2);
	assert_int_equal(registry_monitor_count(w->r), 0);
	assert_int_equal(registry_queued_count(w->r), 1);
	assert_int_equal(registry_target_count(w->r), 0);
	assert_int_equal(registry_sub_count(w->r), 1);
}

static void test_armed_and_queued_counts_exact_through_fire_pop_remove(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key a = proc_key(1, 1), b = proc_key(2, 2);
	struct zm_down out[8];

#define COUNTS(armed, queued, armed1, queued1, armed2, queued2) do {            \
		assert_int_equal(registry_monitor_count(w->r), armed);         \
		assert_int_equal(registry_queued_count(w->r), queued);         \
		assert_int_equal(registry_sub_monitors(s1), armed1);           \
		assert_int_equal(registry_sub_queued(s1), queued1);            \
		assert_int_equal(registry_sub_monitors(s2), armed2);           \
		assert_int_equal(registry_sub_queued(s2), queued2);            \
	} while (0)

	for (uint64_t ref = 1; ref <= 4; ref++) {
		add_ok(w->r, s1, ref, a);
		add_ok(w->r, s2, ref, ref % 2 ? a : b);
	}
	add_ok(w->r, s1, 5, b);
	COUNTS(9, 0, 5, 0, 4, 0);
	fire(w->r, a, 1);                                  /* s1: 1-4, s2: 1, 3 */
	COUNTS(3, 6, 1, 4, 2, 2);
	assert_int_equal(registry_sub_pop(w->r, s1, out, 3), 3);
	COUNTS(3, 3, 1, 1, 2, 2);
	assert_int_equal(registry_monitor_remove(w->r, s2, 3), 1);   /* queued */
	COUNTS(3, 2, 1, 1, 2, 1);
	assert_int_equal(registry_monitor_remove(w->r, s2, 2), 0);   /* armed */
	COUNTS(2, 2, 1, 1, 1, 1);
	fire(w->r, b, 2);
	COUNTS(0, 4, 0, 2, 0, 2);
	assert_int_equal(registry_sub_pop(w->r, s2, out, 8), 2);
	COUNTS(0, 2, 0, 2, 0, 0);
	registry_sub_free(w->r, s1);
	assert_int_equal(registry_monitor_count(w->r), 0);
	assert_int_equal(registry_queued_count(w->r), 0);
#undef COUNTS
}

struct visit {
	size_t targets, monitors;
	uint64_t sum_a;
};

static void on_visit(void *ctx, const struct reg_key *key, size_t monitors)
{
	struct visit *v = ctx;

	v->targets++;
	v->monitors += monitors;
	v->sum_a += key->a;
}

static void test_foreach_target_visits_each_target_once(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct visit v = { 0 };

	add_ok(w->r, s, 1, proc_key(1, 0));
	add_ok(w->r, s, 2, proc_key(2, 0));
	add_ok(w->r, s, 3, proc_key(2, 0));
	add_ok(w->r, s, 4, proc_key(40, 0));
	registry_foreach_target(w->r, on_visit, &v);
	assert_int_equal(v.targets, 3);
	assert_int_equal(v.monitors, 4);
	assert_int_equal(v.sum_a, 43);
}

static void test_free_with_live_monitors_calls_nothing(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);

	add_ok(w->r, s, 1, proc_key(1, 1));
	add_ok(w->r, s, 2, proc_key(2, 2));
	registry_free(w->r);          /* frees s too; the sanitizers check for leaks */
	w->r = NULL;
	assert_int_equal(w->unwatch_calls, 0);
}

static void test_free_with_queued_downs_frees_them(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key a = proc_key(1, 1), b = proc_key(2, 2);

	add_ok(w->r, s1, 1, a);
	add_ok(w->r, s2, 1, a);
	add_ok(w->r, s1, 2, b);
	add_ok(w->r, s2, 2, b);
	fire(w->r, a, 1);
	fire(w->r, b, 2);
	pop_one(w->r, s2);
	registry_free(w->r);          /* the sanitizers check for leaks and double frees */
	w->r = NULL;
	assert_int_equal(w->unwatch_calls, 0);
}

/* ---- allocation failure ------------------------------------------------- */

static void test_alloc_failure_on_new_target_leaves_registry_unchanged(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key old = proc_key(1, 1), k = proc_key(2, 2);
	bool is_new = false;

	add_ok(w->r, s, 1, old);
	for (long n = 1; n <= 2; n++) {    /* the monitor, then the target */
		fail_nth_alloc(n);
		assert_int_equal(registry_monitor_add(w->r, s, 2, &k, &is_new), -ENOMEM);
		assert_false(is_new);
		assert_false(registry_target_exists(w->r, &k));
		assert_false(registry_monitor_find(w->r, s, 2, NULL));
		assert_int_equal(registry_monitor_count(w->r), 1);
		assert_int_equal(registry_target_count(w->r), 1);
		assert_int_equal(registry_sub_monitors(s), 1);
	}
	registry_set_calloc(NULL);
	assert_int_equal(registry_monitor_add(w->r, s, 2, &k, &is_new), 0);
	assert_true(is_new);
}

static void test_alloc_failure_on_known_target_leaves_registry_unchanged(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1);

	add_ok(w->r, s, 1, k);
	fail_nth_alloc(1);
	assert_int_equal(registry_monitor_add(w->r, s, 2, &k, NULL), -ENOMEM);
	assert_int_equal(registry_target_monitors(w->r, &k), 1);
	assert_int_equal(registry_monitor_count(w->r), 1);
	assert_false(registry_monitor_find(w->r, s, 2, NULL));
}

static void test_fire_alloc_failure_leaves_registry_unchanged(void **state)
{
	struct world *w = *state;
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(1, 1), other = proc_key(2, 2);
	struct zm_down d;

	add_ok(w->r, s1, 1, k);
	add_ok(w->r, s2, 1, k);
	add_ok(w->r, s1, 2, k);
	add_ok(w->r, s1, 3, other);
	fire(w->r, other, 1);                  /* s1 has one DOWN queued already */

	fail_nth_alloc(1);
	assert_int_equal(fire(w->r, k, 2), -ENOMEM);
	assert_int_equal(alloc_calls, 1);
	registry_set_calloc(NULL);
	assert_true(registry_target_exists(w->r, &k));
	assert_int_equal(registry_target_monitors(w->r, &k), 3);
	assert_int_equal(registry_monitor_count(w->r), 3);
	assert_int_equal(registry_queued_count(w->r), 1);
	assert_int_equal(registry_sub_monitors(s1), 2);
	assert_int_equal(registry_sub_queued(s1), 1);
	assert_int_equal(registry_sub_monitors(s2), 1);
	assert_int_equal(registry_sub_queued(s2), 0);
	assert_int_equal(registry_sub_oldest_ns(s1), 1);
	assert_int_equal(w->queued_calls, 1);

	/* The retry works and keeps the add order. */
	assert_int_equal(fire(w->r, k, 3), 3);
	d = pop_one(w->r, s1);
	assert_down(&d, 3, other);
	d = pop_one(w->r, s1);
	assert_down(&d, 1, k);
	d = pop_one(w->r, s1);
	assert_down(&d, 2, k);
	d = pop_one(w->r, s2);
	assert_down(&d, 1, k);
}

static void test_table_growth_failure_is_not_an_error(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);

	/* Only the bucket arrays ask for more than one element. */
	fail_countdown = 0;
	fail_nmemb_above = 1;
	registry_set_calloc(failing_calloc);
	for (uint64_t i = 1; i <= 1000; i++)
		add_ok(w->r, s, i, proc_key(i, 0));
	for (uint64_t i = 1; i <= 1000; i++)
		assert_true(registry_monitor_find(w->r, s, i, NULL));
	assert_int_equal(registry_target_count(w->r), 1000);
	registry_set_calloc(NULL);
}

/* A prefetch hint reads the table, never changes it: hits, misses, queued
 * monitors, an empty chain and a table in the middle of a resize. */
static void test_prefetch_hint_changes_nothing(void **state)
{
	struct world *w = *state;
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(9, 9);
	struct zm_down d;

	for (int stage = 0; stage < 2; stage++)
		registry_prefetch_ref(w->r, s, 1, stage);
	for (uint64_t ref = 1; ref <= 100; ref++)      /* 100 > 64 buckets: resizing */
		add_ok(w->r, s, ref, ref % 2 ? k : proc_key(ref, 1));
	assert_int_equal(fire(w->r, k, 1), 50);
	for (uint64_t ref = 0; ref <= 200; ref++)
		for (int stage = 0; stage < 2; stage++)
			registry_prefetch_ref(w->r, s, ref, stage);
	assert_int_equal(registry_monitor_count(w->r), 50); /* armed */
	assert_int_equal(registry_queued_count(w->r), 50);
	for (uint64_t ref = 1; ref <= 100; ref++)
		assert_true(registry_monitor_find(w->r, s, ref, NULL));
	assert_false(registry_monitor_find(w->r, s, 101, NULL));
	d = pop_one(w->r, s);
	assert_int_equal(d.ref, 1);
}

static void test_registry_new_alloc_failure_returns_null(void **state)
{
	(void)state;
	for (long n = 1; n <= 3; n++) {
		fail_nth_alloc(n);
		assert_null(registry_new(&test_ops, NULL));
	}
	registry_set_calloc(NULL);
}

static void test_sub_new_alloc_failure_returns_null(void **state)
{
	struct world *w = *state;
	struct reg_sub *s;

	fail_nth_alloc(1);
	assert_null(registry_sub_new(w->r, NULL));
	assert_int_equal(registry_sub_count(w->r), 0);
	registry_set_calloc(NULL);
	s = registry_sub_new(w->r, NULL);
	assert_int_equal(registry_sub_id(s), 1);  /* a failed attempt takes no id */
}

/* ---- scale -------------------------------------------------------------- */

static void test_hundred_thousand_monitors_one_target_ten_subs_each_popped_once(void **state)
{
	struct world *w = *state;
	enum { NSUBS = 10, N = 100000, BATCH = 777 };
	struct reg_sub *subs[NSUBS];
	struct reg_key k = proc_key(4242, 1);
	uint8_t *seen = calloc(N + 1, 1);
	struct zm_down *out = calloc(BATCH, sizeof(*out));
	size_t total = 0;

	assert_non_null(seen);
	assert_non_null(out);
	for (size_t i = 0; i < NSUBS; i++)
		subs[i] = registry_sub_new(w->r, NULL);
	/* Ref r goes to subscriber r % NSUBS: refs are unique across subs, so
	 * one array tells whether any DOWN came twice or to the wrong sub. */
	for (uint64_t ref = 1; ref <= N; ref++)
		add_ok(w->r, subs[ref % NSUBS], ref, k);
	assert_int_equal(registry_target_monitors(w->r, &k), N);

	assert_int_equal(fire(w->r, k, 5), N);
	assert_int_equal(w->queued_calls, NSUBS);
	assert_int_equal(registry_queued_count(w->r), N);
	assert_int_equal(registry_monitor_count(w->r), 0);
	for (size_t i = 0; i < NSUBS; i++) {
		uint64_t last = 0;
		size_t n;

		assert_int_equal(registry_sub_queued(subs[i]), N / NSUBS);
		while ((n = registry_sub_pop(w->r, subs[i], out, BATCH)) > 0) {
			for (size_t j = 0; j < n; j++) {
				uint64_t ref = out[j].ref;

				assert_true(ref >= 1 && ref <= N);
				assert_int_equal(ref % NSUBS, i);
				assert_true(ref > last);           /* add order */
				assert_int_equal(seen[ref], 0);
				seen[ref] = 1;
				last = ref;
				assert_int_equal(out[j].pid, 4242);
			}
			total += n;
		}
	}
	assert_int_equal(total, N);
	assert_int_equal(registry_queued_count(w->r), 0);
	assert_int_equal(registry_target_count(w->r), 0);
	assert_int_equal(w->unwatch_calls, 0);
	free(out);
	free(seen);
}

/* Fan-out is O(1) per DOWN and allocates nothing per DOWN: firing a million
 * monitors makes exactly one allocation, the shared death. */
static void test_fire_of_million_monitors_allocates_once(void **state)
{
	struct world *w = *state;
	enum { NSUBS = 4, N = 1000000 };
	struct reg_key k = proc_key(77, 1);
	struct reg_sub *subs[NSUBS];

	for (size_t i = 0; i < NSUBS; i++)
		subs[i] = registry_sub_new(w->r, NULL);
	for (uint64_t ref = 1; ref <= N; ref++)
		add_ok(w->r, subs[ref % NSUBS], ref, k);
	count_allocs();
	assert_int_equal(fire(w->r, k, 1), N);
	assert_int_equal(alloc_calls, 1);
	registry_set_calloc(NULL);
	assert_int_equal(registry_queued_count(w->r), N);
}

/* A small deterministic PRNG (xorshift64*), so failures reproduce. */
static uint64_t rng_next(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 0x2545f4914f6cdd1dULL;
}

static void test_many_targets_grow_tables(void **state)
{
	struct world *w = *state;
	enum { N = 200000 };
	struct reg_sub *s1 = registry_sub_new(w->r, NULL);
	struct reg_sub *s2 = registry_sub_new(w->r, NULL);
	bool *live = calloc(N, sizeof(*live));
	size_t nlive = N, unwatched_before;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	struct visit v = { 0 };

	assert_non_null(live);
	/* Target i: pid i, start time i*3; s1 watches it with ref i+1, s2
	 * watches every tenth one too with ref i+1. */
	for (size_t i = 0; i < N; i++) {
		bool is_new = false;
		struct reg_key k = proc_key(i, i * 3);

		assert_int_equal(registry_monitor_add(w->r, s1, i + 1, &k, &is_new), 0);
		assert_true(is_new);
		if (i % 10 == 0)
			add_ok(w->r, s2, i + 1, k);
		live[i] = true;
	}
	assert_int_equal(registry_target_count(w->r), N);
	assert_int_equal(registry_monitor_count(w->r), N + N / 10);

	/* Remove s1's monitor on about half the targets, at random. */
	for (size_t j = 0; j < N / 2; j++) {
		size_t i = rng_next(&rng) % N;

		if (!live[i]) {
			assert_int_equal(registry_monitor_remove(w->r, s1, i + 1), -ENOENT);
			continue;
		}
		assert_int_equal(registry_monitor_remove(w->r, s1, i + 1), 0);
		live[i] = false;
		nlive--;
	}

	/* A target survives if s1 still watches it or s2 does. */
	size_t want_targets = 0, want_monitors = 0;

	for (size_t i = 0; i < N; i++) {
		struct reg_key k = proc_key(i, i * 3), found;
		bool kept = live[i] || i % 10 == 0;
		size_t want = (size_t)live[i] + (i % 10 == 0);

		assert_int_equal(registry_target_exists(w->r, &k), kept);
		assert_int_equal(registry_target_monitors(w->r, &k), want);
		assert_int_equal(registry_monitor_find(w->r, s1, i + 1, &found), live[i]);
		if (live[i])
			assert_true(key_equal(&found, &k));
		want_targets += kept;
		want_monitors += want;
	}
	assert_int_equal(registry_target_count(w->r), want_targets);
	assert_int_equal(registry_monitor_count(w->r), want_monitors);
	assert_int_equal(registry_sub_monitors(s1), nlive);
	assert_int_equal(w->unwatch_calls, N - want_targets);
	registry_foreach_target(w->r, on_visit, &v);
	assert_int_equal(v.targets, want_targets);
	assert_int_equal(v.monitors, want_monitors);

	/* s1 leaves: only targets s2 does not share are unwatched. */
	unwatched_before = w->unwatch_calls;
	registry_sub_free(w->r, s1);
	assert_int_equal(registry_target_count(w->r), N / 10);
	assert_int_equal(w->unwatch_calls - unwatched_before, want_targets - N / 10);
	for (size_t i = 0; i < N; i += 10) {
		struct reg_key k = proc_key(i, i * 3);

		assert_true(registry_monitor_find(w->r, s2, i + 1, NULL));
		assert_int_equal(registry_target_monitors(w->r, &k), 1);
	}

	/* The tables shrink as they empty and still answer correctly. */
	for (size_t i = 0; i < N; i += 10) {
		struct reg_key k = proc_key(i, i * 3);

		if (i % 20 == 0)
			assert_int_equal(fire(w->r, k, i), 1);
	}
	assert_int_equal(registry_monitor_count(w->r), N / 20);
	assert_int_equal(registry_queued_count(w->r), N / 20);
	for (size_t i = 0; i < N; i += 20)
		assert_int_equal(pop_one(w->r, s2).ref, i + 1);
	assert_int_equal(registry_sub_queued(s2), 0);
	for (size_t i = 0; i < N; i += 10)
		assert_int_equal(registry_monitor_find(w->r, s2, i + 1, NULL), i % 20 != 0);
	assert_int_equal(registry_monitor_count(w->r), N / 20);
	free(live);
}

static size_t count_targets(const struct registry *r)
{
	struct visit v = { 0 };

	registry_foreach_target(r, on_visit, &v);
	return v.targets;
}

/* The tables resize a few buckets at a time: every answer in between must be
 * exact. Check after every single change, through a grow and a shrink. */
static void test_lookups_stay_exact_while_tables_resize(void **state)
{
	struct world *w = *state;
	enum { N = 3000 };
	struct reg_sub *s = registry_sub_new(w->r, NULL);
	uint64_t rng = 12345;
	uint64_t *order = malloc(N * sizeof(*order));

	assert_non_null(order);
	for (uint64_t i = 0; i < N; i++) {
		uint64_t probe = rng_next(&rng) % (i + 1);
		struct reg_key k = proc_key(probe, 0), found;

		add_ok(w->r, s, i + 1, proc_key(i, 0));
		assert_true(registry_monitor_find(w->r, s, probe + 1, &found));
		assert_true(key_equal(&found, &k));
		assert_true(registry_target_exists(w->r, &k));
		assert_false(registry_monitor_find(w->r, s, i + 2, NULL));
		assert_int_equal(count_targets(w->r), i + 1);
		order[i] = i;
	}
	for (size_t i = N - 1; i > 0; i--) {           /* shuffle */
		size_t j = rng_next(&rng) % (i + 1);
		uint64_t tmp = order[i];

		order[i] = order[j];
		order[j] = tmp;
	}
	for (size_t i = 0; i < N; i++) {
		struct reg_key gone = proc_key(order[i], 0);

		assert_int_equal(registry_monitor_remove(w->r, s, order[i] + 1), 0);
		assert_false(registry_target_exists(w->r, &gone));
		if (i + 1 < N) {
			struct reg_key next = proc_key(order[i + 1], 0);

			assert_true(registry_target_exists(w->r, &next));
			assert_true(registry_monitor_find(w->r, s, order[i + 1] + 1, NULL));
		}
		assert_int_equal(count_targets(w->r), N - i - 1);
	}
	assert_int_equal(w->unwatch_calls, N);
	free(order);
}

static void test_sub_free_of_many_targets_unwatches_each(void **state)
{
	struct world *w = *state;
	enum { N = 100000 };
	struct reg_sub *s = registry_sub_new(w->r, NULL);

	for (uint64_t i = 0; i < N; i++)
		add_ok(w->r, s, i + 1, proc_key(i, 7));
	registry_sub_free(w->r, s);
	assert_int_equal(w->unwatch_calls, N);
	assert_int_equal(registry_target_count(w->r), 0);
	assert_int_equal(registry_monitor_count(w->r), 0);
}

/* ---- counters (the agent's metrics) ------------------------------------- */

static void test_counters_account_for_every_monitor_once(void **state)
{
	struct world *w = *state;
	struct reg_sub *a = registry_sub_new(w->r, NULL), *b = registry_sub_new(w->r, NULL);
	struct reg_key p1 = proc_key(10, 1), p2 = proc_key(11, 1);
	struct reg_key t1 = { .kind = ZM_TARGET_TCP, .a = 77 };
	const struct registry_counters *c = registry_counters(w->r);
	struct zm_down d = death_of(&p1), out[4];
	uint64_t gone;

	add_ok(w->r, a, 1, p1);
	add_ok(w->r, a, 2, p1);
	add_ok(w->r, a, 3, p2);
	add_ok(w->r, b, 1, p1);
	add_ok(w->r, b, 2, t1);
	assert_int_equal(c->added[ZM_TARGET_PROCESS], 4);
	assert_int_equal(c->added[ZM_TARGET_TCP], 1);
	assert_int_equal(c->targets[ZM_TARGET_PROCESS], 2);
	assert_int_equal(c->targets[ZM_TARGET_TCP], 1);

	assert_int_equal(registry_target_fire(w->r, &p1, &d, 5), 3);   /* a:1, a:2, b:1 queued */
	assert_int_equal(c->targets[ZM_TARGET_PROCESS], 1);
	assert_int_equal(registry_queued_max(w->r), 2);
	assert_int_equal(registry_sub_pop(w->r, a, out, 1), 1);         /* a:1 sent */
	assert_int_equal(registry_monitor_remove(w->r, a, 2), 1);       /* a:2 flushed */
	assert_int_equal(registry_monitor_remove(w->r, a, 3), 0);       /* a:3 demonitored */
	registry_sub_free(w->r, b);                                      /* b:1 queued, b:2 armed */
	assert_int_equal(c->popped, 1);
	assert_int_equal(c->removed_queued, 1);
	assert_int_equal(c->removed_armed, 1);
	assert_int_equal(c->dropped_queued, 1);
	assert_int_equal(c->dropped_armed, 1);
	assert_int_equal(c->targets[ZM_TARGET_PROCESS], 0);
	assert_int_equal(c->targets[ZM_TARGET_TCP], 0);
	gone = c->popped + c->removed_armed + c->removed_queued + c->dropped_armed + c->dropped_queued;
	assert_int_equal(c->added[ZM_TARGET_PROCESS] + c->added[ZM_TARGET_TCP] - gone,
			 registry_monitor_count(w->r) + registry_queued_count(w->r));
	assert_int_equal(registry_queued_max(w->r), 0);
}

static void test_shared_counter_follows_every_way_a_monitor_leaves(void **state)
{
	struct world *w = *state;
	struct reg_sub *a = registry_sub_new(w->r, NULL), *b = registry_sub_new(w->r, NULL);
	struct reg_key p1 = proc_key(10, 1), p2 = proc_key(11, 1);
	struct zm_down d = death_of(&p1), out[4];
	size_t held = 0;

	registry_sub_set_counter(a, &held);
	registry_sub_set_counter(b, &held);
	add_ok(w->r, a, 1, p1);
	add_ok(w->r, a, 2, p1);
	add_ok(w->r, a, 3, p2);
	add_ok(w->r, b, 1, p1);
	add_ok(w->r, b, 2, p2);
	assert_int_equal(held, 5);
	assert_int_equal(registry_sub_held(a), 3);
	/* Firing moves monitors to the queues: still held until read. */
	assert_int_equal(registry_target_fire(w->r, &p1, &d, 5), 3);
	assert_int_equal(held, 5);
	assert_int_equal(registry_sub_held(a), 3);
	assert_int_equal(registry_sub_pop(w->r, a, out, 1), 1);         /* popped */
	assert_int_equal(held, 4);
	assert_int_equal(registry_monitor_remove(w->r, a, 2), 1);       /* queued, flushed */
	assert_int_equal(registry_monitor_remove(w->r, a, 3), 0);       /* armed, demonitored */
	assert_int_equal(held, 2);
	assert_int_equal(registry_sub_held(a), 0);
	registry_sub_free(w->r, b);                                      /* one queued, one armed */
	assert_int_equal(held, 0);
}

static void test_sub_without_counter_counts_nothing_shared(void **state)
{
	struct world *w = *state;
	struct reg_sub *a = registry_sub_new(w->r, NULL), *b = registry_sub_new(w->r, NULL);
	size_t held = 0;

	registry_sub_set_counter(a, &held);
	add_ok(w->r, a, 1, proc_key(1, 1));
	add_ok(w->r, b, 1, proc_key(1, 1));
	assert_int_equal(held, 1);
	assert_int_equal(registry_sub_held(b), 1);
}

static void test_target_owner_is_kept_until_the_target_goes(void **state)
{
	struct world *w = *state;
	struct reg_sub *a = registry_sub_new(w->r, NULL);
	struct reg_key k = proc_key(10, 1);
	struct reg_owner o = { .ruid = 1000, .suid = 0 }, got = { 0 };

	/* No target, no owner; setting one on a missing target does nothing. */
	registry_target_set_owner(w->r, &k, &o);
	assert_int_equal(registry_target_owner(w->r, &k, &got), -ENOENT);
	add_ok(w->r, a, 1, k);
	assert_int_equal(registry_target_owner(w->r, &k, &got), -ENOENT);
	registry_target_set_owner(w->r, &k, &o);
	assert_int_equal(registry_target_owner(w->r, &k, &got), 0);
	assert_int_equal(got.ruid, 1000);
	assert_int_equal(got.suid, 0);
	/* A new target of the same key (after the old one went) starts unknown. */
	assert_int_equal(registry_monitor_remove(w->r, a, 1), 0);
	add_ok(w->r, a, 2, k);
	assert_int_equal(registry_target_owner(w->r, &k, &got), -ENOENT);
}

static void collect_ref(void *ctx, const struct reg_sub *s, uint64_t ref)
{
	uint64_t *refs = ctx;

	refs[refs[0]++ + 1] = ref * 100 + registry_sub_id(s);
}

static void test_foreach_monitor_visits_a_target_s_monitors_in_order(void **state)
{
	struct world *w = *state;
	struct reg_sub *a = registry_sub_new(w->r, NULL), *b = registry_sub_new(w->r, NULL);
	struct reg_key p1 = proc_key(10, 1), none = proc_key(99, 1);
	uint64_t refs[8] = { 0 };

	add_ok(w->r, a, 5, p1);
	add_ok(w->r, b, 6, p1);
	add_ok(w->r, a, 7, proc_key(12, 1));
	registry_target_foreach_monitor(w->r, &p1, collect_ref, refs);
	assert_int_equal(refs[0], 2);
	assert_int_equal(refs[1], 5 * 100 + registry_sub_id(a));
	assert_int_equal(refs[2], 6 * 100 + registry_sub_id(b));
	registry_target_foreach_monitor(w->r, &none, collect_ref, refs);
	assert_int_equal(refs[0], 2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_new_registry_is_empty),
		T(test_new_registry_accepts_null_ops),
		T(test_first_monitor_creates_target),
		T(test_second_monitor_same_target_is_not_new),
		T(test_new_target_flag_may_be_null),
		T(test_duplicate_ref_rejected),
		T(test_duplicate_ref_on_same_target_rejected),
		T(test_ref_zero_rejected),
		T(test_same_ref_in_two_subscribers_is_independent),
		T(test_keys_differing_in_one_field_are_distinct_targets),
		T(test_key_padding_is_ignored),
		T(test_monitor_find_unknown_ref_is_false),
		T(test_fire_queues_downs_in_add_order_per_subscriber),
		T(test_fire_disarms_monitors_and_forgets_target),
		T(test_find_reports_queued_monitor_with_its_key),
		T(test_fire_does_not_unwatch),
		T(test_fire_unknown_target_returns_zero),
		T(test_fire_twice_second_is_noop),
		T(test_fire_skips_removed_monitor),
		T(test_queued_callback_once_per_empty_to_nonempty_transition),
		T(test_queued_callback_sees_the_whole_fire),
		T(test_fire_without_queued_callback_still_queues),
		T(test_pop_respects_max_and_fifo_across_targets),
		T(test_pop_takes_only_that_subscribers_downs),
		T(test_popped_ref_becomes_reusable_and_not_before),
		T(test_oldest_ns_follows_the_head),
		T(test_oldest_ns_moves_when_head_is_demonitored),
		T(test_demonitor_queued_ref_returns_one_and_is_never_popped),
		T(test_demonitor_armed_ref_returns_zero),
		T(test_demonitor_every_queued_down_of_a_target_frees_its_death),
		T(test_remove_last_monitor_unwatches_target),
		T(test_remove_not_last_does_not_unwatch),
		T(test_remove_unknown_ref_is_enoent),
		T(test_remove_twice_second_is_enoent),
		T(test_removed_ref_can_be_reused),
		T(test_sub_free_drops_all_and_unwatches_only_emptied_targets),
		T(test_sub_free_with_queued_downs_frees_them),
		T(test_sub_free_null_is_noop),
		T(test_sub_ids_count_from_one_and_are_never_reused),
		T(test_sub_keeps_its_owner),
		T(test_counts_follow_adds_removes_fires_and_sub_frees),
		T(test_armed_and_queued_counts_exact_through_fire_pop_remove),
		T(test_foreach_target_visits_each_target_once),
		T(test_free_with_live_monitors_calls_nothing),
		T(test_free_with_queued_downs_frees_them),
		T(test_alloc_failure_on_new_target_leaves_registry_unchanged),
		T(test_alloc_failure_on_known_target_leaves_registry_unchanged),
		T(test_fire_alloc_failure_leaves_registry_unchanged),
		T(test_table_growth_failure_is_not_an_error),
		T(test_prefetch_hint_changes_nothing),
		T(test_registry_new_alloc_failure_returns_null),
		T(test_counters_account_for_every_monitor_once),
		T(test_shared_counter_follows_every_way_a_monitor_leaves),
		T(test_sub_without_counter_counts_nothing_shared),
		T(test_target_owner_is_kept_until_the_target_goes),
		T(test_foreach_monitor_visits_a_target_s_monitors_in_order),
		T(test_sub_new_alloc_failure_returns_null),
		T(test_hundred_thousand_monitors_one_target_ten_subs_each_popped_once),
		T(test_fire_of_million_monitors_allocates_once),
		T(test_many_targets_grow_tables),
		T(test_lookups_stay_exact_while_tables_resize),
		T(test_sub_free_of_many_targets_unwatches_each),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
