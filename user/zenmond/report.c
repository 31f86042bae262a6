// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The agent's reports on itself, for operators: the metrics (the same text
 * for GET /metrics and for STATS) and the list of watched targets (TARGETS),
 * where the agent's view and the kernel's stand side by side. A target the
 * agent holds shows its monitors, its subscribers and the state of its
 * kernel watch; a kernel watch the agent does not hold shows too, with no
 * monitors: that is the disagreement an operator looks for. The formats are
 * in docs/PROTOCOL.md (TARGETS) and docs/METRICS.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "log.h"
#include "sockdiag.h"

/* Subscriber ids shown on one target line, at most: a line fits a record. */
#define REPORT_SUBS_MAX 256

int report_metrics(struct agent *a, struct zm_buf *out)
{
	struct metrics_view v = {
		.m = &a->metrics,
		.reg = *registry_counters(a->reg),
		.subscribers = registry_sub_count(a->reg),
		.monitors = registry_monitor_count(a->reg),
		.queued = registry_queued_count(a->reg),
		.queued_max = registry_queued_max(a->reg),
		.subscribers_dropped = a->subscribers_dropped,
	};

	v.have_kstats = kwatch_read_stats(a->kw, &v.ks) == 0;
	kwatch_read_counters(a->kw, &v.kc);
	v.start_time_ns = agent_now_ns(CLOCK_REALTIME) -
			  (agent_now_ns(CLOCK_MONOTONIC) - a->started_mono_ns);
	v.have_proc = metrics_read_process(a->opts.proc_root, &v.proc) == 0;
	return metrics_render(&v, out);
}

/* Queue text (built with result r) as the answer to request, or say why not. */
static void report_reply(struct client *c, uint16_t request, uint16_t type, uint64_t token,
			 const struct zm_buf *text, int r)
{
	if (r == 0)
		r = client_queue_text(c, type, token, (const char *)zm_buf_head(text),
				      zm_buf_pending(text));
	if (r < 0)
		client_error(c, 0, request, -r, "cannot build the %s: %s", zm_rec_type_name(type),
			     strerror(-r));
}

void report_stats(struct agent *a, struct client *c, uint64_t token)
{
	struct zm_buf text = { 0 };

	report_reply(c, ZM_REC_STATS, ZM_REC_STATS_REPLY, token, &text, report_metrics(a, &text));
	zm_buf_free(&text);
}

/* ---- TARGETS --------------------------------------------------------------- */

/* One target as both sides see it. */
struct report_target {
	struct reg_key key;
	size_t monitors;              /* the agent's; 0: only the kernel has it */
	int kstate;                   /* enum zm_watch_state, -1: no kernel watch */
	bool have_tuple;
	struct sockdiag_tuple tuple;  /* TCP: its ends, when the socket still exists */
};

struct report_targets {
	struct agent *a;
	struct report_target *v;
	size_t n, cap;
	int err;
};

static struct report_target *targets_push(struct report_targets *t, const struct reg_key *key)
{
	struct report_target *e;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct report_target *v = realloc(t->v, cap * sizeof(*v));

		if (!v) {
			t->err = -ENOMEM;
			return NULL;
		}
		t->v = v;
		t->cap = cap;
	}
	e = &t->v[t->n++];
	*e = (struct report_target){ .key = *key, .kstate = -1 };
	return e;
}

static void targets_on_agent(void *ctx, const struct reg_key *key, size_t monitors)
{
	struct report_targets *t = ctx;
	struct report_target *e = targets_push(t, key);
	struct zm_proc_watch pw;
	struct zm_tcp_watch tw;

	if (!e)
		return;
	e->monitors = monitors;
	if (key->kind == ZM_TARGET_PROCESS &&
	    kwatch_lookup_proc(t->a->kw, (uint32_t)key->a, key->b, &pw) == 0)
		e->kstate = (int)pw.state;
	else if (key->kind == ZM_TARGET_TCP && kwatch_lookup_tcp(t->a->kw, key->a, &tw) == 0)
		e->kstate = (int)tw.state;
}

/* A kernel watch: listed here only when the agent holds no such target. */
static int targets_on_kernel(struct report_targets *t, const struct reg_key *key, uint32_t state)
{
	struct report_target *e;

	if (registry_target_exists(t->a->reg, key))
		return 0;
	e = targets_push(t, key);
	if (!e)
		return t->err;
	e->kstate = (int)state;
	return 0;
}

static int targets_on_kernel_proc(void *ctx, const struct zm_proc_key *k, const struct zm_proc_watch *w)
{
	struct reg_key key = { .kind = ZM_TARGET_PROCESS, .a = k->tgid, .b = k->start_ticks };

	return targets_on_kernel(ctx, &key, w->state);
}

static int targets_on_kernel_tcp(void *ctx, uint64_t cookie, const struct zm_tcp_watch *w)
{
	struct reg_key key = { .kind = ZM_TARGET_TCP, .a = cookie };

	return targets_on_kernel(ctx, &key, w->state);
}

static int targets_cmp(const void *x, const void *y)
{
	const struct reg_key *a = &((const struct report_target *)x)->key;
	const struct reg_key *b = &((const struct report_target *)y)->key;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->a != b->a)
		return a->a < b->a ? -1 : 1;
	return a->b < b->b ? -1 : a->b > b->b;
}

/* sockdiag_dump()'s callback: the ends of a socket we list (sorted by key). */
static int targets_on_socket(void *ctx, const struct sockdiag_sock *s)
{
	struct report_targets *t = ctx;
	struct report_target probe = { .key = { .kind = ZM_TARGET_TCP, .a = s->cookie } };
	struct report_target *e = bsearch(&probe, t->v, t->n, sizeof(*t->v), targets_cmp);

	if (e) {
		e->tuple = s->tuple;
		e->have_tuple = true;
	}
	return 0;
}

static const char *targets_kstate_name(int state)
{
	switch (state) {
	case -1: return "none";
	case ZM_WATCH_ARMED: return "armed";
	case ZM_WATCH_FIRED: return "fired";
	case ZM_WATCH_ARMED_RST_SENT: return "armed_rst_sent";
	}
	return "unknown";
}

/* "1.2.3.4:80", "[::1]:80". */
static void targets_endpoint(const struct sockdiag_endpoint *e, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN] = "?";

	inet_ntop(e->family, e->addr, addr, sizeof(addr));
	snprintf(buf, len, e->family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr, e->port);
}

/* The distinct subscribers of one target, in the order first seen. */
struct report_subs {
	uint64_t id[REPORT_SUBS_MAX];
	size_t n;
	bool truncated;
};

static void targets_on_monitor(void *ctx, const struct reg_sub *s, uint64_t ref)
{
	struct report_subs *subs = ctx;
	uint64_t id = registry_sub_id(s);

	for (size_t i = 0; i < subs->n; i++)
		if (subs->id[i] == id)
			return;
	if (subs->n == REPORT_SUBS_MAX)
		subs->truncated = true;
	else
		subs->id[subs->n++] = id;
}

static int targets_line(struct report_targets *t, const struct report_target *e, struct zm_buf *out)
{
	struct report_subs subs = { .n = 0 };
	char line[256];
	int n;

	if (e->key.kind == ZM_TARGET_TCP) {
		char l[64] = "", r[64] = "";

		if (e->have_tuple) {
			targets_endpoint(&e->tuple.local, l, sizeof(l));
			targets_endpoint(&e->tuple.remote, r, sizeof(r));
		}
		n = snprintf(line, sizeof(line), "target kind=tcp cookie=%" PRIu64 "%s%s%s%s", e->key.a,
			     e->have_tuple ? " local=" : "", l, e->have_tuple ? " remote=" : "", r);
	} else {
		n = snprintf(line, sizeof(line), "target kind=process pid=%" PRIu64 " start_ticks=%" PRIu64,
			     e->key.a, e->key.b);
	}
	if (zm_buf_append(out, line, (size_t)n) < 0)
		return -ENOMEM;
	registry_target_foreach_monitor(t->a->reg, &e->key, targets_on_monitor, &subs);
	n = snprintf(line, sizeof(line), " monitors=%zu kernel=%s subscribers=", e->monitors,
		     targets_kstate_name(e->kstate));
	if (zm_buf_append(out, line, (size_t)n) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < subs.n; i++) {
		n = snprintf(line, sizeof(line), "%s%" PRIu64, i ? "," : "", subs.id[i]);
		if (zm_buf_append(out, line, (size_t)n) < 0)
			return -ENOMEM;
	}
	n = snprintf(line, sizeof(line), "%s\n", subs.truncated ? " subscribers_truncated=1" : "");
	return zm_buf_append(out, line, (size_t)n);
}

/*
 * Every target of the agent and every kernel watch, sorted by kind and
 * identity, at most limit lines of them (0: all), then the subscriber
 * lines and a summary.
 */
static int targets_text(struct report_targets *t, uint32_t limit, struct zm_buf *out)
{
	size_t agent_targets, listed, tcp = 0;
	char line[160];
	int n, r;

	registry_foreach_target(t->a->reg, targets_on_agent, t);
	if (t->err)
		return t->err;
	agent_targets = t->n;
	r = kwatch_foreach_proc(t->a->kw, targets_on_kernel_proc, t);
	if (r == 0)
		r = kwatch_foreach_tcp(t->a->kw, targets_on_kernel_tcp, t);
	if (r < 0)
		return r;
	if (t->n)
		qsort(t->v, t->n, sizeof(*t->v), targets_cmp);
	for (size_t i = 0; i < t->n; i++)
		tcp += t->v[i].key.kind == ZM_TARGET_TCP;
	/* One walk of the namespace's sockets names every connection at once.
	 * A failed walk only leaves the ends out. */
	if (tcp && (r = sockdiag_dump(AF_INET, targets_on_socket, t)) == 0)
		r = sockdiag_dump(AF_INET6, targets_on_socket, t);
	if (tcp && r < 0)
		log_debug("TARGETS: cannot list the TCP sockets: %s", strerror(-r));

	listed = limit && limit < t->n ? limit : t->n;
	for (size_t i = 0; i < listed; i++)
		if (targets_line(t, &t->v[i], out) < 0)
			return -ENOMEM;
	if (client_status_lines(t->a, out, SIZE_MAX) < 0)
		return -ENOMEM;
	n = snprintf(line, sizeof(line), "targets total=%zu listed=%zu agent=%zu kernel_only=%zu\n",
		     t->n, listed, agent_targets, t->n - agent_targets);
	return zm_buf_append(out, line, (size_t)n);
}

void report_targets(struct agent *a, struct client *c, const struct zm_targets *m)
{
	struct report_targets t = { .a = a };
	struct zm_buf text = { 0 };

	if (m->flags) {
		client_error(c, 0, ZM_REC_TARGETS, EINVAL, "unknown TARGETS flags 0x%x: send 0",
			     m->flags);
		return;
	}
	report_reply(c, ZM_REC_TARGETS, ZM_REC_TARGETS_REPLY, m->token, &text,
		     targets_text(&t, m->limit, &text));
	free(t.v);
	zm_buf_free(&text);
}
