// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmonctl's command line. Hand-rolled rather than getopt_long(): the
 * grammar is small (global options, a command, its options and operands),
 * and a parser with no global state can be tested call by call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_args.h"

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

/* Decimal digits only, no sign, no space; 0 or -EINVAL / -ERANGE. */
static int args_parse_u64(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned int d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned int)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int ctl_args_parse_target(const char *s, struct ctl_target *ret, char *err, size_t errlen)
{
	const char *colon = strchr(s, ':');
	size_t pid_len = colon ? (size_t)(colon - s) : strlen(s);
	uint64_t pid = 0, start = 0;
	int r;

	r = args_parse_u64(s, pid_len, &pid);
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
		r = args_parse_u64(colon + 1, strlen(colon + 1), &start);
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
	ret->pid = (pid_t)pid;
	ret->has_start = colon != NULL;
	ret->start_ticks = start;
	ret->arg = s;
	return 0;
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
		r = args_parse_u64(s, int_len, &secs);
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

const char *ctl_args_command_name(enum ctl_command cmd)
{
	switch (cmd) {
	case CTL_CMD_HELP: return "help";
	case CTL_CMD_VERSION: return "version";
	case CTL_CMD_MONITOR: return "monitor";
	case CTL_CMD_STATUS: return "status";
	}
	return "?";
}

static int args_command(const char *s, enum ctl_command *ret)
{
	static const enum ctl_command all[] = { CTL_CMD_HELP, CTL_CMD_VERSION, CTL_CMD_MONITOR, CTL_CMD_STATUS };

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

static int args_add_target(struct ctl_args *a, const char *s, char *err, size_t errlen)
{
	struct ctl_target t, *targets;
	int r;

	r = ctl_args_parse_target(s, &t, err, errlen);
	if (r < 0)
		return -EINVAL;
	targets = realloc(a->targets, (a->n_targets + 1) * sizeof(*targets));
	if (!targets)
		return -ENOMEM;
	a->targets = targets;
	a->targets[a->n_targets++] = t;
	return 0;
}

int ctl_args_parse(int argc, char *const *argv, struct ctl_args *ret, char *err, size_t errlen)
{
	struct ctl_args a = { .command = CTL_CMD_HELP, .help_topic = CTL_CMD_HELP, .timeout_ms = -1 };
	bool have_command = false, options_done = false, want_help = false, want_version = false;
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
			if (have_command && (a.command == CTL_CMD_MONITOR || a.command == CTL_CMD_STATUS) &&
			    (r = args_option(argc, argv, &i, 'j', "json", NULL, err, errlen)) != 0) {
				if (r < 0)
					goto fail;
				a.json = true;
				continue;
			}
			if (have_command && a.command == CTL_CMD_MONITOR &&
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
				args_err(err, errlen, "unknown command '%s' (commands: monitor, status, help, version)", arg);
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
		case CTL_CMD_HELP:
			if (a.help_topic != CTL_CMD_HELP || args_command(arg, &a.help_topic) < 0) {
				args_err(err, errlen, "help: unknown command '%s' (commands: monitor, status, help, version)", arg);
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
