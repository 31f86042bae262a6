/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * libzenmon's insides, shared by its files:
 *   connect.c  the connection: HELLO/WELCOME, close, accessors
 *   send.c     requests: queueing, fd passing (pidfds, sockets), flushing
 *   recv.c     replies: reading, frame parsing, DOWN filtering and delivery
 *              (one DOWN at a time or a frame's worth at once), sync, status,
 *              stats, targets
 *   refset.c   the set of active references
 *   resume.c   reconnecting after the agent went away, and bringing the
 *              monitors back
 * Nothing here is exported (the library is built -fvisibility=hidden).
 */
#ifndef LIBZENMON_INTERNAL_H
#define LIBZENMON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zenmon.h"
#include "zenmon/proto.h"
#include "refset.h"

/* Flush on our own once this many request bytes are queued. */
#define LZM_AUTOFLUSH_BYTES (64U * 1024)
/* Most fds one sendmsg() can carry (the kernel's SCM_MAX_FD). */
#define LZM_MAX_FDS_PER_MSG 253U
/* recv() chunk, and how much one zm_dispatch() reads before returning. A
 * big chunk keeps a flood at a few syscalls per thousand DOWNs. */
#define LZM_READ_CHUNK (256U * 1024)
#define LZM_READ_BUDGET (1U << 20)
#define LZM_DEFAULT_TIMEOUT_MS 5000
/* The longest STATS or TARGETS answer we collect. */
#define LZM_TEXT_MAX (256U << 20)

/* Reconnection backoff: the first try at once, then this, doubling. */
#define LZM_BACKOFF_MIN_MS 10
#define LZM_BACKOFF_MAX_MS 1000

/* What the library knows of an active monitor's target (struct lzm_refval). */
enum lzm_id_state {
	LZM_ID_NONE = 0,      /* not resumable: nothing kept */
	LZM_ID_KNOWN = 1,     /* kind, pid, id (start ticks or cookie) */
	LZM_ID_PID = 2,       /* a pid alone, not yet resolved by the agent */
	LZM_ID_PEND = 3,      /* named by fd or tuple, not yet resolved: id is a struct lzm_pend * */
};

/* How to send a monitor again whose target the agent has not named yet. */
struct lzm_pend {
	uint16_t type;        /* ZM_REC_MONITOR_PIDFD or ZM_REC_MONITOR_TCP */
	uint8_t by;           /* MONITOR_TCP: ZM_TCP_BY_FD or ZM_TCP_BY_TUPLE */
	int fd;               /* our own dup of the pidfd or socket, or -1 */
	struct zm_tcp_tuple tuple;
};

/* A dup'd fd (pidfd or socket) waiting to be sent with the frame that starts at pos. */
struct lzm_pending_fd {
	uint64_t pos;         /* offset in the outgoing byte stream */
	int fd;
};

struct zm_client {
	int fd;
	int dead;             /* 0, or why the connection is unusable (-errno) */
	bool rd_done;         /* nothing more to read: EOF, a read error, or a
				 frame we refused. A dead connection is still
				 read until then, so that the agent's last words
				 (DOWNs, the ERROR saying why it hung up) are
				 handed over before -ENOTCONN. */
	bool dispatching;     /* inside a dispatch: no nested dispatch */

	/* Reconnection (resume.c). */
	bool resumable;       /* reconnect when the connection is lost */
	bool reconnecting;    /* lost; fd is a timerfd until the next try */
	int backoff_ms;       /* the wait before the next try after this one fails */
	uint64_t rng;         /* for the jitter */
	char *path;           /* the agent's socket */
	struct zm_hello hello;        /* sent again on each connection */
	uint32_t text_limit;  /* the TARGETS limit in progress, to send it again */
	struct zm_down_info *local;   /* DOWNs the library owes without the agent */
	size_t nlocal, local_cap;
	zm_conn_fn on_conn;
	void *conn_userdata;

	struct lzm_refset active;
	uint64_t next_ref;
	uint64_t next_token;

	/* Outgoing: requests, framed. out_pos is the stream offset of the
	 * first unsent byte, so a pending fd's pos stays right however the
	 * buffer is compacted. */
	struct zm_buf out;
	struct zm_frame_writer w;
	uint64_t out_pos;
	struct lzm_pending_fd *fds;   /* FIFO [fd_head, fd_len) */
	size_t fd_head, fd_len, fd_cap;
	uint64_t fd_frame_pos;        /* stream offset of the last frame that got fds, */
	unsigned int fd_frame_count;  /* and how many it got */
	size_t autoflush_mark;        /* pending bytes after the last flush */
	uint32_t max_frame;           /* the agent's, from WELCOME */

	/* Incoming. batch holds the DOWNs of the frame being handed over,
	 * decoded; it grows to the largest frame seen and is reused. */
	struct zm_buf in;
	struct zm_down_info *batch;
	size_t batch_len, batch_cap;

	zm_error_fn on_error;
	void *error_userdata;

	/* zm_sync() / zm_status() in progress (token 0: none). */
	uint64_t sync_token;
	bool sync_done;
	uint64_t status_token;
	char *status_text;
	int request_error;            /* the agent refused the SYNC/STATUS/STATS/TARGETS */

	/* zm_stats() / zm_targets() in progress (token 0: none): the text of
	 * the reply records so far, until one comes without ZM_TEXT_MORE. */
	uint64_t text_token;
	uint16_t text_request;        /* ZM_REC_STATS or ZM_REC_TARGETS */
	uint16_t text_reply;          /* the reply's record type */
	struct zm_buf text;
	bool text_done;

	struct zm_welcome welcome;
};

/* Mark the connection unusable with err (first cause wins); returns err. */
int lzm_fail(struct zm_client *c, int err);

/* ---- resume.c ---- */
/* Is the connection down but coming back (lost and resumable, or reconnecting)? */
bool lzm_resuming(const struct zm_client *c);
/* Record what is known of ref's target (just added to c->active). With fd
 * >= 0 (a pidfd or socket), or t (a tuple), the monitor is kept pending
 * until the agent names its target: fd is dup'd for that. 0 or -errno. */
int lzm_ident_set(struct zm_client *c, uint64_t ref, uint8_t kind, uint32_t pid, uint64_t id,
		  enum lzm_id_state state, uint16_t type, uint8_t by, int fd,
		  const struct zm_tcp_tuple *t);
/* A MONITORED record: the agent named ref's target. */
void lzm_ident_resolved(struct zm_client *c, const struct zm_monitored *m);
/* ref is over (DOWN, refused, demonitored): forget it. true if it was active. */
bool lzm_ref_end(struct zm_client *c, uint64_t ref);
/* The read side is over and the connection lost: reconnect (or schedule it).
 * false when it will not (not resumable): the connection is then over. */
bool lzm_conn_lost(struct zm_client *c, int err);
/* Reconnecting: try now if the time has come. */
void lzm_reconnect_poll(struct zm_client *c);
/* A WELCOME on a connection made by lzm_reconnect_poll(). 0 or -EPROTO. */
int lzm_on_welcome(struct zm_client *c, const struct zm_welcome *w);
/* Free what resume.c holds. */
void lzm_resume_free(struct zm_client *c);
/* Append one request record, honouring the agent's frame limit. */
int lzm_queue(struct zm_client *c, uint16_t type, const void *body, size_t len);
/* Append one record that claims a passed fd, a dup of fd riding with it. */
int lzm_queue_fd(struct zm_client *c, uint16_t type, const void *body, size_t len, int fd);
/* Flush when a lot is queued; errors are left for the next call to report. */
void lzm_maybe_flush(struct zm_client *c);
/* Close every dup'd fd still queued. */
void lzm_drop_fds(struct zm_client *c);
/* Milliseconds left until deadline (CLOCK_MONOTONIC ns), -1 for none. */
int lzm_ms_left(uint64_t deadline_ns);
uint64_t lzm_deadline(int timeout_ms);

#endif
