// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Baseline "pidfd": one pidfd_open() per target, every pidfd in one epoll
 * set. See base_pidfd.h.
 *
 * A pidfd turns readable once its whole thread group has exited (the
 * kernel's do_notify_pidfd() in exit_notify()). The exit status then comes
 * from the PIDFD_GET_INFO ioctl with PIDFD_INFO_EXIT (Linux 6.15+), but the
 * kernel records it only when the task is released, that is once its parent
 * has reaped it: measured on 6.18, a readable pidfd of an unreaped zombie
 * answers without PIDFD_INFO_EXIT in the mask. We ask once, when the pidfd
 * turns readable, and report -1 if it is not there yet: waiting for the
 * parent would put the parent's reaping delay into the watcher's latency.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>

#include "base_pidfd.h"

/*
 * struct pidfd_info and PIDFD_GET_INFO as include/uapi/linux/pidfd.h of
 * Linux 6.18 has them (PIDFD_INFO_SIZE_VER1, 72 bytes); Debian bookworm's
 * headers predate them. The ioctl is extensible: the kernel copies what
 * fits in the size encoded in the command, so a newer kernel serves this
 * layout too.
 */
struct base_pidfd_info {
	__u64 mask;
	__u64 cgroupid;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 ruid;
	__u32 rgid;
	__u32 euid;
	__u32 egid;
	__u32 suid;
	__u32 sgid;
	__u32 fsuid;
	__u32 fsgid;
	__s32 exit_code;        /* a wait status, as waitpid(2) gives it */
	__u32 coredump_mask;
	__u32 coredump_signal;
};

_Static_assert(sizeof(struct base_pidfd_info) == 72, "PIDFD_INFO_SIZE_VER1");

#define BASE_PIDFS_IOCTL_MAGIC 0xFF
#define BASE_PIDFD_GET_INFO _IOWR(BASE_PIDFS_IOCTL_MAGIC, 11, struct base_pidfd_info)
#define BASE_PIDFD_INFO_EXIT (1ULL << 3)

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434      /* the same number on every architecture */
#endif

#define PW_EVENTS 256           /* epoll events taken per poll call */

/* One watched target; fd -1 marks a free slot, whose next_free links the
 * free list. The slot's index is the epoll cookie, so a readiness event
 * finds its target without a lookup and slots never move. */
struct pw_entry {
	int fd;
	pid_t pid;
	uint64_t tag;
	size_t next_free;
};

struct pidfd_watcher {
	int epfd;
	struct pw_entry *e;
	size_t cap;             /* slots allocated */
	size_t used;            /* slots ever handed out (e[0..used-1]) */
	size_t free_head;       /* first free slot below used, or SIZE_MAX */
	size_t count;           /* targets watched */
	struct epoll_event ev[PW_EVENTS];
};

static uint64_t pw_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int pidfd_watcher_new(struct pidfd_watcher **ret)
{
	struct pidfd_watcher *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0) {
		int r = -errno;

		free(w);
		return r;
	}
	w->free_head = SIZE_MAX;
	*ret = w;
	return 0;
}

void pidfd_watcher_free(struct pidfd_watcher *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->used; i++)
		if (w->e[i].fd >= 0)
			close(w->e[i].fd);
	close(w->epfd);
	free(w->e);
	free(w);
}

/* A free slot's index in *ret_i. 0 or -ENOMEM. */
static int pw_slot_get(struct pidfd_watcher *w, size_t *ret_i)
{
	if (w->free_head != SIZE_MAX) {
		*ret_i = w->free_head;
		w->free_head = w->e[*ret_i].next_free;
		return 0;
	}
	if (w->used == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 1024;
		struct pw_entry *e = realloc(w->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		w->e = e;
		w->cap = cap;
	}
	*ret_i = w->used++;
	return 0;
}

static void pw_slot_put(struct pidfd_watcher *w, size_t i)
{
	w->e[i].fd = -1;
	w->e[i].next_free = w->free_head;
	w->free_head = i;
}

int pidfd_watcher_add(struct pidfd_watcher *w, pid_t pid, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN };
	size_t i;
	int fd, r;

	if (pid <= 0)
		return -EINVAL;
	r = pw_slot_get(w, &i);
	if (r < 0)
		return r;
	/* pidfd_open() always sets O_CLOEXEC on the new fd. */
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		r = -errno;
		pw_slot_put(w, i);
		return r;
	}
	ev.data.u64 = i;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		close(fd);
		pw_slot_put(w, i);
		return r;
	}
	w->e[i].fd = fd;
	w->e[i].pid = pid;
	w->e[i].tag = tag;
	w->count++;
	return 0;
}

/* The wait status the kernel recorded for the pidfd's process, or -1 when
 * it has none (not reaped yet, or a kernel older than 6.15). */
static int pw_exit_status(int fd)
{
	struct base_pidfd_info info;

	memset(&info, 0, sizeof(info));
	info.mask = BASE_PIDFD_INFO_EXIT;
	if (ioctl(fd, BASE_PIDFD_GET_INFO, &info) < 0)
		return -1;
	if (!(info.mask & BASE_PIDFD_INFO_EXIT))
		return -1;
	return info.exit_code;
}

int pidfd_watcher_poll(struct pidfd_watcher *w, int timeout_ms, pidfd_exit_fn fn, void *ud)
{
	int n, reported = 0;

	n = epoll_wait(w->epfd, w->ev, PW_EVENTS, timeout_ms);
	if (n < 0)
		return -errno;
	for (int k = 0; k < n; k++) {
		size_t i = (size_t)w->ev[k].data.u64;
		struct pw_entry e;
		int status;

		/* Never trust a cookie further than our own table. */
		if (i >= w->used || w->e[i].fd < 0)
			continue;
		/* A copy: fn may add targets, and the table may move. */
		e = w->e[i];
		status = pw_exit_status(e.fd);
		if (fn)
			fn(e.tag, e.pid, status, pw_now_ns(), ud);
		/* Closing our only reference also takes it out of the epoll
		 * set: no EPOLL_CTL_DEL needed. */
		close(e.fd);
		pw_slot_put(w, i);
		w->count--;
		reported++;
	}
	return reported;
}

int pidfd_watcher_fd(const struct pidfd_watcher *w)
{
	return w->epfd;
}

size_t pidfd_watcher_count(const struct pidfd_watcher *w)
{
	return w->count;
}
