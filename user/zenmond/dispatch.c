// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* Round-robin, paced dispatch of DOWN batches: see dispatch.h. */
#include <stddef.h>

#include "dispatch.h"

/* ---- the ring: subscribers with something to do now ----------------------- */

/* Link s just before the cursor: last in the current round. */
static void ring_link(struct dispatcher *d, struct dsub *s)
{
	struct dsub *c = d->cursor;

	if (!c) {
		s->next = s->prev = s;
		d->cursor = s;
	} else {
		s->next = c;
		s->prev = c->prev;
		c->prev->next = s;
		c->prev = s;
	}
	s->linked = true;
}

static void ring_unlink(struct dispatcher *d, struct dsub *s)
{
	if (s->next == s) {
		d->cursor = NULL;
	} else {
		s->prev->next = s->next;
		s->next->prev = s->prev;
		if (d->cursor == s)
			d->cursor = s->next;
	}
	s->next = s->prev = NULL;
	s->linked = false;
}

/*
 * ---- the heap: subscribers waiting for a time ------------------------------
 *
 * An intrusive pairing heap on wake_ns: no allocation, O(1) insert, O(log n)
 * amortised removal of the minimum or of any node. h_prev is the left
 * sibling, or the parent for a leftmost child, or NULL for the root.
 */

/*
 * Whether a wakes before b. Ties go to the first inserted, so subscribers
 * waiting for the same thing (the global bucket holding a batch) take turns
 * in the order they started to wait: round-robin, not whoever the heap's
 * shape favours.
 */
static bool heap_before(const struct dsub *a, const struct dsub *b)
{
	if (a->wake_ns != b->wake_ns)
		return a->wake_ns < b->wake_ns;
	return a->h_seq < b->h_seq;
}

/* Two detached roots into one. */
static struct dsub *heap_meld(struct dsub *a, struct dsub *b)
{
	struct dsub *t;

	if (!a)
		return b;
	if (!b)
		return a;
	if (heap_before(b, a)) {
		t = a;
		a = b;
		b = t;
	}
	b->h_prev = a;
	b->h_next = a->h_child;
	if (a->h_child)
		a->h_child->h_prev = b;
	a->h_child = b;
	a->h_prev = a->h_next = NULL;
	return a;
}

/* A sibling list into one heap: meld pairs left to right, then the pairs
 * right to left. Iterative, however many siblings. */
static struct dsub *heap_merge_pairs(struct dsub *first)
{
	struct dsub *pairs = NULL, *root = NULL;

	while (first) {
		struct dsub *a = first, *b = a->h_next, *m;

		first = b ? b->h_next : NULL;
		a->h_prev = a->h_next = NULL;
		if (b)
			b->h_prev = b->h_next = NULL;
		m = heap_meld(a, b);
		m->h_next = pairs;              /* a stack: last pair on top */
		pairs = m;
	}
	while (pairs) {
		struct dsub *m = pairs;

		pairs = m->h_next;
		m->h_next = NULL;
		root = heap_meld(root, m);
	}
	return root;
}

static void heap_insert(struct dispatcher *d, struct dsub *s, uint64_t wake_ns)
{
	s->wake_ns = wake_ns;
	s->h_seq = d->heap_seq++;
	s->h_child = s->h_next = s->h_prev = NULL;
	s->heaped = true;
	d->heap = heap_meld(d->heap, s);
}

static void heap_remove(struct dispatcher *d, struct dsub *s)
{
	struct dsub *rest = heap_merge_pairs(s->h_child);

	if (s == d->heap) {
		d->heap = rest;
	} else {
		if (s->h_prev->h_child == s)
			s->h_prev->h_child = s->h_next;   /* leftmost: h_prev is the parent */
		else
			s->h_prev->h_next = s->h_next;
		if (s->h_next)
			s->h_next->h_prev = s->h_prev;
		d->heap = heap_meld(d->heap, rest);
	}
	s->h_child = s->h_next = s->h_prev = NULL;
	s->heaped = false;
	s->wake_ns = UINT64_MAX;
}

/* ---- the dispatcher -------------------------------------------------------- */

void dispatch_init(struct dispatcher *d, const struct dispatch_ops *ops,
		   uint64_t global_rate, uint64_t global_burst, uint64_t now_ns)
{
	d->ops = ops;
	d->cursor = NULL;
	d->heap = NULL;
	d->heap_seq = 0;
	d->global_limited = global_rate != 0;
	tb_init(&d->global, global_rate, global_burst, now_ns);
}

void dispatch_set_global(struct dispatcher *d, uint64_t global_rate, uint64_t global_burst,
			 uint64_t now_ns)
{
	d->global_limited = global_rate != 0;
	tb_init(&d->global, global_rate, global_burst, now_ns);
}

void dispatch_add(struct dispatcher *d, struct dsub *s, const struct pace_limits *lim,
		  uint64_t now_ns)
{
	(void)d;
	s->lim = *lim;
	pace_init(&s->ps, lim, now_ns);
	s->next = s->prev = NULL;
	s->linked = false;
	s->wake_ns = UINT64_MAX;
	s->h_seq = 0;
	s->heaped = false;
	s->h_child = s->h_next = s->h_prev = NULL;
}

void dispatch_set_limits(struct dispatcher *d, struct dsub *s, const struct pace_limits *lim,
			 uint64_t now_ns)
{
	(void)d;
	s->lim = *lim;
	tb_init(&s->ps.tb, lim->rate, lim->burst, now_ns);
}

void dispatch_remove(struct dispatcher *d, struct dsub *s)
{
	if (s->linked)
		ring_unlink(d, s);
	if (s->heaped)
		heap_remove(d, s);
}

void dispatch_wake(struct dispatcher *d, struct dsub *s)
{
	if (s->linked)
		return;
	if (s->heaped)
		heap_remove(d, s);
	ring_link(d, s);
}

/* One turn for s, the cursor. Returns whether a batch was sent. Moves the
 * cursor on either way. */
static bool dispatch_visit(struct dispatcher *d, struct dsub *s, uint64_t now_ns)
{
	const struct dispatch_ops *ops = d->ops;
	struct token_bucket *global = d->global_limited ? &d->global : NULL;
	uint64_t queued, wake;
	uint32_t n, sent;

	if (!ops->writable(s)) {
		ring_unlink(d, s);
		return false;
	}
	queued = ops->queued(s);
	if (queued == 0) {
		ring_unlink(d, s);
		return false;
	}
	n = pace_decide(&s->ps, &s->lim, global, queued, ops->oldest_ns(s), now_ns, &wake);
	if (n == 0) {
		ring_unlink(d, s);
		if (wake != UINT64_MAX)
			heap_insert(d, s, wake);
		return false;
	}
	sent = ops->send(s, n);
	if (sent > n)
		sent = n;                   /* a broken send(); never spend more than decided */
	pace_sent(&s->ps, global, sent, now_ns);
	if (sent == 0)
		ring_unlink(d, s);          /* socket full: back on dispatch_wake() */
	else
		d->cursor = s->next;
	return true;
}

uint64_t dispatch_run(struct dispatcher *d, uint64_t now_ns, unsigned max_batches)
{
	unsigned batches = 0;

	while (d->heap && d->heap->wake_ns <= now_ns) {
		struct dsub *s = d->heap;

		heap_remove(d, s);
		ring_link(d, s);
	}
	while (d->cursor && batches < max_batches) {
		if (dispatch_visit(d, d->cursor, now_ns))
			batches++;
	}
	if (d->cursor)
		return now_ns;
	return d->heap ? d->heap->wake_ns : UINT64_MAX;
}
