// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* Transparent huge pages for large tables: see hugepage.h. */
#include <stdint.h>
#include <sys/mman.h>

#include "hugepage.h"

#define HUGE_PAGE (2UL << 20)

void zm_advise_huge(void *p, size_t len)
{
	uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	uintptr_t end = ((uintptr_t)p + len) & ~(HUGE_PAGE - 1);

	/* Failure (no THP in this kernel, an old kernel's EINVAL) is harmless. */
	if (end > start)
		(void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}
