/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * A set of nonzero 64-bit references: the client's active monitors. Open
 * addressing with linear probing and backward-shift deletion (no
 * tombstones), so lookups stay short however many adds and removes a
 * long-lived client does. Grows at 3/4 load, shrinks below 1/8; a million
 * refs cost 16 MiB at most. Internal to libzenmon.
 */
#ifndef LIBZENMON_REFSET_H
#define LIBZENMON_REFSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lzm_refset {
	uint64_t *slots;      /* 0 = empty */
	size_t cap;           /* a power of two, or 0 before the first add */
	size_t count;
};

/* Add ref (nonzero). 1 if added, 0 if it was there, -ENOMEM. */
int lzm_refset_add(struct lzm_refset *s, uint64_t ref);
/* Remove ref. true if it was there. Never fails. */
bool lzm_refset_remove(struct lzm_refset *s, uint64_t ref);
bool lzm_refset_contains(const struct lzm_refset *s, uint64_t ref);
/* Free the storage; the set is left empty and reusable. NULL-safe. */
void lzm_refset_free(struct lzm_refset *s);

#endif
