// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The set of active references; see refset.h. References are handed out
 * by a counter, so they are dense: the hash must spread consecutive values
 * (a multiplicative mix does; the identity would make one long run).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hugepage.h"
#include "refset.h"

#define REFSET_MIN_CAP 64U

static size_t refset_slot(uint64_t ref, size_t cap)
{
	/* The finalizer of splitmix64: every input bit moves every output bit. */
	ref ^= ref >> 30;
	ref *= 0xbf58476d1ce4e5b9ULL;
	ref ^= ref >> 27;
	ref *= 0x94d049bb133111ebULL;
	ref ^= ref >> 31;
	return (size_t)ref & (cap - 1);
}

/* Rebuild into a table of new_cap slots. 0 or -ENOMEM (the set unchanged). */
static int refset_resize(struct lzm_refset *s, size_t new_cap)
{
	uint64_t *slots = calloc(new_cap, sizeof(*slots));
	struct lzm_refval *vals = NULL;

	if (!slots)
		return -ENOMEM;
	if (s->with_vals && !(vals = calloc(new_cap, sizeof(*vals)))) {
		free(slots);
		return -ENOMEM;
	}
	/* A million references are 48 MiB probed at random: on 4 KiB pages
	 * nearly every add missed the TLB, most of what an add cost. */
	zm_advise_huge(slots, new_cap * sizeof(*slots));
	if (vals)
		zm_advise_huge(vals, new_cap * sizeof(*vals));
	for (size_t i = 0; i < s->cap; i++) {
		uint64_t ref = s->slots[i];
		size_t j;

		if (!ref)
			continue;
		for (j = refset_slot(ref, new_cap); slots[j]; j = (j + 1) & (new_cap - 1))
			;
		slots[j] = ref;
		if (vals)
			vals[j] = s->vals[i];
	}
	free(s->slots);
	free(s->vals);
	s->slots = slots;
	s->vals = vals;
	s->cap = new_cap;
	return 0;
}

void lzm_refset_use_vals(struct lzm_refset *s)
{
	s->with_vals = true;
}

/* The slot holding ref, or the empty slot where it would go. */
static size_t refset_find(const struct lzm_refset *s, uint64_t ref)
{
	size_t i = refset_slot(ref, s->cap);

	while (s->slots[i] && s->slots[i] != ref)
		i = (i + 1) & (s->cap - 1);
	return i;
}

struct lzm_refval *lzm_refset_val(const struct lzm_refset *s, uint64_t ref)
{
	size_t i;

	if (!s->vals || s->count == 0 || ref == 0)
		return NULL;
	i = refset_find(s, ref);
	return s->slots[i] == ref ? &s->vals[i] : NULL;
}

int lzm_refset_add(struct lzm_refset *s, uint64_t ref)
{
	size_t i;

	if (s->cap == 0 || (s->count + 1) > s->cap / 4 * 3) {
		size_t new_cap = s->cap ? s->cap * 2 : REFSET_MIN_CAP;
		int r;

		if (new_cap < s->cap || new_cap > SIZE_MAX / sizeof(uint64_t))
			return -ENOMEM;
		/* Look first: a ref that is already there needs no room. */
		if (s->cap && lzm_refset_contains(s, ref))
			return 0;
		r = refset_resize(s, new_cap);
		if (r < 0)
			return r;
	}
	i = refset_find(s, ref);
	if (s->slots[i] == ref)
		return 0;
	s->slots[i] = ref;
	if (s->vals)
		memset(&s->vals[i], 0, sizeof(s->vals[i]));
	s->count++;
	return 1;
}

bool lzm_refset_contains(const struct lzm_refset *s, uint64_t ref)
{
	if (s->count == 0 || ref == 0)
		return false;
	return s->slots[refset_find(s, ref)] == ref;
}

bool lzm_refset_remove(struct lzm_refset *s, uint64_t ref)
{
	size_t i, j, mask;

	if (s->count == 0 || ref == 0)
		return false;
	mask = s->cap - 1;
	i = refset_find(s, ref);
	if (s->slots[i] != ref)
		return false;

	/* Backward-shift deletion: pull later members of the probe run into
	 * the hole when the hole lies between their home slot and them. */
	for (j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
		size_t home = refset_slot(s->slots[j], s->cap);

		/* Does home lie cyclically in (i, j]? Then it must stay. */
		if (((j - home) & mask) < ((j - i) & mask))
			continue;
		s->slots[i] = s->slots[j];
		if (s->vals)
			s->vals[i] = s->vals[j];
		i = j;
	}
	s->slots[i] = 0;
	s->count--;

	/* Give memory back after a flood of DOWNs; failing to is harmless. */
	if (s->cap > REFSET_MIN_CAP && s->count < s->cap / 8)
		(void)refset_resize(s, s->cap / 2);
	return true;
}

void lzm_refset_free(struct lzm_refset *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s->vals);
	s->slots = NULL;
	s->vals = NULL;
	s->cap = 0;
	s->count = 0;
}
