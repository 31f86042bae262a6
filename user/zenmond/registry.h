/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The registry: who monitors what, and which DOWNs wait to be sent. Four
 * structures over one set of monitors:
 *   target -> its armed monitors   (a target dies: fire them all)
 *   (subscriber, ref) -> monitor   (demonitor, armed or queued)
 *   subscriber -> armed monitors   (a subscriber leaves: drop them all)
 *   subscriber -> DOWN queue       (the dispatcher sends them, oldest first)
 * A monitor is armed until its target dies; it is then a queued DOWN in its
 * subscriber's queue until the dispatcher pops it, and only then is it
 * forgotten and its reference free again. Firing moves each monitor from its
 * target to its subscriber's queue: no allocation per DOWN (one per dead
 * target, for the death they share), so the queued DOWNs of a subscriber
 * never cost more memory than the monitors it held. One target entry per
 * watched thing however many monitors it has, which is what lets the agent
 * keep one kernel watch per target. Every operation is O(1) in the number of
 * monitors elsewhere; firing a target is O(its monitors), popping O(popped).
 * Pure data structure: no I/O, no kernel, no clock (callers pass the time).
 */
#ifndef ZENMOND_REGISTRY_H
#define ZENMOND_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zenmon/proto.h"

/* What a target is, for any kind: a process is (kind=1, a=tgid, b=start ticks). */
struct reg_key {
	uint32_t kind;
	uint32_t _pad;
	uint64_t a;
	uint64_t b;
};

struct registry;
struct reg_sub;

/*
 * Callbacks run once the registry is consistent again. They may read the
 * registry (counts, finds, registry_sub_queued()...) but must not change it:
 * no add, remove, fire, pop, sub_new or sub_free from inside one.
 */
struct registry_ops {
	/*
	 * A target lost its last monitor through registry_monitor_remove() or
	 * registry_sub_free(): remove its kernel watch. Not called by
	 * registry_target_fire() nor registry_free(). May be NULL.
	 */
	void (*unwatch)(void *ctx, const struct reg_key *key);
	/*
	 * registry_target_fire() made s's DOWN queue go from empty to non-empty:
	 * the dispatcher should look at s. Once per such transition per
	 * subscriber, after the whole fire. May be NULL.
	 */
	void (*queued)(void *ctx, struct reg_sub *s);
	/*
	 * The last queued DOWN of a fired target left the registry (popped,
	 * taken back by a demonitor, or dropped with its subscriber): what the
	 * caller kept for that death may go now (the kernel's FIRED watch,
	 * which is what lets a restarted agent give a monitor brought back
	 * the real reason of a DOWN that was never sent). Not called by
	 * registry_free(). May be NULL.
	 */
	void (*released)(void *ctx, const struct reg_key *key);
};

/* NULL on -ENOMEM. ops may be NULL. */
struct registry *registry_new(const struct registry_ops *ops, void *ctx);
/* Free everything, subscribers and queued DOWNs included, calling no callback. NULL-safe. */
void registry_free(struct registry *r);

/*
 * Tests only: route every registry allocation through fn instead of calloc()
 * (NULL restores calloc), so that a test can inject -ENOMEM. Process-wide.
 */
void registry_set_calloc(void *(*fn)(size_t nmemb, size_t size));

/* A new subscriber; owner is the caller's (the client connection). NULL on -ENOMEM. */
struct reg_sub *registry_sub_new(struct registry *r, void *owner);
/*
 * Drop every armed monitor of s (unwatch for each target left empty) and every
 * queued DOWN of s (never sent), then free s. NULL-safe.
 */
void registry_sub_free(struct registry *r, struct reg_sub *s);
void *registry_sub_owner(const struct reg_sub *s);
uint64_t registry_sub_id(const struct reg_sub *s);     /* 1, 2, 3, ... never reused */
/* Armed monitors of s (its queued DOWNs not included). */
size_t registry_sub_monitors(const struct reg_sub *s);
/* DOWNs queued for s, not yet popped. */
size_t registry_sub_queued(const struct reg_sub *s);
/* Enqueue time (the now_ns given to the fire) of the oldest queued DOWN of s; 0 if none. */
uint64_t registry_sub_oldest_ns(const struct reg_sub *s);

/*
 * Pop up to max DOWNs from the head of s's queue (oldest first) into out[]:
 * out[i] is the death its target's fire recorded, with .ref set to that
 * monitor's reference. The monitors are forgotten: their references are free
 * again. Returns how many were popped (0 when the queue is empty or max is 0).
 * O(the count returned). Never fails.
 */
size_t registry_sub_pop(struct registry *r, struct reg_sub *s, struct zm_down *out, size_t max);

/*
 * Add the monitor (s, ref) on key. *ret_new_target is true when the target
 * had no monitor before: the caller must then arm the kernel watch and, if
 * it cannot, resolve the target with registry_target_fire().
 * 0; -EEXIST when s already has a monitor ref, armed or queued (a reference
 * stays in use until its DOWN is popped); -EINVAL for ref 0; -ENOMEM (nothing
 * changed).
 */
int registry_monitor_add(struct registry *r, struct reg_sub *s, uint64_t ref,
			 const struct reg_key *key, bool *ret_new_target);

/*
 * Remove the monitor (s, ref), armed or queued. 0 when it was armed (unwatch
 * if that left its target without monitors); 1 when its DOWN was queued and
 * unsent (it now never will be: the exact part of demonitor-with-flush);
 * -ENOENT when s has no monitor ref (never had one, or its DOWN was popped).
 */
int registry_monitor_remove(struct registry *r, struct reg_sub *s, uint64_t ref);

/*
 * Does s hold a monitor ref, armed or queued? Fills *ret_key with its
 * target's key if so and ret_key != NULL.
 */
bool registry_monitor_find(const struct registry *r, const struct reg_sub *s, uint64_t ref,
			   struct reg_key *ret_key);

/*
 * A hint, for a request about (s, ref) a few requests from now: start
 * loading the memory its lookup will touch, so that the cache misses of a
 * million-monitor table overlap with the work on the requests before it.
 * Stage 0 (call it first, further ahead) loads the table's bucket; stage 1
 * (nearer) the first entry of its chain, read from that bucket. Changes
 * nothing; any (s, ref) is fine.
 */
void registry_prefetch_ref(const struct registry *r, const struct reg_sub *s, uint64_t ref,
			   int stage);

/*
 * Share one count among subscribers: the registry keeps *held equal to the
 * monitors (armed and queued) of every subscriber given that counter, as
 * they come and go, so a per-uid quota costs no walk. NULL: none. Set it
 * while s holds no monitor; the counter must outlive s's monitors.
 */
void registry_sub_set_counter(struct reg_sub *s, size_t *held);
/* Monitors s holds: armed ones and DOWNs queued, not yet popped. */
size_t registry_sub_held(const struct reg_sub *s);

/*
 * Who a target belongs to, for the agent's access policy: the real and
 * saved uid of a process (kill(2) allows a sender whose uid is either), the
 * owner of a socket twice. Kept on the target, so that it is looked up in
 * /proc or sock_diag once per target, not once per monitor.
 */
struct reg_owner {
	uint32_t ruid;
	uint32_t suid;
};

/* Record the owner of key's target, if it exists. */
void registry_target_set_owner(struct registry *r, const struct reg_key *key,
			       const struct reg_owner *owner);
/* 0 and *ret; -ENOENT when there is no such target or no owner recorded on it. */
int registry_target_owner(const struct registry *r, const struct reg_key *key,
			  struct reg_owner *ret);

/* Targets with armed monitors only: a fired target is gone from here. */
bool registry_target_exists(const struct registry *r, const struct reg_key *key);
size_t registry_target_monitors(const struct registry *r, const struct reg_key *key);

/*
 * The target died. Move each of its monitors, in the order they were added,
 * to the tail of its subscriber's DOWN queue, stamped with the enqueue time
 * now_ns, all sharing one copy of *down (its ref field is ignored; pop sets
 * it), and forget the target (no unwatch: the caller knows it is dead). Then
 * call ops->queued for each subscriber whose queue was empty before.
 * Returns how many monitors fired; 0 when the target is unknown (already
 * fired: duplicates from the kernel are harmless); -ENOMEM when the one
 * allocation this needs failed: nothing changed, the caller retries later.
 */
ssize_t registry_target_fire(struct registry *r, const struct reg_key *key,
			     const struct zm_down *down, uint64_t now_ns);

/* Has a fired target of this key DOWNs still queued (released not yet called)? */
bool registry_down_pending(const struct registry *r, const struct reg_key *key);

/* Visit every target with armed monitors (fn must not change the registry). */
void registry_foreach_target(const struct registry *r,
			     void (*fn)(void *ctx, const struct reg_key *key, size_t monitors),
			     void *ctx);

/*
 * Visit every armed monitor of the target key, in the order they were added
 * (fn must not change the registry). Nothing when there is no such target.
 */
void registry_target_foreach_monitor(const struct registry *r, const struct reg_key *key,
				     void (*fn)(void *ctx, const struct reg_sub *s, uint64_t ref),
				     void *ctx);

/* Target kinds counted apart; another kind counts as 0. */
#define REG_KINDS 3

/*
 * What the registry has done since it was made, for the agent's metrics.
 * Every monitor added leaves by exactly one of the removal counters, so
 * added - (popped + removed_armed + removed_queued + dropped_armed +
 * dropped_queued) is the monitors it holds now (armed and queued).
 */
struct registry_counters {
	uint64_t added[REG_KINDS];   /* registry_monitor_add(), by key kind */
	uint64_t popped;             /* DOWNs popped (sent) */
	uint64_t removed_armed;      /* registry_monitor_remove() of an armed monitor */
	uint64_t removed_queued;     /* registry_monitor_remove() of a queued DOWN */
	uint64_t dropped_armed;      /* armed monitors of a registry_sub_free()d subscriber */
	uint64_t dropped_queued;     /* queued DOWNs of a registry_sub_free()d subscriber */
	size_t targets[REG_KINDS];   /* targets held now, by kind */
};

const struct registry_counters *registry_counters(const struct registry *r);

size_t registry_monitor_count(const struct registry *r);  /* armed monitors, all subscribers */
size_t registry_queued_count(const struct registry *r);   /* queued DOWNs, all subscribers */
size_t registry_queued_max(const struct registry *r);     /* the longest one queue (O(subscribers)) */
size_t registry_target_count(const struct registry *r);
size_t registry_sub_count(const struct registry *r);

#endif
