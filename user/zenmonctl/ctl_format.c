// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * DOWN lines, text and JSON. The text line leads with what a person scans
 * for (the pid or the connection's ends, then why), the JSON line carries
 * every field under a stable name; both are documented in `zenmonctl
 * monitor --help` and `zenmonctl monitor-tcp --help`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "ctl_format.h"

/* Room for "[" INET6_ADDRSTRLEN "]:65535". */
#define FORMAT_ENDPOINT_LEN 64

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

const char *ctl_format_endpoint(int family, const union zm_inet_addr *addr, uint16_t port,
				char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if ((family != AF_INET && family != AF_INET6) ||
	    !inet_ntop(family, addr, host, sizeof(host)))
		snprintf(buf, len, "?");
	else if (family == AF_INET)
		snprintf(buf, len, "%s:%u", host, (unsigned int)port);
	else
		snprintf(buf, len, "[%s]:%u", host, (unsigned int)port);
	return buf;
}

const char *ctl_format_tcp_state_name(int state)
{
	/* include/net/tcp_states.h; stable, since they are in tracepoints. */
	static const char *const names[] = {
		[1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1",
		[5] = "FIN_WAIT2", [6] = "TIME_WAIT", [7] = "CLOSE", [8] = "CLOSE_WAIT",
		[9] = "LAST_ACK", [10] = "LISTEN", [11] = "CLOSING", [12] = "NEW_SYN_RECV",
		[13] = "BOUND_INACTIVE",
	};

	if (state <= 0 || (size_t)state >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[state];
}

static bool format_tcp_how_known(enum zm_tcp_how how)
{
	return how >= ZM_TCP_HOW_FIN && how <= ZM_TCP_HOW_ERROR;
}

static void format_tcp_down_text(FILE *f, const struct zm_down_info *d)
{
	char local[FORMAT_ENDPOINT_LEN], remote[FORMAT_ENDPOINT_LEN];
	const char *name;

	if (d->tcp.family)
		fprintf(f, "%s -> %s ",
			ctl_format_endpoint(d->tcp.family, &d->tcp.local, d->tcp.local_port, local, sizeof(local)),
			ctl_format_endpoint(d->tcp.family, &d->tcp.remote, d->tcp.remote_port, remote, sizeof(remote)));
	fputs(zm_reason_str(d->reason), f);
	switch (d->reason) {
	case ZM_DOWN_TCP_CLOSED:
		if (format_tcp_how_known(d->tcp_how))
			fprintf(f, " how=%s", zm_tcp_how_str(d->tcp_how));
		else
			fprintf(f, " how=%d", (int)d->tcp_how);
		if (d->tcp_errno) {
			fprintf(f, " errno=%d", d->tcp_errno);
			name = strerrorname_np(d->tcp_errno);
			if (name)
				fprintf(f, " (%s)", name);
		}
		break;
	case ZM_DOWN_NOCONNECTION:
		break;
	default:
		fprintf(f, " reason=%d", (int)d->reason);
		break;
	}
	if (d->cookie)
		fprintf(f, " cookie=%" PRIu64, d->cookie);
	fprintf(f, " ref=%" PRIu64 "\n", d->ref);
}

static void format_tcp_down_json(FILE *f, const struct zm_down_info *d)
{
	char end[FORMAT_ENDPOINT_LEN];
	const char *name;

	fprintf(f, "{\"ref\":%" PRIu64 ",\"kind\":\"tcp\"", d->ref);
	if (d->cookie)
		fprintf(f, ",\"cookie\":%" PRIu64, d->cookie);
	if (d->tcp.family == AF_INET || d->tcp.family == AF_INET6) {
		fprintf(f, ",\"family\":\"%s\"", d->tcp.family == AF_INET ? "ipv4" : "ipv6");
		fprintf(f, ",\"local\":\"%s\"",
			ctl_format_endpoint(d->tcp.family, &d->tcp.local, d->tcp.local_port, end, sizeof(end)));
		fprintf(f, ",\"remote\":\"%s\"",
			ctl_format_endpoint(d->tcp.family, &d->tcp.remote, d->tcp.remote_port, end, sizeof(end)));
	}
	fprintf(f, ",\"reason\":\"%s\"", zm_reason_str(d->reason));
	switch (d->reason) {
	case ZM_DOWN_TCP_CLOSED:
		fprintf(f, ",\"how\":\"%s\"", format_tcp_how_known(d->tcp_how) ? zm_tcp_how_str(d->tcp_how)
									       : "unknown");
		if (!format_tcp_how_known(d->tcp_how))
			fprintf(f, ",\"how_code\":%d", (int)d->tcp_how);
		fprintf(f, ",\"errno\":%d,\"errno_name\":", d->tcp_errno);
		name = d->tcp_errno ? strerrorname_np(d->tcp_errno) : NULL;
		if (name)
			fprintf(f, "\"%s\"", name);
		else
			fputs("null", f);
		break;
	case ZM_DOWN_NOCONNECTION:
		break;
	default:
		fprintf(f, ",\"reason_code\":%d", (int)d->reason);
		break;
	}
	name = ctl_format_tcp_state_name(d->tcp_old_state);
	if (name)
		fprintf(f, ",\"old_state\":\"%s\"", name);
	fprintf(f, ",\"time_ns\":%" PRIu64 "}\n", d->time_ns);
}

void ctl_format_down_text(FILE *f, const struct zm_down_info *d)
{
	char name[32];

	if (d->kind == ZM_KIND_TCP) {
		format_tcp_down_text(f, d);
		return;
	}
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

	if (d->kind == ZM_KIND_TCP) {
		format_tcp_down_json(f, d);
		return;
	}
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

int ctl_parse_u64(const char *s, size_t len, uint64_t *ret)
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

bool ctl_next_kv(const char **p, const char *end, const char **key, size_t *klen,
		 const char **value, size_t *vlen)
{
	const char *q = *p;

	while (q < end) {
		const char *word, *eq;

		while (q < end && *q == ' ')
			q++;
		word = q;
		while (q < end && *q != ' ')
			q++;
		eq = memchr(word, '=', (size_t)(q - word));
		if (!eq)
			continue;
		*key = word;
		*klen = (size_t)(eq - word);
		*value = eq + 1;
		*vlen = (size_t)(q - eq - 1);
		*p = q;
		return true;
	}
	*p = q;
	return false;
}
