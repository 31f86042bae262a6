// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmonctl's pure parts: the command line (PIDs, connections, timeouts,
 * commands), the DOWN lines in text and JSON, and the status text turned
 * into text and JSON. Every output is pinned to the byte: scripts parse these lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

/* ---- DOWN lines: TCP ---------------------------------------------------------- */

/* A TCP DOWN over IPv4 loopback: 127.0.0.1:5000 -> 127.0.0.1:41234. */
static struct zm_down_info tcp_down(enum zm_down_reason reason, enum zm_tcp_how how, int err)
{
	struct zm_down_info d = {
		.ref = 1, .time_ns = 1700000000123456789ULL, .kind = ZM_KIND_TCP, .reason = reason,
		.cookie = 4097, .tcp_how = how, .tcp_errno = err, .tcp_old_state = 1,
		.tcp = { .family = AF_INET, .local_port = 5000, .remote_port = 41234 },
	};

	d.tcp.local.v4.s_addr = htonl(INADDR_LOOPBACK);
	d.tcp.remote.v4.s_addr = htonl(INADDR_LOOPBACK);
	return d;
}

static void test_down_text_tcp_reset_rx(void **state)
{
	struct zm_down_info d = tcp_down(ZM_DOWN_TCP_CLOSED, ZM_TCP_HOW_RESET_RX, 104);

	assert_output(down_text(&d), "127.0.0.1:5000 -> 127.0.0.1:41234 tcp_closed how=reset_rx "
		      "errno=104 (ECONNRESET) cookie=4097 ref=1\n");
}

static void test_down_text_tcp_each_how(void **state)
{
	struct zm_down_info d = tcp_down(ZM_DOWN_TCP_CLOSED, ZM_TCP_HOW_FIN, 0);

	assert_output(down_text(&d), "127.0.0.1:5000 -> 127.0.0.1:41234 tcp_closed how=fin "
		      "cookie=4097 ref=1\n");
	d.tcp_how = ZM_TCP_HOW_RESET_TX;
	assert_output(down_text(&d), "127.0.0.1:5000 -> 127.0.0.1:41234 tcp_closed how=reset_tx "
		      "cookie=4097 ref=1\n");
	d.tcp_how = ZM_TCP_HOW_TIMEOUT;
	d.tcp_errno = 110;
	assert_output(down_text(&d), "127.0.0.1:5000 -> 127.0.0.1:41234 tcp_closed how=timeout "
		      "errno=110 (ETIMEDOUT) cookie=4097 ref=1\n");
	d.tcp_how = ZM_TCP_HOW_ERROR;
	d.tcp_errno = 111;
	assert_output(down_text(&d), "127.0.0.1:5000 -> 127.0.0.1:41234 tcp_closed how=error "
		      "errno=111 (ECONNREFUSED) cookie=4097 ref=1\n");
	/* A newer agent's how, and an errno without a name: numbers. */
	d.tcp_how = (enum zm_tcp_how)9;
	d.tcp_errno = 4000;
	assert_output(down_text(&d), "127.0.0.1:5000 -> 127.0.0.1:41234 tcp_closed how=9 "
		      "errno=4000 cookie=4097 ref=1\n");
}

static void test_down_text_tcp_ipv6_in_brackets(void **state)
{
	struct zm_down_info d = tcp_down(ZM_DOWN_TCP_CLOSED, ZM_TCP_HOW_FIN, 0);

	d.tcp.family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "::1", &d.tcp.local.v6), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", &d.tcp.remote.v6), 1);
	d.ref = 12;
	assert_output(down_text(&d), "[::1]:5000 -> [2001:db8::7]:41234 tcp_closed how=fin "
		      "cookie=4097 ref=12\n");
	assert_int_equal(inet_pton(AF_INET6, "::ffff:10.0.0.1", &d.tcp.local.v6), 1);
	assert_output(down_text(&d), "[::ffff:10.0.0.1]:5000 -> [2001:db8::7]:41234 tcp_closed "
		      "how=fin cookie=4097 ref=12\n");
}

static void test_down_text_tcp_noconnection(void **state)
{
	struct zm_down_info d = tcp_down(ZM_DOWN_NOCONNECTION, ZM_TCP_HOW_NONE, 0);

	assert_output(down_text(&d), "127.0.0.1:5000 -> 127.0.0.1:41234 noconnection cookie=4097 ref=1\n");
	/* Ends unknown (a cookie that names nothing): they are left out. */
	d.tcp.family = 0;
	d.cookie = 77;
	d.ref = 3;
	assert_output(down_text(&d), "noconnection cookie=77 ref=3\n");
	/* Neither known: no cookie either. */
	d.cookie = 0;
	assert_output(down_text(&d), "noconnection ref=3\n");
}

static void test_down_text_tcp_unknown_reason(void **state)
{
	struct zm_down_info d = tcp_down((enum zm_down_reason)9, ZM_TCP_HOW_NONE, 0);

	assert_output(down_text(&d), "127.0.0.1:5000 -> 127.0.0.1:41234 unknown reason=9 "
		      "cookie=4097 ref=1\n");
}

static void test_down_json_tcp_reset_rx(void **state)
{
	struct zm_down_info d = tcp_down(ZM_DOWN_TCP_CLOSED, ZM_TCP_HOW_RESET_RX, 104);

	assert_output(down_json(&d),
		      "{\"ref\":1,\"kind\":\"tcp\",\"cookie\":4097,\"family\":\"ipv4\","
		      "\"local\":\"127.0.0.1:5000\",\"remote\":\"127.0.0.1:41234\","
		      "\"reason\":\"tcp_closed\",\"how\":\"reset_rx\",\"errno\":104,"
		      "\"errno_name\":\"ECONNRESET\",\"old_state\":\"ESTABLISHED\","
		      "\"time_ns\":1700000000123456789}\n");
}

static void test_down_json_tcp_fin_ipv6(void **state)
{
	struct zm_down_info d = tcp_down(ZM_DOWN_TCP_CLOSED, ZM_TCP_HOW_FIN, 0);

	d.tcp.family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "fe80::1", &d.tcp.local.v6), 1);
	assert_int_equal(inet_pton(AF_INET6, "::1", &d.tcp.remote.v6), 1);
	d.tcp_old_state = 5;
	assert_output(down_json(&d),
		      "{\"ref\":1,\"kind\":\"tcp\",\"cookie\":4097,\"family\":\"ipv6\","
		      "\"local\":\"[fe80::1]:5000\",\"remote\":\"[::1]:41234\","
		      "\"reason\":\"tcp_closed\",\"how\":\"fin\",\"errno\":0,\"errno_name\":null,"
		      "\"old_state\":\"FIN_WAIT2\",\"time_ns\":1700000000123456789}\n");
}

static void test_down_json_tcp_noconnection(void **state)
{
	struct zm_down_info d = tcp_down(ZM_DOWN_NOCONNECTION, ZM_TCP_HOW_NONE, 0);

	d.tcp_old_state = 0;
	assert_output(down_json(&d),
		      "{\"ref\":1,\"kind\":\"tcp\",\"cookie\":4097,\"family\":\"ipv4\","
		      "\"local\":\"127.0.0.1:5000\",\"remote\":\"127.0.0.1:41234\","
		      "\"reason\":\"noconnection\",\"time_ns\":1700000000123456789}\n");
	d.tcp.family = 0;
	d.cookie = 0;
	d.time_ns = 7;
	assert_output(down_json(&d), "{\"ref\":1,\"kind\":\"tcp\",\"reason\":\"noconnection\",\"time_ns\":7}\n");
}

static void test_down_json_tcp_unknown_how_and_reason(void **state)
{
	struct zm_down_info d = tcp_down(ZM_DOWN_TCP_CLOSED, (enum zm_tcp_how)9, 0);

	d.tcp.family = 0;
	d.tcp_old_state = 99;   /* no such state: left out */
	d.time_ns = 7;
	assert_output(down_json(&d),
		      "{\"ref\":1,\"kind\":\"tcp\",\"cookie\":4097,\"reason\":\"tcp_closed\","
		      "\"how\":\"unknown\",\"how_code\":9,\"errno\":0,\"errno_name\":null,\"time_ns\":7}\n");
	d.reason = (enum zm_down_reason)9;
	assert_output(down_json(&d),
		      "{\"ref\":1,\"kind\":\"tcp\",\"cookie\":4097,\"reason\":\"unknown\","
		      "\"reason_code\":9,\"time_ns\":7}\n");
}

static void test_tcp_state_names(void **state)
{
	assert_string_equal(ctl_format_tcp_state_name(1), "ESTABLISHED");
	assert_string_equal(ctl_format_tcp_state_name(4), "FIN_WAIT1");
	assert_string_equal(ctl_format_tcp_state_name(8), "CLOSE_WAIT");
	assert_string_equal(ctl_format_tcp_state_name(9), "LAST_ACK");
	assert_string_equal(ctl_format_tcp_state_name(11), "CLOSING");
	assert_null(ctl_format_tcp_state_name(0));
	assert_null(ctl_format_tcp_state_name(-1));
	assert_null(ctl_format_tcp_state_name(14));
}

static void test_format_endpoint(void **state)
{
	union zm_inet_addr a = { 0 };
	char buf[64];

	a.v4.s_addr = htonl(0xc0a80001);
	assert_string_equal(ctl_format_endpoint(AF_INET, &a, 65535, buf, sizeof(buf)), "192.168.0.1:65535");
	assert_int_equal(inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &a.v6), 1);
	assert_string_equal(ctl_format_endpoint(AF_INET6, &a, 65535, buf, sizeof(buf)),
			    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	assert_string_equal(ctl_format_endpoint(AF_UNIX, &a, 1, buf, sizeof(buf)), "?");
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

	/* Every field is set, whatever the struct held before. */
	memset(&t, 0xa5, sizeof(t));
	assert_int_equal(ctl_args_parse_target("1234", &t, err, sizeof(err)), 0);
	assert_int_equal(t.kind, CTL_TARGET_PID);
	assert_int_equal(t.pid, 1234);
	assert_false(t.has_start);
	assert_int_equal(t.start_ticks, 0);
	assert_null(t.arg2);
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
	assert_int_equal(a.rate, 0);    /* the agent's default */
	assert_int_equal(a.batch, 0);
	ctl_args_free(&a);
}

static void test_args_monitor_rate_and_batch(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "monitor", "--rate", "1000", "--batch=64", "1", NULL), 0);
	assert_int_equal(a.rate, 1000);
	assert_int_equal(a.batch, 64);
	assert_int_equal(a.n_targets, 1);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "monitor", "1", "-r", "10000000", "-b", "1", NULL), 0);
	assert_int_equal(a.rate, 10000000);
	assert_int_equal(a.batch, 1);
	ctl_args_free(&a);
}

static void test_args_monitor_rejects_bad_rate_and_batch(void **state)
{
	static const char *bad[] = { "0", "10000001", "-1", "+5", "abc", "1.5", "1e3", "", " 5",
				     "99999999999999999999" };
	struct ctl_args a;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&a, err, "monitor", "--rate", bad[i], "1", NULL), -EINVAL);
		assert_int_equal(parse(&a, err, "monitor", "--batch", bad[i], "1", NULL), -EINVAL);
	}
	assert_int_equal(parse(&a, err, "monitor", "--rate", "0", "1", NULL), -EINVAL);
	assert_string_equal(err, "invalid rate '0': expected DOWNs per second, a whole number "
			    "from 1 to 10000000");
	assert_int_equal(parse(&a, err, "monitor", "--batch=many", "1", NULL), -EINVAL);
	assert_string_equal(err, "invalid batch 'many': expected DOWNs per frame, a whole number "
			    "from 1 to 10000000");
	assert_int_equal(parse(&a, err, "monitor", "1", "--rate", NULL), -EINVAL);
	assert_string_equal(err, "option '--rate' needs a value");
	assert_int_equal(parse(&a, err, "status", "--rate", "5", NULL), -EINVAL);
	assert_string_equal(err, "status: unknown option '--rate'");
}

static void test_parse_limit(void **state)
{
	uint32_t v = 7;

	assert_int_equal(ctl_args_parse_limit("1", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ctl_args_parse_limit("10000000", &v), 0);
	assert_int_equal(v, 10000000);
	assert_int_equal(ctl_args_parse_limit("0010", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(ctl_args_parse_limit("10000001", &v), -EINVAL);
	assert_int_equal(ctl_args_parse_limit("0", &v), -EINVAL);
	assert_int_equal(v, 10);   /* untouched on failure */
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

static void test_args_stats_and_targets(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "stats", "--json", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_STATS);
	assert_true(a.json);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "stats", "--limit", "5", NULL), -EINVAL);
	assert_string_equal(err, "stats: unknown option '--limit'");
	assert_int_equal(parse(&a, err, "targets", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_TARGETS);
	assert_false(a.json);
	assert_int_equal(a.limit, 0);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "targets", "-j", "--limit=20", NULL), 0);
	assert_true(a.json);
	assert_int_equal(a.limit, 20);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "targets", "-n", "0", NULL), -EINVAL);
	assert_string_equal(err, "invalid limit '0': expected how many targets to list, a whole "
			    "number from 1 to 10000000");
	assert_int_equal(parse(&a, err, "targets", "1234", NULL), -EINVAL);
	assert_string_equal(err, "targets: unexpected argument '1234'");
	assert_int_equal(parse(&a, err, "help", "targets", NULL), 0);
	assert_int_equal(a.help_topic, CTL_CMD_TARGETS);
	ctl_args_free(&a);
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
	assert_string_equal(err, "help: unknown command 'frob' (commands: monitor, monitor-tcp, status, stats, targets, help, version)");
}

static void test_args_usage_errors(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, NULL), -EINVAL);
	assert_string_equal(err, "no command given");
	assert_int_equal(parse(&a, err, "frob", NULL), -EINVAL);
	assert_string_equal(err, "unknown command 'frob' (commands: monitor, monitor-tcp, status, stats, targets, help, version)");
	assert_int_equal(parse(&a, err, "--json", "status", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--json'");
	assert_int_equal(parse(&a, err, "--socket", NULL), -EINVAL);
	assert_string_equal(err, "option '--socket' needs a value");
	assert_int_equal(parse(&a, err, "--socket=", "status", NULL), -EINVAL);
	assert_string_equal(err, "option '--socket' needs a path");
}

/* ---- monitor-tcp arguments ------------------------------------------------------ */

static void test_parse_endpoint_ipv4_and_ipv6(void **state)
{
	union zm_inet_addr a;
	uint16_t port = 0;
	int family = 0;
	char err[256], want[16];

	assert_int_equal(ctl_args_parse_endpoint("127.0.0.1:5000", &family, &a, &port, err, sizeof(err)), 0);
	assert_int_equal(family, AF_INET);
	assert_int_equal(ntohl(a.v4.s_addr), 0x7f000001);
	assert_int_equal(port, 5000);
	assert_int_equal(ctl_args_parse_endpoint("[2001:db8::1]:65535", &family, &a, &port, err, sizeof(err)), 0);
	assert_int_equal(family, AF_INET6);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", want), 1);
	assert_memory_equal(&a.v6, want, 16);
	assert_int_equal(port, 65535);
	assert_int_equal(ctl_args_parse_endpoint("[::ffff:10.1.2.3]:1", &family, &a, &port, err, sizeof(err)), 0);
	assert_int_equal(family, AF_INET6);
	assert_int_equal(port, 1);
}

static void test_parse_endpoint_rejects_bad_values(void **state)
{
	static const struct {
		const char *in, *msg;
	} bad[] = {
		{ "127.0.0.1", "invalid address '127.0.0.1': expected ADDRESS:PORT, such as 127.0.0.1:5000 or [::1]:5000" },
		{ ":80", "invalid address ':80': expected ADDRESS:PORT, such as 127.0.0.1:5000 or [::1]:5000" },
		{ "::1:80", "invalid address '::1:80': put an IPv6 address in brackets, such as [::1]:5000" },
		{ "[::1]80", "invalid address '[::1]80': expected [IPV6]:PORT, such as [::1]:5000" },
		{ "[::1:80", "invalid address '[::1:80': expected [IPV6]:PORT, such as [::1]:5000" },
		{ "[]:80", "invalid address '[]:80': expected ADDRESS:PORT, such as 127.0.0.1:5000 or [::1]:5000" },
		{ "localhost:80", "invalid address 'localhost:80': 'localhost' is not a numeric IPv4 address" },
		{ "[127.0.0.1]:80", "invalid address '[127.0.0.1]:80': '127.0.0.1' is not a numeric IPv6 address" },
		{ "[fe80::1%eth0]:80", "invalid address '[fe80::1%eth0]:80': 'fe80::1%eth0' is not a numeric IPv6 address" },
		{ "1.2.3.4:0", "invalid address '1.2.3.4:0': the port must be a number from 1 to 65535" },
		{ "1.2.3.4:65536", "invalid address '1.2.3.4:65536': the port must be a number from 1 to 65535" },
		{ "1.2.3.4:", "invalid address '1.2.3.4:': the port must be a number from 1 to 65535" },
		{ "1.2.3.4:+80", "invalid address '1.2.3.4:+80': the port must be a number from 1 to 65535" },
		{ "1.2.3.4:http", "invalid address '1.2.3.4:http': the port must be a number from 1 to 65535" },
	};
	union zm_inet_addr a = { .v4.s_addr = 42 };
	uint16_t port = 7;
	int family = 9;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ctl_args_parse_endpoint(bad[i].in, &family, &a, &port, err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, bad[i].msg);
	}
	/* Untouched on failure. */
	assert_int_equal(family, 9);
	assert_int_equal(port, 7);
	assert_int_equal(a.v4.s_addr, 42);
}

static void test_parse_cookie(void **state)
{
	uint64_t v = 5;
	char err[256];

	assert_int_equal(ctl_args_parse_cookie("4097", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 4097);
	assert_int_equal(ctl_args_parse_cookie("0x1A2b", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0x1a2b);
	assert_int_equal(ctl_args_parse_cookie("sk:ffffffffffffffff", &v, err, sizeof(err)), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(ctl_args_parse_cookie("18446744073709551615", &v, err, sizeof(err)), 0);
	assert_true(v == UINT64_MAX);
	v = 5;
	assert_int_equal(ctl_args_parse_cookie("0", &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid cookie '0': socket cookies run from 1 to 2^64-1");
	assert_int_equal(ctl_args_parse_cookie("0x10000000000000000", &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid cookie '0x10000000000000000': socket cookies run from 1 to 2^64-1");
	assert_int_equal(ctl_args_parse_cookie("18446744073709551616", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(ctl_args_parse_cookie("12ab", &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid cookie '12ab': expected a socket cookie, in decimal, or in hex "
			    "after 0x or sk: (as `ss -e` shows it)");
	assert_int_equal(ctl_args_parse_cookie("0x", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(ctl_args_parse_cookie("sk:", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(ctl_args_parse_cookie("-1", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(ctl_args_parse_cookie("", &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(v, 5);   /* untouched on failure */
}

static void test_parse_fd_of(void **state)
{
	struct ctl_target t;
	char err[256];

	memset(&t, 0xa5, sizeof(t));
	assert_int_equal(ctl_args_parse_fd_of("1234:5", &t, err, sizeof(err)), 0);
	assert_int_equal(t.kind, CTL_TARGET_TCP_FD);
	assert_null(t.arg2);
	assert_int_equal(t.pid, 1234);
	assert_int_equal(t.fd, 5);
	assert_string_equal(t.arg, "1234:5");
	assert_int_equal(ctl_args_parse_fd_of("4194304:0", &t, err, sizeof(err)), 0);
	assert_int_equal(t.fd, 0);
	assert_int_equal(ctl_args_parse_fd_of("1234", &t, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid --fd-of '1234': expected PID:FD, a process id and one of its "
			    "file descriptors, such as 1234:5");
	assert_int_equal(ctl_args_parse_fd_of("1234:", &t, err, sizeof(err)), -EINVAL);
	assert_int_equal(ctl_args_parse_fd_of(":5", &t, err, sizeof(err)), -EINVAL);
	assert_int_equal(ctl_args_parse_fd_of("12:x", &t, err, sizeof(err)), -EINVAL);
	assert_int_equal(ctl_args_parse_fd_of("0:5", &t, err, sizeof(err)), -ERANGE);
	assert_string_equal(err, "invalid --fd-of '0:5': process ids run from 1 to 4194304");
	assert_int_equal(ctl_args_parse_fd_of("4194305:5", &t, err, sizeof(err)), -ERANGE);
	assert_int_equal(ctl_args_parse_fd_of("1:2147483648", &t, err, sizeof(err)), -ERANGE);
	assert_string_equal(err, "invalid --fd-of '1:2147483648': FD is out of range");
}

static void test_args_monitor_tcp_each_form_in_order(void **state)
{
	struct ctl_args a;
	char err[256];
	char label[160];

	assert_int_equal(parse(&a, err, "monitor-tcp", "--json", "--cookie", "77", "127.0.0.1:5000",
			       "127.0.0.1:41234", "--fd-of", "1234:5", "--timeout=2", "[::1]:80",
			       "[::1]:5555", "--cookie=sk:1a", "-r", "100", "-b", "10", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_MONITOR_TCP);
	assert_true(a.json);
	assert_int_equal(a.timeout_ms, 2000);
	assert_int_equal(a.rate, 100);
	assert_int_equal(a.batch, 10);
	assert_int_equal(a.n_targets, 5);

	assert_int_equal(a.targets[0].kind, CTL_TARGET_TCP_COOKIE);
	assert_int_equal(a.targets[0].cookie, 77);
	ctl_args_target_label(&a.targets[0], label, sizeof(label));
	assert_string_equal(label, "--cookie 77");

	assert_int_equal(a.targets[1].kind, CTL_TARGET_TCP_TUPLE);
	assert_int_equal(a.targets[1].tuple.family, AF_INET);
	assert_int_equal(ntohl(a.targets[1].tuple.local.v4.s_addr), 0x7f000001);
	assert_int_equal(ntohl(a.targets[1].tuple.remote.v4.s_addr), 0x7f000001);
	assert_int_equal(a.targets[1].tuple.local_port, 5000);
	assert_int_equal(a.targets[1].tuple.remote_port, 41234);
	ctl_args_target_label(&a.targets[1], label, sizeof(label));
	assert_string_equal(label, "127.0.0.1:5000 127.0.0.1:41234");

	assert_int_equal(a.targets[2].kind, CTL_TARGET_TCP_FD);
	assert_int_equal(a.targets[2].pid, 1234);
	assert_int_equal(a.targets[2].fd, 5);
	ctl_args_target_label(&a.targets[2], label, sizeof(label));
	assert_string_equal(label, "--fd-of 1234:5");

	assert_int_equal(a.targets[3].kind, CTL_TARGET_TCP_TUPLE);
	assert_int_equal(a.targets[3].tuple.family, AF_INET6);
	assert_int_equal(a.targets[3].tuple.local_port, 80);
	assert_int_equal(a.targets[3].tuple.remote_port, 5555);
	assert_true(IN6_IS_ADDR_LOOPBACK(&a.targets[3].tuple.local.v6));
	assert_true(IN6_IS_ADDR_LOOPBACK(&a.targets[3].tuple.remote.v6));

	assert_int_equal(a.targets[4].kind, CTL_TARGET_TCP_COOKIE);
	assert_int_equal(a.targets[4].cookie, 0x1a);
	ctl_args_target_label(&a.targets[4], label, sizeof(label));
	assert_string_equal(label, "--cookie sk:1a");
	ctl_args_free(&a);

	/* Process targets have their own label still. */
	assert_int_equal(parse(&a, err, "monitor", "12:34", NULL), 0);
	ctl_args_target_label(&a.targets[0], label, sizeof(label));
	assert_string_equal(label, "12:34");
	ctl_args_free(&a);
}

static void test_args_monitor_tcp_errors(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "monitor-tcp", NULL), -EINVAL);
	assert_string_equal(err, "monitor-tcp: no connection given (--fd-of PID:FD, --cookie N, "
			    "or LOCAL:PORT REMOTE:PORT)");
	assert_int_equal(parse(&a, err, "monitor-tcp", "127.0.0.1:5000", NULL), -EINVAL);
	assert_string_equal(err, "monitor-tcp: '127.0.0.1:5000' needs the remote end after it: "
			    "LOCAL:PORT REMOTE:PORT");
	assert_int_equal(parse(&a, err, "monitor-tcp", "1.2.3.4:1", "--cookie", "5", "1.2.3.4:2", NULL),
			 -EINVAL);
	assert_string_equal(err, "monitor-tcp: '1.2.3.4:1' needs the remote end after it: "
			    "LOCAL:PORT REMOTE:PORT");
	assert_int_equal(parse(&a, err, "monitor-tcp", "1.2.3.4:1", "--fd-of", "1:2", "1.2.3.4:2", NULL),
			 -EINVAL);
	assert_int_equal(parse(&a, err, "monitor-tcp", "1.2.3.4:1", "[::1]:2", NULL), -EINVAL);
	assert_string_equal(err, "monitor-tcp: '1.2.3.4:1' and '[::1]:2' are not of one address family "
			    "(an IPv4 peer of an IPv6 socket is [::ffff:A.B.C.D]:PORT)");
	assert_int_equal(parse(&a, err, "monitor-tcp", "1.2.3.4:1", "1.2.3.4:x", NULL), -EINVAL);
	assert_string_equal(err, "invalid address '1.2.3.4:x': the port must be a number from 1 to 65535");
	assert_int_equal(parse(&a, err, "monitor-tcp", "1234", NULL), -EINVAL);
	assert_string_equal(err, "invalid address '1234': expected ADDRESS:PORT, such as "
			    "127.0.0.1:5000 or [::1]:5000");
	assert_int_equal(parse(&a, err, "monitor-tcp", "--cookie", NULL), -EINVAL);
	assert_string_equal(err, "option '--cookie' needs a value");
	assert_int_equal(parse(&a, err, "monitor-tcp", "--cookie", "x", NULL), -EINVAL);
	assert_string_equal(err, "invalid cookie 'x': expected a socket cookie, in decimal, or in hex "
			    "after 0x or sk: (as `ss -e` shows it)");
	assert_int_equal(parse(&a, err, "monitor-tcp", "--fd-of=12", NULL), -EINVAL);
	assert_string_equal(err, "invalid --fd-of '12': expected PID:FD, a process id and one of its "
			    "file descriptors, such as 1234:5");
	assert_int_equal(parse(&a, err, "monitor-tcp", "--frob", NULL), -EINVAL);
	assert_string_equal(err, "monitor-tcp: unknown option '--frob'");
	/* Connection options belong to monitor-tcp only. */
	assert_int_equal(parse(&a, err, "monitor", "--cookie", "5", NULL), -EINVAL);
	assert_string_equal(err, "monitor: unknown option '--cookie'");
	assert_int_equal(parse(&a, err, "status", "--fd-of", "1:2", NULL), -EINVAL);
	assert_string_equal(err, "status: unknown option '--fd-of'");
}

static void test_args_monitor_tcp_help(void **state)
{
	struct ctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "help", "monitor-tcp", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_HELP);
	assert_int_equal(a.help_topic, CTL_CMD_MONITOR_TCP);
	ctl_args_free(&a);
	assert_int_equal(parse(&a, err, "monitor-tcp", "--cookie", "5", "--help", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_HELP);
	assert_int_equal(a.help_topic, CTL_CMD_MONITOR_TCP);
	assert_int_equal(a.n_targets, 0);
	ctl_args_free(&a);
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

static void test_status_json_ignores_what_is_not_an_integer(void **state)
{
	assert_output(status_output("flux_capacitors three\n"
				    "monitors 5\n"
				    "garbage-without-value\n"
				    "\n"
				    "targets not-a-number\n"
				    "subscriber id=3 colour=blue name=x monitors=2 queued=1 extra\n",
				    true),
		      "{\"monitors\":5,\"subscribers_list\":[{\"id\":3,\"name\":\"x\",\"monitors\":2,\"queued\":1}]}\n");
}

static const char status_newer[] =
	"monitors 5\n"
	"flux_capacitors 3\n"
	"teleports_opened 0\n"
	"drift -12\n"
	"padded 007\n"
	"flux_capacitors 4\n"
	"huge 18446744073709551616\n"
	"subscriber id=3 name=x monitors=2 queued=1 sent=40 colour=blue rate=1000\n";

static void test_status_json_includes_unknown_integer_lines(void **state)
{
	/* After the known ones, in the order first seen, a repeated name
	 * keeping its last value; one beyond 64 bits is not taken. */
	assert_output(status_output(status_newer, true),
		      "{\"monitors\":5,\"flux_capacitors\":4,\"teleports_opened\":0,\"drift\":-12,"
		      "\"padded\":7,\"subscribers_list\":[{\"id\":3,\"name\":\"x\",\"monitors\":2,"
		      "\"queued\":1,\"sent\":40,\"rate\":1000}]}\n");
}

static void test_status_text_ignores_unknown_lines(void **state)
{
	assert_output(status_output(status_newer, false),
		      "monitors:             5\n"
		      "\n"
		      "SUBSCRIBER  NAME    MONITORS      QUEUED\n"
		      "         3  x              2           1\n");
}

/* Each subscriber's process and user, from the agent's SO_PEERCRED. */
static const char status_peers[] =
	"subscribers 2\n"
	"subscriber id=1 name=billing-worker pid=4242 uid=1000 monitors=1500 queued=0 rate=0 "
	"batch=1024 sent=7\n"
	"subscriber id=7 name=zenmonctl pid=123456 uid=0 monitors=2 queued=3 rate=0 batch=1024 "
	"sent=0\n";

static void test_status_text_shows_each_subscribers_pid_and_uid(void **state)
{
	assert_output(status_output(status_peers, false),
		      "subscribers:          2\n"
		      "\n"
		      "SUBSCRIBER  NAME                 PID     UID    MONITORS      QUEUED\n"
		      "         1  billing-worker      4242    1000        1500           0\n"
		      "         7  zenmonctl         123456       0           2           3\n");
}

static void test_status_json_shows_each_subscribers_pid_and_uid(void **state)
{
	assert_output(status_output(status_peers, true),
		      "{\"subscribers\":2,\"subscribers_list\":["
		      "{\"id\":1,\"name\":\"billing-worker\",\"pid\":4242,\"uid\":1000,"
		      "\"monitors\":1500,\"queued\":0,\"rate\":0,\"batch\":1024,\"sent\":7},"
		      "{\"id\":7,\"name\":\"zenmonctl\",\"pid\":123456,\"uid\":0,"
		      "\"monitors\":2,\"queued\":3,\"rate\":0,\"batch\":1024,\"sent\":0}]}\n");
}

static void test_status_json_keeps_its_own_keys(void **state)
{
	assert_output(status_output("subscribers_list 5\nsubscriber 7\nversion 3\n", true),
		      "{\"version\":\"3\",\"subscribers_list\":[{}]}\n");
}

static const char status_pacing[] =
	"downs_delivered 100\n"
	"downs_queued 250000\n"
	"downs_flushed 17\n"
	"subscribers_dropped 1\n"
	"rate_limit 0\n"
	"global_rate 200000\n"
	"subscriber id=1 name=flood monitors=250000 queued=250000\n";

static void test_status_pacing_lines_to_text(void **state)
{
	assert_output(status_output(status_pacing, false),
		      "downs delivered:      100\n"
		      "downs queued:         250000\n"
		      "downs flushed:        17\n"
		      "subscribers dropped:  1\n"
		      "rate limit:           unlimited\n"
		      "global rate limit:    200000 DOWNs/s\n"
		      "\n"
		      "SUBSCRIBER  NAME     MONITORS      QUEUED\n"
		      "         1  flood      250000      250000\n");
}

static void test_status_pacing_lines_to_json(void **state)
{
	assert_output(status_output(status_pacing, true),
		      "{\"downs_delivered\":100,\"downs_queued\":250000,\"downs_flushed\":17,"
		      "\"subscribers_dropped\":1,\"rate_limit\":0,"
		      "\"global_rate\":200000,\"subscribers_list\":["
		      "{\"id\":1,\"name\":\"flood\",\"monitors\":250000,\"queued\":250000}]}\n");
}

static const char status_tcp[] =
	"kernel_watches 3\n"
	"kernel_tcp_watches 10000\n"
	"kernel_exits 5\n"
	"kernel_matched 1\n"
	"kernel_tcp_closes 123456\n"
	"kernel_tcp_matched 9999\n";

static void test_status_tcp_lines_to_text(void **state)
{
	assert_output(status_output(status_tcp, false),
		      "kernel watches:       3\n"
		      "kernel TCP watches:   10000\n"
		      "exits seen by kernel: 5\n"
		      "watched exits:        1\n"
		      "kernel TCP closes:    123456\n"
		      "watched TCP closes:   9999\n");
}

static void test_status_tcp_lines_to_json(void **state)
{
	assert_output(status_output(status_tcp, true),
		      "{\"kernel_watches\":3,\"kernel_tcp_watches\":10000,\"kernel_exits\":5,"
		      "\"kernel_matched\":1,\"kernel_tcp_closes\":123456,\"kernel_tcp_matched\":9999,"
		      "\"subscribers_list\":[]}\n");
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
		cmocka_unit_test(test_down_text_tcp_reset_rx),
		cmocka_unit_test(test_down_text_tcp_each_how),
		cmocka_unit_test(test_down_text_tcp_ipv6_in_brackets),
		cmocka_unit_test(test_down_text_tcp_noconnection),
		cmocka_unit_test(test_down_text_tcp_unknown_reason),
		cmocka_unit_test(test_down_json_tcp_reset_rx),
		cmocka_unit_test(test_down_json_tcp_fin_ipv6),
		cmocka_unit_test(test_down_json_tcp_noconnection),
		cmocka_unit_test(test_down_json_tcp_unknown_how_and_reason),
		cmocka_unit_test(test_tcp_state_names),
		cmocka_unit_test(test_format_endpoint),
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
		cmocka_unit_test(test_args_monitor_rate_and_batch),
		cmocka_unit_test(test_args_monitor_rejects_bad_rate_and_batch),
		cmocka_unit_test(test_parse_limit),
		cmocka_unit_test(test_args_monitor_errors),
		cmocka_unit_test(test_args_status),
		cmocka_unit_test(test_args_stats_and_targets),
		cmocka_unit_test(test_args_help_and_version),
		cmocka_unit_test(test_args_usage_errors),
		cmocka_unit_test(test_parse_endpoint_ipv4_and_ipv6),
		cmocka_unit_test(test_parse_endpoint_rejects_bad_values),
		cmocka_unit_test(test_parse_cookie),
		cmocka_unit_test(test_parse_fd_of),
		cmocka_unit_test(test_args_monitor_tcp_each_form_in_order),
		cmocka_unit_test(test_args_monitor_tcp_errors),
		cmocka_unit_test(test_args_monitor_tcp_help),
		cmocka_unit_test(test_status_parse_fields),
		cmocka_unit_test(test_status_to_json),
		cmocka_unit_test(test_status_to_text),
		cmocka_unit_test(test_status_json_ignores_what_is_not_an_integer),
		cmocka_unit_test(test_status_json_includes_unknown_integer_lines),
		cmocka_unit_test(test_status_text_ignores_unknown_lines),
		cmocka_unit_test(test_status_json_keeps_its_own_keys),
		cmocka_unit_test(test_status_text_shows_each_subscribers_pid_and_uid),
		cmocka_unit_test(test_status_json_shows_each_subscribers_pid_and_uid),
		cmocka_unit_test(test_status_pacing_lines_to_text),
		cmocka_unit_test(test_status_pacing_lines_to_json),
		cmocka_unit_test(test_status_tcp_lines_to_text),
		cmocka_unit_test(test_status_tcp_lines_to_json),
		cmocka_unit_test(test_status_empty_text_gives_empty_object),
		cmocka_unit_test(test_status_json_escapes_subscriber_names),
		cmocka_unit_test(test_status_text_hides_control_characters),
		cmocka_unit_test(test_status_uptime_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
