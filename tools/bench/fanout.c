// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zm-bench fanout: how fast the agent fans a mass death out to its
 * subscribers.
 *
 * For each case (N monitors, P target processes, S subscribers) and run:
 * start a private zenmond (own socket and pin dir, rate unlimited, a large
 * --max-batch), fork P processes that sleep in one process group, connect S
 * subscribers, register N monitors spread evenly over the processes and the
 * subscribers (pipelined, then one SYNC each), kill the whole group with one
 * kill(), and read every DOWN back in batches from one thread. Reported, as
 * medians over the runs:
 *
 *   reg/s        monitors registered per second (first MONITOR queued to
 *                the last SYNCED)
 *   DOWNs/s      N / (kill -> last DOWN in hand)
 *   last ms      kill -> last DOWN in hand
 *   ns/DOWN      agent CPU time (user + system) over the same interval / N
 *   peak MiB     the agent's peak RSS (VmHWM) from registration to the last
 *                DOWN (reset through /proc/PID/clear_refs first: loading the
 *                BPF programs makes a startup peak that would hide it)
 *   B/mon        agent RSS growth per monitor: (VmRSS with the N monitors
 *                registered - VmRSS before) / N
 *
 * Every run checks that each monitor got exactly one DOWN; a run that does
 * not is reported and fails the module.
 *
 * The detailed table goes to stdout; the one-table summary keeps the
 * extremes: one process and one subscriber, 100 processes and ten.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "zenmon.h"

#define MAX_SUBS 64
#define WAIT_MS 120000           /* for registration and for delivery */

struct params {
	const struct bench_cfg *cfg;
	unsigned int max_batch;
};

/* One run's figures. */
enum metric {
	M_REG_PER_S,        /* monitors registered per second */
	M_DEATHS_MS,        /* kill -> the last death, by the DOWNs' time_ns */
	M_LAST_MS,          /* kill -> the last DOWN in hand */
	M_DOWNS_PER_S,      /* N / last ms */
	M_NS_PER_DOWN,      /* agent CPU over last ms / N */
	M_PEAK_MIB,         /* agent VmHWM from registration to the last DOWN */
	M_BYTES_PER_MON,    /* (VmRSS registered - VmRSS before) / N */
	N_METRICS
};

struct result {
	double m[N_METRICS];
	bool ok;
};


/* What one subscriber has received. */
struct sub {
	struct zm_client *c;
	uint8_t *seen;           /* [ref]: refs 1..n on a fresh connection */
	size_t n, got, dups, bad;
	uint64_t last_death_ns;  /* the latest time_ns (CLOCK_REALTIME) among its DOWNs */
};

/* ---- one run ------------------------------------------------------------------ */

static void on_batch(struct zm_client *c, const struct zm_down_info *downs, size_t n, void *ud)
{
	struct sub *s = ud;

	(void)c;
	for (size_t i = 0; i < n; i++) {
		uint64_t ref = downs[i].ref;

		if (ref == 0 || ref > s->n || downs[i].reason != ZM_DOWN_KILLED)
			s->bad++;
		else if (s->seen[ref]++)
			s->dups++;
		if (downs[i].time_ns > s->last_death_ns)
			s->last_death_ns = downs[i].time_ns;
	}
	s->got += n;
}

/* Dispatch every subscriber until each has its DOWNs. 0 or -ETIMEDOUT. */
static int collect(struct sub *subs, long n_subs, uint64_t deadline)
{
	struct pollfd pfd[MAX_SUBS];

	for (;;) {
		long done = 0;

		for (long i = 0; i < n_subs; i++) {
			pfd[i].fd = zm_fd(subs[i].c);
			pfd[i].events = POLLIN;
			done += subs[i].got >= subs[i].n;
		}
		if (done == n_subs)
			return 0;
		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		if (poll(pfd, (nfds_t)n_subs, 100) < 0 && errno != EINTR)
			return -errno;
		for (long i = 0; i < n_subs; i++) {
			if (!pfd[i].revents)
				continue;
			int r = zm_dispatch_batch(subs[i].c, on_batch, &subs[i]);

			if (r < 0)
				return r;
		}
	}
}

static int run_once(const struct params *p, long n, long n_procs, long n_subs, struct result *res)
{
	struct sub subs[MAX_SUBS];
	pid_t *pids = calloc((size_t)n_procs, sizeof(pid_t)), pgid = 0;
	struct bench_agent a;
	uint64_t t0, t1, cpu0, cpu1, rss0, rss1, kill_real, last_death = 0;
	long target = 0;
	char batch[16];
	const char *args[] = { "--max-batch", batch, "--max-rate", "0", NULL };
	int r;

	snprintf(batch, sizeof(batch), "%u", p->max_batch);
	memset(res, 0, sizeof(*res));
	memset(subs, 0, sizeof(subs));
	if (!pids)
		return -ENOMEM;
	r = bench_agent_start(&a, p->cfg, args);
	if (r < 0) {
		free(pids);
		return r;
	}
	r = bench_spawn_sleepers(pids, n_procs, &pgid);
	if (r < 0)
		goto out;

	for (long i = 0; i < n_subs; i++) {
		struct zm_connect_options o = { .socket_path = a.sock, .name = "bench",
						.max_batch = p->max_batch };

		subs[i].n = (size_t)(n / n_subs + (i < n % n_subs));
		subs[i].seen = calloc(subs[i].n + 1, 1);
		if (!subs[i].seen) {
			r = -ENOMEM;
			goto out;
		}
		r = zm_connect_opts(&o, &subs[i].c);
		if (r < 0) {
			fprintf(stderr, "zm-bench fanout: connect: %s\n", strerror(-r));
			goto out;
		}
	}

	/* Registration: everything queued (the library sends as it goes),
	 * then one round trip per subscriber. */
	bench_reset_peak_rss(a.pid);
	rss0 = bench_proc_status_bytes(a.pid, "VmRSS:");
	t0 = bench_now_ns();
	for (long i = 0; i < n_subs; i++) {
		for (size_t k = 0; k < subs[i].n; k++) {
			uint64_t ref;

			r = zm_monitor_pid(subs[i].c, pids[target], &ref);
			if (r < 0) {
				fprintf(stderr, "zm-bench fanout: monitor: %s\n", strerror(-r));
				goto out;
			}
			target = (target + 1) % n_procs;
		}
		(void)zm_flush(subs[i].c);
	}
	for (long i = 0; i < n_subs; i++) {
		r = zm_sync(subs[i].c, WAIT_MS, NULL, NULL);
		if (r < 0) {
			fprintf(stderr, "zm-bench fanout: sync: %s\n", strerror(-r));
			goto out;
		}
	}
	t1 = bench_now_ns();
	rss1 = bench_proc_status_bytes(a.pid, "VmRSS:");
	res->m[M_REG_PER_S] = n / ((t1 - t0) / 1e9);
	res->m[M_BYTES_PER_MON] = ((double)rss1 - (double)rss0) / n;

	/* The mass death. */
	cpu0 = bench_proc_cpu_ns(a.pid);
	kill_real = bench_clock_ns(CLOCK_REALTIME);
	t0 = bench_now_ns();
	if (kill(-pgid, SIGKILL) < 0) {
		r = -errno;
		goto out;
	}
	r = collect(subs, n_subs, t0 + WAIT_MS * 1000000ULL);
	t1 = bench_now_ns();
	cpu1 = bench_proc_cpu_ns(a.pid);
	bench_reap(pids, n_procs);
	bench_sleepers_free(pids);
	pgid = 0;
	if (r < 0) {
		fprintf(stderr, "zm-bench fanout: collecting DOWNs: %s\n", strerror(-r));
		goto out;
	}
	for (long i = 0; i < n_subs; i++)
		if (subs[i].last_death_ns > last_death)
			last_death = subs[i].last_death_ns;
	res->m[M_DEATHS_MS] = last_death > kill_real ? (last_death - kill_real) / 1e6 : 0;
	res->m[M_LAST_MS] = (t1 - t0) / 1e6;
	res->m[M_DOWNS_PER_S] = n / ((t1 - t0) / 1e9);
	res->m[M_NS_PER_DOWN] = (double)(cpu1 - cpu0) / n;
	res->m[M_PEAK_MIB] = bench_proc_status_bytes(a.pid, "VmHWM:") / 1048576.0;

	res->ok = true;
	for (long i = 0; i < n_subs; i++) {
		size_t missing = 0;

		for (size_t ref = 1; ref <= subs[i].n; ref++)
			missing += subs[i].seen[ref] == 0;
		if (missing || subs[i].dups || subs[i].bad) {
			fprintf(stderr, "zm-bench fanout: subscriber %ld: %zu missing, %zu duplicate, "
				"%zu wrong DOWNs of %zu\n", i, missing, subs[i].dups, subs[i].bad,
				subs[i].n);
			res->ok = false;
		}
	}
	r = 0;
out:
	if (pgid) {
		kill(-pgid, SIGKILL);
		bench_reap(pids, n_procs);
		bench_sleepers_free(pids);
	}
	for (long i = 0; i < n_subs; i++) {
		zm_close(subs[i].c);
		free(subs[i].seen);
	}
	bench_agent_stop(&a);
	free(pids);
	return r;
}

/* ---- the module ------------------------------------------------------------ */

/* Run one case cfg->runs times; medians in med[]. false when a run failed. */
static bool run_case(const struct params *p, long n, long n_procs, long n_subs,
		     double med[N_METRICS])
{
	double v[N_METRICS][99];
	size_t good = 0;
	bool ok = true;

	for (int run = 0; run < p->cfg->runs; run++) {
		struct result r;

		if (run_once(p, n, n_procs, n_subs, &r) < 0 || !r.ok) {
			ok = false;
			continue;
		}
		for (int m = 0; m < N_METRICS; m++)
			v[m][good] = r.m[m];
		good++;
	}
	for (int m = 0; m < N_METRICS; m++)
		med[m] = bench_median(v[m], good);
	return ok && good;
}

int bench_fanout(const struct bench_cfg *cfg, struct bench_table *t)
{
	static const long sizes[] = { 10000, 100000, 1000000 };
	static const long procs[] = { 1, 100 }, subs[] = { 1, 10 };
	struct params p = { .cfg = cfg, .max_batch = 16384 };
	size_t n_sizes = cfg->full ? 3 : 2;
	bool all_ok = true;

	printf("zenmond --max-batch %u --max-rate 0; subscribers ask max_batch %u and no rate "
	       "limit; N monitors spread over P processes killed together and S subscribers "
	       "read by one thread\n", p.max_batch, p.max_batch);
	printf("%9s %5s %4s | %9s | %9s %9s %11s | %8s %8s %6s | %s\n", "monitors", "procs",
	       "subs", "reg/s", "deaths ms", "last ms", "DOWNs/s", "ns/DOWN", "peak MiB", "B/mon",
	       "exactly once");
	for (size_t si = 0; si < n_sizes; si++) {
		for (size_t pi = 0; pi < 2; pi++) {
			for (size_t ui = 0; ui < 2; ui++) {
				double med[N_METRICS];
				bool ok = run_case(&p, sizes[si], procs[pi], subs[ui], med);
				struct bench_row row = { .section = "fan-out", .unit = "DOWN/s" };

				all_ok = all_ok && ok;
				printf("%9ld %5ld %4ld | %9.0f | %9.1f %9.1f %11.0f | %8.0f %8.1f %6.0f | %s\n",
				       sizes[si], procs[pi], subs[ui], med[M_REG_PER_S],
				       med[M_DEATHS_MS], med[M_LAST_MS], med[M_DOWNS_PER_S],
				       med[M_NS_PER_DOWN], med[M_PEAK_MIB], med[M_BYTES_PER_MON],
				       ok ? "yes" : "NO (see above)");
				if (pi != ui)
					continue;
				snprintf(row.measure, sizeof(row.measure),
					 "%ldk monitors, %ld proc, %ld sub: DOWNs/s", sizes[si] / 1000,
					 procs[pi], subs[ui]);
				for (int c = 0; c < BCOL_N; c++)
					row.v[c] = BENCH_NA;
				row.v[BCOL_ZENMON] = med[M_DOWNS_PER_S];
				snprintf(row.note, sizeof(row.note), "all in %.0f ms%s", med[M_LAST_MS],
					 ok ? "" : ", NOT exactly once");
				bench_table_add(t, &row);
			}
		}
	}
	return all_ok ? 0 : -1;
}
