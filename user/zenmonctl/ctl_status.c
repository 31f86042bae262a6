// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * `zenmonctl status`: the STATUS_REPLY text, parsed and shown. One table
 * names every known line once, with its wire name (also its JSON key) and
 * its label for people, so the two outputs cannot disagree. Lines not in
 * the table reach JSON only, generically, when their value is an integer.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_format.h"
#include "ctl_status.h"

static const struct {
	const char *key;               /* on the wire and in JSON */
	const char *label;             /* in text output */
	bool rate;                     /* DOWNs per second, 0 = unlimited */
} status_fields[_CTL_STATUS_N] = {
	[CTL_STATUS_UPTIME_SECONDS] = { "uptime_seconds", "uptime" },
	[CTL_STATUS_SUBSCRIBERS] = { "subscribers", "subscribers" },
	[CTL_STATUS_MONITORS] = { "monitors", "monitors" },
	[CTL_STATUS_TARGETS] = { "targets", "targets" },
	[CTL_STATUS_KERNEL_WATCHES] = { "kernel_watches", "kernel watches" },
	[CTL_STATUS_KERNEL_TCP_WATCHES] = { "kernel_tcp_watches", "kernel TCP watches" },
	[CTL_STATUS_RINGBUF_DROPPED] = { "ringbuf_dropped", "ring-buffer drops" },
	[CTL_STATUS_DOWNS_DELIVERED] = { "downs_delivered", "downs delivered" },
	[CTL_STATUS_KERNEL_EXITS] = { "kernel_exits", "exits seen by kernel" },
	[CTL_STATUS_KERNEL_MATCHED] = { "kernel_matched", "watched exits" },
	[CTL_STATUS_KERNEL_TCP_CLOSES] = { "kernel_tcp_closes", "kernel TCP closes" },
	[CTL_STATUS_KERNEL_TCP_MATCHED] = { "kernel_tcp_matched", "watched TCP closes" },
	[CTL_STATUS_KERNEL_WAKEUPS] = { "kernel_wakeups", "kernel wakeups" },
	[CTL_STATUS_DOWNS_QUEUED] = { "downs_queued", "downs queued" },
	[CTL_STATUS_DOWNS_FLUSHED] = { "downs_flushed", "downs flushed" },
	[CTL_STATUS_SUBSCRIBERS_DROPPED] = { "subscribers_dropped", "subscribers dropped" },
	[CTL_STATUS_RATE_LIMIT] = { "rate_limit", "rate limit", true },
	[CTL_STATUS_GLOBAL_RATE] = { "global_rate", "global rate limit", true },
};

/* Keys the JSON object uses itself: no status line may take them. */
static const char *const status_reserved_keys[] = { "version", "subscribers_list", "subscriber" };

/* Width of the label column in text output: the longest label and ':'. */
#define STATUS_LABEL_WIDTH 22

/* "-12", "7": an integer, as a sign and a u64 magnitude. 0 or -EINVAL/-ERANGE. */
static int status_parse_int(const char *s, size_t len, struct ctl_status_extra *ret)
{
	bool neg = len > 0 && s[0] == '-';
	uint64_t v;
	int r;

	r = ctl_parse_u64(s + neg, len - neg, &v);
	if (r < 0)
		return r;
	if (neg && v > (uint64_t)INT64_MAX + 1)
		return -ERANGE;
	ret->magnitude = v;
	ret->negative = neg && v != 0;
	return 0;
}

static bool status_key_in(const char *key, size_t klen, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(set[i]) == klen && memcmp(key, set[i], klen) == 0)
			return true;
	return false;
}

/* Remember key = value when value is an integer (a later duplicate wins,
 * in the place of the first). 0 or -ENOMEM; other values are skipped. */
static int status_add_extra(struct ctl_status_extras *x, const char *key, size_t klen,
			    const char *value, size_t vlen)
{
	struct ctl_status_extra e, *v;

	if (klen == 0 || status_parse_int(value, vlen, &e) < 0)
		return 0;
	for (size_t i = 0; i < x->n; i++)
		if (strlen(x->v[i].key) == klen && memcmp(x->v[i].key, key, klen) == 0) {
			x->v[i].magnitude = e.magnitude;
			x->v[i].negative = e.negative;
			return 0;
		}
	e.key = strndup(key, klen);
	if (!e.key)
		return -ENOMEM;
	v = realloc(x->v, (x->n + 1) * sizeof(*v));
	if (!v) {
		free(e.key);
		return -ENOMEM;
	}
	x->v = v;
	x->v[x->n++] = e;
	return 0;
}

static void status_free_extras(struct ctl_status_extras *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->v[i].key);
	free(x->v);
	x->v = NULL;
	x->n = 0;
}

/* "id=1 name=x monitors=2 queued=0": the words of a subscriber line. */
static int status_parse_subscriber(const char *p, const char *end, struct ctl_status *s)
{
	struct ctl_status_subscriber sub = { 0 }, *subs;
	const char *word, *val;
	size_t klen, vlen;

	while (ctl_next_kv(&p, end, &word, &klen, &val, &vlen)) {
		if (klen == 2 && memcmp(word, "id", 2) == 0)
			sub.has_id = ctl_parse_u64(val, vlen, &sub.id) == 0;
		else if (klen == 8 && memcmp(word, "monitors", 8) == 0)
			sub.has_monitors = ctl_parse_u64(val, vlen, &sub.monitors) == 0;
		else if (klen == 6 && memcmp(word, "queued", 6) == 0)
			sub.has_queued = ctl_parse_u64(val, vlen, &sub.queued) == 0;
		else if (klen == 3 && memcmp(word, "pid", 3) == 0)
			sub.has_pid = ctl_parse_u64(val, vlen, &sub.pid) == 0;
		else if (klen == 3 && memcmp(word, "uid", 3) == 0)
			sub.has_uid = ctl_parse_u64(val, vlen, &sub.uid) == 0;
		else if (klen == 4 && memcmp(word, "name", 4) == 0) {
			free(sub.name);
			sub.name = strndup(val, vlen);
			if (!sub.name)
				goto nomem;
		} else if (status_add_extra(&sub.extra, word, klen, val, vlen) < 0) {
			goto nomem;
		}
	}
	subs = realloc(s->subs, (s->n_subs + 1) * sizeof(*subs));
	if (!subs)
		goto nomem;
	s->subs = subs;
	s->subs[s->n_subs++] = sub;
	return 0;
nomem:
	free(sub.name);
	status_free_extras(&sub.extra);
	return -ENOMEM;
}

static int status_parse_line(const char *line, const char *end, struct ctl_status *s)
{
	const char *sp = memchr(line, ' ', (size_t)(end - line));
	const char *value;
	size_t klen, vlen;

	if (!sp)
		return 0;
	klen = (size_t)(sp - line);
	value = sp + 1;
	vlen = (size_t)(end - value);

	if (klen == 10 && memcmp(line, "subscriber", 10) == 0)
		return status_parse_subscriber(value, end, s);
	if (klen == 7 && memcmp(line, "version", 7) == 0) {
		char *v = strndup(value, vlen);

		if (!v)
			return -ENOMEM;
		free(s->version);
		s->version = v;
		return 0;
	}
	for (int i = 0; i < _CTL_STATUS_N; i++)
		if (strlen(status_fields[i].key) == klen && memcmp(line, status_fields[i].key, klen) == 0) {
			/* A value that is not a number is the agent's bug; show nothing. */
			s->has[i] = ctl_parse_u64(value, vlen, &s->value[i]) == 0;
			return 0;
		}
	/* A line from a newer agent: JSON shows it if it is a number. */
	if (status_key_in(line, klen, status_reserved_keys,
			  sizeof(status_reserved_keys) / sizeof(status_reserved_keys[0])))
		return 0;
	return status_add_extra(&s->extra, line, klen, value, vlen);
}

int ctl_status_parse(const char *text, struct ctl_status *ret)
{
	struct ctl_status s = { 0 };
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		const char *end = nl ? nl : p + strlen(p);
		const char *next = nl ? nl + 1 : end;
		int r;

		if (end > p && end[-1] == '\r')
			end--;
		r = status_parse_line(p, end, &s);
		if (r < 0) {
			ctl_status_free(&s);
			return r;
		}
		p = next;
	}
	*ret = s;
	return 0;
}

void ctl_status_free(struct ctl_status *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_subs; i++) {
		free(s->subs[i].name);
		status_free_extras(&s->subs[i].extra);
	}
	free(s->subs);
	free(s->version);
	status_free_extras(&s->extra);
	memset(s, 0, sizeof(*s));
}

void ctl_status_format_uptime(uint64_t secs, char *buf, size_t len)
{
	uint64_t d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60, sec = secs % 60;

	if (d)
		snprintf(buf, len, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", d, h, m, sec);
	else if (h)
		snprintf(buf, len, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", h, m, sec);
	else if (m)
		snprintf(buf, len, "%" PRIu64 "m %02" PRIu64 "s", m, sec);
	else
		snprintf(buf, len, "%" PRIu64 "s", sec);
}

/* Print s for a terminal: anything but printable ASCII becomes '?'. */
static int status_print_safe(FILE *f, const char *s, int width)
{
	int n = 0;

	for (; *s; s++, n++)
		fputc(isprint((unsigned char)*s) ? *s : '?', f);
	for (; n < width; n++)
		fputc(' ', f);
	return n;
}

static void status_label(FILE *f, const char *label)
{
	fprintf(f, "%s:%*s", label, (int)(STATUS_LABEL_WIDTH - strlen(label) - 1), "");
}

void ctl_status_print_text(FILE *f, const struct ctl_status *s)
{
	int name_width = 4;   /* "NAME" */
	bool peer = false;     /* the agent names each subscriber's process */

	if (s->version) {
		status_label(f, "agent version");
		status_print_safe(f, s->version, 0);
		fputc('\n', f);
	}
	for (int i = 0; i < _CTL_STATUS_N; i++) {
		if (!s->has[i])
			continue;
		status_label(f, status_fields[i].label);
		if (i == CTL_STATUS_UPTIME_SECONDS) {
			char up[64];

			ctl_status_format_uptime(s->value[i], up, sizeof(up));
			fprintf(f, "%s\n", up);
		} else if (status_fields[i].rate) {
			if (s->value[i])
				fprintf(f, "%" PRIu64 " DOWNs/s\n", s->value[i]);
			else
				fputs("unlimited\n", f);
		} else {
			fprintf(f, "%" PRIu64 "\n", s->value[i]);
		}
	}
	if (s->n_subs == 0)
		return;

	for (size_t i = 0; i < s->n_subs; i++) {
		if (s->subs[i].name && (int)strlen(s->subs[i].name) > name_width)
			name_width = (int)strlen(s->subs[i].name);
		/* An agent older than the pid and uid keys: no such columns. */
		peer |= s->subs[i].has_pid || s->subs[i].has_uid;
	}
	fprintf(f, "\n%10s  %-*s  ", "SUBSCRIBER", name_width, "NAME");
	if (peer)
		fprintf(f, "%8s  %6s  ", "PID", "UID");
	fprintf(f, "%10s  %10s\n", "MONITORS", "QUEUED");
	for (size_t i = 0; i < s->n_subs; i++) {
		const struct ctl_status_subscriber *sub = &s->subs[i];
		char id[24] = "-", mon[24] = "-", q[24] = "-", pid[24] = "-", uid[24] = "-";

		if (sub->has_id)
			snprintf(id, sizeof(id), "%" PRIu64, sub->id);
		if (sub->has_monitors)
			snprintf(mon, sizeof(mon), "%" PRIu64, sub->monitors);
		if (sub->has_queued)
			snprintf(q, sizeof(q), "%" PRIu64, sub->queued);
		if (sub->has_pid)
			snprintf(pid, sizeof(pid), "%" PRIu64, sub->pid);
		if (sub->has_uid)
			snprintf(uid, sizeof(uid), "%" PRIu64, sub->uid);
		fprintf(f, "%10s  ", id);
		status_print_safe(f, sub->name ? sub->name : "-", name_width);
		fputs("  ", f);
		if (peer)
			fprintf(f, "%8s  %6s  ", pid, uid);
		fprintf(f, "%10s  %10s\n", mon, q);
	}
}

/* ,"key":value for each extra; sep is what goes before the first. */
static void status_json_extras(FILE *f, const struct ctl_status_extras *x, const char *sep)
{
	for (size_t i = 0; i < x->n; i++) {
		fputs(sep, f);
		ctl_format_json_string(f, x->v[i].key);
		fprintf(f, ":%s%" PRIu64, x->v[i].negative ? "-" : "", x->v[i].magnitude);
		sep = ",";
	}
}

/* ,"key":v when has; *sep is what goes before it, "," once anything went. */
static void status_json_u64(FILE *f, const char **sep, const char *key, bool has, uint64_t v)
{
	if (!has)
		return;
	fprintf(f, "%s\"%s\":%" PRIu64, *sep, key, v);
	*sep = ",";
}

void ctl_status_print_json(FILE *f, const struct ctl_status *s)
{
	const char *sep = "";

	fputc('{', f);
	if (s->version) {
		fputs("\"version\":", f);
		ctl_format_json_string(f, s->version);
		sep = ",";
	}
	for (int i = 0; i < _CTL_STATUS_N; i++) {
		if (!s->has[i])
			continue;
		fprintf(f, "%s\"%s\":%" PRIu64, sep, status_fields[i].key, s->value[i]);
		sep = ",";
	}
	status_json_extras(f, &s->extra, sep);
	if (s->extra.n)
		sep = ",";
	fprintf(f, "%s\"subscribers_list\":[", sep);
	for (size_t i = 0; i < s->n_subs; i++) {
		const struct ctl_status_subscriber *sub = &s->subs[i];
		const char *ssep = "";

		fprintf(f, "%s{", i ? "," : "");
		status_json_u64(f, &ssep, "id", sub->has_id, sub->id);
		if (sub->name) {
			fprintf(f, "%s\"name\":", ssep);
			ctl_format_json_string(f, sub->name);
			ssep = ",";
		}
		status_json_u64(f, &ssep, "pid", sub->has_pid, sub->pid);
		status_json_u64(f, &ssep, "uid", sub->has_uid, sub->uid);
		status_json_u64(f, &ssep, "monitors", sub->has_monitors, sub->monitors);
		status_json_u64(f, &ssep, "queued", sub->has_queued, sub->queued);
		status_json_extras(f, &sub->extra, ssep);
		fputc('}', f);
	}
	fputs("]}\n", f);
}
