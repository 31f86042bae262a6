// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmonctl: the command-line client of zenmond. `monitor` watches
 * processes die and `monitor-tcp` TCP connections close, printing each DOWN;
 * `status` shows the agent's state, `stats` its metrics, `targets` what it
 * watches beside what the kernel holds.
 * The parsing and the formatting live in ctl_*.c (unit-tested); this file
 * is the I/O around them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zenmon.h"
#include "zenmon/proto.h"
#include "ctl_args.h"
#include "ctl_format.h"
#include "ctl_stats.h"
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
"Talk to zenmond, the zenmon host agent: watch processes die and TCP\n"
"connections close, Erlang-style, and look at the agent's state.\n"
"\n"
"Commands:\n"
"  monitor [--json] [--timeout SECONDS] [--rate N] [--batch N]\n"
"          PID[:STARTTICKS]...\n"
"                      Monitor each process, print one line per DOWN as it\n"
"                      arrives, and exit once every process is down.\n"
"  monitor-tcp [--json] [--timeout SECONDS] [--rate N] [--batch N]\n"
"          {--fd-of PID:FD | --cookie N | LOCAL:PORT REMOTE:PORT}...\n"
"                      Monitor each TCP connection, print one line per DOWN\n"
"                      (how it closed), and exit once every one is closed.\n"
"  status [--json]     Show the agent's version, counters and subscribers.\n"
"  stats [--json]      Show the agent's metrics (Prometheus text format).\n"
"  targets [--json] [--limit N]\n"
"                      List the watched targets: the agent's monitors beside\n"
"                      the kernel's watch of each.\n"
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
"  zenmonctl monitor-tcp 10.0.0.5:5432 10.0.0.9:40112\n"
"  zenmonctl status\n"
"  zenmonctl targets --json | python3 -m json.tool\n"
"\n"
"Run 'zenmonctl help COMMAND' (monitor, monitor-tcp, status, stats, targets)\n"
"for more. The wire protocol is in docs/PROTOCOL.md, the C library in\n"
"<zenmon.h>, the metrics in docs/METRICS.md.\n";

static const char help_monitor[] =
"Usage: zenmonctl monitor [--json] [--timeout SECONDS] [--rate N] [--batch N]\n"
"                         PID[:STARTTICKS]...\n"
"\n"
"Ask the agent to monitor each process, print one line for each DOWN as it\n"
"arrives (standard output is flushed after the lines of each frame the agent\n"
"sends, so nothing waits in a buffer), and exit once every process is down.\n"
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
"  -r, --rate N            Accept at most N DOWNs per second (1..10000000):\n"
"                          when many processes die at once the agent paces\n"
"                          their DOWNs; none is dropped. Default: the\n"
"                          agent's. The agent may allow less; then a note\n"
"                          on standard error says how much.\n"
"  -b, --batch N           At most N DOWNs per frame the agent sends\n"
"                          (1..10000000). Default: the agent's.\n"
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
"  zenmonctl monitor --json --timeout 10 $(pgrep -d ' ' nginx)\n"
"  zenmonctl monitor --rate 1000 --batch 100 $(pgrep -d ' ' worker)\n";

static const char help_monitor_tcp[] =
"Usage: zenmonctl monitor-tcp [--json] [--timeout SECONDS] [--rate N] [--batch N]\n"
"                             CONNECTION...\n"
"\n"
"Ask the agent to monitor each TCP connection, print one line for each DOWN\n"
"as it arrives (standard output is flushed after the lines of each frame the\n"
"agent sends), and exit once every connection is closed. The DOWN comes when\n"
"the connection reaches the TCP CLOSE state, and says how it got there.\n"
"\n"
"A CONNECTION is one of:\n"
"  --fd-of PID:FD          The socket that is file descriptor FD of process\n"
"                          PID (see ls -l /proc/PID/fd, or ss -tp). zenmonctl\n"
"                          takes a copy of it with pidfd_getfd(2), which needs\n"
"                          the right to ptrace PID (root, or your own process\n"
"                          where ptrace is not restricted), and hands it to the\n"
"                          agent: this names the socket exactly.\n"
"  --cookie N              The socket whose cookie is N: the kernel's unique,\n"
"                          never reused id of a socket, as SO_COOKIE gives it.\n"
"                          Decimal, or hex after 0x or sk: (`ss -e` shows it\n"
"                          as sk:HEX).\n"
"  LOCAL:PORT REMOTE:PORT  The connection with these ends, in the agent's\n"
"                          network namespace, watched from its LOCAL end's\n"
"                          socket. Numeric addresses only; IPv6 in brackets:\n"
"                          [::1]:5000. On one host both ends of a loopback\n"
"                          connection are sockets: the order picks one.\n"
"Each is watched from one socket: its own view is what the line shows. A\n"
"connection that is not established (not yet connected, already closed or\n"
"closing, no such one) gives \"noconnection\" at once.\n"
"\n"
"Output, one line per DOWN:\n"
"  LOCAL -> REMOTE tcp_closed how=HOW [errno=N (ENAME)] cookie=N ref=REF\n"
"  LOCAL -> REMOTE noconnection cookie=N ref=REF\n"
"where HOW is\n"
"  fin        closed normally: the FIN handshake, whichever side began\n"
"  reset_rx   the peer reset it (errno ECONNRESET or EPIPE)\n"
"  reset_tx   this host reset it: closed with SO_LINGER 0 or with unread\n"
"             data, or killed with ss -K\n"
"  timeout    the peer stopped answering: retransmission, keepalive or\n"
"             TCP_USER_TIMEOUT timeout (errno ETIMEDOUT), or unreachable\n"
"             (EHOSTUNREACH, ENETUNREACH)\n"
"  error      another socket error (errno says which), such as a refused\n"
"             connection (ECONNREFUSED)\n"
"The ends are left out when they are not known (a --cookie that names no\n"
"connection), the cookie when it is not known. REF is the monitor's\n"
"reference, counted from 1 in the order of the connections. For example:\n"
"  10.0.0.5:5432 -> 10.0.0.9:40112 tcp_closed how=fin cookie=4097 ref=1\n"
"  [::1]:8 -> [::1]:9 tcp_closed how=timeout errno=110 (ETIMEDOUT) cookie=9 ref=2\n"
"  noconnection cookie=77 ref=3\n"
"\n"
"With --json, one JSON object per line instead:\n"
"  {\"ref\":1,\"kind\":\"tcp\",\"cookie\":4097,\"family\":\"ipv4\",\n"
"   \"local\":\"127.0.0.1:5000\",\"remote\":\"127.0.0.1:41234\",\"reason\":\"tcp_closed\",\n"
"   \"how\":\"reset_rx\",\"errno\":104,\"errno_name\":\"ECONNRESET\",\n"
"   \"old_state\":\"ESTABLISHED\",\"time_ns\":...}\n"
"  {\"ref\":2,\"kind\":\"tcp\",\"cookie\":77,\"reason\":\"noconnection\",\"time_ns\":...}\n"
"\"family\" is \"ipv4\" or \"ipv6\"; \"cookie\", \"family\", \"local\" and \"remote\"\n"
"are present when known; \"errno\" is 0 and \"errno_name\" null when the socket\n"
"had no error; \"old_state\" is the TCP state the connection left\n"
"(ESTABLISHED, FIN_WAIT2, LAST_ACK, ...), present when known; \"time_ns\" is\n"
"when it closed (CLOCK_REALTIME, nanoseconds).\n"
"\n"
"Options:\n"
"  -j, --json              Print JSON lines.\n"
"  -t, --timeout SECONDS   Give up after SECONDS (such as 5 or 0.5). Default:\n"
"                          wait as long as it takes.\n"
"  -r, --rate N            Accept at most N DOWNs per second (1..10000000).\n"
"                          Default: the agent's.\n"
"  -b, --batch N           At most N DOWNs per frame the agent sends\n"
"                          (1..10000000). Default: the agent's.\n"
"  -s, --socket PATH       The agent's socket.\n"
"  -h, --help              Show this help.\n"
"\n"
"Exit status:\n"
"  0  every connection is closed\n"
"  1  the timeout passed, a socket could not be taken from its process, the\n"
"     agent refused a request (the reason is printed on standard error and\n"
"     the others are still waited for), or the connection to the agent\n"
"     failed\n"
"  2  usage error, such as an invalid address\n"
"\n"
"Examples:\n"
"  zenmonctl monitor-tcp 10.0.0.5:5432 10.0.0.9:40112\n"
"  zenmonctl monitor-tcp '[2001:db8::5]:443' '[2001:db8::9]:51000'\n"
"  sudo zenmonctl monitor-tcp --fd-of \"$(pgrep -o postgres):9\"\n"
"  ss -tenH state established '( sport = :5432 )'   # shows sk:HEX\n"
"  zenmonctl monitor-tcp --json --cookie sk:1a2b --cookie 6712\n";

static const char help_status[] =
"Usage: zenmonctl status [--json]\n"
"\n"
"Show the agent's state:\n"
"  agent version         the agent's version\n"
"  uptime                how long the agent has been running\n"
"  subscribers           connected clients (this one included)\n"
"  monitors              active monitors, all clients together\n"
"  targets               distinct processes and connections those monitors\n"
"                        watch\n"
"  kernel watches        entries in the kernel's table of watched processes\n"
"  kernel TCP watches    entries in the kernel's table of watched sockets\n"
"  ring-buffer drops     kernel events that did not fit the ring buffer\n"
"                        (recovered by scanning, but a sign of overload)\n"
"  downs delivered       DOWNs sent since the agent started\n"
"  exits seen by kernel  process exits the kernel program saw\n"
"  watched exits         of those, exits of watched processes\n"
"  kernel TCP closes     TCP connections the kernel program saw close\n"
"  watched TCP closes    of those, closes of watched sockets\n"
"  kernel wakeups        times the kernel woke the agent\n"
"  downs queued          DOWNs waiting in the agent to be sent, all clients\n"
"                        together (paced, or held up by a slow reader)\n"
"  downs flushed         queued DOWNs that a demonitor took back\n"
"  subscribers dropped   clients disconnected for not reading\n"
"  rate limit            DOWNs per second one client gets at most\n"
"  global rate limit     DOWNs per second all clients get together at most\n"
"then one line per connected client: its id, name, monitors, and DOWNs\n"
"queued for it. Counters an older agent does not report are left out.\n"
"\n"
"With --json, one JSON object: the counters under their protocol names\n"
"(version, uptime_seconds, subscribers, monitors, targets, kernel_watches,\n"
"kernel_tcp_watches, ringbuf_dropped, downs_delivered, kernel_exits,\n"
"kernel_matched, kernel_tcp_closes, kernel_tcp_matched, kernel_wakeups,\n"
"downs_queued, downs_flushed, subscribers_dropped,\n"
"rate_limit, global_rate; a rate of 0 means no limit), then every other\n"
"counter the agent reports, under its own name, and \"subscribers_list\",\n"
"an array of {\"id\", \"name\", \"monitors\", \"queued\", ...} objects, where\n"
"\"...\" is any other number the agent reports for a client (such as\n"
"\"rate\", \"batch\", \"sent\").\n"
"\n"
"Options:\n"
"  -j, --json          Print one JSON object.\n"
"  -s, --socket PATH   The agent's socket.\n"
"  -h, --help          Show this help.\n"
"\n"
"Exit status: 0 on success, 1 when the agent cannot be reached, 2 on a\n"
"usage error.\n";

static const char help_stats[] =
"Usage: zenmonctl stats [--json]\n"
"\n"
"Show the agent's metrics: counters and gauges of monitors, targets,\n"
"subscribers, DOWNs (enqueued and delivered, by reason), batches, frames,\n"
"records and errors by type, the kernel's records and ring-buffer drops, and\n"
"the event loop's passes. The text is the Prometheus text exposition format,\n"
"the same that zenmond --metrics-listen serves at /metrics; docs/METRICS.md\n"
"says what each metric means.\n"
"\n"
"With --json, one JSON object keyed by metric name:\n"
"  {\"zenmon_monitors\":{\"type\":\"gauge\",\"help\":\"...\",\"samples\":[\n"
"     {\"name\":\"zenmon_monitors\",\"labels\":{},\"value\":3}]},\n"
"   \"zenmon_downs_delivered_total\":{\"type\":\"counter\",...,\"samples\":[\n"
"     {\"name\":\"zenmon_downs_delivered_total\",\"labels\":{\"reason\":\"killed\"},\n"
"      \"value\":12},...]},...}\n"
"A histogram's samples are its _bucket (label \"le\"), _sum and _count\n"
"series. A value is a number, or a string where it is not one (\"+Inf\").\n"
"\n"
"Options:\n"
"  -j, --json          Print one JSON object.\n"
"  -s, --socket PATH   The agent's socket.\n"
"  -h, --help          Show this help.\n"
"\n"
"Exit status: 0 on success, 1 when the agent cannot be reached (or is older\n"
"than this request: it closes the connection), 2 on a usage error.\n"
"\n"
"Examples:\n"
"  zenmonctl stats | grep ^zenmon_downs\n"
"  zenmonctl stats --json | python3 -m json.tool\n";

static const char help_targets[] =
"Usage: zenmonctl targets [--json] [--limit N]\n"
"\n"
"List what the agent watches, one line per target, with the kernel's view of\n"
"it beside the agent's, so the two can be compared:\n"
"  KIND         process or tcp\n"
"  TARGET       a process's pid and start time (field 22 of /proc/PID/stat),\n"
"               a connection's ends and socket cookie\n"
"  MONITORS     the agent's monitors of it; 0 when only the kernel has a\n"
"               watch (the agent lost track of it, or its death is being\n"
"               handled right now)\n"
"  KERNEL       the state of its kernel watch: armed (waiting), fired (down,\n"
"               not yet handled), armed_rst_sent (a connection this host reset,\n"
"               still open), none (the agent holds a target without a watch)\n"
"  SUBSCRIBERS  the clients that monitor it: id (name)\n"
"then the number of targets.\n"
"\n"
"With --json, one JSON object:\n"
"  {\"targets\":[{\"kind\":\"process\",\"pid\":1234,\"start_ticks\":5678,\n"
"     \"monitors\":2,\"kernel\":\"armed\",\"subscribers\":[{\"id\":3,\"name\":\"billing\"}]},\n"
"    {\"kind\":\"tcp\",\"cookie\":4097,\"local\":\"127.0.0.1:5000\",\n"
"     \"remote\":\"127.0.0.1:41234\",\"monitors\":1,\"kernel\":\"armed\",\n"
"     \"subscribers\":[...]}],\n"
"   \"total\":2,\"listed\":2,\"agent\":2,\"kernel_only\":0}\n"
"\"local\" and \"remote\" are there while the socket exists. Other numbers the\n"
"agent reports come as they are.\n"
"\n"
"Listing walks the kernel's maps and, for connections, the host's sockets: a\n"
"million targets keep the agent busy for about a second.\n"
"\n"
"Options:\n"
"  -j, --json          Print one JSON object.\n"
"  -n, --limit N       List at most N targets (1..10000000); the counts\n"
"                      still cover them all. Default: all.\n"
"  -s, --socket PATH   The agent's socket.\n"
"  -h, --help          Show this help.\n"
"\n"
"Exit status: 0 on success, 1 when the agent cannot be reached (or is older\n"
"than this request), 2 on a usage error.\n";

static const char *ctl_socket_path(const struct ctl_args *a)
{
	const char *env = getenv(ZM_SOCKET_ENV);

	if (a->socket_path)
		return a->socket_path;
	return env && *env ? env : ZM_DEFAULT_SOCKET;
}

static int ctl_connect(const struct ctl_args *a, struct zm_client **ret)
{
	struct zm_connect_options o = {
		.socket_path = ctl_socket_path(a),
		.name = "zenmonctl",
		.max_rate = a->rate,
		.max_batch = a->batch,
	};
	const char *path = o.socket_path;
	const char *hint = "";
	int r;

	r = zm_connect_opts(&o, ret);
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

/* ---- monitor, monitor-tcp -------------------------------------------------- */

struct monitor_state {
	const struct ctl_args *a;
	uint64_t *refs;                /* refs[k]: the k-th monitor's reference, ascending */
	size_t *target_of;             /* target_of[k]: that monitor's index in a->targets */
	size_t n_refs;
	struct zm_tcp_endpoints *ends; /* ends[i]: target i's ends as known here, to show
					  when its DOWN does not say (family 0: unknown) */
	bool *done;                    /* done[i]: target i needs no more waiting */
	size_t remaining;
	bool failed;
	bool write_failed;
};

/* The target whose reference is ref, or -1. References grow with k. */
static ssize_t monitor_find(const struct monitor_state *st, uint64_t ref)
{
	size_t lo = 0, hi = st->n_refs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->refs[mid] == ref)
			return (ssize_t)st->target_of[mid];
		if (st->refs[mid] < ref)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Target i needs no more waiting (its DOWN came, or it failed). */
static void monitor_finish(struct monitor_state *st, size_t i)
{
	if (!st->done[i]) {
		st->done[i] = true;
		st->remaining--;
	}
}

/* "monitor 1234", "monitor-tcp --cookie 77": who a message is about. */
static void monitor_fail_target(struct monitor_state *st, size_t i, const char *why, int err)
{
	char label[160];

	ctl_args_target_label(&st->a->targets[i], label, sizeof(label));
	if (err)
		fprintf(stderr, "zenmonctl: %s %s: %s (%s)\n", ctl_args_command_name(st->a->command),
			label, why, strerror(err));
	else
		fprintf(stderr, "zenmonctl: %s %s: %s\n", ctl_args_command_name(st->a->command), label, why);
	st->failed = true;
	monitor_finish(st, i);
}

/* The DOWNs of one frame: one line each, one flush for all. */
static void monitor_on_batch(struct zm_client *c, const struct zm_down_info *downs, size_t n,
			     void *userdata)
{
	struct monitor_state *st = userdata;

	for (size_t k = 0; k < n; k++) {
		struct zm_down_info d = downs[k];
		ssize_t i = monitor_find(st, d.ref);

		if (i < 0 || st->done[i])
			continue;
		monitor_finish(st, (size_t)i);
		if (d.kind == ZM_KIND_TCP) {
			if (d.tcp.family == 0 && st->ends)
				d.tcp = st->ends[i];
		} else if (d.pid <= 0) {
			d.pid = st->a->targets[i].pid;
		}
		if (st->a->json)
			ctl_format_down_json(stdout, &d);
		else
			ctl_format_down_text(stdout, &d);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		st->write_failed = true;
}

static void monitor_on_error(struct zm_client *c, const struct zm_error_info *err, void *userdata)
{
	struct monitor_state *st = userdata;
	ssize_t i = err->ref ? monitor_find(st, err->ref) : -1;

	if (i < 0) {
		st->failed = true;
		fprintf(stderr, "zenmonctl: agent error: %s (%s)\n", err->message, strerror(err->error));
		return;
	}
	monitor_fail_target(st, (size_t)i, err->message, err->error);
}

static void monitor_report_up(const struct monitor_state *st, const char *what)
{
	size_t n = st->a->n_targets;

	if (st->a->command == CTL_CMD_MONITOR_TCP)
		fprintf(stderr, "zenmonctl: %s: %zu of %zu connection%s still open\n", what,
			st->remaining, n, n == 1 ? "" : "s");
	else
		fprintf(stderr, "zenmonctl: %s: %zu of %zu target%s still up\n", what, st->remaining, n,
			n == 1 ? "" : "s");
}

/* Say so when the agent grants less pacing than --rate / --batch asked
 * (it caps what subscribers may ask): the user would wonder otherwise. */
static void monitor_report_limits(const struct ctl_args *a, const struct zm_client *c)
{
	uint32_t rate = 0, batch = 0;

	if (zm_limits(c, &rate, &batch, NULL) < 0)
		return;
	if (a->rate && rate && rate < a->rate)
		fprintf(stderr, "zenmonctl: note: the agent allows %" PRIu32 " DOWNs per second, "
			"not %" PRIu32 "\n", rate, a->rate);
	if (a->batch && batch && batch < a->batch)
		fprintf(stderr, "zenmonctl: note: the agent allows %" PRIu32 " DOWNs per frame, "
			"not %" PRIu32 "\n", batch, a->batch);
}

/* A socket's ends as the socket sees them; family 0 if they cannot be read
 * (not an AF_INET/AF_INET6 socket, or not connected). */
static struct zm_tcp_endpoints monitor_socket_ends(int fd)
{
	struct sockaddr_storage l, r;
	socklen_t llen = sizeof(l), rlen = sizeof(r);
	struct zm_tcp_endpoints e = { 0 };

	if (getsockname(fd, (struct sockaddr *)&l, &llen) < 0 ||
	    getpeername(fd, (struct sockaddr *)&r, &rlen) < 0 || l.ss_family != r.ss_family)
		return e;
	if (l.ss_family == AF_INET) {
		const struct sockaddr_in *l4 = (const void *)&l, *r4 = (const void *)&r;

		e.local.v4 = l4->sin_addr;
		e.remote.v4 = r4->sin_addr;
		e.local_port = ntohs(l4->sin_port);
		e.remote_port = ntohs(r4->sin_port);
	} else if (l.ss_family == AF_INET6) {
		const struct sockaddr_in6 *l6 = (const void *)&l, *r6 = (const void *)&r;

		e.local.v6 = l6->sin6_addr;
		e.remote.v6 = r6->sin6_addr;
		e.local_port = ntohs(l6->sin6_port);
		e.remote_port = ntohs(r6->sin6_port);
	} else {
		return e;
	}
	e.family = l.ss_family;
	return e;
}

/*
 * A copy of process pid's file descriptor fd (pidfd_getfd(2)): a socket
 * cannot be opened through /proc/PID/fd/FD. The fd, or -errno with
 * *ret_why saying what failed in words (NULL: strerror says it all).
 */
static int monitor_take_fd(pid_t pid, int fd, const char **ret_why)
{
	int pidfd, r;

	*ret_why = NULL;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		r = -errno;
		if (r == -ESRCH)
			*ret_why = "no such process";
		return r;
	}
	r = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (r < 0) {
		r = -errno;
		if (r == -EBADF)
			*ret_why = "the process has no such file descriptor";
		else if (r == -EPERM)
			*ret_why = "not allowed to take its file descriptor (that needs the right to "
				   "ptrace the process: try as root)";
		else if (r == -ESRCH)
			*ret_why = "the process is exiting";
	}
	close(pidfd);
	return r;
}

/* Queue the MONITOR for target i. 0, or -errno when the library refused
 * (then nothing more can be sent); a target that failed here on its own
 * (an --fd-of that cannot be taken) is reported and marked done. */
static int monitor_request(struct monitor_state *st, struct zm_client *c, size_t i)
{
	const struct ctl_target *t = &st->a->targets[i];
	const char *why = NULL;
	uint64_t ref = 0;
	int fd, r = 0;

	switch (t->kind) {
	case CTL_TARGET_PID:
		r = t->has_start ? zm_monitor_pid_start(c, t->pid, t->start_ticks, &ref)
				 : zm_monitor_pid(c, t->pid, &ref);
		break;
	case CTL_TARGET_TCP_FD:
		fd = monitor_take_fd(t->pid, t->fd, &why);
		if (fd < 0) {
			if (why)
				monitor_fail_target(st, i, why, 0);
			else
				monitor_fail_target(st, i, "cannot take the socket", -fd);
			return 0;
		}
		st->ends[i] = monitor_socket_ends(fd);
		r = zm_monitor_tcp_fd(c, fd, &ref);
		close(fd);   /* the library has its own copy */
		break;
	case CTL_TARGET_TCP_COOKIE:
		r = zm_monitor_tcp_cookie(c, t->cookie, &ref);
		break;
	case CTL_TARGET_TCP_TUPLE:
		st->ends[i] = t->tuple;
		r = zm_monitor_tcp_tuple(c, &t->tuple, &ref);
		break;
	}
	if (r < 0) {
		char label[160];

		ctl_args_target_label(t, label, sizeof(label));
		fprintf(stderr, "zenmonctl: %s %s: %s\n", ctl_args_command_name(st->a->command), label,
			strerror(-r));
		return r;
	}
	st->refs[st->n_refs] = ref;
	st->target_of[st->n_refs] = i;
	st->n_refs++;
	return 0;
}

/* monitor and monitor-tcp: request every target, then print DOWNs until
 * each target is down, the timeout passes, or the agent goes away. */
static int cmd_monitor(const struct ctl_args *a)
{
	struct monitor_state st = { .a = a, .remaining = a->n_targets };
	struct zm_client *c = NULL;
	struct timespec ts;
	uint64_t deadline = 0;
	int r, ret = CTL_EXIT_FAIL;

	st.refs = calloc(a->n_targets, sizeof(*st.refs));
	st.target_of = calloc(a->n_targets, sizeof(*st.target_of));
	st.done = calloc(a->n_targets, sizeof(*st.done));
	if (a->command == CTL_CMD_MONITOR_TCP)
		st.ends = calloc(a->n_targets, sizeof(*st.ends));
	if (!st.refs || !st.target_of || !st.done || (a->command == CTL_CMD_MONITOR_TCP && !st.ends)) {
		fprintf(stderr, "zenmonctl: out of memory\n");
		goto out;
	}
	if (ctl_connect(a, &c) < 0)
		goto out;
	zm_set_error_handler(c, monitor_on_error, &st);
	monitor_report_limits(a, c);

	for (size_t i = 0; i < a->n_targets; i++)
		if (monitor_request(&st, c, i) < 0)
			goto out;
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
		r = zm_wait_batch(c, wait_ms, monitor_on_batch, &st);
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
	free(st.target_of);
	free(st.ends);
	free(st.done);
	return ret;
}

/* The agent's answer to a text request (STATUS, STATS, TARGETS: by
 * a->command), or NULL, said on stderr. what names it in that message. */
static char *ctl_fetch_text(const struct ctl_args *a, const char *what)
{
	struct zm_client *c = NULL;
	char *text = NULL;
	int r;

	if (ctl_connect(a, &c) < 0)
		return NULL;
	if (a->command == CTL_CMD_STATUS)
		r = zm_status(c, CTL_STATUS_TIMEOUT_MS, &text, NULL, NULL);
	else if (a->command == CTL_CMD_STATS)
		r = zm_stats(c, CTL_STATUS_TIMEOUT_MS, &text, NULL, NULL);
	else
		r = zm_targets(c, CTL_STATUS_TIMEOUT_MS, a->limit, &text, NULL, NULL);
	zm_close(c);
	if (r < 0) {
		/* STATS and TARGETS came after STATUS: an older agent lacks them. */
		fprintf(stderr, "zenmonctl: cannot get the agent's %s: %s%s\n", what, strerror(-r),
			r == -ENOTCONN && a->command != CTL_CMD_STATUS ?
			" (an agent older than this zenmonctl closes the connection: "
			"upgrade zenmond)" : "");
		return NULL;
	}
	return text;
}

/* ---- status ---------------------------------------------------------------- */

static int cmd_status(const struct ctl_args *a)
{
	struct ctl_status s;
	char *text = ctl_fetch_text(a, "status");
	int r;

	if (!text)
		return CTL_EXIT_FAIL;
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
	return CTL_EXIT_OK; /* main() checks that standard output took it all */
}

/* ---- stats, targets --------------------------------------------------------- */

static int cmd_stats(const struct ctl_args *a)
{
	struct ctl_stats s;
	char *text = ctl_fetch_text(a, "metrics");
	int r;

	if (!text)
		return CTL_EXIT_FAIL;
	if (!a->json) {
		fputs(text, stdout);
		free(text);
		return CTL_EXIT_OK;
	}
	r = ctl_stats_parse(text, &s);
	free(text);
	if (r < 0) {
		fprintf(stderr, "zenmonctl: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	ctl_stats_print_json(stdout, &s);
	ctl_stats_free(&s);
	return CTL_EXIT_OK;
}

static int cmd_targets(const struct ctl_args *a)
{
	struct ctl_targets t;
	char *text = ctl_fetch_text(a, "targets");
	int r;

	if (!text)
		return CTL_EXIT_FAIL;
	r = ctl_targets_parse(text, &t);
	free(text);
	if (r < 0) {
		fprintf(stderr, "zenmonctl: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	if (a->json)
		ctl_targets_print_json(stdout, &t);
	else
		ctl_targets_print_text(stdout, &t);
	ctl_targets_free(&t);
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
		      a.help_topic == CTL_CMD_MONITOR_TCP ? help_monitor_tcp :
		      a.help_topic == CTL_CMD_STATUS ? help_status :
		      a.help_topic == CTL_CMD_STATS ? help_stats :
		      a.help_topic == CTL_CMD_TARGETS ? help_targets : help_general, stdout);
		break;
	case CTL_CMD_VERSION:
		printf("zenmonctl %s (libzenmon %s, protocol %d)\n", ZENMON_VERSION, zm_version(), ZM_PROTO_VERSION);
		break;
	case CTL_CMD_MONITOR:
	case CTL_CMD_MONITOR_TCP:
		ret = cmd_monitor(&a);
		break;
	case CTL_CMD_STATUS:
		ret = cmd_status(&a);
		break;
	case CTL_CMD_STATS:
		ret = cmd_stats(&a);
		break;
	case CTL_CMD_TARGETS:
		ret = cmd_targets(&a);
		break;
	}
	ctl_args_free(&a);
	if (ret == CTL_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout))) {
		fprintf(stderr, "zenmonctl: cannot write to standard output: %s\n", strerror(errno));
		ret = CTL_EXIT_FAIL;
	}
	return ret;
}
