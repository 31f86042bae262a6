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

/*
 * What the library knows of an active monitor's target, to bring it back
 * after the agent restarts (resume.c). Kept beside each reference when the
 * set was made with values (lzm_refset_use_vals()).
 */
struct lzm_refval {
	uint64_t id;          /* LZM_ID_KNOWN: start ticks (process) or cookie (TCP);
				 LZM_ID_PEND: the struct lzm_pend * */
	uint32_t pid;
	uint8_t kind;         /* ZM_TARGET_PROCESS, ZM_TARGET_TCP */
	uint8_t state;        /* enum lzm_id_state */
	uint16_t flags;       /* ZM_MONITORED_GONE with LZM_ID_KNOWN */
};

struct lzm_refset {
	uint64_t *slots;      /* 0 = empty */
	struct lzm_refval *vals; /* parallel to slots, or NULL: no values */
	bool with_vals;
	size_t cap;           /* a power of two, or 0 before the first add */
	size_t count;
};

/* Keep a struct lzm_refval beside every reference (call before the first
 * add). Values start zeroed. */
void lzm_refset_use_vals(struct lzm_refset *s);
/* ref's value, or NULL if ref is not in the set or the set has none. Valid
 * until the next add or remove. */
struct lzm_refval *lzm_refset_val(const struct lzm_refset *s, uint64_t ref);
/* Slot i (0 <= i < cap) for walking the set: its ref (0 if empty) and value. */
static inline uint64_t lzm_refset_slot(const struct lzm_refset *s, size_t i, struct lzm_refval **ret)
{
	if (ret)
		*ret = s->vals ? &s->vals[i] : NULL;
	return s->slots[i];
}

/* Add ref (nonzero). 1 if added, 0 if it was there, -ENOMEM. */
int lzm_refset_add(struct lzm_refset *s, uint64_t ref);
/* Remove ref. true if it was there. Never fails. */
bool lzm_refset_remove(struct lzm_refset *s, uint64_t ref);
bool lzm_refset_contains(const struct lzm_refset *s, uint64_t ref);
/* Free the storage; the set is left empty and reusable. NULL-safe. */
void lzm_refset_free(struct lzm_refset *s);

#endif
