/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The service manager's readiness protocol (sd_notify(3)), without
 * libsystemd: one datagram of "KEY=value" lines to the AF_UNIX socket named
 * by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). The
 * agent sends READY=1 once its BPF programs are attached and its socket
 * listens, RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 on the
 * way out. Without $NOTIFY_SOCKET (not started by systemd) nothing is sent.
 */
#ifndef ZENMOND_NOTIFY_H
#define ZENMOND_NOTIFY_H

/*
 * Send the printf-formatted state ("READY=1\nSTATUS=..."). 1 when sent, 0
 * when $NOTIFY_SOCKET is unset or empty, -errno when it is set and the
 * datagram could not go (-EINVAL for an address that is neither a path nor
 * "@name"). Never logs: the caller does, once.
 */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
