/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Races: pid reuse never fires the wrong monitor, and monitors set on
 * processes dying at that very moment each get exactly one DOWN.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REUSE_ATTEMPTS 200

/*
 * Spawn P, let it live long enough that a successor cannot share its start
 * tick (ticks are 10 ms), end it with exit(code) and reap it.
 */
static void spawn_and_end(struct zmh_child *p, int code)
{
	assert_int_equal(zmh_child_spawn(p), 0);
	zmh_sleep_ms(30);
	assert_int_equal(zmh_child_exit(p, code), 0);
	assert_int_equal(zmh_child_reap(p), 0);
}

static void spawn_successor(struct zmh_child *n, const struct zmh_child *p)
{
	int r = zmh_child_spawn_with_pid(n, p->pid, REUSE_ATTEMPTS);

	if (r == -EAGAIN)
		fail_msg("could not get pid %d again after %d tries (something else keeps forking)",
			 p->pid, REUSE_ATTEMPTS);
	assert_int_equal(r, 0);
	assert_int_equal(n->pid, p->pid);
	if (n->start_ticks == p->start_ticks)
		fail_msg("the successor has the same start time as P (%llu): cannot test",
			 (unsigned long long)p->start_ticks);
}

static void test_reused_pid_with_old_start_reports_noproc(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child p, n;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-reuse", col, &cl), 0);
	spawn_and_end(&p, 1);
	spawn_successor(&n, &p);

	assert_int_equal(zm_monitor_pid_start(cl, p.pid, p.start_ticks, &ref), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_NOPROC);
	assert_int_equal(d->pid, p.pid);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, n.pid), 0);

	/* the successor's death fires nothing */
	assert_int_equal(zmh_child_exit(&n, 2), 0);
	assert_int_equal(zmh_child_reap(&n), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 1);
}

static void test_monitor_on_successor_fires_only_when_successor_dies(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child p, n;
	uint64_t pref = 0, nref_start = 0, nref_pid = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-reuse", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&p), 0);
	zmh_sleep_ms(30);
	assert_int_equal(zm_monitor_pid_start(cl, p.pid, p.start_ticks, &pref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_child_exit(&p, 1), 0);
	assert_int_equal(zmh_child_reap(&p), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, pref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 1);

	spawn_successor(&n, &p);
	assert_int_equal(zm_monitor_pid_start(cl, n.pid, n.start_ticks, &nref_start), 0);
	assert_int_equal(zm_monitor_pid(cl, n.pid, &nref_pid), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 1);
	assert_int_equal(zmh_map_count(env->agent.pin_dir, n.pid), 1);

	assert_int_equal(zmh_child_exit(&n, 2), 0);
	assert_int_equal(zmh_child_reap(&n), 0);
	assert_int_equal(zmh_wait_downs(cl, col, 3, ZMH_TIMEOUT_MS), 3);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(zmh_collector_count(col, pref, NULL), 1);
	assert_int_equal(zmh_collector_count(col, nref_start, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 2);
	assert_int_equal(d->start_ticks, n.start_ticks);
	assert_int_equal(zmh_collector_count(col, nref_pid, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 2);
	assert_int_equal(d->start_ticks, n.start_ticks);
}

static void test_pid_reused_before_dispatch_down_reports_old_process(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	struct zmh_child p, n;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-reuse", col, &cl), 0);
	assert_int_equal(zmh_child_spawn(&p), 0);
	zmh_sleep_ms(30);
	assert_int_equal(zm_monitor_pid_start(cl, p.pid, p.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);

	/* kill P, reap it and hand its pid to a new process before reading */
	assert_int_equal(zmh_child_kill(&p, SIGKILL), 0);
	assert_int_equal(zmh_child_reap(&p), 0);
	spawn_successor(&n, &p);

	assert_int_equal(zmh_wait_downs(cl, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(col, ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_KILLED);
	assert_int_equal(d->signal, SIGKILL);
	assert_int_equal(d->pid, p.pid);
	assert_int_equal(d->start_ticks, p.start_ticks);

	assert_int_equal(zmh_child_exit(&n, 3), 0);
	assert_int_equal(zmh_child_reap(&n), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->n, 1);
}

/* ---- a storm of monitors on processes dying right then ----------------- */

#define STORM_N 2000

struct storm_ent {
	pid_t pid;
	int code;
	uint64_t start;
	uint64_t ref;
	int wstatus;
};

struct reaper {
	int rfd;                 /* indexes of children to reap, in order */
	struct storm_ent *ents;
	int failed;
};

static void *reaper_main(void *arg)
{
	struct reaper *r = arg;
	int idx;

	while (read(r->rfd, &idx, sizeof(idx)) == (ssize_t)sizeof(idx)) {
		if (waitpid(r->ents[idx].pid, &r->ents[idx].wstatus, 0) != r->ents[idx].pid)
			r->failed++;
	}
	return NULL;
}

static int cmp_ref(const void *a, const void *b)
{
	uint64_t x = ((const struct storm_ent *)a)->ref, y = ((const struct storm_ent *)b)->ref;

	return x < y ? -1 : x > y;
}

static struct storm_ent *find_ref(struct storm_ent *sorted, size_t n, uint64_t ref)
{
	struct storm_ent key = { .ref = ref };

	return bsearch(&key, sorted, n, sizeof(*sorted), cmp_ref);
}

static void test_storm_of_dying_processes_gets_exactly_one_down_each(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct storm_ent *ents = calloc(STORM_N, sizeof(*ents));
	unsigned int *downs_per = calloc(STORM_N, sizeof(unsigned int));
	struct reaper rp = { .ents = ents };
	size_t exited = 0, noproc = 0;
	unsigned int seed = (unsigned int)time(NULL);
	struct zm_client *cl;
	pthread_t reaper_thread;
	int pipefd[2];
	int64_t t0;

	assert_non_null(ents);
	assert_non_null(downs_per);
	print_message("storm seed %u\n", seed);
	assert_int_equal(zmh_connect(&env->agent, "it-storm", col, &cl), 0);
	assert_int_equal(pipe(pipefd), 0);
	rp.rfd = pipefd[0];
	assert_int_equal(pthread_create(&reaper_thread, NULL, reaper_main, &rp), 0);
	t0 = zmh_mono_ms();

	for (int i = 0; i < STORM_N; i++) {
		long delay_ns = (long)(rand_r(&seed) % 2001) * 1000L; /* 0..2 ms */
		int code = (i * 37 + 11) % 256;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			struct timespec ts = { 0, delay_ns };

			if (delay_ns)
				nanosleep(&ts, NULL);
			_exit(code);
		}
		ents[i].pid = pid;
		ents[i].code = code;
		/* Not reaped yet (the reaper waits for our word), so the pid is
		 * still this child's, alive or zombie: the start time is its own. */
		if (zmh_read_start_ticks(pid, &ents[i].start) < 0)
			fail_msg("cannot read the start time of unreaped child %d", pid);
		assert_int_equal(zm_monitor_pid_start(cl, pid, ents[i].start, &ents[i].ref), 0);
		/* Send it now, so that it lands while the child runs, exits or
		 * lies a zombie, more often than after it is reaped. */
		{
			int r = zm_flush(cl);

			assert_true(r == 0 || r == -EAGAIN);
		}
		/* Now it may be reaped, before or after the MONITOR lands. */
		assert_int_equal(write(pipefd[1], &i, sizeof(i)), (ssize_t)sizeof(i));
		if (i % 32 == 31) {
			int r = zm_dispatch(cl, zmh_on_down, col);

			assert_true(r >= 0 || r == -EAGAIN);
		}
	}
	close(pipefd[1]);
	print_message("storm: %d children forked and monitored in %lld ms\n", STORM_N,
		      (long long)(zmh_mono_ms() - t0));

	if (zmh_wait_downs(cl, col, STORM_N, 6 * ZMH_TIMEOUT_MS) != STORM_N)
		fail_msg("got %zu DOWNs for %d monitors", col->n, STORM_N);
	pthread_join(reaper_thread, NULL);
	close(pipefd[0]);
	assert_int_equal(rp.failed, 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->nerr, 0);

	/* every DOWN names a ref we set, and each ref exactly once */
	qsort(ents, STORM_N, sizeof(*ents), cmp_ref);
	for (size_t i = 0; i < col->n; i++) {
		const struct zm_down_info *d = &col->downs[i];
		struct storm_ent *e = find_ref(ents, STORM_N, d->ref);

		if (!e)
			fail_msg("DOWN for unknown ref %llu", (unsigned long long)d->ref);
		downs_per[e - ents]++;
		if (downs_per[e - ents] > 1)
			fail_msg("ref %llu (pid %d) got a second DOWN", (unsigned long long)d->ref, e->pid);
		assert_int_equal(d->pid, e->pid);
		switch (d->reason) {
		case ZM_DOWN_EXITED:
			exited++;
			if (d->status != e->code)
				fail_msg("pid %d exited %d but its DOWN says %d", e->pid, e->code,
					 d->status);
			assert_int_equal(d->start_ticks, e->start);
			break;
		case ZM_DOWN_NOPROC:
			noproc++;
			break;
		default:
			fail_msg("pid %d exited %d but its DOWN says %s (signal %d)", e->pid, e->code,
				 zm_reason_str(d->reason), d->signal);
		}
		assert_true(WIFEXITED(e->wstatus));
		assert_int_equal(WEXITSTATUS(e->wstatus), e->code);
	}
	for (int i = 0; i < STORM_N; i++)
		if (downs_per[i] != 1)
			fail_msg("ref %llu (pid %d) got %u DOWNs", (unsigned long long)ents[i].ref,
				 ents[i].pid, downs_per[i]);
	print_message("storm: %zu exited, %zu noproc, all in %lld ms\n", exited, noproc,
		      (long long)(zmh_mono_ms() - t0));
	assert_int_equal(zm_active_monitors(cl), 0);
	{
		pid_t *pids = malloc(STORM_N * sizeof(pid_t));

		assert_non_null(pids);
		for (int i = 0; i < STORM_N; i++)
			pids[i] = ents[i].pid;
		assert_int_equal(zmh_map_wait_count_pids(env->agent.pin_dir, pids, STORM_N, 0,
							 ZMH_TIMEOUT_MS), 0);
		free(pids);
	}
	free(ents);
	free(downs_per);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_reused_pid_with_old_start_reports_noproc),
		ZMH_TEST(test_monitor_on_successor_fires_only_when_successor_dies),
		ZMH_TEST(test_pid_reused_before_dispatch_down_reports_old_process),
		ZMH_TEST(test_storm_of_dying_processes_gets_exactly_one_down_each),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
