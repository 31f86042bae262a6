/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Integration-test harness; the contract is in harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/bpf.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zenmon/kern.h"

/* ---- small things ------------------------------------------------------ */

uint64_t zmh_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t zmh_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void zmh_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int remaining_ms(int64_t deadline)
{
	int64_t left = deadline - zmh_mono_ms();

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };

				poll(&pfd, 1, 1000);
				continue;
			}
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return -errno;
	while (len + 1 < cap) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	close(fd);
	return (int)len;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = write_all(fd, text, strlen(text));
	close(fd);
	return r;
}

/* ---- environment ------------------------------------------------------- */

const char *zmh_build_dir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("ZM_BUILD");
	char exe[PATH_MAX], probe[PATH_MAX + 16];
	ssize_t n;

	if (dir[0])
		return dir;
	if (env && *env) {
		snprintf(dir, sizeof(dir), "%s", env);
		return dir;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');          /* BUILD/tests/it_x -> BUILD/tests */
		if (slash) {
			*slash = '\0';
			slash = strrchr(exe, '/');  /* -> BUILD */
			if (slash) {
				*slash = '\0';
				snprintf(probe, sizeof(probe), "%s/zenmond", exe);
				if (access(probe, X_OK) == 0) {
					snprintf(dir, sizeof(dir), "%s", exe);
					return dir;
				}
			}
		}
	}
	snprintf(dir, sizeof(dir), "build");
	return dir;
}

const char *zmh_zenmond_path(void)
{
	static char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/zenmond", zmh_build_dir());
	return path;
}

const char *zmh_zenmonctl_path(void)
{
	static char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/zenmonctl", zmh_build_dir());
	return path;
}

bool zmh_in_ci(void)
{
	const char *ci = getenv("CI");

	return ci && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

const char *zmh_missing_capability(void)
{
	union bpf_attr attr;
	struct stat st;
	long fd;

	if (geteuid() != 0)
		return "not root: the agent needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)";
	if (stat("/sys/fs/bpf", &st) != 0)
		return "/sys/fs/bpf is missing";
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	fd = sys_bpf(BPF_MAP_CREATE, &attr);
	if (fd < 0)
		return "the bpf() syscall is refused here (no BPF)";
	close((int)fd);
	return NULL;
}

/* ---- resources the per-test teardown cleans up ------------------------- */

#define ZMH_MAX_TRACKED 8192

/* By value, never by pointer: a test's structs live on its stack, which is
 * gone by the time the teardown runs. */
static pid_t tracked_children[ZMH_MAX_TRACKED];
static size_t n_tracked_children;
static struct zm_client *tracked_clients[64];
static size_t n_tracked_clients;
static int tracked_raw_fds[64];
static size_t n_tracked_raws;
static struct zmh_collector *tracked_cols[64];
static size_t n_tracked_cols;
static struct zmh_agent tracked_agents[4];
static size_t n_tracked_agents;

/*
 * The tracked copy of a (same pin dir) follows it through stops and restarts,
 * so that the teardown acts on the agent as it is now, never on a pid that
 * is gone (and may be another process's by then).
 */
static void track_follow(const struct zmh_agent *a)
{
	for (size_t i = 0; i < n_tracked_agents; i++)
		if (&tracked_agents[i] != a && strcmp(tracked_agents[i].pin_dir, a->pin_dir) == 0)
			tracked_agents[i] = *a;
}

static void track_child(pid_t pid)
{
	if (n_tracked_children < ZMH_MAX_TRACKED)
		tracked_children[n_tracked_children++] = pid;
}

static void untrack_child(pid_t pid)
{
	for (size_t i = 0; i < n_tracked_children; i++) {
		if (tracked_children[i] == pid) {
			tracked_children[i] = tracked_children[--n_tracked_children];
			return;
		}
	}
}

/* ---- the agent --------------------------------------------------------- */

static unsigned int agent_seq;

static const char *log_level(void)
{
	const char *l = getenv("ZM_IT_LOG_LEVEL");

	return l && *l ? l : "info";
}

#define ZMH_MAX_EXTRA_ARGS 16

static pid_t agent_spawn(const char *sock, const char *pin_dir, const char *log,
			 const char *const *extra)
{
	const char *exe = zmh_zenmond_path();
	const char *argv[10 + ZMH_MAX_EXTRA_ARGS + 1];
	size_t argc = 0;
	pid_t pid;
	int logfd;

	argv[argc++] = exe;
	argv[argc++] = "--socket";
	argv[argc++] = sock;
	argv[argc++] = "--pin-dir";
	argv[argc++] = pin_dir;
	argv[argc++] = "--log-level";
	argv[argc++] = log_level();
	/* Not the host's /etc/zenmon/zenmond.conf: only what the test says. */
	argv[argc++] = "--config";
	argv[argc++] = "/dev/null";
	for (size_t i = 0; extra && extra[i]; i++) {
		if (i >= ZMH_MAX_EXTRA_ARGS)
			return -E2BIG;
		argv[argc++] = extra[i];
	}
	argv[argc] = NULL;

	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(logfd);
		return e;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		/* If the test binary dies, the agent goes too. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		close_range(3, ~0U, 0);
		execv(exe, (char *const *)argv);
		dprintf(2, "harness: exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(logfd);
	return pid;
}

pid_t zmh_agent_spawn_raw(const char *sock, const char *pin_dir, const char *log)
{
	return agent_spawn(sock, pin_dir, log, NULL);
}

bool zmh_agent_log_has(const struct zmh_agent *a, const char *text)
{
	char *buf = malloc(1 << 20);
	bool found;

	if (!buf)
		return false;
	found = read_file(a->log, buf, 1 << 20) > 0 && strstr(buf, text) != NULL;
	free(buf);
	return found;
}

void zmh_agent_dump_log(const struct zmh_agent *a)
{
	char *buf;
	int n;

	buf = malloc(1 << 20);
	if (!buf)
		return;
	n = read_file(a->log, buf, 1 << 20);
	fprintf(stderr, "---- zenmond log (%s) ----\n%s%s---- end of zenmond log ----\n", a->log,
		n > 0 ? buf : "(empty)\n", n > 0 && buf[n - 1] != '\n' ? "\n" : "");
	free(buf);
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

bool zmh_agent_alive(const struct zmh_agent *a)
{
	siginfo_t si;

	if (a->pid <= 0)
		return false;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)a->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return false;
	return si.si_pid == 0;
}

static void describe_wstatus(int ws, char *buf, size_t cap)
{
	if (WIFEXITED(ws))
		snprintf(buf, cap, "exited with status %d", WEXITSTATUS(ws));
	else if (WIFSIGNALED(ws))
		snprintf(buf, cap, "killed by signal %d (%s)%s", WTERMSIG(ws),
			 strsignal(WTERMSIG(ws)), WCOREDUMP(ws) ? ", core dumped" : "");
	else
		snprintf(buf, cap, "wait status 0x%x", ws);
}

int zmh_agent_start(struct zmh_agent *a)
{
	return zmh_agent_start_args(a, NULL);
}

int zmh_agent_start_args(struct zmh_agent *a, const char *const *extra)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->dir, sizeof(a->dir), "/tmp/zm-it-XXXXXX");
	if (!mkdtemp(a->dir)) {
		int e = -errno;
		fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
		return e;
	}
	snprintf(a->sock, sizeof(a->sock), "%s/sock", a->dir);
	/* An extra --socket wins over ours (the agent takes the last one). */
	for (size_t i = 0; extra && extra[i] && extra[i + 1]; i++)
		if (strcmp(extra[i], "--socket") == 0)
			snprintf(a->sock, sizeof(a->sock), "%s", extra[i + 1]);
	snprintf(a->log, sizeof(a->log), "%s/zenmond.log", a->dir);
	snprintf(a->pin_dir, sizeof(a->pin_dir), "/sys/fs/bpf/zm-it-%d-%u", (int)getpid(),
		 agent_seq++);
	return zmh_agent_restart_args(a, extra);
}

static int agent_restart(struct zmh_agent *a, const char *const *extra)
{
	int64_t deadline;
	int last = 0;

	a->pid = agent_spawn(a->sock, a->pin_dir, a->log, extra);
	if (a->pid < 0) {
		int e = (int)a->pid;
		a->pid = 0;
		fprintf(stderr, "harness: cannot start %s: %s\n", zmh_zenmond_path(), strerror(-e));
		return e;
	}

	deadline = zmh_mono_ms() + ZMH_START_TIMEOUT_MS;
	for (;;) {
		int fd = try_connect(a->sock);
		int ws;

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		last = fd;
		if (waitpid(a->pid, &ws, WNOHANG) == a->pid) {
			char how[96];

			describe_wstatus(ws, how, sizeof(how));
			fprintf(stderr, "harness: zenmond %s before accepting connections on %s\n",
				how, a->sock);
			a->pid = 0;
			zmh_agent_dump_log(a);
			return -ECHILD;
		}
		if (zmh_mono_ms() > deadline)
			break;
		zmh_sleep_ms(20);
	}
	fprintf(stderr, "harness: zenmond did not accept connections on %s within %d ms (last: %s)\n",
		a->sock, ZMH_START_TIMEOUT_MS, strerror(-last));
	zmh_agent_dump_log(a);
	kill(a->pid, SIGKILL);
	waitpid(a->pid, NULL, 0);
	a->pid = 0;
	return -ETIMEDOUT;
}

int zmh_agent_restart_args(struct zmh_agent *a, const char *const *extra)
{
	int r = agent_restart(a, extra);

	track_follow(a);
	return r;
}

static void remove_tempdir(const char *dir)
{
	char cmd[256];

	/* The dir is ours, made by mkdtemp under /tmp: a plain rm -rf is fine. */
	if (strncmp(dir, "/tmp/zm-it-", 11) != 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "harness: could not remove %s\n", dir);
}

int zmh_cleanup_pins(const char *pin_dir)
{
	const char *argv[] = { zmh_zenmond_path(), "--cleanup", "--pin-dir", pin_dir, "--config",
			       "/dev/null", NULL };
	int ws = 0;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &ws, 0) < 0)
		return -errno;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		fprintf(stderr, "harness: zenmond --cleanup --pin-dir %s failed (wait status 0x%x)\n",
			pin_dir, ws);
		return -ECHILD;
	}
	if (access(pin_dir, F_OK) == 0) {
		fprintf(stderr, "harness: zenmond --cleanup left %s behind\n", pin_dir);
		return -EEXIST;
	}
	return 0;
}

static int agent_kill(struct zmh_agent *a)
{
	if (a->pid <= 0)
		return -ESRCH;
	if (kill(a->pid, SIGKILL) < 0)
		return -errno;
	waitpid(a->pid, NULL, 0);
	a->pid = 0;
	return 0;
}

int zmh_agent_kill9(struct zmh_agent *a)
{
	int r = agent_kill(a);

	track_follow(a);
	return r;
}

/*
 * SIGTERM the agent and wait up to ZMH_TIMEOUT_MS for it: 0 and its wait
 * status; -ETIMEDOUT once it was killed and reaped instead (said, with its
 * log); -errno if it could not be signalled. a->pid is 0 after the first two.
 */
static int agent_term(struct zmh_agent *a, int *ret_ws)
{
	int64_t deadline;
	int ws = 0;
	pid_t r = 0;

	if (kill(a->pid, SIGTERM) < 0) {
		int e = -errno;

		fprintf(stderr, "harness: kill(zenmond, SIGTERM): %s\n", strerror(errno));
		return e;
	}
	/* A test that failed between SIGSTOP and SIGCONT (test_overflow)
	 * left it stopped: a stopped agent cannot act on SIGTERM. */
	kill(a->pid, SIGCONT);
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while ((r = waitpid(a->pid, &ws, WNOHANG)) == 0 && zmh_mono_ms() < deadline)
		zmh_sleep_ms(10);
	if (r != a->pid) {
		fprintf(stderr, "harness: zenmond did not exit within %d ms of SIGTERM; killing it\n",
			ZMH_TIMEOUT_MS);
		kill(a->pid, SIGKILL);
		waitpid(a->pid, &ws, 0);
		a->pid = 0;
		zmh_agent_dump_log(a);
		return -ETIMEDOUT;
	}
	a->pid = 0;
	*ret_ws = ws;
	return 0;
}

/*
 * What a clean stop leaves: exit status 0, the socket removed, and the
 * programs attached with the maps pinned, for the next agent (zenmond
 * --cleanup removes them). 0, or the -errno of the last thing amiss (each
 * said on stderr).
 */
static int agent_check_clean_stop(const struct zmh_agent *a, int ws)
{
	char how[96], link[192];
	int err = 0;

	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		describe_wstatus(ws, how, sizeof(how));
		fprintf(stderr, "harness: zenmond %s after SIGTERM (want status 0)\n", how);
		err = -ECHILD;
	}
	if (access(a->sock, F_OK) == 0) {
		fprintf(stderr, "harness: zenmond left its socket %s behind\n", a->sock);
		err = -EEXIST;
	}
	snprintf(link, sizeof(link), "%s/link_zm_process_exit", a->pin_dir);
	if (access(link, F_OK) != 0) {
		fprintf(stderr, "harness: zenmond removed its pinned link %s on a clean stop\n", link);
		err = -ENOENT;
	}
	return err;
}

static int agent_stop_keeping_pins(struct zmh_agent *a)
{
	int ws = 0, err;

	if (a->pid <= 0 || !zmh_agent_alive(a))
		return -ESRCH;
	err = agent_term(a, &ws);
	if (err < 0)
		return err;
	err = agent_check_clean_stop(a, ws);
	if (err)
		zmh_agent_dump_log(a);
	return err;
}

int zmh_agent_stop_keep(struct zmh_agent *a)
{
	int r = agent_stop_keeping_pins(a);

	track_follow(a);
	return r;
}

static int agent_stop_and_clean(struct zmh_agent *a)
{
	int ws = 0, err;
	char how[96];

	if (a->pid <= 0)
		return -ESRCH;
	if (!zmh_agent_alive(a)) {
		/* It died on its own (or someone else killed it) during the tests. */
		waitpid(a->pid, &ws, 0);
		describe_wstatus(ws, how, sizeof(how));
		fprintf(stderr, "harness: zenmond had already %s before it was asked to stop\n", how);
		a->pid = 0;
		zmh_agent_dump_log(a);
		fprintf(stderr, "harness: keeping %s for inspection\n", a->dir);
		(void)zmh_cleanup_pins(a->pin_dir); /* its programs must not stay attached */
		return -ECHILD;
	}
	err = agent_term(a, &ws);
	if (err == -ETIMEDOUT) {
		(void)zmh_cleanup_pins(a->pin_dir);
		return err;
	}
	if (err == 0)
		err = agent_check_clean_stop(a, ws);
	unlink(a->sock); /* left behind: said above; gone for the next test */
	if (zmh_cleanup_pins(a->pin_dir) < 0) {
		char cmd[256];

		err = -EEXIST;
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", a->pin_dir);
		if (strncmp(a->pin_dir, "/sys/fs/bpf/zm-it-", 18) == 0 && system(cmd) != 0)
			fprintf(stderr, "harness: could not remove %s\n", a->pin_dir);
	}
	if (err) {
		zmh_agent_dump_log(a);
		fprintf(stderr, "harness: keeping %s for inspection\n", a->dir);
	} else {
		remove_tempdir(a->dir);
	}
	return err;
}

int zmh_agent_stop(struct zmh_agent *a)
{
	int r = agent_stop_and_clean(a);

	track_follow(a);
	return r;
}

int zmh_extra_agent_start(struct zmh_agent *a, const char *const *extra)
{
	int r;

	if (n_tracked_agents >= sizeof(tracked_agents) / sizeof(tracked_agents[0]))
		return -ENOSPC;
	r = zmh_agent_start_args(a, extra);
	if (r < 0)
		return r;
	tracked_agents[n_tracked_agents++] = *a;
	return 0;
}

int zmh_extra_agent_stop(struct zmh_agent *a)
{
	for (size_t i = 0; i < n_tracked_agents; i++) {
		if (strcmp(tracked_agents[i].pin_dir, a->pin_dir) == 0) {
			tracked_agents[i] = tracked_agents[--n_tracked_agents];
			break;
		}
	}
	return zmh_agent_stop(a);
}

/* ---- cmocka glue ------------------------------------------------------- */

static bool group_skipped;

static void on_sigpipe(int sig)
{
	(void)sig; /* the write that raised it fails with EPIPE */
}

int zmh_group_setup(void **state)
{
	const char *why = zmh_missing_capability();
	struct zmh_env *env;

	*state = NULL;
	/* A write to a pipe or socket whose peer is gone (a child that ended
	 * early, an agent that died) must fail with EPIPE and a message, not
	 * kill the test binary silently. Caught rather than ignored: a
	 * handler, unlike SIG_IGN, does not survive exec, so every program a
	 * test runs starts with the default. */
	sigaction(SIGPIPE, &(struct sigaction){ .sa_handler = on_sigpipe }, NULL);
	if (access(zmh_zenmond_path(), X_OK) != 0) {
		/* not a capability of the machine: a broken build or a wrong ZM_BUILD */
		fprintf(stderr, "FAIL: %s is missing (set ZM_BUILD to the build directory)\n",
			zmh_zenmond_path());
		return -1;
	}
	if (why) {
		if (zmh_in_ci()) {
			fprintf(stderr, "FAIL: integration tests cannot run: %s (CI=true: a missing "
				"capability is a failure)\n", why);
			return -1;
		}
		fprintf(stderr, "SKIP: integration tests skipped: %s (run as root on a kernel "
			"with BPF; under CI=true this fails)\n", why);
		group_skipped = true;
		return 0;
	}
	env = calloc(1, sizeof(*env));
	if (!env)
		return -1;
	if (zmh_agent_start(&env->agent) < 0) {
		free(env);
		return -1;
	}
	*state = env;
	return 0;
}

int zmh_group_teardown(void **state)
{
	struct zmh_env *env = *state;
	int r = 0;

	zmh_core_pattern_restore();
	if (!env)
		return 0;
	if (env->agent.pid > 0 && zmh_agent_stop(&env->agent) < 0)
		r = -1;
	free(env);
	*state = NULL;
	return r;
}

struct zmh_env *zmh_env_get(void **state)
{
	if (group_skipped || !*state)
		skip();
	return *state;
}

int zmh_test_setup(void **state)
{
	(void)state;
	return 0;
}

static void tcp_test_teardown(void);

int zmh_test_teardown(void **state)
{
	(void)state;
	while (n_tracked_clients > 0)
		zm_close(tracked_clients[--n_tracked_clients]);
	while (n_tracked_raws > 0)
		close(tracked_raw_fds[--n_tracked_raws]);
	while (n_tracked_agents > 0) {
		struct zmh_agent *t = &tracked_agents[--n_tracked_agents];

		/* Running: stop it (and --cleanup). Stopped with its programs
		 * left pinned and attached (stop_keep, kill9): remove them. */
		if (t->pid > 0)
			(void)zmh_agent_stop(t);
		else if (access(t->pin_dir, F_OK) == 0)
			(void)zmh_cleanup_pins(t->pin_dir);
	}
	while (n_tracked_children > 0) {
		pid_t pid = tracked_children[--n_tracked_children];

		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	while (n_tracked_cols > 0) {
		struct zmh_collector *col = tracked_cols[--n_tracked_cols];

		zmh_collector_free(col);
		free(col);
	}
	tcp_test_teardown();
	zmh_core_pattern_restore();
	return 0;
}

/* ---- controlled children ----------------------------------------------- */

enum child_op {
	OP_EXIT = 1,
	OP_RAISE = 2,
	OP_RAISE_CORE = 3,
	OP_THREAD_EXIT = 4,
};

struct child_cmd {
	int op;
	int arg;
	int arg2;
	char dir[200];
};

static int thread_exit_ms, thread_exit_code;

static void *child_thread(void *arg)
{
	(void)arg;
	zmh_sleep_ms(thread_exit_ms);
	/* _exit, not exit: a sanitizer's leak check at exit() would change the
	 * status. From any thread, _exit() ends the whole process. */
	_exit(thread_exit_code);
	return NULL;
}

/*
 * Reset every signal to its default disposition and unblock all, straight
 * through the syscall: cmocka installs handlers, and under AddressSanitizer
 * the libc signal()/sigaction() are intercepted and a SIGSEGV handler cannot
 * be removed through them. An all-zero kernel sigaction is SIG_DFL, whatever
 * the architecture's field order.
 */
static void reset_signals(void)
{
	uint64_t ksa[8];
	uint64_t none = 0;

	memset(ksa, 0, sizeof(ksa));
	for (int s = 1; s <= 64; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		syscall(SYS_rt_sigaction, s, ksa, NULL, sizeof(uint64_t));
	}
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(uint64_t));
}

static __attribute__((noreturn)) void child_main(int rfd)
{
	struct child_cmd cmd;
	size_t got = 0;

	reset_signals();
	/* Keep only stdio and the command pipe: a client socket inherited here
	 * would keep a connection open after the test closed it. */
	if (rfd > 3)
		close_range(3, (unsigned int)rfd - 1, 0);
	close_range((unsigned int)rfd + 1, ~0U, 0);

	while (got < sizeof(cmd)) {
		ssize_t r = read(rfd, (char *)&cmd + got, sizeof(cmd) - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(99);
		got += (size_t)r;
	}
	switch (cmd.op) {
	case OP_EXIT:
		_exit(cmd.arg);
	case OP_RAISE:
		kill(getpid(), cmd.arg);
		_exit(98);
	case OP_RAISE_CORE: {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

		setrlimit(RLIMIT_CORE, &rl);
		prctl(PR_SET_DUMPABLE, 1);
		if (chdir(cmd.dir) < 0)
			_exit(97);
		kill(getpid(), cmd.arg);
		_exit(98);
	}
	case OP_THREAD_EXIT: {
		pthread_t t;

		thread_exit_ms = cmd.arg;
		thread_exit_code = cmd.arg2;
		if (pthread_create(&t, NULL, child_thread, NULL) != 0)
			_exit(96);
		pthread_exit(NULL);
	}
	default:
		_exit(95);
	}
}

int zmh_child_spawn(struct zmh_child *c)
{
	int p[2];
	pid_t pid;
	int r;

	memset(c, 0, sizeof(*c));
	c->ctl = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		close(p[1]);
		child_main(p[0]);
	}
	close(p[0]);
	c->pid = pid;
	c->ctl = p[1];
	track_child(pid);
	r = zmh_read_start_ticks(pid, &c->start_ticks);
	if (r < 0)
		return r;
	return 0;
}

static int child_send(struct zmh_child *c, const struct child_cmd *cmd)
{
	int r;

	if (c->ctl < 0)
		return -EBADF;
	r = write_all(c->ctl, cmd, sizeof(*cmd));
	close(c->ctl);
	c->ctl = -1;
	return r;
}

int zmh_child_exit(struct zmh_child *c, int code)
{
	struct child_cmd cmd = { .op = OP_EXIT, .arg = code };

	return child_send(c, &cmd);
}

int zmh_child_raise(struct zmh_child *c, int sig)
{
	struct child_cmd cmd = { .op = OP_RAISE, .arg = sig };

	return child_send(c, &cmd);
}

int zmh_child_raise_core(struct zmh_child *c, int sig, const char *dir)
{
	struct child_cmd cmd = { .op = OP_RAISE_CORE, .arg = sig };

	snprintf(cmd.dir, sizeof(cmd.dir), "%s", dir);
	return child_send(c, &cmd);
}

int zmh_child_thread_exit(struct zmh_child *c, int ms, int code)
{
	struct child_cmd cmd = { .op = OP_THREAD_EXIT, .arg = ms, .arg2 = code };

	return child_send(c, &cmd);
}

int zmh_child_kill(struct zmh_child *c, int sig)
{
	if (c->pid <= 0 || c->reaped)
		return -ESRCH;
	return kill(c->pid, sig) < 0 ? -errno : 0;
}

int zmh_child_end_varied(struct zmh_child *c, size_t i)
{
	return i % 2 == 0 ? zmh_child_kill(c, SIGKILL) : zmh_child_exit(c, (int)(i % 200));
}

const char *zmh_varied_down_wrong(const struct zmh_collector *col, uint64_t ref,
				  const struct zmh_child *c, size_t i)
{
	static char why[256];
	const struct zm_down_info *d = NULL;
	size_t n = zmh_collector_count(col, ref, &d);
	bool killed = i % 2 == 0;

	if (n != 1)
		snprintf(why, sizeof(why), "monitor %zu (ref %llu, pid %d) got %zu DOWNs, want exactly 1",
			 i, (unsigned long long)ref, c->pid, n);
	else if (d->pid != c->pid || d->start_ticks != c->start_ticks)
		snprintf(why, sizeof(why), "monitor %zu: DOWN for pid %u start %llu, want pid %d start %llu",
			 i, d->pid, (unsigned long long)d->start_ticks, c->pid,
			 (unsigned long long)c->start_ticks);
	else if (killed ? d->reason != ZM_DOWN_KILLED || d->signal != SIGKILL :
			  d->reason != ZM_DOWN_EXITED || d->status != (int)(i % 200))
		snprintf(why, sizeof(why), "monitor %zu (pid %d): %s %d, want %s %zu", i, c->pid,
			 zm_reason_str(d->reason), d->reason == ZM_DOWN_EXITED ? d->status : d->signal,
			 killed ? "killed" : "exited", killed ? (size_t)SIGKILL : i % 200);
	else
		return NULL;
	return why;
}

int zmh_child_reap(struct zmh_child *c)
{
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;

	if (c->reaped)
		return 0;
	for (;;) {
		pid_t r = waitpid(c->pid, &c->wstatus, WNOHANG);

		if (r == c->pid)
			break;
		if (r < 0)
			return -errno;
		if (zmh_mono_ms() > deadline)
			return -ETIMEDOUT;
		zmh_sleep_ms(2);
	}
	c->reaped = true;
	if (c->ctl >= 0) {
		close(c->ctl);
		c->ctl = -1;
	}
	untrack_child(c->pid);
	return 0;
}

int zmh_child_wait_zombie(struct zmh_child *c)
{
	return zmh_child_wait_zombie_ms(c, ZMH_TIMEOUT_MS);
}

int zmh_child_wait_zombie_ms(struct zmh_child *c, int timeout_ms)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;

	for (;;) {
		siginfo_t si;

		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
			return -errno;
		if (si.si_pid == c->pid)
			return 0;
		if (zmh_mono_ms() > deadline)
			return -ETIMEDOUT;
		zmh_sleep_ms(2);
	}
}

void zmh_child_forget(struct zmh_child *c)
{
	if (c->ctl >= 0) {
		close(c->ctl);
		c->ctl = -1;
	}
	c->reaped = true;
	untrack_child(c->pid);
}

int zmh_child_spawn_with_pid(struct zmh_child *c, pid_t want, int attempts)
{
	char num[32];

	if (want < 2)
		return -EINVAL;
	for (int i = 0; i < attempts; i++) {
		int r;

		snprintf(num, sizeof(num), "%d", (int)want - 1);
		r = write_file("/proc/sys/kernel/ns_last_pid", num);
		if (r < 0)
			return r;
		r = zmh_child_spawn(c);
		if (r < 0)
			return r;
		if (c->pid == want)
			return 0;
		zmh_child_kill(c, SIGKILL);
		zmh_child_reap(c);
	}
	return -EAGAIN;
}

int zmh_read_start_ticks(pid_t pid, uint64_t *ret)
{
	char path[64], buf[1024];
	char *p;
	int n, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_file(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	/* after ") " comes field 3 */
	p++;
	field = 2;
	while (*p) {
		while (*p == ' ')
			p++;
		field++;
		if (field == 22) {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(p, &end, 10);
			if (end == p || errno)
				return -EINVAL;
			*ret = v;
			return 0;
		}
		while (*p && *p != ' ')
			p++;
	}
	return -EINVAL;
}

char zmh_read_state(pid_t pid)
{
	char path[64], buf[1024];
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return 0;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	return p[2];
}

/* ---- core_pattern ------------------------------------------------------ */

static char saved_core_pattern[512];
static bool core_pattern_changed;
static bool core_atexit_set;

void zmh_core_pattern_restore(void)
{
	if (!core_pattern_changed)
		return;
	if (write_file("/proc/sys/kernel/core_pattern", saved_core_pattern) < 0)
		fprintf(stderr, "harness: could not restore core_pattern to '%s'\n",
			saved_core_pattern);
	core_pattern_changed = false;
}

int zmh_core_pattern_prepare(const char *dir)
{
	char cur[512], want[512];
	int n;

	n = read_file("/proc/sys/kernel/core_pattern", cur, sizeof(cur));
	if (n < 0)
		return n;
	while (n > 0 && (cur[n - 1] == '\n' || cur[n - 1] == ' '))
		cur[--n] = '\0';
	if (n > 0 && cur[0] != '/' && cur[0] != '|')
		return 0; /* relative to the cwd: the child chdirs into dir */
	if (!core_pattern_changed) {
		snprintf(saved_core_pattern, sizeof(saved_core_pattern), "%s", cur);
		if (!core_atexit_set) {
			atexit(zmh_core_pattern_restore);
			core_atexit_set = true;
		}
	}
	snprintf(want, sizeof(want), "%s/core.%%p", dir);
	n = write_file("/proc/sys/kernel/core_pattern", want);
	if (n < 0)
		return n;
	core_pattern_changed = true;
	return 0;
}

/* ---- clients and DOWNs ------------------------------------------------- */

void zmh_collector_reset(struct zmh_collector *col)
{
	col->n = 0;
	col->nerr = 0;
}

struct zmh_collector *zmh_collector_new(void)
{
	struct zmh_collector *col = calloc(1, sizeof(*col));

	if (!col) {
		fprintf(stderr, "harness: out of memory\n");
		abort();
	}
	if (n_tracked_cols < sizeof(tracked_cols) / sizeof(tracked_cols[0]))
		tracked_cols[n_tracked_cols++] = col;
	return col;
}

void zmh_collector_free(struct zmh_collector *col)
{
	free(col->downs);
	free(col->errs);
	memset(col, 0, sizeof(*col));
}

void zmh_on_down(struct zm_client *c, const struct zm_down_info *d, void *userdata)
{
	struct zmh_collector *col = userdata;

	(void)c;
	if (col->n == col->cap) {
		size_t cap = col->cap ? col->cap * 2 : 64;
		struct zm_down_info *v = realloc(col->downs, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "harness: out of memory collecting DOWNs\n");
			abort();
		}
		col->downs = v;
		col->cap = cap;
	}
	col->downs[col->n++] = *d;
}

static void on_error(struct zm_client *c, const struct zm_error_info *e, void *userdata)
{
	struct zmh_collector *col = userdata;
	struct zmh_err *x;

	(void)c;
	if (col->nerr == col->errcap) {
		size_t cap = col->errcap ? col->errcap * 2 : 16;
		struct zmh_err *v = realloc(col->errs, cap * sizeof(*v));

		if (!v)
			abort();
		col->errs = v;
		col->errcap = cap;
	}
	x = &col->errs[col->nerr++];
	x->ref = e->ref;
	x->error = e->error;
	x->request = e->request;
	snprintf(x->message, sizeof(x->message), "%s", e->message ? e->message : "");
}

size_t zmh_collector_count(const struct zmh_collector *col, uint64_t ref,
			   const struct zm_down_info **ret)
{
	size_t n = 0;

	if (ret)
		*ret = NULL;
	for (size_t i = 0; i < col->n; i++) {
		if (col->downs[i].ref != ref)
			continue;
		if (n == 0 && ret)
			*ret = &col->downs[i];
		n++;
	}
	return n;
}

int zmh_connect(const struct zmh_agent *a, const char *name, struct zmh_collector *col,
		struct zm_client **ret)
{
	struct zm_connect_options o;

	memset(&o, 0, sizeof(o));
	o.name = name;
	o.max_rate = 1000000;
	return zmh_connect_opts(a, &o, col, ret);
}

int zmh_connect_opts(const struct zmh_agent *a, const struct zm_connect_options *opts,
		     struct zmh_collector *col, struct zm_client **ret)
{
	struct zm_connect_options o = *opts;
	struct zm_client *c = NULL;
	int r;

	if (!o.socket_path)
		o.socket_path = a->sock;
	if (o.timeout_ms <= 0)
		o.timeout_ms = ZMH_TIMEOUT_MS;
	r = zm_connect_opts(&o, &c);
	if (r < 0) {
		fprintf(stderr, "harness: zm_connect(%s): %s; the agent is %s\n", a->sock,
			strerror(-r), zmh_agent_alive(a) ? "running" : "GONE");
		zmh_agent_dump_log(a);
		return r;
	}
	if (col)
		zm_set_error_handler(c, on_error, col);
	if (n_tracked_clients < sizeof(tracked_clients) / sizeof(tracked_clients[0]))
		tracked_clients[n_tracked_clients++] = c;
	*ret = c;
	return 0;
}

void zmh_client_close(struct zm_client *c)
{
	for (size_t i = 0; i < n_tracked_clients; i++) {
		if (tracked_clients[i] == c) {
			tracked_clients[i] = tracked_clients[--n_tracked_clients];
			break;
		}
	}
	zm_close(c);
}

int zmh_sync(struct zm_client *c, struct zmh_collector *col)
{
	return zm_sync(c, ZMH_TIMEOUT_MS, zmh_on_down, col);
}

long zmh_wait_downs_multi(struct zm_client *const *cs, struct zmh_collector *const *cols,
			  size_t n, size_t want, int timeout_ms)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;
	struct pollfd pfd[16];

	if (n > 16)
		return -EINVAL;
	for (;;) {
		size_t total = 0;
		int pr;

		for (size_t i = 0; i < n; i++)
			total += cols[i]->n;
		if (total >= want)
			return (long)total;
		if (zmh_mono_ms() >= deadline)
			return (long)total;
		for (size_t i = 0; i < n; i++) {
			pfd[i].fd = zm_fd(cs[i]);
			pfd[i].events = POLLIN | (zm_pending(cs[i]) > 0 ? POLLOUT : 0);
			pfd[i].revents = 0;
		}
		pr = poll(pfd, n, remaining_ms(deadline) < 50 ? remaining_ms(deadline) : 50);
		if (pr < 0 && errno != EINTR)
			return -errno;
		for (size_t i = 0; i < n; i++) {
			/* Dispatch every time round: it also flushes queued requests. */
			int r = zm_dispatch(cs[i], zmh_on_down, cols[i]);

			if (r < 0 && r != -EAGAIN)
				return r;
		}
	}
}

long zmh_wait_downs(struct zm_client *c, struct zmh_collector *col, size_t want, int timeout_ms)
{
	return zmh_wait_downs_multi(&c, &col, 1, want, timeout_ms);
}

long zmh_quiet(struct zm_client *c, struct zmh_collector *col, int ms)
{
	size_t before;
	long r;

	r = zmh_sync(c, col);
	if (r < 0)
		return r;
	before = col->n;
	r = zmh_wait_downs(c, col, SIZE_MAX, ms);
	if (r < 0)
		return r;
	return (long)(col->n - before);
}

/* ---- agent status ------------------------------------------------------ */

int zmh_status(struct zm_client *c, char **ret_text)
{
	return zm_status(c, ZMH_TIMEOUT_MS, ret_text, NULL, NULL);
}

/* A whole number right at p; -EINVAL if there is none. */
static int parse_u64_at(const char *p, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || end == p)
		return -EINVAL;
	*ret = v;
	return 0;
}

int zmh_status_u64(const char *text, const char *key, uint64_t *ret)
{
	size_t klen = strlen(key);

	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');

		if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
			return parse_u64_at(line + klen + 1, ret);
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int zmh_status_sub_u64(const char *text, const char *name, const char *field, uint64_t *ret)
{
	char want_name[128], want_field[64];

	snprintf(want_name, sizeof(want_name), " name=%s ", name);
	snprintf(want_field, sizeof(want_field), " %s=", field);
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[512];

		if (len < sizeof(buf) - 1 && strncmp(line, "subscriber ", 11) == 0) {
			const char *f;

			memcpy(buf, line, len);
			buf[len] = ' ';        /* so that the last field ends in a space too */
			buf[len + 1] = '\0';
			if (strstr(buf, want_name)) {
				f = strstr(buf, want_field);
				if (!f)
					return -ENOENT;
				return parse_u64_at(f + strlen(want_field), ret);
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

/* ---- the pinned watched-process map ------------------------------------ */

static int map_open_name(const char *pin_dir, const char *name, uint32_t *ret_key_size)
{
	char path[PATH_MAX];
	union bpf_attr attr;
	struct bpf_map_info info;
	long fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	memset(&attr, 0, sizeof(attr));
	attr.pathname = (uint64_t)(uintptr_t)path;
	attr.file_flags = BPF_F_RDONLY;
	fd = sys_bpf(BPF_OBJ_GET, &attr);
	if (fd < 0) {
		memset(&attr, 0, sizeof(attr));
		attr.pathname = (uint64_t)(uintptr_t)path;
		fd = sys_bpf(BPF_OBJ_GET, &attr);
	}
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (uint32_t)fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (uint64_t)(uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) {
		int e = -errno;
		close((int)fd);
		return e;
	}
	*ret_key_size = info.key_size;
	return (int)fd;
}

static int map_open(const char *pin_dir, uint32_t *ret_key_size)
{
	return map_open_name(pin_dir, "zm_procs", ret_key_size);
}

static long map_count(const char *pin_dir, const pid_t *pids, size_t n)
{
	uint8_t key[64], next[64];
	uint32_t key_size = 0;
	union bpf_attr attr;
	bool first = true;
	long count = 0;
	int fd;

	fd = map_open(pin_dir, &key_size);
	if (fd < 0)
		return fd;
	if (key_size != sizeof(struct zm_proc_key) || key_size > sizeof(key)) {
		close(fd);
		return -EPROTO;
	}
	for (;;) {
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (uint32_t)fd;
		attr.key = first ? 0 : (uint64_t)(uintptr_t)key;
		attr.next_key = (uint64_t)(uintptr_t)next;
		if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr) < 0) {
			if (errno == ENOENT)
				break;
			int e = -errno;
			close(fd);
			return e;
		}
		first = false;
		memcpy(key, next, key_size);
		{
			struct zm_proc_key k;

			memcpy(&k, key, sizeof(k));
			if (!pids) {
				count++;
			} else {
				for (size_t i = 0; i < n; i++) {
					if ((pid_t)k.tgid == pids[i]) {
						count++;
						break;
					}
				}
			}
		}
		if (count > (long)ZM_MAX_PROC_WATCHES * 2) /* a walk that never ends */
			break;
	}
	close(fd);
	return count;
}

int zmh_exit_gen(const char *pin_dir, pid_t pid, uint64_t *ret)
{
	uint32_t key_size = 0, slot = (uint32_t)pid & (ZM_EXIT_GEN_SLOTS - 1);
	union bpf_attr attr;
	int fd = map_open_name(pin_dir, "zm_exit_gen", &key_size), e = 0;

	if (fd < 0)
		return fd;
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (uint32_t)fd;
	attr.key = (uint64_t)(uintptr_t)&slot;
	attr.value = (uint64_t)(uintptr_t)ret;
	if (key_size != sizeof(slot))
		e = -EPROTO;
	else if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) < 0)
		e = -errno;
	close(fd);
	return e;
}

long zmh_map_count(const char *pin_dir, pid_t tgid)
{
	if (tgid == 0)
		return map_count(pin_dir, NULL, 0);
	return map_count(pin_dir, &tgid, 1);
}

long zmh_map_count_pids(const char *pin_dir, const pid_t *pids, size_t n)
{
	return map_count(pin_dir, pids, n);
}

long zmh_map_wait_count_pids(const char *pin_dir, const pid_t *pids, size_t n, long want,
			     int timeout_ms)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;
	long c;

	for (;;) {
		c = pids ? map_count(pin_dir, pids, n) : map_count(pin_dir, NULL, 0);
		if (c == want || c < 0 || zmh_mono_ms() >= deadline)
			return c;
		zmh_sleep_ms(10);
	}
}

long zmh_map_wait_count(const char *pin_dir, pid_t tgid, long want, int timeout_ms)
{
	if (tgid == 0)
		return zmh_map_wait_count_pids(pin_dir, NULL, 0, want, timeout_ms);
	return zmh_map_wait_count_pids(pin_dir, &tgid, 1, want, timeout_ms);
}

/* ---- raw-socket client ------------------------------------------------- */

void zmh_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void zmh_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void zmh_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void zmh_frame_header(uint8_t *out, uint32_t len, uint16_t magic, uint16_t count)
{
	zmh_put_u32(out, len);
	zmh_put_u16(out + 4, magic);
	zmh_put_u16(out + 6, count);
}

int zmh_raw_send(struct zmh_raw *r, const void *p, size_t n)
{
	return write_all(r->fd, p, n);
}

int zmh_raw_send_record(struct zmh_raw *r, uint16_t type, const void *body, size_t len)
{
	uint8_t *f;
	size_t total = ZM_FRAME_HDR_LEN + ZM_REC_HDR_LEN + len;
	int ret;

	if (ZM_REC_HDR_LEN + len > ZM_REC_MAX)
		return -EMSGSIZE;
	f = malloc(total);
	if (!f)
		return -ENOMEM;
	zmh_frame_header(f, (uint32_t)total, ZM_FRAME_MAGIC, 1);
	zmh_put_u16(f + 8, type);
	zmh_put_u16(f + 10, (uint16_t)(ZM_REC_HDR_LEN + len));
	if (len)
		memcpy(f + 12, body, len);
	ret = zmh_raw_send(r, f, total);
	free(f);
	return ret;
}

int zmh_raw_connect(struct zmh_raw *r, const char *sock, bool hello)
{
	int fd;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	fd = try_connect(sock);
	if (fd < 0)
		return fd;
	r->fd = fd;
	if (n_tracked_raws < sizeof(tracked_raw_fds) / sizeof(tracked_raw_fds[0]))
		tracked_raw_fds[n_tracked_raws++] = fd;
	if (hello) {
		struct zm_hello h;
		uint8_t body[ZM_HELLO_LEN + ZM_NAME_MAX + 8];
		struct zmh_rec *rec;
		size_t len;
		int ret;

		memset(&h, 0, sizeof(h));
		h.version = ZM_PROTO_VERSION;
		snprintf(h.name, sizeof(h.name), "it-raw");
		len = zm_enc_hello(body, &h);
		ret = zmh_raw_send_record(r, ZM_REC_HELLO, body, len);
		if (ret < 0)
			return ret;
		rec = malloc(sizeof(*rec));
		if (!rec)
			return -ENOMEM;
		ret = zmh_raw_expect(r, ZM_REC_WELCOME, ZMH_TIMEOUT_MS, rec, NULL);
		free(rec);
		if (ret < 0)
			return ret;
		if (ret == 0)
			return -ECONNRESET;
	}
	return 0;
}

void zmh_raw_close(struct zmh_raw *r)
{
	for (size_t i = 0; i < n_tracked_raws; i++) {
		if (tracked_raw_fds[i] == r->fd) {
			tracked_raw_fds[i] = tracked_raw_fds[--n_tracked_raws];
			break;
		}
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	zm_buf_free(&r->in);
}

/* Read what the socket has into r->in, waiting up to timeout_ms. 1 got
 * bytes, 0 EOF, -ETIMEDOUT, -errno. */
static int raw_fill(struct zmh_raw *r, int timeout_ms)
{
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
	ssize_t n;
	int pr;

	if (r->eof)
		return 0;
	pr = poll(&pfd, 1, timeout_ms);
	if (pr < 0)
		return errno == EINTR ? -ETIMEDOUT : -errno;
	if (pr == 0)
		return -ETIMEDOUT;
	if (zm_buf_reserve(&r->in, 65536) < 0)
		return -ENOMEM;
	n = recv(r->fd, r->in.data + r->in.len, r->in.cap - r->in.len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return -ETIMEDOUT;
		if (errno == ECONNRESET) {
			r->eof = true;
			return 0;
		}
		return -errno;
	}
	if (n == 0) {
		r->eof = true;
		return 0;
	}
	r->in.len += (size_t)n;
	return 1;
}

int zmh_raw_next(struct zmh_raw *r, int timeout_ms, struct zmh_rec *ret)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;

	for (;;) {
		if (r->in_frame) {
			struct zm_record rec;
			int x = zm_record_next(&r->it, &rec);

			if (x < 0)
				return x;
			if (x == 1) {
				ret->type = rec.type;
				ret->len = rec.len;
				memcpy(ret->body, rec.body, rec.len);
				return 1;
			}
			zm_buf_consume(&r->in, r->frame_len);
			r->in_frame = false;
		}
		{
			struct zm_frame f;
			int x = zm_frame_parse(zm_buf_head(&r->in), zm_buf_pending(&r->in),
					       ZM_FRAME_MAX, &f);

			if (x < 0)
				return x;
			if (x == 1) {
				zm_record_iter_init(&r->it, &f);
				r->frame_len = f.len;
				r->in_frame = true;
				continue;
			}
		}
		{
			int x = raw_fill(r, remaining_ms(deadline));

			if (x <= 0)
				return x;
		}
	}
}

int zmh_raw_expect(struct zmh_raw *r, uint16_t type, int timeout_ms, struct zmh_rec *ret,
		   size_t *ret_downs)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;

	for (;;) {
		int x = zmh_raw_next(r, remaining_ms(deadline), ret);

		if (x <= 0)
			return x;
		if (ret->type == type)
			return 1;
		if (ret->type == ZM_REC_DOWN) {
			if (ret_downs)
				(*ret_downs)++;
			continue;
		}
		fprintf(stderr, "harness: raw client wanted record 0x%x (%s), got 0x%x (%s)\n",
			type, zm_rec_type_name(type), ret->type, zm_rec_type_name(ret->type));
		if (ret->type == ZM_REC_ERROR) {
			struct zm_record rec = { .body = ret->body, .type = ret->type, .len = ret->len };
			struct zm_error e;

			if (zm_dec_error(&rec, &e) == 0)
				fprintf(stderr, "harness:   ERROR ref=%llu code=%d (%s) request=0x%x: %s\n",
					(unsigned long long)e.ref, e.code, strerror(e.code),
					e.request, e.message);
		}
		return -EPROTO;
	}
}

int zmh_raw_wait_closed(struct zmh_raw *r, int timeout_ms, size_t *ret_records)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;

	if (ret_records)
		*ret_records = 0;
	for (;;) {
		int x;

		/* Drop whatever is buffered, parsed or not: only EOF matters. */
		r->in_frame = false;
		if (zm_buf_pending(&r->in) > 0)
			zm_buf_consume(&r->in, zm_buf_pending(&r->in));
		x = raw_fill(r, remaining_ms(deadline));
		if (x == 0)
			return 1;
		if (x < 0)
			return x;
		if (ret_records)
			(*ret_records)++;
	}
}

int zmh_raw_sync(struct zmh_raw *r, uint64_t token)
{
	uint8_t body[16];
	struct zmh_rec *rec;
	uint64_t got = 0;
	size_t len;
	int x;

	len = zm_enc_u64(body, token);
	x = zmh_raw_send_record(r, ZM_REC_SYNC, body, len);
	if (x < 0)
		return x;
	rec = malloc(sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	x = zmh_raw_expect(r, ZM_REC_SYNCED, ZMH_TIMEOUT_MS, rec, NULL);
	if (x == 1) {
		struct zm_record zr = { .body = rec->body, .type = rec->type, .len = rec->len };

		x = zm_dec_u64(&zr, &got);
		if (x == 0 && got != token)
			x = -EPROTO;
	} else if (x == 0) {
		x = -ECONNRESET;
	}
	free(rec);
	return x < 0 ? x : 0;
}

/* ---- zenmonctl --------------------------------------------------------- */

int zmh_ctl_start(struct zmh_proc *p, const char *const *argv, const char *env_socket)
{
	int out[2], err[2];
	pid_t pid;
	size_t n = 0;

	while (argv[n])
		n++;
	if (pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(err, O_CLOEXEC) < 0) {
		int e = -errno;
		close(out[0]);
		close(out[1]);
		return e;
	}
	pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(out[0]);
		close(out[1]);
		close(err[0]);
		close(err[1]);
		return e;
	}
	if (pid == 0) {
		const char **av = calloc(n + 1, sizeof(*av));
		int devnull = open("/dev/null", O_RDONLY);

		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close_range(3, ~0U, 0);
		if (env_socket)
			setenv(ZM_SOCKET_ENV, env_socket, 1);
		else
			unsetenv(ZM_SOCKET_ENV);
		if (!av)
			_exit(126);
		av[0] = zmh_zenmonctl_path();
		for (size_t i = 1; i < n; i++)
			av[i] = argv[i];
		execv(av[0], (char *const *)av);
		dprintf(2, "harness: exec %s: %s\n", av[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	p->pid = pid;
	p->out_fd = out[0];
	p->err_fd = err[0];
	return 0;
}

static int append_fd(int fd, char **buf, size_t *len)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	char *b;

	if (n <= 0)
		return n < 0 && (errno == EINTR || errno == EAGAIN) ? 1 : 0;
	b = realloc(*buf, *len + (size_t)n + 1);
	if (!b)
		return -ENOMEM;
	memcpy(b + *len, tmp, (size_t)n);
	*len += (size_t)n;
	b[*len] = '\0';
	*buf = b;
	return 1;
}

int zmh_ctl_finish(struct zmh_proc *p, int timeout_ms, char **ret_out, char **ret_err,
		   int *ret_wstatus)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;
	char *out = calloc(1, 1), *err = calloc(1, 1);
	size_t olen = 0, elen = 0;
	bool oopen = true, eopen = true, timed_out = false;
	int ws = 0;

	while (oopen || eopen) {
		struct pollfd pfd[2];
		int np = 0, pr;

		if (oopen)
			pfd[np++] = (struct pollfd){ .fd = p->out_fd, .events = POLLIN };
		if (eopen)
			pfd[np++] = (struct pollfd){ .fd = p->err_fd, .events = POLLIN };
		pr = poll(pfd, (nfds_t)np, remaining_ms(deadline));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			timed_out = true;
			break;
		}
		for (int i = 0; i < np; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == p->out_fd) {
				if (append_fd(p->out_fd, &out, &olen) <= 0)
					oopen = false;
			} else {
				if (append_fd(p->err_fd, &err, &elen) <= 0)
					eopen = false;
			}
		}
	}
	if (timed_out) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &ws, 0);
	} else {
		/* Output closed: the process is exiting (or closed stdio itself). */
		pid_t r;

		while ((r = waitpid(p->pid, &ws, WNOHANG)) == 0 && zmh_mono_ms() < deadline)
			zmh_sleep_ms(5);
		if (r != p->pid) {
			timed_out = true;
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &ws, 0);
		}
	}
	close(p->out_fd);
	close(p->err_fd);
	p->pid = 0;
	*ret_out = out;
	*ret_err = err;
	*ret_wstatus = ws;
	return timed_out ? -ETIMEDOUT : 0;
}

int zmh_ctl_run(const char *const *argv, const char *env_socket, int timeout_ms,
		char **ret_out, char **ret_err, int *ret_wstatus)
{
	struct zmh_proc p;
	int r = zmh_ctl_start(&p, argv, env_socket);

	if (r < 0)
		return r;
	return zmh_ctl_finish(&p, timeout_ms, ret_out, ret_err, ret_wstatus);
}

bool zmh_json_has(const char *json, const char *key, const char *value)
{
	char qkey[128];
	size_t klen, vlen = strlen(value);
	const char *p = json;

	snprintf(qkey, sizeof(qkey), "\"%s\"", key);
	klen = strlen(qkey);
	while ((p = strstr(p, qkey)) != NULL) {
		const char *q = p + klen;

		p = q;
		while (isspace((unsigned char)*q))
			q++;
		if (*q != ':')
			continue;
		q++;
		while (isspace((unsigned char)*q))
			q++;
		if (strncmp(q, value, vlen) != 0)
			continue;
		q += vlen;
		/* a whole token: a number must not go on with more digits */
		if (isdigit((unsigned char)value[vlen ? vlen - 1 : 0]) &&
		    (isdigit((unsigned char)*q) || *q == '.'))
			continue;
		return true;
	}
	return false;
}

/* ---- TCP connections ---------------------------------------------------- */

static int *tracked_fds;
static size_t n_tracked_fds, cap_tracked_fds;
static struct zmh_rawcol *tracked_rawcols[64];
static size_t n_tracked_rawcols;

void zmh_fd_track(int fd)
{
	if (fd < 0)
		return;
	if (n_tracked_fds == cap_tracked_fds) {
		size_t cap = cap_tracked_fds ? cap_tracked_fds * 2 : 256;
		int *v = realloc(tracked_fds, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "harness: out of memory tracking fds\n");
			abort();
		}
		tracked_fds = v;
		cap_tracked_fds = cap;
	}
	tracked_fds[n_tracked_fds++] = fd;
}

void zmh_fd_close(int fd)
{
	if (fd < 0)
		return;
	for (size_t i = n_tracked_fds; i > 0; i--) {
		if (tracked_fds[i - 1] == fd) {
			memmove(&tracked_fds[i - 1], &tracked_fds[i],
				(n_tracked_fds - i) * sizeof(*tracked_fds));
			n_tracked_fds--;
			break;
		}
	}
	close(fd);
}

void zmh_pid_track(pid_t pid)
{
	track_child(pid);
}

void zmh_pid_untrack(pid_t pid)
{
	untrack_child(pid);
}

static void rawcol_free(struct zmh_rawcol *col)
{
	free(col->downs);
	free(col->errs);
	free(col);
}

static void tcp_test_teardown(void)
{
	while (n_tracked_fds > 0)
		close(tracked_fds[--n_tracked_fds]);
	while (n_tracked_rawcols > 0)
		rawcol_free(tracked_rawcols[--n_tracked_rawcols]);
}

static int sockaddr_of(int family, const char *addr, uint16_t port, struct sockaddr_storage *ss,
		       socklen_t *ret_len)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
			return -EINVAL;
		*ret_len = sizeof(*sin);
		return 0;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
			return -EINVAL;
		*ret_len = sizeof(*sin6);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Listen on an fd the caller made (in whatever namespace). */
static int listen_on(int fd, int family, const char *addr, int backlog, uint16_t *ret_port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, r;

	r = sockaddr_of(family, addr, 0, &ss, &len);
	if (r < 0)
		return r;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0)
		return -errno;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ret_port)
		*ret_port = sockaddr_port(&ss);
	return 0;
}

int zmh_tcp_listen(int family, const char *addr, int backlog, uint16_t *ret_port)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	r = listen_on(fd, family, addr, backlog, ret_port);
	if (r < 0) {
		close(fd);
		return r;
	}
	zmh_fd_track(fd);
	return fd;
}

int zmh_tcp_connect(int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r;

	r = sockaddr_of(family, addr, port, &ss, &len);
	if (r < 0)
		return r;
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno == EINTR)
			continue;
		r = -errno;
		close(fd);
		return r;
	}
	zmh_fd_track(fd);
	return fd;
}

int zmh_fd_wait(int fd, short events, int timeout_ms)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int pr = poll(&pfd, 1, remaining_ms(deadline));

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		if (pr == 0)
			return -ETIMEDOUT;
		return 1;
	}
}

int zmh_tcp_accept(int lfd, int timeout_ms)
{
	int r = zmh_fd_wait(lfd, POLLIN, timeout_ms), fd;

	if (r < 0)
		return r;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	zmh_fd_track(fd);
	return fd;
}

int zmh_tcp_pair(int family, const char *addr, int *ret_cli, int *ret_srv)
{
	uint16_t port = 0;
	int lfd, cfd, sfd;

	lfd = zmh_tcp_listen(family, addr, 16, &port);
	if (lfd < 0)
		return lfd;
	cfd = zmh_tcp_connect(family, addr, port);
	if (cfd < 0) {
		zmh_fd_close(lfd);
		return cfd;
	}
	sfd = zmh_tcp_accept(lfd, ZMH_TIMEOUT_MS);
	zmh_fd_close(lfd);
	if (sfd < 0) {
		zmh_fd_close(cfd);
		return sfd;
	}
	*ret_cli = cfd;
	*ret_srv = sfd;
	return 0;
}

int zmh_sock_cookie(int fd, uint64_t *ret)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) < 0)
		return -errno;
	*ret = c;
	return 0;
}

static void tuple_end(const struct sockaddr_storage *ss, uint8_t addr[16], uint16_t *port)
{
	memset(addr, 0, 16);
	if (ss->ss_family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else
		memcpy(addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	*port = sockaddr_port(ss);
}

int zmh_sock_tuple(int fd, struct zm_tcp_tuple *ret)
{
	struct sockaddr_storage l, p;
	socklen_t ll = sizeof(l), pl = sizeof(p);

	if (getsockname(fd, (struct sockaddr *)&l, &ll) < 0 ||
	    getpeername(fd, (struct sockaddr *)&p, &pl) < 0)
		return -errno;
	if (l.ss_family != p.ss_family)
		return -EPROTO;
	memset(ret, 0, sizeof(*ret));
	ret->family = (uint8_t)l.ss_family;
	tuple_end(&l, ret->saddr, &ret->sport);
	tuple_end(&p, ret->daddr, &ret->dport);
	return 0;
}

int zmh_sock_linger0(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 ? -errno : 0;
}

long zmh_raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < want) {
		rlim_t v = (rl.rlim_max == RLIM_INFINITY || (long)rl.rlim_max > want) ?
				   (rlim_t)want : rl.rlim_max;

		rl.rlim_cur = v;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	return rl.rlim_cur == RLIM_INFINITY ? LONG_MAX : (long)rl.rlim_cur;
}

/* ---- commands and network namespaces ------------------------------------ */

int zmh_cmd(const char *const *argv, bool quiet)
{
	pid_t pid = fork();
	int ws;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			if (quiet)
				dup2(devnull, 2);
		}
		close_range(3, ~0U, 0);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &ws, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws) == 127 ? -ENOENT : WEXITSTATUS(ws);
	return 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
}

/* Run, printing the command when it fails; 0 or -EIO. */
static int cmd_checked(const char *const *argv)
{
	int r = zmh_cmd(argv, false);

	if (r != 0) {
		fprintf(stderr, "harness: command failed (%d):", r);
		for (size_t i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\n");
		return r < 0 ? r : -EIO;
	}
	return 0;
}

static struct zmh_netns *atexit_netns;
static struct zmh_netns atexit_netns_copy;

static void netns_atexit(void)
{
	if (atexit_netns && atexit_netns->created)
		zmh_netns_destroy(atexit_netns);
	else if (atexit_netns_copy.created)
		zmh_netns_destroy(&atexit_netns_copy);
}

/* Namespaces zmt-N (and their veth pairs) of processes that are gone. */
static void netns_remove_stale(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (strncmp(e->d_name, "zmt-", 4) != 0)
			continue;
		pid = strtol(e->d_name + 4, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		{
			char veth[32];
			const char *del_link[] = { "ip", "link", "del", veth, NULL };
			const char *del_ns[] = { "ip", "netns", "del", e->d_name, NULL };

			snprintf(veth, sizeof(veth), "zmv%lda", pid);
			fprintf(stderr, "harness: removing stale namespace %s\n", e->d_name);
			(void)zmh_cmd(del_link, true);
			(void)zmh_cmd(del_ns, true);
		}
	}
	closedir(d);
}

static int netns_v6_addrs(struct zmh_netns *n)
{
	const char *a6[] = { "ip", "-6", "addr", "replace", ZMH_NS_ROOT_V6 "/64", "dev",
			     n->veth_root, "nodad", NULL };
	const char *b6[] = { "ip", "-n", n->name, "-6", "addr", "replace", ZMH_NS_PEER_V6 "/64",
			     "dev", n->veth_ns, "nodad", NULL };
	int r = cmd_checked(a6);

	return r < 0 ? r : cmd_checked(b6);
}

/* The namespace end's link address: fixed, for the permanent entries below. */
#define NS_PEER_MAC "02:5a:6d:00:00:02"

int zmh_netns_create(struct zmh_netns *n)
{
	int r;

	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "zmt-%d", (int)getpid());
	snprintf(n->veth_root, sizeof(n->veth_root), "zmv%da", (int)getpid());
	snprintf(n->veth_ns, sizeof(n->veth_ns), "zmv%db", (int)getpid());
	netns_remove_stale();
	{
		const char *add_ns[] = { "ip", "netns", "add", n->name, NULL };

		r = cmd_checked(add_ns);
		if (r < 0)
			return r;
	}
	n->created = true;
	atexit_netns_copy = *n;
	if (!atexit_netns) {
		atexit_netns = n;
		atexit(netns_atexit);
	}
	atexit_netns = n;
	{
		const char *veth[] = { "ip", "link", "add", n->veth_root, "type", "veth", "peer",
				       "name", n->veth_ns, "address", NS_PEER_MAC, "netns", n->name,
				       NULL };
		/*
		 * Permanent neighbour entries survive the carrier loss of a link
		 * cut (zmh_netns_link()). Learned ones do not: the kernel would
		 * re-resolve, fail, and answer the stalled connection with a
		 * host-unreachable error (EHOSTUNREACH) instead of letting it
		 * time out (ETIMEDOUT), depending on how late the timer fires.
		 */
		const char *n4[] = { "ip", "neigh", "replace", ZMH_NS_PEER_V4, "lladdr", NS_PEER_MAC,
				     "dev", n->veth_root, "nud", "permanent", NULL };
		const char *n6[] = { "ip", "-6", "neigh", "replace", ZMH_NS_PEER_V6, "lladdr",
				     NS_PEER_MAC, "dev", n->veth_root, "nud", "permanent", NULL };
		const char *a4[] = { "ip", "addr", "add", ZMH_NS_ROOT_V4 "/30", "dev", n->veth_root, NULL };
		const char *aup[] = { "ip", "link", "set", n->veth_root, "up", NULL };
		const char *b4[] = { "ip", "-n", n->name, "addr", "add", ZMH_NS_PEER_V4 "/30", "dev",
				     n->veth_ns, NULL };
		const char *bup[] = { "ip", "-n", n->name, "link", "set", n->veth_ns, "up", NULL };
		const char *loup[] = { "ip", "-n", n->name, "link", "set", "lo", "up", NULL };

		if ((r = cmd_checked(veth)) < 0 || (r = cmd_checked(a4)) < 0 ||
		    (r = cmd_checked(aup)) < 0 || (r = cmd_checked(b4)) < 0 ||
		    (r = cmd_checked(bup)) < 0 || (r = cmd_checked(loup)) < 0 ||
		    (r = netns_v6_addrs(n)) < 0 || (r = cmd_checked(n4)) < 0 ||
		    (r = cmd_checked(n6)) < 0) {
			zmh_netns_destroy(n);
			return r;
		}
	}
	return 0;
}

void zmh_netns_destroy(struct zmh_netns *n)
{
	const char *del_link[] = { "ip", "link", "del", n->veth_root, NULL };
	const char *del_ns[] = { "ip", "netns", "del", n->name, NULL };

	if (!n->created)
		return;
	/* Deleting one end deletes the pair; the namespace's end goes with it too. */
	(void)zmh_cmd(del_link, true);
	if (zmh_cmd(del_ns, false) != 0)
		fprintf(stderr, "harness: could not delete namespace %s\n", n->name);
	n->created = false;
	if (atexit_netns_copy.created && strcmp(atexit_netns_copy.name, n->name) == 0)
		atexit_netns_copy.created = false;
	if (atexit_netns == n)
		atexit_netns = NULL;
}

int zmh_netns_link(struct zmh_netns *n, bool up)
{
	const char *set[] = { "ip", "-n", n->name, "link", "set", n->veth_ns, up ? "up" : "down", NULL };
	int r = cmd_checked(set);

	if (r < 0 || !up)
		return r;
	return netns_v6_addrs(n);
}

int zmh_netns_socket(const struct zmh_netns *n, int domain, int type)
{
	char path[PATH_MAX];
	int self, target, fd, e = 0;

	snprintf(path, sizeof(path), "/run/netns/%s", n->name);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		e = -errno;
		close(self);
		return e;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		e = -errno;
		close(self);
		close(target);
		return e;
	}
	fd = socket(domain, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		e = -errno;
	if (setns(self, CLONE_NEWNET) < 0) {
		fprintf(stderr, "harness: cannot return to the root network namespace: %s\n",
			strerror(errno));
		abort();
	}
	close(self);
	close(target);
	if (fd < 0)
		return e;
	zmh_fd_track(fd);
	return fd;
}

/* ---- TCP monitors over the raw client ----------------------------------- */

int zmh_raw_connect_named(struct zmh_raw *r, const char *sock, const char *name)
{
	struct zm_hello h;
	uint8_t body[ZM_HELLO_LEN + ZM_NAME_MAX + 8];
	struct zmh_rec *rec;
	size_t len;
	int ret;

	ret = zmh_raw_connect(r, sock, false);
	if (ret < 0)
		return ret;
	memset(&h, 0, sizeof(h));
	h.version = ZM_PROTO_VERSION;
	h.max_rate = 1000000;
	snprintf(h.name, sizeof(h.name), "%s", name ? name : "it-raw");
	len = zm_enc_hello(body, &h);
	ret = zmh_raw_send_record(r, ZM_REC_HELLO, body, len);
	if (ret < 0)
		return ret;
	rec = malloc(sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	ret = zmh_raw_expect(r, ZM_REC_WELCOME, ZMH_TIMEOUT_MS, rec, NULL);
	free(rec);
	if (ret < 0)
		return ret;
	return ret == 0 ? -ECONNRESET : 0;
}

/* sendmsg() all of buf, fds (if any) with the first byte. */
static int send_with_fds(int sock, const uint8_t *buf, size_t len, const int *fds, size_t nfds)
{
	size_t off = 0;

	while (off < len) {
		struct iovec iov = { .iov_base = (void *)(buf + off), .iov_len = len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		union {
			char b[CMSG_SPACE(253 * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		ssize_t n;

		if (off == 0 && nfds > 0) {
			struct cmsghdr *cm;

			if (nfds > 253)
				return -E2BIG;
			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.b;
			mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
			memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

int zmh_raw_monitor_tcp_many(struct zmh_raw *r, const struct zm_monitor_tcp *ms,
			     const int *fds, size_t n)
{
	size_t rec_len = ZM_REC_HDR_LEN + ZM_MONITOR_TCP_LEN;
	size_t total = ZM_FRAME_HDR_LEN + n * rec_len;
	int sendfds[253];
	size_t nfds = 0;
	uint8_t *f;
	int ret;

	if (n == 0 || n > 253)
		return -EINVAL;
	f = malloc(total);
	if (!f)
		return -ENOMEM;
	zmh_frame_header(f, (uint32_t)total, ZM_FRAME_MAGIC, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = f + ZM_FRAME_HDR_LEN + i * rec_len;

		zmh_put_u16(p, ZM_REC_MONITOR_TCP);
		zmh_put_u16(p + 2, (uint16_t)rec_len);
		zm_enc_monitor_tcp(p + 4, &ms[i]);
		if (fds && fds[i] >= 0)
			sendfds[nfds++] = fds[i];
	}
	ret = send_with_fds(r->fd, f, total, sendfds, nfds);
	free(f);
	return ret;
}

int zmh_raw_monitor_tcp(struct zmh_raw *r, const struct zm_monitor_tcp *m, int fd)
{
	return zmh_raw_monitor_tcp_many(r, m, &fd, 1);
}

int zmh_raw_monitor_tcp_fd(struct zmh_raw *r, uint64_t ref, int fd)
{
	struct zm_monitor_tcp m = { .ref = ref, .by = ZM_TCP_BY_FD };

	return zmh_raw_monitor_tcp(r, &m, fd);
}

int zmh_raw_monitor_tcp_cookie(struct zmh_raw *r, uint64_t ref, uint64_t cookie)
{
	struct zm_monitor_tcp m = { .ref = ref, .by = ZM_TCP_BY_COOKIE, .cookie = cookie };

	return zmh_raw_monitor_tcp(r, &m, -1);
}

int zmh_raw_monitor_tcp_tuple(struct zmh_raw *r, uint64_t ref, const struct zm_tcp_tuple *t)
{
	struct zm_monitor_tcp m = { .ref = ref, .by = ZM_TCP_BY_TUPLE, .tuple = *t };

	return zmh_raw_monitor_tcp(r, &m, -1);
}

int zmh_raw_demonitor(struct zmh_raw *r, uint64_t ref, uint32_t flags)
{
	struct zm_demonitor d = { .ref = ref, .flags = flags };
	uint8_t body[ZM_DEMONITOR_LEN];
	size_t len = zm_enc_demonitor(body, &d);

	return zmh_raw_send_record(r, ZM_REC_DEMONITOR, body, len);
}

struct zmh_rawcol *zmh_rawcol_new(void)
{
	struct zmh_rawcol *col = calloc(1, sizeof(*col));

	if (!col) {
		fprintf(stderr, "harness: out of memory\n");
		abort();
	}
	if (n_tracked_rawcols < sizeof(tracked_rawcols) / sizeof(tracked_rawcols[0]))
		tracked_rawcols[n_tracked_rawcols++] = col;
	return col;
}

/* Store a DOWN or an ERROR; 1 stored a DOWN, 0 something else, -errno. */
static int rawcol_take(struct zmh_rawcol *col, const struct zmh_rec *rec)
{
	struct zm_record zr = { .body = rec->body, .type = rec->type, .len = rec->len };

	if (rec->type == ZM_REC_DOWN) {
		if (col->n == col->cap) {
			size_t cap = col->cap ? col->cap * 2 : 64;
			struct zm_down *v = realloc(col->downs, cap * sizeof(*v));

			if (!v)
				abort();
			col->downs = v;
			col->cap = cap;
		}
		memset(&col->downs[col->n], 0, sizeof(col->downs[col->n]));
		if (zm_dec_down(&zr, &col->downs[col->n]) < 0)
			return -EBADMSG;
		col->n++;
		return 1;
	}
	if (rec->type == ZM_REC_ERROR) {
		if (col->nerr == col->errcap) {
			size_t cap = col->errcap ? col->errcap * 2 : 16;
			struct zm_error *v = realloc(col->errs, cap * sizeof(*v));

			if (!v)
				abort();
			col->errs = v;
			col->errcap = cap;
		}
		memset(&col->errs[col->nerr], 0, sizeof(col->errs[col->nerr]));
		if (zm_dec_error(&zr, &col->errs[col->nerr]) < 0)
			return -EBADMSG;
		col->nerr++;
		return 0;
	}
	return 0;
}

long zmh_raw_collect(struct zmh_raw *r, struct zmh_rawcol *col, size_t want_downs, int timeout_ms)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;
	struct zmh_rec *rec = malloc(sizeof(*rec));

	if (!rec)
		return -ENOMEM;
	while (col->n < want_downs) {
		int x = zmh_raw_next(r, remaining_ms(deadline), rec);

		if (x == -ETIMEDOUT)
			break;
		if (x < 0) {
			free(rec);
			return x;
		}
		if (x == 0) {
			free(rec);
			return -ECONNRESET;
		}
		x = rawcol_take(col, rec);
		if (x < 0) {
			free(rec);
			return x;
		}
	}
	free(rec);
	return (long)col->n;
}

static uint64_t raw_sync_token = 0x7a6d000000000000ULL;

int zmh_raw_sync_col(struct zmh_raw *r, struct zmh_rawcol *col)
{
	uint64_t token = ++raw_sync_token, got = 0;
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	uint8_t body[16];
	struct zmh_rec *rec;
	size_t len;
	int x;

	len = zm_enc_u64(body, token);
	x = zmh_raw_send_record(r, ZM_REC_SYNC, body, len);
	if (x < 0)
		return x;
	rec = malloc(sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	for (;;) {
		x = zmh_raw_next(r, remaining_ms(deadline), rec);
		if (x == 0)
			x = -ECONNRESET;
		if (x < 0)
			break;
		if (rec->type == ZM_REC_SYNCED) {
			struct zm_record zr = { .body = rec->body, .type = rec->type, .len = rec->len };

			if (zm_dec_u64(&zr, &got) == 0 && got == token) {
				x = 0;
				break;
			}
			continue;
		}
		x = rawcol_take(col, rec);
		if (x < 0)
			break;
	}
	free(rec);
	return x;
}

long zmh_raw_quiet(struct zmh_raw *r, struct zmh_rawcol *col, int ms)
{
	size_t before;
	long x;
	int s = zmh_raw_sync_col(r, col);

	if (s < 0)
		return s;
	before = col->n;
	x = zmh_raw_collect(r, col, SIZE_MAX, ms);
	if (x < 0)
		return x;
	return (long)(col->n - before);
}

size_t zmh_rawcol_count(const struct zmh_rawcol *col, uint64_t ref, const struct zm_down **ret)
{
	size_t n = 0;

	if (ret)
		*ret = NULL;
	for (size_t i = 0; i < col->n; i++) {
		if (col->downs[i].ref != ref)
			continue;
		if (n == 0 && ret)
			*ret = &col->downs[i];
		n++;
	}
	return n;
}

const struct zm_error *zmh_rawcol_err(const struct zmh_rawcol *col, uint64_t ref)
{
	for (size_t i = 0; i < col->nerr; i++) {
		if (col->errs[i].ref == ref)
			return &col->errs[i];
	}
	return NULL;
}

static const char *how_name(unsigned how)
{
	switch (how) {
	case 0: return "-";
	case ZM_TCP_FIN: return "fin";
	case ZM_TCP_RESET_RX: return "reset_rx";
	case ZM_TCP_RESET_TX: return "reset_tx";
	case ZM_TCP_TIMEOUT: return "timeout";
	case ZM_TCP_ERROR: return "error";
	default: return "?";
	}
}

void zmh_down_str(const struct zm_down *d, char *buf, size_t cap)
{
	char sa[INET6_ADDRSTRLEN] = "?", da[INET6_ADDRSTRLEN] = "?";

	if (d->tuple.family == AF_INET || d->tuple.family == AF_INET6) {
		inet_ntop(d->tuple.family, d->tuple.saddr, sa, sizeof(sa));
		inet_ntop(d->tuple.family, d->tuple.daddr, da, sizeof(da));
	}
	snprintf(buf, cap,
		 "ref=%llu kind=%u reason=%u(%s) how=%u(%s) value=%d(%s) old_state=%u "
		 "cookie=%llu family=%u %s:%u -> %s:%u",
		 (unsigned long long)d->ref, d->kind, d->reason, zm_reason_name(d->reason),
		 d->tcp_how, how_name(d->tcp_how), d->value, d->value > 0 ? strerror(d->value) : "-",
		 d->tcp_old_state, (unsigned long long)d->start_ticks, d->tuple.family, sa,
		 d->tuple.sport, da, d->tuple.dport);
}

void zmh_rawcol_dump(const struct zmh_rawcol *col, const char *what)
{
	char buf[512];

	fprintf(stderr, "harness: %s: %zu DOWN(s), %zu ERROR(s)\n", what ? what : "received",
		col->n, col->nerr);
	for (size_t i = 0; i < col->n && i < 20; i++) {
		zmh_down_str(&col->downs[i], buf, sizeof(buf));
		fprintf(stderr, "harness:   DOWN %s\n", buf);
	}
	for (size_t i = 0; i < col->nerr && i < 20; i++)
		fprintf(stderr, "harness:   ERROR ref=%llu code=%d (%s) request=0x%x: %s\n",
			(unsigned long long)col->errs[i].ref, col->errs[i].code,
			strerror(col->errs[i].code), col->errs[i].request, col->errs[i].message);
}

/* ---- the pinned watched-socket map -------------------------------------- */

long zmh_tcp_map_count(const char *pin_dir, const uint64_t *cookies, size_t n)
{
	uint64_t key = 0, next = 0;
	uint32_t key_size = 0;
	union bpf_attr attr;
	bool first = true;
	long count = 0, walked = 0;
	int fd;

	fd = map_open_name(pin_dir, "zm_tcp", &key_size);
	if (fd < 0)
		return fd;
	if (key_size != sizeof(uint64_t)) {
		close(fd);
		return -EPROTO;
	}
	for (;;) {
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (uint32_t)fd;
		attr.key = first ? 0 : (uint64_t)(uintptr_t)&key;
		attr.next_key = (uint64_t)(uintptr_t)&next;
		if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr) < 0) {
			if (errno == ENOENT)
				break;
			int e = -errno;
			close(fd);
			return e;
		}
		first = false;
		key = next;
		if (!cookies) {
			count++;
		} else {
			for (size_t i = 0; i < n; i++) {
				if (cookies[i] == key) {
					count++;
					break;
				}
			}
		}
		if (++walked > (long)ZM_MAX_TCP_WATCHES * 2) /* a walk that never ends */
			break;
	}
	close(fd);
	return count;
}

long zmh_tcp_map_wait_count(const char *pin_dir, const uint64_t *cookies, size_t n, long want,
			    int timeout_ms)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;
	long c;

	for (;;) {
		c = zmh_tcp_map_count(pin_dir, cookies, n);
		if (c == want || c < 0 || zmh_mono_ms() >= deadline)
			return c;
		zmh_sleep_ms(10);
	}
}
