/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The agent's metrics and target list as an operator meets them: a real
 * zenmond with --metrics-listen scraped over HTTP by a plain socket client,
 * and `zenmonctl stats --json` / `targets --json` over the Unix socket.
 * Counters are compared before and after what the test does, never with
 * absolute values or times: other tests and benchmarks may share the host.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------- */

/* A TCP port on 127.0.0.1 nobody listens on right now (the kernel's pick). */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* An agent of this test's own serving metrics on 127.0.0.1:*ret_port. */
static void start_metrics_agent(struct zmh_agent *a, uint16_t *ret_port)
{
	char listen[32];
	const char *extra[] = { "--metrics-listen", listen, NULL };

	*ret_port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", *ret_port);
	assert_int_equal(zmh_extra_agent_start(a, extra), 0);
}

/*
 * One HTTP/1.0 request over a plain socket; the whole response (status
 * line, headers, body) malloc'd and NUL-terminated, or fail.
 */
static char *http_request(uint16_t port, const char *method, const char *path)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t len = 0, cap = 65536;
	char req[256], *buf = malloc(cap);
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	int n;

	assert_non_null(buf);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail_msg("cannot connect to 127.0.0.1:%u: %s", port, strerror(errno));
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
	assert_int_equal(write(fd, req, (size_t)n), n);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (zmh_mono_ms() > deadline)
			fail_msg("no whole HTTP response for %s %s within %d ms", method, path, ZMH_TIMEOUT_MS);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (len + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		r = read(fd, buf + len, cap - len - 1);
		assert_true(r >= 0);
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* The body of a 200 response to GET /metrics, checked for its headers. */
static char *scrape(uint16_t port)
{
	char *resp = http_request(port, "GET", "/metrics"), *body;

	if (strncmp(resp, "HTTP/1.", 7) != 0 || strncmp(resp + 8, " 200 ", 5) != 0)
		fail_msg("GET /metrics did not answer 200:\n%s", resp);
	if (!strcasestr(resp, "\r\nContent-Type: text/plain; version=0.0.4"))
		fail_msg("GET /metrics is not the Prometheus text format:\n%.400s", resp);
	body = strstr(resp, "\r\n\r\n");
	assert_non_null(body);
	body = strdup(body + 4);
	free(resp);
	return body;
}

/* The value of the sample "key value" (key with its labels), or fail. */
static uint64_t metric(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, n) == 0 && p[n] == ' ')
			return strtoull(p + n + 1, NULL, 10);
	fail_msg("no metric %s in:\n%s", key, text);
	return 0;
}

/* Run zenmonctl argv on env's agent; stdout in *ret_out; fail unless it exits 0. */
static char *run_ctl(struct zmh_env *env, const char *const *argv)
{
	char *out = NULL, *err = NULL;
	int ws = 0;

	assert_int_equal(zmh_ctl_run(argv, env->agent.sock, ZMH_TIMEOUT_MS, &out, &err, &ws), 0);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		fail_msg("%s %s: wait status 0x%x\n--- stdout ---\n%s\n--- stderr ---\n%s", argv[1],
			 argv[2] ? argv[2] : "", ws, out, err);
	free(err);
	return out;
}

/*
 * Feed json to python3: valid JSON (json.load), and the Python expression
 * check, over d, is true. Exits 0 then; prints why not otherwise.
 */
/* json in a new temporary file, whose name goes to path (its template). */
static void json_to_file(const char *json, char *path)
{
	int fd = mkstemp(path);
	size_t len = strlen(json);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, json, len), (ssize_t)len);
	close(fd);
}

static bool python_json_check(const char *json, const char *check)
{
	char path[] = "/tmp/zm-it-json-XXXXXX", prog[2048];
	const char *argv[] = { "python3", "-c", prog, path, NULL };
	int r;

	json_to_file(json, path);
	snprintf(prog, sizeof(prog),
		 "import json, sys\n"
		 "d = json.load(open(sys.argv[1]))\n"
		 "ok = bool(%s)\n"
		 "print('check failed: %%s' %% json.dumps(d)[:3000], file=sys.stderr) if not ok else None\n"
		 "sys.exit(0 if ok else 1)\n", check);
	r = zmh_cmd(argv, false);
	unlink(path);
	return r == 0;
}

/* Also valid for python3 -m json.tool, the tool a user would reach for. */
static void assert_json_tool_accepts(const char *json)
{
	char path[] = "/tmp/zm-it-json-XXXXXX";
	const char *argv[] = { "python3", "-m", "json.tool", path, NULL };

	json_to_file(json, path);
	if (zmh_cmd(argv, false) != 0)
		fail_msg("python3 -m json.tool refuses:\n%s", json);
	unlink(path);
}

/* Monitor a new child through c and wait until its kernel watch is armed. */
static uint64_t monitor_child(struct zmh_agent *a, struct zm_client *c, struct zmh_collector *col,
			      struct zmh_child *ch)
{
	uint64_t ref;

	assert_int_equal(zmh_child_spawn(ch), 0);
	assert_int_equal(zm_monitor_pid(c, ch->pid, &ref), 0);
	assert_int_equal(zmh_sync(c, col), 0);
	assert_int_equal(zmh_map_wait_count(a->pin_dir, ch->pid, 1, ZMH_TIMEOUT_MS), 1);
	return ref;
}

/* ---- HTTP ---------------------------------------------------------------------- */

static void test_http_metrics_count_monitors_and_downs_by_reason(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_agent a;
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *c;
	struct zmh_child killed, exited;
	const struct zm_down_info *d;
	uint64_t rk, re;
	uint16_t port;
	char *before, *after;

	(void)env;
	start_metrics_agent(&a, &port);
	before = scrape(port);
	assert_int_equal(zmh_connect(&a, "it-metrics", col, &c), 0);
	rk = monitor_child(&a, c, col, &killed);
	re = monitor_child(&a, c, col, &exited);

	/* while armed: gauges see them */
	after = scrape(port);
	assert_int_equal(metric(after, "zenmon_monitors"), 2);
	assert_int_equal(metric(after, "zenmon_targets{kind=\"process\"}"), 2);
	assert_int_equal(metric(after, "zenmon_subscribers"), 1);
	free(after);

	assert_int_equal(zmh_child_kill(&killed, SIGKILL), 0);
	assert_int_equal(zmh_child_exit(&exited, 3), 0);
	assert_int_equal(zmh_wait_downs(c, col, 2, ZMH_TIMEOUT_MS), 2);
	assert_int_equal(zmh_collector_count(col, rk, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_KILLED);
	assert_int_equal(zmh_collector_count(col, re, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(zmh_child_reap(&killed), 0);
	assert_int_equal(zmh_child_reap(&exited), 0);

	after = scrape(port);
	assert_int_equal(metric(after, "zenmon_monitors_created_total{kind=\"process\"}") -
			 metric(before, "zenmon_monitors_created_total{kind=\"process\"}"), 2);
	assert_int_equal(metric(after, "zenmon_monitors_removed_total{reason=\"down\"}") -
			 metric(before, "zenmon_monitors_removed_total{reason=\"down\"}"), 2);
	assert_int_equal(metric(after, "zenmon_downs_enqueued_total{reason=\"killed\"}") -
			 metric(before, "zenmon_downs_enqueued_total{reason=\"killed\"}"), 1);
	assert_int_equal(metric(after, "zenmon_downs_delivered_total{reason=\"killed\"}") -
			 metric(before, "zenmon_downs_delivered_total{reason=\"killed\"}"), 1);
	assert_int_equal(metric(after, "zenmon_downs_delivered_total{reason=\"exited\"}") -
			 metric(before, "zenmon_downs_delivered_total{reason=\"exited\"}"), 1);
	assert_int_equal(metric(after, "zenmon_monitors"), 0);
	assert_int_equal(metric(after, "zenmon_targets{kind=\"process\"}"), 0);
	assert_int_equal(metric(after, "zenmon_downs_queued"), 0);
	/* each death reached the agent once, by the ring buffer or by a scan */
	assert_int_equal(metric(after, "zenmon_kernel_records_total{kind=\"process_exit\"}") +
			 metric(after, "zenmon_kernel_records_recovered_total{kind=\"process_exit\"}") -
			 metric(before, "zenmon_kernel_records_total{kind=\"process_exit\"}") -
			 metric(before, "zenmon_kernel_records_recovered_total{kind=\"process_exit\"}"), 2);
	assert_true(metric(after, "zenmon_batch_size_count") > metric(before, "zenmon_batch_size_count"));
	assert_true(metric(after, "zenmon_batch_size_sum") - metric(before, "zenmon_batch_size_sum") == 2);
	assert_int_equal(metric(after, "zenmon_records_received_total{type=\"MONITOR_PROC\"}") -
			 metric(before, "zenmon_records_received_total{type=\"MONITOR_PROC\"}"), 2);
	assert_true(metric(after, "zenmon_loop_iteration_duration_seconds_count") >
		    metric(before, "zenmon_loop_iteration_duration_seconds_count"));
	assert_true(metric(after, "zenmon_kernel_process_exits_watched_total") >=
		    metric(before, "zenmon_kernel_process_exits_watched_total") + 2);
	free(before);
	free(after);
	zmh_client_close(c);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static void test_http_answers_404_elsewhere_and_405_to_other_methods(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_agent a;
	uint16_t port;
	char *resp;

	(void)env;
	start_metrics_agent(&a, &port);
	resp = http_request(port, "GET", "/");
	if (!strstr(resp, " 404 "))
		fail_msg("GET / should be 404:\n%s", resp);
	free(resp);
	resp = http_request(port, "GET", "/metricsx");
	assert_non_null(strstr(resp, " 404 "));
	free(resp);
	resp = http_request(port, "POST", "/metrics");
	if (!strstr(resp, " 405 ") || !strcasestr(resp, "\r\nAllow: GET, HEAD"))
		fail_msg("POST /metrics should be 405 with Allow:\n%s", resp);
	free(resp);
	/* and the agent still serves after all that */
	free(scrape(port));
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static void test_metrics_port_in_use_fails_to_start_with_clear_error(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct zmh_agent a;
	char listen_arg[32];
	const char *extra[] = { "--metrics-listen", listen_arg, NULL };
	const char *rm[] = { "rm", "-rf", a.dir, NULL };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)env;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	zmh_fd_track(fd);
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%u", ntohs(sa.sin_port));

	print_message("(an agent that must fail to start follows; its log is expected)\n");
	assert_int_equal(zmh_agent_start_args(&a, extra), -ECHILD);
	if (!zmh_agent_log_has(&a, "cannot listen for metrics on 127.0.0.1:") ||
	    !zmh_agent_log_has(&a, "Address already in use") ||
	    !zmh_agent_log_has(&a, "--metrics-listen")) {
		zmh_agent_dump_log(&a);
		fail_msg("the agent should say the metrics address is in use and what to do");
	}
	zmh_cmd(rm, true);
	zmh_fd_close(fd);
}

static void test_bad_metrics_listen_is_refused_before_anything_starts(void **state)
{
	struct zmh_env *env = zmh_env(state);
	const char *argv[] = { zmh_zenmond_path(), "--metrics-listen", "not-an-address",
			       "--check-config", NULL };
	char err[4096] = "";
	int pipe_err[2], ws = 0;
	ssize_t n;
	pid_t pid;

	(void)env;
	assert_int_equal(pipe(pipe_err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipe_err[1], 2);
		close(pipe_err[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipe_err[1]);
	n = read(pipe_err[0], err, sizeof(err) - 1);
	close(pipe_err[0]);
	err[n > 0 ? n : 0] = '\0';
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) == 0 ||
	    !strstr(err, "invalid --metrics-listen 'not-an-address'"))
		fail_msg("want a failure saying the --metrics-listen value is invalid; wait status "
			 "0x%x, stderr:\n%s", ws, err);
}

/* ---- over the Unix socket: zenmonctl stats, targets ------------------------------ */

static void test_ctl_stats_json_is_valid_and_counts_a_killed_down(void **state)
{
	struct zmh_env *env = zmh_env(state);
	const char *argv[] = { "zenmonctl", "stats", "--json", NULL };
	const char *argv_text[] = { "zenmonctl", "stats", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *c;
	struct zmh_child ch;
	char *out, check[512];

	assert_int_equal(zmh_connect(&env->agent, "it-stats", col, &c), 0);
	out = run_ctl(env, argv);
	assert_json_tool_accepts(out);
	free(out);
	monitor_child(&env->agent, c, col, &ch);
	assert_int_equal(zmh_child_kill(&ch, SIGKILL), 0);
	assert_int_equal(zmh_wait_downs(c, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_child_reap(&ch), 0);

	out = run_ctl(env, argv);
	assert_json_tool_accepts(out);
	snprintf(check, sizeof(check),
		 "[s['value'] for s in d['zenmon_downs_delivered_total']['samples'] "
		 "if s['labels'] == {'reason': 'killed'}][0] >= 1 and "
		 "d['zenmon_downs_delivered_total']['type'] == 'counter' and "
		 "d['zenmon_monitors_created_total']['samples'][0]['value'] >= 1 and "
		 "d['zenmon_batch_size']['type'] == 'histogram'");
	assert_true(python_json_check(out, check));
	free(out);

	/* without --json: the exposition text itself */
	out = run_ctl(env, argv_text);
	assert_non_null(strstr(out, "# TYPE zenmon_downs_delivered_total counter\n"));
	assert_true(metric(out, "zenmon_downs_delivered_total{reason=\"killed\"}") >= 1);
	free(out);
	zmh_client_close(c);
}

static void test_ctl_targets_lists_a_watched_process_then_forgets_it(void **state)
{
	struct zmh_env *env = zmh_env(state);
	const char *argv[] = { "zenmonctl", "targets", "--json", NULL };
	const char *argv_text[] = { "zenmonctl", "targets", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *c;
	struct zmh_child ch;
	char *out, check[1024], pid[16];
	uint64_t ref2;

	assert_int_equal(zmh_connect(&env->agent, "it-targets", col, &c), 0);
	monitor_child(&env->agent, c, col, &ch);
	/* two monitors, one target: one line, monitors=2 */
	assert_int_equal(zm_monitor_pid(c, ch.pid, &ref2), 0);
	assert_int_equal(zmh_sync(c, col), 0);
	snprintf(pid, sizeof(pid), "%d", ch.pid);

	out = run_ctl(env, argv);
	assert_json_tool_accepts(out);
	snprintf(check, sizeof(check),
		 "[(t['kind'], t['start_ticks'], t['monitors'], t['kernel'], "
		 "[s['name'] for s in t['subscribers']]) for t in d['targets'] if t.get('pid') == %d] == "
		 "[('process', %llu, 2, 'armed', ['it-targets'])] "
		 "and d['total'] >= 1 and d['listed'] == d['total']",
		 ch.pid, (unsigned long long)ch.start_ticks);
	assert_true(python_json_check(out, check));
	free(out);
	out = run_ctl(env, argv_text);
	assert_non_null(strstr(out, "it-targets"));
	assert_non_null(strstr(out, pid));
	free(out);

	assert_int_equal(zmh_child_kill(&ch, SIGKILL), 0);
	assert_int_equal(zmh_wait_downs(c, col, 2, ZMH_TIMEOUT_MS), 2);
	assert_int_equal(zmh_child_reap(&ch), 0);
	/* gone from both views: the agent's and the kernel's */
	assert_int_equal(zmh_map_wait_count(env->agent.pin_dir, ch.pid, 0, ZMH_TIMEOUT_MS), 0);
	out = run_ctl(env, argv);
	snprintf(check, sizeof(check), "not [t for t in d['targets'] if t.get('pid') == %d]", ch.pid);
	assert_true(python_json_check(out, check));
	free(out);
	zmh_client_close(c);
}

static void test_ctl_targets_shows_a_tcp_connection_by_its_ends(void **state)
{
	struct zmh_env *env = zmh_env(state);
	const char *argv[] = { "zenmonctl", "targets", "--json", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zm_tcp_tuple tu;
	struct zm_client *c;
	uint64_t ref, cookie;
	int cli, srv;
	char *out, check[1024];

	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	assert_int_equal(zmh_sock_cookie(cli, &cookie), 0);
	assert_int_equal(zmh_sock_tuple(cli, &tu), 0);
	assert_int_equal(zmh_connect(&env->agent, "it-tcp-targets", col, &c), 0);
	assert_int_equal(zm_monitor_tcp_fd(c, cli, &ref), 0);
	assert_int_equal(zmh_sync(c, col), 0);
	assert_int_equal(zmh_tcp_map_wait_count(env->agent.pin_dir, &cookie, 1, 1, ZMH_TIMEOUT_MS), 1);

	out = run_ctl(env, argv);
	snprintf(check, sizeof(check),
		 "[(t['monitors'], t['kernel'], t['local'], t['remote'], t['subscribers'][0]['name']) "
		 "for t in d['targets'] if t.get('cookie') == %llu] == "
		 "[(1, 'armed', '127.0.0.1:%u', '127.0.0.1:%u', 'it-tcp-targets')]",
		 (unsigned long long)cookie, tu.sport, tu.dport);
	assert_true(python_json_check(out, check));
	free(out);

	zmh_fd_close(cli);
	zmh_fd_close(srv);
	assert_int_equal(zmh_wait_downs(c, col, 1, ZMH_TIMEOUT_MS), 1);
	zmh_client_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_http_metrics_count_monitors_and_downs_by_reason),
		ZMH_TEST(test_http_answers_404_elsewhere_and_405_to_other_methods),
		ZMH_TEST(test_metrics_port_in_use_fails_to_start_with_clear_error),
		ZMH_TEST(test_bad_metrics_listen_is_refused_before_anything_starts),
		ZMH_TEST(test_ctl_stats_json_is_valid_and_counts_a_killed_down),
		ZMH_TEST(test_ctl_targets_lists_a_watched_process_then_forgets_it),
		ZMH_TEST(test_ctl_targets_shows_a_tcp_connection_by_its_ends),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
