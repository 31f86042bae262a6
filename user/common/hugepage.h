/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Transparent huge pages for the large tables of the agent and the library.
 */
#ifndef ZENMON_HUGEPAGE_H
#define ZENMON_HUGEPAGE_H

#include <stddef.h>

/*
 * Ask for transparent huge pages under the 2 MiB-aligned part of [p, p+len):
 * a hint (madvise MADV_HUGEPAGE), ignored where THP is off or the range
 * holds no aligned 2 MiB. For tables of millions of entries probed at random,
 * which with 4 KiB pages miss the TLB on nearly every access; in a virtual
 * machine each such miss walks two page tables.
 */
void zm_advise_huge(void *p, size_t len);

#endif
