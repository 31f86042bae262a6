/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The registry: who monitors what. Three indexes over one set of monitors:
 *   target -> its monitors        (a target dies: fire them all)
 *   (subscriber, ref) -> monitor  (demonitor)
 *   subscriber -> its monitors    (a subscriber leaves: drop them all)
 * One target entry per watched thing however many monitors it has, which is
 * what lets the agent keep one kernel watch per target. Every operation is
 * O(1) in the number of monitors elsewhere; firing a target is O(its
 * monitors). Pure data structure: no I/O, no kernel, no clock.
 */
#ifndef ZENMOND_REGISTRY_H
#define ZENMOND_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a target is, for any kind: a process is (kind=1, a=tgid, b=start ticks). */
struct reg_key {
	uint32_t kind;
	uint32_t _pad;
	uint64_t a;
	uint64_t b;
};

struct registry;
struct reg_sub;

struct registry_ops {
	/*
	 * A target lost its last monitor through registry_monitor_remove() or
	 * registry_sub_free(): remove its kernel watch. Not called by
	 * registry_target_fire() nor registry_free().
	 */
	void (*unwatch)(void *ctx, const struct reg_key *key);
};

/* NULL on -ENOMEM. ops may be NULL. */
struct registry *registry_new(const struct registry_ops *ops, void *ctx);
/* Free everything, subscribers included, calling no callback. NULL-safe. */
void registry_free(struct registry *r);

/*
 * Tests only: route every registry allocation through fn instead of calloc()
 * (NULL restores calloc), so that a test can inject -ENOMEM. Process-wide.
 */
void registry_set_calloc(void *(*fn)(size_t nmemb, size_t size));

/* A new subscriber; owner is the caller's (the client connection). NULL on -ENOMEM. */
struct reg_sub *registry_sub_new(struct registry *r, void *owner);
/* Drop every monitor of s (unwatch for each target left empty), then free s. NULL-safe. */
void registry_sub_free(struct registry *r, struct reg_sub *s);
void *registry_sub_owner(const struct reg_sub *s);
uint64_t registry_sub_id(const struct reg_sub *s);     /* 1, 2, 3, ... never reused */
size_t registry_sub_monitors(const struct reg_sub *s);

/*
 * Add the monitor (s, ref) on key. *ret_new_target is true when the target
 * had no monitor before: the caller must then arm the kernel watch and, if
 * it cannot, resolve the target with registry_target_fire().
 * 0; -EEXIST when s already has a monitor ref; -EINVAL for ref 0; -ENOMEM.
 */
int registry_monitor_add(struct registry *r, struct reg_sub *s, uint64_t ref,
			 const struct reg_key *key, bool *ret_new_target);

/* Remove the monitor (s, ref). 0 or -ENOENT. */
int registry_monitor_remove(struct registry *r, struct reg_sub *s, uint64_t ref);

/* Does s have a monitor ref? Fills *ret_key if so and ret_key != NULL. */
bool registry_monitor_find(const struct registry *r, const struct reg_sub *s, uint64_t ref,
			   struct reg_key *ret_key);

bool registry_target_exists(const struct registry *r, const struct reg_key *key);
size_t registry_target_monitors(const struct registry *r, const struct reg_key *key);

/* Called once per monitor of a dying target. Must not call into the registry. */
typedef void (*registry_fire_fn)(void *ctx, struct reg_sub *s, uint64_t ref,
				 const struct reg_key *key);

/*
 * The target died: call fn for each of its monitors in the order they were
 * added, then forget them and the target (no unwatch). Returns how many
 * monitors fired; 0 when the target is unknown (already fired: duplicates
 * from the kernel are harmless).
 */
size_t registry_target_fire(struct registry *r, const struct reg_key *key,
			    registry_fire_fn fn, void *ctx);

/* Visit every target (fn must not change the registry). */
void registry_foreach_target(const struct registry *r,
			     void (*fn)(void *ctx, const struct reg_key *key, size_t monitors),
			     void *ctx);

size_t registry_monitor_count(const struct registry *r);
size_t registry_target_count(const struct registry *r);
size_t registry_sub_count(const struct registry *r);

#endif
