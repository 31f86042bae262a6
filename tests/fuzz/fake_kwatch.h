/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * A kwatch (user/zenmond/kwatch.h) with no kernel: the watch maps are small
 * arrays in memory, and a watched target dies only when the fuzz harness
 * says so. Linked into the request fuzzer in place of kwatch.c, so that the
 * agent's request handling runs without root, BPF or a pin directory, and
 * runs the same on every input.
 *
 * Beside kwatch.h's functions, the harness's own levers:
 */
#ifndef ZM_FAKE_KWATCH_H
#define ZM_FAKE_KWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "kwatch.h"

/* Watches each fake map holds: small, so that a fuzzer reaches "map full". */
#define FAKE_KWATCH_MAX 64

/*
 * Kill every armed target, as the kernel would report it: the watch turns
 * FIRED and the event callbacks run (processes exit with wait status
 * status, sockets close with how). How many died.
 */
int fake_kwatch_fire_all(struct kwatch *k, uint32_t status, uint8_t how);

/*
 * Before the agent looks (adopt_load()): the maps hold a watch a previous
 * agent left, armed or fired (by a death while no agent ran), and
 * kwatch_inherited() says so.
 */
void fake_kwatch_inherit(struct kwatch *k, uint32_t tgid, uint64_t start_ticks, bool fired,
			 uint32_t status);
void fake_kwatch_inherit_tcp(struct kwatch *k, uint64_t cookie, bool fired, uint8_t how);

#endif
