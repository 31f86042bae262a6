// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmond as a service: the readiness protocol (sd_notify, checked with a
 * stand-in NOTIFY_SOCKET listener the test owns), SIGHUP reloads of the
 * configuration file, --check-config, the shipped example configuration,
 * and, where PID 1 is systemd, dist/zenmond.service under the real thing.
 *
 * The agents here are the test's own (not the harness's): they take every
 * setting from their configuration file, as under systemd, so that a reload
 * can change any of them. The harness's group agent only proves that the
 * machine can run one at all (skip or fail, as everywhere).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a stand-in for systemd's notification socket ------------------------ */

struct notify_listener {
	int fd;
	char env[128];           /* what NOTIFY_SOCKET says: a path or "@name" */
	char path[108];          /* the file to remove; "" for an abstract address */
	char log[4096];          /* every datagram so far, "|"-separated */
};

static unsigned int seq;

static void notify_close(struct notify_listener *n)
{
	if (n->fd >= 0)
		zmh_fd_close(n->fd);
	n->fd = -1;
	if (n->path[0])
		unlink(n->path);
}

/* A datagram socket at a fresh path, or a fresh abstract name. */
static void notify_listen(struct notify_listener *n, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	memset(n, 0, sizeof(*n));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	zmh_fd_track(fd);
	n->fd = fd;
	if (abstract) {
		snprintf(n->env, sizeof(n->env), "@zm-it-notify-%d-%u", (int)getpid(), seq++);
		memcpy(sa.sun_path, n->env, strlen(n->env));
		sa.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(n->env));
	} else {
		snprintf(n->path, sizeof(n->path), "/tmp/zm-it-notify-%d-%u", (int)getpid(), seq++);
		unlink(n->path);
		snprintf(n->env, sizeof(n->env), "%s", n->path);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", n->path);
		len = sizeof(sa);
	}
	if (bind(fd, (struct sockaddr *)&sa, len) < 0)
		fail_msg("cannot bind the stand-in notify socket %s: %s", n->env, strerror(errno));
}

/*
 * The next datagram, into msg (NUL-terminated), within timeout_ms; also
 * appended to n->log. 0 or -ETIMEDOUT.
 */
static int notify_next_within(struct notify_listener *n, char *msg, size_t cap, int timeout_ms)
{
	int r = zmh_fd_wait(n->fd, POLLIN, timeout_ms);
	ssize_t got;

	if (r < 0)
		return r;
	got = recv(n->fd, msg, cap - 1, 0);
	if (got < 0)
		return -errno;
	msg[got] = '\0';
	if (strlen(n->log) + (size_t)got + 2 < sizeof(n->log)) {
		strcat(n->log, msg);
		strcat(n->log, "|");
	}
	return 0;
}

static int notify_next(struct notify_listener *n, char *msg, size_t cap)
{
	return notify_next_within(n, msg, cap, ZMH_TIMEOUT_MS);
}

/* Does the datagram msg hold the line want ("KEY=value" lines)? */
static bool has_line(const char *msg, const char *want)
{
	size_t len = strlen(want);

	for (const char *p = msg; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, want, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
			return true;
	}
	return false;
}

/* Read datagrams until one holds the line want; fail the test if none comes. */
static void notify_expect(struct notify_listener *n, const char *want, char *msg, size_t cap)
{
	for (;;) {
		if (notify_next(n, msg, cap) < 0)
			fail_msg("no \"%s\" on the notify socket within %d ms (got: %s)", want,
				 ZMH_TIMEOUT_MS, n->log[0] ? n->log : "nothing");
		if (has_line(msg, want))
			return;
	}
}

/* ---- the test's own agents ------------------------------------------------ */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* dir/zenmond.conf: the agent's own socket and pin dir, then body. */
static void svc_write_config(const struct zmh_agent *a, const char *body)
{
	char path[PATH_MAX], text[4096];

	snprintf(path, sizeof(path), "%s/zenmond.conf", a->dir);
	snprintf(text, sizeof(text),
		 "# written by test_service.c\n"
		 "socket = %s\n"
		 "pin-dir = %s\n"
		 "%s",
		 a->sock, a->pin_dir, body);
	write_text(path, text);
}

/*
 * Start zenmond --config DIR/zenmond.conf (and extra args, NULL-terminated)
 * with NOTIFY_SOCKET=n->env (n may be NULL: unset). Does not wait: the
 * caller waits for READY=1.
 */
static void svc_spawn(struct zmh_agent *a, const char *body, const char *const *extra,
		      const struct notify_listener *n)
{
	const char *argv[16];
	char conf[PATH_MAX];
	size_t argc = 0;
	pid_t pid;
	int logfd;

	memset(a, 0, sizeof(*a));
	snprintf(a->dir, sizeof(a->dir), "/tmp/zm-it-XXXXXX");
	assert_non_null(mkdtemp(a->dir));
	snprintf(a->sock, sizeof(a->sock), "%s/sock", a->dir);
	snprintf(a->log, sizeof(a->log), "%s/zenmond.log", a->dir);
	snprintf(a->pin_dir, sizeof(a->pin_dir), "/sys/fs/bpf/zm-it-%d-svc%u", (int)getpid(), seq++);
	snprintf(conf, sizeof(conf), "%s/zenmond.conf", a->dir);
	svc_write_config(a, body);

	argv[argc++] = zmh_zenmond_path();
	argv[argc++] = "--config";
	argv[argc++] = conf;
	for (size_t i = 0; extra && extra[i] && argc < 15; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	logfd = open(a->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	assert_true(logfd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(logfd, 1);
		dup2(logfd, 2);
		close_range(3, ~0U, 0);
		if (n)
			setenv("NOTIFY_SOCKET", n->env, 1);
		else
			unsetenv("NOTIFY_SOCKET");
		unsetenv(ZM_SOCKET_ENV);
		execv(argv[0], (char *const *)argv);
		dprintf(2, "test: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	a->pid = pid;
	zmh_pid_track(pid);
}

/* Is something accepting connections on path? */
static bool accepts(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Start the agent and wait for its READY=1, which must be its first word
 * and come only once its socket accepts connections. */
static void svc_start(struct zmh_agent *a, const char *body, const char *const *extra,
		      struct notify_listener *n)
{
	char msg[1024], want[512];
	int64_t until;

	svc_spawn(a, body, extra, n);
	/* Loading BPF under a sanitizer on a busy machine can take long: wait
	 * as long as the agent lives, up to a bound only a hang reaches. */
	until = zmh_mono_ms() + 6 * ZMH_TIMEOUT_MS;
	while (notify_next_within(n, msg, sizeof(msg), 200) < 0) {
		if (!zmh_agent_alive(a) || zmh_mono_ms() > until) {
			zmh_agent_dump_log(a);
			fail_msg("zenmond %s without a word to NOTIFY_SOCKET=%s",
				 zmh_agent_alive(a) ? "ran a minute" : "ended", n->env);
		}
	}
	/* Checked before anything else happens: READY=1 promises a socket
	 * that takes clients now, not soon. */
	if (!accepts(a->sock)) {
		zmh_agent_dump_log(a);
		fail_msg("zenmond said \"%s\" but %s does not accept connections", msg, a->sock);
	}
	if (!has_line(msg, "READY=1"))
		fail_msg("zenmond's first notification is \"%s\", want READY=1 first", msg);
	snprintf(want, sizeof(want), "STATUS=serving %s, maps pinned in %s", a->sock, a->pin_dir);
	if (!strstr(msg, want))
		fail_msg("READY=1 came with \"%s\", want it to say \"%s\"", msg, want);
}

/* SIGTERM: STOPPING=1 on the notify socket, exit 0, socket gone, programs
 * and maps left pinned for the next agent (zenmond --cleanup removes them). */
static void svc_stop(struct zmh_agent *a, struct notify_listener *n)
{
	char msg[1024];
	int ws;

	assert_int_equal(kill(a->pid, SIGTERM), 0);
	if (n)
		notify_expect(n, "STOPPING=1", msg, sizeof(msg));
	assert_int_equal(waitpid(a->pid, &ws, 0), a->pid);
	zmh_pid_untrack(a->pid);
	a->pid = 0;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		zmh_agent_dump_log(a);
		fail_msg("zenmond ended with wait status 0x%x after SIGTERM, want exit 0", ws);
	}
	assert_int_equal(access(a->sock, F_OK), -1);
	assert_int_equal(access(a->pin_dir, F_OK), 0);
	assert_int_equal(zmh_cleanup_pins(a->pin_dir), 0);
	zmh_cmd((const char *const[]){ "rm", "-rf", a->dir, NULL }, true);
}

/* SIGHUP, then wait for the reload to end: RELOADING=1 (with the monotonic
 * time Type=notify-reload asks for), then READY=1. The READY message in msg. */
static void svc_reload(struct zmh_agent *a, struct notify_listener *n, char *msg, size_t cap)
{
	assert_int_equal(kill(a->pid, SIGHUP), 0);
	notify_expect(n, "RELOADING=1", msg, cap);
	if (!strstr(msg, "\nMONOTONIC_USEC="))
		fail_msg("RELOADING=1 came without MONOTONIC_USEC=: \"%s\"", msg);
	notify_expect(n, "READY=1", msg, cap);
}

static void expect_log(const struct zmh_agent *a, const char *text)
{
	if (!zmh_agent_log_has(a, text)) {
		zmh_agent_dump_log(a);
		fail_msg("the agent's log does not say \"%s\"", text);
	}
}

static uint64_t sub_field(struct zm_client *c, const char *name, const char *field)
{
	char *text = NULL;
	uint64_t v = 0;

	assert_int_equal(zmh_status(c, &text), 0);
	if (zmh_status_sub_u64(text, name, field, &v) < 0)
		fail_msg("no %s= for subscriber %s in the status:\n%s", field, name, text);
	free(text);
	return v;
}

/* ---- readiness ---------------------------------------------------------- */

static void test_ready_comes_only_once_the_socket_accepts(void **state)
{
	struct notify_listener n;
	struct zmh_agent a;

	zmh_env(state);
	notify_listen(&n, false);
	svc_start(&a, "", NULL, &n);
	svc_stop(&a, &n);
	notify_close(&n);
}

static void test_ready_goes_to_an_abstract_notify_socket(void **state)
{
	struct notify_listener n;
	struct zmh_agent a;

	zmh_env(state);
	notify_listen(&n, true);
	svc_start(&a, "", NULL, &n);
	svc_stop(&a, &n);
	notify_close(&n);
}

/* ---- reloads ------------------------------------------------------------ */

static void test_sighup_applies_new_limits_and_keeps_subscribers(void **state)
{
	struct zmh_collector *col = zmh_collector_new(), *colb = zmh_collector_new();
	const struct zm_down_info *d;
	struct notify_listener n;
	struct zm_client *sa, *sb;
	struct zmh_agent a;
	struct zmh_child child;
	struct stat st;
	uint32_t rate = 0, batch = 0;
	uint64_t ref = 0;
	char msg[1024];

	zmh_env(state);
	notify_listen(&n, false);
	svc_start(&a, "max-rate = 1000\nmax-batch = 500\nsocket-mode = 0666\n", NULL, &n);

	/* A subscriber with a monitor, granted the first limits. */
	assert_int_equal(zmh_connect(&a, "it-svc-a", col, &sa), 0);
	assert_int_equal(zmh_child_spawn(&child), 0);
	assert_int_equal(zm_monitor_pid_start(sa, child.pid, child.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(sa, col), 0);
	assert_int_equal(sub_field(sa, "it-svc-a", "rate"), 1000);
	assert_int_equal(sub_field(sa, "it-svc-a", "batch"), 500);
	assert_int_equal(sub_field(sa, "it-svc-a", "monitors"), 1);

	svc_write_config(&a, "max-rate = 200\nmax-batch = 50\nsocket-mode = 0660\n"
			     "log-level = debug\nwakeup-interval = 500\n");
	svc_reload(&a, &n, msg, sizeof(msg));
	if (strstr(msg, "reload failed"))
		fail_msg("the reload failed: %s", msg);

	expect_log(&a, "reload: max-rate 1000 -> 200");
	expect_log(&a, "reload: max-batch 500 -> 50");
	expect_log(&a, "reload: log-level info -> debug");
	expect_log(&a, "reload: socket-mode 0666 -> 0660");
	expect_log(&a, "reload: wakeup-interval changed from 200 to 500, which takes a restart");
	expect_log(&a, "lowered the limits of 1 connected subscribers");
	assert_int_equal(stat(a.sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);

	/* A new subscriber gets the new caps; the old one was lowered to them. */
	assert_int_equal(zmh_connect(&a, "it-svc-b", colb, &sb), 0);
	assert_int_equal(zm_limits(sb, &rate, &batch, NULL), 0);
	assert_int_equal(rate, 200);
	assert_int_equal(batch, 50);
	assert_int_equal(sub_field(sb, "it-svc-a", "rate"), 200);
	assert_int_equal(sub_field(sb, "it-svc-a", "batch"), 50);
	assert_int_equal(sub_field(sb, "it-svc-a", "monitors"), 1);
	/* log-level debug is in force: the new client's hello is logged. */
	expect_log(&a, "says hello as \"it-svc-b\"");

	/* The old subscriber's monitor survived the reload: one DOWN, the real one. */
	assert_int_equal(zmh_child_exit(&child, 7), 0);
	assert_int_equal(zmh_child_reap(&child), 0);
	assert_int_equal(zmh_wait_downs(sa, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 7);
	assert_int_equal(zmh_quiet(sa, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->nerr, 0);

	zmh_client_close(sa);
	zmh_client_close(sb);
	svc_stop(&a, &n);
	notify_close(&n);
}

static void test_sighup_with_a_broken_file_changes_nothing(void **state)
{
	struct zmh_collector *col = zmh_collector_new();
	struct notify_listener n;
	struct zm_client *c;
	struct zmh_agent a;
	char msg[1024], want[PATH_MAX + 64];

	zmh_env(state);
	notify_listen(&n, false);
	svc_start(&a, "max-rate = 1000\n", NULL, &n);
	assert_int_equal(zmh_connect(&a, "it-svc-keep", col, &c), 0);

	svc_write_config(&a, "max-rate = 10\nmax_batch = 5\n");
	svc_reload(&a, &n, msg, sizeof(msg));
	if (!strstr(msg, "STATUS=reload failed"))
		fail_msg("READY=1 after a failed reload says \"%s\", want STATUS=reload failed ...", msg);
	/* Line 5: three lines of header, then the body. */
	snprintf(want, sizeof(want), "reload failed, the running settings stay: %s/zenmond.conf:5: "
		 "unknown key 'max_batch' (did you mean 'max-batch'?)", a.dir);
	expect_log(&a, want);

	assert_int_equal(zmh_sync(c, col), 0);
	assert_int_equal(sub_field(c, "it-svc-keep", "rate"), 1000);
	zmh_client_close(c);
	svc_stop(&a, &n);
	notify_close(&n);
}

static void test_command_line_still_wins_after_a_reload(void **state)
{
	static const char *const extra[] = { "--max-rate", "300", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct notify_listener n;
	struct zm_client *c;
	struct zmh_agent a;
	uint32_t rate = 0;
	char msg[1024];

	zmh_env(state);
	notify_listen(&n, false);
	svc_start(&a, "max-rate = 100\n", extra, &n);
	svc_write_config(&a, "max-rate = 50\n");
	svc_reload(&a, &n, msg, sizeof(msg));
	expect_log(&a, "reloaded ");
	assert_int_equal(zmh_connect(&a, "it-svc-cli", col, &c), 0);
	assert_int_equal(zm_limits(c, &rate, NULL, NULL), 0);
	assert_int_equal(rate, 300);
	zmh_client_close(c);
	svc_stop(&a, &n);
	notify_close(&n);
}

/* ---- --check-config ----------------------------------------------------- */

struct run {
	int status;              /* exit status, or -1 if it did not exit */
	char out[16384], err[4096];
};

static void slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t r;

	buf[0] = '\0';
	if (fd < 0)
		return;
	while (len + 1 < cap && (r = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = '\0';
	close(fd);
}

/* Run zenmond argv[1..] to the end, without NOTIFY_SOCKET or ZENMON_SOCKET. */
static void run_zenmond(const char *const *args, struct run *r)
{
	char dir[] = "/tmp/zm-it-run-XXXXXX", out[64], err[64];
	const char *argv[16];
	size_t argc = 0;
	pid_t pid;
	int ws;

	assert_non_null(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	argv[argc++] = zmh_zenmond_path();
	for (size_t i = 0; args[i] && argc < 15; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (o < 0 || e < 0)
			_exit(126);
		dup2(o, 1);
		dup2(e, 2);
		close_range(3, ~0U, 0);
		unsetenv("NOTIFY_SOCKET");
		unsetenv(ZM_SOCKET_ENV);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
	unlink(out);
	unlink(err);
	rmdir(dir);
}

/* A file in a fresh temp dir: its path in path. */
static void temp_config(char *path, size_t cap, const char *text)
{
	char dir[] = "/tmp/zm-it-conf-XXXXXX";

	assert_non_null(mkdtemp(dir));
	snprintf(path, cap, "%s/zenmond.conf", dir);
	write_text(path, text);
}

static void temp_config_remove(const char *path)
{
	char dir[PATH_MAX];

	unlink(path);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

static void expect_out(const struct run *r, const char *text)
{
	if (!strstr(r->out, text))
		fail_msg("zenmond's output lacks \"%s\":\n%s\n(stderr: %s)", text, r->out, r->err);
}

static void test_check_config_prints_the_effective_settings(void **state)
{
	char conf[PATH_MAX], pin[64], sock[128];
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/zm-it-%d-check", (int)getpid());
	snprintf(sock, sizeof(sock), "/tmp/zm-it-check-%d/sock", (int)getpid());
	{
		char text[512];

		snprintf(text, sizeof(text),
			 "# a good file\nmax-rate = 1234\n  max-batch=99  # the command line wins\n"
			 "pin-dir = %s\nsocket = \"%s\"\n", pin, sock);
		temp_config(conf, sizeof(conf), text);
	}
	run_zenmond((const char *const[]){ "--config", conf, "--max-batch", "77", "--check-config",
					   NULL }, r);
	if (r->status != 0)
		fail_msg("--check-config of a good file exited %d: %s", r->status, r->err);
	expect_out(r, "max-rate = 1234\n");
	expect_out(r, "max-batch = 77\n");
	expect_out(r, "batch-window = 1000\n");
	expect_out(r, ", then the command line");
	expect_out(r, conf);
	assert_string_equal(r->err, "");
	/* It only checks: no BPF loaded, nothing pinned, no socket. */
	assert_int_equal(access(pin, F_OK), -1);
	assert_int_equal(access(sock, F_OK), -1);
	temp_config_remove(conf);
	free(r);
}

static void test_check_config_names_file_and_line_of_an_error(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	char conf[PATH_MAX], want[PATH_MAX + 128];

	assert_non_null(r);
	temp_config(conf, sizeof(conf), "# comment\n\nmax_rate = 20000\n");
	run_zenmond((const char *const[]){ "--check-config", "--config", conf, NULL }, r);
	assert_int_equal(r->status, 1);
	snprintf(want, sizeof(want), "zenmond: %s:3: unknown key 'max_rate' (did you mean 'max-rate'?)\n",
		 conf);
	assert_string_equal(r->err, want);
	assert_string_equal(r->out, "");
	temp_config_remove(conf);

	temp_config(conf, sizeof(conf), "max-batch = 0\n");
	run_zenmond((const char *const[]){ "--check-config", "-c", conf, NULL }, r);
	assert_int_equal(r->status, 1);
	snprintf(want, sizeof(want),
		 "zenmond: %s:1: invalid max-batch '0': give a whole number from 1 to 16384\n", conf);
	assert_string_equal(r->err, want);
	temp_config_remove(conf);

	temp_config(conf, sizeof(conf), "config = /etc/other.conf\n");
	run_zenmond((const char *const[]){ "--check-config", "-c", conf, NULL }, r);
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->err, ":1: 'config' cannot be set in a configuration file"));
	temp_config_remove(conf);
	free(r);
}

static void test_check_config_of_a_missing_explicit_file_fails(void **state)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	run_zenmond((const char *const[]){ "--check-config", "--config", "/nonexistent/zenmond.conf",
					   NULL }, r);
	assert_int_equal(r->status, 1);
	assert_string_equal(r->err,
			    "zenmond: cannot open /nonexistent/zenmond.conf: No such file or directory\n");
	free(r);
}

static void test_bad_command_line_value_is_a_usage_error(void **state)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	run_zenmond((const char *const[]){ "--check-config", "--config", "/dev/null", "--max-rate",
					   "fast", NULL }, r);
	assert_int_equal(r->status, 2);
	assert_string_equal(r->err,
			    "zenmond: invalid --max-rate 'fast': give a whole number from 0 to 100000000\n");
	free(r);
}

/* The ring size must be a power of two the kernel takes; 4M and 64K are, in any spelling. */
static void test_ring_size_takes_suffixes_and_refuses_other_sizes(void **state)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	run_zenmond((const char *const[]){ "--check-config", "--config", "/dev/null", "--ring-size",
					   "3M", NULL }, r);
	assert_int_equal(r->status, 2);
	assert_string_equal(r->err, "zenmond: invalid --ring-size '3M': give a power of two from "
				    "64K to 1G, such as 4M\n");
	run_zenmond((const char *const[]){ "--check-config", "--config", "/dev/null", "--ring-size",
					   "32K", NULL }, r);
	assert_int_equal(r->status, 2);
	run_zenmond((const char *const[]){ "--check-config", "--config", "/dev/null", "--ring-size",
					   "65536", NULL }, r);
	assert_int_equal(r->status, 0);
	if (!strstr(r->out, "ring-size = 64K\n"))
		fail_msg("--check-config should print ring-size = 64K; it printed:\n%s", r->out);
	run_zenmond((const char *const[]){ "--check-config", "--config", "/dev/null", NULL }, r);
	assert_int_equal(r->status, 0);
	if (!strstr(r->out, "ring-size = 4M\n"))
		fail_msg("--check-config should print the default ring-size = 4M; it printed:\n%s",
			 r->out);
	free(r);
}

static void test_missing_default_file_means_the_defaults(void **state)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	run_zenmond((const char *const[]){ "--check-config", NULL }, r);
	if (access("/etc/zenmon/zenmond.conf", F_OK) == 0) {
		/* This host has one: then it is the one read. */
		if (r->status == 0)
			expect_out(r, ", then /etc/zenmon/zenmond.conf");
	} else {
		assert_int_equal(r->status, 0);
		expect_out(r, "(no /etc/zenmon/zenmond.conf)");
		expect_out(r, "max-batch = 1024\n");
	}
	free(r);
}

/* dist/zenmond.conf, from the source tree the tests run in. */
static void example_config_path(char *path, size_t cap)
{
	snprintf(path, cap, "dist/zenmond.conf");
	if (access(path, R_OK) == 0)
		return;
	snprintf(path, cap, "%s/../dist/zenmond.conf", zmh_build_dir());
	if (access(path, R_OK) != 0)
		fail_msg("cannot find dist/zenmond.conf (run the tests from the source tree)");
}

/*
 * The shipped example documents every setting, commented out with its
 * default: each key --check-config prints appears as "#key = ", and the file
 * with every such line uncommented is valid.
 */
static void test_example_config_documents_every_setting(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	char example[PATH_MAX], conf[PATH_MAX], *text, *out, *line, *save = NULL;
	size_t len = 0;

	assert_non_null(r);
	example_config_path(example, sizeof(example));
	text = calloc(1, 65536);
	out = calloc(1, 65536);
	assert_non_null(text);
	assert_non_null(out);
	slurp(example, text, 65536);

	/* Every setting is documented. */
	run_zenmond((const char *const[]){ "--check-config", "--config", "/dev/null", NULL }, r);
	assert_int_equal(r->status, 0);
	for (line = strtok_r(r->out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[64], want[80];

		if (line[0] == '#' && !strstr(line, " = (default)"))
			continue; /* the header */
		if (sscanf(line[0] == '#' ? line + 2 : line, "%63[a-z-] =", key) != 1)
			continue;
		snprintf(want, sizeof(want), "\n#%s = ", key);
		if (!strstr(text, want))
			fail_msg("%s does not document '%s' (want a line \"#%s = DEFAULT\")", example,
				 key, key);
	}

	/* Uncommented, it is a valid file. */
	save = NULL;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' && strstr(line, " = "))
			len += (size_t)snprintf(out + len, 65536 - len, "%s\n", line + 1);
	}
	temp_config(conf, sizeof(conf), out);
	run_zenmond((const char *const[]){ "--check-config", "--config", conf, NULL }, r);
	if (r->status != 0)
		fail_msg("%s with its settings uncommented does not pass --check-config: %s", example,
			 r->err);
	temp_config_remove(conf);
	free(text);
	free(out);
	free(r);
}

/* ---- under a real systemd ----------------------------------------------- */

/* Is PID 1 systemd (sd_booted(3))? */
static bool systemd_booted(void)
{
	struct stat st;

	return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/* systemctl args..., quietly; its exit status. */
static int systemctl(const char *const *args)
{
	const char *argv[8] = { "systemctl" };
	size_t n = 1;

	for (size_t i = 0; args[i] && n < 7; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return zmh_cmd(argv, false);
}

/*
 * dist/zenmond.service itself, under the machine's systemd: start (which
 * returns only after READY=1), a client and a monitor, a reload that changes
 * max-rate, the DOWN after it, stop. Everything the unit touches is renamed
 * for the test: the unit, its runtime directory, the pin dir; the binary and
 * the configuration file sit in /run (ProtectHome= and PrivateTmp= hide
 * /home and /tmp from the service).
 */
static void test_unit_runs_under_systemd(void **state)
{
	struct zmh_collector *col = zmh_collector_new();
	char unit[64], unit_path[128], dir[64], sock[128], conf[128], exe[128], example[PATH_MAX];
	char text[8192], body[512], line[1024];
	const struct zm_down_info *d;
	struct zmh_agent a = { 0 };
	struct zmh_child child;
	struct zm_client *c;
	uint64_t ref = 0;
	FILE *in, *outf;

	zmh_env(state);
	snprintf(unit, sizeof(unit), "zm-it-%d.service", (int)getpid());
	snprintf(unit_path, sizeof(unit_path), "/run/systemd/system/%s", unit);
	snprintf(dir, sizeof(dir), "/run/zm-it-%d", (int)getpid());
	snprintf(sock, sizeof(sock), "/run/zm-it-%d-rt/zenmon.sock", (int)getpid());
	snprintf(conf, sizeof(conf), "%s/zenmond.conf", dir);
	snprintf(exe, sizeof(exe), "%s/zenmond", dir);
	snprintf(a.sock, sizeof(a.sock), "%s", sock);
	snprintf(a.pin_dir, sizeof(a.pin_dir), "/sys/fs/bpf/zm-it-%d-unit", (int)getpid());
	snprintf(a.log, sizeof(a.log), "%s/none.log", dir);

	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(zmh_cmd((const char *const[]){ "cp", zmh_zenmond_path(), exe, NULL }, false), 0);
	snprintf(body, sizeof(body), "socket = %s\npin-dir = %s\nmax-rate = 1000\n", sock, a.pin_dir);
	write_text(conf, body);

	/* The shipped unit, with the test's names. */
	example_config_path(example, sizeof(example));
	*strrchr(example, '/') = '\0';
	strcat(example, "/zenmond.service");
	in = fopen(example, "r");
	assert_non_null(in);
	text[0] = '\0';
	while (fgets(line, sizeof(line), in)) {
		if (strncmp(line, "ExecStart=", 10) == 0)
			snprintf(line, sizeof(line), "ExecStart=%s --config %s\n", exe, conf);
		else if (strncmp(line, "RuntimeDirectory=", 17) == 0)
			snprintf(line, sizeof(line), "RuntimeDirectory=zm-it-%d-rt\n", (int)getpid());
		else if (strncmp(line, "WantedBy=", 9) == 0)
			continue;
		assert_true(strlen(text) + strlen(line) < sizeof(text));
		strcat(text, line);
	}
	fclose(in);
	outf = fopen(unit_path, "w");
	assert_non_null(outf);
	fputs(text, outf);
	fclose(outf);

	assert_int_equal(systemctl((const char *const[]){ "daemon-reload", NULL }), 0);
	if (systemctl((const char *const[]){ "start", unit, NULL }) != 0) {
		zmh_cmd((const char *const[]){ "journalctl", "--no-pager", "-n", "50", "-u", unit, NULL }, false);
		fail_msg("systemctl start %s failed", unit);
	}
	/* Type=notify: start returned after READY=1, so the socket takes clients. */
	assert_true(accepts(sock));
	assert_int_equal(zmh_connect(&a, "it-unit", col, &c), 0);
	assert_int_equal(zmh_child_spawn(&child), 0);
	assert_int_equal(zm_monitor_pid_start(c, child.pid, child.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(c, col), 0);
	assert_int_equal(sub_field(c, "it-unit", "rate"), 1000);

	snprintf(body, sizeof(body), "socket = %s\npin-dir = %s\nmax-rate = 100\n", sock, a.pin_dir);
	write_text(conf, body);
	assert_int_equal(systemctl((const char *const[]){ "reload", unit, NULL }), 0);
	/* ExecReload= only sends SIGHUP; RELOADING=1 / READY=1 end the reload
	 * for systemd, but not for this test, which waits for its effect. */
	for (int64_t until = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	     sub_field(c, "it-unit", "rate") != 100 && zmh_mono_ms() < until;)
		zmh_sleep_ms(20);
	assert_int_equal(sub_field(c, "it-unit", "rate"), 100);

	assert_int_equal(zmh_child_exit(&child, 3), 0);
	assert_int_equal(zmh_child_reap(&child), 0);
	assert_int_equal(zmh_wait_downs(c, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->status, 3);
	zmh_client_close(c);

	assert_int_equal(systemctl((const char *const[]){ "stop", unit, NULL }), 0);
	assert_int_equal(access(sock, F_OK), -1);
	/* Stopped, the programs stay attached for the next start. */
	assert_int_equal(access(a.pin_dir, F_OK), 0);
	assert_int_equal(zmh_cleanup_pins(a.pin_dir), 0);
	unlink(unit_path);
	systemctl((const char *const[]){ "daemon-reload", NULL });
	zmh_cmd((const char *const[]){ "rm", "-rf", dir, NULL }, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_ready_comes_only_once_the_socket_accepts),
		ZMH_TEST(test_ready_goes_to_an_abstract_notify_socket),
		ZMH_TEST(test_sighup_applies_new_limits_and_keeps_subscribers),
		ZMH_TEST(test_sighup_with_a_broken_file_changes_nothing),
		ZMH_TEST(test_command_line_still_wins_after_a_reload),
		ZMH_TEST(test_check_config_prints_the_effective_settings),
		ZMH_TEST(test_check_config_names_file_and_line_of_an_error),
		ZMH_TEST(test_check_config_of_a_missing_explicit_file_fails),
		ZMH_TEST(test_ring_size_takes_suffixes_and_refuses_other_sizes),
		ZMH_TEST(test_bad_command_line_value_is_a_usage_error),
		ZMH_TEST(test_missing_default_file_means_the_defaults),
		ZMH_TEST(test_example_config_documents_every_setting),
		/* Last, and only where PID 1 is systemd: elsewhere the stand-in
		 * NOTIFY_SOCKET tests above cover the protocol. */
		ZMH_TEST(test_unit_runs_under_systemd),
	};
	size_t n = sizeof(tests) / sizeof(tests[0]);

	if (!systemd_booted()) {
		fprintf(stderr, "note: PID 1 is not systemd here: test_unit_runs_under_systemd is left "
			"out; the stand-in NOTIFY_SOCKET tests check the protocol\n");
		n--;
	}
	return _cmocka_run_group_tests("test_service", tests, n, zmh_group_setup, zmh_group_teardown);
}
