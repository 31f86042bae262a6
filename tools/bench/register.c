// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zm-bench register: how fast monitors are set up, and what they cost in
 * memory, against a pidfd per target.
 *
 *   monitors/s, 1 connection    N monitors spread over P sleeping processes,
 *                               pipelined over one connection, then one
 *                               SYNC: from the first zm_monitor_pid() to
 *                               the SYNCED in hand
 *   monitors/s, 10 connections  the same N from ten threads, each with its
 *                               own connection, started together
 *   agent CPU per monitor       the agent's CPU time (schedstat) over the
 *                               one-connection measure / N: its own share,
 *                               apart from the client's, which runs on the
 *                               same CPUs
 *   new targets/s               T processes monitored once each: every
 *                               monitor arms a kernel watch. The pidfd
 *                               column is pidfd_open() + EPOLL_CTL_ADD per
 *                               process, what the pidfd watcher pays
 *   agent B/monitor             the agent's RSS growth over the N monitors / N
 *   kernel B/target             the zm_procs map's memory (the "memlock"
 *                               line of its fdinfo, what the kernel charges)
 *                               grown over the T targets / T; for pidfd, the
 *                               kernel's slab growth over T pidfds in one
 *                               epoll set / T, plus 8 B of fd table each
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "zenmon.h"

#define N_CONNS 10
#define SYNC_MS 120000

struct reg_result {
	double mon_per_s, mon_per_s_10, agent_b_per_mon, targets_per_s, kernel_b_per_target;
	double agent_ns_per_mon;
};

/* ---- zenmon ----------------------------------------------------------------- */

/* n monitors over pids[0..n_pids) on a new connection, then a SYNC. */
struct reg_job {
	const char *sock;
	const pid_t *pids;
	long n_pids, n, first;
	struct zm_client *c;   /* kept open until the measure ends */
	int r;
};

static void *reg_job_run(void *arg)
{
	struct reg_job *j = arg;
	struct zm_connect_options o = { .socket_path = j->sock, .name = "bench-register" };
	uint64_t ref;

	j->r = zm_connect_opts(&o, &j->c);
	if (j->r < 0)
		return NULL;
	for (long i = 0; i < j->n && j->r >= 0; i++)
		j->r = zm_monitor_pid(j->c, j->pids[(j->first + i) % j->n_pids], &ref);
	if (j->r >= 0)
		j->r = zm_sync(j->c, SYNC_MS, NULL, NULL);
	if (j->r >= 0 && zm_active_monitors(j->c) != (size_t)j->n)
		j->r = -EPROTO; /* an ERROR came back for some */
	return NULL;
}

/* Register n monitors over n_conns concurrent connections; monitors/s or
 * -errno, and (ret_agent_ns not NULL) the agent's CPU time per monitor
 * meanwhile. The clients are closed when done. */
static double register_over(const struct bench_agent *a, const pid_t *pids, long n_pids, long n,
			    int n_conns, double *ret_agent_ns)
{
	struct reg_job jobs[N_CONNS];
	pthread_t th[N_CONNS];
	uint64_t t0, cpu0;
	double rate;
	int bad = 0;

	cpu0 = bench_proc_cpu_ns(a->pid);
	t0 = bench_now_ns();
	for (int i = 0; i < n_conns; i++) {
		jobs[i] = (struct reg_job){ .sock = a->sock, .pids = pids, .n_pids = n_pids,
					    .n = n / n_conns + (i < n % n_conns),
					    .first = i * (n_pids / n_conns) };
		if (n_conns == 1)
			reg_job_run(&jobs[i]);
		else if (pthread_create(&th[i], NULL, reg_job_run, &jobs[i]) != 0)
			jobs[i].r = -EAGAIN;
	}
	for (int i = 0; n_conns > 1 && i < n_conns; i++)
		if (jobs[i].r != -EAGAIN)
			pthread_join(th[i], NULL);
	rate = n / ((bench_now_ns() - t0) / 1e9);
	if (ret_agent_ns)
		*ret_agent_ns = (double)(bench_proc_cpu_ns(a->pid) - cpu0) / (double)n;
	for (int i = 0; i < n_conns; i++) {
		if (jobs[i].r < 0) {
			fprintf(stderr, "zm-bench register: connection %d: %s\n", i, strerror(-jobs[i].r));
			bad = jobs[i].r;
		}
		zm_close(jobs[i].c);
	}
	return bad ? bad : rate;
}

/* The kernel's charge for the agent's zm_procs map, in bytes. */
static uint64_t procs_map_bytes(const struct bench_agent *a)
{
	char path[160], buf[1024];
	const char *p;
	uint64_t v = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/zm_procs", a->pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (bench_read_text(path, buf, sizeof(buf)) > 0 && (p = strstr(buf, "memlock:")))
		v = strtoull(p + 8, NULL, 10);
	close(fd);
	return v;
}

static int zenmon_run(const struct bench_cfg *cfg, const pid_t *pids, long n_targets, long n_pids,
		      long n, struct reg_result *res)
{
	struct bench_agent a;
	struct reg_job job;
	uint64_t rss0, map0, t0;
	double r;
	int ret;

	ret = bench_agent_start(&a, cfg, NULL);
	if (ret < 0)
		return ret;

	/* Memory first, on the fresh agent: later runs reuse what freed
	 * monitors left in the allocator. The connection stays open while
	 * the RSS is read. */
	job = (struct reg_job){ .sock = a.sock, .pids = pids, .n_pids = n_pids, .n = n };
	rss0 = bench_proc_status_bytes(a.pid, "VmRSS:");
	reg_job_run(&job);
	res->agent_b_per_mon = ((double)bench_proc_status_bytes(a.pid, "VmRSS:") - (double)rss0) /
			       (double)n;
	zm_close(job.c);
	ret = job.r;
	if (ret < 0)
		goto fail_ret;

	/* Many monitors on a few processes: registration proper. */
	r = register_over(&a, pids, n_pids, n, 1, &res->agent_ns_per_mon);
	if (r < 0)
		goto fail;
	res->mon_per_s = r;
	r = register_over(&a, pids, n_pids, n, N_CONNS, NULL);
	if (r < 0)
		goto fail;
	res->mon_per_s_10 = r;

	/* One monitor per process: every one arms a kernel watch. */
	job = (struct reg_job){ .sock = a.sock, .pids = pids, .n_pids = n_targets, .n = n_targets };
	map0 = procs_map_bytes(&a);
	t0 = bench_now_ns();
	reg_job_run(&job);
	res->targets_per_s = n_targets / ((bench_now_ns() - t0) / 1e9);
	res->kernel_b_per_target = ((double)procs_map_bytes(&a) - (double)map0) / n_targets;
	zm_close(job.c);
	ret = job.r;
	if (ret < 0)
		goto fail_ret;
	bench_agent_stop(&a);
	return 0;
fail:
	ret = (int)r;
fail_ret:
	fprintf(stderr, "zm-bench register: zenmon: %s\n", strerror(-ret));
	bench_agent_stop(&a);
	return ret;
}

/* ---- pidfd ----------------------------------------------------------------- */

static uint64_t meminfo_bytes(const char *name)
{
	char buf[8192];
	const char *p;

	if (bench_read_text("/proc/meminfo", buf, sizeof(buf)) < 0 || !(p = strstr(buf, name)))
		return 0;
	return strtoull(p + strlen(name), NULL, 10) * 1024ULL;
}

/* pidfd_open + EPOLL_CTL_ADD for each target: per second, and the kernel
 * memory each holds. 0 or -errno. */
static int pidfd_run(const pid_t *pids, long n, double *ret_per_s, double *ret_b_per_target)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), *fds = calloc((size_t)n, sizeof(int)), r = 0;
	uint64_t slab0, t0;
	long i;

	if (ep < 0 || !fds) {
		r = ep < 0 ? -errno : -ENOMEM;
		goto out;
	}
	slab0 = meminfo_bytes("Slab:");
	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)i };

		fds[i] = (int)syscall(SYS_pidfd_open, pids[i], 0);
		if (fds[i] < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			r = -errno;
			break;
		}
	}
	*ret_per_s = i / ((bench_now_ns() - t0) / 1e9);
	*ret_b_per_target = ((double)meminfo_bytes("Slab:") - (double)slab0) / n + sizeof(void *);
	for (long k = 0; k < i; k++)
		close(fds[k]);
	if (r < 0)
		fprintf(stderr, "zm-bench register: pidfd %ld of %ld: %s%s\n", i, n, strerror(-r),
			r == -EMFILE ? " (raise the fd limit: ulimit -n)" : "");
out:
	if (ep >= 0)
		close(ep);
	free(fds);
	return r;
}

/* ---- the module -------------------------------------------------------------- */

/* "0.17x pidfd", or why there is no pidfd figure (one fd per target). */
static void reg_ratio_note(char *note, size_t len, double zenmon, double pidfd)
{
	if (isnan(pidfd) || pidfd <= 0)
		snprintf(note, len, "pidfd: over RLIMIT_NOFILE %ld", bench_raise_nofile());
	else
		snprintf(note, len, "%.2fx pidfd", zenmon / pidfd);
}

static void add_row(struct bench_table *t, const char *measure, const char *unit, double zenmon,
		    double pidfd, const char *note)
{
	struct bench_row row = { .section = "register" };

	snprintf(row.measure, sizeof(row.measure), "%s", measure);
	snprintf(row.unit, sizeof(row.unit), "%s", unit);
	snprintf(row.note, sizeof(row.note), "%s", note);
	for (int c = 0; c < BCOL_N; c++)
		row.v[c] = BENCH_NA;
	row.v[BCOL_ZENMON] = zenmon;
	row.v[BCOL_PIDFD] = pidfd;
	bench_table_add(t, &row);
}

int bench_register(const struct bench_cfg *cfg, struct bench_table *t)
{
	long n = cfg->full ? 1000000 : 100000, n_pids = 1000, n_targets = cfg->full ? 100000 : 10000;
	double v[6][99], pv[2][99], med[6], pmed[2];
	char measure[72], note[48];
	pid_t *pids = calloc((size_t)n_targets, sizeof(pid_t)), pgid = 0;
	size_t good = 0, pgood = 0;
	int r = 0;

	if (!pids)
		return -1;
	bench_raise_nofile();
	r = bench_make_room_for_procs(n_targets);
	if (r == 0)
		r = bench_spawn_sleepers(pids, n_targets, &pgid);
	if (r < 0) {
		fprintf(stderr, "zm-bench register: cannot start %ld processes: %s\n", n_targets,
			strerror(-r));
		free(pids);
		return -1;
	}
	printf("%ld monitors over %ld sleeping processes (plain pids, pipelined, one SYNC per "
	       "connection); %ld processes monitored once each for new targets\n", n, n_pids,
	       n_targets);
	for (int run = 0; run < cfg->runs; run++) {
		struct reg_result res = { 0 };

		if (cfg->verbose)
			fprintf(stderr, "register: run %d\n", run + 1);
		if (zenmon_run(cfg, pids, n_targets, n_pids, n, &res) == 0) {
			v[0][good] = res.mon_per_s;
			v[1][good] = res.mon_per_s_10;
			v[2][good] = res.agent_b_per_mon;
			v[3][good] = res.targets_per_s;
			v[4][good] = res.kernel_b_per_target;
			v[5][good] = res.agent_ns_per_mon;
			good++;
		} else {
			r = -1;
		}
		if (pidfd_run(pids, n_targets, &pv[0][pgood], &pv[1][pgood]) == 0)
			pgood++;
	}
	for (int m = 0; m < 6; m++)
		med[m] = bench_median(v[m], good);
	for (int m = 0; m < 2; m++)
		pmed[m] = bench_median(pv[m], pgood);

	snprintf(measure, sizeof(measure), "monitors/s, %ldk on %ld procs, 1 connection",
		 n / 1000, n_pids);
	add_row(t, measure, "mon/s", med[0], BENCH_NA, "pipelined, one SYNC");
	snprintf(measure, sizeof(measure), "monitors/s, %ldk on %ld procs, 10 connections",
		 n / 1000, n_pids);
	add_row(t, measure, "mon/s", med[1], BENCH_NA, "ten threads");
	/* What the agent alone would take, were the client not on its CPUs. */
	snprintf(note, sizeof(note), "1e9 / this: %.0fk/s", 1e6 / med[5]);
	add_row(t, "agent CPU per monitor, 1 connection", "ns", med[5], BENCH_NA, note);
	snprintf(measure, sizeof(measure), "new targets/s, %ldk procs, 1 connection",
		 n_targets / 1000);
	reg_ratio_note(note, sizeof(note), med[3], pmed[0]);
	add_row(t, measure, "proc/s", med[3], pmed[0], note);
	snprintf(measure, sizeof(measure), "agent memory per monitor, %ldk monitors", n / 1000);
	add_row(t, measure, "B", med[2], BENCH_NA, "RSS growth / monitors");
	snprintf(measure, sizeof(measure), "kernel memory per target, %ldk targets",
		 n_targets / 1000);
	reg_ratio_note(note, sizeof(note), med[4], pmed[1]);
	add_row(t, measure, "B", med[4], pmed[1], note);

	kill(-pgid, SIGKILL);
	bench_reap(pids, n_targets);
	bench_sleepers_free(pids);
	free(pids);
	return r;
}
