// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* The agent's event loop (user/zenmond/loop.c), driven with pipes. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

struct probe {
	struct loop_source src;
	struct loop *loop;
	int calls;
	uint32_t events;
	struct probe *victim;     /* loop_del() this one from our callback */
	bool stop;                /* loop_stop() from our callback */
};

static void probe_fn(struct loop_source *src, uint32_t events)
{
	struct probe *p = (struct probe *)src;
	char buf[16];

	p->calls++;
	p->events = events;
	if (read(src->fd, buf, sizeof(buf)) < 0 && errno != EAGAIN && errno != EBADF)
		fail_msg("read: %d", errno);
	if (p->victim)
		loop_del(p->loop, &p->victim->src);
	if (p->stop)
		loop_stop(p->loop);
}

static void make_pipe(int fds[2])
{
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void test_readable_source_gets_its_events(void **state)
{
	struct loop *l = loop_new();
	struct probe p = { .src.fn = probe_fn, .stop = true };
	int fds[2];

	assert_non_null(l);
	make_pipe(fds);
	p.loop = l;
	p.src.fd = fds[0];
	assert_int_equal(loop_add(l, &p.src, EPOLLIN), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(p.calls, 1);
	assert_true(p.events & EPOLLIN);
	assert_true(loop_stopping(l));
	close(fds[0]);
	close(fds[1]);
	loop_free(l);
}

static int sleeps;
static struct loop *sleep_loop;

static void count_sleep(void *ctx)
{
	int *stop_after = ctx;

	if (++sleeps >= *stop_after)
		loop_stop(sleep_loop);
}

static void test_before_sleep_runs_before_every_wait(void **state)
{
	struct loop *l = loop_new();
	struct probe p = { .src.fn = probe_fn };
	int stop_after = 2, fds[2];

	make_pipe(fds);
	p.loop = l;
	p.src.fd = fds[0];
	sleeps = 0;
	sleep_loop = l;
	assert_int_equal(loop_add(l, &p.src, EPOLLIN), 0);
	/* First before-sleep, then a pass that reads the pipe, then the second
	 * before-sleep stops the loop instead of letting it wait. */
	assert_int_equal(write(fds[1], "x", 1), 1);
	loop_set_before_sleep(l, count_sleep, &stop_after);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(sleeps, 2);
	assert_int_equal(p.calls, 1);
	close(fds[0]);
	close(fds[1]);
	loop_free(l);
}

static void test_source_deleted_in_same_pass_is_not_called(void **state)
{
	struct loop *l = loop_new();
	struct probe a = { .src.fn = probe_fn, .stop = true };
	struct probe b = { .src.fn = probe_fn, .stop = true };
	int fa[2], fb[2];

	make_pipe(fa);
	make_pipe(fb);
	a.loop = b.loop = l;
	a.src.fd = fa[0];
	b.src.fd = fb[0];
	/* Whichever runs first deletes the other: only one may be called. */
	a.victim = &b;
	b.victim = &a;
	assert_int_equal(loop_add(l, &a.src, EPOLLIN), 0);
	assert_int_equal(loop_add(l, &b.src, EPOLLIN), 0);
	assert_int_equal(write(fa[1], "x", 1), 1);
	assert_int_equal(write(fb[1], "x", 1), 1);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(a.calls + b.calls, 1);
	close(fa[0]);
	close(fa[1]);
	close(fb[0]);
	close(fb[1]);
	loop_free(l);
}

static void test_mod_changes_the_events_watched(void **state)
{
	struct loop *l = loop_new();
	struct probe p = { .src.fn = probe_fn, .stop = true };
	int fds[2];

	make_pipe(fds);
	p.loop = l;
	p.src.fd = fds[1]; /* the write end: always writable */
	assert_int_equal(loop_add(l, &p.src, 0), 0);
	assert_int_equal(loop_mod(l, &p.src, EPOLLOUT), 0);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(p.calls, 1);
	assert_true(p.events & EPOLLOUT);
	close(fds[0]);
	close(fds[1]);
	loop_free(l);
}

static void test_add_bad_fd_returns_negative_errno(void **state)
{
	struct loop *l = loop_new();
	struct probe p = { .src.fd = -1, .src.fn = probe_fn };

	assert_int_equal(loop_add(l, &p.src, EPOLLIN), -EBADF);
	loop_free(l);
}

static void test_free_null_is_a_noop(void **state)
{
	loop_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readable_source_gets_its_events),
		cmocka_unit_test(test_before_sleep_runs_before_every_wait),
		cmocka_unit_test(test_source_deleted_in_same_pass_is_not_called),
		cmocka_unit_test(test_mod_changes_the_events_watched),
		cmocka_unit_test(test_add_bad_fd_returns_negative_errno),
		cmocka_unit_test(test_free_null_is_a_noop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
