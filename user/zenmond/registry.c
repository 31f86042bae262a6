// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The registry: see registry.h.
 *
 * Every monitor is one 64-byte allocation threaded on three structures at
 * once. While armed: its target's list (doubly linked, insertion order, so
 * that a target fires its monitors in the order they were added), its
 * subscriber's armed list (doubly linked, so that demonitor unlinks in O(1))
 * and a chain of the (subscriber id, ref) hash table. Firing moves it, in
 * place, to its subscriber's DOWN queue: the s_prev/s_next links leave the
 * armed list for the queue (also doubly linked: demonitor of a queued DOWN
 * is O(1) too), the target pointer becomes NULL (which is what marks the
 * monitor queued) and the target-list links, no longer needed, hold the
 * shared death and the enqueue time instead. It stays in the hash table until
 * popped, so its reference stays taken and demonitor still finds it. The
 * death itself (struct reg_down) is one allocation per fired target,
 * refcounted by its queued monitors and made before anything moves, so a
 * failed fire changes nothing. Targets live in a second hash table keyed
 * by struct reg_key. Both tables chain through the entries themselves and keep
 * a power-of-two bucket array that doubles when the load passes 1 and shrinks
 * (to a load near 1/2) when it falls below 1/8, moving entries a few buckets
 * per change (see struct htab): every operation is O(1), not just amortised,
 * and the arrays stay proportional to what is stored after a storm has come
 * and gone. A failed resize is not an error: the table keeps working, only
 * with longer chains.
 *
 * Clients choose their references and, to a degree, their targets, so the
 * hash is keyed with a per-registry random seed: without one, a client could
 * compute references that all land in one chain and make every insert O(n).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hugepage.h"
#include "registry.h"

#define TABLE_MIN_BUCKETS 64U
/* Per change while a table resizes: move up to this many non-empty buckets,
 * looking at no more than ten times as many. */
#define TABLE_STEP_MOVES 16U
#define TABLE_STEP_VISITS (10U * TABLE_STEP_MOVES)

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* A hash table entry: the chain link, embedded in the entry. */
struct hnode {
	struct hnode *next;
};

typedef uint64_t (*hnode_hash_fn)(const struct registry *r, const struct hnode *n);

/*
 * A chained hash table that resizes incrementally: entries are added to cur;
 * while old is set (a resize is under way), every change moves a few of its
 * buckets into cur, and a lookup also searches old's bucket if it has not
 * been moved yet. No single operation pays for a whole rehash, which with a
 * million entries would stall the agent's loop for a noticeable time.
 */
struct htab {
	struct hnode **cur;
	struct hnode **old;
	size_t ncur, nold;               /* bucket counts, powers of two */
	size_t moved;                    /* old[0, moved) are drained */
	size_t count;
	hnode_hash_fn hash;
};

/* A dead target's death, shared by its queued DOWNs. */
struct reg_down {
	size_t refs;                     /* queued monitors pointing here */
	struct reg_key key;              /* for registry_monitor_find() */
	struct zm_down down;             /* ref unused */
	struct hnode node;               /* in registry.downs, until released */
};

struct monitor {
	uint64_t ref;
	struct reg_sub *sub;
	struct target *target;           /* NULL once fired: queued */
	union {
		struct {                 /* armed: the target's monitors */
			struct monitor *t_prev, *t_next;
		};
		struct {                 /* queued */
			struct reg_down *down;
			uint64_t enq_ns;
		};
	};
	struct monitor *s_prev, *s_next; /* armed: sub->armed; queued: sub->queue */
	struct hnode node;               /* in registry.monitors */
};

/* A subscriber's list of monitors, linked through s_prev/s_next. */
struct mlist {
	struct monitor *head, *tail;
	size_t count;
};

struct target {
	struct reg_key key;
	struct monitor *head, *tail;
	size_t count;
	struct hnode node;               /* in registry.targets */
	struct reg_owner owner;          /* valid when has_owner */
	bool has_owner;
};

struct reg_sub {
	uint64_t id;
	void *owner;
	struct mlist armed;              /* armed monitors, in no useful order */
	struct mlist queue;              /* queued DOWNs, oldest first */
	struct reg_sub *prev, *next;     /* registry.subs, for registry_free() */
	struct reg_sub *fired_next;      /* during a fire: subs to tell ops->queued */
	size_t *held;                    /* shared count of held monitors, or NULL */
};

struct registry {
	struct registry_ops ops;
	void *ctx;
	uint64_t seed;
	uint64_t next_sub_id;
	struct reg_sub *subs;
	size_t nsubs;
	struct htab targets;             /* struct target by key */
	struct htab monitors;            /* struct monitor by (sub id, ref), armed and queued */
	struct htab downs;               /* struct reg_down by key, while DOWNs of it are queued */
	size_t nqueued;                  /* queued monitors among them */
	struct registry_counters counters;
};

_Static_assert(sizeof(void *) != 8 || sizeof(struct monitor) == 64,
	       "a monitor is one cache line on 64-bit hosts");

static void *(*reg_calloc)(size_t nmemb, size_t size) = calloc;

void registry_set_calloc(void *(*fn)(size_t nmemb, size_t size))
{
	reg_calloc = fn ? fn : calloc;
}

/* ---- hashing ------------------------------------------------------------ */

/* The splitmix64 finaliser: a bijection that spreads every input bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_key(const struct registry *r, const struct reg_key *k)
{
	uint64_t h = mix64(r->seed ^ k->kind);

	h = mix64(h ^ k->a);
	return mix64(h ^ k->b);
}

static uint64_t hash_ref(const struct registry *r, uint64_t sub_id, uint64_t ref)
{
	return mix64(mix64(r->seed ^ sub_id) ^ ref);
}

static uint64_t target_node_hash(const struct registry *r, const struct hnode *n)
{
	return hash_key(r, &container_of(n, struct target, node)->key);
}

static uint64_t monitor_node_hash(const struct registry *r, const struct hnode *n)
{
	const struct monitor *m = container_of(n, struct monitor, node);

	return hash_ref(r, m->sub->id, m->ref);
}

static uint64_t down_node_hash(const struct registry *r, const struct hnode *n);

static bool key_eq(const struct reg_key *x, const struct reg_key *y)
{
	return x->kind == y->kind && x->a == y->a && x->b == y->b;
}

static uint64_t registry_seed(const struct registry *r)
{
	uint64_t seed;

	/* No entropy at all is still a working table; the address adds a little. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = mix64((uint64_t)(uintptr_t)r ^ (uint64_t)(uintptr_t)&seed);
	return seed;
}

/* ---- incremental hash table --------------------------------------------- */

static int htab_init(struct htab *t, hnode_hash_fn hash)
{
	t->cur = reg_calloc(TABLE_MIN_BUCKETS, sizeof(*t->cur));
	if (!t->cur)
		return -ENOMEM;
	t->ncur = TABLE_MIN_BUCKETS;
	t->hash = hash;
	return 0;
}

/* Free the arrays, and every entry through free_entry. */
static void htab_destroy(struct htab *t, void (*free_entry)(struct hnode *n))
{
	for (size_t i = 0; i < t->ncur; i++) {
		for (struct hnode *n = t->cur[i], *next; n; n = next) {
			next = n->next;
			free_entry(n);
		}
	}
	for (size_t i = t->moved; i < t->nold; i++) {
		for (struct hnode *n = t->old[i], *next; n; n = next) {
			next = n->next;
			free_entry(n);
		}
	}
	free(t->cur);
	free(t->old);
}

/* The chain an entry of hash h may be in: which 0 is cur's, 1 old's (NULL
 * when there is no resize under way or that bucket has been moved). */
static struct hnode **htab_slot(const struct htab *t, uint64_t h, int which)
{
	size_t i;

	if (which == 0)
		return &t->cur[h & (t->ncur - 1)];
	if (!t->old)
		return NULL;
	i = h & (t->nold - 1);
	return i >= t->moved ? &t->old[i] : NULL;
}

/* Move some of old's buckets into cur; drop old once it is empty. */
static void htab_step(const struct registry *r, struct htab *t)
{
	unsigned moves = TABLE_STEP_MOVES, visits = TABLE_STEP_VISITS;

	if (!t->old)
		return;
	while (t->moved < t->nold && moves > 0 && visits-- > 0) {
		struct hnode *n = t->old[t->moved], *next;

		if (n)
			moves--;
		for (; n; n = next) {
			struct hnode **slot = &t->cur[t->hash(r, n) & (t->ncur - 1)];

			next = n->next;
			n->next = *slot;
			*slot = n;
		}
		t->old[t->moved++] = NULL;
	}
	if (t->moved == t->nold) {
		free(t->old);
		t->old = NULL;
		t->nold = 0;
		t->moved = 0;
	}
}

/* Begin moving to nbuckets. Without memory, carry on with longer chains. */
static void htab_start_resize(struct htab *t, size_t nbuckets)
{
	struct hnode **b = reg_calloc(nbuckets, sizeof(*b));

	if (!b)
		return;
	zm_advise_huge(b, nbuckets * sizeof(*b));
	t->old = t->cur;
	t->nold = t->ncur;
	t->moved = 0;
	t->cur = b;
	t->ncur = nbuckets;
}

static void htab_insert(const struct registry *r, struct htab *t, struct hnode *n, uint64_t h)
{
	struct hnode **slot;

	htab_step(r, t);
	if (!t->old && t->count >= t->ncur)
		htab_start_resize(t, t->ncur * 2);
	slot = htab_slot(t, h, 0);
	n->next = *slot;
	*slot = n;
	t->count++;
}

/* Unlink n from whichever chain holds it. false if none does. */
static bool htab_unlink(struct htab *t, struct hnode *n, uint64_t h)
{
	for (int which = 0; which < 2; which++) {
		struct hnode **pp = htab_slot(t, h, which);

		for (; pp && *pp; pp = &(*pp)->next) {
			if (*pp == n) {
				*pp = n->next;
				n->next = NULL;
				t->count--;
				return true;
			}
		}
	}
	return false;
}

static void htab_remove(const struct registry *r, struct htab *t, struct hnode *n, uint64_t h)
{
	if (!htab_unlink(t, n, h))
		abort(); /* our own bug: the registry is corrupt, stop before it spreads */
	htab_step(r, t);
	/* Shrink to a load near 1/2 once below 1/8: the arrays follow the
	 * contents down after a storm, and never flap between two sizes. */
	if (!t->old && t->ncur > TABLE_MIN_BUCKETS && t->count < t->ncur / 8) {
		size_t size = TABLE_MIN_BUCKETS;

		while (size < 2 * t->count)
			size *= 2;
		htab_start_resize(t, size);
	}
}

/* ---- the two tables ----------------------------------------------------- */

static struct target *target_find(const struct registry *r, const struct reg_key *key)
{
	uint64_t h = hash_key(r, key);

	for (int which = 0; which < 2; which++) {
		struct hnode **slot = htab_slot(&r->targets, h, which);

		for (struct hnode *n = slot ? *slot : NULL; n; n = n->next) {
			struct target *t = container_of(n, struct target, node);

			if (key_eq(&t->key, key))
				return t;
		}
	}
	return NULL;
}

static struct monitor *monitor_find(const struct registry *r, const struct reg_sub *s,
				    uint64_t ref)
{
	uint64_t h = hash_ref(r, s->id, ref);

	for (int which = 0; which < 2; which++) {
		struct hnode **slot = htab_slot(&r->monitors, h, which);

		for (struct hnode *n = slot ? *slot : NULL; n; n = n->next) {
			struct monitor *m = container_of(n, struct monitor, node);

			if (m->ref == ref && m->sub == s)
				return m;
		}
	}
	return NULL;
}

void registry_prefetch_ref(const struct registry *r, const struct reg_sub *s, uint64_t ref,
			   int stage)
{
	struct hnode **slot = htab_slot(&r->monitors, hash_ref(r, s->id, ref), 0);
	const struct hnode *n;

	if (stage == 0) {
		__builtin_prefetch(slot);
		return;
	}
	n = *slot;
	if (n) {
		/* monitor_find() compares ref and sub, at the start of the
		 * entry; the link is at its end, maybe in the next line. */
		__builtin_prefetch(container_of(n, struct monitor, node));
		__builtin_prefetch(n);
	}
}

static size_t kind_index(uint32_t kind)
{
	return kind < REG_KINDS ? kind : 0;
}

static void target_table_insert(struct registry *r, struct target *t)
{
	htab_insert(r, &r->targets, &t->node, hash_key(r, &t->key));
	r->counters.targets[kind_index(t->key.kind)]++;
}

static void target_table_remove(struct registry *r, struct target *t)
{
	htab_remove(r, &r->targets, &t->node, hash_key(r, &t->key));
	r->counters.targets[kind_index(t->key.kind)]--;
}

static void monitor_table_insert(struct registry *r, struct monitor *m)
{
	htab_insert(r, &r->monitors, &m->node, hash_ref(r, m->sub->id, m->ref));
}

static void monitor_table_remove(struct registry *r, struct monitor *m)
{
	htab_remove(r, &r->monitors, &m->node, hash_ref(r, m->sub->id, m->ref));
}

static void free_target_node(struct hnode *n)
{
	free(container_of(n, struct target, node));
}

static void free_down_node(struct hnode *n)
{
	free(container_of(n, struct reg_down, node));
}

static void free_monitor_node(struct hnode *n)
{
	free(container_of(n, struct monitor, node));
}

/* ---- lists -------------------------------------------------------------- */

static void target_list_append(struct target *t, struct monitor *m)
{
	m->t_next = NULL;
	m->t_prev = t->tail;
	if (t->tail)
		t->tail->t_next = m;
	else
		t->head = m;
	t->tail = m;
	t->count++;
}

static void target_list_unlink(struct target *t, struct monitor *m)
{
	if (m->t_prev)
		m->t_prev->t_next = m->t_next;
	else
		t->head = m->t_next;
	if (m->t_next)
		m->t_next->t_prev = m->t_prev;
	else
		t->tail = m->t_prev;
	m->t_prev = m->t_next = NULL;
	t->count--;
}

static void mlist_append(struct mlist *l, struct monitor *m)
{
	m->s_next = NULL;
	m->s_prev = l->tail;
	if (l->tail)
		l->tail->s_next = m;
	else
		l->head = m;
	l->tail = m;
	l->count++;
}

static void mlist_unlink(struct mlist *l, struct monitor *m)
{
	if (m->s_prev)
		m->s_prev->s_next = m->s_next;
	else
		l->head = m->s_next;
	if (m->s_next)
		m->s_next->s_prev = m->s_prev;
	else
		l->tail = m->s_prev;
	m->s_prev = m->s_next = NULL;
	l->count--;
}

static bool monitor_queued(const struct monitor *m)
{
	return m->target == NULL;
}

static uint64_t down_node_hash(const struct registry *r, const struct hnode *n)
{
	return hash_key(r, &container_of(n, struct reg_down, node)->key);
}

/* Drop one queued DOWN's hold on its death; the last one releases it. */
static void down_put(struct registry *r, struct reg_down *d)
{
	struct reg_key key;

	if (--d->refs > 0)
		return;
	key = d->key;
	htab_remove(r, &r->downs, &d->node, hash_key(r, &key));
	free(d);
	if (r->ops.released)
		r->ops.released(r->ctx, &key);
}

/*
 * Forget the armed monitor m everywhere, free it, and, when that empties its
 * target, forget and free the target too and tell ops->unwatch (after the
 * registry is consistent again, so the callback sees the target gone).
 */
static void monitor_drop(struct registry *r, struct monitor *m)
{
	struct target *t = m->target;

	monitor_table_remove(r, m);
	mlist_unlink(&m->sub->armed, m);
	target_list_unlink(t, m);
	if (m->sub->held)
		(*m->sub->held)--;
	free(m);
	if (t->count == 0) {
		struct reg_key key = t->key;

		target_table_remove(r, t);
		free(t);
		if (r->ops.unwatch)
			r->ops.unwatch(r->ctx, &key);
	}
}

/* Forget the queued monitor m everywhere and free it, and its death if no
 * other queued DOWN shares it. */
static void queued_drop(struct registry *r, struct monitor *m)
{
	monitor_table_remove(r, m);
	mlist_unlink(&m->sub->queue, m);
	r->nqueued--;
	if (m->sub->held)
		(*m->sub->held)--;
	down_put(r, m->down);
	free(m);
}

/* ---- public ------------------------------------------------------------- */

struct registry *registry_new(const struct registry_ops *ops, void *ctx)
{
	struct registry *r = reg_calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (ops)
		r->ops = *ops;
	r->ctx = ctx;
	r->seed = registry_seed(r);
	r->next_sub_id = 1;
	if (htab_init(&r->targets, target_node_hash) < 0 ||
	    htab_init(&r->monitors, monitor_node_hash) < 0 ||
	    htab_init(&r->downs, down_node_hash) < 0) {
		free(r->targets.cur);
		free(r->monitors.cur);
		free(r);
		return NULL;
	}
	return r;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	while (r->subs) {
		struct reg_sub *s = r->subs;

		/* The monitors and the deaths go with their tables below. */
		r->subs = s->next;
		free(s);
	}
	htab_destroy(&r->downs, free_down_node);
	htab_destroy(&r->monitors, free_monitor_node);
	htab_destroy(&r->targets, free_target_node);
	free(r);
}

struct reg_sub *registry_sub_new(struct registry *r, void *owner)
{
	struct reg_sub *s = reg_calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->id = r->next_sub_id++;
	s->owner = owner;
	s->next = r->subs;
	if (r->subs)
		r->subs->prev = s;
	r->subs = s;
	r->nsubs++;
	return s;
}

void registry_sub_free(struct registry *r, struct reg_sub *s)
{
	if (!s)
		return;
	r->counters.dropped_armed += s->armed.count;
	r->counters.dropped_queued += s->queue.count;
	/* Take the head each time: unwatch may not touch s, but this stays
	 * correct whatever it does to the other lists. */
	while (s->armed.head)
		monitor_drop(r, s->armed.head);
	while (s->queue.head)
		queued_drop(r, s->queue.head);
	if (s->prev)
		s->prev->next = s->next;
	else
		r->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	r->nsubs--;
	free(s);
}

void *registry_sub_owner(const struct reg_sub *s)
{
	return s->owner;
}

uint64_t registry_sub_id(const struct reg_sub *s)
{
	return s->id;
}

size_t registry_sub_monitors(const struct reg_sub *s)
{
	return s->armed.count;
}

size_t registry_sub_queued(const struct reg_sub *s)
{
	return s->queue.count;
}

void registry_sub_set_counter(struct reg_sub *s, size_t *held)
{
	s->held = held;
}

size_t registry_sub_held(const struct reg_sub *s)
{
	return s->armed.count + s->queue.count;
}

uint64_t registry_sub_oldest_ns(const struct reg_sub *s)
{
	return s->queue.head ? s->queue.head->enq_ns : 0;
}

size_t registry_sub_pop(struct registry *r, struct reg_sub *s, struct zm_down *out, size_t max)
{
	size_t n = 0;

	while (n < max && s->queue.head) {
		struct monitor *m = s->queue.head;

		out[n] = m->down->down;
		out[n].ref = m->ref;
		n++;
		queued_drop(r, m);
	}
	r->counters.popped += n;
	return n;
}

int registry_monitor_add(struct registry *r, struct reg_sub *s, uint64_t ref,
			 const struct reg_key *key, bool *ret_new_target)
{
	struct target *t;
	struct monitor *m;
	bool is_new = false;

	if (ref == 0)
		return -EINVAL;
	if (monitor_find(r, s, ref))
		return -EEXIST;

	/* Allocate everything first, so that a failure changes nothing. */
	m = reg_calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	t = target_find(r, key);
	if (!t) {
		t = reg_calloc(1, sizeof(*t));
		if (!t) {
			free(m);
			return -ENOMEM;
		}
		t->key = *key;
		t->key._pad = 0;
		target_table_insert(r, t);
		is_new = true;
	}

	m->ref = ref;
	m->sub = s;
	m->target = t;
	target_list_append(t, m);
	mlist_append(&s->armed, m);
	monitor_table_insert(r, m);
	if (s->held)
		(*s->held)++;
	r->counters.added[kind_index(key->kind)]++;
	if (ret_new_target)
		*ret_new_target = is_new;
	return 0;
}

int registry_monitor_remove(struct registry *r, struct reg_sub *s, uint64_t ref)
{
	struct monitor *m = monitor_find(r, s, ref);

	if (!m)
		return -ENOENT;
	if (monitor_queued(m)) {
		queued_drop(r, m);
		r->counters.removed_queued++;
		return 1;
	}
	monitor_drop(r, m);
	r->counters.removed_armed++;
	return 0;
}

bool registry_monitor_find(const struct registry *r, const struct reg_sub *s, uint64_t ref,
			   struct reg_key *ret_key)
{
	const struct monitor *m = monitor_find(r, s, ref);

	if (!m)
		return false;
	if (ret_key)
		*ret_key = monitor_queued(m) ? m->down->key : m->target->key;
	return true;
}

void registry_target_set_owner(struct registry *r, const struct reg_key *key,
			       const struct reg_owner *owner)
{
	struct target *t = target_find(r, key);

	if (t) {
		t->owner = *owner;
		t->has_owner = true;
	}
}

int registry_target_owner(const struct registry *r, const struct reg_key *key,
			  struct reg_owner *ret)
{
	const struct target *t = target_find(r, key);

	if (!t || !t->has_owner)
		return -ENOENT;
	*ret = t->owner;
	return 0;
}

bool registry_target_exists(const struct registry *r, const struct reg_key *key)
{
	return target_find(r, key) != NULL;
}

size_t registry_target_monitors(const struct registry *r, const struct reg_key *key)
{
	const struct target *t = target_find(r, key);

	return t ? t->count : 0;
}

ssize_t registry_target_fire(struct registry *r, const struct reg_key *key,
			     const struct zm_down *down, uint64_t now_ns)
{
	struct target *t = target_find(r, key);
	struct reg_down *d;
	struct reg_sub *fired = NULL;
	size_t n;

	if (!t)
		return 0;
	/* The only allocation, before anything moves. */
	d = reg_calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->key = t->key;
	d->down = *down;
	d->down.ref = 0;
	n = d->refs = t->count;

	target_table_remove(r, t);
	for (struct monitor *m = t->head, *next; m; m = next) {
		struct reg_sub *s = m->sub;

		next = m->t_next;
		mlist_unlink(&s->armed, m);
		m->target = NULL;
		m->down = d;
		m->enq_ns = now_ns;
		if (s->queue.count == 0) {
			s->fired_next = fired;
			fired = s;
		}
		mlist_append(&s->queue, m);
	}
	r->nqueued += n;
	free(t);
	if (n == 0)
		free(d);                 /* a target never exists without monitors */
	else
		htab_insert(r, &r->downs, &d->node, hash_key(r, &d->key));

	/* Tell the dispatcher only now that the registry is consistent. */
	while (fired) {
		struct reg_sub *s = fired;

		fired = s->fired_next;
		s->fired_next = NULL;
		if (r->ops.queued)
			r->ops.queued(r->ctx, s);
	}
	return (ssize_t)n;
}

bool registry_down_pending(const struct registry *r, const struct reg_key *key)
{
	uint64_t h = hash_key(r, key);

	for (int which = 0; which < 2; which++) {
		struct hnode **slot = htab_slot(&r->downs, h, which);

		for (struct hnode *n = slot ? *slot : NULL; n; n = n->next)
			if (key_eq(&container_of(n, struct reg_down, node)->key, key))
				return true;
	}
	return false;
}

static void visit_chain(const struct hnode *n,
			void (*fn)(void *ctx, const struct reg_key *key, size_t monitors), void *ctx)
{
	for (; n; n = n->next) {
		const struct target *t = container_of(n, struct target, node);

		fn(ctx, &t->key, t->count);
	}
}

void registry_foreach_target(const struct registry *r,
			     void (*fn)(void *ctx, const struct reg_key *key, size_t monitors),
			     void *ctx)
{
	const struct htab *tt = &r->targets;

	for (size_t i = 0; i < tt->ncur; i++)
		visit_chain(tt->cur[i], fn, ctx);
	for (size_t i = tt->moved; i < tt->nold; i++)
		visit_chain(tt->old[i], fn, ctx);
}

void registry_target_foreach_monitor(const struct registry *r, const struct reg_key *key,
				     void (*fn)(void *ctx, const struct reg_sub *s, uint64_t ref),
				     void *ctx)
{
	const struct target *t = target_find(r, key);

	for (const struct monitor *m = t ? t->head : NULL; m; m = m->t_next)
		fn(ctx, m->sub, m->ref);
}

const struct registry_counters *registry_counters(const struct registry *r)
{
	return &r->counters;
}

size_t registry_monitor_count(const struct registry *r)
{
	return r->monitors.count - r->nqueued;
}

size_t registry_queued_count(const struct registry *r)
{
	return r->nqueued;
}

size_t registry_queued_max(const struct registry *r)
{
	size_t max = 0;

	for (const struct reg_sub *s = r->subs; s; s = s->next)
		if (s->queue.count > max)
			max = s->queue.count;
	return max;
}

size_t registry_target_count(const struct registry *r)
{
	return r->targets.count;
}

size_t registry_sub_count(const struct registry *r)
{
	return r->nsubs;
}
