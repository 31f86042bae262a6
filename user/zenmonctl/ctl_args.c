// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmonctl's command line. Hand-rolled rather than getopt_long(): the
 * grammar is small (global options, a command, its options and operands),
 * and a parser with no global state can be tested call by call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctl_args.h"
#include "ctl_format.h"

/* For "unknown command" messages. */
#define ARGS_COMMANDS "monitor, monitor-tcp, status, stats, targets, help, version"

static void args_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void args_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int ctl_args_parse_target(const char *s, struct ctl_target *ret, char *err, size_t errlen)
{
	const char *colon = strchr(s, ':');
	size_t pid_len = colon ? (size_t)(colon - s) : strlen(s);
	uint64_t pid = 0, start = 0;
	int r;

	r = ctl_parse_u64(s, pid_len, &pid);
	if (r == -EINVAL) {
		args_err(err, errlen, "invalid PID '%s': expected a process id (1..%d), optionally "
			 "followed by :STARTTICKS", s, CTL_PID_MAX);
		return -EINVAL;
	}
	if (r == -ERANGE || pid == 0 || pid > CTL_PID_MAX) {
		args_err(err, errlen, "invalid PID '%s': process ids run from 1 to %d", s, CTL_PID_MAX);
		return -ERANGE;
	}
	if (colon) {
		r = ctl_parse_u64(colon + 1, strlen(colon + 1), &start);
		if (r == -EINVAL) {
			args_err(err, errlen, "invalid PID '%s': STARTTICKS must be a decimal number "
				 "(field 22 of /proc/%llu/stat)", s, (unsigned long long)pid);
			return -EINVAL;
		}
		if (r == -ERANGE) {
			args_err(err, errlen, "invalid PID '%s': STARTTICKS is out of range", s);
			return -ERANGE;
		}
	}
	*ret = (struct ctl_target){
		.kind = CTL_TARGET_PID,
		.pid = (pid_t)pid,
		.has_start = colon != NULL,
		.start_ticks = start,
		.arg = s,
	};
	return 0;
}

int ctl_args_parse_fd_of(const char *s, struct ctl_target *ret, char *err, size_t errlen)
{
	const char *colon = strchr(s, ':');
	uint64_t pid = 0, fd = 0;
	int rp, rf;

	rp = colon ? ctl_parse_u64(s, (size_t)(colon - s), &pid) : -EINVAL;
	rf = colon ? ctl_parse_u64(colon + 1, strlen(colon + 1), &fd) : -EINVAL;
	if (rp == -EINVAL || rf == -EINVAL) {
		args_err(err, errlen, "invalid --fd-of '%s': expected PID:FD, a process id and one "
			 "of its file descriptors, such as 1234:5", s);
		return -EINVAL;
	}
	if (rp == -ERANGE || pid == 0 || pid > CTL_PID_MAX) {
		args_err(err, errlen, "invalid --fd-of '%s': process ids run from 1 to %d", s, CTL_PID_MAX);
		return -ERANGE;
	}
	if (rf == -ERANGE || fd > INT_MAX) {
		args_err(err, errlen, "invalid --fd-of '%s': FD is out of range", s);
		return -ERANGE;
	}
	*ret = (struct ctl_target){ .kind = CTL_TARGET_TCP_FD, .pid = (pid_t)pid, .fd = (int)fd, .arg = s };
	return 0;
}

/* Hex digits only, no prefix, no sign; 0 or -EINVAL / -ERANGE. */
static int args_parse_hex_u64(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned int)(s[i] - '0');
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = (unsigned int)(s[i] - 'a' + 10);
		else if (s[i] >= 'A' && s[i] <= 'F')
			d = (unsigned int)(s[i] - 'A' + 10);
		else
			return -EINVAL;
		if (v >> 60)
			return -ERANGE;
		v = v << 4 | d;
	}
	*ret = v;
	return 0;
}

int ctl_args_parse_cookie(const char *s, uint64_t *ret, char *err, size_t errlen)
{
	uint64_t v = 0;
	int r;

	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
		r = args_parse_hex_u64(s + 2, strlen(s + 2), &v);
	else if (strncmp(s, "sk:", 3) == 0)
		r = args_parse_hex_u64(s + 3, strlen(s + 3), &v);
	else
		r = ctl_parse_u64(s, strlen(s), &v);
	if (r == -EINVAL) {
		args_err(err, errlen, "invalid cookie '%s': expected a socket cookie, in decimal, "
			 "or in hex after 0x or sk: (as `ss -e` shows it)", s);
		return -EINVAL;
	}
	if (r == -ERANGE || v == 0) {
		args_err(err, errlen, "invalid cookie '%s': socket cookies run from 1 to 2^64-1", s);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int ctl_args_parse_endpoint(const char *s, int *ret_family, union zm_inet_addr *ret_addr,
			    uint16_t *ret_port, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN];
	union zm_inet_addr addr;
	const char *host_s, *port_s;
	size_t host_len;
	uint64_t port;
	int family;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			args_err(err, errlen, "invalid address '%s': expected [IPV6]:PORT, such as [::1]:5000", s);
			return -EINVAL;
		}
		family = AF_INET6;
		host_s = s + 1;
		host_len = (size_t)(close - host_s);
		port_s = close + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon && memchr(s, ':', (size_t)(colon - s))) {
			args_err(err, errlen, "invalid address '%s': put an IPv6 address in brackets, "
				 "such as [::1]:5000", s);
			return -EINVAL;
		}
		if (!colon) {
			args_err(err, errlen, "invalid address '%s': expected ADDRESS:PORT, such as "
				 "127.0.0.1:5000 or [::1]:5000", s);
			return -EINVAL;
		}
		family = AF_INET;
		host_s = s;
		host_len = (size_t)(colon - s);
		port_s = colon + 1;
	}
	if (host_len == 0 || host_len >= sizeof(host)) {
		args_err(err, errlen, "invalid address '%s': expected ADDRESS:PORT, such as "
			 "127.0.0.1:5000 or [::1]:5000", s);
		return -EINVAL;
	}
	memcpy(host, host_s, host_len);
	host[host_len] = '\0';
	memset(&addr, 0, sizeof(addr));
	if (inet_pton(family, host, &addr) != 1) {
		args_err(err, errlen, "invalid address '%s': '%s' is not a numeric %s address", s, host,
			 family == AF_INET ? "IPv4" : "IPv6");
		return -EINVAL;
	}
	if (ctl_parse_u64(port_s, strlen(port_s), &port) < 0 || port == 0 || port > 65535) {
		args_err(err, errlen, "invalid address '%s': the port must be a number from 1 to 65535", s);
		return -EINVAL;
	}
	*ret_family = family;
	*ret_addr = addr;
	*ret_port = (uint16_t)port;
	return 0;
}

void ctl_args_target_label(const struct ctl_target *t, char *buf, size_t len)
{
	switch (t->kind) {
	case CTL_TARGET_PID:
		snprintf(buf, len, "%s", t->arg);
		break;
	case CTL_TARGET_TCP_FD:
		snprintf(buf, len, "--fd-of %s", t->arg);
		break;
	case CTL_TARGET_TCP_COOKIE:
		snprintf(buf, len, "--cookie %s", t->arg);
		break;
	case CTL_TARGET_TCP_TUPLE:
		snprintf(buf, len, "%s %s", t->arg, t->arg2 ? t->arg2 : "");
		break;
	}
}

int ctl_args_parse_timeout(const char *s, int *ret_ms)
{
	const char *dot = strchr(s, '.');
	size_t int_len = dot ? (size_t)(dot - s) : strlen(s);
	uint64_t secs = 0, ms = 0;
	int r;

	/* "5", "5.", ".5" and "5.25" are fine; "", "." and "-1" are not. */
	if (int_len == 0 && (!dot || dot[1] == '\0'))
		return -EINVAL;
	if (int_len > 0) {
		r = ctl_parse_u64(s, int_len, &secs);
		if (r < 0)
			return -EINVAL;
	}
	if (dot) {
		const char *frac = dot + 1;
		size_t n = strlen(frac);
		uint64_t scale = 100;

		for (size_t i = 0; i < n; i++) {
			if (frac[i] < '0' || frac[i] > '9')
				return -EINVAL;
			/* Beyond milliseconds, digits are checked and ignored. */
			if (i < 3) {
				ms += (uint64_t)(frac[i] - '0') * scale;
				scale /= 10;
			}
		}
	}
	if (secs > CTL_TIMEOUT_MAX_MS / 1000)
		return -EINVAL;
	ms += secs * 1000;
	if (ms == 0 || ms > CTL_TIMEOUT_MAX_MS)
		return -EINVAL;
	*ret_ms = (int)ms;
	return 0;
}

int ctl_args_parse_limit(const char *s, uint32_t *ret)
{
	uint64_t v;

	if (ctl_parse_u64(s, strlen(s), &v) < 0 || v == 0 || v > CTL_LIMIT_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

const char *ctl_args_command_name(enum ctl_command cmd)
{
	switch (cmd) {
	case CTL_CMD_HELP: return "help";
	case CTL_CMD_VERSION: return "version";
	case CTL_CMD_MONITOR: return "monitor";
	case CTL_CMD_STATUS: return "status";
	case CTL_CMD_MONITOR_TCP: return "monitor-tcp";
	case CTL_CMD_STATS: return "stats";
	case CTL_CMD_TARGETS: return "targets";
	}
	return "?";
}

static int args_command(const char *s, enum ctl_command *ret)
{
	static const enum ctl_command all[] = { CTL_CMD_HELP, CTL_CMD_VERSION, CTL_CMD_MONITOR,
						CTL_CMD_MONITOR_TCP, CTL_CMD_STATUS, CTL_CMD_STATS,
						CTL_CMD_TARGETS };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(s, ctl_args_command_name(all[i])) == 0) {
			*ret = all[i];
			return 0;
		}
	return -EINVAL;
}

/* Is arg the option with this short or long name? Takes its value, from
 * "--long=VALUE" or the next argument, when value is non-NULL. 1 yes, 0 no,
 * -EINVAL (a value is missing, or given to a flag). */
static int args_option(int argc, char *const *argv, int *i, char short_name, const char *long_name,
		       const char **value, char *err, size_t errlen)
{
	const char *arg = argv[*i];
	size_t n = strlen(long_name);

	if (arg[0] == '-' && arg[1] == short_name && arg[2] == '\0') {
		if (!value)
			return 1;
	} else if (arg[0] == '-' && arg[1] == '-' && strncmp(arg + 2, long_name, n) == 0 &&
		   (arg[2 + n] == '\0' || arg[2 + n] == '=')) {
		if (arg[2 + n] == '=') {
			if (!value) {
				args_err(err, errlen, "option '--%s' takes no value", long_name);
				return -EINVAL;
			}
			*value = arg + 3 + n;
			return 1;
		}
		if (!value)
			return 1;
	} else {
		return 0;
	}
	if (*i + 1 >= argc) {
		args_err(err, errlen, "option '%s' needs a value", arg);
		return -EINVAL;
	}
	*value = argv[++*i];
	return 1;
}

static int args_push_target(struct ctl_args *a, const struct ctl_target *t)
{
	struct ctl_target *targets;

	targets = realloc(a->targets, (a->n_targets + 1) * sizeof(*targets));
	if (!targets)
		return -ENOMEM;
	a->targets = targets;
	a->targets[a->n_targets++] = *t;
	return 0;
}

static int args_add_target(struct ctl_args *a, const char *s, char *err, size_t errlen)
{
	struct ctl_target t;

	if (ctl_args_parse_target(s, &t, err, errlen) < 0)
		return -EINVAL;
	return args_push_target(a, &t);
}

/*
 * An operand of monitor-tcp: the local end of a connection (kept in
 * *pending until its remote end comes), or the remote end that completes it.
 */
static int args_add_tcp_end(struct ctl_args *a, const char **pending, const char *s, char *err,
			    size_t errlen)
{
	struct ctl_target t = { .kind = CTL_TARGET_TCP_TUPLE };
	union zm_inet_addr addr;
	uint16_t port;
	int family;

	if (ctl_args_parse_endpoint(s, &family, &addr, &port, err, errlen) < 0)
		return -EINVAL;
	if (!*pending) {
		*pending = s;
		return 0;
	}
	/* The local end parsed before: it cannot fail now. */
	(void)ctl_args_parse_endpoint(*pending, &t.tuple.family, &t.tuple.local, &t.tuple.local_port,
				      NULL, 0);
	if (family != t.tuple.family) {
		args_err(err, errlen, "monitor-tcp: '%s' and '%s' are not of one address family "
			 "(an IPv4 peer of an IPv6 socket is [::ffff:A.B.C.D]:PORT)", *pending, s);
		return -EINVAL;
	}
	t.tuple.remote = addr;
	t.tuple.remote_port = port;
	t.arg = *pending;
	t.arg2 = s;
	*pending = NULL;
	return args_push_target(a, &t);
}

/* A connection named by --fd-of or --cookie may not split a LOCAL REMOTE pair. */
static int args_no_pending_end(const char *pending, char *err, size_t errlen)
{
	if (!pending)
		return 0;
	args_err(err, errlen, "monitor-tcp: '%s' needs the remote end after it: LOCAL:PORT REMOTE:PORT",
		 pending);
	return -EINVAL;
}

static bool args_is_monitor(enum ctl_command cmd)
{
	return cmd == CTL_CMD_MONITOR || cmd == CTL_CMD_MONITOR_TCP;
}

/* The commands that print JSON with --json. */
static bool args_has_json(enum ctl_command cmd)
{
	return args_is_monitor(cmd) || cmd == CTL_CMD_STATUS || cmd == CTL_CMD_STATS ||
	       cmd == CTL_CMD_TARGETS;
}

int ctl_args_parse(int argc, char *const *argv, struct ctl_args *ret, char *err, size_t errlen)
{
	struct ctl_args a = { .command = CTL_CMD_HELP, .help_topic = CTL_CMD_HELP, .timeout_ms = -1 };
	bool have_command = false, options_done = false, want_help = false, want_version = false;
	const char *pending_end = NULL;   /* monitor-tcp: a LOCAL waiting for its REMOTE */
	int r = -EINVAL;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;

		if (!options_done && arg[0] == '-' && arg[1] != '\0') {
			bool digit = arg[1] >= '0' && arg[1] <= '9';

			if (strcmp(arg, "--") == 0) {
				options_done = true;
				continue;
			}
			if ((r = args_option(argc, argv, &i, 'h', "help", NULL, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				want_help = true;
				continue;
			}
			if ((r = args_option(argc, argv, &i, 's', "socket", &value, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				if (!*value) {
					args_err(err, errlen, "option '--socket' needs a path");
					r = -EINVAL;
					goto fail;
				}
				a.socket_path = value;
				continue;
			}
			if (!have_command &&
			    (r = args_option(argc, argv, &i, 'V', "version", NULL, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				want_version = true;
				continue;
			}
			if (have_command && args_has_json(a.command) &&
			    (r = args_option(argc, argv, &i, 'j', "json", NULL, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				a.json = true;
				continue;
			}
			if (have_command && args_is_monitor(a.command) &&
			    (r = args_option(argc, argv, &i, 't', "timeout", &value, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				if (ctl_args_parse_timeout(value, &a.timeout_ms) < 0) {
					args_err(err, errlen, "invalid timeout '%s': expected a positive number "
						 "of seconds, such as 5 or 0.5", value);
					r = -EINVAL;
					goto fail;
				}
				a.timeout_arg = value;
				continue;
			}
			if (have_command && args_is_monitor(a.command) &&
			    (r = args_option(argc, argv, &i, 'r', "rate", &value, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				if (ctl_args_parse_limit(value, &a.rate) < 0) {
					args_err(err, errlen, "invalid rate '%s': expected DOWNs per second, "
						 "a whole number from 1 to %d", value, CTL_LIMIT_MAX);
					r = -EINVAL;
					goto fail;
				}
				continue;
			}
			if (have_command && args_is_monitor(a.command) &&
			    (r = args_option(argc, argv, &i, 'b', "batch", &value, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				if (ctl_args_parse_limit(value, &a.batch) < 0) {
					args_err(err, errlen, "invalid batch '%s': expected DOWNs per frame, "
						 "a whole number from 1 to %d", value, CTL_LIMIT_MAX);
					r = -EINVAL;
					goto fail;
				}
				continue;
			}
			if (have_command && a.command == CTL_CMD_TARGETS &&
			    (r = args_option(argc, argv, &i, 'n', "limit", &value, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				if (ctl_args_parse_limit(value, &a.limit) < 0) {
					args_err(err, errlen, "invalid limit '%s': expected how many targets to "
						 "list, a whole number from 1 to %d", value, CTL_LIMIT_MAX);
					r = -EINVAL;
					goto fail;
				}
				continue;
			}
			if (have_command && a.command == CTL_CMD_MONITOR_TCP &&
			    (r = args_option(argc, argv, &i, 0, "fd-of", &value, err, errlen)) != 0) {
				struct ctl_target t;

				if (r < 0)
					goto fail;
				r = args_no_pending_end(pending_end, err, errlen);
				if (r < 0)
					goto fail;
				if (ctl_args_parse_fd_of(value, &t, err, errlen) < 0) {
					r = -EINVAL;
					goto fail;
				}
				r = args_push_target(&a, &t);
				if (r < 0)
					goto fail;
				continue;
			}
			if (have_command && a.command == CTL_CMD_MONITOR_TCP &&
			    (r = args_option(argc, argv, &i, 0, "cookie", &value, err, errlen)) != 0) {
				struct ctl_target t = { .kind = CTL_TARGET_TCP_COOKIE };

				if (r < 0)
					goto fail;
				r = args_no_pending_end(pending_end, err, errlen);
				if (r < 0)
					goto fail;
				r = ctl_args_parse_cookie(value, &t.cookie, err, errlen);
				if (r < 0)
					goto fail;
				t.arg = value;
				r = args_push_target(&a, &t);
				if (r < 0)
					goto fail;
				continue;
			}
			/* "-5" reads as a PID gone wrong, not as an option. */
			if (!(digit && have_command && a.command == CTL_CMD_MONITOR)) {
				if (have_command)
					args_err(err, errlen, "%s: unknown option '%s'",
						 ctl_args_command_name(a.command), arg);
				else
					args_err(err, errlen, "unknown option '%s'", arg);
				r = -EINVAL;
				goto fail;
			}
		}

		if (!have_command) {
			if (args_command(arg, &a.command) < 0) {
				args_err(err, errlen, "unknown command '%s' (commands: %s)", arg, ARGS_COMMANDS);
				r = -EINVAL;
				goto fail;
			}
			have_command = true;
			continue;
		}

		switch (a.command) {
		case CTL_CMD_MONITOR:
			r = args_add_target(&a, arg, err, errlen);
			if (r < 0)
				goto fail;
			break;
		case CTL_CMD_MONITOR_TCP:
			r = args_add_tcp_end(&a, &pending_end, arg, err, errlen);
			if (r < 0)
				goto fail;
			break;
		case CTL_CMD_HELP:
			if (a.help_topic != CTL_CMD_HELP || args_command(arg, &a.help_topic) < 0) {
				args_err(err, errlen, "help: unknown command '%s' (commands: %s)", arg, ARGS_COMMANDS);
				r = -EINVAL;
				goto fail;
			}
			break;
		default:
			args_err(err, errlen, "%s: unexpected argument '%s'", ctl_args_command_name(a.command), arg);
			r = -EINVAL;
			goto fail;
		}
	}

	if (want_help) {
		/* "zenmonctl monitor --help": that command's page, whatever else was given. */
		a.help_topic = have_command ? a.command : CTL_CMD_HELP;
		a.command = CTL_CMD_HELP;
		free(a.targets);
		a.targets = NULL;
		a.n_targets = 0;
	} else if (want_version) {
		if (have_command) {
			args_err(err, errlen, "option '--version' takes no command");
			r = -EINVAL;
			goto fail;
		}
		a.command = CTL_CMD_VERSION;
	} else if (!have_command) {
		args_err(err, errlen, "no command given");
		r = -EINVAL;
		goto fail;
	} else if (a.command == CTL_CMD_MONITOR && a.n_targets == 0) {
		args_err(err, errlen, "monitor: no PID given");
		r = -EINVAL;
		goto fail;
	} else if (a.command == CTL_CMD_MONITOR_TCP) {
		r = args_no_pending_end(pending_end, err, errlen);
		if (r < 0)
			goto fail;
		if (a.n_targets == 0) {
			args_err(err, errlen, "monitor-tcp: no connection given (--fd-of PID:FD, "
				 "--cookie N, or LOCAL:PORT REMOTE:PORT)");
			r = -EINVAL;
			goto fail;
		}
	}
	*ret = a;
	return 0;
fail:
	free(a.targets);
	return r;
}

void ctl_args_free(struct ctl_args *a)
{
	if (!a)
		return;
	free(a->targets);
	a->targets = NULL;
	a->n_targets = 0;
}
