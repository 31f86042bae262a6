/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The registry and the kernel map agree: one kernel watch per target however
 * many monitors, none left once nobody needs it (DOWN, demonitor,
 * disconnect); demonitor means silence.
 */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANY 500 /* per client: 1000 monitors on one target across two clients */

static void test_many_monitors_on_one_target_share_one_kernel_watch(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col[2] = { zmh_collector_new(), zmh_collector_new() };
	struct zm_client *cl[2];
	struct zmh_child c;
	uint64_t *refs[2];

	refs[0] = calloc(MANY, sizeof(uint64_t));
	refs[1] = calloc(MANY, sizeof(uint64_t));
	assert_non_null(refs[0]);
	assert_non_null(refs[1]);
	assert_int_equal(zmh_connect(&env->agent, "it-many-a", col[0], &cl[0]), 0);
	assert_int_equal(zmh_connect(&env->agent, "it-many-b", col[1], &cl[1]), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);

	for (int i = 0; i < MANY; i++) {
		/* client a names it by pid + start, client b by pid alone */
		assert_int_equal(zm_monitor_pid_start(cl[0], c.pid, c.start_ticks, &refs[0][i]), 0);
		assert_int_equal(zm_monitor_pid(cl[1], c.pid, &refs[1][i]), 0);
	}
	assert_int_equal(zmh_sync(cl[0], col[0]), 0);
	assert_int_equal(zmh_sync(cl[1], col[1]), 0);
	assert_int_equal(col[0]->n + col[1]->n, 0);
	assert_int_equal(col[0]->nerr + col[1]->nerr, 0);
	assert_int_equal(zm_active_monitors(cl[0]), MANY);
	assert_int_equal(zm_active_monitors(cl[1]), MANY);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, c.pid), 1);

	assert_int_equal(zmh_child_kill(&c, SIGKILL), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_wait_downs_multi(cl, col, 2, 2 * MANY, 3 * ZMH_TIMEOUT_MS), 2 * MANY);
	assert_int_equal(zmh_quiet(cl[0], col[0], ZMH_QUIET_MS), 0);
	assert_int_equal(zmh_quiet(cl[1], col[1], 0), 0);

	for (int k = 0; k < 2; k++) {
		assert_int_equal(col[k]->n, MANY);
		for (int i = 0; i < MANY; i++) {
			const struct zm_down_info *d;
			size_t n = zmh_collector_count(col[k], refs[k][i], &d);

			if (n != 1)
				fail_msg("client %d ref %llu got %zu DOWNs, want 1", k,
					 (unsigned long long)refs[k][i], n);
			assert_int_equal(d->reason, ZM_DOWN_KILLED);
			assert_int_equal(d->signal, SIGKILL);
			assert_int_equal(d->pid, c.pid);
			assert_int_equal(d->start_ticks, c.start_ticks);
		}
		assert_int_equal(zm_active_monitors(cl[k]), 0);
	}
	assert_int_equal(zmh_map_wait_count(env->agent.pin_dir, c.pid, 0, ZMH_TIMEOUT_MS), 0);
	free(refs[0]);
	free(refs[1]);
}

static void test_demonitor_then_death_yields_no_down(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-demon", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zm_demonitor(cl, ref, 0), 0);
	assert_int_equal(zm_active_monitors(cl), 0);
	assert_int_equal(zmh_sync(cl, col), 0);

	assert_int_equal(zmh_child_exit(&c, 1), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 0);
	assert_int_equal(col->nerr, 0);
}

static void test_demonitor_of_last_monitor_removes_kernel_watch(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t r1 = 0, r2 = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-demon", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &r1), 0);
	assert_int_equal(zm_monitor_pid(cl, c.pid, &r2), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, c.pid), 1);

	assert_int_equal(zm_demonitor(cl, r1, ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, c.pid), 1);

	/* SYNCED promises the kernel's side too: the watch is gone at once. */
	assert_int_equal(zm_demonitor(cl, r2, ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, c.pid), 0);
	assert_int_equal(col->nerr, 0);
	assert_int_equal(col->n, 0);
}

static void test_demonitor_flush_drops_down_received_but_not_dispatched(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zmh_collector *other = zmh_collector_new();
	struct zm_client *cl, *witness;
	struct zmh_child c;
	uint64_t ref = 0, wref = 0;
	struct pollfd pfd;

	assert_int_equal(zmh_connect(&env->agent, "it-flush", col, &cl), 0);
	assert_int_equal(zmh_connect(&env->agent, "it-flush-witness", other, &witness), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zm_monitor_pid_start(witness, c.pid, c.start_ticks, &wref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_sync(witness, other), 0);

	assert_int_equal(zmh_child_exit(&c, 2), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	/* The witness sees the DOWN: the agent has sent ours too (same target,
	 * same dispatch). Then make sure our socket holds it, undispatched. */
	assert_int_equal(zmh_wait_downs(witness, other, 1, ZMH_TIMEOUT_MS), 1);
	pfd = (struct pollfd){ .fd = zm_fd(cl), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, ZMH_TIMEOUT_MS), 1);
	zmh_sleep_ms(50);

	assert_int_equal(zm_demonitor(cl, ref, ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zm_active_monitors(cl), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 0);
}

static void test_demonitor_flush_after_dispatch_was_possible_still_silences(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;

	/* The race the flag exists for: demonitor while the DOWN may be anywhere
	 * between the kernel and the callback. */
	assert_int_equal(zmh_connect(&env->agent, "it-flush", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_child_exit(&c, 2), 0);
	assert_int_equal(zm_demonitor(cl, ref, ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 0);
	/* the agent may answer ENOENT (the DOWN was on its way): that is fine */
	for (size_t i = 0; i < col->nerr; i++)
		assert_int_equal(col->errs[i].error, ENOENT);
}

static void test_disconnect_removes_every_kernel_watch_nobody_else_needs(void **state)
{
	enum { N = 100 };
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col_a = zmh_collector_new(), *col_b = zmh_collector_new();
	struct zm_client *a, *b;
	struct zmh_child *kids = calloc(N, sizeof(*kids));
	struct zmh_child shared;
	pid_t *pids = calloc(N, sizeof(pid_t));
	uint64_t ref, bref = 0;

	assert_non_null(kids);
	assert_non_null(pids);
	assert_int_equal(zmh_connect(&env->agent, "it-leaver", col_a, &a), 0);
	assert_int_equal(zmh_connect(&env->agent, "it-stayer", col_b, &b), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(zmh_child_spawn(&kids[i]), 0);
		pids[i] = kids[i].pid;
		assert_int_equal(zm_monitor_pid_start(a, kids[i].pid, kids[i].start_ticks, &ref), 0);
	}
	assert_int_equal(zmh_child_spawn(&shared), 0);
	assert_int_equal(zm_monitor_pid_start(a, shared.pid, shared.start_ticks, &ref), 0);
	assert_int_equal(zm_monitor_pid_start(b, shared.pid, shared.start_ticks, &bref), 0);
	assert_int_equal(zmh_sync(a, col_a), 0);
	assert_int_equal(zmh_sync(b, col_b), 0);
	assert_int_equal(col_a->nerr + col_b->nerr, 0);
	assert_int_equal(zmh_map_count_pids(env->agent.pin_dir, pids, N), N);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, shared.pid), 1);

	zmh_client_close(a);
	assert_int_equal(zmh_sync(b, col_b), 0);
	assert_int_equal(zmh_map_wait_count_pids(env->agent.pin_dir, pids, N, 0, ZMH_TIMEOUT_MS), 0);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, shared.pid), 1);

	/* the other subscriber's monitor on the shared target still works */
	assert_int_equal(zmh_child_exit(&shared, 8), 0);
	assert_int_equal(zmh_child_reap(&shared), 0);
	assert_int_equal(zmh_wait_downs(b, col_b, 1, ZMH_TIMEOUT_MS), 1);
	{
		const struct zm_down_info *d;

		assert_int_equal(zmh_collector_count(col_b, bref, &d), 1);
		assert_int_equal(d->reason, ZM_DOWN_EXITED);
		assert_int_equal(d->status, 8);
	}
	assert_int_equal(zmh_map_wait_count(env->agent.pin_dir, shared.pid, 0, ZMH_TIMEOUT_MS), 0);

	for (int i = 0; i < N; i++) {
		assert_int_equal(zmh_child_exit(&kids[i], 0), 0);
		assert_int_equal(zmh_child_reap(&kids[i]), 0);
	}
	assert_int_equal(zmh_quiet(b, col_b, ZMH_QUIET_MS), 0);
	free(kids);
	free(pids);
}

/*
 * Every process death, watched or not, moves the exit generation of its
 * pid's slot in the pinned zm_exit_gen (what lets the agent trust a pid it
 * resolved before without reading /proc again).
 */
static void test_an_unwatched_death_moves_its_exit_generation(void **state)
{
	struct zmh_env *env = zmh_env(state);
	uint64_t before = 0, after = 0;
	struct zmh_child c;

	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zmh_exit_gen(env->agent.pin_dir, c.pid, &before), 0);
	assert_int_equal(zmh_child_exit(&c, 3), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_exit_gen(env->agent.pin_dir, c.pid, &after), 0);
	if (after <= before)
		fail_msg("zm_exit_gen slot of pid %d: %llu before its death, %llu after: want more",
			 c.pid, (unsigned long long)before, (unsigned long long)after);
}

static void test_status_counts_this_clients_monitors(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref;
	char *text = NULL;

	assert_int_equal(zmh_connect(&env->agent, "it-status-lib", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
	assert_int_equal(zm_status(cl, ZMH_TIMEOUT_MS, &text, zmh_on_down, col), 0);
	assert_non_null(text);
	if (!strstr(text, "it-status-lib") || !strstr(text, "monitors=3"))
		fail_msg("STATUS_REPLY does not show this client with 3 monitors:\n%s", text);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_many_monitors_on_one_target_share_one_kernel_watch),
		ZMH_TEST(test_demonitor_then_death_yields_no_down),
		ZMH_TEST(test_demonitor_of_last_monitor_removes_kernel_watch),
		ZMH_TEST(test_demonitor_flush_drops_down_received_but_not_dispatched),
		ZMH_TEST(test_demonitor_flush_after_dispatch_was_possible_still_silences),
		ZMH_TEST(test_disconnect_removes_every_kernel_watch_nobody_else_needs),
		ZMH_TEST(test_status_counts_this_clients_monitors),
		ZMH_TEST(test_an_unwatched_death_moves_its_exit_generation),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
