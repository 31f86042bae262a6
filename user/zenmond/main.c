// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmond: the zenmon host agent. Loads the kernel watch, listens on a Unix
 * socket, turns process deaths into DOWN notifications for subscribers.
 * One thread, one epoll loop (loop.h).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "notify.h"

#define DEFAULT_CONFIG "/etc/zenmon/zenmond.conf"
#define DEFAULT_PIN_DIR "/sys/fs/bpf/zenmon"
#define CHECK_INTERVAL_MS 250   /* drop check, limits, and the backstop drain */
#define DEFAULT_MAX_BATCH 1024U
/* A frame holds at most 1 MiB: 16384 DOWNs of 44 bytes fit with room. */
#define MAX_BATCH_LIMIT 16384U
#define DEFAULT_BATCH_WINDOW_US 1000U
#define DISPATCH_MAX_BATCHES 64 /* per pass, before the loop looks at other events */
#define DEFAULT_ADOPT_TIMEOUT_S 60 /* clients reconnect in well under a second */
/* Access: the socket's group if it exists, and the quotas' defaults (each
 * also written out in the help). */
#define DEFAULT_SOCKET_GROUP "zenmon"
#define DEFAULT_MONITORS_PER_SUBSCRIBER 100000
#define DEFAULT_MONITORS_PER_UID 250000
#define DEFAULT_CONNECTIONS_PER_UID 64
#define DEFAULT_REQUESTS_PER_SECOND 50000
#define DEFAULT_QUEUED_BYTES_PER_UID 16777216 /* four subscribers' worth */
#define STR_(x) #x
#define STR(x) STR_(x)

enum {
	OPT_MAX_RATE = 0x100,
	OPT_MAX_BATCH,
	OPT_BATCH_WINDOW,
	OPT_GLOBAL_RATE,
	OPT_STALL_TIMEOUT,
	OPT_MAX_QUEUED,
	OPT_CHECK_CONFIG,
	OPT_METRICS_LISTEN,
	OPT_SOCKET_OWNER,
	OPT_SOCKET_GROUP,
	OPT_USER,
	OPT_ALLOW_UIDS,
	OPT_ALLOW_GROUPS,
	OPT_MAX_MONITORS_SUB,
	OPT_MAX_MONITORS_UID,
	OPT_MAX_CONNECTIONS_UID,
	OPT_MAX_REQUESTS,
	OPT_MAX_QUEUED_BYTES,
	OPT_ADOPT_TIMEOUT,
	OPT_CLEANUP,
	OPT_RING_SIZE,
	OPT_MAX_QUEUED_BYTES_UID,
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: zenmond [OPTIONS]\n"
"\n"
"The zenmon host agent: Erlang-style monitors for Linux processes. Programs\n"
"connect to its Unix socket (with libzenmon, zenmonctl, or the protocol in\n"
"docs/PROTOCOL.md), monitor processes, and receive exactly one DOWN per\n"
"monitor when the process dies. eBPF on sched_process_exit does the watching.\n"
"Runs in the foreground and logs to standard error. Needs root, or CAP_BPF and\n"
"CAP_PERFMON, with CAP_SYS_PTRACE to read the exit status of a process already\n"
"dead when monitored and CAP_SYS_ADMIN to mount bpffs (dist/zenmond.service).\n"
"Once set up it keeps only CAP_SYS_PTRACE, and CAP_NET_ADMIN raised for its one\n"
"use, and with --user runs as that user.\n"
"\n"
"Options:\n"
"  -s, --socket PATH         listen on PATH (default: $%s, else %s)\n"
"  -p, --pin-dir DIR         pin the BPF maps under DIR, on a bpf filesystem\n"
"                            (default: %s); inspect them with\n"
"                            bpftool map dump pinned DIR/zm_procs\n"
"  -w, --wakeup-interval US  at most one kernel wakeup of the agent per US\n"
"                            microseconds under an exit storm (default: %llu);\n"
"                            a lone exit always wakes it at once\n"
"      --ring-size SIZE      the kernel's ring buffer of exit and close records,\n"
"                            a power of two from 64K to 1G (suffix K, M or G;\n"
"                            default: %uM, room for %u exit records); what finds\n"
"                            it full is recovered from the watch maps\n"
"\n"
"Restarts lose nothing: the BPF programs stay attached and the maps pinned\n"
"while no agent runs, so the kernel records exits meanwhile. A new agent on\n"
"the same pin dir takes them over, and clients (libzenmon reconnects by\n"
"itself) bring their monitors back and get the DOWNs of what died.\n"
"      --adopt-timeout SEC   keep the watches a previous agent left for SEC\n"
"                            seconds for their clients to come back, then\n"
"                            remove those nobody claimed (default: " STR(DEFAULT_ADOPT_TIMEOUT_S) ")\n"
"      --cleanup             remove the programs and maps pinned under the pin\n"
"                            dir (no agent may be running on it) and exit: the\n"
"                            kernel stops recording exits for zenmond\n"
"\n"
"Delivery (each subscriber asks in its HELLO; these are the agent's caps and\n"
"the values a subscriber gets when it asks for none):\n"
"      --max-rate N          DOWNs per second to one subscriber (default: 0,\n"
"                            no limit)\n"
"      --max-batch N         DOWN records per frame, 1..%u (default: %u)\n"
"      --batch-window US     how long a DOWN may wait for company once a\n"
"                            subscriber is busy; a DOWN for an idle one goes at\n"
"                            once (default: %u)\n"
"      --global-rate N       DOWNs per second to all subscribers together\n"
"                            (default: 0, no limit)\n"
"      --stall-timeout SEC   disconnect a subscriber whose socket stayed full\n"
"                            for SEC seconds, after a last ERROR (default: 0,\n"
"                            never: a slow reader is only back-pressured)\n"
"      --max-queued N        disconnect a subscriber with more than N DOWNs\n"
"                            waiting (default: 0, no limit: a queue never\n"
"                            holds more than the subscriber's monitors)\n"
"\n"
"Access (who may connect: the socket file's owner, group and mode; what a\n"
"connection may monitor: checked on each request against its SO_PEERCRED):\n"
"      --socket-owner USER   owner of the socket file (default: the user the\n"
"                            agent runs as)\n"
"      --socket-group GROUP  its group (default: " DEFAULT_SOCKET_GROUP " if that group\n"
"                            exists, else the agent's)\n"
"  -m, --socket-mode MODE    its permissions, octal (default: 0660 with the\n"
"                            " DEFAULT_SOCKET_GROUP " group or a --socket-group, else 0600)\n"
"      --allow-uids LIST     users (names or uids, comma-separated) who may\n"
"                            monitor any process or socket, as root may; any\n"
"                            other only processes it could signal (its uid the\n"
"                            target's real or saved uid), sockets it owns, and\n"
"                            pidfds and sockets it passes (default: none)\n"
"      --allow-groups LIST   the same for members of these groups (default:\n"
"                            none)\n"
"      --user USER           run as USER once set up (default: stay root;\n"
"                            either way without the other capabilities)\n"
"\n"
"Quotas (0: no limit; root's connections are exempt; a request past one gets\n"
"ERROR ENOSPC or EAGAIN and nothing else changes):\n"
"      --max-monitors-per-subscriber N\n"
"                            monitors one connection holds, DOWNs it has not\n"
"                            read yet included (default: " STR(DEFAULT_MONITORS_PER_SUBSCRIBER) ")\n"
"      --max-monitors-per-uid N\n"
"                            the same for all connections of one uid together\n"
"                            (default: " STR(DEFAULT_MONITORS_PER_UID) ")\n"
"      --max-connections-per-uid N\n"
"                            connections of one uid; one more is answered\n"
"                            ENOSPC and closed (default: " STR(DEFAULT_CONNECTIONS_PER_UID) ")\n"
"      --max-requests-per-second N\n"
"                            requests of one connection, and of one uid over\n"
"                            all its connections, in bursts of up to one\n"
"                            second's worth; more get EAGAIN (SYNC and\n"
"                            DEMONITOR never do) (default: " STR(DEFAULT_REQUESTS_PER_SECOND) ")\n"
"      --max-queued-bytes-per-subscriber N\n"
"                            bytes of answers waiting unsent to one connection\n"
"                            (root's too) beyond which the agent reads no more\n"
"                            of its requests until it reads (DOWNs waiting are\n"
"                            bounded by its monitors and --max-queued),\n"
"                            65536..1073741824 (default: %u)\n"
"      --max-queued-bytes-per-uid N\n"
"                            the same over all the connections of one uid\n"
"                            (root is exempt): past it none of them is read\n"
"                            until they read, 0..1073741824, 0 for no limit\n"
"                            (default: " STR(DEFAULT_QUEUED_BYTES_PER_UID) ")\n"
"\n"
"      --metrics-listen HOST:PORT\n"
"                            serve Prometheus metrics at http://HOST:PORT/metrics\n"
"                            (a numeric IPv4 address, or IPv6 in brackets; a\n"
"                            PORT alone means 127.0.0.1:PORT); default: no HTTP\n"
"                            listener (`zenmonctl stats` reads them anyway)\n"
"\n"
"  -l, --log-level LEVEL     error, warn, info (default) or debug\n"
"  -c, --config PATH         settings: \"key = value\" lines, the keys these long\n"
"                            options; the command line wins (default:\n"
"                            %s, if it exists)\n"
"      --check-config        check the configuration file and the options,\n"
"                            print the effective settings, exit (0 valid, 1 not)\n"
"  -h, --help                show this help and exit\n"
"  -V, --version             show the version and exit\n"
"\n"
"Signals: SIGTERM or SIGINT stop the agent cleanly: it delivers the DOWNs the\n"
"kernel already reported, closes every connection and removes its socket,\n"
"leaving its programs attached and its maps pinned for the next agent (see\n"
"--cleanup). SIGHUP reads the configuration file again and applies what\n"
"can change while running (log-level, socket-mode, allow-uids, allow-groups,\n"
"the quotas and the delivery limits) without dropping a subscriber; it logs\n"
"what else changed and needs a restart.\n"
"Under systemd (Type=notify) it reports readiness once it serves.\n"
"\n"
"Exit status: 0 after a clean stop, 1 when it cannot start (the reason is\n"
"logged) or the configuration is wrong, 2 on a usage error.\n",
		ZM_SOCKET_ENV, ZM_DEFAULT_SOCKET, DEFAULT_PIN_DIR,
		ZM_DEFAULT_WAKEUP_INTERVAL_NS / 1000ULL, ZM_RINGBUF_BYTES >> 20,
		ZM_RINGBUF_BYTES / ZM_RINGBUF_PROC_RECORD,
		MAX_BATCH_LIMIT, DEFAULT_MAX_BATCH, DEFAULT_BATCH_WINDOW_US,
		AGENT_DEFAULT_QUEUED_BYTES, DEFAULT_CONFIG);
}

/*
 * Every option, for getopt and for the configuration file, whose keys are
 * these long names (config.h): an option added here with required_argument
 * is a setting as well, once opt_apply() handles it.
 */
static const struct option longopts[] = {
	{ "socket", required_argument, NULL, 's' },
	{ "pin-dir", required_argument, NULL, 'p' },
	{ "socket-mode", required_argument, NULL, 'm' },
	{ "wakeup-interval", required_argument, NULL, 'w' },
	{ "ring-size", required_argument, NULL, OPT_RING_SIZE },
	{ "log-level", required_argument, NULL, 'l' },
	{ "max-rate", required_argument, NULL, OPT_MAX_RATE },
	{ "max-batch", required_argument, NULL, OPT_MAX_BATCH },
	{ "batch-window", required_argument, NULL, OPT_BATCH_WINDOW },
	{ "global-rate", required_argument, NULL, OPT_GLOBAL_RATE },
	{ "stall-timeout", required_argument, NULL, OPT_STALL_TIMEOUT },
	{ "max-queued", required_argument, NULL, OPT_MAX_QUEUED },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "socket-owner", required_argument, NULL, OPT_SOCKET_OWNER },
	{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
	{ "allow-uids", required_argument, NULL, OPT_ALLOW_UIDS },
	{ "allow-groups", required_argument, NULL, OPT_ALLOW_GROUPS },
	{ "user", required_argument, NULL, OPT_USER },
	{ "max-monitors-per-subscriber", required_argument, NULL, OPT_MAX_MONITORS_SUB },
	{ "max-monitors-per-uid", required_argument, NULL, OPT_MAX_MONITORS_UID },
	{ "max-connections-per-uid", required_argument, NULL, OPT_MAX_CONNECTIONS_UID },
	{ "max-requests-per-second", required_argument, NULL, OPT_MAX_REQUESTS },
	{ "max-queued-bytes-per-subscriber", required_argument, NULL, OPT_MAX_QUEUED_BYTES },
	{ "max-queued-bytes-per-uid", required_argument, NULL, OPT_MAX_QUEUED_BYTES_UID },
	{ "config", required_argument, NULL, 'c' },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "adopt-timeout", required_argument, NULL, OPT_ADOPT_TIMEOUT },
	{ "cleanup", no_argument, NULL, OPT_CLEANUP },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ 0 }
};

/* The command line, kept for SIGHUP: the file is read again, and what the
 * command line set still wins over it. */
static struct {
	const char *config_path;
	bool config_explicit;       /* --config given: the file must exist */
	bool check_config;
	bool cleanup;               /* --cleanup: remove the pins, exit */
	struct config args;         /* its settings, as config_set() entries */
} cmdline = { .config_path = DEFAULT_CONFIG };

/* The settings in force: the file's and the command line's text, which the
 * string fields of agent.opts point into. Freed on the way out. */
static struct config settings;

static int parse_u64(const char *s, int base, unsigned long long max, unsigned long long *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!*s || *s == '-')
		return -EINVAL;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* A byte count: digits and an optional K, M or G (powers of 1024). */
static int parse_size(const char *s, unsigned long long *ret)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || v > (~0ULL >> shift))
		return -EINVAL;
	*ret = v << shift;
	return 0;
}

/* The shortest of "N", "NK", "NM", "NG" that says n exactly. */
static void format_size(unsigned long long n, char *buf, size_t len)
{
	static const char units[] = "KMG";
	int u = -1;

	while (u < 2 && n && !(n & 1023)) {
		n >>= 10;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", n);
	else
		snprintf(buf, len, "%llu%c", n, units[u]);
}

/* The delivery options and the quotas: whole numbers in a range, each a
 * uint32_t of agent_opts, all of them changed by a reload. */
static const struct {
	int opt;
	unsigned long long min, max;
	size_t offset;
} delivery_opts[] = {
	{ OPT_MAX_RATE, 0, 100000000, offsetof(struct agent_opts, max_rate) },
	{ OPT_MAX_BATCH, 1, MAX_BATCH_LIMIT, offsetof(struct agent_opts, max_batch) },
	{ OPT_BATCH_WINDOW, 0, 10000000, offsetof(struct agent_opts, batch_window_us) },
	{ OPT_GLOBAL_RATE, 0, 1000000000, offsetof(struct agent_opts, global_rate) },
	{ OPT_STALL_TIMEOUT, 0, 86400, offsetof(struct agent_opts, stall_timeout_s) },
	{ OPT_MAX_QUEUED, 0, 1000000000, offsetof(struct agent_opts, max_queued) },
	{ OPT_MAX_MONITORS_SUB, 0, 1000000000,
	  offsetof(struct agent_opts, quotas.monitors_per_subscriber) },
	{ OPT_MAX_MONITORS_UID, 0, 1000000000, offsetof(struct agent_opts, quotas.monitors_per_uid) },
	{ OPT_MAX_CONNECTIONS_UID, 0, 1000000, offsetof(struct agent_opts, quotas.connections_per_uid) },
	{ OPT_MAX_REQUESTS, 0, 1000000000, offsetof(struct agent_opts, quotas.requests_per_second) },
	{ OPT_MAX_QUEUED_BYTES, 65536, 1U << 30, offsetof(struct agent_opts, max_queued_bytes) },
	{ OPT_MAX_QUEUED_BYTES_UID, 0, 1U << 30,
	  offsetof(struct agent_opts, quotas.queued_bytes_per_uid) },
};

/* opt's row in delivery_opts, or -1 if it is not a delivery option. */
static int delivery_index(int opt)
{
	for (size_t i = 0; i < sizeof(delivery_opts) / sizeof(delivery_opts[0]); i++) {
		if (delivery_opts[i].opt == opt)
			return (int)i;
	}
	return -1;
}

static int parse_delivery_opt(int i, const char *arg, const char *name, struct agent_opts *o,
			      char *err, size_t errlen)
{
	unsigned long long v;

	if (parse_u64(arg, 10, delivery_opts[i].max, &v) < 0 || v < delivery_opts[i].min) {
		snprintf(err, errlen, "invalid %s '%s': give a whole number from %llu to %llu",
			 name, arg, delivery_opts[i].min, delivery_opts[i].max);
		return -EINVAL;
	}
	*(uint32_t *)((char *)o + delivery_opts[i].offset) = (uint32_t)v;
	return 0;
}

static void opts_defaults(struct agent_opts *o)
{
	const char *env = getenv(ZM_SOCKET_ENV);

	*o = (struct agent_opts){
		.socket_path = env && *env ? env : ZM_DEFAULT_SOCKET,
		.pin_dir = DEFAULT_PIN_DIR,
		.proc_root = "/proc",
		.socket_mode = 0600, /* opts_finish() sets the real default */
		.wakeup_interval_ns = ZM_DEFAULT_WAKEUP_INTERVAL_NS,
		.ring_bytes = ZM_RINGBUF_BYTES,
		.max_batch = DEFAULT_MAX_BATCH,
		.batch_window_us = DEFAULT_BATCH_WINDOW_US,
		.log_level = LOG_LVL_INFO,
		.adopt_timeout_s = DEFAULT_ADOPT_TIMEOUT_S,
		.quotas = {
			.monitors_per_subscriber = DEFAULT_MONITORS_PER_SUBSCRIBER,
			.monitors_per_uid = DEFAULT_MONITORS_PER_UID,
			.connections_per_uid = DEFAULT_CONNECTIONS_PER_UID,
			.requests_per_second = DEFAULT_REQUESTS_PER_SECOND,
			.queued_bytes_per_uid = DEFAULT_QUEUED_BYTES_PER_UID,
		},
		.max_queued_bytes = AGENT_DEFAULT_QUEUED_BYTES,
	};
}

/*
 * The defaults that depend on other settings, once all are read: the socket
 * belongs to the user the agent runs as (so that it can still chmod it on
 * a reload), to the zenmon group if there is one, with mode 0660 when it
 * has such a group, else 0600: root-only unless the operator says more.
 */
static void opts_finish(struct agent_opts *o)
{
	const struct group *g = NULL;

	if (!o->socket_owner_set)
		o->socket_uid = o->run_as.have_user ? o->run_as.uid : (uint32_t)geteuid();
	if (!o->socket_group_set) {
		g = getgrnam(DEFAULT_SOCKET_GROUP);
		o->socket_gid = g ? (uint32_t)g->gr_gid :
			        o->run_as.have_user ? o->run_as.gid : (uint32_t)getegid();
	}
	if (!o->socket_mode_set)
		o->socket_mode = o->socket_group_set || g ? 0660 : 0600;
}

/*
 * Set one option from its text, from the command line or the configuration
 * file alike: use arg, never optarg (a file's values are not getopt's), and
 * keep arg itself for strings (it lives as long as the settings). name is
 * the key as the user wrote it ("--max-rate" or "max-rate"), for the
 * message. 0, or -EINVAL with the problem in err.
 */
static int opt_apply(struct agent_opts *o, int code, const char *arg, const char *name,
		     char *err, size_t errlen)
{
	int delivery = delivery_index(code);
	unsigned long long v;
	enum log_level lvl;

	if (delivery >= 0)
		return parse_delivery_opt(delivery, arg, name, o, err, errlen);
	switch (code) {
	case 's':
		if (arg[0] != '/' || strlen(arg) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(err, errlen, "invalid %s '%s': give an absolute path of at most %zu bytes",
				 name, arg, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			return -EINVAL;
		}
		o->socket_path = arg;
		return 0;
	case 'p':
		if (!*arg) {
			snprintf(err, errlen, "invalid %s '': give a directory on a bpf filesystem", name);
			return -EINVAL;
		}
		o->pin_dir = arg;
		return 0;
	case 'm':
		if (parse_u64(arg, 8, 0777, &v) < 0) {
			snprintf(err, errlen, "invalid %s '%s': give octal permissions such as 0660", name, arg);
			return -EINVAL;
		}
		o->socket_mode = (unsigned int)v;
		o->socket_mode_set = true;
		return 0;
	case 'w':
		if (parse_u64(arg, 10, 1000000, &v) < 0 || v == 0) {
			snprintf(err, errlen, "invalid %s '%s': give microseconds from 1 to 1000000", name, arg);
			return -EINVAL;
		}
		o->wakeup_interval_ns = v * 1000ULL;
		return 0;
	case OPT_RING_SIZE:
		if (parse_size(arg, &v) < 0 || v < (64U << 10) || v > (1U << 30) || (v & (v - 1))) {
			snprintf(err, errlen, "invalid %s '%s': give a power of two from 64K to 1G, "
				 "such as 4M", name, arg);
			return -EINVAL;
		}
		o->ring_bytes = (uint32_t)v;
		return 0;
	case OPT_ADOPT_TIMEOUT:
		if (parse_u64(arg, 10, 86400, &v) < 0) {
			snprintf(err, errlen, "invalid %s '%s': give seconds from 0 to 86400", name, arg);
			return -EINVAL;
		}
		o->adopt_timeout_s = (uint32_t)v;
		return 0;
	case 'l':
		if (log_parse_level(arg, &lvl) < 0) {
			snprintf(err, errlen, "invalid %s '%s': use error, warn, info or debug", name, arg);
			return -EINVAL;
		}
		o->log_level = (int)lvl;
		return 0;
	case OPT_METRICS_LISTEN: {
		struct sockaddr_storage ss;
		socklen_t len;

		if (metrics_http_parse_listen(arg, &ss, &len, err, errlen) < 0)
			return -EINVAL;
		o->metrics_listen = arg;
		return 0;
	}
	case OPT_SOCKET_OWNER:
	case OPT_SOCKET_GROUP: {
		bool group = code == OPT_SOCKET_GROUP;
		char why[256];

		if (access_parse_id(arg, group, group ? &o->socket_gid : &o->socket_uid, why,
				    sizeof(why)) < 0) {
			snprintf(err, errlen, "invalid %s '%s': %s", name, arg, why);
			return -EINVAL;
		}
		*(group ? &o->socket_group_set : &o->socket_owner_set) = true;
		return 0;
	}
	case OPT_ALLOW_UIDS:
	case OPT_ALLOW_GROUPS: {
		bool group = code == OPT_ALLOW_GROUPS;
		char why[256];

		if (access_parse_ids(arg, group, group ? &o->allow_groups : &o->allow_uids, why,
				     sizeof(why)) < 0) {
			snprintf(err, errlen, "invalid %s '%s': %s", name, arg, why);
			return -EINVAL;
		}
		return 0;
	}
	case OPT_USER: {
		char why[256];

		if (access_parse_user(arg, &o->run_as.uid, &o->run_as.gid, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "invalid %s '%s': %s", name, arg, why);
			return -EINVAL;
		}
		o->run_as.have_user = true;
		o->run_as.user = arg;
		return 0;
	}
	case 'c':
		snprintf(err, errlen, "'%s' cannot be set in a configuration file: give --config on the command line",
			 name);
		return -EINVAL;
	}
	snprintf(err, errlen, "%s is not a setting", name);
	return -EINVAL;
}

/*
 * An option's value in force, as its setting would be written: false for an
 * option this does not know, whose text in the settings stands for it.
 */
static bool opt_format(const struct agent_opts *o, int code, char *buf, size_t len)
{
	int delivery = delivery_index(code);

	if (delivery >= 0) {
		snprintf(buf, len, "%u",
			 *(const uint32_t *)((const char *)o + delivery_opts[delivery].offset));
		return true;
	}
	switch (code) {
	case 's':
		snprintf(buf, len, "%s", o->socket_path);
		return true;
	case 'p':
		snprintf(buf, len, "%s", o->pin_dir);
		return true;
	case 'm':
		snprintf(buf, len, "%04o", o->socket_mode);
		return true;
	case 'w':
		snprintf(buf, len, "%llu", (unsigned long long)(o->wakeup_interval_ns / 1000ULL));
		return true;
	case OPT_ADOPT_TIMEOUT:
		snprintf(buf, len, "%u", o->adopt_timeout_s);
		return true;
	case OPT_RING_SIZE:
		format_size(o->ring_bytes, buf, len);
		return true;
	case 'l':
		snprintf(buf, len, "%s", log_level_name((enum log_level)o->log_level));
		return true;
	case OPT_METRICS_LISTEN:
		if (!o->metrics_listen)
			return false;
		snprintf(buf, len, "%s", o->metrics_listen);
		return true;
	case OPT_SOCKET_OWNER:
		snprintf(buf, len, "%u", o->socket_uid);
		return true;
	case OPT_SOCKET_GROUP:
		snprintf(buf, len, "%u", o->socket_gid);
		return true;
	case OPT_ALLOW_UIDS:
		access_format_ids(&o->allow_uids, buf, len);
		return true;
	case OPT_ALLOW_GROUPS:
		access_format_ids(&o->allow_groups, buf, len);
		return true;
	case OPT_USER:
		if (!o->run_as.have_user)
			return false;
		snprintf(buf, len, "%s", o->run_as.user);
		return true;
	}
	return false;
}

/* What a SIGHUP can change without a restart (agent_reload()): the log
 * level, the socket's mode, who is unrestricted, every quota and every
 * delivery option. (The socket's owner and group would take CAP_CHOWN, and
 * the user is who the agent already is.) */
static bool opt_runtime(int code)
{
	return code == 'l' || code == 'm' || code == OPT_ALLOW_UIDS || code == OPT_ALLOW_GROUPS ||
	       delivery_index(code) >= 0;
}

/* The keys of the settings: options with a value, but not --config. */
static bool opt_is_setting(const struct option *opt)
{
	return opt->has_arg == required_argument && opt->val != 'c';
}

/* A setting's value as text: what opt_format() says, else the settings'
 * own text, else "(default)". */
static const char *opt_text(const struct agent_opts *o, const struct config *cf, int code,
			    char *buf, size_t len)
{
	const struct config_entry *e;

	if (opt_format(o, code, buf, len))
		return buf;
	e = config_find(cf, code);
	return e ? e->value : "(default)";
}

/*
 * The settings in force: the defaults, then the configuration file (a
 * missing default file is no file), then the command line. On success
 * *ret_opts points into *ret_cf, which the caller frees after it. 0, or
 * -errno with the problem in err.
 */
static int settings_load(struct config *ret_cf, struct agent_opts *ret_opts, char *err, size_t errlen)
{
	struct config cf;
	struct agent_opts o;
	int r;

	config_init(&cf);
	r = config_read(&cf, cmdline.config_path, longopts, err, errlen);
	if (r == -ENOENT && !cmdline.config_explicit)
		r = 0;
	for (size_t i = 0; r == 0 && i < cmdline.args.n; i++) {
		const struct config_entry *e = &cmdline.args.entries[i];

		r = config_set(&cf, e->code, e->key, e->value);
		if (r < 0)
			snprintf(err, errlen, "out of memory");
	}
	opts_defaults(&o);
	for (size_t i = 0; r == 0 && i < cf.n; i++) {
		const struct config_entry *e = &cf.entries[i];
		char name[64], msg[PATH_MAX + 128];

		snprintf(name, sizeof(name), "%s%s", e->line ? "" : "--", e->key);
		r = opt_apply(&o, e->code, e->value, name, msg, sizeof(msg));
		if (r < 0 && e->line)
			snprintf(err, errlen, "%s:%u: %s", cf.path, e->line, msg);
		else if (r < 0)
			snprintf(err, errlen, "%s", msg);
	}
	if (r == 0)
		opts_finish(&o);
	if (r == 0 && o.socket_path[0] != '/') {
		snprintf(err, errlen, "$%s '%s' must be an absolute path", ZM_SOCKET_ENV, o.socket_path);
		r = -EINVAL;
	}
	if (r < 0) {
		config_free(&cf);
		return r;
	}
	*ret_cf = cf;
	*ret_opts = o;
	return 0;
}

/* Print v as a setting's value that reads back the same. */
static void print_value(FILE *f, const char *v)
{
	if (*v && !strpbrk(v, " \t#\"'\\") && v[strlen(v) - 1] != ' ') {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', f);
		fputc(*v, f);
	}
	fputc('"', f);
}

/* --check-config: the settings in force, as a configuration file. */
static void print_settings(FILE *f, const struct config *cf, const struct agent_opts *o)
{
	fprintf(f, "# zenmond %s: the effective settings: defaults", ZENMON_VERSION);
	if (cf->path)
		fprintf(f, ", then %s", cf->path);
	else
		fprintf(f, " (no %s)", cmdline.config_path);
	fprintf(f, "%s\n", cmdline.args.n ? ", then the command line" : "");
	for (const struct option *opt = longopts; opt->name; opt++) {
		char buf[PATH_MAX + 32];

		if (!opt_is_setting(opt))
			continue;
		if (!opt_format(o, opt->val, buf, sizeof(buf)) && !config_find(cf, opt->val)) {
			fprintf(f, "# %s = (default)\n", opt->name);
			continue;
		}
		fprintf(f, "%s = ", opt->name);
		print_value(f, opt_text(o, cf, opt->val, buf, sizeof(buf)));
		fputc('\n', f);
	}
}

/*
 * The command line: each setting is checked now, so that a typo is a usage
 * error (status 2) before any file is read, and kept for settings_load().
 * 0 to go on, else the exit status.
 */
static int parse_args(int argc, char **argv)
{
	struct agent_opts scratch;
	char err[PATH_MAX + 128];
	int c;

	opts_defaults(&scratch);
	while ((c = getopt_long(argc, argv, "s:p:m:w:l:c:hV", longopts, NULL)) != -1) {
		const struct option *opt = NULL;
		char name[64];

		switch (c) {
		case 'c':
			cmdline.config_path = optarg;
			cmdline.config_explicit = true;
			continue;
		case OPT_CHECK_CONFIG:
			cmdline.check_config = true;
			continue;
		case OPT_CLEANUP:
			cmdline.cleanup = true;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("zenmond %s (protocol %d)\n", ZENMON_VERSION, ZM_PROTO_VERSION);
			exit(0);
		}
		for (const struct option *o = longopts; o->name; o++) {
			if (o->val == c && o->has_arg == required_argument)
				opt = o;
		}
		if (!opt) {
			fprintf(stderr, "Try 'zenmond --help' for more information.\n");
			return 2;
		}
		snprintf(name, sizeof(name), "--%s", opt->name);
		if (opt_apply(&scratch, c, optarg, name, err, sizeof(err)) < 0) {
			fprintf(stderr, "zenmond: %s\n", err);
			return 2;
		}
		if (config_set(&cmdline.args, c, opt->name, optarg) < 0) {
			fprintf(stderr, "zenmond: out of memory\n");
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "zenmond: unexpected argument '%s'\nTry 'zenmond --help' for more information.\n",
			argv[optind]);
		return 2;
	}
	return 0;
}

static int timer_new(struct agent *a, struct loop_source *src, loop_fn fn)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	src->fd = fd;
	src->fn = fn;
	return loop_add(a->loop, src, EPOLLIN);
}

static void timer_arm(struct loop_source *src, uint64_t ns, bool periodic)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(ns / 1000000000ULL), .tv_nsec = (long)(ns % 1000000000ULL) },
	};

	if (periodic)
		its.it_interval = its.it_value;
	timerfd_settime(src->fd, 0, &its, NULL);
}

static void timer_ack(struct loop_source *src)
{
	uint64_t expirations;

	if (read(src->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("timerfd read: %s", strerror(errno));
}

/*
 * The agent half of the wakeup policy (bpf/zenmon.bpf.c): the kernel wakes
 * us for the first exit after a quiet interval and submits the rest of a
 * burst silently; after any drain that found records, drain again one
 * interval later, until a drain finds nothing.
 */
/*
 * If the kernel counted ring-buffer drops since we last looked, recover
 * those exits from the watch maps (their entries stay FIRED).
 */
static void agent_recover_drops(struct agent *a)
{
	struct zm_kstats ks;
	int n;

	if (kwatch_read_stats(a->kw, &ks) < 0 || ks.rb_dropped <= a->rb_dropped_seen)
		return;
	log_warn("the kernel dropped %llu records (ring buffer full); recovering them from the watch map",
		 (unsigned long long)(ks.rb_dropped - a->rb_dropped_seen));
	a->rb_dropped_seen = ks.rb_dropped;
	n = kwatch_scan_fired(a->kw);
	if (n < 0) {
		log_error("cannot scan the watch map: %s (retrying in %d ms)", strerror(-n),
			  CHECK_INTERVAL_MS);
		a->rescan_needed = true;
	} else {
		log_info("recovered %d deaths from the watch maps", n);
	}
}

/*
 * Records in the current burst (drains since the ring was last found
 * empty) after which an emptied ring is checked for drops at once rather
 * than at the next check timer: only a burst can overflow the ring.
 */
#define BURST_DROP_CHECK 1024

void agent_drain_ring(struct agent *a)
{
	int n = kwatch_drain(a->kw);

	/* -EAGAIN: a record is still being written and may carry no wakeup. */
	if (n < 0 && n != -EAGAIN)
		log_warn("reading the ring buffer failed: %s", strerror(-n));
	if ((n > 0 || n == -EAGAIN) && !a->redrain_armed) {
		timer_arm(&a->redrain_src, kwatch_wakeup_interval_ns(a->kw), false);
		a->redrain_armed = true;
	}
	if (n > 0)
		a->burst_records += (uint64_t)n;
	if (n >= 0 && n < KWATCH_DRAIN_MAX) {
		if (a->burst_records >= BURST_DROP_CHECK)
			agent_recover_drops(a);
		a->burst_records = 0;
	}
}

static void on_ring(struct loop_source *src, uint32_t events)
{
	agent_drain_ring((struct agent *)((char *)src - offsetof(struct agent, ring_src)));
}

static void on_redrain(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, redrain_src));

	timer_ack(src);
	a->redrain_armed = false;
	agent_drain_ring(a);
}

/* Every CHECK_INTERVAL_MS: a backstop drain, the limits, a scan that
 * failed before, and drops that no burst's end caught. */
static void on_check(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, check_src));

	timer_ack(src);
	agent_drain_ring(a);
	client_check_limits(a, agent_now_ns(CLOCK_MONOTONIC));
	if (a->rescan_needed) {
		a->rescan_needed = false;
		if (kwatch_scan_fired(a->kw) < 0)
			a->rescan_needed = true;
	}
	agent_recover_drops(a);
}

/* The global bucket's burst: one batch, or one second's worth if less. */
static uint32_t global_burst(const struct agent_opts *o)
{
	if (!o->global_rate)
		return 0;
	return o->global_rate < o->max_batch ? o->global_rate : o->max_batch;
}

/* Tell the service manager, if there is one; say once if that fails. */
static void agent_notify_ready(const struct agent *a, const char *how)
{
	int r = notify_send("READY=1\nSTATUS=%sserving %s, maps pinned in %s", how,
			    a->opts.socket_path, kwatch_pin_dir(a->kw));

	if (r < 0)
		log_warn("cannot tell the service manager that the agent is ready ($NOTIFY_SOCKET=%s): %s",
			 getenv("NOTIFY_SOCKET"), strerror(-r));
}

/*
 * SIGHUP: read the configuration file again (the command line still wins)
 * and apply what can change while running; subscribers and monitors stay.
 * Each change is logged, and so is each change that needs a restart (the
 * socket, the pin dir, the wakeup interval and the ring size, which the
 * loaded BPF program holds). A file with an error changes nothing.
 *
 * The delivery limits are the caps on what a subscriber may ask in HELLO and
 * the values it gets when it asks for none. New connections get the new
 * ones; a connected subscriber keeps what it was granted, lowered to fit a
 * lower --max-rate or --max-batch (never raised: it asked for no more).
 */
static void agent_reload(struct agent *a)
{
	struct agent_opts o;
	struct config cf;
	char err[PATH_MAX + 256];
	unsigned int applied = 0, pending = 0;
	size_t capped;

	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
		    (unsigned long long)(agent_now_ns(CLOCK_MONOTONIC) / 1000ULL), cmdline.config_path);
	if (settings_load(&cf, &o, err, sizeof(err)) < 0) {
		log_error("reload failed, the running settings stay: %s", err);
		agent_notify_ready(a, "reload failed, running with the previous settings; ");
		return;
	}
	if (o.max_batch > a->opts.max_batch) {
		struct zm_down *scratch = realloc(a->scratch, o.max_batch * sizeof(*scratch));

		if (!scratch) {
			log_error("reload: out of memory for --max-batch %u: keeping %u", o.max_batch,
				  a->opts.max_batch);
			o.max_batch = a->opts.max_batch;
		} else {
			a->scratch = scratch;
		}
	}
	for (const struct option *opt = longopts; opt->name; opt++) {
		char was[PATH_MAX + 32], now[PATH_MAX + 32];
		const char *w, *n;

		if (!opt_is_setting(opt))
			continue;
		w = opt_text(&a->opts, &settings, opt->val, was, sizeof(was));
		n = opt_text(&o, &cf, opt->val, now, sizeof(now));
		if (strcmp(w, n) == 0)
			continue;
		if (opt_runtime(opt->val)) {
			log_info("reload: %s %s -> %s", opt->name, w, n);
			applied++;
		} else {
			log_warn("reload: %s changed from %s to %s, which takes a restart of the agent; still %s",
				 opt->name, w, n, w);
			pending++;
		}
	}

	if (o.socket_mode != a->opts.socket_mode && chmod(a->opts.socket_path, o.socket_mode) < 0)
		log_warn("reload: cannot set mode %04o on %s: %s", o.socket_mode, a->opts.socket_path,
			 strerror(errno));
	a->opts.socket_mode = o.socket_mode;
	if (o.global_rate != a->opts.global_rate || o.max_batch != a->opts.max_batch)
		dispatch_set_global(&a->dispatcher, o.global_rate, global_burst(&o),
				    agent_now_ns(CLOCK_MONOTONIC));
	a->opts.max_rate = o.max_rate;
	a->opts.max_batch = o.max_batch;
	a->opts.batch_window_us = o.batch_window_us;
	a->opts.global_rate = o.global_rate;
	a->opts.stall_timeout_s = o.stall_timeout_s;
	a->opts.max_queued = o.max_queued;
	a->opts.allow_uids = o.allow_uids;
	a->opts.allow_groups = o.allow_groups;
	a->opts.quotas = o.quotas;
	a->opts.max_queued_bytes = o.max_queued_bytes;
	client_apply_access(a);
	capped = client_apply_caps(a);
	if (capped)
		log_info("reload: lowered the limits of %zu connected subscribers to the new caps", capped);
	/* Last, so that a quieter level still shows what the reload did. */
	a->opts.log_level = o.log_level;
	config_free(&cf);

	log_info("reloaded %s: %u change%s applied, %u waiting for a restart",
		 settings.path ? settings.path : cmdline.config_path, applied, applied == 1 ? "" : "s",
		 pending);
	log_set_level((enum log_level)a->opts.log_level);
	a->dispatch_due = true;
	agent_notify_ready(a, "");
}

static void on_signal(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, signal_src));
	struct signalfd_siginfo si;

	while (read(src->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("received SIGHUP, reloading the configuration");
			agent_reload(a);
			continue;
		}
		log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
		loop_stop(a->loop);
		return;
	}
}

void agent_dispatch(struct agent *a)
{
	uint64_t now = agent_now_ns(CLOCK_MONOTONIC);
	uint64_t next = dispatch_run(&a->dispatcher, now, DISPATCH_MAX_BATCHES);
	struct itimerspec its = { 0 };

	a->dispatch_due = false;
	if (next != UINT64_MAX) {
		/* A due time in the past (the pass stopped at its cap) fires at
		 * once, after the loop has looked at everything else. */
		if (next <= now)
			next = now + 1;
		its.it_value.tv_sec = (time_t)(next / 1000000000ULL);
		its.it_value.tv_nsec = (long)(next % 1000000000ULL);
	}
	timerfd_settime(a->dispatch_src.fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_dispatch_timer(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, dispatch_src));

	timer_ack(src);
	a->dispatch_due = true; /* run from before_sleep, with everything else queued */
}

static void before_sleep(void *ctx)
{
	struct agent *a = ctx;

	if (a->dispatch_due)
		agent_dispatch(a);
	client_flush_all(a);
	/* The watches released by this pass's DOWNs, in one batch. */
	kwatch_flush_deletes(a->kw);
}

/*
 * Keep only what the running agent uses (priv.c says what and why). An
 * agent that will run as another user gets its pin directory first, so that
 * it can still unpin its maps at exit. Fatal on failure: an agent that
 * meant to drop privileges must not serve with them.
 */
static int agent_drop_privileges(struct agent *a)
{
	const struct priv_opts *u = &a->opts.run_as;
	int r;

	if (u->have_user && u->uid != 0 &&
	    chown(kwatch_pin_dir(a->kw), (uid_t)u->uid, (gid_t)u->gid) < 0)
		log_warn("cannot give the pin directory %s to user %s: %s (its pins will stay behind "
			 "at exit; the next start removes them)", kwatch_pin_dir(a->kw), u->user,
			 strerror(errno));
	r = priv_drop(u);
	if (r < 0) {
		log_error("cannot start: dropping privileges failed (see above)");
		return r;
	}
	a->zombie_status_readable = priv_has_cap(CAP_SYS_PTRACE);
	return 0;
}

static int setup_signals(struct agent *a)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	a->signal_src.fd = fd;
	a->signal_src.fn = on_signal;
	return loop_add(a->loop, &a->signal_src, EPOLLIN);
}

static void close_source(struct agent *a, struct loop_source *src)
{
	if (src->fd < 0)
		return;
	loop_del(a->loop, src);
	close(src->fd);
	src->fd = -1;
}

/*
 * On the way out: hand every queued DOWN to the sockets, ignoring pacing,
 * as far as the sockets take them without blocking.
 */
static void shutdown_flush(struct agent *a)
{
	for (int pass = 0; pass < 1000; pass++) {
		uint64_t before = a->downs_sent;

		/* A clock an hour further on each pass: every bucket full, every
		 * window elapsed. */
		dispatch_run(&a->dispatcher,
			     agent_now_ns(CLOCK_MONOTONIC) + (uint64_t)(pass + 1) * 3600000000000ULL,
			     DISPATCH_MAX_BATCHES);
		client_flush_all(a);
		if (a->downs_sent == before)
			break;
	}
}

int main(int argc, char **argv)
{
	static const struct registry_ops reg_ops = {
		.unwatch = monitor_unwatch,
		.queued = client_on_queued,
		.released = monitor_released,
	};
	struct agent a = {
		.listen_src.fd = -1, .spare_fd = -1, .redrain_src.fd = -1,
		.check_src.fd = -1, .signal_src.fd = -1, .ring_src.fd = -1,
		.dispatch_src.fd = -1,
	};
	struct kwatch_opts kopts;
	bool served = false;
	char err[PATH_MAX + 256];
	int r, status = 1;

	r = parse_args(argc, argv);
	if (r)
		return r;
	r = settings_load(&settings, &a.opts, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "zenmond: %s\n", err);
		config_free(&cmdline.args);
		return 1;
	}
	if (cmdline.check_config) {
		print_settings(stdout, &settings, &a.opts);
		config_free(&settings);
		config_free(&cmdline.args);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	log_set_level((enum log_level)a.opts.log_level);
	if (cmdline.cleanup) {
		r = kwatch_cleanup(a.opts.pin_dir);
		config_free(&settings);
		config_free(&cmdline.args);
		return r < 0 ? 1 : 0;
	}
	if (settings.path)
		log_info("settings from %s%s", settings.path,
			 cmdline.args.n ? ", overridden by the command line" : "");
	a.started_mono_ns = agent_now_ns(CLOCK_MONOTONIC);
	metrics_init(&a.metrics);

	a.loop = loop_new();
	a.reg = registry_new(&reg_ops, &a);
	a.scratch = calloc(a.opts.max_batch, sizeof(*a.scratch));
	if (!a.loop || !a.reg || !a.scratch) {
		log_error("cannot start: %s", strerror(errno ? errno : ENOMEM));
		goto out;
	}
	r = setup_signals(&a);
	if (r < 0) {
		log_error("cannot set up signal handling: %s", strerror(-r));
		goto out;
	}

	kopts = (struct kwatch_opts){ .pin_dir = a.opts.pin_dir,
				      .wakeup_interval_ns = a.opts.wakeup_interval_ns,
				      .ring_bytes = a.opts.ring_bytes };
	r = kwatch_open(&kopts, monitor_on_kernel_event, &a, &a.kw);
	if (r < 0)
		goto out; /* kwatch said what went wrong and what to do */
	kwatch_set_tcp_handler(a.kw, monitor_on_tcp_event, &a);
	{
		struct zm_kstats ks;

		/* Inherited counters: drops the previous agent already saw are
		 * not ours to recover (the adoption scan covers the map). */
		if (kwatch_read_stats(a.kw, &ks) == 0)
			a.rb_dropped_seen = ks.rb_dropped;
	}
	/* Before the socket listens: clients that come back find their watches. */
	r = adopt_load(&a);
	if (r < 0)
		goto out;
	a.ring_src.fd = kwatch_fd(a.kw);
	a.ring_src.fn = on_ring;
	r = loop_add(a.loop, &a.ring_src, EPOLLIN);
	if (r < 0) {
		log_error("cannot watch the ring buffer: %s", strerror(-r));
		a.ring_src.fd = -1;
		goto out;
	}
	dispatch_init(&a.dispatcher, &client_dispatch_ops, a.opts.global_rate, global_burst(&a.opts),
		      a.started_mono_ns);
	r = timer_new(&a, &a.redrain_src, on_redrain);
	if (r >= 0)
		r = timer_new(&a, &a.check_src, on_check);
	if (r >= 0)
		r = timer_new(&a, &a.dispatch_src, on_dispatch_timer);
	if (r < 0) {
		log_error("cannot create timers: %s", strerror(-r));
		goto out;
	}
	timer_arm(&a.check_src, CHECK_INTERVAL_MS * 1000000ULL, true);

	/* Before the socket: an agent that cannot serve its metrics fails
	 * before any client could connect to it. */
	if (a.opts.metrics_listen && (r = metrics_http_start(&a)) < 0)
		goto out; /* it said what went wrong */
	loop_set_after_pass(a.loop, metrics_on_loop_pass, &a.metrics);
	r = server_listen(&a);
	if (r < 0)
		goto out;
	/* Last of the set-up: everything that needs root is done. */
	r = agent_drop_privileges(&a);
	if (r < 0)
		goto out;

	log_info("zenmond %s ready: socket %s, maps pinned in %s", ZENMON_VERSION,
		 a.opts.socket_path, kwatch_pin_dir(a.kw));
	/* Only now: the programs are attached and the socket takes clients. */
	agent_notify_ready(&a, "");
	loop_set_before_sleep(a.loop, before_sleep, &a);
	served = true;
	r = loop_run(a.loop);
	notify_send("STOPPING=1\nSTATUS=stopping: delivering the last DOWNs");
	if (r < 0) {
		log_error("event loop failed: %s", strerror(-r));
		goto out;
	}
	status = 0;

out:
	/* Stop taking clients, deliver what the kernel already reported, then
	 * let everything go. */
	server_close(&a);
	metrics_http_stop(&a);
	if (a.kw) {
		/* The last DOWNs go out without pacing: the agent is leaving. */
		kwatch_drain(a.kw);
		shutdown_flush(&a);
	}
	/* From here on the kernel watches stay, whatever the registry lets go
	 * of: the next agent adopts them, and a death whose DOWN could not be
	 * sent stays FIRED for the monitor its client brings back. */
	a.stopping = true;
	client_close_all(&a);
	adopt_free(&a);
	monitor_free_pending(&a);
	free(a.pid_hints);
	if (a.loop) {
		close_source(&a, &a.redrain_src);
		close_source(&a, &a.dispatch_src);
		close_source(&a, &a.check_src);
		close_source(&a, &a.signal_src);
		if (a.ring_src.fd >= 0)
			loop_del(a.loop, &a.ring_src); /* kwatch owns that fd */
	}
	/* An agent that never served leaves no programs behind it, unless they
	 * are a previous agent's, whose watches the next one will want. */
	if (!served)
		kwatch_discard(a.kw);
	kwatch_close(a.kw);
	registry_free(a.reg);
	access_table_free(&a.access);
	loop_free(a.loop);
	free(a.scratch);
	config_free(&settings);
	config_free(&cmdline.args);
	if (status == 0)
		log_info("stopped");
	return status;
}
