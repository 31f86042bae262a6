// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* The agent's event loop: see loop.h. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define LOOP_MAX_EVENTS 256

struct loop {
	int epfd;
	bool stop;
	void (*before_sleep)(void *ctx);
	void *before_sleep_ctx;
	void (*after_pass)(void *ctx, uint64_t busy_ns);
	void *after_pass_ctx;
	/* The pass in progress, so that loop_del() can cancel a source's
	 * pending event when an earlier callback in the same pass closed it. */
	struct epoll_event events[LOOP_MAX_EVENTS];
	int nevents, cursor;
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = errno;
		free(l);
		errno = err;
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

static int loop_ctl(struct loop *l, int op, struct loop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(l->epfd, op, src->fd, &ev) < 0 ? -errno : 0;
}

int loop_add(struct loop *l, struct loop_source *src, uint32_t events)
{
	return loop_ctl(l, EPOLL_CTL_ADD, src, events);
}

int loop_mod(struct loop *l, struct loop_source *src, uint32_t events)
{
	return loop_ctl(l, EPOLL_CTL_MOD, src, events);
}

int loop_del(struct loop *l, struct loop_source *src)
{
	int r = loop_ctl(l, EPOLL_CTL_DEL, src, 0);

	for (int i = l->cursor; i < l->nevents; i++)
		if (l->events[i].data.ptr == src)
			l->events[i].data.ptr = NULL;
	return r;
}

void loop_set_before_sleep(struct loop *l, void (*fn)(void *ctx), void *ctx)
{
	l->before_sleep = fn;
	l->before_sleep_ctx = ctx;
}

void loop_set_after_pass(struct loop *l, void (*fn)(void *ctx, uint64_t busy_ns), void *ctx)
{
	l->after_pass = fn;
	l->after_pass_ctx = ctx;
}

static uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int loop_run(struct loop *l)
{
	uint64_t woke_ns = 0;   /* when the pass in progress began; 0 before the first */

	while (!l->stop) {
		if (l->before_sleep)
			l->before_sleep(l->before_sleep_ctx);
		if (l->after_pass && woke_ns)
			l->after_pass(l->after_pass_ctx, loop_now_ns() - woke_ns);
		if (l->stop)
			break;
		l->nevents = epoll_wait(l->epfd, l->events, LOOP_MAX_EVENTS, -1);
		if (l->nevents < 0) {
			l->nevents = 0;
			woke_ns = 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (l->after_pass)
			woke_ns = loop_now_ns();
		for (l->cursor = 0; l->cursor < l->nevents; l->cursor++) {
			struct epoll_event *ev = &l->events[l->cursor];
			struct loop_source *src = ev->data.ptr;

			if (src)
				src->fn(src, ev->events);
		}
		l->nevents = l->cursor = 0;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

bool loop_stopping(const struct loop *l)
{
	return l->stop;
}
