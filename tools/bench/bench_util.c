// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zm-bench: the helpers every module shares (bench.h): clocks and
 * statistics, /proc readings, room for many processes, sleeping targets, a
 * private zenmond, BPF program statistics, and the one table.
 */
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define AGENT_START_MS 10000

/* ---- the table ------------------------------------------------------------ */

void bench_table_add(struct bench_table *t, const struct bench_row *row)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		struct bench_row *r = realloc(t->rows, cap * sizeof(*r));

		if (!r) {
			fprintf(stderr, "zm-bench: out of memory; row lost: %s %s\n", row->section,
				row->measure);
			return;
		}
		t->rows = r;
		t->cap = cap;
	}
	t->rows[t->n++] = *row;
}

static void print_value(FILE *f, double v)
{
	if (isnan(v))
		fprintf(f, " %11s", "-");
	else if (v != 0 && fabs(v) < 10)
		fprintf(f, " %11.2f", v);
	else
		fprintf(f, " %11.0f", v);
}

void bench_table_print(const struct bench_table *t, FILE *f)
{
	static const char *const col[BCOL_N] = {
		[BCOL_ZENMON] = "zenmon", [BCOL_PIDFD] = "pidfd", [BCOL_CNPROC] = "proc conn",
		[BCOL_EXITSNOOP] = "exitsnoop", [BCOL_NONE] = "no observer",
	};
	const char *section = "";

	fprintf(f, "%-11s %-46s %-7s", "section", "measure", "unit");
	for (int c = 0; c < BCOL_N; c++)
		fprintf(f, " %11s", col[c]);
	fprintf(f, "  %s\n", "zenmon vs the rest");
	for (size_t i = 0; i < t->n; i++) {
		const struct bench_row *r = &t->rows[i];

		if (strcmp(r->section, section) != 0 && i)
			fputc('\n', f);
		fprintf(f, "%-11s %-46s %-7s", strcmp(r->section, section) ? r->section : "",
			r->measure, r->unit);
		section = r->section;
		for (int c = 0; c < BCOL_N; c++)
			print_value(f, r->v[c]);
		fprintf(f, "  %s\n", r->note);
	}
}

void bench_table_free(struct bench_table *t)
{
	free(t->rows);
	*t = (struct bench_table){ 0 };
}

/* ---- numbers --------------------------------------------------------------- */

uint64_t bench_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t bench_now_ns(void)
{
	return bench_clock_ns(CLOCK_MONOTONIC);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n)
{
	if (!n)
		return BENCH_NA;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_percentile(double *v, size_t n, double p)
{
	size_t rank;

	if (!n)
		return BENCH_NA;
	qsort(v, n, sizeof(*v), cmp_double);
	rank = (size_t)ceil(p / 100.0 * (double)n);
	return v[rank ? rank - 1 : 0];
}

int bench_parse_size(const char *s, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || v <= 0)
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		v *= 1000, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1000000, end++;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* ---- the machine and the processes ---------------------------------------- */

int bench_read_text(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return (int)len;
}

int bench_write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		r = -errno;
	close(fd);
	return r;
}

void bench_print_machine(FILE *f, const char *what)
{
	struct utsname u;
	char buf[8192], model[128] = "unknown";
	const char *m;

	uname(&u);
	if (bench_read_text("/proc/cpuinfo", buf, sizeof(buf)) > 0 &&
	    (m = strstr(buf, "model name")) && (m = strchr(m, ':')))
		sscanf(m + 1, " %127[^\n]", model);
	fprintf(f, "%s\n", what);
	fprintf(f, "machine: Linux %s %s, %ld CPUs (%s), %.1f GiB RAM\n", u.release, u.machine,
		sysconf(_SC_NPROCESSORS_ONLN), model,
		(double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1 << 30));
}

uint64_t bench_proc_cpu_ns(pid_t pid)
{
	char path[300], buf[1024];
	struct dirent *e;
	uint64_t sum = 0;
	DIR *d;

	/* schedstat counts nanoseconds; utime + stime count 10 ms ticks, too
	 * coarse for a flood that lasts 10 ms. */
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		if (bench_read_text(path, buf, sizeof(buf)) > 0)
			sum += strtoull(buf, NULL, 10);
	}
	if (d)
		closedir(d);
	return sum;
}

uint64_t bench_proc_status_bytes(pid_t pid, const char *name)
{
	char path[64], buf[4096];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (bench_read_text(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, name)))
		return 0;
	return strtoull(p + strlen(name), NULL, 10) * 1024ULL;
}

void bench_reset_peak_rss(pid_t pid)
{
	char path[64];
	int r;

	/* clear_refs 5 resets VmHWM to the current RSS. */
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	r = bench_write_text(path, "5");
	if (r < 0)
		fprintf(stderr, "zm-bench: cannot reset the peak RSS of %d: %s\n", (int)pid,
			strerror(-r));
}

long bench_raise_nofile(void)
{
	struct rlimit rl;
	char buf[32];

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (geteuid() == 0 && bench_read_text("/proc/sys/fs/nr_open", buf, sizeof(buf)) > 0)
		rl.rlim_max = strtoul(buf, NULL, 10);
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	return (long)rl.rlim_cur;
}

/* sysctls raised for the run, and their values before. */
static struct saved_sysctl {
	const char *path;
	char old[32];
	bool saved;
} saved_sysctls[] = {
	{ .path = "/proc/sys/kernel/pid_max" },
	{ .path = "/proc/sys/kernel/threads-max" },
};

void bench_restore_sysctls(void)
{
	for (size_t i = 0; i < sizeof(saved_sysctls) / sizeof(saved_sysctls[0]); i++) {
		struct saved_sysctl *s = &saved_sysctls[i];

		if (s->saved && bench_write_text(s->path, s->old) == 0)
			s->saved = false;
	}
}

/* Raise the sysctl at i to at least want. 0 or -errno. */
static int raise_sysctl(size_t i, long want)
{
	struct saved_sysctl *s = &saved_sysctls[i];
	static bool registered;
	char buf[32];
	int r;

	r = bench_read_text(s->path, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (strtol(buf, NULL, 10) >= want)
		return 0;
	if (!s->saved) {
		snprintf(s->old, sizeof(s->old), "%ld", strtol(buf, NULL, 10));
		s->saved = true;
	}
	if (!registered) {
		atexit(bench_restore_sysctls);
		registered = true;
	}
	snprintf(buf, sizeof(buf), "%ld", want);
	r = bench_write_text(s->path, buf);
	if (r < 0)
		fprintf(stderr, "zm-bench: cannot raise %s to %s: %s (run as root)\n", s->path, buf,
			strerror(-r));
	return r;
}

int bench_make_room_for_procs(long n)
{
	/* Room for the targets on top of what runs already, with slack for
	 * the storms and the kernel's own pid reservations. */
	long want = 2 * n + 65536;
	int r;

	if (want > 4194304)
		want = 4194304;
	r = raise_sysctl(0, want);
	if (r < 0)
		return r;
	return raise_sysctl(1, want);
}

/*
 * Sleepers are clone(CLONE_VM) children, not fork()s. 100,000 children forked
 * from one parent all map that parent's anonymous pages, and every rmap walk
 * over such a page (reclaim, or kdamond's sampling on a host that runs
 * DAMON, as this VM does) visits each of them, holding the anon_vma lock
 * that every further fork needs: forked sleepers came at ~700/s for the
 * first 5,000 and slower with each one (33,000 in 11 minutes), clone(CLONE_VM)
 * ones at ~10,000/s throughout. Each is still a process of its own (its own
 * pid and thread group), which is all an observer sees.
 *
 * A sleeper runs on SLEEPER_STACK bytes, so it makes raw system calls only,
 * with every signal blocked (no handler of ours can run on that stack;
 * SIGKILL still ends it). It shares our TLS, so it must not touch errno: the
 * calls it makes do not fail.
 */
#define SLEEPER_STACK 4096
#define MAX_SLEEPER_SETS 64   /* sets alive at once */

/* The stacks of each set spawned, unmapped when the set is reaped. */
static struct sleeper_set {
	const pid_t *pids;
	char *stacks;
	size_t len;
} sleeper_sets[MAX_SLEEPER_SETS];

static int sleeper_main(void *arg)
{
	uint64_t all[2] = { ~0ULL, ~0ULL };
	pid_t parent = (pid_t)(intptr_t)arg;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, all, NULL, _NSIG / 8);
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* The parent may have died before the prctl: then nobody kills us. */
	if (syscall(SYS_getppid) != parent)
		return 0;
	for (;;)
		syscall(SYS_ppoll, NULL, 0, NULL, NULL, 0);
	return 0;
}

int bench_spawn_sleepers(pid_t *pids, long n, pid_t *ret_pgid)
{
	struct sleeper_set *set = NULL;
	pid_t pgid = 0, me = getpid();
	int r = 0;
	long i;

	for (size_t k = 0; k < MAX_SLEEPER_SETS && !set; k++)
		if (!sleeper_sets[k].pids)
			set = &sleeper_sets[k];
	if (!set)
		return -ENOSPC; /* a caller that never calls bench_sleepers_free() */
	set->len = (size_t)n * SLEEPER_STACK;
	set->stacks = mmap(NULL, set->len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (set->stacks == MAP_FAILED)
		return -ENOMEM;
	set->pids = pids;
	/* Nothing we fork later (an agent, exitsnoop) needs them. */
	madvise(set->stacks, set->len, MADV_DONTFORK);
	for (i = 0; i < n; i++) {
		char *top = set->stacks + (size_t)(i + 1) * SLEEPER_STACK;
		pid_t pid = clone(sleeper_main, top, CLONE_VM | SIGCHLD, (void *)(intptr_t)me);

		if (pid < 0) {
			r = -errno;
			break;
		}
		/* One process group, so that one kill() ends them all. */
		if (setpgid(pid, pgid) < 0) {
			r = -errno;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			break;
		}
		if (!pgid)
			pgid = pid;
		pids[i] = pid;
	}
	if (r < 0) {
		if (pgid)
			kill(-pgid, SIGKILL);
		bench_reap(pids, i);
		bench_sleepers_free(pids);
		return r;
	}
	*ret_pgid = pgid;
	return 0;
}

void bench_reap(const pid_t *pids, long n)
{
	for (long i = 0; i < n; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
}

void bench_sleepers_free(const pid_t *pids)
{
	/* Only once reaped: a sleeper's stack is in use until then. Apart
	 * from bench_reap() so that unmapping is never inside a timing. */
	for (size_t k = 0; k < MAX_SLEEPER_SETS; k++) {
		if (sleeper_sets[k].pids == pids) {
			munmap(sleeper_sets[k].stacks, sleeper_sets[k].len);
			sleeper_sets[k] = (struct sleeper_set){ 0 };
		}
	}
}

/* ---- a private zenmond ------------------------------------------------------ */

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

static void agent_print_log(const struct bench_agent *a)
{
	char buf[8192];

	if (bench_read_text(a->log, buf, sizeof(buf)) > 0)
		fprintf(stderr, "---- %s ----\n%s---- end ----\n", a->log, buf);
}

int bench_agent_start(struct bench_agent *a, const struct bench_cfg *cfg,
		      const char *const *extra_args)
{
	static unsigned int seq;
	const char *argv[64];
	uint64_t deadline;
	int argc = 0;

	memset(a, 0, sizeof(*a));
	snprintf(a->dir, sizeof(a->dir), "/tmp/zm-bench-XXXXXX");
	if (!mkdtemp(a->dir))
		return -errno;
	snprintf(a->sock, sizeof(a->sock), "%s/sock", a->dir);
	snprintf(a->log, sizeof(a->log), "%s/zenmond.log", a->dir);
	snprintf(a->pin_dir, sizeof(a->pin_dir), "/sys/fs/bpf/zm-bench-%d-%u", (int)getpid(), seq++);

	argv[argc++] = cfg->zenmond;
	argv[argc++] = "--socket";
	argv[argc++] = a->sock;
	argv[argc++] = "--pin-dir";
	argv[argc++] = a->pin_dir;
	argv[argc++] = "--log-level";
	argv[argc++] = "warn";
	for (int i = 0; extra_args && extra_args[i] && argc < 63; i++)
		argv[argc++] = extra_args[i];
	argv[argc] = NULL;

	a->pid = fork();
	if (a->pid < 0)
		return -errno;
	if (a->pid == 0) {
		int log = open(a->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		bench_raise_nofile(); /* the agent holds an fd per client */
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		execv(cfg->zenmond, (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", cfg->zenmond, strerror(errno));
		_exit(127);
	}
	deadline = bench_now_ns() + AGENT_START_MS * 1000000ULL;
	while (agent_connectable(a->sock) < 0) {
		if (waitpid(a->pid, NULL, WNOHANG) == a->pid || bench_now_ns() > deadline) {
			fprintf(stderr, "zm-bench: %s did not start (its log follows)\n", cfg->zenmond);
			agent_print_log(a);
			kill(a->pid, SIGKILL);
			waitpid(a->pid, NULL, 0);
			a->pid = 0;
			bench_agent_stop(a);
			return -ECHILD;
		}
		usleep(5000);
	}
	return 0;
}

static void remove_tree(const char *dir)
{
	struct dirent *e;
	char path[PATH_MAX];
	DIR *d = opendir(dir);

	while (d && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name), unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

void bench_agent_stop(struct bench_agent *a)
{
	int ws = 0;

	if (a->pid > 0) {
		kill(a->pid, SIGTERM);
		if (waitpid(a->pid, &ws, 0) == a->pid && (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)) {
			fprintf(stderr, "zm-bench: zenmond ended with wait status 0x%x\n", ws);
			agent_print_log(a);
		}
		a->pid = 0;
	}
	/* The agent removes its pins on a clean stop; a killed one leaves
	 * them (pins outlive it by design). */
	remove_tree(a->pin_dir);
	if (a->dir[0])
		remove_tree(a->dir);
}

/* ---- BPF program statistics ---------------------------------------------------- */

static char old_bpf_stats[8];

static void restore_bpf_stats(void)
{
	if (old_bpf_stats[0])
		bench_write_text("/proc/sys/kernel/bpf_stats_enabled", old_bpf_stats);
}

int bench_bpf_stats_enable(void)
{
	const char *path = "/proc/sys/kernel/bpf_stats_enabled";
	int r;

	if (!old_bpf_stats[0]) {
		r = bench_read_text(path, old_bpf_stats, sizeof(old_bpf_stats));
		if (r < 0)
			return r;
		atexit(restore_bpf_stats);
	}
	r = bench_write_text(path, "1");
	if (r < 0)
		fprintf(stderr, "zm-bench: cannot enable %s: %s (run as root)\n", path, strerror(-r));
	return r;
}

int bench_prog_stats(const char *name, struct bench_prog_stats *ret)
{
	struct bench_prog_stats sum = { 0 };
	__u32 id = 0;

	while (bpf_prog_get_next_id(id, &id) == 0) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue; /* unloaded meanwhile */
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    strncmp(info.name, name, sizeof(info.name) - 1) == 0) {
			sum.run_time_ns += info.run_time_ns;
			sum.run_cnt += info.run_cnt;
		}
		close(fd);
	}
	if (errno != ENOENT)
		return -errno;
	*ret = sum;
	return 0;
}
