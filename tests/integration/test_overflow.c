/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Nothing lost when the ring buffer overflows: more watched processes die
 * at once than the kernel's ring has room for (a small --ring-size, and the
 * agent stopped so that it reads nothing meanwhile). The kernel counts what
 * it could not put in the ring, the agent finds those deaths again in the
 * watch map, and every monitor still gets exactly one DOWN with its real
 * reason.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zenmon/kern.h"

/* 64 KiB holds 65536 / ZM_RINGBUF_PROC_RECORD (40) = 1,638 exit records. */
#define RING "64K"
#define RING_RECORDS (65536U / ZM_RINGBUF_PROC_RECORD)
#define MANY 4000U

static void check_down(const struct zmh_collector *col, uint64_t ref, const struct zmh_child *c,
		       size_t i)
{
	const char *wrong = zmh_varied_down_wrong(col, ref, c, i);

	if (wrong)
		fail_msg("%s", wrong);
}

static void test_deaths_past_a_full_ring_each_get_one_down_with_the_real_reason(void **state)
{
	static const char *const args[] = { "--ring-size", RING, NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zmh_child *ch = calloc(MANY, sizeof(*ch));
	uint64_t *refs = calloc(MANY, sizeof(*refs));
	uint64_t dropped = 0;
	struct zm_client *cl;
	struct zmh_agent a;
	char *status;
	long got;

	(void)zmh_env(state);
	assert_non_null(ch);
	assert_non_null(refs);
	zmh_raise_nofile(4 * MANY); /* a control pipe per child */
	assert_int_equal(zmh_extra_agent_start(&a, args), 0);
	assert_int_equal(zmh_connect(&a, "it-overflow", col, &cl), 0);
	for (size_t i = 0; i < MANY; i++) {
		assert_int_equal(zmh_child_spawn(&ch[i]), 0);
		assert_int_equal(zm_monitor_pid(cl, ch[i].pid, &refs[i]), 0);
	}
	assert_int_equal(zmh_sync(cl, col), 0);

	/* The agent reads nothing while they all die: the ring fills. */
	assert_int_equal(kill(a.pid, SIGSTOP), 0);
	for (size_t i = 0; i < MANY; i++)
		assert_int_equal(zmh_child_end_varied(&ch[i], i), 0);
	for (size_t i = 0; i < MANY; i++)
		assert_int_equal(zmh_child_reap(&ch[i]), 0);
	assert_int_equal(kill(a.pid, SIGCONT), 0);

	got = zmh_wait_downs(cl, col, MANY, ZMH_TIMEOUT_MS * 2);
	if (got != (long)MANY) {
		zmh_agent_dump_log(&a);
		fail_msg("%ld DOWNs after %u deaths past a ring of %u records, want %u", got, MANY,
			 RING_RECORDS, MANY);
	}
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	for (size_t i = 0; i < MANY; i++)
		check_down(col, refs[i], &ch[i], i);

	/* The premise: the kernel did drop records, and the agent said so. */
	assert_int_equal(zmh_status(cl, &status), 0);
	assert_int_equal(zmh_status_u64(status, "ringbuf_dropped", &dropped), 0);
	free(status);
	printf("  %u deaths, ring of %u records: the kernel dropped %llu, all recovered\n", MANY,
	       RING_RECORDS, (unsigned long long)dropped);
	if (dropped < MANY - RING_RECORDS)
		fail_msg("the kernel dropped %llu records, want at least %u: the test did not "
			 "overflow the ring", (unsigned long long)dropped, MANY - RING_RECORDS);
	assert_true(zmh_agent_log_has(&a, "recovering them from the watch map"));
	/* Every watch went with its DOWN, the recovered ones too. */
	assert_int_equal(zmh_map_wait_count_pids(a.pin_dir, (pid_t[]){ ch[0].pid, ch[MANY - 1].pid },
						 2, 0, ZMH_TIMEOUT_MS), 0);

	zmh_client_close(cl);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
	zmh_collector_free(col);
	free(ch);
	free(refs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_deaths_past_a_full_ring_each_get_one_down_with_the_real_reason),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
