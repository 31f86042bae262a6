// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmonctl's pure parts: the command line (PIDs, timeouts, commands), the
 * DOWN lines in text and JSON, and the status text turned into text and
 * JSON. Every output is pinned to the byte: scripts parse these lines.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_args.h"
#include "ctl_format.h"
#include "ctl_status.h"

/* ---- capturing output ---------------------------------------------------- */

static char *down_text(const struct zm_down_info *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	ctl_format_down_text(f, d);
	fclose(f);
	return buf;
}

static char *down_json(const struct zm_down_info *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	ctl_format_down_json(f, d);
	fclose(f);
	return buf;
}

static char *json_string(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	ctl_format_json_string(f, s);
	fclose(f);
	return buf;
}

#define assert_output(expr, expected) do {           \
		char *out_ = (expr);                  \
		assert_string_equal(out_, (expected)); \
		free(out_);                           \
	} while (0)

static const struct zm_down_info exited = {
	.ref = 1, .time_ns = 1700000000123456789ULL, .kind = ZM_KIND_PROCESS,
	.reason = ZM_DOWN_EXITED, .status = 3, .pid = 1234, .start_ticks = 98765,
};
static const struct zm_down_info killed = {
	.ref = 2, .time_ns = 1700000000000000001ULL, .kind = ZM_KIND_PROCESS,
	.reason = ZM_DOWN_KILLED, .signal = 9, .pid = 1235, .start_ticks = 5,
};
static const struct zm_down_info cored = {
	.ref = 3, .time_ns = 42, .kind = ZM_KIND_PROCESS,
	.reason = ZM_DOWN_KILLED, .signal = 11, .core_dumped = true, .pid = 1236,
};
static const struct zm_down_info noproc = {
	.ref = 4, .time_ns = 7, .kind = ZM_KIND_PROCESS, .reason = ZM_DOWN_NOPROC, .pid = 1237,
};

/* ---- DOWN lines: text --------------------------------------------------------- */

static void test_down_text_exited(void **state)
{
	assert_output(down_text(&exited), "1234 exited status=3 ref=1\n");
}

static void test_down_text_killed(void **state)
{
	assert_output(down_text(&killed), "1235 killed signal=9 (SIGKILL) ref=2\n");
}

static void test_down_text_killed_core_dumped(void **state)
{
	assert_output(down_text(&cored), "1236 killed signal=11 (SIGSEGV) core dumped ref=3\n");
}

static void test_down_text_noproc(void **state)
{
	assert_output(down_text(&noproc), "1237 noproc ref=4\n");
}

static void test_down_text_nameless_signal(void **state)
{
	struct zm_down_info d = killed;

	d.signal = 200;
	assert_output(down_text(&d), "1235 killed signal=200 ref=2\n");
}

static void test_down_text_unknown_reason(void **state)
{
	struct zm_down_info d = noproc;

	d.reason = (enum zm_down_reason)9;
	assert_output(down_text(&d), "1237 unknown reason=9 ref=4\n");
}

/* ---- DOWN lines: JSON --------------------------------------------------------- */

static void test_down_json_exited(void **state)
{
	assert_output(down_json(&exited),
		      "{\"ref\":1,\"pid\":1234,\"start_ticks\":98765,\"reason\":\"exited\",\"status\":3,"
		      "\"time_ns\":1700000000123456789}\n");
}

static void test_down_json_killed(void **state)
{
	assert_output(down_json(&killed),
		      "{\"ref\":2,\"pid\":1235,\"start_ticks\":5,\"reason\":\"killed\",\"signal\":9,"
		      "\"signal_name\":\"SIGKILL\",\"core_dumped\":false,\"time_ns\":1700000000000000001}\n");
}

static void test_down_json_killed_core_dumped(void **state)
{
	assert_output(down_json(&cored),
		      "{\"ref\":3,\"pid\":1236,\"reason\":\"killed\",\"signal\":11,"
		      "\"signal_name\":\"SIGSEGV\",\"core_dumped\":true,\"time_ns\":42}\n");
}

static void test_down_json_noproc(void **state)
{
	struct zm_down_info d = noproc;

	assert_output(down_json(&noproc), "{\"ref\":4,\"pid\":1237,\"reason\":\"noproc\",\"time_ns\":7}\n");
	d.start_ticks = 555;
	assert_output(down_json(&d),
		      "{\"ref\":4,\"pid\":1237,\"start_ticks\":555,\"reason\":\"noproc\",\"time_ns\":7}\n");
}

static void test_down_json_nameless_signal_is_null(void **state)
{
	struct zm_down_info d = cored;

	d.signal = 200;
	d.core_dumped = false;
	assert_output(down_json(&d),
		      "{\"ref\":3,\"pid\":1236,\"reason\":\"killed\",\"signal\":200,"
		      "\"signal_name\":null,\"core_dumped\":false,\"time_ns\":42}\n");
}

static void test_down_json_unknown_reason(void **state)
{
	struct zm_down_info d = noproc;

	d.reason = (enum zm_down_reason)9;
	assert_output(down_json(&d),
		      "{\"ref\":4,\"pid\":1237,\"reason\":\"unknown\",\"reason_code\":9,\"time_ns\":7}\n");
}

static void test_signal_names(void **state)
{
	char buf[32];

	assert_string_equal(ctl_format_signal_name(SIGKILL, buf, sizeof(buf)), "SIGKILL");
	assert_string_equal(ctl_format_signal_name(SIGTERM, buf, sizeof(buf)), "SIGTERM");
	assert_string_equal(ctl_format_signal_name(SIGABRT, buf, sizeof(buf)), "SIGABRT");
	assert_string_equal(ctl_format_signal_name(SIGRTMIN, buf, sizeof(buf)), "SIGRTMIN");
	assert_string_equal(ctl_format_signal_name(SIGRTMIN + 2, buf, sizeof(buf)), "SIGRTMIN+2");
	assert_string_equal(ctl_format_signal_name(SIGRTMAX - 1, buf, sizeof(buf)), "SIGRTMAX-1");
	assert_string_equal(ctl_format_signal_name(SIGRTMAX, buf, sizeof(buf)), "SIGRTMAX");
	assert_null(ctl_format_signal_name(0, buf, sizeof(buf)));
	assert_null(ctl_format_signal_name(-1, buf, sizeof(buf)));
	assert_null(ctl_format_signal_name(200, buf, sizeof(buf)));
}

/* ---- JSON strings ------------------------------------------------------------- */

static void test_json_string_escapes_quotes_and_backslashes(void **state)
{
	assert_output(json_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
}

static void test_json_string_escapes_control_characters(void **state)
{
	assert_output(json_string("t\tn\nr\r\x01\x1f\x7f"), "\"t\\tn\\nr\\r\\u0001\\u001f\\u007f\"");
}

static void test_json_string_keeps_utf8_and_replaces_invalid_bytes(void **state)
{
	assert_output(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* A stray continuation byte, a truncated sequence, an overlong form,
	 * a surrogate. */
	assert_output(json_string("a\x80" "b\xc3" "c\xc0\xaf" "d\xed\xa0\x80"),
		      "\"a\\ufffdb\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffd\"");
	assert_output(json_string(""), "\"\"");
}

/* ---- PID arguments ------------------------------------------------------------ */

static void test_parse_target_plain_pid(void **state)
{
	struct ctl_target t;
	char err[256];

	assert_int_equal(ctl_args_parse_target("1234", &t, err, sizeof(err)), 0);
	assert_int_equal(t.pid, 1234);
	assert_false(t.has_start);
	assert_string_equal(t.arg, "1234");
	assert_int_equal(ctl_args_parse_target("1", &t, err, sizeof(err)), 0);
	assert_int_equal(t.pid, 1);
	assert_int_equal(ctl_args_parse_target("4194304", &t, err, sizeof(err)), 0);
	assert_int_equal(t.pid, 4194304);
}

static void test_parse_target_pid_and_start_ticks(void **state)
{
	struct ctl_target t;
	char err[256];

	assert_int_equal(ctl_args_parse_target("1234:5678", &t, err, sizeof(err)), 0);
	assert_int_equal(t.pid, 1234);
	assert_true(t.has_start);
	assert_int_equal(t.start_ticks, 5678);
	assert_int_equal(ctl_args_parse_target("7:18446744073709551615", &t, err, sizeof(err)), 0);
	assert_int_equal(t.start_ticks, UINT64_MAX);
	assert_int_equal(ctl_args_parse_target("7:0", &t, err, sizeof(err)), 0);
	assert_true(t.has_start);
	assert_int_equal(t.start_ticks, 0);
}

static void test_parse_target_rejects_garbage(void **state)
{
	static const char *bad[] = { "abc", "", "12a", " 12", "12 ", "+12", "-1", "0x10", "1e3", ":5" };
	struct ctl_target t = { .pid = 99 };
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ctl_args_parse_target(bad[i], &t, err, sizeof(err)), -EINVAL);
		assert_int_equal(t.pid, 99);   /* untouched */
	}
	ctl_args_parse_target("abc", &t, err, sizeof(err));
	assert_string_equal(err, "invalid PID 'abc': expected a process id (1..4194304), optionally "
			    "followed by :STARTTICKS");
}

static void test_parse_target_rejects_bad_start_ticks(void **state)
{
	static const char *bad[] = { "12:", "12:x", "12:1:2", "12:-1", "12: 3" };
	struct ctl_target t;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ctl_args_parse_target(bad[i], &t, err, sizeof(err)), -EINVAL);
	ctl_args_parse_target("12:x", &t, err, sizeof(err));
	assert_string_equal(err, "invalid PID '12:x': STARTTICKS must be a decimal number "
			    "(field 22 of /proc/12/stat)");
	assert_int_equal(ctl_args_parse_target("12:18446744073709551616", &t, err, sizeof(err)), -ERANGE);
}

static void test_parse_target_rejects_zero(void **state)
{
	struct ctl_target t;
	char err[256];

	assert_int_equal(ctl_args_parse_target("0", &t, err, sizeof(err)), -ERANGE);
	assert_string_equal(err, "invalid PID '0': process ids run from 1 to 4194304");
	assert_int_equal(ctl_args_parse_target("000", &t, err, sizeof(err)), -ERANGE);
	assert_int_equal(ctl_args_parse_target("0:5", &t, err, sizeof(err)), -ERANGE);
}

static void test_parse_target_rejects_overflow(void **state)
{
	struct ctl_target t;
	char err[256];

	assert_int_equal(ctl_args_parse_target("4194305", &t, err, sizeof(err)), -ERANGE);
	assert_int_equal(ctl_args_parse_target("2147483648", &t, err, sizeof(err)), -ERANGE);
	assert_int_equal(ctl_args_parse_target("18446744073709551616", &t, err, sizeof(err)), -ERANGE);
	assert_int_equal(ctl_args_parse_target("99999999999999999999999999", &t, err, sizeof(err)), -ERANGE);
	assert_string_equal(err, "invalid PID '99999999999999999999999999': process ids run from 1 to 4194304");
}

/* ---- timeouts ----------------------------------------------------------------- */

static void test_parse_timeout(void **state)
{
	int ms = -7;

	assert_int_equal(ctl_args_parse_timeout("5", &ms), 0);
	assert_int_equal(ms, 5000);
	assert_int_equal(ctl_args_parse_timeout("0.5", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(ctl_args_parse_timeout("2.250", &ms), 0);
	assert_int_equal(ms, 2250);
	assert_int_equal(ctl_args_parse_timeout(".25", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(ctl_args_parse_timeout("1.0019", &ms), 0);
	assert_int_equal(ms, 1001);
	assert_int_equal(ctl_args_parse_timeout("2147483", &ms), 0);
	assert_int_equal(ms, 2147483000);
}

static void test_parse_timeout_rejects_bad_values(void **state)
{
	static const char *bad[] = { "", ".", "0", "0.0", "0.0001", "-1", "abc", "1e3", "5s",
				     "1.2.3", "2147484", "99999999999999999999" };
	int ms = -7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ctl_args_parse_timeout(bad[i], &ms), -EINVAL);
	assert_int_equal(ms, -7);
}

/* ---- command lines -------------------------------------------------------------- */

static int parse(struct ctl_args *a, char *err, ...)
{
	char *argv[32] = { "zenmonctl" };
	int argc = 1;
	va_list ap;

	va_start(ap, err);
	for (char *s; (s = va_arg(ap, char *)); )
		argv[argc++] = s;
	va_end(ap);
	err[0] = '\0';
	return ctl_args_parse(argc, argv, a, err, 256);
}

static void test_args_monitor_with_options(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "--socket", "/tmp/s", "monitor", "--json", "--timeout", "5",
			       "12", "13:99", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_MONITOR);
	assert_string_equal(a.socket_path, "/tmp/s");
	assert_true(a.json);
	assert_int_equal(a.timeout_ms, 5000);
	assert_string_equal(a.timeout_arg, "5");
	assert_int_equal(a.n_targets, 2);
	assert_int_equal(a.targets[0].pid, 12);
	assert_false(a.targets[0].has_start);
	assert_int_equal(a.targets[1].pid, 13);
	assert_int_equal(a.targets[1].start_ticks, 99);
	ctl_args_free(&a);

	assert_int_equal(parse(&a, err, "monitor", "-t0.5", NULL), -EINVAL);
	assert_int_equal(parse(&a, err, "monitor", "1", "--timeout=0.5", "-j", "-s", "/x", NULL), 0);
	assert_int_equal(a.timeout_ms, 500);
	assert_true(a.json);
	assert_string_equal(a.socket_path, "/x");
	assert_int_equal(a.n_targets, 1);
	ctl_args_free(&a);
}

static void test_args_monitor_defaults(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "monitor", "1", NULL), 0);
	assert_null(a.socket_path);
	assert_false(a.json);
	assert_int_equal(a.timeout_ms, -1);
	ctl_args_free(&a);
}

static void test_args_monitor_errors(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "monitor", NULL), -EINVAL);
	assert_string_equal(err, "monitor: no PID given");
	assert_int_equal(parse(&a, err, "monitor", "12", "x", NULL), -EINVAL);
	assert_string_equal(err, "invalid PID 'x': expected a process id (1..4194304), optionally "
			    "followed by :STARTTICKS");
	assert_int_equal(parse(&a, err, "monitor", "-5", NULL), -EINVAL);
	assert_string_equal(err, "invalid PID '-5': expected a process id (1..4194304), optionally "
			    "followed by :STARTTICKS");
	assert_int_equal(parse(&a, err, "monitor", "--timeout", NULL), -EINVAL);
	assert_string_equal(err, "option '--timeout' needs a value");
	assert_int_equal(parse(&a, err, "monitor", "--timeout", "soon", "1", NULL), -EINVAL);
	assert_string_equal(err, "invalid timeout 'soon': expected a positive number of seconds, such as 5 or 0.5");
	assert_int_equal(parse(&a, err, "monitor", "--frobnicate", "1", NULL), -EINVAL);
	assert_string_equal(err, "monitor: unknown option '--frobnicate'");
	assert_int_equal(parse(&a, err, "monitor", "--json=yes", "1", NULL), -EINVAL);
	assert_string_equal(err, "option '--json' takes no value");
	/* After "--", everything is a PID. */
	assert_int_equal(parse(&a, err, "monitor", "--", "--json", NULL), -EINVAL);
	assert_string_equal(err, "invalid PID '--json': expected a process id (1..4194304), optionally "
			    "followed by :STARTTICKS");
}

static void test_args_status(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "status", "--json", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_STATUS);
	assert_true(a.json);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "status", "now", NULL), -EINVAL);
	assert_string_equal(err, "status: unexpected argument 'now'");
	assert_int_equal(parse(&a, err, "status", "--timeout", "5", NULL), -EINVAL);
	assert_string_equal(err, "status: unknown option '--timeout'");
}

static void test_args_help_and_version(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "--help", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_HELP);
	assert_int_equal(a.help_topic, CTL_CMD_HELP);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "help", "monitor", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_HELP);
	assert_int_equal(a.help_topic, CTL_CMD_MONITOR);
	ctl_args_free(&a);
	/* A command's --help wins over its other arguments, even bad ones. */
	assert_int_equal(parse(&a, err, "monitor", "x", "-h", NULL), -EINVAL);
	assert_int_equal(parse(&a, err, "monitor", "-h", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_HELP);
	assert_int_equal(a.help_topic, CTL_CMD_MONITOR);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "status", "--help", NULL), 0);
	assert_int_equal(a.help_topic, CTL_CMD_STATUS);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "--version", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_VERSION);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "version", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_VERSION);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "help", "frob", NULL), -EINVAL);
	assert_string_equal(err, "help: unknown command 'frob' (commands: monitor, status, help, version)");
}

static void test_args_usage_errors(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, NULL), -EINVAL);
	assert_string_equal(err, "no command given");
	assert_int_equal(parse(&a, err, "frob", NULL), -EINVAL);
	assert_string_equal(err, "unknown command 'frob' (commands: monitor, status, help, version)");
	assert_int_equal(parse(&a, err, "--json", "status", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--json'");
	assert_int_equal(parse(&a, err, "--socket", NULL), -EINVAL);
	assert_string_equal(err, "option '--socket' needs a value");
	assert_int_equal(parse(&a, err, "--socket=", "status", NULL), -EINVAL);
	assert_string_equal(err, "option '--socket' needs a path");
}

/* ---- status ------------------------------------------------------------------------ */

static const char status_sample[] =
	"version 0.1.0\n"
	"uptime_seconds 93784\n"
	"subscribers 2\n"
	"monitors 1502\n"
	"targets 1490\n"
	"kernel_watches 1490\n"
	"ringbuf_dropped 0\n"
	"kernel_exits 5000\n"
	"kernel_matched 48213\n"
	"kernel_wakeups 812\n"
	"downs_delivered 48213\n"
	"subscriber id=1 name=billing-worker monitors=1500 queued=0\n"
	"subscriber id=7 name=zenmonctl monitors=2 queued=3\n";

static char *status_output(const char *text, bool json)
{
	struct ctl_status s;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(ctl_status_parse(text, &s), 0);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	if (json)
		ctl_status_print_json(f, &s);
	else
		ctl_status_print_text(f, &s);
	fclose(f);
	ctl_status_free(&s);
	return buf;
}

static void test_status_parse_fields(void **state)
{
	struct ctl_status s;

	assert_int_equal(ctl_status_parse(status_sample, &s), 0);
	assert_string_equal(s.version, "0.1.0");
	assert_true(s.has[CTL_STATUS_UPTIME_SECONDS]);
	assert_int_equal(s.value[CTL_STATUS_UPTIME_SECONDS], 93784);
	assert_int_equal(s.value[CTL_STATUS_MONITORS], 1502);
	assert_int_equal(s.value[CTL_STATUS_DOWNS_DELIVERED], 48213);
	assert_int_equal(s.n_subs, 2);
	assert_int_equal(s.subs[1].id, 7);
	assert_string_equal(s.subs[1].name, "zenmonctl");
	assert_int_equal(s.subs[1].monitors, 2);
	assert_int_equal(s.subs[1].queued, 3);
	ctl_status_free(&s);
	ctl_status_free(NULL);
}

static void test_status_to_json(void **state)
{
	assert_output(status_output(status_sample, true),
		      "{\"version\":\"0.1.0\",\"uptime_seconds\":93784,\"subscribers\":2,\"monitors\":1502,"
		      "\"targets\":1490,\"kernel_watches\":1490,\"ringbuf_dropped\":0,"
		      "\"downs_delivered\":48213,\"kernel_exits\":5000,\"kernel_matched\":48213,"
		      "\"kernel_wakeups\":812,\"subscribers_list\":["
		      "{\"id\":1,\"name\":\"billing-worker\",\"monitors\":1500,\"queued\":0},"
		      "{\"id\":7,\"name\":\"zenmonctl\",\"monitors\":2,\"queued\":3}]}\n");
}

static void test_status_to_text(void **state)
{
	assert_output(status_output(status_sample, false),
		      "agent version:        0.1.0\n"
		      "uptime:               1d 02h 03m 04s\n"
		      "subscribers:          2\n"
		      "monitors:             1502\n"
		      "targets:              1490\n"
		      "kernel watches:       1490\n"
		      "ring-buffer drops:    0\n"
		      "downs delivered:      48213\n"
		      "exits seen by kernel: 5000\n"
		      "watched exits:        48213\n"
		      "kernel wakeups:       812\n"
		      "\n"
		      "SUBSCRIBER  NAME              MONITORS      QUEUED\n"
		      "         1  billing-worker        1500           0\n"
		      "         7  zenmonctl                2           3\n");
}

static void test_status_ignores_unknown_lines_and_pairs(void **state)
{
	assert_output(status_output("flux_capacitors 3\n"
				    "monitors 5\n"
				    "garbage-without-value\n"
				    "\n"
				    "targets not-a-number\n"
				    "subscriber id=3 colour=blue name=x monitors=2 queued=1 extra\n",
				    true),
		      "{\"monitors\":5,\"subscribers_list\":[{\"id\":3,\"name\":\"x\",\"monitors\":2,\"queued\":1}]}\n");
}

static void test_status_empty_text_gives_empty_object(void **state)
{
	assert_output(status_output("", true), "{\"subscribers_list\":[]}\n");
	assert_output(status_output("", false), "");
}

static void test_status_json_escapes_subscriber_names(void **state)
{
	assert_output(status_output("subscriber id=1 name=a\"b\\c\x01\xff monitors=0 queued=0\r\n", true),
		      "{\"subscribers_list\":[{\"id\":1,\"name\":\"a\\\"b\\\\c\\u0001\\ufffd\","
		      "\"monitors\":0,\"queued\":0}]}\n");
}

static void test_status_text_hides_control_characters(void **state)
{
	assert_output(status_output("subscriber id=1 name=\x1b[2Jevil monitors=0 queued=0\n", false),
		      "\n"
		      "SUBSCRIBER  NAME        MONITORS      QUEUED\n"
		      "         1  ?[2Jevil           0           0\n");
}

static void test_status_uptime_format(void **state)
{
	char buf[64];

	ctl_status_format_uptime(0, buf, sizeof(buf));
	assert_string_equal(buf, "0s");
	ctl_status_format_uptime(42, buf, sizeof(buf));
	assert_string_equal(buf, "42s");
	ctl_status_format_uptime(309, buf, sizeof(buf));
	assert_string_equal(buf, "5m 09s");
	ctl_status_format_uptime(7207, buf, sizeof(buf));
	assert_string_equal(buf, "2h 00m 07s");
	ctl_status_format_uptime(3 * 86400 + 4 * 3600 + 5 * 60 + 6, buf, sizeof(buf));
	assert_string_equal(buf, "3d 04h 05m 06s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_down_text_exited),
		cmocka_unit_test(test_down_text_killed),
		cmocka_unit_test(test_down_text_killed_core_dumped),
		cmocka_unit_test(test_down_text_noproc),
		cmocka_unit_test(test_down_text_nameless_signal),
		cmocka_unit_test(test_down_text_unknown_reason),
		cmocka_unit_test(test_down_json_exited),
		cmocka_unit_test(test_down_json_killed),
		cmocka_unit_test(test_down_json_killed_core_dumped),
		cmocka_unit_test(test_down_json_noproc),
		cmocka_unit_test(test_down_json_nameless_signal_is_null),
		cmocka_unit_test(test_down_json_unknown_reason),
		cmocka_unit_test(test_signal_names),
		cmocka_unit_test(test_json_string_escapes_quotes_and_backslashes),
		cmocka_unit_test(test_json_string_escapes_control_characters),
		cmocka_unit_test(test_json_string_keeps_utf8_and_replaces_invalid_bytes),
		cmocka_unit_test(test_parse_target_plain_pid),
		cmocka_unit_test(test_parse_target_pid_and_start_ticks),
		cmocka_unit_test(test_parse_target_rejects_garbage),
		cmocka_unit_test(test_parse_target_rejects_bad_start_ticks),
		cmocka_unit_test(test_parse_target_rejects_zero),
		cmocka_unit_test(test_parse_target_rejects_overflow),
		cmocka_unit_test(test_parse_timeout),
		cmocka_unit_test(test_parse_timeout_rejects_bad_values),
		cmocka_unit_test(test_args_monitor_with_options),
		cmocka_unit_test(test_args_monitor_defaults),
		cmocka_unit_test(test_args_monitor_errors),
		cmocka_unit_test(test_args_status),
		cmocka_unit_test(test_args_help_and_version),
		cmocka_unit_test(test_args_usage_errors),
		cmocka_unit_test(test_status_parse_fields),
		cmocka_unit_test(test_status_to_json),
		cmocka_unit_test(test_status_to_text),
		cmocka_unit_test(test_status_ignores_unknown_lines_and_pairs),
		cmocka_unit_test(test_status_empty_text_gives_empty_object),
		cmocka_unit_test(test_status_json_escapes_subscriber_names),
		cmocka_unit_test(test_status_text_hides_control_characters),
		cmocka_unit_test(test_status_uptime_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
