// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* The agent's log levels (user/zenmond/log.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static void test_parse_level_accepts_each_name(void **state)
{
	enum log_level l;

	assert_int_equal(log_parse_level("error", &l), 0);
	assert_int_equal(l, LOG_LVL_ERROR);
	assert_int_equal(log_parse_level("warn", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_parse_level("info", &l), 0);
	assert_int_equal(l, LOG_LVL_INFO);
	assert_int_equal(log_parse_level("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
}

static void test_parse_level_rejects_unknown_name(void **state)
{
	enum log_level l = LOG_LVL_WARN;

	assert_int_equal(log_parse_level("verbose", &l), -EINVAL);
	assert_int_equal(log_parse_level("", &l), -EINVAL);
	assert_int_equal(log_parse_level("INFO", &l), -EINVAL);
	assert_int_equal(l, LOG_LVL_WARN);
}

/* Capture what log_msg writes to stderr. */
static size_t capture(enum log_level set, enum log_level lvl, const char *msg, char *out, size_t n)
{
	int fds[2], saved = dup(STDERR_FILENO);
	ssize_t got;

	assert_int_equal(pipe(fds), 0);
	fflush(stderr);
	dup2(fds[1], STDERR_FILENO);
	log_set_level(set);
	log_msg(lvl, "%s", msg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	got = read(fds[0], out, n - 1);
	close(fds[0]);
	out[got > 0 ? got : 0] = '\0';
	return got > 0 ? (size_t)got : 0;
}

static void test_message_below_level_is_dropped(void **state)
{
	char buf[256];

	assert_int_equal(capture(LOG_LVL_WARN, LOG_LVL_INFO, "quiet", buf, sizeof(buf)), 0);
}

static void test_message_is_one_prefixed_line(void **state)
{
	char buf[256];

	capture(LOG_LVL_INFO, LOG_LVL_ERROR, "cannot attach", buf, sizeof(buf));
	assert_string_equal(buf, "zenmond: cannot attach\n");
}

static void test_warning_says_warning(void **state)
{
	char buf[256];

	capture(LOG_LVL_INFO, LOG_LVL_WARN, "slow reader", buf, sizeof(buf));
	assert_string_equal(buf, "zenmond: warning: slow reader\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_level_accepts_each_name),
		cmocka_unit_test(test_parse_level_rejects_unknown_name),
		cmocka_unit_test(test_message_below_level_is_dropped),
		cmocka_unit_test(test_message_is_one_prefixed_line),
		cmocka_unit_test(test_warning_says_warning),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
