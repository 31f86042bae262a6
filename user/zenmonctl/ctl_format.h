/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * zenmonctl's output for one DOWN, as a text line or a JSON line, and the
 * JSON string writer the status output shares. One function per format, so
 * the two cannot drift apart field by field without a test noticing.
 */
#ifndef ZENMONCTL_FORMAT_H
#define ZENMONCTL_FORMAT_H

#include <stddef.h>
#include <stdio.h>

#include "zenmon.h"

/* "1234 exited status=3 ref=1\n", "1235 killed signal=9 (SIGKILL) ref=2\n",
 * "1236 killed signal=6 (SIGABRT) core dumped ref=3\n", "1237 noproc ref=4\n". */
void ctl_format_down_text(FILE *f, const struct zm_down_info *d);

/* One JSON object and a newline: ref, pid, start_ticks (when nonzero),
 * reason, then status | signal, signal_name, core_dumped, then time_ns. */
void ctl_format_down_json(FILE *f, const struct zm_down_info *d);

/* s as a JSON string, quotes included: control characters escaped, invalid
 * UTF-8 replaced by U+FFFD, so the output is always valid JSON. */
void ctl_format_json_string(FILE *f, const char *s);

/* "SIGKILL", "SIGRTMIN+3": the signal's name in buf, or NULL if it has none. */
const char *ctl_format_signal_name(int sig, char *buf, size_t len);

#endif
