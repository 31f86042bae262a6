/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * zm-bench: what the benchmark modules share.
 *
 * One binary (build/zm-bench) runs every module and prints one table; each
 * module (storm, latency, massdeath, register, fanout) is also a subcommand
 * of its own. A module measures zenmon and the baselines it applies to in the
 * same run and adds one row per measure to the table.
 */
#ifndef ZM_BENCH_H
#define ZM_BENCH_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

/* ---- configuration ------------------------------------------------------- */

struct bench_cfg {
	const char *zenmond;   /* the agent binary */
	const char *out_dir;   /* data files and PNG plots go here */
	bool full;             /* FULL=1: the large sizes */
	int runs;              /* repetitions whose median is reported */
	bool verbose;
};

/* ---- the table ----------------------------------------------------------- */

/* The table's value columns: zenmon and what users would pick instead. */
enum bench_col {
	BCOL_ZENMON,
	BCOL_PIDFD,
	BCOL_CNPROC,
	BCOL_EXITSNOOP,
	BCOL_NONE,       /* no observer: the physical limit */
	BCOL_N
};

#define BENCH_NA NAN     /* a column that does not apply to a row */

struct bench_row {
	char section[24];    /* "cost", "latency", "mass death", "register", "fan-out" */
	char measure[72];    /* what and under which parameters */
	char unit[16];       /* "proc/s", "us", "ms", "mon/s", "B", ... */
	double v[BCOL_N];    /* medians; BENCH_NA where it does not apply */
	char note[48];       /* zenmon against the others, e.g. "-1.2% vs none" */
};

struct bench_table {
	struct bench_row *rows;
	size_t n, cap;
};

/* Append a row (copied). Never fails: a row that cannot be stored is printed
 * to stderr instead. */
void bench_table_add(struct bench_table *t, const struct bench_row *row);
void bench_table_print(const struct bench_table *t, FILE *f);
void bench_table_free(struct bench_table *t);

/* ---- numbers ------------------------------------------------------------- */

uint64_t bench_clock_ns(clockid_t id);
uint64_t bench_now_ns(void);                      /* CLOCK_MONOTONIC */
double bench_median(double *v, size_t n);        /* sorts v */
/* The p-th percentile (0..100) of v, nearest rank; sorts v. */
double bench_percentile(double *v, size_t n, double p);
int bench_parse_size(const char *s, long *ret);  /* "10k", "1M", "250" */

/* ---- the machine and the processes --------------------------------------- */

int bench_read_text(const char *path, char *buf, size_t cap);   /* bytes or -errno */
int bench_write_text(const char *path, const char *text);       /* 0 or -errno */
void bench_print_machine(FILE *f, const char *what);
/* CPU time (user + system) of every thread of pid, in ns (schedstat). */
uint64_t bench_proc_cpu_ns(pid_t pid);
/* A "Name:   N kB" line of /proc/PID/status, in bytes; 0 if missing. */
uint64_t bench_proc_status_bytes(pid_t pid, const char *name);
void bench_reset_peak_rss(pid_t pid);
/* Raise RLIMIT_NOFILE to its hard limit (and the hard limit to nr_open when
 * root). Returns the new soft limit. */
long bench_raise_nofile(void);

/*
 * Make room for n more processes: raise kernel.pid_max and
 * kernel.threads-max when they are too small. The old values are restored by
 * bench_restore_sysctls() (also registered with atexit). 0 or -errno.
 */
int bench_make_room_for_procs(long n);
void bench_restore_sysctls(void);

/* n processes in one new process group (its id in *ret_pgid), asleep until
 * killed; they die with the bench (PDEATHSIG). Light: clone(CLONE_VM)
 * children on 4 KiB stacks (see bench_util.c), ~10,000/s here. 0 or -errno;
 * on failure the ones spawned are killed and reaped. */
int bench_spawn_sleepers(pid_t *pids, long n, pid_t *ret_pgid);
/* Wait for each of pids (killed before). */
void bench_reap(const pid_t *pids, long n);
/* Release what a set of sleepers used, once all are reaped. */
void bench_sleepers_free(const pid_t *pids);

/* ---- a private zenmond --------------------------------------------------- */

struct bench_agent {
	pid_t pid;
	char dir[64], sock[96], log[96], pin_dir[96];
};

/* Start cfg->zenmond on a private socket and pin dir with the extra
 * arguments (NULL-terminated, may be NULL) and wait until it accepts
 * connections. 0 or -errno (its log is printed). */
int bench_agent_start(struct bench_agent *a, const struct bench_cfg *cfg,
		      const char *const *extra_args);
/* SIGTERM, wait, remove its directory. */
void bench_agent_stop(struct bench_agent *a);

/* ---- BPF program statistics (kernel.bpf_stats_enabled) ------------------- */

/* Turn kernel.bpf_stats_enabled on (restored at exit). 0 or -errno. */
int bench_bpf_stats_enable(void);

struct bench_prog_stats {
	uint64_t run_time_ns, run_cnt;
};

/* Sum of run_time_ns and run_cnt over the loaded programs whose name is
 * name (the kernel's 15-character name). 0 or -errno. */
int bench_prog_stats(const char *name, struct bench_prog_stats *ret);

/* ---- modules ------------------------------------------------------------- */

/* Each runs its measures (quick or full per cfg), adds its rows, and returns
 * 0, or -1 when a check failed (a lost or duplicated DOWN...), after saying
 * what on stderr. */
int bench_storm(const struct bench_cfg *cfg, struct bench_table *t);
int bench_latency(const struct bench_cfg *cfg, struct bench_table *t);
int bench_massdeath(const struct bench_cfg *cfg, struct bench_table *t);
int bench_register(const struct bench_cfg *cfg, struct bench_table *t);
int bench_fanout(const struct bench_cfg *cfg, struct bench_table *t);

#endif
