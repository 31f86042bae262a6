/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * libzenmon's insides, shared by its files:
 *   connect.c  the connection: HELLO/WELCOME, close, accessors
 *   send.c     requests: queueing, fd passing (pidfds, sockets), flushing
 *   recv.c     replies: reading, frame parsing, DOWN filtering and delivery
 *              (one DOWN at a time or a frame's worth at once), sync, status,
 *              stats, targets
 *   refset.c   the set of active references
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
/* Append one request record, honouring the agent's frame limit. */
int lzm_queue(struct zm_client *c, uint16_t type, const void *body, size_t len);
/* Flush when a lot is queued; errors are left for the next call to report. */
void lzm_maybe_flush(struct zm_client *c);
/* Close every dup'd fd still queued. */
void lzm_drop_fds(struct zm_client *c);
/* Milliseconds left until deadline (CLOCK_MONOTONIC ns), -1 for none. */
int lzm_ms_left(uint64_t deadline_ns);
uint64_t lzm_deadline(int timeout_ms);

#endif
