/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * What /proc says about a process: identity (pid, start time), state, and
 * whether it is on its way out. The parsers are pure (unit-tested on text);
 * the readers take a proc root so that tests can point them at a fake tree.
 */
#ifndef ZENMOND_PROCFS_H
#define ZENMOND_PROCFS_H

#include <stdint.h>
#include <sys/types.h>

#define PROCFS_PF_EXITING 0x00000004U /* task->flags: in do_exit() */

struct proc_stat {
	pid_t pid;             /* field 1 */
	char state;            /* field 3: R S D Z X t T I ... */
	uint32_t flags;        /* field 9: task->flags */
	uint64_t start_ticks;  /* field 22 */
	int exit_code;         /* field 52: wait(2) status of a zombie; -1 if absent */
	long num_threads;      /* field 20 */
};

/*
 * Parse the text of /proc/PID/stat (len bytes, not NUL-terminated). The comm
 * field may hold spaces and parentheses: the parser takes the last ')'.
 * 0 or -EINVAL.
 */
int procfs_parse_stat(const char *buf, size_t len, struct proc_stat *ret);

/* Parse "Tgid:" out of the text of /proc/PID/status. 0 or -EINVAL. */
int procfs_parse_status_tgid(const char *buf, size_t len, pid_t *ret_tgid);

/*
 * Who may signal a process, by kill(2)'s rule: the sender's uid must equal
 * the target's real or saved uid.
 */
struct proc_uids {
	uint32_t ruid;         /* real */
	uint32_t suid;         /* saved set-user-ID */
};

/* Parse "Uid:" (real, effective, saved, filesystem) out of the text of
 * /proc/PID/status. 0 or -EINVAL. */
int procfs_parse_status_uids(const char *buf, size_t len, struct proc_uids *ret);

/* Parse "Pid:" out of the text of /proc/self/fdinfo/FD of a pidfd: 0 and the
 * pid; -ESRCH when it reads -1 (reaped); -EBADF when there is no Pid: line
 * (not a pidfd). */
int procfs_parse_pidfd_fdinfo(const char *buf, size_t len, pid_t *ret_pid);

/* proc_root is "/proc" outside tests. -ENOENT when the pid does not exist. */
int procfs_read_stat(const char *proc_root, pid_t pid, struct proc_stat *ret);
int procfs_read_tgid(const char *proc_root, pid_t pid, pid_t *ret_tgid);
/* The real and saved uid of pid (a zombie's too). -ENOENT when it is gone.
 * The caller checks that pid is still the process it means. */
int procfs_read_uids(const char *proc_root, pid_t pid, struct proc_uids *ret);
int procfs_pidfd_pid(const char *proc_root, int pidfd, pid_t *ret_pid);

/*
 * Is the whole thread group on its way out? 1 when every thread under
 * /proc/PID/task is a zombie/dead or has PF_EXITING set (or there are none),
 * 0 when at least one thread still runs, -errno when /proc cannot tell.
 */
int procfs_group_exiting(const char *proc_root, pid_t pid);

#endif
