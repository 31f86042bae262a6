/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libzenmon: Erlang-style monitors of processes and TCP connections from
 * the zenmon host agent.
 *
 *   struct zm_client *c;
 *   uint64_t ref;
 *   zm_connect(NULL, "my-service", &c);     // $ZENMON_SOCKET or the default
 *   zm_monitor_pid(c, pid, &ref);           // no round trip
 *   zm_monitor_tcp_fd(c, sockfd, &ref);     // or a TCP connection
 *   zm_flush(c);                            // send what is queued
 *   poll on zm_fd(c) for POLLIN, then zm_dispatch(c, on_down, userdata);
 *
 * A subscriber that expects floods (thousands of DOWNs at once) takes them
 * a frame at a time with zm_dispatch_batch() / zm_wait_batch(), and may ask
 * the agent to pace them (struct zm_connect_options: max_rate, max_batch,
 * batch_window_us; zm_limits() says what was granted).
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
 * Callbacks (zm_down_fn, zm_batch_fn, zm_error_fn) may call zm_monitor_*(),
 * zm_demonitor(), zm_flush() and the accessors on the same client; the
 * dispatch and wait calls, zm_sync(), zm_status(), zm_stats() and
 * zm_targets() return -EBUSY there;
 * zm_close() must not be called from a callback.
 *
 * Restarts. When the connection is lost (the agent stopped, restarted or was
 * killed), the library first hands over what the agent sent before it went,
 * then reconnects by itself, with backoff (10 ms
 * doubling to 1 s, jittered), and brings every active monitor back under
 * the same reference, naming its target exactly (the pid and start time the
 * agent resolved, or the socket cookie). A target that died meanwhile yields
 * its DOWN: with the real reason where the kernel recorded it (the agent's
 * BPF programs keep watching while no agent runs), noproc or noconnection
 * otherwise. Exactly one DOWN per monitor still holds across any number of
 * restarts. Meanwhile every call works: monitors and demonitors are kept
 * and sent once reconnected, zm_sync() waits for the new agent, the
 * dispatches return 0. zm_fd() keeps its number, but the file behind it is
 * a timer while reconnecting and a new socket after: poll(2) users need do
 * nothing, epoll(7) users re-add it from a zm_set_conn_handler() callback.
 * A monitor named by pidfd or socket fd keeps a duplicate of that fd in the
 * library until the agent has said which target it is (a MONITORED record,
 * read by the next dispatch).
 *
 * With ZM_CONNECT_NO_RECONNECT, when the agent disconnected this client on
 * purpose (an ERROR with reference 0 and request 0 just before: a protocol
 * error of ours, --stall-timeout, --max-queued, a quota; coming back would
 * undo it), or when the agent refused the HELLO of a reconnection (another
 * protocol version), a lost connection is final:
 * requests fail with -ENOTCONN at once, but the receiving calls (dispatch,
 * wait, sync, status, stats, targets) first hand over what the agent sent
 * before it went. Then they return -ENOTCONN, and from then on every call
 * does; -EPROTO (a malformed frame) ends it at once, reconnecting or not.
 * No more DOWNs come; connect again and re-monitor.
 */
#ifndef ZENMON_H
#define ZENMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
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
enum zm_kind {
	ZM_KIND_PROCESS = 1,
	ZM_KIND_TCP = 2,
};
enum zm_down_reason {
	ZM_DOWN_EXITED = 1,       /* status holds the exit status (0..255) */
	ZM_DOWN_KILLED = 2,       /* signal holds the signal; core_dumped */
	ZM_DOWN_NOPROC = 3,       /* no such process (or not the one named) */
	ZM_DOWN_TCP_CLOSED = 4,   /* the connection closed: tcp_how says how */
	ZM_DOWN_NOCONNECTION = 5, /* no such established connection when monitored */
};

/*
 * How a TCP connection closed (ZM_DOWN_TCP_CLOSED). The rules, as the kernel
 * side applies them, are in docs/PROTOCOL.md.
 */
enum zm_tcp_how {
	ZM_TCP_HOW_NONE = 0,      /* not a ZM_DOWN_TCP_CLOSED */
	ZM_TCP_HOW_FIN = 1,       /* orderly close, FIN handshake, whichever side began */
	ZM_TCP_HOW_RESET_RX = 2,  /* the peer reset it (ECONNRESET, EPIPE) */
	ZM_TCP_HOW_RESET_TX = 3,  /* this host aborted it: SO_LINGER 0, close() with
				     unread data, ss -K */
	ZM_TCP_HOW_TIMEOUT = 4,   /* retransmission or keepalive timeout, unreachable
				     peer (ETIMEDOUT, EHOSTUNREACH, ...) */
	ZM_TCP_HOW_ERROR = 5,     /* another socket error (tcp_errno) */
};

/*
 * The two ends of a TCP connection as one of its sockets sees them: local is
 * that socket's own address, remote its peer's. Addresses are in network
 * byte order, as in struct sockaddr_in/_in6 (sin_addr, sin6_addr); ports are
 * in host byte order (5000 is 5000: ntohs(sin_port)). An AF_INET6 socket
 * talking IPv4 has v4-mapped addresses (::ffff:a.b.c.d) and family AF_INET6.
 */
union zm_inet_addr {
	struct in_addr v4;        /* family AF_INET */
	struct in6_addr v6;       /* family AF_INET6 */
};

struct zm_tcp_endpoints {
	int family;               /* AF_INET or AF_INET6; 0 in a DOWN: not known */
	union zm_inet_addr local, remote;
	uint16_t local_port, remote_port;
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
	pid_t pid;            /* ZM_KIND_PROCESS; 0 for ZM_KIND_TCP */
	uint64_t start_ticks; /* the process's start time (/proc/PID/stat field 22), 0 if unknown */

	/* ZM_KIND_TCP only (zero otherwise): */
	uint64_t cookie;      /* the socket cookie (SO_COOKIE, `ss -e`), 0 if unknown */
	enum zm_tcp_how tcp_how;   /* ZM_DOWN_TCP_CLOSED: how; else ZM_TCP_HOW_NONE */
	int tcp_errno;        /* ZM_DOWN_TCP_CLOSED: the socket's error at the close
				 (ETIMEDOUT, ECONNRESET, ...), 0 if none */
	int tcp_old_state;    /* the TCP state it left: TCP_ESTABLISHED (1), TCP_FIN_WAIT2
				 (5), ... as <netinet/tcp.h> numbers them; 0 if unknown */
	struct zm_tcp_endpoints tcp; /* which connection; family 0 if unknown */
};

/* An error the agent reported about one request (ref != 0) or the connection. */
struct zm_error_info {
	uint64_t ref;         /* the request's reference, 0 if none */
	int error;            /* positive errno value (EINVAL, EEXIST, ...) */
	uint16_t request;     /* the request's record type (docs/PROTOCOL.md) */
	const char *message;  /* the agent's explanation; valid during the call */
};

typedef void (*zm_down_fn)(struct zm_client *c, const struct zm_down_info *down, void *userdata);
/* n >= 1 DOWNs at downs[0..n-1]; the array is the library's, valid during
 * the call only (copy what you keep). */
typedef void (*zm_batch_fn)(struct zm_client *c, const struct zm_down_info *downs, size_t n,
			    void *userdata);
typedef void (*zm_error_fn)(struct zm_client *c, const struct zm_error_info *err, void *userdata);

/*
 * Options for zm_connect_opts(); zero-initialize, then set what you need.
 * The pacing options are requests: the agent caps them with its own limits
 * and zm_limits() returns what applies. Pacing delays DOWNs, never drops
 * them; a client that reads slower than it asked is back-pressured.
 */
struct zm_connect_options {
	const char *socket_path;  /* NULL: $ZENMON_SOCKET, else /run/zenmon/zenmon.sock */
	const char *name;         /* shown in `zenmonctl status`; NULL: "libzenmon" */
	uint32_t max_rate;        /* DOWNs per second this client accepts; 0 = agent default */
	uint32_t max_batch;       /* DOWNs per frame; 0 = agent default */
	uint32_t batch_window_us; /* how long a DOWN may wait for company; 0 = agent default */
	int timeout_ms;           /* for the HELLO exchange; <= 0: 5000 */
	unsigned int flags;       /* ZM_CONNECT_* */
};

/* Do not reconnect when the connection is lost (see the top of this file).
 * The agent then sends no MONITORED records either. */
#define ZM_CONNECT_NO_RECONNECT 0x1U

/*
 * Connect to the agent and exchange HELLO/WELCOME (blocking, up to the
 * timeout). On success *ret_client owns a non-blocking, close-on-exec socket;
 * free it with zm_close(). opts may be NULL (all defaults); zm_connect() is
 * zm_connect_opts() with only socket_path and name set (either may be NULL).
 * Errors: -ENOENT/-ECONNREFUSED (no agent at the path), -EACCES,
 * -ETIMEDOUT, -EPROTO (not a zenmon agent, or a WELCOME version we do not
 * speak), the agent's own refusal as -errno (-EPROTONOSUPPORT: it does not
 * speak our protocol version; -ENOSPC: the caller's uid has as many
 * connections as the agent allows it), -ECONNRESET (the agent closed without an
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

/*
 * The pacing the agent granted in WELCOME, each for this connection:
 * *ret_rate DOWNs per second at most (0: no limit), *ret_batch DOWNs per
 * frame at most (0: no limit but the frame size), *ret_window_us how long a
 * DOWN may wait for company (0: none, sent at once). Any ret_* may be NULL.
 * Valid after the connection is lost too. 0, or -EINVAL if c is NULL.
 */
ZM_EXPORT int zm_limits(const struct zm_client *c, uint32_t *ret_rate, uint32_t *ret_batch,
			uint32_t *ret_window_us);

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

/*
 * Queue a MONITOR for a TCP connection, as zm_monitor_pid() does for a
 * process: the reference comes back at once, one DOWN comes when the
 * connection reaches TCP_CLOSE (ZM_DOWN_TCP_CLOSED, with tcp_how), or at once
 * with ZM_DOWN_NOCONNECTION when it is not an established connection (never
 * connected, already closed, or no such one). The DOWN's kind is
 * ZM_KIND_TCP and its pid 0.
 *   zm_monitor_tcp_fd:     by a socket the caller holds; the library dups it
 *                          and passes it to the agent (SCM_RIGHTS), the caller
 *                          keeps its own fd. Race-free: it names this socket.
 *   zm_monitor_tcp_cookie: by socket cookie (getsockopt SO_COOKIE, or what
 *                          `ss -e` shows as sk:HEX, in hex there).
 *   zm_monitor_tcp_tuple:  by the connection's ends, e->local being the end
 *                          of the socket to watch, looked up in the agent's
 *                          network namespace.
 * The agent refuses, through the error callback, an fd that is not a socket
 * (ENOTSOCK) or not a TCP socket (EPROTOTYPE).
 * Errors: -EINVAL (fd < 0, cookie 0, e NULL or of a family other than
 * AF_INET/AF_INET6), -EBADF (sockfd is not open), -EMFILE, -ENOMEM,
 * -ENOTCONN (connection to the agent lost).
 */
ZM_EXPORT int zm_monitor_tcp_fd(struct zm_client *c, int sockfd, uint64_t *ret_ref);
ZM_EXPORT int zm_monitor_tcp_cookie(struct zm_client *c, uint64_t cookie, uint64_t *ret_ref);
ZM_EXPORT int zm_monitor_tcp_tuple(struct zm_client *c, const struct zm_tcp_endpoints *e,
				   uint64_t *ret_ref);

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
 * DOWN to on_down (and each agent error to the error callback), in the
 * order they arrived. One call reads at most about 1 MiB, so a flood cannot
 * keep it from returning; poll again and call again. on_down may be NULL:
 * the DOWNs are then consumed (their monitors are over) and only counted.
 * on_down may demonitor a reference whose DOWN is still to come, even in
 * the same frame: that DOWN is then dropped.
 * Returns the number of DOWNs handed over (0 if none were ready), or
 * -ENOTCONN when the agent closed the connection (after handing over what
 * arrived before the end, its final ERROR included), -EPROTO on a malformed
 * frame (the connection is then over), -ENOMEM (nothing was lost: call
 * again), -EBUSY from a callback.
 */
ZM_EXPORT int zm_dispatch(struct zm_client *c, zm_down_fn on_down, void *userdata);

/*
 * zm_dispatch() for floods: the DOWNs of each frame the agent sent (up to
 * the max_batch it granted), minus those whose reference was demonitored,
 * go to on_batch as one array, in wire order; on_batch is never called with
 * none. The array is split only where an agent error sits between DOWNs of
 * one frame and an error handler is set, so that callbacks still see
 * records in the order they arrived. The DOWNs handed over are over by the
 * time on_batch runs: zm_demonitor() of one of them gives -ENOENT, and a
 * demonitor from on_batch silences only DOWNs of later frames. No syscall
 * or allocation per DOWN: reads are large (256 KiB), the array is reused,
 * and filtering a DOWN costs one hash lookup.
 * Returns the number of DOWNs handed over (the sum of every n) and fails
 * as zm_dispatch() does. on_batch may be NULL (DOWNs only counted).
 */
ZM_EXPORT int zm_dispatch_batch(struct zm_client *c, zm_batch_fn on_batch, void *userdata);

/*
 * Wait up to timeout_ms (-1: forever) for the socket to be readable (or
 * writable, while requests are pending), then dispatch. Returns what
 * zm_dispatch() returns: 0 on timeout, and also when it woke only to send or
 * for records that were not DOWNs; -EINTR when a signal interrupted the wait.
 */
ZM_EXPORT int zm_wait(struct zm_client *c, int timeout_ms, zm_down_fn on_down, void *userdata);

/* zm_wait(), then zm_dispatch_batch() instead of zm_dispatch(). */
ZM_EXPORT int zm_wait_batch(struct zm_client *c, int timeout_ms, zm_batch_fn on_batch, void *userdata);

/*
 * Set the callback for agent errors (NULL: errors are dropped). It gets the
 * errors about single requests (err->ref set: EINVAL, EEXIST, ESRCH, EBADF,
 * ENOTSOCK, EPROTOTYPE, ENOSPC, EPERM; the monitor is then over) and about the connection (ref 0:
 * the agent closes it next, and the dispatch returns -ENOTCONN once it has
 * read the end). Among the latter: ETIMEDOUT or ENOBUFS when the agent
 * disconnects a subscriber that stopped reading (too long without reading,
 * or too many DOWNs waiting for it). When the agent managed to send that
 * ERROR, this callback gets it before a dispatch, wait, sync, status, stats
 * or targets call returns -ENOTCONN, even when a send (zm_flush(),
 * zm_monitor_*()) noticed the end first.
 */
ZM_EXPORT void zm_set_error_handler(struct zm_client *c, zm_error_fn on_error, void *userdata);

/*
 * Round trip: wait until the agent has processed every request sent before
 * this call (DOWNs and errors that arrive meanwhile are dispatched to the
 * callbacks). An error about any earlier request has reached the error
 * callback by the time this returns 0, and the kernel's watch maps show
 * every earlier monitor and demonitor. timeout_ms -1: no limit.
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

/*
 * Ask the agent for its metrics, waiting up to timeout_ms (-1: no limit):
 * *ret_text is the Prometheus text exposition format (version 0.0.4), the
 * same text zenmond --metrics-listen serves at /metrics; docs/METRICS.md
 * names every metric. malloc'd and NUL-terminated; free it. DOWNs that
 * arrive meanwhile are dispatched. 0, -ETIMEDOUT, -ENOTCONN (also what an
 * agent older than this request gives: it closes the connection), -EPROTO,
 * -ENOMEM, -EMSGSIZE (an answer over 256 MiB), the agent's refusal as
 * -errno, -EINVAL (ret_text NULL), -EBUSY from a callback.
 */
ZM_EXPORT int zm_stats(struct zm_client *c, int timeout_ms, char **ret_text,
		       zm_down_fn on_down, void *userdata);

/*
 * Ask the agent which targets it watches, beside what its kernel maps hold,
 * as text lines (the TARGETS_REPLY text, docs/PROTOCOL.md): one
 * "target kind=... monitors=N kernel=STATE subscribers=ID,..." line per
 * target (at most limit of them; 0: all), then the subscriber lines of
 * zm_status() and a "targets total=N listed=N ..." line. A kernel watch the
 * agent holds no target for shows with monitors=0. Listing walks the
 * kernel maps and, for TCP targets, the host's sockets: the agent is busy
 * for about a second per million targets. Returns and fails as zm_stats().
 */
ZM_EXPORT int zm_targets(struct zm_client *c, int timeout_ms, uint32_t limit, char **ret_text,
			 zm_down_fn on_down, void *userdata);

/* What a zm_conn_fn is told. */
enum zm_conn_event {
	ZM_CONN_LOST = 1,     /* the connection was lost (error: why, -errno);
				 reconnecting; zm_fd() is now a timer */
	ZM_CONN_RESTORED = 2, /* reconnected: zm_fd() is the new socket (re-add it
				 to an epoll set); error is the number of monitors
				 brought back */
};

typedef void (*zm_conn_fn)(struct zm_client *c, enum zm_conn_event event, int error,
			   void *userdata);

/*
 * Be told when the library loses the connection and when it has reconnected
 * (NULL: not told). Called from the dispatch, wait and sync calls, with the
 * same rules as the other callbacks.
 */
ZM_EXPORT void zm_set_conn_handler(struct zm_client *c, zm_conn_fn on_conn, void *userdata);

/* Is the library reconnecting now (the connection lost, not yet back)? */
ZM_EXPORT bool zm_reconnecting(const struct zm_client *c);

/* Number of monitors this client holds: requested and not yet DOWN,
 * demonitored or refused by the agent. */
ZM_EXPORT size_t zm_active_monitors(const struct zm_client *c);

/* "exited", "killed", "noproc", "tcp_closed", "noconnection" or "unknown". */
ZM_EXPORT const char *zm_reason_str(enum zm_down_reason reason);

/* "fin", "reset_rx", "reset_tx", "timeout", "error", or "none" for
 * ZM_TCP_HOW_NONE, "unknown" for anything else. */
ZM_EXPORT const char *zm_tcp_how_str(enum zm_tcp_how how);

/* The library's version string, e.g. "0.1.0". */
ZM_EXPORT const char *zm_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ZENMON_H */
