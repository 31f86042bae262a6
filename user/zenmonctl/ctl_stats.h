/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * `zenmonctl stats` and `zenmonctl targets`: the agent's STATS_REPLY text
 * (the Prometheus text exposition format) and TARGETS_REPLY text
 * (docs/PROTOCOL.md) parsed and shown, for people as text and for
 * programs as one JSON object. Pure: no I/O but the FILE given.
 */
#ifndef ZENMONCTL_STATS_H
#define ZENMONCTL_STATS_H

#include <stddef.h>
#include <stdio.h>

/* ---- stats ----------------------------------------------------------------- */

struct ctl_label {
	char *name, *value;            /* value unescaped */
};

struct ctl_sample {
	char *name;                    /* the family's name, or it with _bucket, _sum ... */
	struct ctl_label *labels;
	size_t n_labels;
	char *value;                   /* as written: "42", "0.25", "+Inf", "NaN" */
};

struct ctl_family {
	char *name, *type, *help;      /* type "untyped" and help "" when not given */
	struct ctl_sample *samples;
	size_t n_samples;
};

struct ctl_stats {
	struct ctl_family *families;   /* in the order first seen */
	size_t n_families;
};

/*
 * Parse Prometheus text exposition (version 0.0.4) into *ret (free with
 * ctl_stats_free()). A sample goes to the family just declared when its
 * name starts with that family's; otherwise it starts an untyped family.
 * Comments other than HELP and TYPE, blank lines and lines that do not
 * parse are skipped. 0 or -ENOMEM.
 */
int ctl_stats_parse(const char *text, struct ctl_stats *ret);
void ctl_stats_free(struct ctl_stats *s);

/*
 * One JSON object, keyed by family name:
 *   {"zenmon_monitors":{"type":"gauge","help":"...","samples":[
 *      {"name":"zenmon_monitors","labels":{},"value":3}]}, ...}
 * A value is a JSON number where the text is one, else a string ("+Inf").
 */
void ctl_stats_print_json(FILE *f, const struct ctl_stats *s);

/* ---- targets --------------------------------------------------------------- */

/* One key=value word of a target line. */
struct ctl_word {
	char *key, *value;
};

struct ctl_target_line {
	struct ctl_word *words;        /* in line order, "subscribers" included */
	size_t n_words;
};

struct ctl_sub_name {
	char *id, *name;
};

struct ctl_targets {
	struct ctl_target_line *targets;
	size_t n_targets;
	struct ctl_sub_name *subs;     /* from the "subscriber id=N name=X ..." lines */
	size_t n_subs;
	struct ctl_word *summary;      /* the "targets total=N ..." line's words */
	size_t n_summary;
};

/* Parse the TARGETS_REPLY text into *ret (free with ctl_targets_free()).
 * Lines of other kinds are skipped. 0 or -ENOMEM. */
int ctl_targets_parse(const char *text, struct ctl_targets *ret);
void ctl_targets_free(struct ctl_targets *t);

/* The value of key among words, or NULL. */
const char *ctl_word_get(const struct ctl_word *words, size_t n, const char *key);

/*
 * A table: KIND, TARGET (pid and start ticks, or the connection's ends and
 * cookie), MONITORS, KERNEL (the kernel watch's state), SUBSCRIBERS (id and
 * name), then a summary line.
 */
void ctl_targets_print_text(FILE *f, const struct ctl_targets *t);

/*
 * One JSON object: {"targets":[{...},...],"total":N,"listed":N,...} where
 * each target has its line's words in order, integers as numbers, and
 * "subscribers" as an array of {"id":N,"name":"..."} (name null when the
 * reply names no such subscriber).
 */
void ctl_targets_print_json(FILE *f, const struct ctl_targets *t);

#endif
