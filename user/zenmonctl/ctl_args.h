/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * zenmonctl's command line: which command, its options, its targets. Pure:
 * no I/O, so the unit tests can pin every message. (Every zenmonctl symbol
 * starts with ctl_: these objects are linked into all unit tests.)
 */
#ifndef ZENMONCTL_ARGS_H
#define ZENMONCTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zenmon.h"

#define CTL_PID_MAX 4194304            /* the kernel's PID_MAX_LIMIT */
#define CTL_TIMEOUT_MAX_MS 2147483647  /* poll()'s limit: about 24.8 days */
#define CTL_LIMIT_MAX 10000000         /* --rate, --batch: at most this */

enum ctl_command {
	CTL_CMD_HELP,
	CTL_CMD_VERSION,
	CTL_CMD_MONITOR,
	CTL_CMD_STATUS,
	CTL_CMD_MONITOR_TCP,
	CTL_CMD_STATS,
	CTL_CMD_TARGETS,
};

enum ctl_target_kind {
	CTL_TARGET_PID = 0,            /* monitor PID[:STARTTICKS] */
	CTL_TARGET_TCP_FD,             /* monitor-tcp --fd-of PID:FD */
	CTL_TARGET_TCP_COOKIE,         /* monitor-tcp --cookie N */
	CTL_TARGET_TCP_TUPLE,          /* monitor-tcp LOCAL:PORT REMOTE:PORT */
};

struct ctl_target {
	enum ctl_target_kind kind;
	pid_t pid;                     /* PID, TCP_FD: the process */
	bool has_start;
	uint64_t start_ticks;
	int fd;                        /* TCP_FD: the fd number in that process */
	uint64_t cookie;               /* TCP_COOKIE */
	struct zm_tcp_endpoints tuple; /* TCP_TUPLE */
	const char *arg;               /* as the user typed it (points into argv); for
					  TCP_TUPLE the local end */
	const char *arg2;              /* TCP_TUPLE: the remote end as typed; else NULL */
};

struct ctl_args {
	enum ctl_command command;
	enum ctl_command help_topic;   /* CTL_CMD_HELP: whose help (CTL_CMD_HELP: the general one) */
	const char *socket_path;       /* NULL: $ZENMON_SOCKET, else the default */
	bool json;
	int timeout_ms;                /* -1: none */
	const char *timeout_arg;       /* as typed, for messages */
	uint32_t rate;                 /* monitor(-tcp) --rate: DOWNs/s asked in HELLO, 0: agent default */
	uint32_t batch;                /* monitor(-tcp) --batch: DOWNs per frame, 0: agent default */
	uint32_t limit;                /* targets --limit: at most this many targets, 0: all */
	struct ctl_target *targets;
	size_t n_targets;
};

/*
 * Parse argv. 0 and *ret filled (free with ctl_args_free()); -EINVAL with a
 * one-line message in err (no "zenmonctl: " prefix, no newline); -ENOMEM.
 */
int ctl_args_parse(int argc, char *const *argv, struct ctl_args *ret, char *err, size_t errlen);
void ctl_args_free(struct ctl_args *a);

/*
 * "PID" or "PID:STARTTICKS": digits only, 1 <= PID <= 4194304, STARTTICKS a
 * u64. 0; -EINVAL (not that form) or -ERANGE (out of range), with a message.
 */
int ctl_args_parse_target(const char *s, struct ctl_target *ret, char *err, size_t errlen);

/*
 * "PID:FD" (monitor-tcp --fd-of): digits only, 1 <= PID <= 4194304,
 * 0 <= FD <= INT_MAX. Fills kind, pid, fd and arg. 0; -EINVAL or -ERANGE
 * with a message.
 */
int ctl_args_parse_fd_of(const char *s, struct ctl_target *ret, char *err, size_t errlen);

/*
 * A socket cookie (monitor-tcp --cookie): decimal, or hexadecimal after "0x"
 * or "sk:" (as `ss -e` shows it), 1 .. 2^64-1. 0 or -EINVAL with a message.
 */
int ctl_args_parse_cookie(const char *s, uint64_t *ret, char *err, size_t errlen);

/*
 * One end of a connection: "ADDR:PORT" for IPv4, "[ADDR]:PORT" for IPv6,
 * numeric only, PORT 1..65535. *ret_family is AF_INET or AF_INET6. 0 or
 * -EINVAL with a message; nothing is written on failure.
 */
int ctl_args_parse_endpoint(const char *s, int *ret_family, union zm_inet_addr *ret_addr,
			    uint16_t *ret_port, char *err, size_t errlen);

/*
 * The target as a person would name it in a message: "1234", "1234:99",
 * "--fd-of 1234:5", "--cookie 77", "127.0.0.1:5000 127.0.0.1:41234".
 */
void ctl_args_target_label(const struct ctl_target *t, char *buf, size_t len);

/* "5", "0.5", "2.250": seconds, > 0, at most millisecond precision. 0 or -EINVAL. */
int ctl_args_parse_timeout(const char *s, int *ret_ms);

/* "1000": a whole number from 1 to CTL_LIMIT_MAX, digits only. 0 or -EINVAL. */
int ctl_args_parse_limit(const char *s, uint32_t *ret);

/* The command's name ("monitor", "monitor-tcp"), for messages. */
const char *ctl_args_command_name(enum ctl_command cmd);

#endif
