// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The fuzzer's kwatch: kwatch.h's contract kept in memory (see
 * fake_kwatch.h). Each map is a fixed array searched linearly: it holds
 * FAKE_KWATCH_MAX watches at most, which keeps every operation cheap and
 * lets a fuzzer reach the full-map errors (-E2BIG) that the real maps only
 * reach at a million watches.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_kwatch.h"

/*
 * Fewer exit-generation slots than the kernel's: pids sharing a slot only
 * cost the agent a look at /proc, and a fresh fake per input stays cheap.
 */
#define FAKE_EXIT_GEN_SLOTS 1024U

struct fake_proc {
	struct zm_proc_key key;
	struct zm_proc_watch w;
};

struct fake_tcp {
	uint64_t cookie;
	struct zm_tcp_watch w;
};

struct kwatch {
	kwatch_event_fn on_event;
	void *ctx;
	kwatch_tcp_fn on_tcp;
	void *tcp_ctx;
	struct fake_proc procs[FAKE_KWATCH_MAX];
	size_t nprocs;
	struct fake_tcp tcp[FAKE_KWATCH_MAX];
	size_t ntcp;
	uint32_t exit_gen[FAKE_EXIT_GEN_SLOTS];
	struct zm_kstats stats;
	struct kwatch_counters counters;
	uint64_t wakeup_interval_ns;
	bool inherited;          /* started with a previous agent's watches */
};

static uint64_t fake_boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int kwatch_open(const struct kwatch_opts *opts, kwatch_event_fn on_event, void *ctx,
		struct kwatch **ret)
{
	struct kwatch *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->on_event = on_event;
	k->ctx = ctx;
	k->wakeup_interval_ns = opts && opts->wakeup_interval_ns ? opts->wakeup_interval_ns :
				ZM_DEFAULT_WAKEUP_INTERVAL_NS;
	*ret = k;
	return 0;
}

int kwatch_fd(const struct kwatch *k)
{
	return -1;
}

/* Nothing is ever waiting in a ring: deaths come through fake_kwatch_fire_all(). */
int kwatch_drain(struct kwatch *k)
{
	return 0;
}

static struct fake_proc *fake_find_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks)
{
	for (size_t i = 0; i < k->nprocs; i++)
		if (k->procs[i].key.tgid == tgid && k->procs[i].key.start_ticks == start_ticks)
			return &k->procs[i];
	return NULL;
}

static struct fake_tcp *fake_find_tcp(struct kwatch *k, uint64_t cookie)
{
	for (size_t i = 0; i < k->ntcp; i++)
		if (k->tcp[i].cookie == cookie)
			return &k->tcp[i];
	return NULL;
}

int kwatch_add_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks)
{
	struct fake_proc *p;

	if (fake_find_proc(k, tgid, start_ticks))
		return -EEXIST;
	if (k->nprocs == FAKE_KWATCH_MAX)
		return -E2BIG;
	p = &k->procs[k->nprocs++];
	memset(p, 0, sizeof(*p));
	p->key.tgid = tgid;
	p->key.start_ticks = start_ticks;
	p->w.added_ns = fake_boottime_ns();
	p->w.armed_tag = zm_proc_tag(tgid, start_ticks);
	p->w.state = ZM_WATCH_ARMED;
	return 0;
}

/* The fake deletes at once: kwatch_flush_deletes() has nothing to send. */
void kwatch_del_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks)
{
	struct fake_proc *p = fake_find_proc(k, tgid, start_ticks);

	if (p)
		*p = k->procs[--k->nprocs];
}

void kwatch_flush_deletes(struct kwatch *k)
{
}

uint32_t kwatch_exit_gen(const struct kwatch *k, uint32_t tgid)
{
	return k->exit_gen[tgid % FAKE_EXIT_GEN_SLOTS];
}

int kwatch_lookup_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks,
		       struct zm_proc_watch *ret)
{
	struct fake_proc *p = fake_find_proc(k, tgid, start_ticks);

	if (!p)
		return -ENOENT;
	*ret = p->w;
	return 0;
}

long kwatch_count_procs(struct kwatch *k)
{
	return (long)k->nprocs;
}

void kwatch_set_tcp_handler(struct kwatch *k, kwatch_tcp_fn fn, void *ctx)
{
	k->on_tcp = fn;
	k->tcp_ctx = ctx;
}

int kwatch_add_tcp(struct kwatch *k, uint64_t cookie)
{
	struct fake_tcp *t;

	if (cookie == 0)
		return -EINVAL;
	if (fake_find_tcp(k, cookie))
		return -EEXIST;
	if (k->ntcp == FAKE_KWATCH_MAX)
		return -E2BIG;
	t = &k->tcp[k->ntcp++];
	memset(t, 0, sizeof(*t));
	t->cookie = cookie;
	t->w.added_ns = fake_boottime_ns();
	t->w.armed_tag = zm_tcp_tag(cookie);
	t->w.state = ZM_WATCH_ARMED;
	return 0;
}

void kwatch_del_tcp(struct kwatch *k, uint64_t cookie)
{
	struct fake_tcp *t = fake_find_tcp(k, cookie);

	if (t)
		*t = k->tcp[--k->ntcp];
}

int kwatch_lookup_tcp(struct kwatch *k, uint64_t cookie, struct zm_tcp_watch *ret)
{
	struct fake_tcp *t = fake_find_tcp(k, cookie);

	if (!t)
		return -ENOENT;
	*ret = t->w;
	return 0;
}

long kwatch_count_tcp(struct kwatch *k)
{
	return (long)k->ntcp;
}

int kwatch_read_stats(struct kwatch *k, struct zm_kstats *ret)
{
	*ret = k->stats;
	return 0;
}

/*
 * The callbacks delete the entries they handle (kwatch_del_*()), so the FIRED
 * keys are copied out before any callback runs, as the real scan reads the
 * map before handing entries over.
 */
int kwatch_scan_fired(struct kwatch *k)
{
	struct zm_event evs[FAKE_KWATCH_MAX];
	struct zm_tcp_event tevs[FAKE_KWATCH_MAX];
	size_t n = 0, nt = 0, news = 0, tnews = 0;

	for (size_t i = 0; i < k->nprocs; i++) {
		const struct fake_proc *p = &k->procs[i];

		if (p->w.state != ZM_WATCH_FIRED)
			continue;
		evs[n++] = (struct zm_event){
			.kind = ZM_EV_PROC_EXIT, .tgid = p->key.tgid, .start_ticks = p->key.start_ticks,
			.exit_ns = p->w.exit_ns, .exit_code = p->w.exit_code, .tid = p->key.tgid,
		};
	}
	for (size_t i = 0; k->on_tcp && i < k->ntcp; i++) {
		const struct fake_tcp *t = &k->tcp[i];

		if (t->w.state != ZM_WATCH_FIRED)
			continue;
		tevs[nt++] = (struct zm_tcp_event){
			.kind = ZM_EV_TCP_CLOSE, .cookie = t->cookie, .close_ns = t->w.close_ns,
			.how = t->w.how, .old_state = t->w.old_state, .sk_err = t->w.sk_err,
		};
	}
	for (size_t i = 0; i < n; i++)
		news += k->on_event(k->ctx, &evs[i]);
	for (size_t i = 0; i < nt; i++)
		tnews += k->on_tcp(k->tcp_ctx, &tevs[i]);
	k->counters.proc_recovered += news;
	k->counters.tcp_recovered += tnews;
	return (int)(news + tnews);
}

void kwatch_read_counters(const struct kwatch *k, struct kwatch_counters *ret)
{
	*ret = k->counters;
}

int kwatch_foreach_proc(struct kwatch *k,
			int (*fn)(void *ctx, const struct zm_proc_key *key, const struct zm_proc_watch *w),
			void *ctx)
{
	for (size_t i = 0; i < k->nprocs; i++) {
		int r = fn(ctx, &k->procs[i].key, &k->procs[i].w);

		if (r)
			return r;
	}
	return 0;
}

int kwatch_foreach_tcp(struct kwatch *k,
		       int (*fn)(void *ctx, uint64_t cookie, const struct zm_tcp_watch *w), void *ctx)
{
	for (size_t i = 0; i < k->ntcp; i++) {
		int r = fn(ctx, k->tcp[i].cookie, &k->tcp[i].w);

		if (r)
			return r;
	}
	return 0;
}

uint64_t kwatch_wakeup_interval_ns(const struct kwatch *k)
{
	return k->wakeup_interval_ns;
}

const char *kwatch_pin_dir(const struct kwatch *k)
{
	return "(fake)";
}

bool kwatch_inherited(const struct kwatch *k)
{
	return k->inherited;
}

void kwatch_close(struct kwatch *k)
{
	free(k);
}

void kwatch_discard(struct kwatch *k)
{
}

int kwatch_cleanup(const char *pin_dir)
{
	return 0;
}

void fake_kwatch_inherit(struct kwatch *k, uint32_t tgid, uint64_t start_ticks, bool fired,
			 uint32_t status)
{
	struct fake_proc *p;

	if (kwatch_add_proc(k, tgid, start_ticks) < 0)
		return;
	k->inherited = true;
	p = fake_find_proc(k, tgid, start_ticks);
	if (fired) {
		p->w.state = ZM_WATCH_FIRED;
		p->w.exit_code = status;
		p->w.exit_ns = fake_boottime_ns();
	}
}

void fake_kwatch_inherit_tcp(struct kwatch *k, uint64_t cookie, bool fired, uint8_t how)
{
	struct fake_tcp *t;

	if (kwatch_add_tcp(k, cookie) < 0)
		return;
	k->inherited = true;
	t = fake_find_tcp(k, cookie);
	if (fired) {
		t->w.state = ZM_WATCH_FIRED;
		t->w.how = how;
		t->w.old_state = 1;
		t->w.close_ns = fake_boottime_ns();
	}
}

int fake_kwatch_fire_all(struct kwatch *k, uint32_t status, uint8_t how)
{
	uint64_t now = fake_boottime_ns();

	for (size_t i = 0; i < k->nprocs; i++) {
		struct fake_proc *p = &k->procs[i];

		if (p->w.state != ZM_WATCH_ARMED)
			continue;
		p->w.state = ZM_WATCH_FIRED;
		p->w.exit_code = status;
		p->w.exit_ns = now;
		k->exit_gen[p->key.tgid % FAKE_EXIT_GEN_SLOTS]++;
		k->stats.exits++;
		k->stats.matched++;
	}
	for (size_t i = 0; i < k->ntcp; i++) {
		struct fake_tcp *t = &k->tcp[i];

		if (t->w.state == ZM_WATCH_FIRED)
			continue;
		t->w.state = ZM_WATCH_FIRED;
		t->w.how = how;
		t->w.old_state = 1; /* TCP_ESTABLISHED */
		t->w.sk_err = 0;
		t->w.close_ns = now;
		k->stats.tcp_closes++;
		k->stats.tcp_matched++;
	}
	/* As after a full ring buffer: the deaths are found in the maps. */
	return kwatch_scan_fired(k);
}
