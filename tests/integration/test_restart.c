/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Restarts and upgrades that lose nothing: the BPF programs stay attached
 * and the maps pinned while no agent runs, libzenmon reconnects by itself
 * and brings its monitors back under the same references, and every monitor
 * gets exactly one DOWN, with the real reason when the kernel recorded the
 * death while no agent ran.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zenmon/kern.h"

#define MANY 1000

/*
 * The adoption period of the unclaimed-watch test. It starts when the
 * restarted agent loads the pinned map, before it listens: long enough that
 * the map reads right after the restart still see the watches however slowly
 * the agent got to accepting; the wait for their removal allows for it.
 */
#define GRACE_S 5
#define STR_(x) #x
#define STR(x) STR_(x)

enum stop_how { STOP_TERM, STOP_KILL };

static void stop_agent(struct zmh_agent *a, enum stop_how how)
{
	if (how == STOP_TERM)
		assert_int_equal(zmh_agent_stop_keep(a), 0);
	else
		assert_int_equal(zmh_agent_kill9(a), 0);
}

/* A child's control pipe each, beside the usual fds. */
#define NOFILE (4 * MANY)

static void end_child(struct zmh_child *c, size_t i)
{
	assert_int_equal(zmh_child_end_varied(c, i), 0);
}

static void check_down(const struct zmh_collector *col, uint64_t ref, const struct zmh_child *c,
		       size_t i)
{
	const char *wrong = zmh_varied_down_wrong(col, ref, c, i);

	if (wrong)
		fail_msg("%s", wrong);
}

/*
 * The test: monitor MANY processes (half by pid alone, which the
 * agent names in MONITORED records, half by pid and start time), stop the
 * agent, end half of them, start it again: every monitor gets exactly one
 * DOWN with its real reason, those that died while no agent ran too; then
 * the other half dies with the new agent, and nothing more comes.
 */
static void restart_many(enum stop_how how)
{
	/* The adoption period starts when the new agent loads the pinned map,
	 * and the check that a watch which fired while no agent ran is still
	 * there comes after waits that may add up to about a minute on a
	 * loaded machine (2 x 20 s for the DOWNs, the syncs and reaps): twice
	 * that. */
	static const char *const args[] = { "--adopt-timeout", "120", NULL };
	struct zmh_collector *col = zmh_collector_new();
	struct zmh_child *ch = calloc(MANY, sizeof(*ch));
	uint64_t *refs = calloc(MANY, sizeof(*refs));
	struct zm_client *cl;
	struct zmh_agent agent, *a = &agent;
	size_t half = MANY / 2;
	long got;

	assert_non_null(ch);
	assert_non_null(refs);
	zmh_raise_nofile(NOFILE);
	assert_int_equal(zmh_extra_agent_start(a, NULL), 0);
	assert_int_equal(zmh_connect(a, "it-restart", col, &cl), 0);
	for (size_t i = 0; i < MANY; i++) {
		assert_int_equal(zmh_child_spawn(&ch[i]), 0);
		if (i % 4 < 2)
			assert_int_equal(zm_monitor_pid(cl, ch[i].pid, &refs[i]), 0);
		else
			assert_int_equal(zm_monitor_pid_start(cl, ch[i].pid, ch[i].start_ticks, &refs[i]), 0);
	}
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_map_count_pids(a->pin_dir, (pid_t[]){ ch[0].pid }, 1), 1);
	assert_int_equal(zm_active_monitors(cl), MANY);

	stop_agent(a, how);
	/* The first half ends while no agent runs; reaped, so that nothing is
	 * left of them in /proc: only the kernel's record tells how. */
	for (size_t i = 0; i < half; i++)
		end_child(&ch[i], i);
	for (size_t i = 0; i < half; i++)
		assert_int_equal(zmh_child_reap(&ch[i]), 0);
	assert_int_equal(zmh_agent_restart_args(a, args), 0);
	assert_true(zmh_agent_log_has(a, "adopted"));

	got = zmh_wait_downs(cl, col, half, ZMH_TIMEOUT_MS * 2);
	if (got != (long)half) {
		zmh_agent_dump_log(a);
		fail_msg("%ld DOWNs after the restart, want %zu", got, half);
	}
	/* zm_sync() returns once the new agent has every monitor back. */
	assert_int_equal(zmh_sync(cl, col), 0);
	for (size_t i = half; i < MANY; i++)
		end_child(&ch[i], i);
	got = zmh_wait_downs(cl, col, MANY, ZMH_TIMEOUT_MS * 2);
	if (got != MANY) {
		zmh_agent_dump_log(a);
		fail_msg("%ld DOWNs in all, want %d", got, MANY);
	}
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	for (size_t i = 0; i < MANY; i++)
		check_down(col, refs[i], &ch[i], i);
	assert_int_equal(zm_active_monitors(cl), 0);
	for (size_t i = half; i < MANY; i++)
		assert_int_equal(zmh_child_reap(&ch[i]), 0);
	/* A watch taken over goes with its DOWN; one that fired while no
	 * agent ran stays for the adoption period, for other clients. */
	assert_int_equal(zmh_map_wait_count(a->pin_dir, ch[MANY - 1].pid, 0, ZMH_TIMEOUT_MS), 0);
	assert_int_equal(zmh_map_count(a->pin_dir, ch[0].pid), 1);
	zmh_client_close(cl);
	assert_int_equal(zmh_agent_stop(a), 0);
	free(ch);
	free(refs);
}

static void test_sigterm_restart_gives_each_of_1000_monitors_one_down(void **state)
{
	(void)zmh_env(state);
	restart_many(STOP_TERM);
}

static void test_sigkill_restart_gives_each_of_1000_monitors_one_down(void **state)
{
	(void)zmh_env(state);
	restart_many(STOP_KILL);
}

/*
 * A process monitored by pid alone dies while no agent runs and its pid
 * goes to another process: the monitor comes back by identity (pid and
 * start time, from MONITORED), gets the recorded exit status, and the new
 * process of that pid fires nothing.
 */
static void test_exit_while_away_keeps_real_reason_after_pid_reuse(void **state)
{
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zmh_child p, n;
	struct zm_client *cl;
	struct zmh_agent agent, *a = &agent;
	uint64_t ref;
	int r;

	(void)zmh_env(state);
	assert_int_equal(zmh_extra_agent_start(a, NULL), 0);
	assert_int_equal(zmh_connect(a, "it-reuse", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&p), 0);
	zmh_sleep_ms(30); /* a successor cannot share its start tick */
	assert_int_equal(zm_monitor_pid(cl, p.pid, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);

	assert_int_equal(zmh_agent_kill9(a), 0);
	assert_int_equal(zmh_child_exit(&p, 42), 0);
	assert_int_equal(zmh_child_reap(&p), 0);
	r = zmh_child_spawn_with_pid(&n, p.pid, 1000);
	if (r == -EAGAIN) {
		/* Something else kept taking the pid: no agent left behind. */
		(void)zmh_cleanup_pins(a->pin_dir);
		skip();
	}
	assert_int_equal(r, 0);
	assert_int_not_equal(n.start_ticks, p.start_ticks);

	assert_int_equal(zmh_agent_restart_args(a, NULL), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 42);
	assert_int_equal(d->pid, p.pid);
	assert_int_equal(d->start_ticks, p.start_ticks);

	/* The successor's death is nobody's DOWN. */
	assert_int_equal(zmh_child_exit(&n, 7), 0);
	assert_int_equal(zmh_child_reap(&n), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	zmh_client_close(cl);
	assert_int_equal(zmh_agent_stop(a), 0);
}

/*
 * DOWNs the agent had queued (paced to one a second here) when it was
 * killed: their kernel watches stay FIRED until a DOWN is sent, so the
 * monitors brought back get the real reason, not noproc, and each exactly
 * once.
 */
static void test_downs_queued_in_killed_agent_come_back_with_real_reason(void **state)
{
	struct zmh_collector *col = zmh_collector_new();
	struct zm_connect_options o = { .name = "it-queued", .max_rate = 1, .max_batch = 1 };
	struct zmh_child ch[5];
	uint64_t refs[5];
	struct zm_client *cl;
	struct zmh_agent agent, *a = &agent;

	(void)zmh_env(state);
	assert_int_equal(zmh_extra_agent_start(a, NULL), 0);
	assert_int_equal(zmh_connect_opts(a, &o, col, &cl), 0);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(zmh_child_spawn(&ch[i]), 0);
		assert_int_equal(zm_monitor_pid(cl, ch[i].pid, &refs[i]), 0);
	}
	assert_int_equal(zmh_sync(cl, col), 0);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(zmh_child_kill(&ch[i], SIGKILL), 0);
		assert_int_equal(zmh_child_reap(&ch[i]), 0);
	}
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_agent_kill9(a), 0);
	assert_true(col->n < 5);

	assert_int_equal(zmh_agent_restart_args(a, NULL), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 5, ZMH_TIMEOUT_MS), 5);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	for (size_t i = 0; i < 5; i++) {
		const struct zm_down_info *d;

		assert_int_equal(zmh_collector_count(col, refs[i], &d), 1);
		if (d->reason != ZM_DOWN_KILLED || d->signal != SIGKILL)
			fail_msg("ref %llu: %s, want killed 9", (unsigned long long)refs[i],
				 zm_reason_str(d->reason));
	}
	zmh_client_close(cl);
	assert_int_equal(zmh_agent_stop(a), 0);
}

/* A watch nobody comes back for is removed when the adoption period ends. */
static void test_unclaimed_adopted_watch_is_removed_after_the_grace_period(void **state)
{
	static const char *const args[] = { "--adopt-timeout", STR(GRACE_S), NULL };
	struct zm_connect_options o = { .name = "it-gone", .flags = ZM_CONNECT_NO_RECONNECT };
	struct zmh_collector *col = zmh_collector_new();
	struct zmh_child live, dead;
	struct zm_client *cl;
	struct zmh_agent agent, *a = &agent;
	uint64_t ref;

	(void)zmh_env(state);
	assert_int_equal(zmh_extra_agent_start(a, NULL), 0);
	assert_int_equal(zmh_connect_opts(a, &o, col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&live), 0);
	assert_int_equal(zmh_child_spawn(&dead), 0);
	assert_int_equal(zm_monitor_pid(cl, live.pid, &ref), 0);
	assert_int_equal(zm_monitor_pid(cl, dead.pid, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_agent_stop_keep(a), 0);
	zmh_client_close(cl);
	assert_int_equal(zmh_child_exit(&dead, 3), 0);
	assert_int_equal(zmh_child_reap(&dead), 0);

	assert_int_equal(zmh_agent_restart_args(a, args), 0);
	/* Both adopted: one armed, one fired while away. */
	assert_int_equal(zmh_map_count(a->pin_dir, live.pid), 1);
	assert_int_equal(zmh_map_count(a->pin_dir, dead.pid), 1);
	assert_int_equal(zmh_map_wait_count_pids(a->pin_dir, (pid_t[]){ live.pid, dead.pid }, 2, 0,
						 GRACE_S * 1000 + ZMH_TIMEOUT_MS),
			 0);
	assert_true(zmh_agent_log_has(a, "adoption period over"));
	assert_int_equal(zmh_agent_stop(a), 0);
}

/* zenmond --cleanup refuses a pin dir a live agent holds, and otherwise
 * removes the pinned maps and links (the programs detach). */
static void test_cleanup_removes_pinned_links_and_refuses_live_agent(void **state)
{
	char path[256], cmd[512];
	struct zmh_agent agent, *a = &agent;
	int status;

	(void)zmh_env(state);
	assert_int_equal(zmh_extra_agent_start(a, NULL), 0);
	assert_int_not_equal(zmh_cleanup_pins(a->pin_dir), 0);
	snprintf(path, sizeof(path), "%s/zm_procs", a->pin_dir);
	assert_int_equal(access(path, F_OK), 0);

	assert_int_equal(zmh_agent_stop_keep(a), 0);
	/* bpftool sees the links pinned there (-f: show pin paths). */
	snprintf(cmd, sizeof(cmd),
		 "bpftool -f link show 2>/dev/null | grep -q '%s/link_zm_process_exit'", a->pin_dir);
	status = system(cmd);
	if (status != 0 && system("command -v bpftool >/dev/null 2>&1") == 0)
		fail_msg("bpftool -f link show does not show %s/link_zm_process_exit", a->pin_dir);

	assert_int_equal(zmh_cleanup_pins(a->pin_dir), 0);
	assert_int_not_equal(access(a->pin_dir, F_OK), 0);
	/* Nothing left to clean: fine too. */
	assert_int_equal(zmh_cleanup_pins(a->pin_dir), 0);
	/* zmh_agent_stop() cleans up too: start once more on the dir, and stop. */
	assert_int_equal(zmh_agent_restart_args(a, NULL), 0);
	assert_int_equal(zmh_agent_stop(a), 0);
}

static long bpf_sys(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/*
 * A map pinned by an agent of another version, with another layout: the
 * new agent says so, creates it afresh, and works.
 */
static void test_layout_mismatch_falls_back_to_a_fresh_map_with_a_log_line(void **state)
{
	struct zmh_collector *col = zmh_collector_new();
	union bpf_attr attr;
	char path[256];
	struct zmh_child c;
	struct zm_client *cl;
	struct zmh_agent agent, *a = &agent;
	uint64_t ref;
	int fd;

	(void)zmh_env(state);
	assert_int_equal(zmh_extra_agent_start(a, NULL), 0);
	assert_int_equal(zmh_agent_stop_keep(a), 0);
	snprintf(path, sizeof(path), "%s/zm_procs", a->pin_dir);
	assert_int_equal(unlink(path), 0);
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_HASH;
	attr.key_size = sizeof(struct zm_proc_key);
	attr.value_size = sizeof(struct zm_proc_watch) + 8; /* "another version" */
	attr.max_entries = 16;
	fd = (int)bpf_sys(BPF_MAP_CREATE, &attr);
	assert_true(fd >= 0);
	memset(&attr, 0, sizeof(attr));
	attr.pathname = (uint64_t)(uintptr_t)path;
	attr.bpf_fd = (uint32_t)fd;
	assert_int_equal(bpf_sys(BPF_OBJ_PIN, &attr), 0);
	close(fd);

	assert_int_equal(zmh_agent_restart_args(a, NULL), 0);
	assert_true(zmh_agent_log_has(a, "does not fit this one"));
	assert_int_equal(zmh_connect(a, "it-layout", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	assert_int_equal(zm_monitor_pid(cl, c.pid, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_map_count(a->pin_dir, c.pid), 1);
	assert_int_equal(zmh_child_exit(&c, 5), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(col->downs[0].status, 5);
	zmh_client_close(cl);
	assert_int_equal(zmh_agent_stop(a), 0);
}

/* The library's side: it reports the loss and the return, and a monitor
 * made while the agent was away is sent once it is back. */
struct conn_events {
	int lost, restored, last_restored;
};

static void on_conn(struct zm_client *c, enum zm_conn_event ev, int arg, void *userdata)
{
	struct conn_events *e = userdata;

	if (ev == ZM_CONN_LOST)
		e->lost++;
	else if (ev == ZM_CONN_RESTORED) {
		e->restored++;
		e->last_restored = arg;
	}
}

static void test_library_reconnects_and_sends_monitors_made_meanwhile(void **state)
{
	struct zmh_collector *col = zmh_collector_new();
	struct conn_events ev = { 0 };
	struct zmh_child c1, c2;
	struct zm_client *cl;
	struct zmh_agent agent, *a = &agent;
	uint64_t r1, r2;
	int fd;

	(void)zmh_env(state);
	assert_int_equal(zmh_extra_agent_start(a, NULL), 0);
	assert_int_equal(zmh_connect(a, "it-meanwhile", col, &cl), 0);
	zm_set_conn_handler(cl, on_conn, &ev);
	fd = zm_fd(cl);
	assert_int_equal(zmh_child_spawn(&c1), 0);
	assert_int_equal(zmh_child_spawn(&c2), 0);
	assert_int_equal(zm_monitor_pid(cl, c1.pid, &r1), 0);
	assert_int_equal(zmh_sync(cl, col), 0);

	assert_int_equal(zmh_agent_stop_keep(a), 0);
	/* The library sees the end on its next dispatch, and keeps trying. */
	assert_int_equal(zm_wait(cl, ZMH_TIMEOUT_MS, zmh_on_down, col), 0);
	assert_int_equal(ev.lost, 1);
	assert_true(zm_reconnecting(cl));
	assert_int_equal(zm_monitor_pid(cl, c2.pid, &r2), 0);
	assert_int_equal(zm_flush(cl), 0);
	assert_int_equal(zm_fd(cl), fd);

	assert_int_equal(zmh_agent_restart_args(a, NULL), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_false(zm_reconnecting(cl));
	assert_int_equal(ev.restored, 1);
	assert_int_equal(ev.last_restored, 2);
	assert_int_equal(zm_fd(cl), fd);
	assert_int_equal(zmh_child_exit(&c1, 1), 0);
	assert_int_equal(zmh_child_exit(&c2, 2), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 2, ZMH_TIMEOUT_MS), 2);
	assert_int_equal(zmh_collector_count(col, r1, NULL), 1);
	assert_int_equal(zmh_collector_count(col, r2, NULL), 1);
	zmh_client_close(cl);
	assert_int_equal(zmh_agent_stop(a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_sigterm_restart_gives_each_of_1000_monitors_one_down),
		ZMH_TEST(test_sigkill_restart_gives_each_of_1000_monitors_one_down),
		ZMH_TEST(test_exit_while_away_keeps_real_reason_after_pid_reuse),
		ZMH_TEST(test_downs_queued_in_killed_agent_come_back_with_real_reason),
		ZMH_TEST(test_unclaimed_adopted_watch_is_removed_after_the_grace_period),
		ZMH_TEST(test_cleanup_removes_pinned_links_and_refuses_live_agent),
		ZMH_TEST(test_layout_mismatch_falls_back_to_a_fresh_map_with_a_log_line),
		ZMH_TEST(test_library_reconnects_and_sends_monitors_made_meanwhile),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
