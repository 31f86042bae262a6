/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The agent's STATUS_REPLY text ("name value" lines, docs/PROTOCOL.md)
 * parsed into fields, and printed for people (aligned "name: value" lines
 * and a table of subscribers) or for programs (one JSON object). Text
 * output ignores lines and key=value pairs it does not know, as the
 * protocol asks; JSON output keeps every one whose value is an integer,
 * after the known ones, so a newer agent's counters show up unasked.
 */
#ifndef ZENMONCTL_STATUS_H
#define ZENMONCTL_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The numeric lines, in the order they are shown. */
enum ctl_status_field {
	CTL_STATUS_UPTIME_SECONDS,
	CTL_STATUS_SUBSCRIBERS,
	CTL_STATUS_MONITORS,
	CTL_STATUS_TARGETS,
	CTL_STATUS_KERNEL_WATCHES,
	CTL_STATUS_KERNEL_TCP_WATCHES,
	CTL_STATUS_RINGBUF_DROPPED,
	CTL_STATUS_DOWNS_DELIVERED,
	CTL_STATUS_KERNEL_EXITS,
	CTL_STATUS_KERNEL_MATCHED,
	CTL_STATUS_KERNEL_TCP_CLOSES,
	CTL_STATUS_KERNEL_TCP_MATCHED,
	CTL_STATUS_KERNEL_WAKEUPS,
	CTL_STATUS_DOWNS_QUEUED,
	CTL_STATUS_DOWNS_FLUSHED,
	CTL_STATUS_SUBSCRIBERS_DROPPED,
	CTL_STATUS_RATE_LIMIT,
	CTL_STATUS_GLOBAL_RATE,
	_CTL_STATUS_N,
};

/* A line or key=value pair we do not know, whose value is an integer. */
struct ctl_status_extra {
	char *key;
	uint64_t magnitude;
	bool negative;
};

struct ctl_status_extras {
	struct ctl_status_extra *v;    /* in the order first seen; keys unique */
	size_t n;
};

struct ctl_status_subscriber {
	uint64_t id, monitors, queued, pid, uid;
	bool has_id, has_monitors, has_queued, has_pid, has_uid;
	char *name;                    /* NULL if the line had none */
	struct ctl_status_extras extra;
};

struct ctl_status {
	char *version;                 /* NULL if absent */
	uint64_t value[_CTL_STATUS_N];
	bool has[_CTL_STATUS_N];
	struct ctl_status_extras extra;
	struct ctl_status_subscriber *subs;
	size_t n_subs;
};

/* Parse text into *ret (free with ctl_status_free()). 0 or -ENOMEM. */
int ctl_status_parse(const char *text, struct ctl_status *ret);
void ctl_status_free(struct ctl_status *s);

void ctl_status_print_text(FILE *f, const struct ctl_status *s);
void ctl_status_print_json(FILE *f, const struct ctl_status *s);

/* "3d 04h 05m 06s", "2h 00m 07s", "5m 09s", "42s". */
void ctl_status_format_uptime(uint64_t secs, char *buf, size_t len);

#endif
