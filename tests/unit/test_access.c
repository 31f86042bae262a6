// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * access: the policy (who may monitor what), the id lists of allow-uids and
 * allow-groups, the quota verdicts, the request-rate bucket and the per-uid
 * table. Pure functions on values, with an injected clock; names resolve
 * through this host's user database (root and nobody exist on any Linux).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/capability.h>

#include "access.h"
#include "priv.h"

#define NS 1000000000ULL

static const struct access_ids no_ids;

/* ---- policy -------------------------------------------------------------- */

static void test_root_is_unrestricted(void **state)
{
	struct access_peer root = { .uid = 0, .gid = 0 };

	(void)state;
	assert_true(access_unrestricted(&root, &no_ids, &no_ids));
}

static void test_plain_user_is_restricted(void **state)
{
	uint32_t groups[] = { 100, 27 };
	struct access_peer u = { .uid = 1000, .gid = 1000, .groups = groups, .ngroups = 2 };

	(void)state;
	assert_false(access_unrestricted(&u, &no_ids, &no_ids));
}

static void test_allow_uids_lifts_the_restriction(void **state)
{
	struct access_ids allow = { .id = { 5, 1000 }, .n = 2 };
	struct access_peer u = { .uid = 1000, .gid = 1000 }, v = { .uid = 1001, .gid = 1000 };

	(void)state;
	assert_true(access_unrestricted(&u, &allow, &no_ids));
	assert_false(access_unrestricted(&v, &allow, &no_ids));
}

static void test_allow_groups_match_primary_or_supplementary_group(void **state)
{
	struct access_ids allow = { .id = { 27 }, .n = 1 };
	uint32_t groups[] = { 100, 27 };
	struct access_peer primary = { .uid = 1000, .gid = 27 };
	struct access_peer supplementary = { .uid = 1001, .gid = 1001, .groups = groups, .ngroups = 2 };
	struct access_peer neither = { .uid = 1002, .gid = 1002, .groups = groups, .ngroups = 1 };

	(void)state;
	assert_true(access_unrestricted(&primary, &no_ids, &allow));
	assert_true(access_unrestricted(&supplementary, &no_ids, &allow));
	assert_false(access_unrestricted(&neither, &no_ids, &allow));
}

static void test_owner_is_the_real_or_the_saved_uid(void **state)
{
	/* A set-user-ID root program started by 1000: 1000 may signal it. */
	struct reg_owner setuid_prog = { .ruid = 1000, .suid = 0 };
	/* Root that took uid 1000 only as its effective uid keeps it saved. */
	struct reg_owner dropped = { .ruid = 0, .suid = 1000 };
	struct reg_owner other = { .ruid = 1001, .suid = 1001 };

	(void)state;
	assert_true(access_owns(1000, &setuid_prog));
	assert_true(access_owns(1000, &dropped));
	assert_false(access_owns(1000, &other));
	assert_false(access_owns(1002, &setuid_prog));
}

/* ---- id lists ------------------------------------------------------------ */

static void test_parse_ids_numbers_and_names(void **state)
{
	struct access_ids ids;
	char err[256];

	(void)state;
	assert_int_equal(access_parse_ids("1000, root  nobody,7", false, &ids, err, sizeof(err)), 0);
	assert_int_equal(ids.n, 4);
	assert_int_equal(ids.id[0], 1000);
	assert_int_equal(ids.id[1], 0);
	assert_int_equal(ids.id[2], 65534);
	assert_int_equal(ids.id[3], 7);
	assert_int_equal(access_parse_ids("root", true, &ids, err, sizeof(err)), 0);
	assert_int_equal(ids.n, 1);
	assert_int_equal(ids.id[0], 0);
}

static void test_parse_ids_empty_and_duplicates(void **state)
{
	struct access_ids ids = { .n = 3 };
	char err[256];

	(void)state;
	assert_int_equal(access_parse_ids("", false, &ids, err, sizeof(err)), 0);
	assert_int_equal(ids.n, 0);
	assert_int_equal(access_parse_ids(" , ,", false, &ids, err, sizeof(err)), 0);
	assert_int_equal(ids.n, 0);
	assert_int_equal(access_parse_ids("5,5,root,0", false, &ids, err, sizeof(err)), 0);
	assert_int_equal(ids.n, 2);
}

static void test_parse_ids_unknown_name_says_which(void **state)
{
	struct access_ids ids = { .n = 1, .id = { 42 } };
	char err[256];

	(void)state;
	assert_int_equal(access_parse_ids("root,no-such-user-zm", false, &ids, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "no user 'no-such-user-zm'"));
	assert_int_equal(ids.n, 1); /* untouched on error */
	assert_int_equal(access_parse_ids("no-such-group-zm", true, &ids, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no group 'no-such-group-zm'"));
	/* (uid_t)-1 means "no id" to the kernel: not an id. */
	assert_int_equal(access_parse_ids("4294967295", false, &ids, err, sizeof(err)), -EINVAL);
}

static void test_parse_ids_too_many_is_einval(void **state)
{
	char text[ACCESS_MAX_IDS * 8 + 16] = "";
	struct access_ids ids;
	char err[256];
	size_t off = 0;

	(void)state;
	for (int i = 0; i <= ACCESS_MAX_IDS; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%d,", 2000 + i);
	assert_int_equal(access_parse_ids(text, false, &ids, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "more than"));
	text[off - 5] = '\0'; /* drop the last one: exactly the maximum */
	assert_int_equal(access_parse_ids(text, false, &ids, err, sizeof(err)), 0);
	assert_int_equal(ids.n, ACCESS_MAX_IDS);
}

static void test_format_ids_reads_back(void **state)
{
	struct access_ids ids = { .id = { 0, 1000, 65534 }, .n = 3 }, back;
	char buf[64], err[128];

	(void)state;
	access_format_ids(&ids, buf, sizeof(buf));
	assert_string_equal(buf, "0,1000,65534");
	assert_int_equal(access_parse_ids(buf, false, &back, err, sizeof(err)), 0);
	assert_memory_equal(&back, &ids, sizeof(ids));
	ids.n = 0;
	access_format_ids(&ids, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void test_parse_user_takes_its_primary_group(void **state)
{
	uint32_t uid = 1, gid = 1;
	char err[256];

	(void)state;
	assert_int_equal(access_parse_user("nobody", &uid, &gid, err, sizeof(err)), 0);
	assert_int_equal(uid, 65534);
	assert_int_equal(gid, 65534);
	assert_int_equal(access_parse_user("0", &uid, &gid, err, sizeof(err)), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	/* A uid without an entry has no group to take. */
	assert_int_equal(access_parse_user("3999999", &uid, &gid, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no user"));
}

/* ---- quotas -------------------------------------------------------------- */

static void test_monitor_quota_verdicts(void **state)
{
	struct access_quotas q = { .monitors_per_subscriber = 3, .monitors_per_uid = 5 };

	(void)state;
	assert_int_equal(access_monitor_quota(&q, 0, 0), ACCESS_OK);
	assert_int_equal(access_monitor_quota(&q, 2, 4), ACCESS_OK);
	assert_int_equal(access_monitor_quota(&q, 3, 3), ACCESS_SUBSCRIBER_FULL);
	assert_int_equal(access_monitor_quota(&q, 1, 5), ACCESS_UID_FULL);
}

static void test_monitor_quota_zero_is_no_limit(void **state)
{
	struct access_quotas q = { 0 };

	(void)state;
	assert_int_equal(access_monitor_quota(&q, 1000000000, 1000000000), ACCESS_OK);
}

static void test_only_root_is_exempt(void **state)
{
	(void)state;
	assert_true(access_quota_exempt(0));
	assert_false(access_quota_exempt(1));
	assert_false(access_quota_exempt(65534));
}

static void test_rate_gives_a_second_s_worth_then_refills(void **state)
{
	struct access_rate r;
	uint64_t t = 5 * NS;
	int taken = 0;

	(void)state;
	access_rate_init(&r, 10, t);
	while (access_rate_take(&r, t))
		taken++;
	assert_int_equal(taken, 10);
	/* One token every 100 ms: not a moment before. */
	assert_false(access_rate_take(&r, t + 99999999));
	assert_true(access_rate_take(&r, t + 100000000));
	assert_false(access_rate_take(&r, t + 100000000));
	/* Idle for a minute: the burst is still one second's worth. */
	taken = 0;
	while (access_rate_take(&r, t + 60 * NS))
		taken++;
	assert_int_equal(taken, 10);
}

static void test_rate_zero_is_unlimited(void **state)
{
	struct access_rate r;

	(void)state;
	access_rate_init(&r, 0, 0);
	for (int i = 0; i < 100000; i++)
		assert_true(access_rate_take(&r, 0));
}

static void test_uid_table_counts_and_forgets(void **state)
{
	struct access_table t = { 0 };
	struct access_uid *a, *b, *again;

	(void)state;
	a = access_uid_get(&t, 1000);
	b = access_uid_get(&t, 1001);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(t.n, 2);
	again = access_uid_get(&t, 1000);
	assert_ptr_equal(again, a);
	a->connections = 2;
	a->monitors = 7;
	/* Kept while it counts anything. */
	access_uid_release(&t, a);
	assert_int_equal(t.n, 2);
	a->connections = 0;
	access_uid_release(&t, a);
	assert_int_equal(t.n, 2);
	a->monitors = 0;
	access_uid_release(&t, a);
	assert_int_equal(t.n, 1);
	access_uid_release(&t, NULL);
	access_table_free(&t);
	assert_int_equal(t.n, 0);
	assert_null(t.head);
}

/* ---- the capabilities kept ----------------------------------------------- */

static void test_kept_capabilities_are_ptrace_and_net_admin_when_raised(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(priv_kept_caps(), 1ULL << CAP_SYS_PTRACE | 1ULL << CAP_NET_ADMIN);
	assert_int_equal(priv_effective_caps(), 1ULL << CAP_SYS_PTRACE);
	assert_string_equal(priv_caps_text(priv_kept_caps(), buf, sizeof(buf)),
			    "cap_net_admin,cap_sys_ptrace");
	assert_string_equal(priv_caps_text(0, buf, sizeof(buf)), "none");
	assert_string_equal(priv_caps_text(1ULL << CAP_SYS_PTRACE | 1ULL << 40, buf, sizeof(buf)),
			    "cap_sys_ptrace,cap_40");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_is_unrestricted),
		cmocka_unit_test(test_plain_user_is_restricted),
		cmocka_unit_test(test_allow_uids_lifts_the_restriction),
		cmocka_unit_test(test_allow_groups_match_primary_or_supplementary_group),
		cmocka_unit_test(test_owner_is_the_real_or_the_saved_uid),
		cmocka_unit_test(test_parse_ids_numbers_and_names),
		cmocka_unit_test(test_parse_ids_empty_and_duplicates),
		cmocka_unit_test(test_parse_ids_unknown_name_says_which),
		cmocka_unit_test(test_parse_ids_too_many_is_einval),
		cmocka_unit_test(test_format_ids_reads_back),
		cmocka_unit_test(test_parse_user_takes_its_primary_group),
		cmocka_unit_test(test_monitor_quota_verdicts),
		cmocka_unit_test(test_monitor_quota_zero_is_no_limit),
		cmocka_unit_test(test_only_root_is_exempt),
		cmocka_unit_test(test_rate_gives_a_second_s_worth_then_refills),
		cmocka_unit_test(test_rate_zero_is_unlimited),
		cmocka_unit_test(test_uid_table_counts_and_forgets),
		cmocka_unit_test(test_kept_capabilities_are_ptrace_and_net_admin_when_raised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
