/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The agent's own life: it shuts down cleanly on SIGTERM (exit 0, socket
 * gone, its programs and maps left pinned for the next agent until zenmond
 * --cleanup) even with clients and watches, and a second agent cannot take
 * a pin directory that a live one holds.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_sigterm_idle_agent_exits_0_removes_socket_keeps_pins(void **state)
{
	struct zmh_agent a;

	(void)zmh_env(state);
	/* tracked: stopped and cleaned up by the teardown if an assert fails */
	assert_int_equal(zmh_extra_agent_start(&a, NULL), 0);
	assert_int_equal(access(a.sock, F_OK), 0);
	assert_int_equal(access(a.pin_dir, F_OK), 0);
	assert_int_equal(zmh_map_count(a.pin_dir, 0), 0);
	/* zmh_extra_agent_stop checks (as zmh_agent_stop): exit status 0,
	 * socket gone, links still pinned, and zenmond --cleanup removes the
	 * pin dir */
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static void test_sigterm_with_clients_and_watches_exits_0_and_cleans_up(void **state)
{
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	struct zmh_agent agent, *a = &agent;
	uint64_t ref;
	int r;

	struct zm_connect_options o = { .name = "it-shutdown", .flags = ZM_CONNECT_NO_RECONNECT };

	(void)zmh_env(state);
	assert_int_equal(zmh_extra_agent_start(a, NULL), 0);
	assert_int_equal(zmh_connect_opts(a, &o, col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_map_count(a->pin_dir, c.pid), 1);

	r = zmh_agent_stop_keep(a);
	assert_int_equal(r, 0);
	/* the watch stays in the kernel, for the next agent to adopt */
	assert_int_equal(zmh_map_count(a->pin_dir, c.pid), 1);

	/* a client that asked not to reconnect learns the agent is gone */
	r = zm_wait(cl, ZMH_TIMEOUT_MS, zmh_on_down, col);
	if (r == 0)
		r = zm_wait(cl, ZMH_TIMEOUT_MS, zmh_on_down, col);
	assert_true(r == -ENOTCONN || r == -ECONNRESET || r == -EPIPE);
	assert_int_equal(col->n, 0);
	assert_false(zm_reconnecting(cl));

	/* the next agent cleans up what nobody claims, and stops as usual */
	{
		static const char *const args[] = { "--adopt-timeout", "0", NULL };

		assert_int_equal(zmh_agent_restart_args(a, args), 0);
		assert_int_equal(zmh_map_wait_count(a->pin_dir, c.pid, 0, ZMH_TIMEOUT_MS), 0);
		assert_int_equal(zmh_agent_stop(a), 0);
	}
}

static void test_second_agent_on_same_pin_dir_is_refused(void **state)
{
	struct zmh_env *env = zmh_env(state);
	char sock[200], log[200];
	int64_t deadline;
	pid_t pid;
	int ws = 0;
	pid_t r;

	snprintf(sock, sizeof(sock), "%s/sock2", env->agent.dir);
	snprintf(log, sizeof(log), "%s/zenmond2.log", env->agent.dir);
	pid = zmh_agent_spawn_raw(sock, env->agent.pin_dir, log);
	assert_true(pid > 0);
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while ((r = waitpid(pid, &ws, WNOHANG)) == 0 && zmh_mono_ms() < deadline)
		zmh_sleep_ms(10);
	if (r != pid) {
		kill(pid, SIGTERM);
		waitpid(pid, &ws, 0);
		fail_msg("a second agent on a pin dir in use kept running");
	}
	assert_true(WIFEXITED(ws));
	assert_int_not_equal(WEXITSTATUS(ws), 0);
	/* and the first agent is unharmed: pins, socket and service */
	assert_true(zmh_agent_alive(&env->agent));
	assert_int_equal(access(env->agent.pin_dir, F_OK), 0);
	{
		struct zmh_collector *col = zmh_collector_new();
		struct zm_client *cl;
		struct zmh_child c;
		uint64_t ref;

		assert_int_equal(zmh_connect(&env->agent, "it-after-second", col, &cl), 0);
		assert_int_equal(zmh_child_spawn(&c), 0);
		assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
		assert_int_equal(zmh_sync(cl, col), 0);
		assert_int_equal(zmh_map_count(env->agent.pin_dir, c.pid), 1);
		assert_int_equal(zmh_child_exit(&c, 0), 0);
		assert_int_equal(zmh_child_reap(&c), 0);
		assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	}
}

static void test_second_agent_on_same_socket_is_refused(void **state)
{
	struct zmh_env *env = zmh_env(state);
	char pins[192], log[200];
	int64_t deadline;
	pid_t pid, r;
	int ws = 0;

	snprintf(pins, sizeof(pins), "%s-second", env->agent.pin_dir);
	snprintf(log, sizeof(log), "%s/zenmond3.log", env->agent.dir);
	pid = zmh_agent_spawn_raw(env->agent.sock, pins, log);
	assert_true(pid > 0);
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while ((r = waitpid(pid, &ws, WNOHANG)) == 0 && zmh_mono_ms() < deadline)
		zmh_sleep_ms(10);
	if (r != pid) {
		kill(pid, SIGTERM);
		waitpid(pid, &ws, 0);
		fail_msg("a second agent on a socket in use kept running");
	}
	assert_true(WIFEXITED(ws));
	assert_int_not_equal(WEXITSTATUS(ws), 0);
	if (access(pins, F_OK) == 0) {
		(void)zmh_cleanup_pins(pins); /* its programs must not stay attached */
		fail_msg("a second agent on a socket in use left pins behind in %s", pins);
	}
	assert_true(zmh_agent_alive(&env->agent));
	assert_int_equal(access(env->agent.sock, F_OK), 0);
	{
		struct zmh_raw raw;

		assert_int_equal(zmh_raw_connect(&raw, env->agent.sock, true), 0);
		assert_int_equal(zmh_raw_sync(&raw, 3), 0);
		zmh_raw_close(&raw);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_sigterm_idle_agent_exits_0_removes_socket_keeps_pins),
		ZMH_TEST(test_sigterm_with_clients_and_watches_exits_0_and_cleans_up),
		ZMH_TEST(test_second_agent_on_same_pin_dir_is_refused),
		ZMH_TEST(test_second_agent_on_same_socket_is_refused),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
