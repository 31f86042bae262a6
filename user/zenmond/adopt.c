// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Adoption: the watches an agent inherits from the one before it.
 *
 * The kernel side outlives the agent (kwatch.c keeps the programs attached
 * and the maps pinned), so a new agent starts with kernel watches, armed or
 * fired, that no monitor of its own holds: the previous agent's clients'.
 * Those clients reconnect (libzenmon does it by itself) and bring their
 * monitors back under the same references, naming each target exactly
 * (pid and start time, or socket cookie) with the RESUME flag. This module
 * keeps the inherited watches for --adopt-timeout seconds so that they can:
 *
 *   - armed: the first monitor brought back for it takes it over (the
 *     registry owns the kernel watch from then on, adopt_claim()); its
 *     death later is an ordinary one.
 *   - fired: the target died while no agent ran, or its DOWNs were still
 *     queued in the previous agent when it went (the kernel watch stays
 *     FIRED until a DOWN is sent, monitor.c). Every monitor brought back for
 *     it, from however many clients, gets a DOWN with the recorded reason
 *     (adopt_death()), not noproc. The kernel entry stays ours until the
 *     end of the period, so that a crash of this agent loses nothing either.
 *
 * A watch taken over and then fired keeps its death here too, for monitors
 * of other clients that come back later. When the period ends, every kernel
 * watch still ours (never claimed, or fired) is deleted, and the table goes.
 *
 * One table entry per inherited watch, in one array with chained indexes
 * (built once, never resized): about 48 bytes each, for the period only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "reason.h"

#define ADOPT_NIL UINT32_MAX

struct adopted {
	struct reg_key key;
	uint64_t time_ns;     /* CLOCK_REALTIME of the death, when dead */
	int32_t value;        /* as in a DOWN */
	uint16_t reason;      /* 0: not known dead */
	uint8_t tcp_how, tcp_old_state;
	uint8_t core;         /* ZM_DOWN_CORE_DUMPED */
	bool owns_kernel;     /* the kernel entry is the adoption's to delete */
	bool has_owner;       /* owner holds who it was, as the kernel recorded it */
	struct reg_owner owner;
	uint32_t next;        /* chain in the bucket */
};

struct adopt {
	struct agent *a;
	struct loop_source timer;
	struct adopted *e;
	size_t n, cap;
	uint32_t *buckets;
	size_t nbuckets;      /* a power of two */
	size_t claimed, resumed_dead;
};

static uint64_t adopt_hash(const struct reg_key *k)
{
	uint64_t h = (uint64_t)k->kind * 0x9e3779b97f4a7c15ULL ^ k->a;

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= k->b + 0x94d049bb133111ebULL;
	h ^= h >> 29;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 32);
}

static struct adopted *adopt_find(const struct agent *a, const struct reg_key *key)
{
	const struct adopt *t = a->adopt;

	if (!t || !t->buckets)
		return NULL;
	for (uint32_t i = t->buckets[adopt_hash(key) & (t->nbuckets - 1)]; i != ADOPT_NIL;
	     i = t->e[i].next) {
		const struct reg_key *k = &t->e[i].key;

		if (k->kind == key->kind && k->a == key->a && k->b == key->b)
			return &t->e[i];
	}
	return NULL;
}

static struct adopted *adopt_push(struct adopt *t, const struct reg_key *key)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct adopted *e = realloc(t->e, cap * sizeof(*e));

		if (!e)
			return NULL;
		t->e = e;
		t->cap = cap;
	}
	t->e[t->n] = (struct adopted){ .key = *key, .owns_kernel = true, .next = ADOPT_NIL };
	return &t->e[t->n++];
}

/* The owner a FIRED watch recorded: a process's real and saved uid, a socket's uid twice. */
static void adopt_set_owner(struct adopted *e, uint32_t ruid, uint32_t suid)
{
	e->owner = (struct reg_owner){ .ruid = ruid, .suid = suid };
	e->has_owner = true;
}

static int adopt_on_proc(void *ctx, const struct zm_proc_key *key, const struct zm_proc_watch *w)
{
	struct adopt *t = ctx;
	struct reg_key k = { .kind = ZM_TARGET_PROCESS, .a = key->tgid, .b = key->start_ticks };
	struct adopted *e = adopt_push(t, &k);
	struct zm_down d = { 0 };

	if (!e)
		return -ENOMEM;
	if (w->state == ZM_WATCH_FIRED) {
		reason_from_wait_status(w->exit_code, &d);
		e->reason = d.reason;
		e->value = d.value;
		e->core = (uint8_t)(d.flags & ZM_DOWN_CORE_DUMPED);
		e->time_ns = monitor_boot_to_realtime(w->exit_ns);
		adopt_set_owner(e, w->ruid, w->suid);
	}
	return 0;
}

static int adopt_on_tcp(void *ctx, uint64_t cookie, const struct zm_tcp_watch *w)
{
	struct adopt *t = ctx;
	struct reg_key k = { .kind = ZM_TARGET_TCP, .a = cookie };
	struct adopted *e = adopt_push(t, &k);

	if (!e)
		return -ENOMEM;
	if (w->state == ZM_WATCH_FIRED) {
		e->reason = ZM_REASON_TCP_CLOSED;
		e->value = w->sk_err;
		e->tcp_how = w->how;
		e->tcp_old_state = w->old_state;
		e->time_ns = monitor_boot_to_realtime(w->close_ns);
		adopt_set_owner(e, w->uid, w->uid); /* a socket has one owner */
	}
	return 0;
}

static void adopt_on_timer(struct loop_source *src, uint32_t events)
{
	struct adopt *t = (struct adopt *)((char *)src - offsetof(struct adopt, timer));

	adopt_expire(t->a);
}

int adopt_load(struct agent *a)
{
	struct itimerspec its = { .it_value = { .tv_sec = a->opts.adopt_timeout_s } };
	size_t procs = 0, dead = 0;
	struct adopt *t;
	int r;

	if (!kwatch_inherited(a->kw))
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->a = a;
	t->timer.fd = -1;
	r = kwatch_foreach_proc(a->kw, adopt_on_proc, t);
	procs = t->n;
	if (r == 0)
		r = kwatch_foreach_tcp(a->kw, adopt_on_tcp, t);
	if (r < 0) {
		log_error("cannot read the watches a previous zenmond left: %s", strerror(-r));
		goto fail;
	}
	if (t->n == 0) {
		free(t->e);
		free(t);
		return 0;
	}
	for (t->nbuckets = 64; t->nbuckets < 2 * t->n; t->nbuckets *= 2)
		;
	t->buckets = malloc(t->nbuckets * sizeof(*t->buckets));
	if (!t->buckets) {
		r = -ENOMEM;
		goto fail;
	}
	memset(t->buckets, 0xff, t->nbuckets * sizeof(*t->buckets));
	for (size_t i = 0; i < t->n; i++) {
		uint32_t *b = &t->buckets[adopt_hash(&t->e[i].key) & (t->nbuckets - 1)];

		t->e[i].next = *b;
		*b = (uint32_t)i;
		dead += t->e[i].reason != 0;
	}
	/* A period of 0 ends at the loop's first pass (0 would disarm the timer). */
	if (its.it_value.tv_sec == 0)
		its.it_value.tv_nsec = 1;
	t->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	t->timer.fn = adopt_on_timer;
	if (t->timer.fd < 0 || timerfd_settime(t->timer.fd, 0, &its, NULL) < 0 ||
	    (r = loop_add(a->loop, &t->timer, EPOLLIN)) < 0) {
		r = t->timer.fd < 0 || r == 0 ? -errno : r;
		log_error("cannot set the adoption timer: %s", strerror(-r));
		goto fail;
	}
	a->adopt = t;
	log_info("adopted %zu process and %zu socket watches from the previous zenmond, %zu of them "
		 "down while no agent ran: clients that bring their monitors back within %u s get "
		 "their DOWNs; the rest are then removed",
		 procs, t->n - procs, dead, a->opts.adopt_timeout_s);
	return 0;
fail:
	if (t->timer.fd >= 0)
		close(t->timer.fd);
	free(t->buckets);
	free(t->e);
	free(t);
	return r;
}

void adopt_claim(struct agent *a, const struct reg_key *key)
{
	struct adopted *e = adopt_find(a, key);

	if (!e || !e->owns_kernel || e->reason)
		return;
	e->owns_kernel = false;
	a->adopt->claimed++;
}

bool adopt_death(struct agent *a, const struct reg_key *key, struct zm_down *ret,
		 struct reg_owner *ret_owner, bool *ret_has_owner)
{
	const struct adopted *e = adopt_find(a, key);

	if (!e || !e->reason)
		return false;
	*ret_owner = e->owner;
	*ret_has_owner = e->has_owner;
	*ret = (struct zm_down){
		.time_ns = e->time_ns,
		.kind = (uint16_t)key->kind,
		.reason = e->reason,
		.flags = e->core,
		.value = e->value,
		.start_ticks = key->kind == ZM_TARGET_TCP ? key->a : key->b,
		.pid = key->kind == ZM_TARGET_PROCESS ? (uint32_t)key->a : 0,
		.tcp_how = e->tcp_how,
		.tcp_old_state = e->tcp_old_state,
	};
	a->adopt->resumed_dead++;
	return true;
}

/* The owner the kernel recorded in e's FIRED watch, if the entry is there. */
static void adopt_read_owner(struct agent *a, struct adopted *e)
{
	struct zm_proc_watch pw;
	struct zm_tcp_watch tw;

	if (e->key.kind == ZM_TARGET_TCP) {
		if (kwatch_lookup_tcp(a->kw, e->key.a, &tw) == 0 && tw.state == ZM_WATCH_FIRED)
			adopt_set_owner(e, tw.uid, tw.uid);
	} else if (kwatch_lookup_proc(a->kw, (uint32_t)e->key.a, e->key.b, &pw) == 0 &&
		   pw.state == ZM_WATCH_FIRED) {
		adopt_set_owner(e, pw.ruid, pw.suid);
	}
}

bool adopt_note_death(struct agent *a, const struct reg_key *key, const struct zm_down *d)
{
	struct adopted *e = adopt_find(a, key);

	if (!e)
		return false;
	if (!e->reason && (d->reason == ZM_REASON_EXITED || d->reason == ZM_REASON_KILLED ||
			   d->reason == ZM_REASON_TCP_CLOSED)) {
		e->reason = d->reason;
		e->value = d->value;
		e->core = (uint8_t)(d->flags & ZM_DOWN_CORE_DUMPED);
		e->tcp_how = d->tcp_how;
		e->tcp_old_state = d->tcp_old_state;
		e->time_ns = d->time_ns;
		adopt_read_owner(a, e);
	}
	return e->owns_kernel;
}

bool adopt_owns(struct agent *a, const struct reg_key *key)
{
	const struct adopted *e = adopt_find(a, key);

	return e && e->owns_kernel;
}

size_t adopt_count(const struct agent *a)
{
	return a->adopt ? a->adopt->n : 0;
}

void adopt_expire(struct agent *a)
{
	struct adopt *t = a->adopt;
	size_t removed = 0, removed_dead = 0;

	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		const struct adopted *e = &t->e[i];

		if (!e->owns_kernel)
			continue;
		if (e->key.kind == ZM_TARGET_TCP)
			kwatch_del_tcp(a->kw, e->key.a);
		else
			kwatch_del_proc(a->kw, (uint32_t)e->key.a, e->key.b);
		removed++;
		removed_dead += e->reason != 0;
	}
	log_info("adoption period over: %zu inherited watches taken over by monitors brought back, "
		 "%zu DOWNs given from recorded deaths; removed %zu watches nobody claimed (%zu of "
		 "them down)",
		 t->claimed, t->resumed_dead, removed, removed_dead);
	adopt_free(a);
}

void adopt_free(struct agent *a)
{
	struct adopt *t = a->adopt;

	if (!t)
		return;
	if (t->timer.fd >= 0) {
		loop_del(a->loop, &t->timer);
		close(t->timer.fd);
	}
	free(t->buckets);
	free(t->e);
	free(t);
	a->adopt = NULL;
}
