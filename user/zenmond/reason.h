/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Why a process went down, from the status the kernel keeps for it. The
 * kernel's exit code (task->exit_code, signal->group_exit_code, field 52 of
 * /proc/PID/stat) uses the encoding wait(2) reports: exit(3) is 3 << 8, death
 * by SIGKILL is 9, death by SIGSEGV with a core dump is 11 | 0x80.
 */
#ifndef ZENMOND_REASON_H
#define ZENMOND_REASON_H

#include <stdint.h>

#include "zenmon/proto.h"

/*
 * Set d->reason, d->value and d->flags from a wait(2) status; other fields
 * are left alone. A normal exit is ZM_REASON_EXITED with the exit status; a
 * signal is ZM_REASON_KILLED with the signal number, plus ZM_DOWN_CORE_DUMPED
 * if a core was dumped. A stopped or continued pattern cannot end a process;
 * should one arrive, it reads as EXITED with bits 8..15 as the status.
 */
void reason_from_wait_status(uint32_t status, struct zm_down *d);

#endif
