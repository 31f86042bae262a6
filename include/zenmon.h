/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libzenmon: Erlang-style process monitors from the zenmon host agent.
 *
 *   struct zm_client *c;
 *   uint64_t ref;
 *   zm_connect(NULL, "my-service", &c);     // $ZENMON_SOCKET or the default
 *   zm_monitor_pid(c, pid, &ref);           // no round trip
 *   zm_flush(c);                            // send what is queued
 *   poll on zm_fd(c) for POLLIN, then zm_dispatch(c, on_down, userdata);
 *
 * Every call returns 0 (or a count) on success and a negative errno value on
 * failure, and leaves its ret_* arguments untouched on failure; the library
 * never logs and never raises signals (it sends with MSG_NOSIGNAL). Every fd
 * it opens is close-on-exec. One struct zm_client is not thread-safe: use it
 * from one thread at a time.
 *
 * Exactly one DOWN reaches the callback for each monitor, unless it was
 * demonitored first. After zm_demonitor(c, ref, ZM_DEMONITOR_FLUSH) returns,
 * no DOWN for ref reaches the callback, even one already received.
 *
 * Callbacks (zm_down_fn, zm_error_fn) may call zm_monitor_*(), zm_demonitor(),
 * zm_flush() and the accessors on the same client; zm_dispatch(), zm_wait(),
 * zm_sync() and zm_status() return -EBUSY there; zm_close() must not be
 * called from a callback.
 *
 * Once a call has returned -ENOTCONN, -EPIPE or -EPROTO the connection is over:
 * every later call returns -ENOTCONN and no more DOWNs come. The agent has
 * dropped (or will drop) every monitor of it; connect again and re-monitor.
 */
#ifndef ZENMON_H
#define ZENMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ZM_EXPORT __attribute__((visibility("default")))
#else
#define ZM_EXPORT
#endif

struct zm_client;

/* Kinds of targets and reasons, as on the wire (docs/PROTOCOL.md). */
enum zm_kind { ZM_KIND_PROCESS = 1 };
enum zm_down_reason {
	ZM_DOWN_EXITED = 1,   /* status holds the exit status (0..255) */
	ZM_DOWN_KILLED = 2,   /* signal holds the signal; core_dumped */
	ZM_DOWN_NOPROC = 3,   /* no such process (or not the one named) */
};

/* One DOWN notification, as handed to a zm_down_fn. */
struct zm_down_info {
	uint64_t ref;         /* the reference zm_monitor_*() returned */
	uint64_t time_ns;     /* CLOCK_REALTIME of the death, nanoseconds */
	enum zm_kind kind;
	enum zm_down_reason reason;
	int status;           /* ZM_DOWN_EXITED: exit status, else 0 */
	int signal;           /* ZM_DOWN_KILLED: signal number, else 0 */
	bool core_dumped;     /* ZM_DOWN_KILLED: a core was dumped */
	pid_t pid;
	uint64_t start_ticks; /* the process's start time (/proc/PID/stat field 22), 0 if unknown */
};

/* An error the agent reported about one request (ref != 0) or the connection. */
struct zm_error_info {
	uint64_t ref;         /* the request's reference, 0 if none */
	int error;            /* positive errno value (EINVAL, EEXIST, ...) */
	uint16_t request;     /* the request's record type (docs/PROTOCOL.md) */
	const char *message;  /* the agent's explanation; valid during the call */
};

typedef void (*zm_down_fn)(struct zm_client *c, const struct zm_down_info *down, void *userdata);
typedef void (*zm_error_fn)(struct zm_client *c, const struct zm_error_info *err, void *userdata);

/* Options for zm_connect_opts(); zero-initialize, then set what you need. */
struct zm_connect_options {
	const char *socket_path;  /* NULL: $ZENMON_SOCKET, else /run/zenmon/zenmon.sock */
	const char *name;         /* shown in `zenmonctl status`; NULL: "libzenmon" */
	uint32_t max_rate;        /* DOWNs per second this client accepts; 0 = agent default */
	uint32_t max_batch;       /* DOWNs per frame; 0 = agent default */
	uint32_t batch_window_us; /* how long a DOWN may wait for company; 0 = agent default */
	int timeout_ms;           /* for the HELLO exchange; <= 0: 5000 */
};

/*
 * Connect to the agent and exchange HELLO/WELCOME (blocking, up to the
 * timeout). On success *ret_client owns a non-blocking, close-on-exec socket;
 * free it with zm_close(). opts may be NULL (all defaults); zm_connect() is
 * zm_connect_opts() with only socket_path and name set (either may be NULL).
 * Errors: -ENOENT/-ECONNREFUSED (no agent at the path), -EACCES,
 * -ETIMEDOUT, -EPROTO (not a zenmon agent, or a WELCOME version we do not
 * speak), the agent's own refusal as -errno (-EPROTONOSUPPORT: it does not
 * speak our protocol version), -ECONNRESET (the agent closed without an
 * answer), -EINVAL (name longer than 64 bytes, empty path, ret_client NULL),
 * -ENAMETOOLONG (path too long for a Unix socket), -ENOMEM.
 */
ZM_EXPORT int zm_connect(const char *socket_path, const char *name, struct zm_client **ret_client);
ZM_EXPORT int zm_connect_opts(const struct zm_connect_options *opts, struct zm_client **ret_client);

/* Close the connection and free everything; the agent drops every monitor
 * the client held. NULL-safe. */
ZM_EXPORT void zm_close(struct zm_client *c);

/* The socket to poll: always for POLLIN; for POLLOUT while zm_pending() > 0.
 * Do not read, write or close it yourself. -EINVAL if c is NULL. */
ZM_EXPORT int zm_fd(const struct zm_client *c);

/* Bytes of requests queued but not yet sent. */
ZM_EXPORT size_t zm_pending(const struct zm_client *c);

/*
 * Queue a MONITOR request and return its reference in *ret_ref at once. The
 * request is sent by the next zm_flush() or zm_dispatch() (or sooner: once
 * about 64 KiB are queued the library flushes by itself). References count
 * up from 1 and are never reused on one connection. A process that does not
 * exist yields a DOWN with ZM_DOWN_NOPROC, not an error; a request the agent
 * refuses (pid above 4194304, a thread id, a limit) reaches the error
 * callback with the reference, and that monitor is over (no DOWN follows).
 *   zm_monitor_pid:        by pid (the process that has that pid now)
 *   zm_monitor_pid_start:  by pid and start time (field 22 of /proc/PID/stat);
 *                          NOPROC if that pid is another process now
 *   zm_monitor_pidfd:      by pidfd (pidfd_open(2)); the library dups it, the
 *                          caller keeps its own fd
 * Errors: -EINVAL (pid <= 0, fd < 0), -EBADF (pidfd is not open), -EMFILE
 * (no fd left for the dup), -ENOMEM, -ENOTCONN (connection lost).
 */
ZM_EXPORT int zm_monitor_pid(struct zm_client *c, pid_t pid, uint64_t *ret_ref);
ZM_EXPORT int zm_monitor_pid_start(struct zm_client *c, pid_t pid, uint64_t start_ticks, uint64_t *ret_ref);
ZM_EXPORT int zm_monitor_pidfd(struct zm_client *c, int pidfd, uint64_t *ret_ref);

#define ZM_DEMONITOR_FLUSH 0x1U

/*
 * Queue a DEMONITOR for ref. With ZM_DEMONITOR_FLUSH no DOWN for ref reaches
 * the callback after this returns, even one already received and not yet
 * dispatched. Without the flag a DOWN already on its way may still arrive:
 * this version drops it all the same (the two behave alike), but a later one
 * may hand it over, so pass the flag if you rely on silence. When the DOWN
 * crossed the DEMONITOR on the wire, the agent answers ENOENT; the library
 * swallows that answer.
 * Errors: -ENOENT (ref is not an active monitor of this client: never one,
 * already DOWN or dispatched, refused by the agent, or demonitored), -EINVAL
 * (unknown flags), -ENOMEM, -ENOTCONN.
 */
ZM_EXPORT int zm_demonitor(struct zm_client *c, uint64_t ref, unsigned int flags);

/*
 * Send queued requests without blocking. 0 when everything was sent,
 * -EAGAIN when the socket is full (poll for POLLOUT and call again; what was
 * sent stays sent), -EPIPE/-ENOTCONN when the agent went away (the
 * connection is over).
 */
ZM_EXPORT int zm_flush(struct zm_client *c);

/*
 * Flush, then read whatever the socket holds without blocking and hand each
 * DOWN to on_down (and each agent error to the error callback). One call
 * reads at most about 1 MiB, so a flood cannot keep it from returning; poll
 * again and call again. on_down may be NULL: the DOWNs are then consumed
 * (their monitors are over) and only counted.
 * Returns the number of DOWNs handed over (0 if none were ready), or
 * -ENOTCONN when the agent closed the connection (after handing over what
 * arrived before the end), -EPROTO on a malformed frame (the connection is
 * then over), -ENOMEM, -EBUSY from a callback.
 */
ZM_EXPORT int zm_dispatch(struct zm_client *c, zm_down_fn on_down, void *userdata);

/*
 * Wait up to timeout_ms (-1: forever) for the socket to be readable (or
 * writable, while requests are pending), then dispatch. Returns what
 * zm_dispatch() returns: 0 on timeout, and also when it woke only to send or
 * for records that were not DOWNs; -EINTR when a signal interrupted the wait.
 */
ZM_EXPORT int zm_wait(struct zm_client *c, int timeout_ms, zm_down_fn on_down, void *userdata);

/*
 * Set the callback for agent errors (NULL: errors are dropped). It gets the
 * errors about single requests (err->ref set: EINVAL, EEXIST, ESRCH, EBADF,
 * ENOSPC, EPERM; the monitor is then over) and about the connection (ref 0:
 * the agent closes it next, and the next dispatch returns -ENOTCONN).
 */
ZM_EXPORT void zm_set_error_handler(struct zm_client *c, zm_error_fn on_error, void *userdata);

/*
 * Round trip: wait until the agent has processed every request sent before
 * this call (DOWNs and errors that arrive meanwhile are dispatched to the
 * callbacks). An error about any earlier request has reached the error
 * callback by the time this returns 0. timeout_ms -1: no limit.
 * 0, -ETIMEDOUT, -ENOTCONN, -EPROTO, -ENOMEM, -EBUSY from a callback.
 */
ZM_EXPORT int zm_sync(struct zm_client *c, int timeout_ms, zm_down_fn on_down, void *userdata);

/*
 * Ask the agent for its status as "name value" lines (the STATUS_REPLY text,
 * docs/PROTOCOL.md), waiting up to timeout_ms (-1: no limit). *ret_text is
 * malloc'd and NUL-terminated; free it. DOWNs that arrive meanwhile are
 * dispatched. -ETIMEDOUT, -ENOTCONN, -EPROTO, -ENOMEM, the agent's refusal
 * as -errno, -EINVAL (ret_text NULL), -EBUSY from a callback.
 */
ZM_EXPORT int zm_status(struct zm_client *c, int timeout_ms, char **ret_text,
			zm_down_fn on_down, void *userdata);

/* Number of monitors this client holds: requested and not yet DOWN,
 * demonitored or refused by the agent. */
ZM_EXPORT size_t zm_active_monitors(const struct zm_client *c);

/* "exited", "killed", "noproc" or "unknown". */
ZM_EXPORT const char *zm_reason_str(enum zm_down_reason reason);

/* The library's version string, e.g. "0.1.0". */
ZM_EXPORT const char *zm_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ZENMON_H */
