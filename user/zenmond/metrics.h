/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The agent's metrics: the counters and histograms it keeps as things
 * happen (struct metrics, bumped by small inline calls from the modules
 * where each thing happens), a view of everything else read at scrape time
 * (struct metrics_view: the registry's counters and sizes, the kernel's
 * per-CPU counters, the process's own numbers), and the renderer that turns
 * the two into the Prometheus text exposition format, version 0.0.4
 * (docs/METRICS.md lists every metric). Pure: no I/O, no clock, no agent;
 * report.c fills the view, metrics_http.c and STATS serve the text.
 */
#ifndef ZENMOND_METRICS_H
#define ZENMOND_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zenmon/kern.h"
#include "zenmon/proto.h"
#include "kwatch.h"
#include "registry.h"

#define METRICS_HIST_MAX 16          /* finite buckets of one histogram, at most */
#define METRICS_REC_TYPES 64         /* record types counted apart; others as "unknown" */
#define METRICS_ERRNOS 256           /* error codes counted apart; others as "other" */
#define METRICS_REASONS 6            /* DOWN reasons counted apart; others as "unknown" */

/*
 * A Prometheus histogram with fixed buckets: counts[i] observations at
 * most bounds[i] and above bounds[i - 1], counts[nbounds] those above the
 * last bound (rendered cumulative, as the format wants). Integers only: a
 * duration is observed in nanoseconds and rendered in seconds.
 */
struct metrics_hist {
	const uint64_t *bounds;
	size_t nbounds;
	uint64_t counts[METRICS_HIST_MAX + 1];
	uint64_t count;
	uint64_t sum;
};

/* What the agent counts itself. Zero-initialise, then metrics_init(). */
struct metrics {
	uint64_t subscribers_connected;
	uint64_t frames_in, frames_out;
	uint64_t bytes_in, bytes_out;
	uint64_t records_in[METRICS_REC_TYPES];   /* [0]: a type >= METRICS_REC_TYPES */
	uint64_t records_out[METRICS_REC_TYPES];
	uint64_t errors[METRICS_ERRNOS];          /* ERRORs sent, by code; [0]: others */
	uint64_t downs_enqueued[METRICS_REASONS]; /* by reason; [0]: another reason */
	uint64_t downs_delivered[METRICS_REASONS];
	struct metrics_hist batch;                /* DOWNs per DOWN frame */
	struct metrics_hist loop;                 /* ns per event-loop pass */
};

/* Set the histograms' buckets (the counters are the caller's zeroes). */
void metrics_init(struct metrics *m);

void metrics_hist_observe(struct metrics_hist *h, uint64_t v);

static inline size_t metrics_rec_index(uint16_t type)
{
	return type < METRICS_REC_TYPES ? type : 0;
}

static inline size_t metrics_reason_index(uint16_t reason)
{
	return reason < METRICS_REASONS ? reason : 0;
}

static inline void metrics_record_in(struct metrics *m, uint16_t type)
{
	m->records_in[metrics_rec_index(type)]++;
}

static inline void metrics_record_out(struct metrics *m, uint16_t type, uint64_t n)
{
	m->records_out[metrics_rec_index(type)] += n;
}

static inline void metrics_error(struct metrics *m, int code)
{
	m->errors[code > 0 && code < METRICS_ERRNOS ? code : 0]++;
}

static inline void metrics_downs_enqueued(struct metrics *m, uint16_t reason, uint64_t n)
{
	m->downs_enqueued[metrics_reason_index(reason)] += n;
}

static inline void metrics_down_delivered(struct metrics *m, uint16_t reason)
{
	m->downs_delivered[metrics_reason_index(reason)]++;
}

/* The loop's after-pass hook (loop_set_after_pass()): ctx is a struct metrics. */
void metrics_on_loop_pass(void *ctx, uint64_t busy_ns);

/* The process's own numbers, from /proc/self (process_* metrics). */
struct metrics_process {
	uint64_t cpu_ns;              /* user + system */
	uint64_t rss_bytes, vsize_bytes;
	uint64_t open_fds, max_fds;
};

/* Everything the renderer shows besides struct metrics, read at scrape time. */
struct metrics_view {
	const struct metrics *m;
	struct registry_counters reg;
	size_t subscribers, monitors, queued, queued_max;
	uint64_t subscribers_dropped;
	struct zm_kstats ks;
	bool have_kstats;             /* false: the kernel counters could not be read */
	struct kwatch_counters kc;
	uint64_t start_time_ns;       /* CLOCK_REALTIME when the agent started */
	struct metrics_process proc;
	bool have_proc;
};

/* Read /proc/self (proc_root: "/proc"). 0 or -errno. */
int metrics_read_process(const char *proc_root, struct metrics_process *ret);

/*
 * Append the Prometheus text exposition of v to out: for each metric
 * family a "# HELP" and a "# TYPE" line, then its samples. 0 or -ENOMEM
 * (out may then hold part of the text).
 */
int metrics_render(const struct metrics_view *v, struct zm_buf *out);

/* ---- the exposition format, for the renderer and its tests ---------------- */

struct metrics_label {
	const char *name;
	const char *value;            /* escaped on output */
};

/* Where text goes; err keeps the first failure, and later writes do nothing. */
struct metrics_writer {
	struct zm_buf *out;
	int err;
};

/* "# HELP name help" (help escaped: backslash, newline) and "# TYPE name type". */
void metrics_write_family(struct metrics_writer *w, const char *name, const char *type,
			  const char *help);
/* "name{l1="v1",...} value": suffix ("_bucket", "" ...) follows name; value as given. */
void metrics_write_sample(struct metrics_writer *w, const char *name, const char *suffix,
			  const struct metrics_label *labels, size_t nlabels, const char *value);
/* A sample whose value is an integer. */
void metrics_write_u64(struct metrics_writer *w, const char *name,
		       const struct metrics_label *labels, size_t nlabels, uint64_t value);
/*
 * A histogram's samples: name_bucket{...,le="B"} for every bound and
 * "+Inf", name_sum and name_count. scale 1: bounds and sum as integers;
 * 1000000000: nanoseconds shown as seconds.
 */
void metrics_write_hist(struct metrics_writer *w, const char *name, const struct metrics_hist *h,
			uint64_t scale);

/* v / scale as a decimal with no trailing zeros ("0.00025", "3", "1.5") in buf. */
const char *metrics_format_scaled(uint64_t v, uint64_t scale, char *buf, size_t len);

#endif
