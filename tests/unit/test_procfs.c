// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * procfs: the parsers on literal text, the readers on a fake tree in a
 * temporary directory, and a few checks against the real /proc.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "procfs.h"

/* Real lines read on this project's Linux 6.18 host: 52 fields. */
static const char real_running[] =
	"4911 (cat) R 4909 4909 2351 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 70526 "
	"3133440 407 18446744073709551615 93990771269632 93990771289513 140730967312256 "
	"0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 93990771305520 93990771307136 93991114784768 "
	"140730967316935 140730967316955 140730967316955 140730967318507 0\n";
static const char real_zombie[] =
	"5764 (python3) Z 5712 5708 2351 0 -1 4227148 230 0 0 0 0 0 0 0 20 0 1 0 81375 "
	"0 0 18446744073709551615 0 0 0 0 0 0 0 16781312 2 1 0 0 17 0 0 0 0 0 0 0 0 0 0 "
	"0 0 0 1792\n";

/* A stat line with the given middle: "PID (COMM) STATE" then fields 4..N,
 * with flags (9), num_threads (20), starttime (22) and, if nfields >= 52,
 * exit_code (52) set. */
static size_t make_stat(char *buf, size_t size, int pid, const char *comm, char state,
			unsigned flags, long threads, unsigned long long start, int exit_code,
			int nfields)
{
	size_t n = (size_t)snprintf(buf, size, "%d (%s) %c", pid, comm, state);

	for (int f = 4; f <= nfields; f++) {
		long long v = f;   /* something recognisable in the other fields */

		if (f == 9)
			v = flags;
		else if (f == 20)
			v = threads;
		else if (f == 22)
			v = (long long)start;
		else if (f == 52)
			v = exit_code;
		else if (f == 18)
			v = -51;   /* priority of a real-time task is negative */
		n += (size_t)snprintf(buf + n, size - n, " %lld", v);
	}
	n += (size_t)snprintf(buf + n, size - n, "\n");
	return n;
}

static int parse_str(const char *s, struct proc_stat *st)
{
	return procfs_parse_stat(s, strlen(s), st);
}

/* ---- procfs_parse_stat -------------------------------------------------- */

static void test_parse_stat_real_running_line(void **state)
{
	struct proc_stat st;

	(void)state;
	assert_int_equal(parse_str(real_running, &st), 0);
	assert_int_equal(st.pid, 4911);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.flags, 4194304);
	assert_int_equal(st.num_threads, 1);
	assert_int_equal(st.start_ticks, 70526);
	assert_int_equal(st.exit_code, 0);
}

static void test_parse_stat_real_zombie_line(void **state)
{
	struct proc_stat st;

	(void)state;
	assert_int_equal(parse_str(real_zombie, &st), 0);
	assert_int_equal(st.pid, 5764);
	assert_int_equal(st.state, 'Z');
	assert_true(st.flags & PROCFS_PF_EXITING);
	assert_int_equal(st.start_ticks, 81375);
	assert_int_equal(st.exit_code, 7 << 8);
}

static void test_parse_stat_comm_with_spaces_and_parens(void **state)
{
	char buf[1024];
	size_t n = make_stat(buf, sizeof(buf), 42, "(a) b)", 'S', 0x40, 3, 123456, 0, 52);
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
	assert_int_equal(st.pid, 42);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.flags, 0x40);
	assert_int_equal(st.num_threads, 3);
	assert_int_equal(st.start_ticks, 123456);
}

static void test_parse_stat_comm_faking_fields_is_skipped(void **state)
{
	char buf[1024];
	/* A process named to look like the rest of a stat line. */
	size_t n = make_stat(buf, sizeof(buf), 7, ") Z 1 1 1 0 -1 4 ", 'R', 0, 1, 99, 0, 52);
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.start_ticks, 99);
}

static void test_parse_stat_comm_with_newline(void **state)
{
	char buf[1024];
	size_t n = make_stat(buf, sizeof(buf), 7, "a\nb", 'S', 0, 1, 5, 0, 52);
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
	assert_int_equal(st.start_ticks, 5);
}

static void test_parse_stat_empty_comm(void **state)
{
	char buf[1024];
	size_t n = make_stat(buf, sizeof(buf), 7, "", 'S', 0, 1, 5, 0, 52);
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
	assert_int_equal(st.pid, 7);
}

static void test_parse_stat_old_kernel_without_exit_code_gives_minus_one(void **state)
{
	char buf[1024];
	size_t n = make_stat(buf, sizeof(buf), 7, "old", 'S', 0, 1, 5, 0, 44);
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
	assert_int_equal(st.start_ticks, 5);
	assert_int_equal(st.exit_code, -1);
}

static void test_parse_stat_stops_at_starttime_minimum(void **state)
{
	char buf[1024];
	size_t n = make_stat(buf, sizeof(buf), 7, "x", 'S', 0, 1, 5, 0, 22);
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
	assert_int_equal(st.start_ticks, 5);
	assert_int_equal(st.exit_code, -1);
}

static void test_parse_stat_without_starttime_is_einval(void **state)
{
	char buf[1024];
	size_t n = make_stat(buf, sizeof(buf), 7, "x", 'S', 0, 1, 5, 0, 21);
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(buf, n, &st), -EINVAL);
}

static void test_parse_stat_extra_fields_of_future_kernels_are_ignored(void **state)
{
	char buf[1024];
	size_t n = make_stat(buf, sizeof(buf), 7, "new", 'S', 0, 1, 5, 0x0900, 60);
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
	assert_int_equal(st.exit_code, 0x0900);
}

static void test_parse_stat_without_trailing_newline(void **state)
{
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(real_running, strlen(real_running) - 1, &st), 0);
	assert_int_equal(st.exit_code, 0);
}

static void test_parse_stat_garbage_is_einval(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		"hello",
		"12",
		"12 (x",                          /* no ')' */
		"12 x) R 1",                      /* no '(' */
		"(x) R 1 2 3",                    /* no pid */
		" (x) R 1 2 3",                   /* empty pid */
		"-3 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
		"0 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
		"1a (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
		"12(x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
		"12 (x)R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
		"12 (x) RS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
		"12 (x)  1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
		"12 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 x 19",
		"12 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -19",  /* starttime < 0 */
		"12 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18  19",
		"12 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 ",
		"12 (x) R 1 2 3 4 5 99999999999 7 8 9 10 11 12 13 14 15 16 17 18 19",   /* flags > u32 */
		"12 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99999999999999999999",
		"99999999999 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
	};
	struct proc_stat st;

	(void)state;
	/* The well-formed line the bad ones are variations of. */
	assert_int_equal(parse_str("12 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
				   &st), 0);
	assert_int_equal(st.start_ticks, 19);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_str(bad[i], &st) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
	}
}

static void test_parse_stat_leaves_result_untouched_on_error(void **state)
{
	struct proc_stat st = { .pid = 1234, .start_ticks = 77 };

	(void)state;
	assert_int_equal(parse_str("12 (x) R 1 2", &st), -EINVAL);
	assert_int_equal(st.pid, 1234);
	assert_int_equal(st.start_ticks, 77);
}

static void test_parse_stat_reads_nothing_past_len(void **state)
{
	size_t n = strlen(real_running);
	char *exact = malloc(n);    /* no terminator: the sanitizers catch overreads */
	struct proc_stat st;

	(void)state;
	assert_non_null(exact);
	memcpy(exact, real_running, n);
	assert_int_equal(procfs_parse_stat(exact, n, &st), 0);
	/* Cut just after field 21: starttime is missing. */
	assert_int_equal(procfs_parse_stat(exact, (size_t)(strstr(real_running, " 70526") -
							   real_running), &st), -EINVAL);
	free(exact);
}

/* ---- procfs_parse_status_tgid ------------------------------------------- */

static void test_parse_status_tgid(void **state)
{
	static const char s[] = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\n"
				"Tgid:\t4919\nNgid:\t0\nPid:\t4920\nPPid:\t1\n";
	pid_t tgid = 0;

	(void)state;
	assert_int_equal(procfs_parse_status_tgid(s, strlen(s), &tgid), 0);
	assert_int_equal(tgid, 4919);
}

static void test_parse_status_tgid_only_at_line_start(void **state)
{
	/* A process may call itself "Tgid:\t1". */
	static const char s[] = "Name:\tTgid:\t1\nTgid:\t300\n";
	pid_t tgid = 0;

	(void)state;
	assert_int_equal(procfs_parse_status_tgid(s, strlen(s), &tgid), 0);
	assert_int_equal(tgid, 300);
}

static void test_parse_status_tgid_on_last_line_without_newline(void **state)
{
	static const char s[] = "Name:\tx\nTgid:\t12";
	pid_t tgid = 0;

	(void)state;
	assert_int_equal(procfs_parse_status_tgid(s, strlen(s), &tgid), 0);
	assert_int_equal(tgid, 12);
}

static void test_parse_status_without_tgid_is_einval(void **state)
{
	static const char *const bad[] = {
		"", "Name:\tx\nPid:\t5\n", "Tgid:\n", "Tgid:\tabc\n", "Tgid:\t0\n", "Tgid:\t-1\n",
		"Tgid:\t12 x\n",
	};
	pid_t tgid = 77;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(procfs_parse_status_tgid(bad[i], strlen(bad[i]), &tgid), -EINVAL);
	assert_int_equal(tgid, 77);
}

/* ---- procfs_parse_status_uids ------------------------------------------- */

static void test_parse_status_uids_takes_real_and_saved(void **state)
{
	/* A set-user-ID program: real 1000, effective and saved 0, fs 0. */
	static const char s[] = "Name:\tpasswd\nUmask:\t0022\nState:\tS (sleeping)\n"
				"Tgid:\t4919\nPid:\t4919\nPPid:\t1\nTracerPid:\t0\n"
				"Uid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
	struct proc_uids u = { 0 };

	(void)state;
	assert_int_equal(procfs_parse_status_uids(s, strlen(s), &u), 0);
	assert_int_equal(u.ruid, 1000);
	assert_int_equal(u.suid, 0);
}

static void test_parse_status_uids_only_at_line_start(void **state)
{
	/* A process may call itself "Uid:\t0\t0\t0\t0". */
	static const char s[] = "Name:\tUid:\t0\t0\t0\t0\nUid:\t65534\t65534\t7\t65534\n";
	struct proc_uids u = { 0 };

	(void)state;
	assert_int_equal(procfs_parse_status_uids(s, strlen(s), &u), 0);
	assert_int_equal(u.ruid, 65534);
	assert_int_equal(u.suid, 7);
}

static void test_parse_status_uids_malformed_is_einval(void **state)
{
	static const char *const bad[] = {
		"", "Name:\tx\n", "Uid:\n", "Uid:\t1\t2\t3\n", "Uid:\t1\t2\tx\t4\n",
		"Uid:\t-1\t0\t0\t0\n", "Uid:\t4294967296\t0\t0\t0\n",
	};
	struct proc_uids u = { .ruid = 77, .suid = 78 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(procfs_parse_status_uids(bad[i], strlen(bad[i]), &u), -EINVAL);
	assert_int_equal(u.ruid, 77);
	assert_int_equal(u.suid, 78);
}

/* ---- procfs_parse_pidfd_fdinfo ------------------------------------------ */

static void test_parse_pidfd_fdinfo_pid(void **state)
{
	static const char s[] = "pos:\t0\nflags:\t02000002\nmnt_id:\t4\nino:\t4924\n"
				"Pid:\t4923\nNSpid:\t4923\n";
	pid_t pid = 0;

	(void)state;
	assert_int_equal(procfs_parse_pidfd_fdinfo(s, strlen(s), &pid), 0);
	assert_int_equal(pid, 4923);
}

static void test_parse_pidfd_fdinfo_reaped_is_esrch(void **state)
{
	static const char s[] = "pos:\t0\nflags:\t02000002\nPid:\t-1\nNSpid:\t-1\n";
	pid_t pid = 0;

	(void)state;
	assert_int_equal(procfs_parse_pidfd_fdinfo(s, strlen(s), &pid), -ESRCH);
}

static void test_parse_pidfd_fdinfo_other_namespace_is_esrch(void **state)
{
	static const char s[] = "pos:\t0\nPid:\t0\n";
	pid_t pid = 0;

	(void)state;
	assert_int_equal(procfs_parse_pidfd_fdinfo(s, strlen(s), &pid), -ESRCH);
}

static void test_parse_pidfd_fdinfo_not_a_pidfd_is_ebadf(void **state)
{
	static const char s[] = "pos:\t0\nflags:\t02100002\nmnt_id:\t25\nino:\t1234\n";
	static const char nspid_only[] = "NSpid:\t5\n";
	pid_t pid = 0;

	(void)state;
	assert_int_equal(procfs_parse_pidfd_fdinfo(s, strlen(s), &pid), -EBADF);
	assert_int_equal(procfs_parse_pidfd_fdinfo(nspid_only, strlen(nspid_only), &pid), -EBADF);
	assert_int_equal(procfs_parse_pidfd_fdinfo("", 0, &pid), -EBADF);
}

static void test_parse_pidfd_fdinfo_garbage_pid_is_einval(void **state)
{
	static const char s[] = "Pid:\tx12\n";
	static const char minus_two[] = "Pid:\t-2\n";
	pid_t pid = 0;

	(void)state;
	assert_int_equal(procfs_parse_pidfd_fdinfo(s, strlen(s), &pid), -EINVAL);
	assert_int_equal(procfs_parse_pidfd_fdinfo(minus_two, strlen(minus_two), &pid), -EINVAL);
}

/* ---- the readers on a fake tree ----------------------------------------- */

struct fake {
	char root[64];
};

static void put_file(const struct fake *f, const char *rel, const char *text)
{
	char path[PATH_MAX], dir[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	/* mkdir -p of the parent */
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + strlen(f->root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", dir, strerror(errno));
		*p = '/';
	}
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static void put_stat(const struct fake *f, const char *rel, int pid, char state,
		     unsigned flags)
{
	char buf[1024];

	make_stat(buf, sizeof(buf), pid, "fake", state, flags, 1, 1000, 0, 52);
	put_file(f, rel, buf);
}

static void put_task(const struct fake *f, int pid, int tid, char state, unsigned flags)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "%d/task/%d/stat", pid, tid);
	put_stat(f, rel, tid, state, flags);
}

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/zm-procfs-XXXXXX");
	if (!mkdtemp(f->root)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void test_read_stat_from_fake_tree(void **state)
{
	struct fake *f = *state;
	struct proc_stat st;

	put_stat(f, "321/stat", 321, 'S', 0x40);
	assert_int_equal(procfs_read_stat(f->root, 321, &st), 0);
	assert_int_equal(st.pid, 321);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.start_ticks, 1000);
}

static void test_read_stat_missing_pid_is_enoent(void **state)
{
	struct fake *f = *state;
	struct proc_stat st;

	assert_int_equal(procfs_read_stat(f->root, 999, &st), -ENOENT);
}

static void test_read_stat_garbage_is_einval(void **state)
{
	struct fake *f = *state;
	struct proc_stat st;

	put_file(f, "5/stat", "not a stat line\n");
	assert_int_equal(procfs_read_stat(f->root, 5, &st), -EINVAL);
}

static void test_read_stat_of_another_pid_is_einval(void **state)
{
	struct fake *f = *state;
	struct proc_stat st;

	put_stat(f, "5/stat", 6, 'S', 0);
	assert_int_equal(procfs_read_stat(f->root, 5, &st), -EINVAL);
}

static void test_read_stat_nonpositive_pid_is_einval(void **state)
{
	struct fake *f = *state;
	struct proc_stat st;

	assert_int_equal(procfs_read_stat(f->root, 0, &st), -EINVAL);
	assert_int_equal(procfs_read_stat(f->root, -1, &st), -EINVAL);
}

static void test_read_tgid_from_fake_tree(void **state)
{
	struct fake *f = *state;
	pid_t tgid = 0;

	put_file(f, "11/status", "Name:\tt\nUmask:\t0022\nState:\tS\nTgid:\t10\nPid:\t11\n");
	assert_int_equal(procfs_read_tgid(f->root, 11, &tgid), 0);
	assert_int_equal(tgid, 10);
	assert_int_equal(procfs_read_tgid(f->root, 12, &tgid), -ENOENT);
}

static void test_read_uids_from_fake_tree(void **state)
{
	struct fake *f = *state;
	struct proc_uids u = { 0 };

	put_file(f, "11/status", "Name:\tt\nTgid:\t11\nUid:\t5\t6\t7\t8\nGid:\t1\t1\t1\t1\n");
	assert_int_equal(procfs_read_uids(f->root, 11, &u), 0);
	assert_int_equal(u.ruid, 5);
	assert_int_equal(u.suid, 7);
	assert_int_equal(procfs_read_uids(f->root, 12, &u), -ENOENT);
}

static void test_real_own_uids(void **state)
{
	struct proc_uids u = { .ruid = 1, .suid = 1 };
	uid_t r, e, sv;

	(void)state;
	assert_int_equal(getresuid(&r, &e, &sv), 0);
	assert_int_equal(procfs_read_uids("/proc", getpid(), &u), 0);
	assert_int_equal(u.ruid, r);
	assert_int_equal(u.suid, sv);
}

static void test_pidfd_pid_from_fake_tree(void **state)
{
	struct fake *f = *state;
	pid_t pid = 0;

	put_file(f, "self/fdinfo/3", "pos:\t0\nflags:\t02000002\nPid:\t4923\nNSpid:\t4923\n");
	assert_int_equal(procfs_pidfd_pid(f->root, 3, &pid), 0);
	assert_int_equal(pid, 4923);
}

static void test_pidfd_pid_reaped_is_esrch(void **state)
{
	struct fake *f = *state;
	pid_t pid = 0;

	put_file(f, "self/fdinfo/4", "pos:\t0\nflags:\t02000002\nPid:\t-1\nNSpid:\t-1\n");
	assert_int_equal(procfs_pidfd_pid(f->root, 4, &pid), -ESRCH);
}

static void test_pidfd_pid_of_a_plain_file_is_ebadf(void **state)
{
	struct fake *f = *state;
	pid_t pid = 0;

	put_file(f, "self/fdinfo/5", "pos:\t0\nflags:\t0100002\nmnt_id:\t25\nino:\t12\n");
	assert_int_equal(procfs_pidfd_pid(f->root, 5, &pid), -EBADF);
}

static void test_pidfd_pid_of_a_closed_fd_is_ebadf(void **state)
{
	struct fake *f = *state;
	pid_t pid = 0;

	assert_int_equal(procfs_pidfd_pid(f->root, 6, &pid), -EBADF);
	assert_int_equal(procfs_pidfd_pid(f->root, -1, &pid), -EBADF);
}

static void test_group_exiting_all_zombie_is_1(void **state)
{
	struct fake *f = *state;

	put_task(f, 50, 50, 'Z', 0);
	put_task(f, 50, 51, 'Z', 0);
	put_task(f, 50, 52, 'X', 0);
	assert_int_equal(procfs_group_exiting(f->root, 50), 1);
}

static void test_group_exiting_one_running_is_0(void **state)
{
	struct fake *f = *state;

	put_task(f, 50, 50, 'Z', 0);
	put_task(f, 50, 51, 'S', 0x40);
	put_task(f, 50, 52, 'Z', 0);
	assert_int_equal(procfs_group_exiting(f->root, 50), 0);
}

static void test_group_exiting_pf_exiting_counts_as_gone(void **state)
{
	struct fake *f = *state;

	put_task(f, 50, 50, 'Z', 0);
	put_task(f, 50, 51, 'R', 0x40 | PROCFS_PF_EXITING);
	put_task(f, 50, 52, 'D', PROCFS_PF_EXITING);
	assert_int_equal(procfs_group_exiting(f->root, 50), 1);
}

static void test_group_exiting_vanished_task_counts_as_gone(void **state)
{
	struct fake *f = *state;
	char dir[PATH_MAX];

	put_task(f, 50, 50, 'Z', 0);
	/* A task directory whose stat is gone: reaped while we listed. */
	snprintf(dir, sizeof(dir), "%s/50/task/51", f->root);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(procfs_group_exiting(f->root, 50), 1);
}

static void test_group_exiting_no_threads_is_1(void **state)
{
	struct fake *f = *state;
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/50", f->root);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/50/task", f->root);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(procfs_group_exiting(f->root, 50), 1);
}

static void test_group_exiting_missing_pid_is_enoent(void **state)
{
	struct fake *f = *state;

	assert_int_equal(procfs_group_exiting(f->root, 50), -ENOENT);
}

static void test_group_exiting_garbage_task_stat_is_einval(void **state)
{
	struct fake *f = *state;

	put_task(f, 50, 50, 'Z', 0);
	put_file(f, "50/task/51/stat", "garbage\n");
	assert_int_equal(procfs_group_exiting(f->root, 50), -EINVAL);
}

static void test_group_exiting_ignores_non_tid_entries(void **state)
{
	struct fake *f = *state;

	put_task(f, 50, 50, 'Z', 0);
	put_file(f, "50/task/notes/stat", "5 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n");
	assert_int_equal(procfs_group_exiting(f->root, 50), 1);
}

/* ---- the real /proc ----------------------------------------------------- */

static void test_real_own_stat_is_stable(void **state)
{
	struct proc_stat a, b;

	(void)state;
	assert_int_equal(procfs_read_stat("/proc", getpid(), &a), 0);
	assert_int_equal(procfs_read_stat("/proc", getpid(), &b), 0);
	assert_int_equal(a.pid, getpid());
	assert_int_equal(a.state, 'R');
	assert_true(a.start_ticks > 0);
	assert_int_equal(a.start_ticks, b.start_ticks);
	assert_true(a.num_threads >= 1);
	assert_int_equal(a.exit_code, 0);     /* field 52 exists on this kernel */
}

static void test_real_own_group_is_not_exiting(void **state)
{
	(void)state;
	assert_int_equal(procfs_group_exiting("/proc", getpid()), 0);
}

/* Fork a child that exits with 7 and wait, without reaping, until it is a zombie. */
static pid_t make_zombie(struct proc_stat *ret)
{
	struct timespec pause_ts = { .tv_nsec = 1000000 };
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(7);
	for (int i = 0; i < 5000; i++) {
		siginfo_t si = { 0 };

		/* WNOWAIT: learn that it exited, leave it a zombie. */
		assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
		assert_int_equal(procfs_read_stat("/proc", pid, ret), 0);
		if (ret->state == 'Z')
			return pid;
		nanosleep(&pause_ts, NULL);
	}
	fail_msg("child %d never became a zombie", (int)pid);
	return -1;
}

static void test_real_zombie_child_reads_z_and_exit_code(void **state)
{
	struct proc_stat st;
	pid_t pid = make_zombie(&st);

	(void)state;
	assert_int_equal(st.state, 'Z');
	assert_int_equal(st.exit_code, 7 << 8);
	assert_int_equal(procfs_group_exiting("/proc", pid), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void *report_tid(void *arg)
{
	int *fds = arg;
	pid_t tid = gettid();
	char c;

	if (write(fds[1], &tid, sizeof(tid)) != (ssize_t)sizeof(tid))
		return NULL;
	/* Stay alive until the test has looked. */
	if (read(fds[2], &c, 1) < 0)
		return NULL;
	return NULL;
}

static void test_real_thread_tgid_is_its_process(void **state)
{
	int up[2], down[2], fds[3];
	pthread_t th;
	pid_t tid = 0, tgid = 0;
	struct proc_stat st;

	(void)state;
	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(down, O_CLOEXEC), 0);
	fds[0] = up[0];
	fds[1] = up[1];
	fds[2] = down[0];
	assert_int_equal(pthread_create(&th, NULL, report_tid, fds), 0);
	assert_int_equal(read(up[0], &tid, sizeof(tid)), sizeof(tid));

	assert_int_not_equal(tid, getpid());
	assert_int_equal(procfs_read_tgid("/proc", tid, &tgid), 0);
	assert_int_equal(tgid, getpid());
	assert_int_equal(procfs_read_tgid("/proc", getpid(), &tgid), 0);
	assert_int_equal(tgid, getpid());
	/* /proc/TID/stat names the thread itself. */
	assert_int_equal(procfs_read_stat("/proc", tid, &st), 0);
	assert_int_equal(st.pid, tid);

	assert_int_equal(write(down[1], "x", 1), 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

static void test_real_pidfd_pid_follows_the_process(void **state)
{
	pid_t pid, got = 0;
	int pidfd, plain;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(pidfd >= 0);
	assert_int_equal(procfs_pidfd_pid("/proc", pidfd, &got), 0);
	assert_int_equal(got, pid);

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(procfs_pidfd_pid("/proc", pidfd, &got), -ESRCH);

	plain = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(plain >= 0);
	assert_int_equal(procfs_pidfd_pid("/proc", plain, &got), -EBADF);
	close(plain);
	close(pidfd);
	assert_int_equal(procfs_pidfd_pid("/proc", pidfd, &got), -EBADF);
}

static void test_real_reaped_child_is_enoent(void **state)
{
	struct proc_stat st, again;
	pid_t pid = make_zombie(&st);
	int r;

	(void)state;
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	r = procfs_read_stat("/proc", pid, &again);
	/* Pids are handed out cyclically, so reuse this soon is all but
	 * impossible; if it happened, the start time tells them apart. */
	if (r == 0)
		assert_int_not_equal(again.start_ticks, st.start_ticks);
	else
		assert_int_equal(r, -ENOENT);
}

int main(void)
{
#define F(fn) cmocka_unit_test_setup_teardown(fn, fake_setup, fake_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_stat_real_running_line),
		cmocka_unit_test(test_parse_stat_real_zombie_line),
		cmocka_unit_test(test_parse_stat_comm_with_spaces_and_parens),
		cmocka_unit_test(test_parse_stat_comm_faking_fields_is_skipped),
		cmocka_unit_test(test_parse_stat_comm_with_newline),
		cmocka_unit_test(test_parse_stat_empty_comm),
		cmocka_unit_test(test_parse_stat_old_kernel_without_exit_code_gives_minus_one),
		cmocka_unit_test(test_parse_stat_stops_at_starttime_minimum),
		cmocka_unit_test(test_parse_stat_without_starttime_is_einval),
		cmocka_unit_test(test_parse_stat_extra_fields_of_future_kernels_are_ignored),
		cmocka_unit_test(test_parse_stat_without_trailing_newline),
		cmocka_unit_test(test_parse_stat_garbage_is_einval),
		cmocka_unit_test(test_parse_stat_leaves_result_untouched_on_error),
		cmocka_unit_test(test_parse_stat_reads_nothing_past_len),
		cmocka_unit_test(test_parse_status_tgid),
		cmocka_unit_test(test_parse_status_tgid_only_at_line_start),
		cmocka_unit_test(test_parse_status_tgid_on_last_line_without_newline),
		cmocka_unit_test(test_parse_status_without_tgid_is_einval),
		cmocka_unit_test(test_parse_status_uids_takes_real_and_saved),
		cmocka_unit_test(test_parse_status_uids_only_at_line_start),
		cmocka_unit_test(test_parse_status_uids_malformed_is_einval),
		cmocka_unit_test(test_parse_pidfd_fdinfo_pid),
		cmocka_unit_test(test_parse_pidfd_fdinfo_reaped_is_esrch),
		cmocka_unit_test(test_parse_pidfd_fdinfo_other_namespace_is_esrch),
		cmocka_unit_test(test_parse_pidfd_fdinfo_not_a_pidfd_is_ebadf),
		cmocka_unit_test(test_parse_pidfd_fdinfo_garbage_pid_is_einval),
		F(test_read_stat_from_fake_tree),
		F(test_read_stat_missing_pid_is_enoent),
		F(test_read_stat_garbage_is_einval),
		F(test_read_stat_of_another_pid_is_einval),
		F(test_read_stat_nonpositive_pid_is_einval),
		F(test_read_tgid_from_fake_tree),
		F(test_read_uids_from_fake_tree),
		F(test_pidfd_pid_from_fake_tree),
		F(test_pidfd_pid_reaped_is_esrch),
		F(test_pidfd_pid_of_a_plain_file_is_ebadf),
		F(test_pidfd_pid_of_a_closed_fd_is_ebadf),
		F(test_group_exiting_all_zombie_is_1),
		F(test_group_exiting_one_running_is_0),
		F(test_group_exiting_pf_exiting_counts_as_gone),
		F(test_group_exiting_vanished_task_counts_as_gone),
		F(test_group_exiting_no_threads_is_1),
		F(test_group_exiting_missing_pid_is_enoent),
		F(test_group_exiting_garbage_task_stat_is_einval),
		F(test_group_exiting_ignores_non_tid_entries),
		cmocka_unit_test(test_real_own_stat_is_stable),
		cmocka_unit_test(test_real_own_uids),
		cmocka_unit_test(test_real_own_group_is_not_exiting),
		cmocka_unit_test(test_real_zombie_child_reads_z_and_exit_code),
		cmocka_unit_test(test_real_thread_tgid_is_its_process),
		cmocka_unit_test(test_real_pidfd_pid_follows_the_process),
		cmocka_unit_test(test_real_reaped_child_is_enoent),
	};
#undef F
	return cmocka_run_group_tests(tests, NULL, NULL);
}
