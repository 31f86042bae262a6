// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmonctl: the command-line client of zenmond. `monitor` watches
 * processes die and prints each DOWN; `status` shows the agent's state.
 * The parsing and the formatting live in ctl_*.c (unit-tested); this file
 * is the I/O around them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zenmon.h"
#include "zenmon/proto.h"
#include "ctl_args.h"
#include "ctl_format.h"
#include "ctl_status.h"

#ifndef ZENMON_VERSION
#define ZENMON_VERSION "unknown"
#endif

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2
#define CTL_STATUS_TIMEOUT_MS 5000

static const char help_general[] =
"Usage: zenmonctl [--socket PATH] COMMAND [ARGS...]\n"
"\n"
"Talk to zenmond, the zenmon host agent: watch processes die, Erlang-style,\n"
"and look at the agent's state.\n"
"\n"
"Commands:\n"
"  monitor [--json] [--timeout SECONDS] PID[:STARTTICKS]...\n"
"                      Monitor each process, print one line per DOWN as it\n"
"                      arrives, and exit once every process is down.\n"
"  status [--json]     Show the agent's version, counters and subscribers.\n"
"  help [COMMAND]      Show this help, or a command's.\n"
"  version             Show the version.\n"
"\n"
"Options:\n"
"  -s, --socket PATH   The agent's socket. Default: $ZENMON_SOCKET if set,\n"
"                      else " ZM_DEFAULT_SOCKET ".\n"
"  -h, --help          Show this help (after a command: that command's).\n"
"  -V, --version       Show the version.\n"
"\n"
"Environment:\n"
"  ZENMON_SOCKET       The agent's socket, when --socket is not given.\n"
"\n"
"Exit status:\n"
"  0  success\n"
"  1  failure: no agent, an agent error, a timeout\n"
"  2  usage error\n"
"\n"
"Examples:\n"
"  zenmonctl monitor 1234             wait for process 1234 to die\n"
"  zenmonctl monitor --json --timeout 30 $(pgrep -d ' ' worker)\n"
"  zenmonctl status\n"
"\n"
"Run 'zenmonctl help monitor' or 'zenmonctl help status' for more. The wire\n"
"protocol is in docs/PROTOCOL.md, the C library in <zenmon.h>.\n";

static const char help_monitor[] =
"Usage: zenmonctl monitor [--json] [--timeout SECONDS] PID[:STARTTICKS]...\n"
"\n"
"Ask the agent to monitor each process, print one line for each DOWN as it\n"
"arrives (standard output is flushed after every line), and exit once every\n"
"process is down.\n"
"\n"
"A PID alone names the process that has that pid when the agent gets the\n"
"request. PID:STARTTICKS also names its start time, field 22 of\n"
"/proc/PID/stat, so that a pid reused by another process is not taken for\n"
"it: the DOWN is then \"noproc\". A process that does not exist gives\n"
"\"noproc\" too. A PID runs from 1 to 4194304; a thread id that is not a\n"
"process id is refused by the agent.\n"
"\n"
"Output, one line per DOWN:\n"
"  PID exited status=N ref=REF                 it exited with status N\n"
"  PID killed signal=N (SIGNAME) ref=REF       signal N killed it\n"
"  PID killed signal=N (SIGNAME) core dumped ref=REF\n"
"  PID noproc ref=REF                          no such process (or not that one)\n"
"REF is the monitor's reference, counted from 1 in the order of the PIDs.\n"
"\n"
"With --json, one JSON object per line instead:\n"
"  {\"ref\":1,\"pid\":1234,\"start_ticks\":5678,\"reason\":\"exited\",\"status\":3,\n"
"   \"time_ns\":...}\n"
"  {\"ref\":2,\"pid\":1235,\"reason\":\"killed\",\"signal\":9,\"signal_name\":\"SIGKILL\",\n"
"   \"core_dumped\":false,\"time_ns\":...}\n"
"  {\"ref\":3,\"pid\":1236,\"reason\":\"noproc\",\"time_ns\":...}\n"
"\"start_ticks\" is present when known; \"time_ns\" is when the process died\n"
"(CLOCK_REALTIME, nanoseconds); \"signal_name\" is null for a signal without a\n"
"name.\n"
"\n"
"Options:\n"
"  -j, --json              Print JSON lines.\n"
"  -t, --timeout SECONDS   Give up after SECONDS (such as 5 or 0.5). Default:\n"
"                          wait as long as it takes.\n"
"  -s, --socket PATH       The agent's socket.\n"
"  -h, --help              Show this help.\n"
"\n"
"Exit status:\n"
"  0  every process is down\n"
"  1  the timeout passed, the agent refused a request (the reason is printed\n"
"     on standard error and the others are still waited for), or the\n"
"     connection to the agent failed\n"
"  2  usage error, such as an invalid PID\n"
"\n"
"Examples:\n"
"  zenmonctl monitor 1234 1235\n"
"  zenmonctl monitor \"$pid:$(awk '{print $22}' /proc/$pid/stat)\"\n"
"  zenmonctl monitor --json --timeout 10 $(pgrep -d ' ' nginx)\n";

static const char help_status[] =
"Usage: zenmonctl status [--json]\n"
"\n"
"Show the agent's state:\n"
"  agent version         the agent's version\n"
"  uptime                how long the agent has been running\n"
"  subscribers           connected clients (this one included)\n"
"  monitors              active monitors, all clients together\n"
"  targets               distinct processes those monitors watch\n"
"  kernel watches        entries in the kernel's watch table\n"
"  ring-buffer drops     kernel events that did not fit the ring buffer\n"
"                        (recovered by scanning, but a sign of overload)\n"
"  downs delivered       DOWNs sent since the agent started\n"
"  exits seen by kernel  process exits the kernel program saw\n"
"  watched exits         of those, exits of watched processes\n"
"  kernel wakeups        times the kernel woke the agent\n"
"then one line per connected client: its id, name, monitors, and DOWNs\n"
"queued for it. Counters an older agent does not report are left out.\n"
"\n"
"With --json, one JSON object: the counters under their protocol names\n"
"(version, uptime_seconds, subscribers, monitors, targets, kernel_watches,\n"
"ringbuf_dropped, downs_delivered, kernel_exits, kernel_matched,\n"
"kernel_wakeups) and \"subscribers_list\", an array of {\"id\", \"name\",\n"
"\"monitors\", \"queued\"} objects.\n"
"\n"
"Options:\n"
"  -j, --json          Print one JSON object.\n"
"  -s, --socket PATH   The agent's socket.\n"
"  -h, --help          Show this help.\n"
"\n"
"Exit status: 0 on success, 1 when the agent cannot be reached, 2 on a\n"
"usage error.\n";

static const char *ctl_socket_path(const struct ctl_args *a)
{
	const char *env = getenv(ZM_SOCKET_ENV);

	if (a->socket_path)
		return a->socket_path;
	return env && *env ? env : ZM_DEFAULT_SOCKET;
}

static int ctl_connect(const struct ctl_args *a, struct zm_client **ret)
{
	const char *path = ctl_socket_path(a);
	const char *hint = "";
	int r;

	r = zm_connect(path, "zenmonctl", ret);
	if (r == 0)
		return 0;
	switch (-r) {
	case ENOENT:
	case ECONNREFUSED:
		hint = " (is zenmond running? start it with `make run` or set ZENMON_SOCKET)";
		break;
	case EACCES:
		hint = " (the socket's permissions keep you out: try as root)";
		break;
	case ETIMEDOUT:
		hint = " (the agent did not answer in time)";
		break;
	case EPROTO:
		hint = " (is a zenmon agent listening there?)";
		break;
	case EPROTONOSUPPORT:
		hint = " (the agent does not speak this zenmonctl's protocol version)";
		break;
	}
	fprintf(stderr, "zenmonctl: cannot connect to %s: %s%s\n", path, strerror(-r), hint);
	return r;
}

/* ---- monitor --------------------------------------------------------------- */

struct monitor_state {
	const struct ctl_args *a;
	uint64_t *refs;                /* refs[i]: targets[i]'s reference, ascending */
	bool *done;
	size_t remaining;
	bool failed;
	bool write_failed;
};

/* The target whose reference is ref, or -1. References grow with i. */
static ssize_t monitor_find(const struct monitor_state *st, uint64_t ref)
{
	size_t lo = 0, hi = st->a->n_targets;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->refs[mid] == ref)
			return (ssize_t)mid;
		if (st->refs[mid] < ref)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void monitor_on_down(struct zm_client *c, const struct zm_down_info *down, void *userdata)
{
	struct monitor_state *st = userdata;
	struct zm_down_info d = *down;
	ssize_t i = monitor_find(st, d.ref);

	if (i < 0 || st->done[i])
		return;
	st->done[i] = true;
	st->remaining--;
	if (d.pid <= 0)
		d.pid = st->a->targets[i].pid;
	if (st->a->json)
		ctl_format_down_json(stdout, &d);
	else
		ctl_format_down_text(stdout, &d);
	if (fflush(stdout) != 0 || ferror(stdout))
		st->write_failed = true;
}

static void monitor_on_error(struct zm_client *c, const struct zm_error_info *err, void *userdata)
{
	struct monitor_state *st = userdata;
	ssize_t i = err->ref ? monitor_find(st, err->ref) : -1;

	st->failed = true;
	if (i < 0) {
		fprintf(stderr, "zenmonctl: agent error: %s (%s)\n", err->message, strerror(err->error));
		return;
	}
	fprintf(stderr, "zenmonctl: monitor %s: %s (%s)\n", st->a->targets[i].arg, err->message,
		strerror(err->error));
	if (!st->done[i]) {
		st->done[i] = true;
		st->remaining--;
	}
}

static void monitor_report_up(const struct monitor_state *st, const char *what)
{
	size_t n = st->a->n_targets;

	fprintf(stderr, "zenmonctl: %s: %zu of %zu target%s still up\n", what, st->remaining, n,
		n == 1 ? "" : "s");
}

static int cmd_monitor(const struct ctl_args *a)
{
	struct monitor_state st = { .a = a, .remaining = a->n_targets };
	struct zm_client *c = NULL;
	struct timespec ts;
	uint64_t deadline = 0;
	int r, ret = CTL_EXIT_FAIL;

	st.refs = calloc(a->n_targets, sizeof(*st.refs));
	st.done = calloc(a->n_targets, sizeof(*st.done));
	if (!st.refs || !st.done) {
		fprintf(stderr, "zenmonctl: out of memory\n");
		goto out;
	}
	if (ctl_connect(a, &c) < 0)
		goto out;
	zm_set_error_handler(c, monitor_on_error, &st);

	for (size_t i = 0; i < a->n_targets; i++) {
		const struct ctl_target *t = &a->targets[i];

		r = t->has_start ? zm_monitor_pid_start(c, t->pid, t->start_ticks, &st.refs[i])
				 : zm_monitor_pid(c, t->pid, &st.refs[i]);
		if (r < 0) {
			fprintf(stderr, "zenmonctl: monitor %s: %s\n", t->arg, strerror(-r));
			goto out;
		}
	}
	r = zm_flush(c);
	if (r < 0 && r != -EAGAIN) {
		fprintf(stderr, "zenmonctl: cannot send to the agent: %s\n", strerror(-r));
		goto out;
	}

	if (a->timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		deadline = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + (uint64_t)a->timeout_ms;
	}
	while (st.remaining > 0) {
		int wait_ms = -1;

		if (a->timeout_ms >= 0) {
			uint64_t now;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
			if (now >= deadline) {
				char what[64];

				snprintf(what, sizeof(what), "timed out after %s s", a->timeout_arg);
				monitor_report_up(&st, what);
				goto out;
			}
			wait_ms = (int)(deadline - now);
		}
		r = zm_wait(c, wait_ms, monitor_on_down, &st);
		if (st.write_failed) {
			fprintf(stderr, "zenmonctl: cannot write to standard output: %s\n", strerror(errno));
			goto out;
		}
		if (r == -EINTR)
			continue;
		if (r < 0) {
			char what[128];

			snprintf(what, sizeof(what), "lost the agent: %s",
				 r == -ENOTCONN ? "it closed the connection" : strerror(-r));
			monitor_report_up(&st, what);
			goto out;
		}
	}
	ret = st.failed ? CTL_EXIT_FAIL : CTL_EXIT_OK;
out:
	zm_close(c);
	free(st.refs);
	free(st.done);
	return ret;
}

/* ---- status ---------------------------------------------------------------- */

static int cmd_status(const struct ctl_args *a)
{
	struct ctl_status s;
	struct zm_client *c = NULL;
	char *text = NULL;
	int r;

	if (ctl_connect(a, &c) < 0)
		return CTL_EXIT_FAIL;
	r = zm_status(c, CTL_STATUS_TIMEOUT_MS, &text, NULL, NULL);
	zm_close(c);
	if (r < 0) {
		fprintf(stderr, "zenmonctl: cannot get the agent's status: %s\n", strerror(-r));
		return CTL_EXIT_FAIL;
	}
	r = ctl_status_parse(text, &s);
	free(text);
	if (r < 0) {
		fprintf(stderr, "zenmonctl: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	if (a->json)
		ctl_status_print_json(stdout, &s);
	else
		ctl_status_print_text(stdout, &s);
	ctl_status_free(&s);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "zenmonctl: cannot write to standard output: %s\n", strerror(errno));
		return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct ctl_args a;
	char err[512];
	int r, ret = CTL_EXIT_OK;

	r = ctl_args_parse(argc, argv, &a, err, sizeof(err));
	if (r == -ENOMEM) {
		fprintf(stderr, "zenmonctl: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	if (r < 0) {
		fprintf(stderr, "zenmonctl: %s\nTry 'zenmonctl --help' for more information.\n", err);
		return CTL_EXIT_USAGE;
	}

	switch (a.command) {
	case CTL_CMD_HELP:
		fputs(a.help_topic == CTL_CMD_MONITOR ? help_monitor :
		      a.help_topic == CTL_CMD_STATUS ? help_status : help_general, stdout);
		break;
	case CTL_CMD_VERSION:
		printf("zenmonctl %s (libzenmon %s, protocol %d)\n", ZENMON_VERSION, zm_version(), ZM_PROTO_VERSION);
		break;
	case CTL_CMD_MONITOR:
		ret = cmd_monitor(&a);
		break;
	case CTL_CMD_STATUS:
		ret = cmd_status(&a);
		break;
	}
	ctl_args_free(&a);
	if (ret == CTL_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout))) {
		fprintf(stderr, "zenmonctl: cannot write to standard output: %s\n", strerror(errno));
		ret = CTL_EXIT_FAIL;
	}
	return ret;
}
