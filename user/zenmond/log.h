/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The agent's log: one line per event on stderr, "zenmond: " first, in the
 * style of systemd and iproute2 messages. The agent logs an error once, where
 * it is handled; modules below return -errno and leave the wording to it
 * unless only they know what the user should do.
 */
#ifndef ZENMOND_LOG_H
#define ZENMOND_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Parse "error", "warn", "info" or "debug". 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *ret);
/* "error", "warn", "info" or "debug"; "?" for anything else. */
const char *log_level_name(enum log_level lvl);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_get_level() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
