// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* reason_from_wait_status: the wait(2) encoding, spelled out in hex. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "reason.h"

/* A zm_down whose untouched fields are recognisable. */
static struct zm_down decode(uint32_t status)
{
	struct zm_down d = {
		.ref = 0x1111, .pid = 0x2222, .start_ticks = 0x3333,
		.reason = 0xffff, .value = -12345, .flags = 0xffffffffU,
	};

	reason_from_wait_status(status, &d);
	assert_int_equal(d.ref, 0x1111);
	assert_int_equal(d.pid, 0x2222);
	assert_int_equal(d.start_ticks, 0x3333);
	return d;
}

static void test_exit_zero_is_exited_0(void **state)
{
	struct zm_down d = decode(0x0000);

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_EXITED);
	assert_int_equal(d.value, 0);
	assert_int_equal(d.flags, 0);
}

static void test_exit_3_is_exited_3(void **state)
{
	struct zm_down d = decode(0x0300);       /* exit(3): 3 << 8 */

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_EXITED);
	assert_int_equal(d.value, 3);
	assert_int_equal(d.flags, 0);
}

static void test_exit_255_is_exited_255(void **state)
{
	struct zm_down d = decode(0xff00);

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_EXITED);
	assert_int_equal(d.value, 255);
}

static void test_sigkill_is_killed_9(void **state)
{
	struct zm_down d = decode(0x0009);       /* group_exit_code for SIGKILL */

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_KILLED);
	assert_int_equal(d.value, 9);
	assert_int_equal(d.flags, 0);
}

static void test_sigsegv_with_core_is_killed_11_core_dumped(void **state)
{
	struct zm_down d = decode(0x008b);       /* 11 | 0x80 */

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_KILLED);
	assert_int_equal(d.value, 11);
	assert_int_equal(d.flags, ZM_DOWN_CORE_DUMPED);
}

static void test_highest_signal_is_killed(void **state)
{
	struct zm_down d = decode(0x0040);       /* SIGRTMAX on x86-64: 64 */

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_KILLED);
	assert_int_equal(d.value, 64);
}

static void test_stopped_pattern_reads_as_exited(void **state)
{
	struct zm_down d = decode(0x137f);       /* stopped by SIGSTOP (19) */

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_EXITED);
	assert_int_equal(d.value, 0x13);
	assert_int_equal(d.flags, 0);
}

static void test_continued_pattern_reads_as_exited(void **state)
{
	struct zm_down d = decode(0xffff);

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_EXITED);
	assert_int_equal(d.value, 255);
	assert_int_equal(d.flags, 0);
}

static void test_bits_above_16_are_ignored(void **state)
{
	struct zm_down d = decode(0x00010009);

	(void)state;
	assert_int_equal(d.reason, ZM_REASON_KILLED);
	assert_int_equal(d.value, 9);
}

/* The encodings above are what the kernel really produces. */
static void test_matches_real_wait_status_of_a_killed_child(void **state)
{
	int status;
	pid_t pid = fork();
	struct zm_down d;

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0x0009);
	d = decode((uint32_t)status);
	assert_int_equal(d.reason, ZM_REASON_KILLED);
	assert_int_equal(d.value, SIGKILL);
}

static void test_matches_real_wait_status_of_an_exiting_child(void **state)
{
	int status;
	pid_t pid = fork();
	struct zm_down d;

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(3);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0x0300);
	d = decode((uint32_t)status);
	assert_int_equal(d.reason, ZM_REASON_EXITED);
	assert_int_equal(d.value, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_zero_is_exited_0),
		cmocka_unit_test(test_exit_3_is_exited_3),
		cmocka_unit_test(test_exit_255_is_exited_255),
		cmocka_unit_test(test_sigkill_is_killed_9),
		cmocka_unit_test(test_sigsegv_with_core_is_killed_11_core_dumped),
		cmocka_unit_test(test_highest_signal_is_killed),
		cmocka_unit_test(test_stopped_pattern_reads_as_exited),
		cmocka_unit_test(test_continued_pattern_reads_as_exited),
		cmocka_unit_test(test_bits_above_16_are_ignored),
		cmocka_unit_test(test_matches_real_wait_status_of_a_killed_child),
		cmocka_unit_test(test_matches_real_wait_status_of_an_exiting_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
