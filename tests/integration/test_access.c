// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Access control against the real agent: the socket file's owner, group and
 * mode; what a subscriber that is not root may monitor (processes it could
 * signal, sockets it owns, what it passes by fd) and what allow-uids and
 * allow-groups lift; the quotas (monitors per subscriber and per uid,
 * connections per uid, requests per second, queued bytes) refusing only the
 * excess; and the agent after set-up: CAP_SYS_PTRACE effective,
 * CAP_NET_ADMIN only permitted (and raised only for its one use), nothing
 * else, no_new_privs, running as the configured user, and still delivering
 * every DOWN, a zombie's real exit status included.
 *
 * The unprivileged side runs in a forked child that becomes nobody (uid and
 * gid 65534, no other group) before it connects, so that SO_PEERCRED
 * reports nobody; its checks print what failed and make it exit non-zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define NOBODY 65534
#define CAP_SYS_PTRACE_BIT (1ULL << 19)
#define CAP_NET_ADMIN_BIT (1ULL << 12)
/* Kept: CAP_SYS_PTRACE effective, CAP_NET_ADMIN only permitted (priv.c). */
#define KEPT_BITS (CAP_SYS_PTRACE_BIT | CAP_NET_ADMIN_BIT)

/* In the nobody child: on failure say what and where, and fail the child. */
#define CHECK(cond, ...)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "  [as nobody] %s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                                         \
			fprintf(stderr, __VA_ARGS__);                                     \
			fputc('\n', stderr);                                              \
			return 1;                                                         \
		}                                                                         \
	} while (0)

/*
 * How long one side of as_nobody_then() waits for the other: the parent's
 * then() may stop an agent (ZMH_TIMEOUT_MS) and start it again (the
 * harness's start timeout), and the child may fill a socket first
 * (send_status_until_held_back(), ZMH_TIMEOUT_MS). A side that fails ends
 * the wait early (end-of-file on the pipe).
 */
#define HANDOVER_TIMEOUT_MS (2 * ZMH_TIMEOUT_MS + ZMH_START_TIMEOUT_MS)

/* What the parent hands its nobody child. */
struct job {
	const struct zmh_agent *agent;
	pid_t root_pid;               /* a process of root's */
	uint64_t root_start;
	uint64_t root_cookie;         /* a TCP socket of root's */
	struct zm_tcp_tuple root_tuple;
	int root_sock;                /* that socket, inherited across the fork */
	struct zmh_child *root_child; /* the process of root_pid */
	int ready_fd;                 /* the child writes a byte here: see as_nobody_then() */
	int go_fd;                    /* and reads one here once then() is done */
	char conf[96];                /* the agent's configuration file, if the test made one */
	struct zmh_raw *probe;        /* a connection of root's to the agent, inherited */
};

/* A pipe whose ends the per-test teardown closes unless the test did. */
static int tracked_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	zmh_fd_track(p[0]);
	zmh_fd_track(p[1]);
	return 0;
}

/*
 * Run fn as nobody in a child; its exit status (0: all its checks passed).
 * With then: when the child writes a byte to j->ready_fd (it is watching),
 * the parent, which may do what nobody may not, runs then(j). The child and
 * the pipes are tracked: should then() fail an assertion, the per-test
 * teardown kills and reaps the child and closes the pipes.
 */
static int as_nobody_then(int (*fn)(const struct job *j), struct job *j,
			  void (*then)(const struct job *j))
{
	int ws, p[2] = { -1, -1 }, go[2] = { -1, -1 };
	pid_t pid;

	if (then && (tracked_pipe(p) < 0 || tracked_pipe(go) < 0))
		return -errno;
	j->ready_fd = p[1];
	j->go_fd = go[0];
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The parent's ends: the child sees end-of-file once the parent
		 * closed go[1] (or the teardown did). */
		if (then) {
			close(p[0]);
			close(go[1]);
		}
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0) {
			fprintf(stderr, "  cannot become nobody: %s\n", strerror(errno));
			_exit(100);
		}
		_exit(fn(j));
	}
	zmh_pid_track(pid);
	if (then) {
		char b;

		zmh_fd_close(p[1]);
		zmh_fd_close(go[0]);
		/* The child's own part comes first (it may fill a socket); a
		 * child that fails before ready() ends this wait with EOF. */
		if (zmh_fd_wait(p[0], POLLIN, HANDOVER_TIMEOUT_MS) == 1 && read(p[0], &b, 1) == 1) {
			then(j);
			/* A child that only said ready() may be done and gone by
			 * now: EPIPE is no failure (the harness catches SIGPIPE). */
			if (write(go[1], "g", 1) != 1 && errno != EPIPE)
				fprintf(stderr, "  cannot tell the child to go on: %s\n", strerror(errno));
		}
		zmh_fd_close(p[0]);
		zmh_fd_close(go[1]);
	}
	if (waitpid(pid, &ws, 0) != pid)
		return -errno;
	zmh_pid_untrack(pid);
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static int as_nobody(int (*fn)(const struct job *j), struct job *j)
{
	return as_nobody_then(fn, j, NULL);
}

/* In the child: tell the parent to go on (as_nobody_then()). */
static int ready(const struct job *j)
{
	return write(j->ready_fd, "r", 1) == 1 ? 0 : -errno;
}

/* In the child: ready(), then wait until the parent's then() is done (it
 * may stop and restart an agent: HANDOVER_TIMEOUT_MS). */
static int ready_and_wait(const struct job *j)
{
	char b;

	if (ready(j) < 0)
		return -errno;
	if (zmh_fd_wait(j->go_fd, POLLIN, HANDOVER_TIMEOUT_MS) != 1 || read(j->go_fd, &b, 1) != 1)
		return -ETIMEDOUT;
	return 0;
}

/*
 * zmh_child_reap() for a process that another process ends, possibly only
 * after a slow part of its own (the parent's then() stopping an agent
 * first): wait up to timeout_ms for it to be a zombie, then reap it.
 */
static int reap_within(struct zmh_child *c, int timeout_ms)
{
	int r = zmh_child_wait_zombie_ms(c, timeout_ms);

	return r < 0 ? r : zmh_child_reap(c);
}

/* The parent's part: root's process exits 7. */
static void end_root_child(const struct job *j)
{
	zmh_child_exit(j->root_child, 7);
}

/*
 * The socket listens a moment before the agent drops its privileges and
 * says it is ready (it serves nothing before): wait for that.
 */
static void wait_ready(const struct zmh_agent *a)
{
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;

	while (!zmh_agent_log_has(a, " ready: socket ")) {
		if (zmh_mono_ms() > deadline) {
			zmh_agent_dump_log(a);
			fail_msg("the agent did not log that it is ready");
		}
		zmh_sleep_ms(10);
	}
}

/* An agent of the test's own with these options, its socket reachable by
 * nobody (the harness's temp dir is root's, mode 0700). */
static void start_agent(struct zmh_agent *a, const char *const *extra)
{
	assert_int_equal(zmh_extra_agent_start(a, extra), 0);
	assert_int_equal(chmod(a->dir, 0711), 0);
	wait_ready(a);
}

/* The ERROR collected for ref, or NULL. */
static const struct zmh_err *err_for(const struct zmh_collector *col, uint64_t ref)
{
	for (size_t i = 0; i < col->nerr; i++)
		if (col->errs[i].ref == ref)
			return &col->errs[i];
	return NULL;
}

static int count_errors(const struct zmh_collector *col, int code)
{
	int n = 0;

	for (size_t i = 0; i < col->nerr; i++)
		n += col->errs[i].error == code;
	return n;
}

/* "Name:\tvalue" from /proc/PID/status, into buf. 0 or -errno. */
static int status_field(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64], line[512];
	size_t nlen = strlen(name);
	FILE *f;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
			char *v = line + nlen + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			snprintf(buf, len, "%s", v);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

static unsigned long long status_hex(pid_t pid, const char *name)
{
	char buf[64];

	if (status_field(pid, name, buf, sizeof(buf)) < 0)
		fail_msg("no %s: line in /proc/%d/status", name, (int)pid);
	return strtoull(buf, NULL, 16);
}

/* ---- the socket file ----------------------------------------------------- */

static int connect_raw_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int nobody_cannot_connect(const struct job *j)
{
	int r = connect_raw_path(j->agent->sock);

	CHECK(r == -EACCES, "connect(%s) gave %s, want EACCES", j->agent->sock, strerror(-r));
	return 0;
}

static int nobody_can_connect(const struct job *j)
{
	int r = connect_raw_path(j->agent->sock);

	CHECK(r == 0, "connect(%s) gave %s, want success", j->agent->sock, strerror(-r));
	return 0;
}

static void test_socket_is_root_only_by_default(void **state)
{
	struct zmh_env *env = zmh_env(state);
	const struct group *g = getgrnam("zenmon");
	struct job j = { .agent = &env->agent };
	struct stat st;

	assert_int_equal(stat(env->agent.sock, &st), 0);
	assert_int_equal(st.st_uid, 0);
	if (g) {
		assert_int_equal(st.st_gid, g->gr_gid);
		assert_int_equal(st.st_mode & 07777, 0660);
	} else {
		assert_int_equal(st.st_gid, 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	/* Even with the way through the directory open, nobody is kept out. */
	assert_int_equal(chmod(env->agent.dir, 0711), 0);
	assert_int_equal(as_nobody(nobody_cannot_connect, &j), 0);
	assert_int_equal(chmod(env->agent.dir, 0700), 0);
}

static void test_socket_owner_group_and_mode_are_configurable(void **state)
{
	static const char *const args[] = { "--socket-owner", "nobody", "--socket-group", "nogroup",
					    "--socket-mode", "0640", NULL };
	struct zmh_agent a;
	struct job j = { .agent = &a };
	struct stat st;

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(stat(a.sock, &st), 0);
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(st.st_gid, NOBODY);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* The owner may connect: its mode says so. */
	assert_int_equal(as_nobody(nobody_can_connect, &j), 0);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

/* ---- privileges ---------------------------------------------------------- */

static void test_agent_keeps_only_the_capabilities_it_uses_after_set_up(void **state)
{
	struct zmh_env *env = zmh_env(state);
	pid_t pid = env->agent.pid;
	char buf[128];

	wait_ready(&env->agent);
	assert_int_equal(status_hex(pid, "CapEff"), CAP_SYS_PTRACE_BIT);
	assert_int_equal(status_hex(pid, "CapPrm"), KEPT_BITS);
	assert_int_equal(status_hex(pid, "CapInh"), 0);
	assert_int_equal(status_hex(pid, "CapAmb"), 0);
	/* Started with CAP_SETPCAP (root): the bounding set is narrowed too. */
	assert_int_equal(status_hex(pid, "CapBnd"), KEPT_BITS);
	assert_int_equal(status_field(pid, "NoNewPrivs", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1");
	/* Without a user setting it stays root. */
	assert_int_equal(status_field(pid, "Uid", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "0\t0\t0\t0");
	assert_true(zmh_agent_log_has(&env->agent,
				      "dropped privileges: running as uid 0 with capabilities "
				      "cap_net_admin,cap_sys_ptrace"));
}

static void test_agent_runs_as_the_configured_user_and_still_delivers(void **state)
{
	char dir[] = "/tmp/zm-acc-XXXXXX", sock[96], run[80], buf[128];
	const char *args[] = { "--user", "nobody", "--socket", sock, NULL };
	struct zmh_collector *col;
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child live, zombie;
	struct zmh_agent a;
	uint64_t ref1 = 0, ref2 = 0;
	struct stat st;

	(void)zmh_env(state);
	/* The agent makes run/ and, as it will run as nobody, gives it to
	 * nobody, so that it can remove its socket at exit. */
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(run, sizeof(run), "%s/run", dir);
	snprintf(sock, sizeof(sock), "%s/sock", run);
	start_agent(&a, args);

	assert_int_equal(status_field(a.pid, "Uid", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "65534\t65534\t65534\t65534");
	assert_int_equal(status_field(a.pid, "Gid", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "65534\t65534\t65534\t65534");
	assert_int_equal(status_hex(a.pid, "CapEff"), CAP_SYS_PTRACE_BIT);
	assert_int_equal(status_hex(a.pid, "CapPrm"), KEPT_BITS);
	assert_int_equal(stat(sock, &st), 0);
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(stat(run, &st), 0);
	assert_int_equal(st.st_uid, NOBODY);

	/* Root's processes, watched by an agent that is nobody now: a live one
	 * that is killed, and one already dead (a zombie) when monitored, whose
	 * exit status only CAP_SYS_PTRACE lets the agent read. */
	col = zmh_collector_new();
	assert_int_equal(zmh_connect(&a, "it-acc-user", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&live), 0);
	assert_int_equal(zm_monitor_pid(cl, live.pid, &ref1), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_child_kill(&live, SIGKILL), 0);
	assert_int_equal(zmh_child_spawn(&zombie), 0);
	assert_int_equal(zmh_child_exit(&zombie, 42), 0);
	assert_int_equal(zmh_child_wait_zombie(&zombie), 0);
	assert_int_equal(zm_monitor_pid_start(cl, zombie.pid, zombie.start_ticks, &ref2), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 2, ZMH_TIMEOUT_MS), 2);
	assert_int_equal(col->nerr, 0);
	assert_int_equal(zmh_collector_count(col, ref1, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_KILLED);
	assert_int_equal(d->signal, SIGKILL);
	assert_int_equal(zmh_collector_count(col, ref2, &d), 1);
	if (d->reason != ZM_DOWN_EXITED || d->status != 42)
		fail_msg("a zombie that exited 42 was reported %s (status %d), want exited 42",
			 zm_reason_str(d->reason), d->status);
	assert_int_equal(zmh_child_reap(&live), 0);
	assert_int_equal(zmh_child_reap(&zombie), 0);
	zmh_client_close(cl);

	/* It still stops cleanly and takes its socket with it. */
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
	assert_int_equal(access(sock, F_OK), -1);
	assert_int_equal(rmdir(run), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * CAP_NET_ADMIN is permitted but not effective: raised to grow a dropped
 * subscriber's socket for its last ERROR, lowered right after.
 */
static void test_net_admin_is_raised_only_for_a_dropped_subscriber_s_last_error(void **state)
{
	static const char *const args[] = { "--stall-timeout", "1", NULL };
	enum { N = 40000 };   /* DOWNs: more than a socket holds */
	struct zmh_collector *col = zmh_collector_new(), *scol = zmh_collector_new();
	struct zm_client *c, *statc;
	struct zmh_child ch;
	struct zmh_agent a;
	uint64_t ref, dropped = 0;
	int64_t deadline;
	char *text;
	int r = 0;

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(zmh_connect(&a, "it-acc-stall-status", scol, &statc), 0);
	assert_int_equal(zmh_connect(&a, "it-acc-stall", col, &c), 0);
	assert_int_equal(zmh_child_spawn(&ch), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(zm_monitor_pid(c, ch.pid, &ref), 0);
	assert_int_equal(zmh_sync(c, col), 0);
	assert_int_equal(col->nerr, 0);
	assert_int_equal(zmh_child_kill(&ch, SIGKILL), 0);
	assert_int_equal(zmh_child_reap(&ch), 0);
	/* c reads nothing now: after a second the agent drops it. */
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while (dropped == 0) {
		assert_true(zmh_mono_ms() < deadline);
		zmh_sleep_ms(100);
		assert_int_equal(zmh_status(statc, &text), 0);
		assert_int_equal(zmh_status_u64(text, "subscribers_dropped", &dropped), 0);
		free(text);
	}
	assert_int_equal(status_hex(a.pid, "CapEff"), CAP_SYS_PTRACE_BIT);
	assert_int_equal(status_hex(a.pid, "CapPrm"), KEPT_BITS);
	/* And the dropped subscriber reads why, after what its socket held. */
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while (r != -ENOTCONN) {
		r = zm_wait(c, 100, zmh_on_down, col);
		assert_true(r >= 0 || r == -ENOTCONN);
		assert_true(zmh_mono_ms() < deadline);
	}
	assert_true(col->n < N);
	assert_true(col->nerr > 0);
	assert_int_equal(col->errs[col->nerr - 1].error, ETIMEDOUT);
	zmh_client_close(c);
	zmh_client_close(statc);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

/* ---- the policy ---------------------------------------------------------- */

static int nobody_is_refused_roots_process(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	const struct zmh_err *e1, *e2;
	struct zm_client *cl;
	uint64_t r1 = 0, r2 = 0, r3 = 0;
	long n;

	CHECK(zmh_connect(j->agent, "it-acc-nobody", col, &cl) == 0, "connect");
	CHECK(zm_monitor_pid(cl, j->root_pid, &r1) == 0, "send");
	CHECK(zm_monitor_pid_start(cl, j->root_pid, j->root_start, &r2) == 0, "send");
	/* Gone processes reveal nothing: noproc, not EPERM. */
	CHECK(zm_monitor_pid_start(cl, j->root_pid, j->root_start + 1, &r3) == 0, "send");
	CHECK(zmh_sync(cl, col) == 0, "sync");
	e1 = err_for(col, r1);
	e2 = err_for(col, r2);
	CHECK(e1 && e1->error == EPERM, "by pid: %s", e1 ? strerror(e1->error) : "no error");
	CHECK(e2 && e2->error == EPERM, "by pid and start: %s", e2 ? strerror(e2->error) : "no error");
	CHECK(strstr(e1->message, "belongs to uid 0") != NULL, "message: %s", e1->message);
	CHECK(!err_for(col, r3), "noproc case got an error: %s", err_for(col, r3)->message);
	n = zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS);
	CHECK(n == 1 && col->downs[0].ref == r3 && col->downs[0].reason == ZM_DOWN_NOPROC,
	      "want one noproc DOWN, got %ld", n);
	/* Its death, later, goes to nobody. */
	CHECK(kill(j->root_pid, 0) < 0 && errno == EPERM, "nobody may signal root's process?");
	return 0;
}

static void test_restricted_subscriber_gets_eperm_for_roots_process(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	struct zmh_agent a;
	struct job j = { .agent = &a };
	uint64_t ref = 0;

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(zmh_child_spawn(&c), 0);
	j.root_pid = c.pid;
	j.root_start = c.start_ticks;
	/* Root watches it first: the fast path, where the target exists. */
	assert_int_equal(zmh_connect(&a, "it-acc-root", col, &cl), 0);
	assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(as_nobody(nobody_is_refused_roots_process, &j), 0);
	/* Root's monitor is untouched by the refusals. */
	assert_int_equal(zmh_child_exit(&c, 3), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(col->downs[0].status, 3);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static int nobody_monitors_its_own_process(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t r1 = 0, r2 = 0, r3 = 0;

	CHECK(zmh_child_spawn(&c) == 0, "spawn");
	CHECK(zmh_connect(j->agent, "it-acc-own", col, &cl) == 0, "connect");
	CHECK(zm_monitor_pid(cl, c.pid, &r1) == 0, "send");
	/* The second and third take the fast paths (pid hint, known target). */
	CHECK(zm_monitor_pid(cl, c.pid, &r2) == 0, "send");
	CHECK(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &r3) == 0, "send");
	CHECK(zmh_sync(cl, col) == 0, "sync");
	CHECK(col->nerr == 0, "error %s: %s", strerror(col->errs[0].error), col->errs[0].message);
	CHECK(zmh_child_kill(&c, SIGTERM) == 0, "kill");
	CHECK(zmh_wait_downs(cl, col, 3, ZMH_TIMEOUT_MS) == 3, "want 3 DOWNs, got %zu", col->n);
	CHECK(zmh_collector_count(col, r1, &d) == 1 && d->reason == ZM_DOWN_KILLED &&
	      d->signal == SIGTERM, "DOWN for r1");
	CHECK(zmh_child_reap(&c) == 0, "reap");
	return 0;
}

static void test_restricted_subscriber_monitors_its_own_process(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", NULL };
	struct zmh_agent a;
	struct job j = { .agent = &a };

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(as_nobody(nobody_monitors_its_own_process, &j), 0);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static int nobody_passes_a_pidfd_of_roots_process(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	uint64_t ref = 0;
	int pidfd;

	/* pidfd_open(2) asks for no permission; what it gives tells its holder
	 * the exit status itself (PIDFD_INFO_EXIT), so the agent accepts it. */
	pidfd = (int)syscall(SYS_pidfd_open, j->root_pid, 0);
	CHECK(pidfd >= 0, "pidfd_open: %s", strerror(errno));
	CHECK(zmh_connect(j->agent, "it-acc-pidfd", col, &cl) == 0, "connect");
	CHECK(zm_monitor_pidfd(cl, pidfd, &ref) == 0, "send");
	CHECK(zmh_sync(cl, col) == 0, "sync");
	CHECK(col->nerr == 0, "error %s: %s", strerror(col->errs[0].error), col->errs[0].message);
	/* The parent ends it once this child says it is watching. */
	CHECK(ready(j) == 0, "ready: %s", strerror(errno));
	CHECK(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS) == 1, "no DOWN");
	CHECK(zmh_collector_count(col, ref, &d) == 1 && d->reason == ZM_DOWN_EXITED &&
	      d->status == 7, "want exited 7, got %s %d", zm_reason_str(d->reason), d->status);
	return 0;
}

static void test_a_passed_pidfd_needs_no_ownership(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", NULL };
	struct zmh_child c;
	struct zmh_agent a;
	struct job j = { .agent = &a };

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(zmh_child_spawn(&c), 0);
	j.root_pid = c.pid;
	j.root_child = &c;
	assert_int_equal(as_nobody_then(nobody_passes_a_pidfd_of_roots_process, &j, end_root_child),
			 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(WEXITSTATUS(c.wstatus), 7);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static int nobody_and_sockets(const struct job *j)
{
	struct zmh_rawcol *col = zmh_rawcol_new();
	const struct zm_error *e;
	struct zm_tcp_tuple own_tuple;
	uint64_t own_cookie;
	struct zmh_raw r;
	int cli, srv;

	CHECK(zmh_raw_connect_named(&r, j->agent->sock, "it-acc-tcp") == 0, "connect");
	/* Root's socket, by cookie and by its ends: not nobody's. */
	CHECK(zmh_raw_monitor_tcp_cookie(&r, 1, j->root_cookie) == 0, "send");
	CHECK(zmh_raw_monitor_tcp_tuple(&r, 2, &j->root_tuple) == 0, "send");
	/* The same socket passed by fd (inherited): passing proves access. */
	CHECK(zmh_raw_monitor_tcp_fd(&r, 3, j->root_sock) == 0, "send");
	/* Its own connection, every way. */
	CHECK(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv) == 0, "tcp pair");
	CHECK(zmh_sock_cookie(cli, &own_cookie) == 0, "cookie");
	CHECK(zmh_sock_tuple(cli, &own_tuple) == 0, "tuple");
	CHECK(zmh_raw_monitor_tcp_cookie(&r, 4, own_cookie) == 0, "send");
	CHECK(zmh_raw_monitor_tcp_tuple(&r, 5, &own_tuple) == 0, "send");
	CHECK(zmh_raw_monitor_tcp_fd(&r, 6, cli) == 0, "send");
	CHECK(zmh_raw_sync_col(&r, col) == 0, "sync");
	for (uint64_t ref = 1; ref <= 2; ref++) {
		e = zmh_rawcol_err(col, ref);
		CHECK(e && e->code == EPERM, "ref %llu: %s", (unsigned long long)ref,
		      e ? strerror(e->code) : "no error");
		CHECK(strstr(e->message, "belongs to uid 0"), "message: %s", e->message);
	}
	for (uint64_t ref = 3; ref <= 6; ref++) {
		e = zmh_rawcol_err(col, ref);
		CHECK(!e, "ref %llu: %s", (unsigned long long)ref, e->message);
	}
	/* Closing its connection fires its three monitors. */
	CHECK(zmh_sock_linger0(cli) == 0, "linger");
	zmh_fd_close(cli);
	CHECK(zmh_raw_collect(&r, col, 3, ZMH_TIMEOUT_MS) == 3, "want 3 DOWNs, got %zu", col->n);
	for (size_t i = 0; i < col->n; i++)
		CHECK(col->downs[i].ref >= 4 && col->downs[i].reason == ZM_REASON_TCP_CLOSED,
		      "DOWN %zu: ref %llu reason %u", i, (unsigned long long)col->downs[i].ref,
		      col->downs[i].reason);
	return 0;
}

static void test_restricted_subscriber_gets_eperm_for_another_users_socket(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", NULL };
	struct zmh_agent a;
	struct job j = { .agent = &a };
	int cli, srv;

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	assert_int_equal(zmh_sock_cookie(cli, &j.root_cookie), 0);
	assert_int_equal(zmh_sock_tuple(cli, &j.root_tuple), 0);
	j.root_sock = cli;
	assert_int_equal(as_nobody(nobody_and_sockets, &j), 0);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static int nobody_may_monitor_roots_process(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	uint64_t ref = 0;

	CHECK(zmh_connect(j->agent, "it-acc-allowed", col, &cl) == 0, "connect");
	CHECK(zm_monitor_pid(cl, j->root_pid, &ref) == 0, "send");
	CHECK(zmh_sync(cl, col) == 0, "sync");
	CHECK(col->nerr == 0, "error %s: %s", strerror(col->errs[0].error), col->errs[0].message);
	CHECK(ready(j) == 0, "ready: %s", strerror(errno));
	CHECK(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS) == 1, "no DOWN");
	CHECK(col->downs[0].reason == ZM_DOWN_EXITED && col->downs[0].status == 7, "want exited 7");
	return 0;
}

static void allowed_case(const char *const *args)
{
	struct zmh_child c;
	struct zmh_agent a;
	struct job j = { .agent = &a };

	start_agent(&a, args);
	assert_int_equal(zmh_child_spawn(&c), 0);
	j.root_pid = c.pid;
	j.root_child = &c;
	assert_int_equal(as_nobody_then(nobody_may_monitor_roots_process, &j, end_root_child), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static void test_allow_uids_lets_a_user_monitor_any_process(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", "--allow-uids", "1234,nobody",
					    NULL };

	(void)zmh_env(state);
	allowed_case(args);
}

static void test_allow_groups_lets_its_members_monitor_any_process(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", "--allow-groups", "nogroup",
					    NULL };

	(void)zmh_env(state);
	allowed_case(args);
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -errno;
}

static int nobody_is_allowed_after_a_reload(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	const struct zmh_err *e;
	struct zm_client *cl;
	uint64_t r1 = 0, r2 = 0;

	CHECK(zmh_connect(j->agent, "it-acc-reload", col, &cl) == 0, "connect");
	CHECK(zm_monitor_pid(cl, j->root_pid, &r1) == 0, "send");
	CHECK(zmh_sync(cl, col) == 0, "sync");
	e = err_for(col, r1);
	CHECK(e && e->error == EPERM, "before: %s", e ? strerror(e->error) : "no error");
	/* The parent adds nobody to allow-uids and reloads; this connection
	 * stays and is now unrestricted. */
	CHECK(ready_and_wait(j) == 0, "the parent did not reload");
	CHECK(zm_monitor_pid(cl, j->root_pid, &r2) == 0, "send");
	CHECK(zmh_sync(cl, col) == 0, "sync");
	CHECK(col->nerr == 1, "after the reload: %s", col->errs[col->nerr - 1].message);
	return 0;
}

static void allow_nobody_and_reload(const struct job *j)
{
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;

	if (write_text(j->conf, "socket-mode = 0666\nallow-uids = nobody\n") < 0 ||
	    kill(j->agent->pid, SIGHUP) < 0)
		return;
	while (!zmh_agent_log_has(j->agent, "reload: allow-uids") && zmh_mono_ms() < deadline)
		zmh_sleep_ms(20);
	zmh_sleep_ms(50); /* the line is logged as the change is made */
}

static void test_allow_uids_applies_on_reload_to_connected_subscribers(void **state)
{
	struct zmh_child c;
	struct zmh_agent a;
	struct job j = { .agent = &a };
	const char *args[] = { "--config", j.conf, NULL };

	(void)zmh_env(state);
	snprintf(j.conf, sizeof(j.conf), "/tmp/zm-acc-conf-%d", (int)getpid());
	assert_int_equal(write_text(j.conf, "socket-mode = 0666\n"), 0);
	start_agent(&a, args);
	assert_int_equal(zmh_child_spawn(&c), 0);
	j.root_pid = c.pid;
	assert_int_equal(as_nobody_then(nobody_is_allowed_after_a_reload, &j, allow_nobody_and_reload),
			 0);
	assert_true(zmh_agent_log_has(&a, "reload: allow-uids  -> 65534"));
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
	unlink(j.conf);
}

/* ---- quotas -------------------------------------------------------------- */

static int nobody_meets_the_monitor_quotas(const struct job *j)
{
	struct zmh_collector *ca = zmh_collector_new(), *cb = zmh_collector_new();
	struct zm_client *a, *b;
	struct zmh_child c;
	uint64_t ra[5], rb[3], extra = 0;
	const struct zmh_err *e;

	CHECK(zmh_child_spawn(&c) == 0, "spawn");
	CHECK(zmh_connect(j->agent, "it-acc-qa", ca, &a) == 0, "connect");
	CHECK(zmh_connect(j->agent, "it-acc-qb", cb, &b) == 0, "connect");
	/* 3 per subscriber: a's 4th and 5th are refused. */
	for (int i = 0; i < 5; i++)
		CHECK(zm_monitor_pid(a, c.pid, &ra[i]) == 0, "send");
	CHECK(zmh_sync(a, ca) == 0, "sync");
	CHECK(ca->nerr == 2, "a: want 2 errors, got %zu", ca->nerr);
	for (int i = 3; i < 5; i++) {
		e = err_for(ca, ra[i]);
		CHECK(e && e->error == ENOSPC && strstr(e->message, "max-monitors-per-subscriber"),
		      "a ref %d: %s", i, e ? e->message : "no error");
	}
	/* 5 per uid: b gets 2 of its 3. */
	for (int i = 0; i < 3; i++)
		CHECK(zm_monitor_pid(b, c.pid, &rb[i]) == 0, "send");
	CHECK(zmh_sync(b, cb) == 0, "sync");
	e = err_for(cb, rb[2]);
	CHECK(cb->nerr == 1 && e && e->error == ENOSPC && strstr(e->message, "max-monitors-per-uid"),
	      "b: %zu errors, %s", cb->nerr, e ? e->message : "none for its 3rd");
	/* A demonitor gives the room back. */
	CHECK(zm_demonitor(a, ra[0], 0) == 0, "demonitor");
	CHECK(zmh_sync(a, ca) == 0, "sync");
	CHECK(zm_monitor_pid(b, c.pid, &extra) == 0, "send");
	CHECK(zmh_sync(b, cb) == 0, "sync");
	CHECK(cb->nerr == 1, "b's monitor after a's demonitor: %s", cb->errs[cb->nerr - 1].message);
	/* Nothing else changed: every monitor held fires. */
	CHECK(zmh_child_kill(&c, SIGKILL) == 0, "kill");
	CHECK(zmh_wait_downs(a, ca, 2, ZMH_TIMEOUT_MS) == 2, "a: %zu DOWNs, want 2", ca->n);
	CHECK(zmh_wait_downs(b, cb, 3, ZMH_TIMEOUT_MS) == 3, "b: %zu DOWNs, want 3", cb->n);
	CHECK(zmh_child_reap(&c) == 0, "reap");
	return 0;
}

static void test_monitor_quotas_refuse_only_the_excess(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666",
					    "--max-monitors-per-subscriber", "3",
					    "--max-monitors-per-uid", "5", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	struct zmh_agent a;
	struct job j = { .agent = &a };
	uint64_t ref;

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(as_nobody(nobody_meets_the_monitor_quotas, &j), 0);
	/* Root is exempt. */
	assert_int_equal(zmh_connect(&a, "it-acc-qroot", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(col->nerr, 0);
	assert_int_equal(zmh_child_kill(&c, SIGKILL), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 10, ZMH_TIMEOUT_MS), 10);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static int nobody_meets_the_connection_quota(const struct job *j)
{
	struct zm_connect_options o = { .socket_path = j->agent->sock, .name = "it-acc-conn",
					.timeout_ms = ZMH_TIMEOUT_MS };
	struct zm_client *c1, *c2, *c3 = NULL;
	int64_t deadline;
	int r;

	CHECK(zm_connect_opts(&o, &c1) == 0, "first");
	CHECK(zm_connect_opts(&o, &c2) == 0, "second");
	r = zm_connect_opts(&o, &c3);
	CHECK(r == -ENOSPC, "third: %s, want ENOSPC", strerror(-r));
	/* Closing one makes room; the first never noticed anything. */
	zm_close(c2);
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while ((r = zm_connect_opts(&o, &c3)) == -ENOSPC && zmh_mono_ms() < deadline)
		zmh_sleep_ms(10); /* the agent sees the close on its next pass */
	CHECK(r == 0, "after a close: %s", strerror(-r));
	CHECK(zm_sync(c1, ZMH_TIMEOUT_MS, NULL, NULL) == 0, "first still works");
	zm_close(c3);
	zm_close(c1);
	return 0;
}

static void test_connection_quota_refuses_with_enospc(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", "--max-connections-per-uid",
					    "2", NULL };
	struct zmh_agent a;
	struct job j = { .agent = &a };

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(as_nobody(nobody_meets_the_connection_quota, &j), 0);
	assert_true(zmh_agent_alive(&a));
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

/* A second after its refusals, cl may send again: one MONITOR of c passes. */
static int room_a_second_later(struct zm_client *cl, struct zmh_collector *col,
			       struct zmh_child *c)
{
	size_t refused = col->nerr;
	uint64_t late = 0;

	zmh_sleep_ms(1100);
	CHECK(zm_monitor_pid(cl, c->pid, &late) == 0, "send");
	CHECK(zmh_sync(cl, col) == 0, "sync");
	CHECK(col->nerr == refused, "refused after the wait: %s", col->errs[col->nerr - 1].message);
	return 0;
}

/* The agent's --max-requests-per-second in the rate tests. */
#define RATE 5

/*
 * Requests a bucket refilling at RATE per second may have let through, past
 * its burst, since t0 (taken before the first request was sent): the agent
 * counts from later than t0 to earlier than now, plus a millisecond for
 * zmh_mono_ms()'s truncation. A loaded machine may take longer than the
 * 1/RATE s per token a check without this would have allowed.
 */
static int refilled_since(int64_t t0)
{
	return (int)((zmh_mono_ms() - t0 + 1) * RATE / 1000);
}

static int nobody_meets_the_request_rate(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t refs[20];
	int refused, refilled, passed;
	int64_t t0;

	CHECK(zmh_child_spawn(&c) == 0, "spawn");
	CHECK(zmh_connect(j->agent, "it-acc-rate", col, &cl) == 0, "connect");
	/* One pipeline: the burst (one second's worth, 5) passes, the rest not
	 * but for what refilled meanwhile. */
	t0 = zmh_mono_ms();
	for (int i = 0; i < 20; i++)
		CHECK(zm_monitor_pid(cl, c.pid, &refs[i]) == 0, "send");
	CHECK(zmh_sync(cl, col) == 0, "sync (never refused)");
	refilled = refilled_since(t0);
	refused = count_errors(col, EAGAIN);
	CHECK(refused == (int)col->nerr && refused <= 20 - RATE &&
	      refused >= 20 - RATE - refilled && refused > 0,
	      "%d EAGAIN of %zu errors, want %d (%d if what refilled in the %lld ms it took "
	      "passed)", refused, col->nerr, 20 - RATE, 20 - RATE - refilled,
	      (long long)(zmh_mono_ms() - t0));
	for (int i = 0; i < RATE; i++)
		CHECK(!err_for(col, refs[i]), "ref %d refused", i);
	CHECK(strstr(col->errs[0].message, "max-requests-per-second") != NULL, "message: %s",
	      col->errs[0].message);
	passed = 20 - refused;
	CHECK(room_a_second_later(cl, col, &c) == 0, "a second later");
	CHECK(zmh_child_kill(&c, SIGKILL) == 0, "kill");
	CHECK(zmh_wait_downs(cl, col, (size_t)passed + 1, ZMH_TIMEOUT_MS) == passed + 1,
	      "%zu DOWNs, want %d", col->n, passed + 1);
	CHECK(zmh_child_reap(&c) == 0, "reap");
	return 0;
}

/* An agent allowing RATE requests per second, and fn as nobody against it. */
static void at_five_requests_per_second(int (*fn)(const struct job *j))
{
	static const char *const args[] = { "--socket-mode", "0666", "--max-requests-per-second",
					    "5", NULL };
	struct zmh_agent a;
	struct job j = { .agent = &a };

	_Static_assert(RATE == 5, "the agent's --max-requests-per-second above");
	start_agent(&a, args);
	assert_int_equal(as_nobody(fn, &j), 0);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static void test_request_rate_refuses_the_excess_with_eagain(void **state)
{
	(void)zmh_env(state);
	at_five_requests_per_second(nobody_meets_the_request_rate);
}

/*
 * Two connections of one uid share its rate: the second gets what the first
 * left. Each connection's own bucket would let all of the second's RATE
 * through; the uid's lets through only what refilled since the first's
 * burst. That tells the two apart while the round takes under a second; a
 * round that took longer (a stalled machine) proves nothing, and is tried
 * again once both buckets are full.
 */
static int nobody_shares_the_request_rate_over_connections(const struct job *j)
{
	struct zmh_collector *c1 = zmh_collector_new(), *c2 = zmh_collector_new();
	struct zm_client *a, *b;
	struct zmh_child c;
	uint64_t ref;
	int passed_a = 0, passed_b = 0;

	CHECK(zmh_child_spawn(&c) == 0, "spawn");
	CHECK(zmh_connect(j->agent, "it-acc-rate-1", c1, &a) == 0, "connect");
	CHECK(zmh_connect(j->agent, "it-acc-rate-2", c2, &b) == 0, "connect");
	for (int round = 1;; round++) {
		size_t e2 = c2->nerr;
		int64_t t0 = zmh_mono_ms();
		int refused, refilled;

		/* The uid's burst (one second's worth, RATE) goes to the first. */
		for (int i = 0; i < RATE; i++)
			CHECK(zm_monitor_pid(a, c.pid, &ref) == 0, "send");
		CHECK(zmh_sync(a, c1) == 0, "sync");
		CHECK(c1->nerr == 0, "the first connection was refused: %s", c1->errs[0].message);
		passed_a += RATE;
		/* The second has its own RATE, but the uid has none left. */
		for (int i = 0; i < RATE; i++)
			CHECK(zm_monitor_pid(b, c.pid, &ref) == 0, "send");
		CHECK(zmh_sync(b, c2) == 0, "sync");
		refilled = refilled_since(t0);
		refused = (int)(c2->nerr - e2);
		for (size_t i = e2; i < c2->nerr; i++)
			CHECK(c2->errs[i].error == EAGAIN &&
			      strstr(c2->errs[i].message, "over all its connections") != NULL,
			      "%s: %s", strerror(c2->errs[i].error), c2->errs[i].message);
		CHECK(refused <= RATE && refused >= RATE - refilled,
		      "round %d: %d of the second connection's %d refused, want %d (%d if what "
		      "refilled in the %lld ms it took passed)", round, refused, RATE, RATE,
		      RATE - refilled, (long long)(zmh_mono_ms() - t0));
		passed_b += RATE - refused;
		if (refilled < RATE)
			break; /* at least one refused that b's own bucket would have passed */
		CHECK(round < 5, "%d rounds each took a second or more: nothing shown", round);
		zmh_sleep_ms(1100); /* both buckets full again */
	}
	CHECK(room_a_second_later(b, c2, &c) == 0, "a second later");
	passed_b++;
	CHECK(zmh_child_kill(&c, SIGKILL) == 0, "kill");
	CHECK(zmh_wait_downs(a, c1, (size_t)passed_a, ZMH_TIMEOUT_MS) == passed_a,
	      "%zu DOWNs, want %d", c1->n, passed_a);
	CHECK(zmh_wait_downs(b, c2, (size_t)passed_b, ZMH_TIMEOUT_MS) == passed_b,
	      "%zu DOWNs, want %d", c2->n, passed_b);
	CHECK(zmh_child_reap(&c) == 0, "reap");
	return 0;
}

static void test_request_rate_holds_per_uid_over_its_connections(void **state)
{
	(void)zmh_env(state);
	at_five_requests_per_second(nobody_shares_the_request_rate_over_connections);
}

/* ---- restarts: whose death a resumed monitor may learn ----------------------- */

static struct zmh_agent *resume_agent;
/* Shared with the nobody child: its process, and whether it reaped it. */
static volatile struct { pid_t pid; int reaped; } *resume;

/*
 * Nobody monitors its own process; the agent stops, the process and one of
 * root's die, the agent starts again: libzenmon brings the monitor back and
 * it gets the real reason, by the uids the kernel recorded at the death. A
 * RESUME of root's process gets noproc: nobody may not learn how it died.
 */
static int nobody_resumes_after_a_restart(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d = NULL;
	struct zm_monitor_proc m = {
		.ref = 5, .pid = (uint32_t)j->root_pid,
		.flags = ZM_MON_START_TIME | ZM_MON_RESUME, .start_ticks = j->root_start,
	};
	uint8_t body[ZM_MONITOR_PROC_LEN];
	struct zm_record zr;
	struct zm_down down;
	struct zm_client *cl;
	struct zmh_child c;
	struct zmh_raw r;
	struct zmh_rec rec;
	uint64_t ref;

	CHECK(zmh_child_spawn(&c) == 0, "spawn");
	CHECK(zmh_connect(j->agent, "it-acc-resume", col, &cl) == 0, "connect");
	CHECK(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref) == 0, "monitor");
	CHECK(zmh_sync(cl, col) == 0, "sync");
	resume->pid = c.pid;
	/* The parent stops the agent and kills it; reaped, nothing is left of
	 * it in /proc: only the kernel's record of the death says how. */
	CHECK(ready(j) == 0, "the parent's part: stop, kill, start");
	/* The parent kills it once the agent stopped, which may take a while. */
	CHECK(reap_within(&c, HANDOVER_TIMEOUT_MS) == 0, "reap");
	resume->reaped = 1;
	CHECK(zmh_wait_downs(cl, col, 1, HANDOVER_TIMEOUT_MS) == 1, "%zu DOWNs after the restart",
	      col->n);
	CHECK(zmh_collector_count(col, ref, &d) == 1 && d->reason == ZM_DOWN_KILLED &&
	      d->signal == SIGKILL, "its own process: %s, want killed by 9",
	      d ? zm_reason_str(d->reason) : "no DOWN");

	CHECK(zmh_raw_connect(&r, j->agent->sock, true) == 0, "connect");
	CHECK(zmh_raw_send_record(&r, ZM_REC_MONITOR_PROC, body, zm_enc_monitor_proc(body, &m)) == 0,
	      "send");
	do
		CHECK(zmh_raw_next(&r, ZMH_TIMEOUT_MS, &rec) == 1, "no answer to the RESUME");
	while (rec.type != ZM_REC_DOWN && rec.type != ZM_REC_ERROR);
	zr = (struct zm_record){ .body = rec.body, .type = rec.type, .len = rec.len };
	CHECK(rec.type == ZM_REC_DOWN && zm_dec_down(&zr, &down) == 0, "not a DOWN (%#x)", rec.type);
	CHECK(down.reason == ZM_REASON_NOPROC, "root's process: reason %u, want noproc (%u)",
	      down.reason, ZM_REASON_NOPROC);
	zmh_raw_close(&r);
	return 0;
}

/* The parent's part: both processes die while no agent runs. */
static void stop_kill_start(const struct job *j)
{
	int64_t deadline;

	assert_int_equal(zmh_agent_stop_keep(resume_agent), 0);
	assert_int_equal(kill(resume->pid, SIGKILL), 0);
	assert_int_equal(zmh_child_kill(j->root_child, SIGKILL), 0);
	assert_int_equal(zmh_child_reap(j->root_child), 0);
	/* From the kill on: the agent's stop above took its own time. */
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while (!resume->reaped && zmh_mono_ms() < deadline)
		zmh_sleep_ms(10);
	assert_true(resume->reaped);
	assert_int_equal(zmh_agent_restart_args(resume_agent,
						(const char *const[]){ "--socket-mode", "0666",
								       NULL }), 0);
}

static void test_resumed_monitor_learns_only_deaths_it_could_have_watched(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	struct zmh_agent a;
	struct job j = { .agent = &a };
	uint64_t ref;

	(void)zmh_env(state);
	resume = mmap(NULL, sizeof(*resume), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	assert_true(resume != MAP_FAILED);
	resume_agent = &a;
	start_agent(&a, args);
	/* Root watches a process of its own, so that the kernel records its death. */
	assert_int_equal(zmh_child_spawn(&c), 0);
	j.root_pid = c.pid;
	j.root_start = c.start_ticks;
	j.root_child = &c;
	assert_int_equal(zmh_connect(&a, "it-acc-root", col, &cl), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(as_nobody_then(nobody_resumes_after_a_restart, &j, stop_kill_start), 0);
	/* Root, for its part, gets the real reason. */
	assert_int_equal(zmh_wait_downs(cl, col, 1, 3 * ZMH_TIMEOUT_MS), 1);
	assert_int_equal(col->downs[0].reason, ZM_DOWN_KILLED);
	munmap((void *)resume, sizeof(*resume));
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

/*
 * Nobody holds 10 monitors at 5 requests per second (admitted over two
 * seconds); after a restart libzenmon brings all 10 back at once, and none
 * is refused for the rate: they were admitted before.
 */
static int nobody_brings_back_more_than_a_second_of_monitors(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref;

	CHECK(zmh_child_spawn(&c) == 0, "spawn");
	CHECK(zmh_connect(j->agent, "it-acc-resume-rate", col, &cl) == 0, "connect");
	for (int i = 0; i < 10; i++) {
		if (i == 5) {
			CHECK(zmh_sync(cl, col) == 0, "sync");
			zmh_sleep_ms(1100);
		}
		CHECK(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref) == 0, "monitor");
	}
	CHECK(zmh_sync(cl, col) == 0, "sync");
	CHECK(col->nerr == 0, "refused before the restart: %s", col->errs[0].message);
	CHECK(ready_and_wait(j) == 0, "the parent's part: restart");
	/* zm_sync() returns once the new agent has them all back. */
	CHECK(zmh_sync(cl, col) == 0, "sync after the restart");
	CHECK(col->nerr == 0, "%zu refused after the restart: %s", col->nerr, col->errs[0].message);
	CHECK(zm_active_monitors(cl) == 10, "%zu active monitors, want 10", zm_active_monitors(cl));
	CHECK(zmh_child_kill(&c, SIGKILL) == 0, "kill");
	CHECK(zmh_wait_downs(cl, col, 10, ZMH_TIMEOUT_MS) == 10, "%zu DOWNs, want 10", col->n);
	CHECK(zmh_child_reap(&c) == 0, "reap");
	return 0;
}

static void restart_at_five_requests_per_second(const struct job *j)
{
	assert_int_equal(zmh_agent_stop_keep(resume_agent), 0);
	assert_int_equal(zmh_agent_restart_args(resume_agent,
						(const char *const[]){ "--socket-mode", "0666",
								       "--max-requests-per-second",
								       "5", NULL }), 0);
}

static void test_monitors_brought_back_after_a_restart_pass_the_request_rate(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", "--max-requests-per-second",
					    "5", NULL };
	struct zmh_agent a;
	struct job j = { .agent = &a };

	(void)zmh_env(state);
	resume_agent = &a;
	start_agent(&a, args);
	assert_int_equal(as_nobody_then(nobody_brings_back_more_than_a_second_of_monitors, &j,
					restart_at_five_requests_per_second), 0);
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

#define FLOOD_MAX 200000
#define STATUS_FRAME (ZM_FRAME_HDR_LEN + ZM_REC_HDR_LEN + 8)

/*
 * Send STATUS requests (tokens from first) on fd, reading nothing, until
 * the agent holds the connection back, or FLOOD_MAX went: how many went, or
 * -errno (-ETIMEDOUT: the agent kept reading them for ZMH_TIMEOUT_MS). Each
 * answer is hundreds of bytes, so the quota's 64 KiB of them come long
 * before FLOOD_MAX.
 *
 * Held back, as its sender sees it: its socket is full, and the agent,
 * shown to be running by a SYNC answered on probe (a connection it serves),
 * took none of what waits in it (SIOCOUTQ unchanged). A pass of the agent's
 * loop reads every connection it may read that has something to read, and
 * the SYNC is answered at the end of a pass or later: twice in a row, so
 * that a whole pass came between. Time alone proves nothing: a loaded
 * machine may not run the agent for a second.
 */
static int send_status_until_held_back(int fd, uint64_t first, struct zmh_raw *probe)
{
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	uint8_t frame[STATUS_FRAME];
	uint64_t token = 1;
	int sent = 0, untouched = 0;

	zmh_frame_header(frame, STATUS_FRAME, ZM_FRAME_MAGIC, 1);
	zmh_put_u16(frame + 8, ZM_REC_STATUS);
	zmh_put_u16(frame + 10, ZM_REC_HDR_LEN + 8);
	while (sent < FLOOD_MAX) {
		int before, after, r;
		ssize_t n;

		zmh_put_u64(frame + 12, first + (uint64_t)sent);
		n = send(fd, frame, sizeof(frame), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == (ssize_t)sizeof(frame)) {
			sent++;
			untouched = 0;
			continue;
		}
		if (n >= 0 || errno != EAGAIN)
			return n < 0 ? -errno : -EIO;
		/* Full: does the agent, running, take any of it? */
		if (ioctl(fd, SIOCOUTQ, &before) < 0)
			return -errno;
		r = zmh_raw_sync(probe, token++);
		if (r < 0)
			return r;
		if (ioctl(fd, SIOCOUTQ, &after) < 0)
			return -errno;
		if (after != before)
			untouched = 0;
		else if (++untouched == 2)
			return sent;
		if (zmh_mono_ms() > deadline)
			return -ETIMEDOUT;
	}
	return sent;
}

/* Read n STATUS answers from r: how many came. */
static int read_status_replies(struct zmh_raw *r, int n)
{
	struct zmh_rec rec;
	int replies = 0;

	while (replies < n && zmh_raw_next(r, ZMH_TIMEOUT_MS, &rec) == 1)
		replies += rec.type == ZM_REC_STATUS_REPLY;
	return replies;
}

/* A client that sends STATUS requests and reads nothing: once its unread
 * answers pass max-queued-bytes-per-subscriber the agent stops reading it,
 * so its sends back up (EAGAIN); others are served meanwhile, and once it
 * reads it gets an answer to every request it got to send. */
/*
 * Nobody's first connection fills its uid's queue of unsent answers; its
 * second is then not read either, while root is served; once the first
 * reads, the second gets its answer.
 */
static int nobody_fills_its_uids_queue(const struct job *j)
{
	struct zmh_raw a, b;
	struct zmh_rec rec;
	uint8_t token[8];
	int sent, r;

	CHECK(zmh_raw_connect(&a, j->agent->sock, true) == 0, "connect");
	CHECK(zmh_raw_connect(&b, j->agent->sock, true) == 0, "connect");
	/* j->probe is root's: not held back with nobody's connections. */
	sent = send_status_until_held_back(a.fd, 1, j->probe);
	CHECK(sent > 0 && sent < FLOOD_MAX, "%d requests went before the agent stopped reading "
	      "(%s)", sent, sent < 0 ? strerror(-sent) : "sent");
	/* The uid is over its quota now (the connection's own is 1 GiB), and
	 * stays so until a reads: b is not read either, however slow things are. */
	zmh_put_u64(token, 77);
	CHECK(zmh_raw_send_record(&b, ZM_REC_STATUS, token, sizeof(token)) == 0, "send");
	r = zmh_raw_next(&b, 300, &rec);
	CHECK(r == -ETIMEDOUT, "the uid's other connection was answered (%d, type %#x) while "
	      "64 KiB of the uid's answers waited", r, r == 1 ? rec.type : 0);
	CHECK(ready_and_wait(j) == 0, "the parent's part");
	CHECK(read_status_replies(&a, sent) == sent, "fewer than %d answers", sent);
	CHECK(zmh_raw_next(&b, ZMH_TIMEOUT_MS, &rec) == 1 && rec.type == ZM_REC_STATUS_REPLY,
	      "no answer to the second connection once the first read its own");
	zmh_raw_close(&a);
	zmh_raw_close(&b);
	return 0;
}

/* The parent's part: root is served while nobody's connections wait. */
static bool root_was_served;

static void root_is_served(const struct job *j)
{
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	char *text = NULL;

	if (zmh_connect(j->agent, "it-acc-root", col, &cl) == 0 && zmh_status(cl, &text) == 0)
		root_was_served = true;
	free(text);
}

static void test_queued_bytes_quota_per_uid_holds_back_all_its_connections(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666",
					    "--max-queued-bytes-per-subscriber", "1073741824",
					    "--max-queued-bytes-per-uid", "65536", NULL };
	struct zmh_agent a;
	struct zmh_raw probe;
	struct job j = { .agent = &a, .probe = &probe };

	(void)zmh_env(state);
	start_agent(&a, args);
	/* The child inherits it, a connection of root's, to see the agent run. */
	assert_int_equal(zmh_raw_connect(&probe, a.sock, true), 0);
	assert_int_equal(as_nobody_then(nobody_fills_its_uids_queue, &j, root_is_served), 0);
	zmh_raw_close(&probe);
	assert_true(root_was_served);
	assert_true(zmh_agent_alive(&a));
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

static void test_queued_bytes_quota_holds_back_a_client_that_does_not_read(void **state)
{
	static const char *const args[] = { "--max-queued-bytes-per-subscriber", "65536", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *other;
	struct zmh_raw r, probe;
	struct zmh_agent a;
	int unread = 0, sent;
	char *text = NULL;

	(void)zmh_env(state);
	start_agent(&a, args);
	assert_int_equal(zmh_raw_connect(&r, a.sock, true), 0);
	assert_int_equal(zmh_raw_connect(&probe, a.sock, true), 0);
	sent = send_status_until_held_back(r.fd, 1, &probe);
	if (sent < 0)
		fail_msg("the agent did not stop reading requests whose answers nobody read: %s",
			 strerror(-sent));
	assert_true(sent > 0);
	if (sent == FLOOD_MAX)
		fail_msg("the agent read %d requests whose answers nobody read", FLOOD_MAX);
	/* The agent left the rest of its requests unread in the socket. */
	assert_int_equal(ioctl(r.fd, SIOCOUTQ, &unread), 0);
	assert_true(unread > 0);
	/* Another subscriber is served all the while. */
	assert_int_equal(zmh_connect(&a, "it-acc-other", col, &other), 0);
	assert_int_equal(zmh_status(other, &text), 0);
	free(text);
	/* Reading, the first client gets an answer to every request it sent. */
	assert_int_equal(read_status_replies(&r, sent), sent);
	zmh_raw_close(&r);
	zmh_raw_close(&probe);
	assert_true(zmh_agent_alive(&a));
	assert_int_equal(zmh_extra_agent_stop(&a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_socket_is_root_only_by_default),
		ZMH_TEST(test_socket_owner_group_and_mode_are_configurable),
		ZMH_TEST(test_agent_keeps_only_the_capabilities_it_uses_after_set_up),
		ZMH_TEST(test_agent_runs_as_the_configured_user_and_still_delivers),
		ZMH_TEST(test_net_admin_is_raised_only_for_a_dropped_subscriber_s_last_error),
		ZMH_TEST(test_restricted_subscriber_gets_eperm_for_roots_process),
		ZMH_TEST(test_restricted_subscriber_monitors_its_own_process),
		ZMH_TEST(test_a_passed_pidfd_needs_no_ownership),
		ZMH_TEST(test_restricted_subscriber_gets_eperm_for_another_users_socket),
		ZMH_TEST(test_allow_uids_lets_a_user_monitor_any_process),
		ZMH_TEST(test_allow_groups_lets_its_members_monitor_any_process),
		ZMH_TEST(test_allow_uids_applies_on_reload_to_connected_subscribers),
		ZMH_TEST(test_monitor_quotas_refuse_only_the_excess),
		ZMH_TEST(test_connection_quota_refuses_with_enospc),
		ZMH_TEST(test_request_rate_refuses_the_excess_with_eagain),
		ZMH_TEST(test_request_rate_holds_per_uid_over_its_connections),
		ZMH_TEST(test_queued_bytes_quota_holds_back_a_client_that_does_not_read),
		ZMH_TEST(test_queued_bytes_quota_per_uid_holds_back_all_its_connections),
		ZMH_TEST(test_resumed_monitor_learns_only_deaths_it_could_have_watched),
		ZMH_TEST(test_monitors_brought_back_after_a_restart_pass_the_request_rate),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
