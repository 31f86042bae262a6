// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The fork+exit storm (storm_load.h).
 *
 * A process storm is fork(), _exit(0) in the child, waitpid() in the
 * parent; a thread storm is pthread_create() of a thread that returns at
 * once, then pthread_join(). One at a time: the rate is then the cost of
 * one creation and one exit, observers included, and not how well the
 * machine overlaps many.
 *
 * The background load (storm_load_start()) runs the same loop in worker
 * processes. Each counts its exits in a shared anonymous page and polls a
 * stop word there, so that stopping one never interrupts a fork or leaves a
 * child unreaped.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storm_load.h"

#define STORM_LOAD_STOP_WAIT_MS 5000   /* for a worker to notice the stop word */

/* What the workers share with their parent: one page, MAP_SHARED. */
struct storm_load_shared {
	int stop;                 /* set by storm_load_stop() */
	uint64_t count[];         /* exits made, one slot per worker */
};

struct storm_load {
	struct storm_load_shared *sh;
	size_t sh_len;
	pid_t *pids;
	int workers;
};

static uint64_t storm_load_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *storm_load_thread_fn(void *arg)
{
	return arg;
}

/* One process created and gone: 0 or -errno. */
static int storm_load_one_process(void)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(0);
	while (waitpid(pid, NULL, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* One thread created and gone: 0 or -errno (pthread returns the errno). */
static int storm_load_one_thread(void)
{
	pthread_t th;
	int r = pthread_create(&th, NULL, storm_load_thread_fn, NULL);

	if (r)
		return -r;
	r = pthread_join(th, NULL);
	return r ? -r : 0;
}

static int storm_load_one(enum storm_kind kind)
{
	return kind == STORM_THREADS ? storm_load_one_thread() : storm_load_one_process();
}

double storm_run(enum storm_kind kind, long n)
{
	uint64_t t0, t1;

	if (n <= 0 || (kind != STORM_PROCESSES && kind != STORM_THREADS))
		return -EINVAL;
	t0 = storm_load_now_ns();
	for (long i = 0; i < n; i++) {
		int r = storm_load_one(kind);

		if (r < 0)
			return r;
	}
	t1 = storm_load_now_ns();
	return (double)n / ((double)(t1 - t0 ? t1 - t0 : 1) / 1e9);
}

/* A worker's life: storm until told to stop. A failed creation (EAGAIN when
 * the host is out of pids) is retried after a pause rather than ending the
 * load early, which would leave the measurement it backs unloaded. */
static __attribute__((noreturn)) void storm_load_worker(enum storm_kind kind,
							struct storm_load_shared *sh, int slot)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
		if (storm_load_one(kind) < 0) {
			usleep(1000);
			continue;
		}
		__atomic_store_n(&sh->count[slot], sh->count[slot] + 1, __ATOMIC_RELAXED);
	}
	_exit(0);
}

static void storm_load_free(struct storm_load *l)
{
	if (l->sh)
		munmap(l->sh, l->sh_len);
	free(l->pids);
	free(l);
}

int storm_load_start(enum storm_kind kind, int workers, struct storm_load **ret)
{
	struct storm_load *l;

	if (workers <= 0 || workers > 4096 || !ret ||
	    (kind != STORM_PROCESSES && kind != STORM_THREADS))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->pids = calloc((size_t)workers, sizeof(*l->pids));
	l->sh_len = sizeof(*l->sh) + (size_t)workers * sizeof(l->sh->count[0]);
	l->sh = mmap(NULL, l->sh_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (l->sh == MAP_FAILED) {
		l->sh = NULL;
		storm_load_free(l);
		return -ENOMEM;
	}
	if (!l->pids) {
		storm_load_free(l);
		return -ENOMEM;
	}
	for (int i = 0; i < workers; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			int r = -errno;

			storm_load_stop(l, NULL);
			return r;
		}
		if (pid == 0)
			storm_load_worker(kind, l->sh, i);
		l->pids[l->workers++] = pid;
	}
	*ret = l;
	return 0;
}

void storm_load_stop(struct storm_load *l, uint64_t *ret_count)
{
	uint64_t deadline, total = 0;

	if (!l)
		return;
	__atomic_store_n(&l->sh->stop, 1, __ATOMIC_RELAXED);
	/* A worker stuck in a fork for seconds (memory pressure) is killed:
	 * its child, if any, is reparented and reaped by init. */
	deadline = storm_load_now_ns() + STORM_LOAD_STOP_WAIT_MS * 1000000ULL;
	for (int i = 0; i < l->workers; i++) {
		for (;;) {
			pid_t r = waitpid(l->pids[i], NULL, WNOHANG);

			if (r == l->pids[i] || (r < 0 && errno != EINTR))
				break;
			if (storm_load_now_ns() > deadline) {
				kill(l->pids[i], SIGKILL);
				waitpid(l->pids[i], NULL, 0);
				break;
			}
			usleep(1000);
		}
		total += __atomic_load_n(&l->sh->count[i], __ATOMIC_RELAXED);
	}
	if (ret_count)
		*ret_count = total;
	storm_load_free(l);
}
