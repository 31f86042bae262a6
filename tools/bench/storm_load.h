/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The fork+exit storm: processes (fork + _exit + waitpid) or threads
 * (pthread_create + exit + join) created and ended as fast as the machine
 * allows. Used to measure what an observer costs the host (storm.c) and as
 * background load for latency under a storm (latency.c).
 */
#ifndef ZM_BENCH_STORM_LOAD_H
#define ZM_BENCH_STORM_LOAD_H

#include <stdint.h>

enum storm_kind { STORM_PROCESSES, STORM_THREADS };

/* Run n creations+exits of kind in the calling process, serially, from one
 * worker. Returns how many per second, or a negative -errno. */
double storm_run(enum storm_kind kind, long n);

struct storm_load;

/* Start `workers` background processes that storm until stopped. 0 or -errno. */
int storm_load_start(enum storm_kind kind, int workers, struct storm_load **ret);
/* Stop and reap them; the exits they made, in total, in *ret_count (may be NULL). */
void storm_load_stop(struct storm_load *l, uint64_t *ret_count);

#endif
