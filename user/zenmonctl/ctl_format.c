// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * DOWN lines, text and JSON. The text line leads with what a person scans
 * for (pid, then why), the JSON line carries every field under a stable
 * name; both are documented in `zenmonctl monitor --help`.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ctl_format.h"

const char *ctl_format_signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev;

	if (sig <= 0)
		return NULL;
	abbrev = sigabbrev_np(sig);
	if (abbrev) {
		snprintf(buf, len, "SIG%s", abbrev);
		return buf;
	}
	/* Real-time signals, named as kill -l names them. */
	if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
		if (sig == SIGRTMIN)
			snprintf(buf, len, "SIGRTMIN");
		else if (sig == SIGRTMAX)
			snprintf(buf, len, "SIGRTMAX");
		else if (sig - SIGRTMIN <= SIGRTMAX - sig)
			snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
		else
			snprintf(buf, len, "SIGRTMAX-%d", SIGRTMAX - sig);
		return buf;
	}
	return NULL;
}

void ctl_format_down_text(FILE *f, const struct zm_down_info *d)
{
	char name[32];

	fprintf(f, "%d %s", (int)d->pid, zm_reason_str(d->reason));
	switch (d->reason) {
	case ZM_DOWN_EXITED:
		fprintf(f, " status=%d", d->status);
		break;
	case ZM_DOWN_KILLED:
		fprintf(f, " signal=%d", d->signal);
		if (ctl_format_signal_name(d->signal, name, sizeof(name)))
			fprintf(f, " (%s)", name);
		if (d->core_dumped)
			fputs(" core dumped", f);
		break;
	case ZM_DOWN_NOPROC:
		break;
	default:
		/* A newer agent's reason: show its number rather than nothing. */
		fprintf(f, " reason=%d", (int)d->reason);
		break;
	}
	fprintf(f, " ref=%" PRIu64 "\n", d->ref);
}

void ctl_format_down_json(FILE *f, const struct zm_down_info *d)
{
	char name[32];

	fprintf(f, "{\"ref\":%" PRIu64 ",\"pid\":%d", d->ref, (int)d->pid);
	if (d->start_ticks)
		fprintf(f, ",\"start_ticks\":%" PRIu64, d->start_ticks);
	fprintf(f, ",\"reason\":\"%s\"", zm_reason_str(d->reason));
	switch (d->reason) {
	case ZM_DOWN_EXITED:
		fprintf(f, ",\"status\":%d", d->status);
		break;
	case ZM_DOWN_KILLED:
		fprintf(f, ",\"signal\":%d,\"signal_name\":", d->signal);
		if (ctl_format_signal_name(d->signal, name, sizeof(name)))
			fprintf(f, "\"%s\"", name);
		else
			fputs("null", f);
		fprintf(f, ",\"core_dumped\":%s", d->core_dumped ? "true" : "false");
		break;
	case ZM_DOWN_NOPROC:
		break;
	default:
		fprintf(f, ",\"reason_code\":%d", (int)d->reason);
		break;
	}
	fprintf(f, ",\"time_ns\":%" PRIu64 "}\n", d->time_ns);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t format_utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)   /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, and past U+10FFFF are not UTF-8. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void ctl_format_json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n;

		switch (*p) {
		case '"': fputs("\\\"", f); p++; continue;
		case '\\': fputs("\\\\", f); p++; continue;
		case '\n': fputs("\\n", f); p++; continue;
		case '\r': fputs("\\r", f); p++; continue;
		case '\t': fputs("\\t", f); p++; continue;
		case '\b': fputs("\\b", f); p++; continue;
		case '\f': fputs("\\f", f); p++; continue;
		}
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
			p++;
			continue;
		}
		n = format_utf8_len(p);
		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
	fputc('"', f);
}
