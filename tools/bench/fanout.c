// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zm-bench-fanout: how fast the agent fans a mass death out to its
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
 * not is reported and makes the program exit 1.
 *
 * Needs root (the agent loads BPF programs). Run through `make bench`.
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

#include "zenmon.h"

#define MAX_LIST 8
#define MAX_SUBS 64
#define WAIT_MS 120000           /* for registration and for delivery */
#define AGENT_START_MS 10000

struct params {
	const char *zenmond;
	long sizes[MAX_LIST], procs[MAX_LIST], subs[MAX_LIST];
	int n_sizes, n_procs, n_subs;
	int runs;
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

struct agent {
	pid_t pid;
	char dir[64], sock[96], log[96], pin_dir[96];
};

/* What one subscriber has received. */
struct sub {
	struct zm_client *c;
	uint8_t *seen;           /* [ref]: refs 1..n on a fresh connection */
	size_t n, got, dups, bad;
	uint64_t last_death_ns;  /* the latest time_ns (CLOCK_REALTIME) among its DOWNs */
};

/* ---- small things ---------------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static int read_text(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

/*
 * CPU time the agent has used, in ns: the first field of
 * /proc/PID/task/TID/schedstat summed over its threads (nanoseconds; the
 * utime + stime of /proc/PID/stat count 10 ms ticks, too coarse for a flood
 * that lasts 10 ms). Falls back to utime + stime without schedstat.
 */
static uint64_t agent_cpu_ns(pid_t pid)
{
	char path[300], buf[1024];
	struct dirent *e;
	uint64_t sum = 0;
	bool any = false;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		if (read_text(path, buf, sizeof(buf)) > 0) {
			sum += strtoull(buf, NULL, 10);
			any = true;
		}
	}
	if (d)
		closedir(d);
	if (!any) {
		unsigned long long ut = 0, st = 0;
		char *p;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (read_text(path, buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
			return 0;
		/* after ") " come fields 3, 4, ...: utime is 14, stime 15 */
		if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
			return 0;
		sum = (ut + st) * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
	}
	return sum;
}

/* A "Name:   N kB" line of /proc/PID/status, in bytes; 0 if missing. */
static uint64_t proc_status_kb(pid_t pid, const char *name)
{
	char path[64], buf[4096];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_text(path, buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, name);
	if (!p)
		return 0;
	return strtoull(p + strlen(name), NULL, 10) * 1024ULL;
}

/* Reset the agent's VmHWM to its current RSS (clear_refs value 5). */
static void reset_peak_rss(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "5", 1) != 1)
		fprintf(stderr, "zm-bench-fanout: cannot reset VmHWM: %s\n", strerror(errno));
	close(fd);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the agent ------------------------------------------------------------- */

static int agent_connectable(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static void agent_print_log(const struct agent *a)
{
	char buf[8192];

	if (read_text(a->log, buf, sizeof(buf)) > 0)
		fprintf(stderr, "---- %s ----\n%s---- end ----\n", a->log, buf);
}

static int agent_start(struct agent *a, const struct params *p)
{
	static unsigned int seq;
	char batch[16];
	uint64_t deadline;

	memset(a, 0, sizeof(*a));
	snprintf(a->dir, sizeof(a->dir), "/tmp/zm-bench-XXXXXX");
	if (!mkdtemp(a->dir))
		return -errno;
	snprintf(a->sock, sizeof(a->sock), "%s/sock", a->dir);
	snprintf(a->log, sizeof(a->log), "%s/zenmond.log", a->dir);
	snprintf(a->pin_dir, sizeof(a->pin_dir), "/sys/fs/bpf/zm-bench-%d-%u", (int)getpid(), seq++);
	snprintf(batch, sizeof(batch), "%u", p->max_batch);

	a->pid = fork();
	if (a->pid < 0)
		return -errno;
	if (a->pid == 0) {
		struct rlimit rl;
		int log = open(a->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* As many fds as we may: the agent holds one per client. */
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		execl(p->zenmond, p->zenmond, "--socket", a->sock, "--pin-dir", a->pin_dir,
		      "--max-batch", batch, "--max-rate", "0", "--log-level", "warn", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", p->zenmond, strerror(errno));
		_exit(127);
	}
	deadline = now_ns() + AGENT_START_MS * 1000000ULL;
	while (agent_connectable(a->sock) < 0) {
		if (waitpid(a->pid, NULL, WNOHANG) == a->pid || now_ns() > deadline) {
			fprintf(stderr, "zm-bench-fanout: zenmond did not start\n");
			agent_print_log(a);
			kill(a->pid, SIGKILL);
			waitpid(a->pid, NULL, 0);
			return -ECHILD;
		}
		usleep(10000);
	}
	return 0;
}

static void agent_stop(struct agent *a)
{
	char cmd[160];
	int ws = 0;

	kill(a->pid, SIGTERM);
	if (waitpid(a->pid, &ws, 0) == a->pid && (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)) {
		fprintf(stderr, "zm-bench-fanout: zenmond ended with wait status 0x%x\n", ws);
		agent_print_log(a);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", a->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "zm-bench-fanout: could not remove %s\n", a->dir);
}

/* ---- targets ----------------------------------------------------------------- */

/* n processes in one new process group (its id in *ret_pgid), asleep until
 * killed. 0 or -errno. */
static int targets_spawn(pid_t *pids, long n, pid_t *ret_pgid)
{
	pid_t pgid = 0;

	for (long i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return -errno;
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		/* Both sides may race to set it; the parent's call settles it
		 * before the pid is used. */
		if (setpgid(pid, pgid) < 0)
			return -errno;
		if (!pgid)
			pgid = pid;
		pids[i] = pid;
	}
	*ret_pgid = pgid;
	return 0;
}

static void targets_reap(const pid_t *pids, long n)
{
	for (long i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
}

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
		if (now_ns() > deadline)
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
	struct agent a;
	uint64_t t0, t1, cpu0, cpu1, rss0, rss1, kill_real, last_death = 0;
	long target = 0;
	int r;

	memset(res, 0, sizeof(*res));
	memset(subs, 0, sizeof(subs));
	if (!pids)
		return -ENOMEM;
	r = agent_start(&a, p);
	if (r < 0) {
		free(pids);
		return r;
	}
	r = targets_spawn(pids, n_procs, &pgid);
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
			fprintf(stderr, "zm-bench-fanout: connect: %s\n", strerror(-r));
			goto out;
		}
	}

	/* Registration: everything queued (the library sends as it goes),
	 * then one round trip per subscriber. */
	reset_peak_rss(a.pid);
	rss0 = proc_status_kb(a.pid, "VmRSS:");
	t0 = now_ns();
	for (long i = 0; i < n_subs; i++) {
		for (size_t k = 0; k < subs[i].n; k++) {
			uint64_t ref;

			r = zm_monitor_pid(subs[i].c, pids[target], &ref);
			if (r < 0) {
				fprintf(stderr, "zm-bench-fanout: monitor: %s\n", strerror(-r));
				goto out;
			}
			target = (target + 1) % n_procs;
		}
		(void)zm_flush(subs[i].c);
	}
	for (long i = 0; i < n_subs; i++) {
		r = zm_sync(subs[i].c, WAIT_MS, NULL, NULL);
		if (r < 0) {
			fprintf(stderr, "zm-bench-fanout: sync: %s\n", strerror(-r));
			goto out;
		}
	}
	t1 = now_ns();
	rss1 = proc_status_kb(a.pid, "VmRSS:");
	res->m[M_REG_PER_S] = n / ((t1 - t0) / 1e9);
	res->m[M_BYTES_PER_MON] = ((double)rss1 - (double)rss0) / n;

	/* The mass death. */
	cpu0 = agent_cpu_ns(a.pid);
	kill_real = clock_ns(CLOCK_REALTIME);
	t0 = now_ns();
	if (kill(-pgid, SIGKILL) < 0) {
		r = -errno;
		goto out;
	}
	r = collect(subs, n_subs, t0 + WAIT_MS * 1000000ULL);
	t1 = now_ns();
	cpu1 = agent_cpu_ns(a.pid);
	targets_reap(pids, n_procs);
	pgid = 0;
	if (r < 0) {
		fprintf(stderr, "zm-bench-fanout: collecting DOWNs: %s\n", strerror(-r));
		goto out;
	}
	for (long i = 0; i < n_subs; i++)
		if (subs[i].last_death_ns > last_death)
			last_death = subs[i].last_death_ns;
	res->m[M_DEATHS_MS] = last_death > kill_real ? (last_death - kill_real) / 1e6 : 0;
	res->m[M_LAST_MS] = (t1 - t0) / 1e6;
	res->m[M_DOWNS_PER_S] = n / ((t1 - t0) / 1e9);
	res->m[M_NS_PER_DOWN] = (double)(cpu1 - cpu0) / n;
	res->m[M_PEAK_MIB] = proc_status_kb(a.pid, "VmHWM:") / 1048576.0;

	res->ok = true;
	for (long i = 0; i < n_subs; i++) {
		size_t missing = 0;

		for (size_t ref = 1; ref <= subs[i].n; ref++)
			missing += subs[i].seen[ref] == 0;
		if (missing || subs[i].dups || subs[i].bad) {
			fprintf(stderr, "zm-bench-fanout: subscriber %ld: %zu missing, %zu duplicate, "
				"%zu wrong DOWNs of %zu\n", i, missing, subs[i].dups, subs[i].bad,
				subs[i].n);
			res->ok = false;
		}
	}
	r = 0;
out:
	if (pgid) {
		kill(-pgid, SIGKILL);
		targets_reap(pids, n_procs);
	}
	for (long i = 0; i < n_subs; i++) {
		zm_close(subs[i].c);
		free(subs[i].seen);
	}
	agent_stop(&a);
	free(pids);
	return r;
}

/* ---- main ----------------------------------------------------------------------- */

static int parse_list(const char *s, long *out, int *ret_n)
{
	int n = 0;

	while (*s) {
		char *end;
		long v;

		if (n == MAX_LIST)
			return -1;
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || end == s || v <= 0)
			return -1;
		if (*end == 'k' || *end == 'K')
			v *= 1000, end++;
		else if (*end == 'm' || *end == 'M')
			v *= 1000000, end++;
		out[n++] = v;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	*ret_n = n;
	return n > 0 ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: zm-bench-fanout [OPTIONS]\n"
"Fan-out benchmark: N monitors on P processes killed together, read by S\n"
"subscribers, rate unlimited. Needs root.\n"
"  --zenmond PATH     the agent to run (default: build/zenmond)\n"
"  --sizes LIST       monitors per case, e.g. 10k,100k,1M (default: 10k,100k)\n"
"  --procs LIST       target processes (default: 1,100)\n"
"  --subs LIST        subscribers, at most %d (default: 1,10)\n"
"  --runs N           runs per case; medians are shown (default: 3)\n"
"  --max-batch N      zenmond --max-batch and what subscribers ask (default: 16384)\n",
		MAX_SUBS);
}

static void print_machine(const struct params *p)
{
	struct utsname u;
	char buf[4096], model[128] = "unknown";
	const char *m;

	uname(&u);
	if (read_text("/proc/cpuinfo", buf, sizeof(buf)) > 0 && (m = strstr(buf, "model name"))) {
		m = strchr(m, ':');
		if (m)
			sscanf(m + 1, " %127[^\n]", model);
	}
	printf("zm-bench-fanout: zenmon fan-out benchmark (libzenmon %s)\n", zm_version());
	printf("machine: Linux %s %s, %ld CPUs (%s), %.1f GiB RAM\n", u.release, u.machine,
	       sysconf(_SC_NPROCESSORS_ONLN), model,
	       (double)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / (1 << 30));
	printf("agent: %s --max-batch %u --max-rate 0 (batch window: default); "
	       "subscribers ask max_batch %u, max_rate 0 (unlimited)\n",
	       p->zenmond, p->max_batch, p->max_batch);
	printf("cases: sizes");
	for (int i = 0; i < p->n_sizes; i++)
		printf("%s%ld", i ? "," : " ", p->sizes[i]);
	printf(" x procs");
	for (int i = 0; i < p->n_procs; i++)
		printf("%s%ld", i ? "," : " ", p->procs[i]);
	printf(" x subscribers");
	for (int i = 0; i < p->n_subs; i++)
		printf("%s%ld", i ? "," : " ", p->subs[i]);
	printf("; %d run(s) each, medians; one reader thread for all subscribers\n\n", p->runs);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "zenmond", required_argument, NULL, 'z' },
		{ "sizes", required_argument, NULL, 'n' },
		{ "procs", required_argument, NULL, 'p' },
		{ "subs", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "max-batch", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct params p = {
		.zenmond = "build/zenmond",
		.sizes = { 10000, 100000 }, .n_sizes = 2,
		.procs = { 1, 100 }, .n_procs = 2,
		.subs = { 1, 10 }, .n_subs = 2,
		.runs = 3,
		.max_batch = 16384,
	};
	bool all_ok = true;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'z':
			p.zenmond = optarg;
			break;
		case 'n':
			if (parse_list(optarg, p.sizes, &p.n_sizes) < 0)
				goto bad;
			break;
		case 'p':
			if (parse_list(optarg, p.procs, &p.n_procs) < 0)
				goto bad;
			break;
		case 's':
			if (parse_list(optarg, p.subs, &p.n_subs) < 0)
				goto bad;
			for (int i = 0; i < p.n_subs; i++)
				if (p.subs[i] > MAX_SUBS)
					goto bad;
			break;
		case 'r':
			p.runs = atoi(optarg);
			if (p.runs < 1 || p.runs > 99)
				goto bad;
			break;
		case 'b':
			p.max_batch = (unsigned int)atoi(optarg);
			if (p.max_batch < 1 || p.max_batch > 16384)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind < argc)
		goto bad;
	if (geteuid() != 0) {
		fprintf(stderr, "zm-bench-fanout: needs root (zenmond loads BPF programs)\n");
		return 1;
	}
	if (access(p.zenmond, X_OK) != 0) {
		fprintf(stderr, "zm-bench-fanout: %s: %s (build it first: make)\n", p.zenmond,
			strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	print_machine(&p);

	printf("%9s %5s %4s | %9s | %9s %9s %11s | %8s %8s %6s | %s\n", "monitors", "procs", "subs",
	       "reg/s", "deaths ms", "last ms", "DOWNs/s", "ns/DOWN", "peak MiB", "B/mon",
	       "exactly once");
	for (int si = 0; si < p.n_sizes; si++) {
		for (int pi = 0; pi < p.n_procs; pi++) {
			for (int ui = 0; ui < p.n_subs; ui++) {
				double v[N_METRICS][99], med[N_METRICS];
				bool ok = true;
				int good = 0;

				for (int run = 0; run < p.runs; run++) {
					struct result r;

					if (run_once(&p, p.sizes[si], p.procs[pi], p.subs[ui], &r) < 0 ||
					    !r.ok) {
						ok = false;
						continue;
					}
					for (int m = 0; m < N_METRICS; m++)
						v[m][good] = r.m[m];
					good++;
				}
				all_ok = all_ok && ok;
				if (!good) {
					printf("%9ld %5ld %4ld | every run failed\n", p.sizes[si],
					       p.procs[pi], p.subs[ui]);
					continue;
				}
				for (int m = 0; m < N_METRICS; m++)
					med[m] = median(v[m], good);
				printf("%9ld %5ld %4ld | %9.0f | %9.1f %9.1f %11.0f | %8.0f %8.1f %6.0f | %s\n",
				       p.sizes[si], p.procs[pi], p.subs[ui], med[M_REG_PER_S],
				       med[M_DEATHS_MS], med[M_LAST_MS], med[M_DOWNS_PER_S],
				       med[M_NS_PER_DOWN], med[M_PEAK_MIB], med[M_BYTES_PER_MON],
				       ok ? "yes" : "NO (see above)");
			}
		}
	}
	return all_ok ? 0 : 1;
bad:
	usage(stderr);
	return 2;
}
