/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * A monitored process dies: one DOWN, with the reason decoded right (exit
 * status, signal, core dump), the right identity, a plausible timestamp; and
 * the ways a target can already be gone (noproc, zombie, pidfd).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_PER_S 1000000000ULL

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Assert d describes the death of child c: identity and a recent time. */
static void assert_down_identity(const struct zm_down_info *d, const struct zmh_child *c,
				 uint64_t before_ns)
{
	uint64_t now = zmh_now_ns();

	assert_int_equal(d->kind, ZM_KIND_PROCESS);
	assert_int_equal(d->pid, c->pid);
	assert_int_equal(d->start_ticks, c->start_ticks);
	/* Within a few seconds of the death; clocks are not compared to the tick. */
	assert_true(d->time_ns + 5 * NS_PER_S >= before_ns);
	assert_true(d->time_ns <= now + 5 * NS_PER_S);
}

/*
 * Monitor a controlled child by pid + start time, let `kill_it` end it,
 * wait for exactly one DOWN and return a copy of it.
 */
static struct zm_down_info monitor_and_end(struct zmh_env *env, struct zmh_child *c,
					   void (*kill_it)(struct zmh_child *, int), int arg,
					   uint64_t *ret_before_ns)
{
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-proc-down", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c->pid, c->start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(col->n, 0);
	assert_int_equal(col->nerr, 0);

	*ret_before_ns = zmh_now_ns();
	kill_it(c, arg);
	assert_int_equal(zmh_child_reap(c), 0);

	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(zm_active_monitors(cl), 0);
	assert_int_equal(col->nerr, 0);
	zmh_client_close(cl);
	return *d;
}

static void do_exit(struct zmh_child *c, int code)
{
	assert_int_equal(zmh_child_exit(c, code), 0);
}

static void do_kill(struct zmh_child *c, int sig)
{
	assert_int_equal(zmh_child_kill(c, sig), 0);
}

static void do_raise(struct zmh_child *c, int sig)
{
	assert_int_equal(zmh_child_raise(c, sig), 0);
}

static void check_exit_code(void **state, int code)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_child c;
	uint64_t before;
	struct zm_down_info d = monitor_and_end(env, &c, do_exit, code, &before);

	assert_true(WIFEXITED(c.wstatus));
	assert_int_equal(WEXITSTATUS(c.wstatus), code);
	assert_int_equal(d.reason, ZM_DOWN_EXITED);
	assert_int_equal(d.status, code);
	assert_int_equal(d.signal, 0);
	assert_false(d.core_dumped);
	assert_down_identity(&d, &c, before);
}

static void test_exit_0_reports_exited_status_0(void **state)
{
	check_exit_code(state, 0);
}

static void test_exit_3_reports_exited_status_3(void **state)
{
	check_exit_code(state, 3);
}

static void test_exit_255_reports_exited_status_255(void **state)
{
	check_exit_code(state, 255);
}

static void check_killed(void **state, void (*how)(struct zmh_child *, int), int sig)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_child c;
	uint64_t before;
	struct zm_down_info d = monitor_and_end(env, &c, how, sig, &before);

	assert_true(WIFSIGNALED(c.wstatus));
	assert_int_equal(WTERMSIG(c.wstatus), sig);
	assert_int_equal(d.reason, ZM_DOWN_KILLED);
	assert_int_equal(d.signal, sig);
	assert_int_equal(d.status, 0);
	assert_false(d.core_dumped);
	assert_down_identity(&d, &c, before);
}

static void test_sigkill_reports_killed_sigkill(void **state)
{
	check_killed(state, do_kill, SIGKILL);
}

static void test_sigterm_reports_killed_sigterm(void **state)
{
	check_killed(state, do_kill, SIGTERM);
}

static void test_raised_sigusr1_reports_killed_sigusr1(void **state)
{
	check_killed(state, do_raise, SIGUSR1);
}

static void check_core(void **state, int sig)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0, before;
	char cmd[320];

	assert_int_equal(zmh_core_pattern_prepare(env->agent.dir), 0);
	assert_int_equal(zmh_connect(&env->agent, "it-core", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);

	before = zmh_now_ns();
	assert_int_equal(zmh_child_raise_core(&c, sig, env->agent.dir), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	zmh_core_pattern_restore();
	assert_true(WIFSIGNALED(c.wstatus));
	assert_int_equal(WTERMSIG(c.wstatus), sig);
	if (!WCOREDUMP(c.wstatus))
		fail_msg("the kernel dumped no core for the child (core_pattern or limits): "
			 "cannot test core_dumped");

	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_KILLED);
	assert_int_equal(d->signal, sig);
	assert_true(d->core_dumped);
	assert_down_identity(d, &c, before);

	snprintf(cmd, sizeof(cmd), "rm -f '%s'/core '%s'/core.*", env->agent.dir, env->agent.dir);
	if (system(cmd) != 0)
		print_message("could not remove the core files in %s\n", env->agent.dir);
}

static void test_sigabrt_with_core_reports_core_dumped(void **state)
{
	check_core(state, SIGABRT);
}

static void test_sigsegv_with_core_reports_core_dumped(void **state)
{
	check_core(state, SIGSEGV);
}

static void test_reaped_pid_reports_noproc(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-noproc", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zmh_child_exit(&c, 0), 0);
	assert_int_equal(zmh_child_reap(&c), 0);

	assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_NOPROC);
	assert_int_equal(d->pid, c.pid);
	assert_int_equal(col->nerr, 0);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, c.pid), 0);
}

static void test_wrong_start_ticks_reports_noproc_and_never_fires(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-noproc", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks + 1, &ref), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_NOPROC);
	assert_int_equal(d->pid, c.pid);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, c.pid), 0);

	/* the real process dying later fires nothing */
	assert_int_equal(zmh_child_exit(&c, 1), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 1);
	assert_int_equal(col->nerr, 0);
}

static void test_zombie_reports_its_real_exit_status(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-zombie", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zmh_child_exit(&c, 42), 0);
	assert_int_equal(zmh_child_wait_zombie(&c), 0);
	assert_int_equal(zmh_read_state(c.pid), 'Z');

	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	if (d->reason != ZM_DOWN_EXITED)
		fail_msg("a zombie that exited 42 was reported %s (status %d signal %d), want exited 42",
			 zm_reason_str(d->reason), d->status, d->signal);
	assert_int_equal(d->status, 42);
	assert_int_equal(d->pid, c.pid);
	assert_int_equal(d->start_ticks, c.start_ticks);

	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 1);
	assert_int_equal(zmh_map_wait_count(env->agent.pin_dir, c.pid, 0, ZMH_TIMEOUT_MS), 0);
}

static void test_pidfd_monitor_reports_exit_status(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0, before;
	int pidfd;

	assert_int_equal(zmh_connect(&env->agent, "it-pidfd", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	pidfd = pidfd_open(c.pid);
	assert_true(pidfd >= 0);
	assert_int_equal(zm_monitor_pidfd(cl, pidfd, &ref), 0);
	/* the library dups it: ours stays ours */
	assert_int_equal(close(pidfd), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(col->n, 0);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, c.pid), 1);

	before = zmh_now_ns();
	assert_int_equal(zmh_child_exit(&c, 17), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 17);
	assert_down_identity(d, &c, before);
	assert_int_equal(col->nerr, 0);
}

static void test_pidfd_of_reaped_process_reports_noproc(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;
	int pidfd;

	assert_int_equal(zmh_connect(&env->agent, "it-pidfd", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	pidfd = pidfd_open(c.pid);
	assert_true(pidfd >= 0);
	assert_int_equal(zmh_child_exit(&c, 5), 0);
	assert_int_equal(zmh_child_reap(&c), 0);

	assert_int_equal(zm_monitor_pidfd(cl, pidfd, &ref), 0);
	close(pidfd);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_NOPROC);
	assert_int_equal(col->nerr, 0);
}

static void test_monitor_by_pid_alone_reports_start_ticks(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-pid", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_child_exit(&c, 9), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 9);
	assert_int_equal(d->pid, c.pid);
	assert_int_equal(d->start_ticks, c.start_ticks);
}

static void test_multithreaded_process_is_down_only_when_last_thread_exits(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;
	int64_t released;

	assert_int_equal(zmh_connect(&env->agent, "it-threads", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);

	/* main thread: pthread_exit now; the other thread: exit(5) after 300 ms */
	released = zmh_mono_ms();
	assert_int_equal(zmh_child_thread_exit(&c, 300, 5), 0);
	assert_true(zmh_wait_downs(cl, col, 1, 150) >= 0);
	if (zmh_mono_ms() - released < 290)
		assert_int_equal(col->n, 0); /* the second thread is still running */
	else
		print_message("(slow machine: 150 ms check ran late, skipped)\n");

	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 5);
	assert_int_equal(d->pid, c.pid);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_true(WIFEXITED(c.wstatus));
	assert_int_equal(WEXITSTATUS(c.wstatus), 5);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 1);
}

static int held_thread_code;

/* In the child: block until the test writes a byte (or goes away), then end
 * the whole process. _exit, not exit: no atexit or sanitizer work. */
static void *held_thread(void *arg)
{
	char b;

	(void)arg;
	while (read(3, &b, 1) < 0 && errno == EINTR)
		;
	_exit(held_thread_code);
	return NULL;
}

/*
 * A child whose main thread calls pthread_exit() at once while a second
 * thread blocks reading *ret_release's other end: one byte written there
 * (or EOF) makes it exit(code). Tracked: the per-test teardown kills it if
 * the test fails first; the write end too is closed by the teardown.
 */
static void spawn_held_thread_child(struct zmh_child *c, int code, int *ret_release)
{
	int p[2];
	pid_t pid;

	memset(c, 0, sizeof(*c));
	c->ctl = -1;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t t;

		/* Only the pipe: an inherited client socket would outlive the
		 * test's close of it. */
		if (dup2(p[0], 3) < 0)
			_exit(94);
		close_range(4, ~0U, 0);
		held_thread_code = code;
		if (pthread_create(&t, NULL, held_thread, NULL) != 0)
			_exit(96);
		pthread_exit(NULL);
	}
	close(p[0]);
	zmh_pid_track(pid);
	zmh_fd_track(p[1]);
	c->pid = pid;
	*ret_release = p[1];
	assert_int_equal(zmh_read_start_ticks(pid, &c->start_ticks), 0);
}

static void test_monitor_after_main_thread_exit_waits_for_last_thread(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child c;
	uint64_t ref = 0;
	int64_t deadline;
	int release;

	assert_int_equal(zmh_connect(&env->agent, "it-threads", col, &cl), 0);
	spawn_held_thread_child(&c, 6, &release);
	/* wait until the leader is a zombie (its main thread exited); the
	 * second thread runs until released below */
	deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	while (zmh_read_state(c.pid) != 'Z' && zmh_mono_ms() < deadline)
		zmh_sleep_ms(1);
	if (zmh_read_state(c.pid) != 'Z')
		fail_msg("the child's main thread did not exit within %d ms (state %c)",
			 ZMH_TIMEOUT_MS, zmh_read_state(c.pid));

	/* the process lives on in its second thread: this is no noproc, and
	 * no DOWN comes while that thread runs */
	assert_int_equal(zm_monitor_pid_start(cl, c.pid, c.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 0);
	assert_int_equal(col->nerr, 0);

	/* release the second thread: now the process ends */
	assert_int_equal(write(release, "x", 1), 1);
	zmh_fd_close(release);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	if (d->reason != ZM_DOWN_EXITED)
		fail_msg("want exited 6, got %s (status %d)", zm_reason_str(d->reason), d->status);
	assert_int_equal(d->status, 6);
	assert_int_equal(d->pid, c.pid);
	assert_int_equal(zmh_child_reap(&c), 0);
	zmh_pid_untrack(c.pid);
	assert_true(WIFEXITED(c.wstatus));
	assert_int_equal(WEXITSTATUS(c.wstatus), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_exit_0_reports_exited_status_0),
		ZMH_TEST(test_exit_3_reports_exited_status_3),
		ZMH_TEST(test_exit_255_reports_exited_status_255),
		ZMH_TEST(test_sigkill_reports_killed_sigkill),
		ZMH_TEST(test_sigterm_reports_killed_sigterm),
		ZMH_TEST(test_raised_sigusr1_reports_killed_sigusr1),
		ZMH_TEST(test_sigabrt_with_core_reports_core_dumped),
		ZMH_TEST(test_sigsegv_with_core_reports_core_dumped),
		ZMH_TEST(test_reaped_pid_reports_noproc),
		ZMH_TEST(test_wrong_start_ticks_reports_noproc_and_never_fires),
		ZMH_TEST(test_zombie_reports_its_real_exit_status),
		ZMH_TEST(test_pidfd_monitor_reports_exit_status),
		ZMH_TEST(test_pidfd_of_reaped_process_reports_noproc),
		ZMH_TEST(test_monitor_by_pid_alone_reports_start_ticks),
		ZMH_TEST(test_multithreaded_process_is_down_only_when_last_thread_exits),
		ZMH_TEST(test_monitor_after_main_thread_exit_waits_for_last_thread),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
