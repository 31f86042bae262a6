/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * zenmonctl against a real agent: monitor prints the DOWN and exits 0, gives
 * up after --timeout, status reports, $ZENMON_SOCKET is honoured.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void dump_run(const char *what, const char *out, const char *err, int ws)
{
	print_message("%s: wait status 0x%x\n--- stdout ---\n%s\n--- stderr ---\n%s\n", what, ws,
		      out ? out : "", err ? err : "");
}

/* Start `zenmonctl --socket S monitor --json PID`, wait until its watch is
 * armed, end the child with exit(code), return the output. */
static void ctl_monitor_exit(struct zmh_env *env, int code, bool json, char **ret_out,
			     char **ret_err, int *ret_ws)
{
	struct zmh_child c;
	struct zmh_proc p;
	char pid[16];
	const char *argv_json[] = { "zenmonctl", "--socket", env->agent.sock, "monitor", "--json",
				    pid, NULL };
	const char *argv_text[] = { "zenmonctl", "--socket", env->agent.sock, "monitor", pid, NULL };
	long n;

	assert_int_equal(zmh_child_spawn(&c), 0);
	snprintf(pid, sizeof(pid), "%d", c.pid);
	assert_int_equal(zmh_ctl_start(&p, json ? argv_json : argv_text, NULL), 0);
	n = zmh_map_wait_count(env->agent.pin_dir, c.pid, 1, ZMH_TIMEOUT_MS);
	if (n != 1) {
		zmh_ctl_finish(&p, 100, ret_out, ret_err, ret_ws);
		dump_run("zenmonctl monitor", *ret_out, *ret_err, *ret_ws);
		fail_msg("zenmonctl's monitor never reached the kernel map (count %ld)", n);
	}
	assert_int_equal(zmh_child_exit(&c, code), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	if (zmh_ctl_finish(&p, ZMH_TIMEOUT_MS, ret_out, ret_err, ret_ws) < 0) {
		dump_run("zenmonctl monitor", *ret_out, *ret_err, *ret_ws);
		fail_msg("zenmonctl monitor did not exit after its target died");
	}
}

static void test_monitor_json_prints_exited_status_and_exits_0(void **state)
{
	struct zmh_env *env = zmh_env(state);
	char *out = NULL, *err = NULL;
	int ws = 0;

	ctl_monitor_exit(env, 7, true, &out, &err, &ws);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !zmh_json_has(out, "reason", "\"exited\"") ||
	    !zmh_json_has(out, "status", "7")) {
		dump_run("zenmonctl monitor --json", out, err, ws);
		fail_msg("want exit 0 and a JSON line with \"reason\":\"exited\",\"status\":7");
	}
	/* exactly one line */
	{
		char *nl = strchr(out, '\n');

		assert_non_null(nl);
		assert_true(nl[1] == '\0');
		assert_int_equal(out[0], '{');
	}
	free(out);
	free(err);
}

static void test_monitor_text_mentions_reason_and_exits_0(void **state)
{
	struct zmh_env *env = zmh_env(state);
	char *out = NULL, *err = NULL;
	int ws = 0;

	ctl_monitor_exit(env, 3, false, &out, &err, &ws);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !strstr(out, "exited")) {
		dump_run("zenmonctl monitor", out, err, ws);
		fail_msg("want exit 0 and \"exited\" in the output");
	}
	free(out);
	free(err);
}

static void test_monitor_timeout_on_live_process_exits_nonzero(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_child c;
	char pid[16];
	const char *argv[] = { "zenmonctl", "--socket", env->agent.sock, "monitor", "--timeout", "1",
			       pid, NULL };
	char *out = NULL, *err = NULL;
	int ws = 0, r;

	assert_int_equal(zmh_child_spawn(&c), 0);
	snprintf(pid, sizeof(pid), "%d", c.pid);
	r = zmh_ctl_run(argv, NULL, ZMH_TIMEOUT_MS, &out, &err, &ws);
	if (r < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) == 0) {
		dump_run("zenmonctl monitor --timeout 1", out, err, ws);
		fail_msg("want a non-zero exit within %d ms (%s)", ZMH_TIMEOUT_MS,
			 r < 0 ? "it did not exit" : "it exited 0 or by a signal");
	}
	/* the target was never touched, and its watch is gone with the client */
	assert_int_equal(kill(c.pid, 0), 0);
	assert_int_equal(zmh_map_wait_count(env->agent.pin_dir, c.pid, 0, ZMH_TIMEOUT_MS), 0);
	free(out);
	free(err);
}

static void test_monitor_dead_pid_reports_noproc(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_child c;
	char pid[16];
	const char *argv[] = { "zenmonctl", "--socket", env->agent.sock, "monitor", "--json", pid,
			       NULL };
	char *out = NULL, *err = NULL;
	int ws = 0;

	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zmh_child_exit(&c, 0), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	snprintf(pid, sizeof(pid), "%d", c.pid);
	assert_int_equal(zmh_ctl_run(argv, NULL, ZMH_TIMEOUT_MS, &out, &err, &ws), 0);
	if (!zmh_json_has(out, "reason", "\"noproc\"")) {
		dump_run("zenmonctl monitor --json DEAD", out, err, ws);
		fail_msg("want \"reason\":\"noproc\"");
	}
	free(out);
	free(err);
}

static void test_monitor_several_pids_exits_once_all_are_down(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_child a, b;
	struct zmh_proc p;
	char arg_a[48], arg_b[48];
	const char *argv[] = { "zenmonctl", "--socket", env->agent.sock, "monitor", "--json", arg_a,
			       arg_b, NULL };
	char *out = NULL, *err = NULL, *second;
	int ws = 0;

	assert_int_equal(zmh_child_spawn(&a), 0);
	assert_int_equal(zmh_child_spawn(&b), 0);
	/* a by pid:start (right), b by pid:start (wrong: noproc at once) */
	snprintf(arg_a, sizeof(arg_a), "%d:%llu", a.pid, (unsigned long long)a.start_ticks);
	snprintf(arg_b, sizeof(arg_b), "%d:%llu", b.pid, (unsigned long long)b.start_ticks + 1);
	assert_int_equal(zmh_ctl_start(&p, argv, NULL), 0);
	assert_int_equal(zmh_map_wait_count(env->agent.pin_dir, a.pid, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_child_kill(&a, SIGKILL), 0);
	assert_int_equal(zmh_child_reap(&a), 0);
	assert_int_equal(zmh_ctl_finish(&p, ZMH_TIMEOUT_MS, &out, &err, &ws), 0);
	second = strchr(out, '\n');
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !second || !strchr(second + 1, '\n') ||
	    !zmh_json_has(out, "reason", "\"noproc\"") || !zmh_json_has(out, "reason", "\"killed\"") ||
	    !zmh_json_has(out, "signal", "9")) {
		dump_run("zenmonctl monitor --json A:START B:WRONG", out, err, ws);
		fail_msg("want exit 0 and two lines: a noproc and a killed signal 9");
	}
	/* b, never named rightly, was never watched */
	assert_int_equal(zmh_map_count(env->agent.pin_dir, b.pid), 0);
	free(out);
	free(err);
}

static void test_status_json_exits_0_and_counts_monitors(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const char *argv[] = { "zenmonctl", "--socket", env->agent.sock, "status", "--json", NULL };
	struct zm_client *cl;
	struct zmh_child c;
	char *out = NULL, *err = NULL, me[64];
	uint64_t ref;
	int ws = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-status", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
	assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);

	assert_int_equal(zmh_ctl_run(argv, NULL, ZMH_TIMEOUT_MS, &out, &err, &ws), 0);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !zmh_json_has(out, "monitors", "2")) {
		dump_run("zenmonctl status --json", out, err, ws);
		fail_msg("want exit 0 and \"monitors\":2 (this test's client holds 2)");
	}
	/* Which process holds a subscriber: ours, by its SO_PEERCRED. */
	snprintf(me, sizeof(me), "\"name\":\"it-status\",\"pid\":%d,\"uid\":%u", (int)getpid(),
		 (unsigned)getuid());
	if (!strstr(out, me)) {
		dump_run("zenmonctl status --json", out, err, ws);
		fail_msg("want this test's subscriber listed as %s", me);
	}
	free(out);
	free(err);
}

static void test_status_text_exits_0(void **state)
{
	struct zmh_env *env = zmh_env(state);
	const char *argv[] = { "zenmonctl", "--socket", env->agent.sock, "status", NULL };
	char *out = NULL, *err = NULL;
	int ws = 0;

	assert_int_equal(zmh_ctl_run(argv, NULL, ZMH_TIMEOUT_MS, &out, &err, &ws), 0);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !strstr(out, "monitors")) {
		dump_run("zenmonctl status", out, err, ws);
		fail_msg("want exit 0 and a line about monitors");
	}
	free(out);
	free(err);
}

static void test_zenmon_socket_env_is_honoured_by_zenmonctl(void **state)
{
	struct zmh_env *env = zmh_env(state);
	const char *argv[] = { "zenmonctl", "status", "--json", NULL };
	char *out = NULL, *err = NULL;
	char missing[200];
	int ws = 0;

	assert_int_equal(zmh_ctl_run(argv, env->agent.sock, ZMH_TIMEOUT_MS, &out, &err, &ws), 0);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		dump_run("ZENMON_SOCKET=S zenmonctl status --json", out, err, ws);
		fail_msg("want exit 0 with $ZENMON_SOCKET pointing at the agent");
	}
	free(out);
	free(err);

	/* and it is really the variable that counts: a wrong one fails */
	snprintf(missing, sizeof(missing), "%s/no-such-sock", env->agent.dir);
	assert_int_equal(zmh_ctl_run(argv, missing, ZMH_TIMEOUT_MS, &out, &err, &ws), 0);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) == 0) {
		dump_run("ZENMON_SOCKET=missing zenmonctl status --json", out, err, ws);
		fail_msg("want a non-zero exit with $ZENMON_SOCKET pointing nowhere");
	}
	free(out);
	free(err);
}

static void test_zenmon_socket_env_is_honoured_by_library(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zm_client *cl = NULL;
	char *old = getenv(ZM_SOCKET_ENV) ? strdup(getenv(ZM_SOCKET_ENV)) : NULL;
	int r;

	setenv(ZM_SOCKET_ENV, env->agent.sock, 1);
	r = zm_connect(NULL, "it-env", &cl);
	if (old) {
		setenv(ZM_SOCKET_ENV, old, 1);
		free(old);
	} else {
		unsetenv(ZM_SOCKET_ENV);
	}
	assert_int_equal(r, 0);
	zm_close(cl);
}

static void test_unknown_subcommand_exits_nonzero(void **state)
{
	struct zmh_env *env = zmh_env(state);
	const char *argv[] = { "zenmonctl", "--socket", env->agent.sock, "frobnicate", NULL };
	char *out = NULL, *err = NULL;
	int ws = 0;

	assert_int_equal(zmh_ctl_run(argv, NULL, ZMH_TIMEOUT_MS, &out, &err, &ws), 0);
	assert_true(WIFEXITED(ws));
	assert_int_not_equal(WEXITSTATUS(ws), 0);
	assert_true(err[0] != '\0');
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_monitor_json_prints_exited_status_and_exits_0),
		ZMH_TEST(test_monitor_text_mentions_reason_and_exits_0),
		ZMH_TEST(test_monitor_timeout_on_live_process_exits_nonzero),
		ZMH_TEST(test_monitor_dead_pid_reports_noproc),
		ZMH_TEST(test_monitor_several_pids_exits_once_all_are_down),
		ZMH_TEST(test_status_json_exits_0_and_counts_monitors),
		ZMH_TEST(test_status_text_exits_0),
		ZMH_TEST(test_zenmon_socket_env_is_honoured_by_zenmonctl),
		ZMH_TEST(test_zenmon_socket_env_is_honoured_by_library),
		ZMH_TEST(test_unknown_subcommand_exits_nonzero),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
