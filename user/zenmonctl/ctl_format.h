/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * zenmonctl's output for one DOWN, as a text line or a JSON line, and the
 * JSON string writer the status output shares. One function per format, so
 * the two cannot drift apart field by field without a test noticing.
 */
#ifndef ZENMONCTL_FORMAT_H
#define ZENMONCTL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "zenmon.h"

/*
 * One line per DOWN. A process:
 *   "1234 exited status=3 ref=1\n", "1235 killed signal=9 (SIGKILL) ref=2\n",
 *   "1236 killed signal=6 (SIGABRT) core dumped ref=3\n", "1237 noproc ref=4\n".
 * A TCP connection (its ends first when known, cookie when nonzero):
 *   "127.0.0.1:5000 -> 127.0.0.1:41234 tcp_closed how=reset_rx errno=104 (ECONNRESET) cookie=9 ref=1\n"
 *   "[::1]:5000 -> [::1]:41234 tcp_closed how=fin cookie=9 ref=2\n"
 *   "noconnection cookie=77 ref=3\n"
 */
void ctl_format_down_text(FILE *f, const struct zm_down_info *d);

/*
 * One JSON object and a newline. A process: ref, pid, start_ticks (when
 * nonzero), reason, then status | signal, signal_name, core_dumped, then
 * time_ns. A TCP connection: ref, "kind":"tcp", cookie (when nonzero),
 * family ("ipv4"/"ipv6"), local, remote ("ADDR:PORT", when known), reason,
 * then for tcp_closed how, errno, errno_name (null if none), then old_state
 * (when known), time_ns.
 */
void ctl_format_down_json(FILE *f, const struct zm_down_info *d);

/* "127.0.0.1:5000", "[::1]:5000": one end of a connection, in buf (64 bytes
 * are always enough). family AF_INET or AF_INET6; "?" for another. */
const char *ctl_format_endpoint(int family, const union zm_inet_addr *addr, uint16_t port,
				char *buf, size_t len);

/* "ESTABLISHED", "FIN_WAIT2": a TCP state as the kernel names it, without
 * its TCP_ prefix; NULL for 0 or a number the kernel does not use. */
const char *ctl_format_tcp_state_name(int state);

/* s as a JSON string, quotes included: control characters escaped, invalid
 * UTF-8 replaced by U+FFFD, so the output is always valid JSON. */
void ctl_format_json_string(FILE *f, const char *s);

/* "SIGKILL", "SIGRTMIN+3": the signal's name in buf, or NULL if it has none. */
const char *ctl_format_signal_name(int sig, char *buf, size_t len);

/*
 * The decimal number in s[0, len): digits only, no sign, no space (as the
 * command line and the agent's text answers write them). 0, or -EINVAL
 * (empty, or not a digit) / -ERANGE (over UINT64_MAX); *ret only on 0.
 */
int ctl_parse_u64(const char *s, size_t len, uint64_t *ret);

/*
 * The next key=value word of the space-separated text [*p, end), as the
 * agent's STATUS and TARGETS lines write them; words without '=' are
 * skipped. true with the key and value spans set and *p moved past the
 * word, false once the text is used up.
 */
bool ctl_next_kv(const char **p, const char *end, const char **key, size_t *klen,
		 const char **value, size_t *vlen);

#endif
