// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* The agent's event loop: see loop.h. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

#define LOOP_MAX_EVENTS 256

struct loop {
	int epfd;
	bool stop;
	void (*before_sleep)(void *ctx);
	void *before_sleep_ctx;
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

int loop_run(struct loop *l)
{
	while (!l->stop) {
		if (l->before_sleep)
			l->before_sleep(l->before_sleep_ctx);
		if (l->stop)
			break;
		l->nevents = epoll_wait(l->epfd, l->events, LOOP_MAX_EVENTS, -1);
		if (l->nevents < 0) {
			l->nevents = 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
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
