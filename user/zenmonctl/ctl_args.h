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

#define CTL_PID_MAX 4194304            /* the kernel's PID_MAX_LIMIT */
#define CTL_TIMEOUT_MAX_MS 2147483647  /* poll()'s limit: about 24.8 days */

enum ctl_command {
	CTL_CMD_HELP,
	CTL_CMD_VERSION,
	CTL_CMD_MONITOR,
	CTL_CMD_STATUS,
};

struct ctl_target {
	pid_t pid;
	bool has_start;
	uint64_t start_ticks;
	const char *arg;               /* as the user typed it (points into argv) */
};

struct ctl_args {
	enum ctl_command command;
	enum ctl_command help_topic;   /* CTL_CMD_HELP: whose help (CTL_CMD_HELP: the general one) */
	const char *socket_path;       /* NULL: $ZENMON_SOCKET, else the default */
	bool json;
	int timeout_ms;                /* -1: none */
	const char *timeout_arg;       /* as typed, for messages */
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

/* "5", "0.5", "2.250": seconds, > 0, at most millisecond precision. 0 or -EINVAL. */
int ctl_args_parse_timeout(const char *s, int *ret_ms);

/* The command's name ("monitor"), for messages. */
const char *ctl_args_command_name(enum ctl_command cmd);

#endif
