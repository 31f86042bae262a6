// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* Why a process went down: see reason.h. */
#include <sys/wait.h>

#include "reason.h"

void reason_from_wait_status(uint32_t status, struct zm_down *d)
{
	int ws = (int)(status & 0xffffU);   /* the kernel's codes fit 16 bits */

	d->flags = 0;
	if (WIFSIGNALED(ws)) {
		d->reason = ZM_REASON_KILLED;
		d->value = WTERMSIG(ws);
		if (WCOREDUMP(ws))
			d->flags = ZM_DOWN_CORE_DUMPED;
		return;
	}
	/*
	 * A normal exit (WIFEXITED), or, defensively, a stopped (0x7f) or
	 * continued (0xffff) pattern, which cannot end a process: bits 8..15.
	 */
	d->reason = ZM_REASON_EXITED;
	d->value = (ws >> 8) & 0xff;
}
