// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zm-bench latency: how long after a process exits does its observer hold
 * the news.
 *
 * The common reference. Each target is a child of the bench that waits on a
 * futex word in a MAP_SHARED page; told to go, it sleeps LAT_PRE_EXIT_US
 * (so that the observer is surely asleep again, as it would be in real
 * life), writes its CLOCK_MONOTONIC time into its slot of that page and
 * calls _exit(LAT_STATUS). The observer stamps CLOCK_MONOTONIC when it has
 * the news in hand, status included. Latency = news - stamp: the kernel's
 * exit path is inside it, for every observer alike.
 *
 *   zenmon   a private zenmond with its default options (what users get),
 *            one libzenmon subscriber with default options; the news is the
 *            DOWN in the zm_down_fn called from zm_wait(). Each target must
 *            get exactly one DOWN, reason exited, status LAT_STATUS, or the
 *            module fails.
 *   pidfd    base_pidfd.h: readiness of the pidfd, then PIDFD_GET_INFO.
 *   cnproc   base_cnproc.h with the default socket buffer.
 *
 * One observer at a time: targets come in batches of LAT_BATCH, each batch
 * watched by one observer only (the others are closed; the agent stays up,
 * with no monitors, its exit program costing every exit a map lookup
 * miss of well under a microsecond), the observers taking turns batch by
 * batch in a rotating order, so that drift in the host hits them alike.
 * Between two exits the observer keeps serving its socket, as a real one
 * would (under a storm the proc connector has events to read all the time).
 *
 * Conditions:
 *   idle     nothing else running; the next exit LAT_GAP_IDLE_* after the
 *            news of the previous one: longer than the agent's default
 *            batch window (1 ms), so every DOWN finds its subscriber idle
 *   storm    the same during a one-worker process storm (storm_load.h;
 *            the module prints the rate it ran at)
 *   close    idle host, the next exit 0.05-0.5 ms after the news of the
 *            previous one: a subscriber that got a DOWN less than the batch
 *            window ago waits for company (user/zenmond/pacer.h)
 *
 * Rows (section "latency", microseconds): p50, p99 and max of each
 * condition (p50 and p99 for close), and for idle and storm the part of
 * zenmon's p50/p99 after its tracepoint fired (the DOWN carries the
 * tracepoint's time). Raw samples in OUT/latency-{idle,storm,close}.dat, CDF
 * plots in OUT/latency.png (gnuplot, when installed). Percentiles are over
 * every sample of a condition, so --runs does not apply here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base_cnproc.h"
#include "base_pidfd.h"
#include "bench.h"
#include "storm_load.h"
#include "zenmon.h"

#define LAT_STATUS 42               /* every target's exit status, checked */
#define LAT_PRE_EXIT_US 100         /* go -> stamp: the observer is back asleep */
#define LAT_NEWS_TIMEOUT_MS 2000    /* no news this long after the exit: lost */
#define LAT_MAX_EXTENSIONS 30       /* waits of that length for a target to exit */
#define LAT_SYNC_MS 10000
#define LAT_BATCH 50                /* targets alive at once, per observer turn */
#define LAT_SAMPLES_QUICK 1000      /* per observer and condition */
#define LAT_SAMPLES_FULL 5000
#define LAT_STORM_WARMUP_MS 200

enum lat_obs { LO_ZENMON, LO_PIDFD, LO_CNPROC, LO_N };

static const char *const lat_obs_name[LO_N] = { "zenmon", "pidfd", "cnproc" };
static const enum bench_col lat_obs_col[LO_N] = { BCOL_ZENMON, BCOL_PIDFD, BCOL_CNPROC };

struct lat_cond {
	const char *key;            /* latency-KEY.dat */
	const char *label;          /* in the rows */
	const char *title;          /* in the plot */
	bool storm;
	uint32_t gap_min_us, gap_max_us;   /* news -> next go, uniform */
	bool tail;                  /* max row, and the tracepoint->news rows */
};

static const struct lat_cond lat_conds[] = {
	{ "idle", "idle", "idle host, next exit 2-4 ms after the news", false, 2000, 4000, true },
	{ "storm", "process storm", "during a 1-worker process storm", true, 2000, 4000, true },
	{ "close", "next exit <0.5 ms after news", "idle host, next exit 0.05-0.5 ms after the news",
	  false, 50, 500, false },
};
#define LAT_N_CONDS (sizeof(lat_conds) / sizeof(lat_conds[0]))

/* A target's slot in the shared page: its own cache line. */
struct lat_slot {
	uint32_t go;                /* futex word: 1 = exit now */
	uint64_t stamp_ns;          /* CLOCK_MONOTONIC just before _exit() */
} __attribute__((aligned(64)));

/* The samples of one condition: [observer][sample], NAN when lost. */
struct lat_samples {
	double *us[LO_N];           /* exit -> news */
	double *kern_us;            /* zenmon: tracepoint -> news */
	size_t n;                   /* samples per observer so far */
	size_t lost[LO_N];
	uint64_t enobufs;           /* cnproc recv()s that failed ENOBUFS */
	size_t status_unknown;      /* pidfd reports without a status */
};

/* One observer's turn: LAT_BATCH targets. */
struct lat_batch {
	enum lat_obs obs;
	pid_t pids[LAT_BATCH];
	uint64_t refs[LAT_BATCH];   /* zenmon */
	uint64_t seen_ns[LAT_BATCH];        /* the first report (reports[] counts them) */
	uint64_t kern_ns[LAT_BATCH];        /* zenmon: tracepoint, CLOCK_MONOTONIC */
	unsigned int reports[LAT_BATCH];
	size_t triggered;           /* targets told to go */
	size_t reaped;              /* targets reaped: pids[0..reaped-1] */
	size_t bad;                 /* wrong reports: see lat_report() */
	size_t status_unknown;
	struct pidfd_watcher *pw;
	struct cnproc_listener *cl;
};

struct lat_state {
	const struct bench_cfg *cfg;
	struct bench_agent agent;
	bool agent_up;
	struct zm_client *zc;
	struct lat_slot *slots;     /* LAT_BATCH, shared with the targets */
	int64_t real_off_ns;        /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	uint64_t rng;
	size_t samples;             /* per observer and condition */
	bool failed;
};

/* ---- small things ---------------------------------------------------------- */

static uint64_t lat_rand(struct lat_state *s)
{
	/* xorshift64: a fixed seed makes the gaps the same run to run. */
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, read between two monotonic reads. */
static int64_t lat_real_offset(void)
{
	uint64_t m0 = bench_now_ns();
	uint64_t r = bench_clock_ns(CLOCK_REALTIME);
	uint64_t m1 = bench_now_ns();

	return (int64_t)(r - (m0 + (m1 - m0) / 2));
}

static long lat_futex(uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* ---- targets --------------------------------------------------------------- */

static void lat_target_main(struct lat_slot *slot, pid_t parent)
{
	struct timespec pre = { .tv_nsec = LAT_PRE_EXIT_US * 1000L };

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	while (!__atomic_load_n(&slot->go, __ATOMIC_ACQUIRE))
		lat_futex(&slot->go, FUTEX_WAIT, 0);
	nanosleep(&pre, NULL);
	__atomic_store_n(&slot->stamp_ns, bench_now_ns(), __ATOMIC_RELEASE);
	_exit(LAT_STATUS);
}

/* Fork the batch's targets, each waiting on its slot. 0 or -errno; on
 * failure none is left. */
static int lat_targets_spawn(struct lat_state *s, struct lat_batch *b)
{
	pid_t parent = getpid();

	memset(s->slots, 0, LAT_BATCH * sizeof(*s->slots));
	for (size_t i = 0; i < LAT_BATCH; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			int r = -errno;

			for (size_t k = 0; k < i; k++)
				kill(b->pids[k], SIGKILL);
			bench_reap(b->pids, (long)i);
			return r;
		}
		if (pid == 0)
			lat_target_main(&s->slots[i], parent);
		b->pids[i] = pid;
	}
	return 0;
}

static void lat_target_go(struct lat_state *s, size_t i)
{
	__atomic_store_n(&s->slots[i].go, 1, __ATOMIC_RELEASE);
	lat_futex(&s->slots[i].go, FUTEX_WAKE, 1);
}

/* Reap target i and check how it ended. */
static void lat_target_reap(struct lat_batch *b, size_t i)
{
	int ws = 0;

	while (waitpid(b->pids[i], &ws, 0) < 0 && errno == EINTR)
		;
	b->reaped = i + 1;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != LAT_STATUS) {
		fprintf(stderr, "zm-bench latency: target %d ended with wait status 0x%x\n",
			(int)b->pids[i], ws);
		b->bad++;
	}
}

/* ---- the observers' reports -------------------------------------------------- */

/*
 * Record a report for target i at seen_ns. A report of a target not yet told
 * to go, or a second report of one, is wrong: the observer invented a death
 * or repeated one.
 */
static void lat_report(struct lat_batch *b, size_t i, uint64_t seen_ns)
{
	if (b->reports[i]++ == 0)
		b->seen_ns[i] = seen_ns;
	if (i >= b->triggered || b->reports[i] > 1) {
		fprintf(stderr, "zm-bench latency: %s reported target %d %s\n",
			lat_obs_name[b->obs], (int)b->pids[i],
			b->reports[i] > 1 ? "twice" : "before it was told to exit");
		b->bad++;
	}
}

struct lat_down_ctx {
	struct lat_state *s;
	struct lat_batch *b;
};

static void lat_on_down(struct zm_client *c, const struct zm_down_info *d, void *ud)
{
	struct lat_down_ctx *x = ud;
	struct lat_batch *b = x->b;
	uint64_t now = bench_now_ns();
	size_t i = (size_t)(d->ref - b->refs[0]);

	if (d->ref < b->refs[0] || i >= LAT_BATCH || b->refs[i] != d->ref) {
		for (i = 0; i < LAT_BATCH && b->refs[i] != d->ref; i++)
			;
		if (i == LAT_BATCH) {
			fprintf(stderr, "zm-bench latency: DOWN for unknown reference %llu\n",
				(unsigned long long)d->ref);
			b->bad++;
			return;
		}
	}
	if (d->reason != ZM_DOWN_EXITED || d->status != LAT_STATUS || d->pid != b->pids[i]) {
		fprintf(stderr, "zm-bench latency: DOWN for %d: reason %s, status %d, pid %d; "
			"wanted exited, %d, %d\n", (int)b->pids[i], zm_reason_str(d->reason),
			d->status, (int)d->pid, LAT_STATUS, (int)b->pids[i]);
		b->bad++;
	}
	if (!b->reports[i])
		b->kern_ns[i] = (uint64_t)((int64_t)d->time_ns - x->s->real_off_ns);
	lat_report(b, i, now);
}

static void lat_on_pidfd(uint64_t tag, pid_t pid, int wait_status, uint64_t seen_ns, void *ud)
{
	struct lat_batch *b = ud;

	if (tag >= LAT_BATCH || b->pids[tag] != pid) {
		b->bad++;
		return;
	}
	/* The kernel records the status only once the parent (we) reaped
	 * the target, after the news: see base_pidfd.c. */
	if (wait_status == -1)
		b->status_unknown++;
	else if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != LAT_STATUS)
		b->bad++;
	lat_report(b, (size_t)tag, seen_ns);
}

static void lat_on_cnproc(uint64_t tag, pid_t pid, int wait_status, uint64_t seen_ns, void *ud)
{
	struct lat_batch *b = ud;

	if (tag >= LAT_BATCH || b->pids[tag] != pid) {
		b->bad++;
		return;
	}
	if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != LAT_STATUS)
		b->bad++;
	lat_report(b, (size_t)tag, seen_ns);
}

/* ---- one observer ------------------------------------------------------------ */

static int lat_obs_open(struct lat_state *s, struct lat_batch *b)
{
	struct lat_down_ctx x = { s, b };
	int r;

	switch (b->obs) {
	case LO_ZENMON:
		for (size_t i = 0; i < LAT_BATCH; i++) {
			r = zm_monitor_pid(s->zc, b->pids[i], &b->refs[i]);
			if (r < 0)
				return r;
		}
		/* The monitors are in place before any target is told to go. */
		return zm_sync(s->zc, LAT_SYNC_MS, lat_on_down, &x);
	case LO_PIDFD:
		r = pidfd_watcher_new(&b->pw);
		for (size_t i = 0; r == 0 && i < LAT_BATCH; i++)
			r = pidfd_watcher_add(b->pw, b->pids[i], i);
		return r;
	case LO_CNPROC:
		r = cnproc_listener_new(0, &b->cl);
		for (size_t i = 0; r == 0 && i < LAT_BATCH; i++)
			r = cnproc_listener_add(b->cl, b->pids[i], i);
		return r;
	default:
		return -EINVAL;
	}
}

static int lat_obs_fd(struct lat_state *s, const struct lat_batch *b)
{
	switch (b->obs) {
	case LO_ZENMON:
		return zm_fd(s->zc);
	case LO_PIDFD:
		return pidfd_watcher_fd(b->pw);
	default:
		return cnproc_listener_fd(b->cl);
	}
}

/* Let the observer take what is there, or wait up to timeout_ms for it,
 * the way its users do. Reports, or -errno. */
static int lat_obs_poll(struct lat_state *s, struct lat_batch *b, int timeout_ms)
{
	struct lat_down_ctx x = { s, b };

	switch (b->obs) {
	case LO_ZENMON:
		return zm_wait(s->zc, timeout_ms, lat_on_down, &x);
	case LO_PIDFD:
		return pidfd_watcher_poll(b->pw, timeout_ms, lat_on_pidfd, b);
	default:
		return cnproc_listener_poll(b->cl, timeout_ms, lat_on_cnproc, b);
	}
}

/* Serve the observer until `until` (CLOCK_MONOTONIC): the pause between two
 * exits, timed finer than poll()'s milliseconds. 0 or -errno. */
static int lat_obs_idle(struct lat_state *s, struct lat_batch *b, uint64_t until)
{
	struct pollfd pfd = { .fd = lat_obs_fd(s, b), .events = POLLIN };

	for (;;) {
		uint64_t now = bench_now_ns();
		struct timespec ts;
		int r;

		if (now >= until)
			return 0;
		ts.tv_sec = (time_t)((until - now) / 1000000000ULL);
		ts.tv_nsec = (long)((until - now) % 1000000000ULL);
		r = ppoll(&pfd, 1, &ts, NULL);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0) {
			r = lat_obs_poll(s, b, 0);
			if (r < 0 && r != -EINTR)
				return r;
		}
	}
}

/* Whether target i has exited (a zombie now), without reaping it. */
static bool lat_target_exited(const struct lat_batch *b, size_t i)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)b->pids[i], &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return true;   /* no such child: nothing left to wait for */
	return si.si_pid != 0;
}

/*
 * Wait for the news of target i. 0, -ETIMEDOUT, or -errno. The news is
 * lost only if it has not come LAT_NEWS_TIMEOUT_MS after we saw the target
 * dead: on a loaded host the target itself may take that long to run.
 */
static int lat_obs_wait(struct lat_state *s, struct lat_batch *b, size_t i)
{
	uint64_t deadline = bench_now_ns() + LAT_NEWS_TIMEOUT_MS * 1000000ULL;
	bool dead = false;
	int extensions = 0;

	while (!b->reports[i]) {
		uint64_t now = bench_now_ns();
		int r;

		if (now >= deadline) {
			if (dead || ++extensions > LAT_MAX_EXTENSIONS)
				return -ETIMEDOUT;
			dead = lat_target_exited(b, i);
			deadline = now + LAT_NEWS_TIMEOUT_MS * 1000000ULL;
			continue;
		}
		r = lat_obs_poll(s, b, (int)((deadline - now) / 1000000ULL) + 1);
		if (r < 0 && r != -EINTR)
			return r;
	}
	return 0;
}

static void lat_obs_close(struct lat_state *s, struct lat_batch *b, struct lat_samples *sm)
{
	switch (b->obs) {
	case LO_ZENMON:
		break;
	case LO_PIDFD:
		pidfd_watcher_free(b->pw);
		b->pw = NULL;
		break;
	case LO_CNPROC:
		if (b->cl)
			sm->enobufs += cnproc_listener_enobufs(b->cl);
		cnproc_listener_free(b->cl);
		b->cl = NULL;
		break;
	default:
		break;
	}
}

/* ---- one batch ---------------------------------------------------------------- */

/*
 * LAT_BATCH exits watched by observer obs, one at a time, appended to sm.
 * 0, or -errno when the batch could not run; a zenmon or pidfd sample that
 * got no news, or any wrong report, sets s->failed.
 */
static int lat_batch_run(struct lat_state *s, const struct lat_cond *cond, enum lat_obs obs,
			 struct lat_samples *sm)
{
	struct lat_batch *b = calloc(1, sizeof(*b));
	struct lat_down_ctx x = { s, b };
	size_t base = sm->n;
	int r;

	if (!b)
		return -ENOMEM;
	b->obs = obs;
	r = lat_targets_spawn(s, b);
	if (r < 0) {
		free(b);
		return r;
	}
	r = lat_obs_open(s, b);
	if (r < 0) {
		fprintf(stderr, "zm-bench latency: setting up %s: %s\n", lat_obs_name[obs],
			strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < LAT_BATCH; i++) {
		uint64_t gap_us = cond->gap_min_us +
				  lat_rand(s) % (cond->gap_max_us - cond->gap_min_us + 1);
		uint64_t stamp;

		r = lat_obs_idle(s, b, bench_now_ns() + gap_us * 1000ULL);
		if (r < 0)
			goto out;
		b->triggered = i + 1;
		lat_target_go(s, i);
		r = lat_obs_wait(s, b, i);
		if (r < 0 && r != -ETIMEDOUT)
			goto out;
		stamp = __atomic_load_n(&s->slots[i].stamp_ns, __ATOMIC_ACQUIRE);
		lat_target_reap(b, i);
		sm->us[obs][base + i] = NAN;
		if (obs == LO_ZENMON)
			sm->kern_us[base + i] = NAN;
		if (r == -ETIMEDOUT) {
			sm->lost[obs]++;
			if (obs != LO_CNPROC) {
				/* zenmon and pidfd must never lose an exit. */
				fprintf(stderr, "zm-bench latency: %s: no news of target %d "
					"%d ms after it exited\n", lat_obs_name[obs],
					(int)b->pids[i], LAT_NEWS_TIMEOUT_MS);
				s->failed = true;
				r = -ETIMEDOUT;
				goto out;
			}
			continue;
		}
		if (!stamp || b->seen_ns[i] < stamp) {
			/* The target has exited, so its stamp is in; news
			 * before it would be a broken clock or page. */
			fprintf(stderr, "zm-bench latency: %s: news of %d at %llu, stamp %llu\n",
				lat_obs_name[obs], (int)b->pids[i],
				(unsigned long long)b->seen_ns[i], (unsigned long long)stamp);
			b->bad++;
			continue;
		}
		sm->us[obs][base + i] = (double)(b->seen_ns[i] - stamp) / 1e3;
		if (obs == LO_ZENMON && b->kern_ns[i] <= b->seen_ns[i])
			sm->kern_us[base + i] = (double)(b->seen_ns[i] - b->kern_ns[i]) / 1e3;
	}
	r = 0;
	if (obs == LO_ZENMON) {
		/* A duplicate DOWN would come right behind the first: one more
		 * round trip lets it in before we judge. */
		int rs = zm_sync(s->zc, LAT_SYNC_MS, lat_on_down, &x);

		if (rs < 0) {
			fprintf(stderr, "zm-bench latency: zm_sync: %s\n", strerror(-rs));
			r = rs;
		} else if (zm_active_monitors(s->zc) != 0) {
			fprintf(stderr, "zm-bench latency: %zu monitors still active after their "
				"DOWNs\n", zm_active_monitors(s->zc));
			b->bad++;
		}
	}
out:
	lat_obs_close(s, b, sm);
	if (r < 0) {
		/* Only the targets not yet reaped: a reaped one's pid may
		 * belong to someone else by now. */
		for (size_t i = b->reaped; i < LAT_BATCH; i++)
			kill(b->pids[i], SIGKILL);
		bench_reap(b->pids + b->reaped, (long)(LAT_BATCH - b->reaped));
		s->failed = true;
	} else {
		sm->n = base + LAT_BATCH;
	}
	if (b->bad) {
		fprintf(stderr, "zm-bench latency: %s: %zu wrong report(s) in a batch\n",
			lat_obs_name[obs], b->bad);
		s->failed = true;
	}
	sm->status_unknown += b->status_unknown;
	free(b);
	return r;
}

/* ---- statistics, rows, files --------------------------------------------------- */

/* The p-th percentile of the samples that are not lost; NAN if none. */
static double lat_pct(const double *v, size_t n, double p)
{
	double *tmp = malloc((n ? n : 1) * sizeof(*tmp));
	size_t k = 0;
	double r;

	if (!tmp)
		return BENCH_NA;
	for (size_t i = 0; i < n; i++)
		if (!isnan(v[i]))
			tmp[k++] = v[i];
	r = bench_percentile(tmp, k, p);
	free(tmp);
	return r;
}

static void lat_row_pct(struct bench_table *t, const struct lat_cond *cond,
			const struct lat_samples *sm, const char *pname, double p)
{
	struct bench_row row = { .section = "latency", .unit = "us" };
	double z, pf, cn;

	for (int c = 0; c < BCOL_N; c++)
		row.v[c] = BENCH_NA;
	snprintf(row.measure, sizeof(row.measure), "exit->news %s, %s", pname, cond->label);
	for (int o = 0; o < LO_N; o++)
		row.v[lat_obs_col[o]] = lat_pct(sm->us[o], sm->n, p);
	z = row.v[BCOL_ZENMON];
	pf = row.v[BCOL_PIDFD];
	cn = row.v[BCOL_CNPROC];
	if (!isnan(z) && !isnan(pf) && !isnan(cn) && pf > 0 && cn > 0)
		snprintf(row.note, sizeof(row.note), "%.2gx pidfd, %.2gx proc conn", z / pf,
			 z / cn);
	bench_table_add(t, &row);
}

/* zenmon's latency after its tracepoint fired: what the agent and the
 * library add, the rest being the kernel's exit path up to the tracepoint. */
static void lat_row_kern(struct bench_table *t, const struct lat_cond *cond,
			 const struct lat_samples *sm, const char *pname, double p)
{
	struct bench_row row = { .section = "latency", .unit = "us" };
	double all = lat_pct(sm->us[LO_ZENMON], sm->n, p);

	for (int c = 0; c < BCOL_N; c++)
		row.v[c] = BENCH_NA;
	snprintf(row.measure, sizeof(row.measure), "  zenmon tracepoint->news %s, %s", pname,
		 cond->label);
	row.v[BCOL_ZENMON] = lat_pct(sm->kern_us, sm->n, p);
	if (!isnan(all) && all > 0 && !isnan(row.v[BCOL_ZENMON]))
		snprintf(row.note, sizeof(row.note), "%.0f%% of exit->news %s",
			 100.0 * row.v[BCOL_ZENMON] / all, pname);
	bench_table_add(t, &row);
}

static void lat_put(FILE *f, double v)
{
	if (isnan(v))
		fprintf(f, " %9s", "?");
	else
		fprintf(f, " %9.2f", v);
}

static int lat_write_dat(const struct bench_cfg *cfg, const struct lat_cond *cond,
			 const struct lat_samples *sm)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/latency-%s.dat", cfg->out_dir, cond->key);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f, "# zm-bench latency, %s: microseconds from a target's exit stamp to its\n"
		"# observer holding the news ('?': no news, lost). Samples in the order taken;\n"
		"# the observers took turns in batches of %d. zenmon_tp: zenmon's part after\n"
		"# its sched_process_exit tracepoint fired.\n"
		"# %-7s %9s %9s %9s %9s\n", cond->title, LAT_BATCH, "i", "zenmon", "pidfd",
		"cnproc", "zenmon_tp");
	for (size_t i = 0; i < sm->n; i++) {
		fprintf(f, "%9zu", i);
		for (int o = 0; o < LO_N; o++)
			lat_put(f, sm->us[o][i]);
		lat_put(f, sm->kern_us[i]);
		fputc('\n', f);
	}
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

/* Write OUT/latency.gp and run gnuplot on it (in OUT, so that no path is
 * quoted into the script). Missing gnuplot is not an error. */
static void lat_plot(const struct bench_cfg *cfg)
{
	char path[512];
	pid_t pid;
	FILE *f;
	int ws = 0;

	snprintf(path, sizeof(path), "%s/latency.gp", cfg->out_dir);
	f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "zm-bench latency: %s: %s; no plot\n", path, strerror(errno));
		return;
	}
	fprintf(f, "# zm-bench latency: CDFs of exit -> news. Run in the data's directory.\n"
		"if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"\tset terminal pngcairo size 1650,520 font ',10'\n"
		"} else {\n"
		"\tset terminal png size 1650,520\n"
		"}\n"
		"set output 'latency.png'\n"
		"set datafile missing '?'\n"
		"set logscale x\n"
		"set format x '%%g'\n"
		"set yrange [0:1]\n"
		"set grid\n"
		"set key bottom right\n"
		"set xlabel 'exit -> news (microseconds, log scale)'\n"
		"set ylabel 'fraction of exits'\n"
		"set multiplot layout 1,%zu title 'Detection latency: zenmon vs pidfd+epoll vs "
		"proc connector (CDF)'\n", LAT_N_CONDS);
	for (size_t c = 0; c < LAT_N_CONDS; c++)
		fprintf(f, "set title '%s'\n"
			"plot 'latency-%s.dat' using 2:(1) smooth cnormal lw 2 title 'zenmon', \\\n"
			"     '' using 3:(1) smooth cnormal lw 2 title 'pidfd + epoll', \\\n"
			"     '' using 4:(1) smooth cnormal lw 2 title 'proc connector'\n",
			lat_conds[c].title, lat_conds[c].key);
	fprintf(f, "unset multiplot\n");
	if (fclose(f) != 0) {
		fprintf(stderr, "zm-bench latency: %s: %s; no plot\n", path, strerror(errno));
		return;
	}

	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "zm-bench latency: fork: %s; no plot\n", strerror(errno));
		return;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		if (chdir(cfg->out_dir) < 0)
			_exit(126);
		execlp("gnuplot", "gnuplot", "latency.gp", (char *)NULL);
		_exit(errno == ENOENT ? 127 : 126);
	}
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
		fprintf(stderr, "zm-bench latency: gnuplot not found (Debian: apt-get install "
			"gnuplot-nox); no plot, the data is in %s\n", cfg->out_dir);
	else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		fprintf(stderr, "zm-bench latency: gnuplot %s failed (wait status 0x%x)\n", path,
			ws);
	else
		printf("latency: plot in %s/latency.png\n", cfg->out_dir);
}

/* ---- one condition -------------------------------------------------------------- */

static int lat_samples_alloc(struct lat_samples *sm, size_t n)
{
	memset(sm, 0, sizeof(*sm));
	for (int o = 0; o < LO_N; o++) {
		sm->us[o] = calloc(n, sizeof(double));
		if (!sm->us[o])
			return -ENOMEM;
	}
	sm->kern_us = calloc(n, sizeof(double));
	return sm->kern_us ? 0 : -ENOMEM;
}

static void lat_samples_free(struct lat_samples *sm)
{
	for (int o = 0; o < LO_N; o++)
		free(sm->us[o]);
	free(sm->kern_us);
}

static int lat_condition(struct lat_state *s, const struct lat_cond *cond, struct bench_table *t)
{
	size_t rounds = s->samples / LAT_BATCH;
	struct storm_load *storm = NULL;
	struct lat_samples sm[LO_N];   /* one per observer: each fills its own */
	struct lat_samples all;
	uint64_t t0, storm_exits = 0;
	int r = 0;

	memset(sm, 0, sizeof(sm));
	memset(&all, 0, sizeof(all));
	for (int o = 0; o < LO_N && r == 0; o++)
		r = lat_samples_alloc(&sm[o], s->samples);
	if (r < 0)
		goto out;
	if (cond->storm) {
		r = storm_load_start(STORM_PROCESSES, 1, &storm);
		if (r < 0) {
			fprintf(stderr, "zm-bench latency: storm_load_start: %s\n", strerror(-r));
			goto out;
		}
		usleep(LAT_STORM_WARMUP_MS * 1000);
	}
	t0 = bench_now_ns();
	for (size_t round = 0; round < rounds && !s->failed; round++) {
		for (int k = 0; k < LO_N && !s->failed; k++) {
			enum lat_obs o = (enum lat_obs)((round + (size_t)k) % LO_N);

			r = lat_batch_run(s, cond, o, &sm[o]);
			if (r < 0)
				goto out;
		}
		if (s->cfg->verbose)
			fprintf(stderr, "zm-bench latency: %s: round %zu/%zu\n", cond->key,
				round + 1, rounds);
	}
	if (storm) {
		double secs = (bench_now_ns() - t0) / 1e9 + LAT_STORM_WARMUP_MS / 1e3;

		storm_load_stop(storm, &storm_exits);
		storm = NULL;
		printf("latency: storm: %.0f fork+exit/s in the background\n", storm_exits / secs);
	}
	if (s->failed)
		goto out;

	/* One table of samples: column o from observer o's own run. */
	all.n = s->samples;
	for (int o = 0; o < LO_N; o++) {
		all.us[o] = sm[o].us[o];
		all.lost[o] = sm[o].lost[o];
	}
	all.kern_us = sm[LO_ZENMON].kern_us;
	all.enobufs = sm[LO_CNPROC].enobufs;
	all.status_unknown = sm[LO_PIDFD].status_unknown;

	lat_row_pct(t, cond, &all, "p50", 50);
	lat_row_pct(t, cond, &all, "p99", 99);
	if (cond->tail) {
		lat_row_pct(t, cond, &all, "max", 100);
		lat_row_kern(t, cond, &all, "p50", 50);
		lat_row_kern(t, cond, &all, "p99", 99);
	}
	printf("latency: %s: %zu exits per observer; lost: zenmon %zu, pidfd %zu, proc "
	       "connector %zu (ENOBUFS %llu); pidfd status unknown at news: %zu\n", cond->key,
	       all.n, all.lost[LO_ZENMON], all.lost[LO_PIDFD], all.lost[LO_CNPROC],
	       (unsigned long long)all.enobufs, all.status_unknown);
	r = lat_write_dat(s->cfg, cond, &all);
	if (r < 0)
		fprintf(stderr, "zm-bench latency: writing latency-%s.dat: %s\n", cond->key,
			strerror(-r));
	r = 0;
out:
	if (storm)
		storm_load_stop(storm, NULL);
	for (int o = 0; o < LO_N; o++)
		lat_samples_free(&sm[o]);
	return r;
}

/* ---- the module ------------------------------------------------------------------ */

int bench_latency(const struct bench_cfg *cfg, struct bench_table *t)
{
	struct lat_state s = { .cfg = cfg, .rng = 0x9e3779b97f4a7c15ULL };
	bool data = true;
	int r;

	s.samples = cfg->full ? LAT_SAMPLES_FULL : LAT_SAMPLES_QUICK;
	s.slots = mmap(NULL, LAT_BATCH * sizeof(*s.slots), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s.slots == MAP_FAILED) {
		fprintf(stderr, "zm-bench latency: mmap: %s\n", strerror(errno));
		return -1;
	}
	r = bench_agent_start(&s.agent, cfg, NULL);
	if (r < 0) {
		fprintf(stderr, "zm-bench latency: starting zenmond: %s\n", strerror(-r));
		goto out;
	}
	s.agent_up = true;
	r = zm_connect(s.agent.sock, "zm-bench-latency", &s.zc);
	if (r < 0) {
		fprintf(stderr, "zm-bench latency: zm_connect: %s\n", strerror(-r));
		goto out;
	}
	s.real_off_ns = lat_real_offset();
	printf("latency: %zu exits per observer and condition, observers in turn by batches of "
	       "%d; zenmond and libzenmon with default options; a target stamps its exit %d us "
	       "after being told to go\n", s.samples, LAT_BATCH, LAT_PRE_EXIT_US);

	for (size_t c = 0; c < LAT_N_CONDS && !s.failed; c++) {
		r = lat_condition(&s, &lat_conds[c], t);
		if (r < 0) {
			fprintf(stderr, "zm-bench latency: %s: %s\n", lat_conds[c].key,
				strerror(-r));
			s.failed = true;
			data = false;
		}
	}
	if (data && !s.failed)
		lat_plot(cfg);
out:
	zm_close(s.zc);
	if (s.agent_up)
		bench_agent_stop(&s.agent);
	munmap(s.slots, LAT_BATCH * sizeof(*s.slots));
	return r < 0 || s.failed ? -1 : 0;
}
