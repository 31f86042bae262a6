// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zm-bench massdeath: N watched processes killed at once.
 *
 * For each N (1,000 and 10,000; 100,000 with --full) and run, each observer
 * in turn gets a fresh set of N sleeping processes in one process group,
 * learns of their deaths after one kill(-pgid, SIGKILL), and is timed from
 * just before that kill() to the moment the last notification is in its
 * hands:
 *
 *   zenmon   a private zenmond, one subscriber (max_batch 16384), monitors
 *            pipelined then one SYNC; DOWNs taken with zm_dispatch_batch()
 *            from a poll() loop; every monitor must get exactly one DOWN,
 *            reason killed, signal SIGKILL
 *   pidfd    one pidfd per target in one epoll set (base_pidfd.h)
 *   cnproc   the proc connector with the default socket buffer, which is
 *            what users get (base_cnproc.h)
 *   none     no observer: kill -> the last waitpid() returns, the kernel's
 *            own time to kill and reap N processes
 *
 * The observers do not reap their targets until they have heard of every
 * one (a pidfd turns readable, the exit tracepoint and the proc connector
 * fire, at exit, before the reap): reaping is part of the measure only for
 * "none". A target an observer has not reported once every target has
 * exited and no news came for MD_QUIET_MS is counted lost; zenmon must lose
 * none.
 *
 * Rows: "N=...: kill -> last news" (ms) and "N=...: lost" (count), medians
 * over the runs. Data in OUT/massdeath.dat, plot in OUT/massdeath.png.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "base_cnproc.h"
#include "base_pidfd.h"
#include "zenmon.h"

#define MD_QUIET_MS 2000          /* no news for this long: the rest is lost */
#define MD_COLLECT_MAX_MS 300000  /* a target that never dies ends the wait too */
#define MD_SYNC_MS 120000         /* registration round trip */
#define MD_MAX_BATCH 16384        /* DOWNs per frame: a subscriber that expects floods */
#define MD_MAX_BATCH_S "16384"
#define MD_FD_SLACK 256           /* fds the bench holds beside the pidfds */
#define MD_BIG_N 100000           /* --full only */
#define MD_BIG_RUNS 3             /* at most, at MD_BIG_N: 4 x 100,000 targets a run */

enum md_obs { MD_ZENMON, MD_PIDFD, MD_CNPROC, MD_NONE, MD_N_OBS };

static const enum bench_col md_col[MD_N_OBS] = {
	[MD_ZENMON] = BCOL_ZENMON, [MD_PIDFD] = BCOL_PIDFD,
	[MD_CNPROC] = BCOL_CNPROC, [MD_NONE] = BCOL_NONE,
};
static const char *const md_name[MD_N_OBS] = {
	[MD_ZENMON] = "zenmon", [MD_PIDFD] = "pidfd", [MD_CNPROC] = "cnproc", [MD_NONE] = "none",
};

/* One observer's run. */
struct md_result {
	double last_ms;        /* kill -> the last notification in hand; NAN: not measured */
	double first_ms;       /* kill -> the first one */
	double lost;           /* targets never reported; NAN for "none" */
	uint64_t enobufs;      /* cn_proc: recv()s that failed with ENOBUFS */
	double spawn_ms;       /* spawning the N targets */
	double agent_cpu_ms;   /* zenmon: the agent's CPU time from kill to the last DOWN */
	double deaths_ms;      /* zenmon: kill -> the last death, by the DOWNs' time_ns */
};

/* What an observer has reported about the targets pids[0..n-1]. */
struct md_news {
	const pid_t *pids;
	long n;
	uint8_t *seen;         /* [i]: reports about pids[i] */
	long got, dups, bad;
	long got_in_time;      /* got when md_collect() gave up waiting */
	uint64_t first_ns, last_ns; /* CLOCK_MONOTONIC of the first and latest report */
	uint64_t last_death;   /* zenmon: the latest time_ns (CLOCK_REALTIME) of a death */
};

/* ---- reports ----------------------------------------------------------------- */

static void md_note(struct md_news *s, uint64_t i, pid_t pid, bool killed, uint64_t seen_ns)
{
	if (i >= (uint64_t)s->n || s->pids[i] != pid || !killed) {
		s->bad++;
		return;
	}
	if (s->seen[i]++) {
		s->dups++;
		return;
	}
	s->got++;
	if (!s->first_ns || seen_ns < s->first_ns)
		s->first_ns = seen_ns;
	if (seen_ns > s->last_ns)
		s->last_ns = seen_ns;
}

/* A baseline's wait status: -1 when it does not know, which is no error. */
static bool md_status_killed(int ws)
{
	return ws == -1 || (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
}

static void md_on_pidfd(uint64_t tag, pid_t pid, int ws, uint64_t seen_ns, void *ud)
{
	md_note(ud, tag, pid, md_status_killed(ws), seen_ns);
}

static void md_on_cnproc(uint64_t tag, pid_t pid, int ws, uint64_t seen_ns, void *ud)
{
	md_note(ud, tag, pid, md_status_killed(ws), seen_ns);
}

/* Refs count up from 1 on a fresh connection, and the run checks that the
 * i-th monitor got ref i + 1: so a DOWN's ref names its target. */
static void md_on_batch(struct zm_client *c, const struct zm_down_info *downs, size_t n, void *ud)
{
	uint64_t now = bench_now_ns();

	for (size_t k = 0; k < n; k++) {
		const struct zm_down_info *d = &downs[k];
		bool killed = d->kind == ZM_KIND_PROCESS && d->reason == ZM_DOWN_KILLED &&
			      d->signal == SIGKILL;

		md_note(ud, d->ref - 1, d->pid, killed, now);
		if (d->time_ns > ((struct md_news *)ud)->last_death)
			((struct md_news *)ud)->last_death = d->time_ns;
	}
}

/* A DOWN handed over by zm_status() while the run asks why some are missing. */
static void md_on_late_down(struct zm_client *c, const struct zm_down_info *d, void *ud)
{
	md_on_batch(c, d, 1, ud);
}

/* A DOWN during registration: a target died before the kill. */
static void md_on_early_down(struct zm_client *c, const struct zm_down_info *d, void *ud)
{
	((struct md_news *)ud)->bad++;
}

static void md_on_error(struct zm_client *c, const struct zm_error_info *e, void *ud)
{
	fprintf(stderr, "zm-bench massdeath: zenmond error on ref %llu: %s (%s)\n",
		(unsigned long long)e->ref, strerror(e->error), e->message ? e->message : "");
	((struct md_news *)ud)->bad++;
}

/* Whether every target not reported yet has exited (is a zombie: nobody
 * reaps them while an observer listens). */
static bool md_rest_exited(const struct md_news *s)
{
	for (long i = 0; i < s->n; i++) {
		siginfo_t si = { .si_pid = 0 };

		if (s->seen[i])
			continue;
		if (waitid(P_PID, (id_t)s->pids[i], &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == 0)
			return false;
	}
	return true;
}

/*
 * Let poll_once(obs, timeout_ms, s) report until every target is in or no
 * report came for MD_QUIET_MS since the last target exited. poll_once
 * returns how many it reported or -errno. 0 or -errno.
 *
 * Why not simply MD_QUIET_MS after the last report: the kill wakes all N
 * targets at once, and the scheduler (EEVDF) runs a task woken later, such
 * as an observer woken by the first death, after most of them. On 2 CPUs
 * with 10,000 fork()ed targets neither the agent nor this process ran for
 * seconds; when this process finally did, its poll() had timed out and the
 * agent had not had a turn yet. So the quiet period that decides what is lost
 * starts again once every target is dead and the machine is free.
 */
static int md_collect(int (*poll_once)(void *obs, int timeout_ms, struct md_news *s), void *obs,
		      struct md_news *s)
{
	uint64_t quiet_end = bench_now_ns() + MD_QUIET_MS * 1000000ULL;
	uint64_t give_up = bench_now_ns() + MD_COLLECT_MAX_MS * 1000000ULL;
	bool all_exited = false;
	int r = 0;

	while (s->got < s->n) {
		uint64_t now = bench_now_ns();
		long got = s->got;

		if (now >= quiet_end) {
			if (all_exited || now >= give_up)
				break;
			all_exited = md_rest_exited(s);
			quiet_end = bench_now_ns() + MD_QUIET_MS * 1000000ULL;
			continue;
		}
		r = poll_once(obs, (int)((quiet_end - now) / 1000000) + 1, s);
		if (r < 0 && r != -EINTR)
			break;
		r = 0;
		if (s->got > got)
			quiet_end = bench_now_ns() + MD_QUIET_MS * 1000000ULL;
	}
	s->got_in_time = s->got;
	return r;
}

static int md_poll_zenmon(void *obs, int timeout_ms, struct md_news *s)
{
	struct pollfd pfd = { .fd = zm_fd(obs), .events = POLLIN };

	if (poll(&pfd, 1, timeout_ms) < 0)
		return -errno;
	if (!pfd.revents)
		return 0;
	return zm_dispatch_batch(obs, md_on_batch, s);
}

static int md_poll_pidfd(void *obs, int timeout_ms, struct md_news *s)
{
	return pidfd_watcher_poll(obs, timeout_ms, md_on_pidfd, s);
}

static int md_poll_cnproc(void *obs, int timeout_ms, struct md_news *s)
{
	return cnproc_listener_poll(obs, timeout_ms, md_on_cnproc, s);
}

/* ---- one observer, one run ---------------------------------------------------- */

/* The kill, and the time just before it. 0 or -errno. */
static int md_kill(pid_t pgid, uint64_t *ret_t0)
{
	*ret_t0 = bench_now_ns();
	return kill(-pgid, SIGKILL) < 0 ? -errno : 0;
}

static void md_times(const struct md_news *s, uint64_t t0, struct md_result *res)
{
	if (!s->got)
		return;
	res->first_ms = (double)(s->first_ns - t0) / 1e6;
	res->last_ms = (double)(s->last_ns - t0) / 1e6;
}

/* Say what the agent counted, for a run where DOWNs are missing. */
static void md_print_status(struct zm_client *c, struct md_news *s)
{
	char *text = NULL;
	long got = s->got;
	int r;

	r = zm_status(c, 5000, &text, md_on_late_down, s);
	if (r < 0) {
		fprintf(stderr, "zm-bench massdeath: zenmond status: %s\n", strerror(-r));
		return;
	}
	fprintf(stderr, "zm-bench massdeath: %ld of %ld DOWNs, none for %d ms after the "
		"last exit (%ld more during STATUS); zenmond says:\n%s", got, s->n, MD_QUIET_MS,
		s->got - got, text);
	free(text);
}

/* The value of a "name value" line of the agent's status, or -1. */
static long long md_status_value(const char *text, const char *name)
{
	size_t len = strlen(name);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, name, len) == 0 && p[len] == ' ')
			return strtoll(p + len + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* For -v: how the kernel side fared (a full ring buffer costs a map scan). */
static void md_print_kernel_side(struct zm_client *c, struct md_news *s)
{
	char *text = NULL;

	if (zm_status(c, 5000, &text, md_on_late_down, s) < 0)
		return;
	fprintf(stderr, "massdeath: zenmond: ringbuf_dropped %lld, kernel_wakeups %lld, "
		"kernel_matched %lld\n", md_status_value(text, "ringbuf_dropped"),
		md_status_value(text, "kernel_wakeups"), md_status_value(text, "kernel_matched"));
	free(text);
}

static int md_watch_zenmon(const struct bench_cfg *cfg, pid_t pgid, struct md_news *s,
			   struct md_result *res)
{
	static const char *const args[] = { "--max-batch", MD_MAX_BATCH_S, NULL };
	struct zm_connect_options o = { .name = "bench-massdeath", .max_batch = MD_MAX_BATCH };
	struct zm_client *c = NULL;
	struct bench_agent a;
	uint64_t t0, cpu0, cpu1, kill_real;
	int r;

	r = bench_agent_start(&a, cfg, args);
	if (r < 0)
		return r;
	o.socket_path = a.sock;
	r = zm_connect_opts(&o, &c);
	if (r < 0) {
		fprintf(stderr, "zm-bench massdeath: connect: %s\n", strerror(-r));
		goto out;
	}
	zm_set_error_handler(c, md_on_error, s);
	for (long i = 0; i < s->n; i++) {
		uint64_t ref;

		r = zm_monitor_pid(c, s->pids[i], &ref);
		if (r < 0) {
			fprintf(stderr, "zm-bench massdeath: monitor: %s\n", strerror(-r));
			goto out;
		}
		if (ref != (uint64_t)i + 1) {
			fprintf(stderr, "zm-bench massdeath: monitor %ld got ref %llu\n", i,
				(unsigned long long)ref);
			r = -EPROTO;
			goto out;
		}
	}
	r = zm_sync(c, MD_SYNC_MS, md_on_early_down, s);
	if (r < 0) {
		fprintf(stderr, "zm-bench massdeath: sync: %s\n", strerror(-r));
		goto out;
	}
	if (s->bad) {
		r = -EPROTO;
		goto out;
	}

	cpu0 = bench_proc_cpu_ns(a.pid);
	kill_real = bench_clock_ns(CLOCK_REALTIME);
	r = md_kill(pgid, &t0);
	if (r == 0)
		r = md_collect(md_poll_zenmon, c, s);
	cpu1 = bench_proc_cpu_ns(a.pid);
	/* 0 when /proc could not be read: no figure rather than a wrong one. */
	if (cpu0 && cpu1 >= cpu0)
		res->agent_cpu_ms = (double)(cpu1 - cpu0) / 1e6;
	md_times(s, t0, res);
	if (s->last_death > kill_real)
		res->deaths_ms = (double)(s->last_death - kill_real) / 1e6;
	if (r < 0)
		fprintf(stderr, "zm-bench massdeath: zenmon: receiving: %s\n", strerror(-r));
	else if (s->got < s->n)
		md_print_status(c, s);
	else if (cfg->verbose)
		md_print_kernel_side(c, s);
out:
	zm_close(c);
	bench_agent_stop(&a);
	return r;
}

static int md_watch_pidfd(pid_t pgid, struct md_news *s, struct md_result *res)
{
	struct pidfd_watcher *w = NULL;
	uint64_t t0;
	int r;

	r = pidfd_watcher_new(&w);
	if (r < 0)
		return r;
	for (long i = 0; i < s->n; i++) {
		r = pidfd_watcher_add(w, s->pids[i], (uint64_t)i);
		if (r < 0) {
			fprintf(stderr, "zm-bench massdeath: pidfd_watcher_add: %s\n", strerror(-r));
			goto out;
		}
	}
	r = md_kill(pgid, &t0);
	if (r == 0)
		r = md_collect(md_poll_pidfd, w, s);
	md_times(s, t0, res);
out:
	pidfd_watcher_free(w);
	return r;
}

static int md_watch_cnproc(pid_t pgid, struct md_news *s, struct md_result *res)
{
	struct cnproc_listener *l = NULL;
	uint64_t t0, events;
	int r;

	r = cnproc_listener_new(0, &l);
	if (r < 0)
		return r;
	for (long i = 0; i < s->n; i++) {
		r = cnproc_listener_add(l, s->pids[i], (uint64_t)i);
		if (r < 0)
			goto out;
	}
	/* Start from an empty socket: whatever the host did meanwhile. */
	do {
		events = cnproc_listener_events(l);
		r = cnproc_listener_poll(l, 0, md_on_cnproc, s);
	} while (r >= 0 && cnproc_listener_events(l) != events);
	if (r < 0)
		goto out;
	r = md_kill(pgid, &t0);
	if (r == 0)
		r = md_collect(md_poll_cnproc, l, s);
	md_times(s, t0, res);
	res->enobufs = cnproc_listener_enobufs(l);
out:
	cnproc_listener_free(l);
	return r;
}

/*
 * One observer, one run: fresh targets, the kill, the news, the reap. The
 * targets are always killed and reaped before returning. 0 when measured
 * (res filled in), -errno when the observer could not be set up or read.
 */
static int md_run(const struct bench_cfg *cfg, enum md_obs obs, long n, struct md_result *res)
{
	struct md_news s = { .n = n };
	pid_t *pids = calloc((size_t)n, sizeof(*pids)), pgid = 0;
	uint64_t t0;
	int r;

	*res = (struct md_result){ .last_ms = BENCH_NA, .first_ms = BENCH_NA, .lost = BENCH_NA,
				   .spawn_ms = BENCH_NA, .agent_cpu_ms = BENCH_NA,
				   .deaths_ms = BENCH_NA };
	s.pids = pids;
	s.seen = calloc((size_t)n, 1);
	if (!pids || !s.seen) {
		r = -ENOMEM;
		goto out;
	}
	t0 = bench_now_ns();
	r = bench_spawn_sleepers(pids, n, &pgid);
	if (r < 0) {
		fprintf(stderr, "zm-bench massdeath: spawning %ld processes: %s\n", n, strerror(-r));
		pgid = 0;
		goto out;
	}
	res->spawn_ms = (double)(bench_now_ns() - t0) / 1e6;

	switch (obs) {
	case MD_ZENMON:
		r = md_watch_zenmon(cfg, pgid, &s, res);
		break;
	case MD_PIDFD:
		r = md_watch_pidfd(pgid, &s, res);
		break;
	case MD_CNPROC:
		r = md_watch_cnproc(pgid, &s, res);
		break;
	default:
		/* Reaping is the news here. */
		r = md_kill(pgid, &t0);
		if (r < 0)
			break;
		bench_reap(pids, n);
		res->last_ms = (double)(bench_now_ns() - t0) / 1e6;
		pgid = 0;
		goto out;
	}
	if (r == 0) {
		res->lost = (double)(n - s.got_in_time);
		if (s.dups || s.bad)
			fprintf(stderr, "zm-bench massdeath: %s, N=%ld: %ld duplicate and %ld wrong "
				"reports\n", md_name[obs], n, s.dups, s.bad);
		if (obs == MD_ZENMON && (s.got_in_time != n || s.dups || s.bad)) {
			fprintf(stderr, "zm-bench massdeath: zenmon, N=%ld: %ld of %ld monitors got "
				"no DOWN in time\n", n, n - s.got_in_time, n);
			r = -EPROTO;
		}
	}
out:
	if (pgid) {
		kill(-pgid, SIGKILL);
		bench_reap(pids, n);
	}
	bench_sleepers_free(pids);
	free(s.seen);
	free(pids);
	return r;
}

/* ---- output ---------------------------------------------------------------------- */

static const long md_sizes[] = { 1000, 10000, MD_BIG_N };
#define MD_N_SIZES (sizeof(md_sizes) / sizeof(md_sizes[0]))

/* What the runs at one N gave, per observer. */
struct md_summary {
	double last_ms[MD_N_OBS], lost[MD_N_OBS], lost_max[MD_N_OBS];
	double best_ms[MD_N_OBS];  /* the fastest run's kill -> last news */
	double enobufs_max;
	double lag_ms;         /* zenmon: the last death -> its DOWN in hand */
	double cpu_us_per_down; /* zenmon: the agent's CPU from the kill on, per DOWN */
	long nofile;           /* > 0: too few fds for the pidfd watcher, this many */
};

/* "?" is what the plot script calls missing. */
static void md_dat_value(FILE *f, double v)
{
	if (isnan(v))
		fprintf(f, " %10s", "?");
	else
		fprintf(f, " %10.3f", v);
}

static int md_write_dat(const char *out_dir, const long *sizes, const struct md_summary *sum,
			size_t n_sizes)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/massdeath.dat", out_dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f, "# zm-bench massdeath: kill -> the last notification in hand, ms, "
		"medians over the runs (? = not measured)\n");
	fprintf(f, "# %8s %10s %10s %10s %10s\n", "N", "zenmon", "pidfd", "cnproc", "none");
	for (size_t i = 0; i < n_sizes; i++) {
		fprintf(f, "%10ld", sizes[i]);
		for (int o = 0; o < MD_N_OBS; o++)
			md_dat_value(f, sum[i].last_ms[o]);
		fputc('\n', f);
	}
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

static int md_write_gp(const char *out_dir)
{
	static const char script[] =
		"# zm-bench massdeath: gnuplot massdeath.gp (in this directory)\n"
		"if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"\tset terminal pngcairo size 900,600\n"
		"} else {\n"
		"\tset terminal png size 900,600\n"
		"}\n"
		"set output 'massdeath.png'\n"
		"set title 'Mass death: kill -> the last notification in hand'\n"
		"set xlabel 'processes killed at once'\n"
		"set ylabel 'ms'\n"
		"set logscale xy\n"
		"set grid\n"
		"set key top left\n"
		"set datafile missing '?'\n"
		"plot 'massdeath.dat' using 1:2 with linespoints lw 2 title 'zenmon', \\\n"
		"     '' using 1:3 with linespoints title 'pidfd + epoll', \\\n"
		"     '' using 1:4 with linespoints title 'proc connector', \\\n"
		"     '' using 1:5 with linespoints dt 2 title 'no observer (kill + reap)'\n";
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/massdeath.gp", out_dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(script, f);
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

/* Run gnuplot on script in dir (its paths are relative to dir). 0, -ENOENT
 * when gnuplot is not installed (said on stderr), or -errno. */
static int md_gnuplot(const char *dir, const char *script)
{
	int ws;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null >= 0)
			dup2(null, 1);
		if (chdir(dir) < 0)
			_exit(126);
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		if (errno == ENOENT)
			fprintf(stderr, "zm-bench: gnuplot is not installed (apt-get install "
				"gnuplot-nox): no plot from %s/%s\n", dir, script);
		else
			fprintf(stderr, "zm-bench: exec gnuplot: %s\n", strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
		return -ENOENT;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		fprintf(stderr, "zm-bench: gnuplot %s/%s failed (wait status 0x%x)\n", dir, script,
			ws);
		return -EIO;
	}
	return 0;
}

static void md_add_rows(struct bench_table *t, long n, const struct md_summary *sum)
{
	struct bench_row row = { .section = "mass death" };
	double z = sum->last_ms[MD_ZENMON], p = sum->last_ms[MD_PIDFD];

	for (int c = 0; c < BCOL_N; c++)
		row.v[c] = BENCH_NA;
	snprintf(row.measure, sizeof(row.measure), "N=%ld: kill -> last news", n);
	snprintf(row.unit, sizeof(row.unit), "ms");
	for (int o = 0; o < MD_N_OBS; o++)
		row.v[md_col[o]] = sum->last_ms[o];
	/*
	 * How long the kernel takes over N exits swings between runs (at
	 * N=10,000 here 0.2 s or 1.2 s, whoever watches, nothing included), so
	 * the fastest runs are shown too: what each observer costs when the
	 * kernel is not the bottleneck.
	 */
	if (!isnan(z) && !isnan(p) && p > 0)
		snprintf(row.note, sizeof(row.note), "%.2fx pidfd; best runs %.0f/%.0f/%.0f/%.0f",
			 z / p, sum->best_ms[MD_ZENMON], sum->best_ms[MD_PIDFD],
			 sum->best_ms[MD_CNPROC], sum->best_ms[MD_NONE]);
	else if (sum->nofile > 0)
		snprintf(row.note, sizeof(row.note), "pidfd: over RLIMIT_NOFILE %ld", sum->nofile);
	bench_table_add(t, &row);

	for (int c = 0; c < BCOL_N; c++)
		row.v[c] = BENCH_NA;
	row.note[0] = '\0';
	snprintf(row.measure, sizeof(row.measure), "N=%ld: lost", n);
	snprintf(row.unit, sizeof(row.unit), "count");
	for (int o = 0; o < MD_NONE; o++)
		row.v[md_col[o]] = sum->lost[o];
	/* A median can hide one bad run: the worst one goes in the note. */
	if (!isnan(sum->lost_max[MD_CNPROC])) {
		char w[MD_NONE][24], note[128];

		for (int o = 0; o < MD_NONE; o++)
			if (isnan(sum->lost_max[o]))
				snprintf(w[o], sizeof(w[o]), "-");
			else
				snprintf(w[o], sizeof(w[o]), "%ld", (long)sum->lost_max[o]);
		snprintf(note, sizeof(note), "worst run %s/%s/%s, cn ENOBUFS %ld", w[0], w[1], w[2],
			 (long)sum->enobufs_max);
		snprintf(row.note, sizeof(row.note), "%.*s", (int)sizeof(row.note) - 1, note);
	}
	bench_table_add(t, &row);

	/*
	 * How long the kernel takes to finish N exits varies from run to run
	 * far more than any observer adds (10x at N=100,000 here, with nothing
	 * watching), so the kill-to-news times above compare machines' moods as
	 * much as observers. What zenmon itself adds is this: the news after
	 * the last death, and the agent's CPU for it.
	 */
	for (int c = 0; c < BCOL_N; c++)
		row.v[c] = BENCH_NA;
	row.note[0] = '\0';
	snprintf(row.measure, sizeof(row.measure), "N=%ld: last death -> last news", n);
	snprintf(row.unit, sizeof(row.unit), "ms");
	row.v[md_col[MD_ZENMON]] = sum->lag_ms;
	snprintf(row.note, sizeof(row.note), "by the DOWNs' exit times");
	bench_table_add(t, &row);
	snprintf(row.measure, sizeof(row.measure), "N=%ld: agent CPU per DOWN", n);
	snprintf(row.unit, sizeof(row.unit), "us");
	row.v[md_col[MD_ZENMON]] = sum->cpu_us_per_down;
	snprintf(row.note, sizeof(row.note), "zenmond run time (schedstat), kill -> last DOWN");
	bench_table_add(t, &row);
}

/* ---- the module --------------------------------------------------------------------- */

static void md_print_run(long n, int run, enum md_obs o, const struct md_result *res)
{
	fprintf(stderr, "massdeath: N=%ld run %d %-6s: spawn %.0f ms; from the kill: ", n,
		run + 1, md_name[o], res->spawn_ms);
	if (o == MD_NONE) {
		fprintf(stderr, "last reaped %.1f ms\n", res->last_ms);
		return;
	}
	fprintf(stderr, "first news %.1f ms, last %.1f ms, lost %.0f", res->first_ms,
		res->last_ms, res->lost);
	if (o == MD_ZENMON)
		fprintf(stderr, "; last death %.1f ms, agent CPU %.1f ms", res->deaths_ms,
			res->agent_cpu_ms);
	if (o == MD_CNPROC)
		fprintf(stderr, ", %llu ENOBUFS", (unsigned long long)res->enobufs);
	fputc('\n', stderr);
}

static int md_runs_for(const struct bench_cfg *cfg, long n)
{
	return n >= MD_BIG_N && cfg->runs > MD_BIG_RUNS ? MD_BIG_RUNS : cfg->runs;
}

int bench_massdeath(const struct bench_cfg *cfg, struct bench_table *t)
{
	struct md_summary sum[MD_N_SIZES];
	size_t n_sizes = cfg->full ? MD_N_SIZES : MD_N_SIZES - 1;
	long max_n = md_sizes[n_sizes - 1], nofile;
	bool failed = false;
	int r;

	r = bench_make_room_for_procs(max_n);
	if (r < 0)
		return -1;
	/* One pidfd per target, plus what the bench holds. Without
	 * CAP_SYS_RESOURCE the hard limit stays where it is. */
	nofile = bench_raise_nofile();
	if (nofile < max_n + MD_FD_SLACK)
		printf("massdeath: RLIMIT_NOFILE is %ld: no pidfd watcher for N > %ld (one fd per "
		       "target)\n", nofile, nofile - MD_FD_SLACK);

	printf("massdeath: N =");
	for (size_t i = 0; i < n_sizes; i++)
		printf(" %ld", md_sizes[i]);
	printf(" sleeping processes in one group, one kill(-pgid, SIGKILL); fresh targets per "
	       "observer and run; runs (medians):");
	for (size_t i = 0; i < n_sizes; i++)
		printf(" %d at N=%ld%s", md_runs_for(cfg, md_sizes[i]), md_sizes[i],
		       i + 1 < n_sizes ? "," : "\n");
	printf("massdeath: zenmond --max-batch " MD_MAX_BATCH_S ", one subscriber asking max_batch "
	       MD_MAX_BATCH_S " (zm_dispatch_batch); pidfd + epoll; proc connector with the default "
	       "rcvbuf; lost = not reported %d ms after the last news and the last exit\n",
	       MD_QUIET_MS);

	for (size_t si = 0; si < n_sizes; si++) {
		long n = md_sizes[si];
		int runs = md_runs_for(cfg, n);
		double last[MD_N_OBS][99], lost[MD_N_OBS][99], spawn[99 * MD_N_OBS], cpu[99];
		double deaths[99], lag[99];
		size_t n_last[MD_N_OBS] = { 0 }, n_lost[MD_N_OBS] = { 0 }, n_spawn = 0, n_cpu = 0;
		size_t n_deaths = 0, n_lag = 0;
		struct md_summary *s = &sum[si];

		memset(s, 0, sizeof(*s));
		for (int o = 0; o < MD_N_OBS; o++)
			s->lost_max[o] = BENCH_NA;
		for (int run = 0; run < runs; run++) {
			/* A different observer goes first each run, so that none
			 * always meets the machine in the same state. */
			for (int k = 0; k < MD_N_OBS; k++) {
				enum md_obs o = (enum md_obs)((run + k) % MD_N_OBS);
				struct md_result res;

				/* No use spawning N targets only to see EMFILE. */
				if (o == MD_PIDFD && n + MD_FD_SLACK > nofile) {
					s->nofile = nofile;
					continue;
				}

				r = md_run(cfg, o, n, &res);
				if (!isnan(res.spawn_ms))
					spawn[n_spawn++] = res.spawn_ms;
				if (r < 0) {
					fprintf(stderr, "zm-bench massdeath: %s, N=%ld, run %d: %s\n",
						md_name[o], n, run + 1, strerror(-r));
					if (o == MD_ZENMON)
						failed = true;
					/* A failed check still has figures to show. */
					if (r != -EPROTO)
						continue;
				}
				if (!isnan(res.last_ms))
					last[o][n_last[o]++] = res.last_ms;
				if (!isnan(res.lost)) {
					lost[o][n_lost[o]++] = res.lost;
					if (isnan(s->lost_max[o]) || res.lost > s->lost_max[o])
						s->lost_max[o] = res.lost;
				}
				if (o == MD_CNPROC && (double)res.enobufs > s->enobufs_max)
					s->enobufs_max = (double)res.enobufs;
				if (!isnan(res.agent_cpu_ms))
					cpu[n_cpu++] = res.agent_cpu_ms;
				if (!isnan(res.deaths_ms))
					deaths[n_deaths++] = res.deaths_ms;
				if (!isnan(res.deaths_ms) && !isnan(res.last_ms))
					lag[n_lag++] = res.last_ms - res.deaths_ms;
				if (cfg->verbose)
					md_print_run(n, run, o, &res);
			}
		}
		for (int o = 0; o < MD_N_OBS; o++) {
			s->last_ms[o] = bench_median(last[o], n_last[o]);
			s->lost[o] = bench_median(lost[o], n_lost[o]);
			/* bench_median() sorted them. */
			s->best_ms[o] = n_last[o] ? last[o][0] : BENCH_NA;
		}
		s->lag_ms = bench_median(lag, n_lag);
		s->cpu_us_per_down = bench_median(cpu, n_cpu) * 1e3 / (double)n;
		/* What the time goes to: the kernel's own flood of exits, or
		 * the news after it. */
		printf("massdeath: N=%ld (medians): spawning %.0f ms (%.0f procs/s); kill -> last "
		       "death %.1f ms (DOWN time_ns); zenmond CPU kill -> last DOWN %.1f ms\n", n,
		       bench_median(spawn, n_spawn), n / (bench_median(spawn, n_spawn) / 1e3),
		       bench_median(deaths, n_deaths), bench_median(cpu, n_cpu));
		md_add_rows(t, n, s);
	}

	r = md_write_dat(cfg->out_dir, md_sizes, sum, n_sizes);
	if (r == 0)
		r = md_write_gp(cfg->out_dir);
	if (r < 0)
		fprintf(stderr, "zm-bench massdeath: cannot write into %s: %s\n", cfg->out_dir,
			strerror(-r));
	else if (md_gnuplot(cfg->out_dir, "massdeath.gp") == 0)
		printf("massdeath: data in %s/massdeath.dat, plot in %s/massdeath.png\n",
		       cfg->out_dir, cfg->out_dir);
	else
		printf("massdeath: data in %s/massdeath.dat (no plot)\n", cfg->out_dir);
	return failed ? -1 : 0;
}
