// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * What /proc says about a process: see procfs.h.
 *
 * The kernel renders each of these small files in one go when it is read,
 * so one read() of a buffer larger than the file sees a consistent snapshot.
 * The parsers never read past len and never need a NUL terminator: the text
 * comes from the kernel (or from a test), and a process names itself (comm),
 * so /proc/PID/stat is not trusted to be well formed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "procfs.h"

/* Larger than any of the files read here (a stat line is under 1 KiB; Tgid:
 * and Uid: are near the top of status, so a longer status file loses
 * nothing). */
#define PROCFS_BUF 4096

/* /proc/PID/stat fields this module needs (numbered from 1, as in proc(5)). */
#define STAT_STATE 3
#define STAT_FLAGS 9
#define STAT_NUM_THREADS 20
#define STAT_STARTTIME 22
#define STAT_EXIT_CODE 52

/* ---- number parsing on counted text ------------------------------------- */

/* Decimal digits only, no sign, no overflow. */
static int parse_u64(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/* An optional '-' then digits, within [min, max]. */
static int parse_i64(const char *s, size_t n, int64_t min, int64_t max, int64_t *ret)
{
	bool neg = n > 0 && s[0] == '-';
	uint64_t u;
	int64_t v;

	if (parse_u64(s + neg, n - neg, &u) < 0)
		return -EINVAL;
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return -EINVAL;
		v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
	} else {
		if (u > (uint64_t)INT64_MAX)
			return -EINVAL;
		v = (int64_t)u;
	}
	if (v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* An optional '-' then one or more digits (any magnitude). */
static bool is_decimal(const char *s, size_t n)
{
	size_t i = n > 0 && s[0] == '-';

	if (i == n)
		return false;
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* ---- /proc/PID/stat ----------------------------------------------------- */

int procfs_parse_stat(const char *buf, size_t len, struct proc_stat *ret)
{
	struct proc_stat st = { .exit_code = -1 };
	const char *open, *close, *p, *end;
	int64_t v;
	uint64_t u;
	unsigned field;

	/* Field 1, the pid, then " (". */
	open = memchr(buf, '(', len);
	if (!open || open - buf < 2 || open[-1] != ' ')
		return -EINVAL;
	if (parse_i64(buf, (size_t)(open - 1 - buf), 1, INT_MAX, &v) < 0)
		return -EINVAL;
	st.pid = (pid_t)v;

	/* Field 2, comm, runs to the last ')': comm itself may hold ") R 1 ". */
	close = memrchr(open, ')', len - (size_t)(open - buf));
	if (!close)
		return -EINVAL;

	/* Fields 3 on: single-space separated, the line ends with '\n' or len. */
	end = buf + len;
	if (end > close + 1 && end[-1] == '\n')
		end--;
	p = close + 1;
	for (field = 3; p < end && field <= STAT_EXIT_CODE; field++) {
		const char *tok;
		size_t n;

		if (*p != ' ')
			return -EINVAL;
		tok = ++p;
		while (p < end && *p != ' ')
			p++;
		n = (size_t)(p - tok);

		if (field == STAT_STATE) {
			if (n != 1)
				return -EINVAL;
			st.state = tok[0];
			continue;
		}
		/* Every later field is a decimal number; checking them all
		 * is what tells a stat line from garbage. */
		if (!is_decimal(tok, n))
			return -EINVAL;
		switch (field) {
		case STAT_FLAGS:
			if (parse_u64(tok, n, &u) < 0 || u > UINT32_MAX)
				return -EINVAL;
			st.flags = (uint32_t)u;
			break;
		case STAT_NUM_THREADS:
			if (parse_i64(tok, n, 0, LONG_MAX, &v) < 0)
				return -EINVAL;
			st.num_threads = (long)v;
			break;
		case STAT_STARTTIME:
			if (parse_u64(tok, n, &u) < 0)
				return -EINVAL;
			st.start_ticks = u;
			break;
		case STAT_EXIT_CODE:
			if (parse_i64(tok, n, INT_MIN, INT_MAX, &v) < 0)
				return -EINVAL;
			st.exit_code = (int)v;
			break;
		default:
			break;
		}
	}
	/* Fields past 22 came with later kernels; 52 (exit_code) with 3.5. */
	if (field <= STAT_STARTTIME)
		return -EINVAL;

	*ret = st;
	return 0;
}

/* ---- "Name:\tvalue" files ----------------------------------------------- */

/*
 * Find the line that starts with name (e.g. "Tgid:") and return its value,
 * blanks skipped, up to the end of the line. Only line starts match, so
 * "NSpid:" is not "Pid:", and a comm in "Name:" cannot fake a field (the
 * kernel escapes newlines in it).
 */
static int find_line_value(const char *buf, size_t len, const char *name,
			   const char **ret_val, size_t *ret_n)
{
	size_t name_len = strlen(name);
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) >= name_len && memcmp(p, name, name_len) == 0) {
			const char *v = p + name_len;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*ret_val = v;
			*ret_n = (size_t)(eol - v);
			return 0;
		}
		p = eol + 1;
	}
	return -ENOENT;
}

int procfs_parse_status_tgid(const char *buf, size_t len, pid_t *ret_tgid)
{
	const char *v;
	size_t n;
	int64_t tgid;

	if (find_line_value(buf, len, "Tgid:", &v, &n) < 0)
		return -EINVAL;
	if (parse_i64(v, n, 1, INT_MAX, &tgid) < 0)
		return -EINVAL;
	*ret_tgid = (pid_t)tgid;
	return 0;
}

int procfs_parse_status_uids(const char *buf, size_t len, struct proc_uids *ret)
{
	uint64_t ids[4];
	const char *v, *end;
	size_t n;

	if (find_line_value(buf, len, "Uid:", &v, &n) < 0)
		return -EINVAL;
	/* Four decimal ids separated by tabs: real, effective, saved, fs. */
	end = v + n;
	for (int i = 0; i < 4; i++) {
		const char *tok = v;

		while (v < end && *v != '\t' && *v != ' ')
			v++;
		if (parse_u64(tok, (size_t)(v - tok), &ids[i]) < 0 || ids[i] > UINT32_MAX)
			return -EINVAL;
		while (v < end && (*v == '\t' || *v == ' '))
			v++;
	}
	*ret = (struct proc_uids){ .ruid = (uint32_t)ids[0], .suid = (uint32_t)ids[2] };
	return 0;
}

int procfs_parse_pidfd_fdinfo(const char *buf, size_t len, pid_t *ret_pid)
{
	const char *v;
	size_t n;
	int64_t pid;

	if (find_line_value(buf, len, "Pid:", &v, &n) < 0)
		return -EBADF;
	if (parse_i64(v, n, -1, INT_MAX, &pid) < 0)
		return -EINVAL;
	/*
	 * -1: the process has been reaped. 0: it lives in a pid namespace
	 * this /proc cannot see, so for us there is no such process either.
	 */
	if (pid <= 0)
		return -ESRCH;
	*ret_pid = (pid_t)pid;
	return 0;
}

/* ---- readers ------------------------------------------------------------ */

/*
 * Read a whole small file relative to dirfd with one read(). Bytes read, or
 * -ENOENT when it (or its process) is gone, or -errno.
 */
static ssize_t read_small_file(int dirfd, const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd, err;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	do
		n = read(fd, buf, size);
	while (n < 0 && errno == EINTR);
	err = errno;
	close(fd);
	if (n < 0)
		return err == ESRCH ? -ENOENT : -err;
	return n;
}

static int proc_path(char *path, size_t size, const char *proc_root, pid_t pid, const char *file)
{
	int n = snprintf(path, size, "%s/%d/%s", proc_root, (int)pid, file);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int procfs_read_stat(const char *proc_root, pid_t pid, struct proc_stat *ret)
{
	char path[PATH_MAX], buf[PROCFS_BUF];
	struct proc_stat st;
	ssize_t n;
	int r;

	if (pid <= 0)
		return -EINVAL;
	r = proc_path(path, sizeof(path), proc_root, pid, "stat");
	if (r < 0)
		return r;
	n = read_small_file(AT_FDCWD, path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (procfs_parse_stat(buf, (size_t)n, &st) < 0 || st.pid != pid)
		return -EINVAL;
	*ret = st;
	return 0;
}

/* The head of /proc/PID/status into buf (PROCFS_BUF bytes): its length, or
 * -errno. */
static ssize_t read_status(const char *proc_root, pid_t pid, char *buf)
{
	char path[PATH_MAX];
	int r;

	if (pid <= 0)
		return -EINVAL;
	r = proc_path(path, sizeof(path), proc_root, pid, "status");
	if (r < 0)
		return r;
	return read_small_file(AT_FDCWD, path, buf, PROCFS_BUF);
}

int procfs_read_tgid(const char *proc_root, pid_t pid, pid_t *ret_tgid)
{
	char buf[PROCFS_BUF];
	ssize_t n = read_status(proc_root, pid, buf);

	if (n < 0)
		return (int)n;
	return procfs_parse_status_tgid(buf, (size_t)n, ret_tgid);
}

int procfs_read_uids(const char *proc_root, pid_t pid, struct proc_uids *ret)
{
	char buf[PROCFS_BUF];
	ssize_t n = read_status(proc_root, pid, buf);

	if (n < 0)
		return (int)n;
	return procfs_parse_status_uids(buf, (size_t)n, ret);
}

int procfs_pidfd_pid(const char *proc_root, int pidfd, pid_t *ret_pid)
{
	char path[PATH_MAX], buf[PROCFS_BUF];
	ssize_t n;
	int len;

	if (pidfd < 0)
		return -EBADF;
	len = snprintf(path, sizeof(path), "%s/self/fdinfo/%d", proc_root, pidfd);
	if (len < 0 || (size_t)len >= sizeof(path))
		return -ENAMETOOLONG;
	n = read_small_file(AT_FDCWD, path, buf, sizeof(buf));
	if (n == -ENOENT)
		return -EBADF;             /* no such open fd */
	if (n < 0)
		return (int)n;
	return procfs_parse_pidfd_fdinfo(buf, (size_t)n, ret_pid);
}

static bool is_tid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool thread_gone(const struct proc_stat *st)
{
	return st->state == 'Z' || st->state == 'X' || (st->flags & PROCFS_PF_EXITING);
}

int procfs_group_exiting(const char *proc_root, pid_t pid)
{
	char path[PATH_MAX], buf[PROCFS_BUF];
	struct dirent *de;
	DIR *dir;
	int dfd, r;

	if (pid <= 0)
		return -EINVAL;
	r = proc_path(path, sizeof(path), proc_root, pid, "task");
	if (r < 0)
		return r;
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	dir = fdopendir(dfd);
	if (!dir) {
		r = -errno;
		close(dfd);
		return r;
	}

	r = 1;
	for (;;) {
		char name[sizeof(de->d_name) + sizeof("/stat")];
		struct proc_stat st;
		ssize_t n;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			/* A task directory whose process died reads as empty. */
			if (errno != 0 && errno != ENOENT && errno != ESRCH)
				r = -errno;
			break;
		}
		if (!is_tid_name(de->d_name))
			continue;
		snprintf(name, sizeof(name), "%s/stat", de->d_name);
		n = read_small_file(dirfd(dir), name, buf, sizeof(buf));
		if (n == -ENOENT)
			continue;              /* exited and reaped mid-scan: gone */
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (procfs_parse_stat(buf, (size_t)n, &st) < 0) {
			r = -EINVAL;
			break;
		}
		if (!thread_gone(&st)) {
			r = 0;
			break;
		}
	}
	closedir(dir);
	return r;
}
