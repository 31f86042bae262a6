// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Replies: read what the agent sent, check each frame whole, then act on
 * its records. DOWNs are filtered against the active set at the moment they
 * are handed over, which is what makes zm_demonitor() final: a DOWN already
 * read, or still in the socket, finds its reference gone and is dropped.
 *
 * Callbacks run with records pointing into c->in; nothing a callback may
 * call (zm_monitor_*, zm_demonitor, zm_flush) touches c->in, and the calls
 * that would (zm_dispatch, zm_wait, zm_sync, zm_status) refuse with -EBUSY.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/* The fixed body length of the record types we act on; 0 for the rest. */
static size_t recv_min_len(uint16_t type)
{
	switch (type) {
	case ZM_REC_DOWN: return ZM_DOWN_LEN;
	case ZM_REC_ERROR: return ZM_ERROR_LEN;
	case ZM_REC_SYNCED: return ZM_SYNCED_LEN;
	case ZM_REC_STATUS_REPLY: return ZM_STATUS_REPLY_LEN;
	}
	return 0;
}

/* Has the zm_sync() / zm_status() in progress got its answer? */
static bool recv_synced(const struct zm_client *c)
{
	return c->sync_done;
}

static bool recv_status_done(const struct zm_client *c)
{
	return c->status_text || c->request_error;
}

static int recv_protocol_error(struct zm_client *c)
{
	lzm_fail(c, -EPROTO);
	/* Unusable now: let the agent drop our monitors at once. */
	shutdown(c->fd, SHUT_RDWR);
	return -EPROTO;
}

static void recv_down(struct zm_client *c, const struct zm_record *rec, zm_down_fn on_down,
		      void *userdata, int *downs)
{
	struct zm_down d;
	struct zm_down_info info = { 0 };

	(void)zm_dec_down(rec, &d);   /* length checked already */
	if (!lzm_refset_remove(&c->active, d.ref))
		return;   /* demonitored, already down, or never ours */

	info.ref = d.ref;
	info.time_ns = d.time_ns;
	info.kind = (enum zm_kind)d.kind;
	info.reason = (enum zm_down_reason)d.reason;
	info.pid = (pid_t)d.pid;
	info.start_ticks = d.start_ticks;
	if (d.reason == ZM_REASON_EXITED) {
		info.status = d.value;
	} else if (d.reason == ZM_REASON_KILLED) {
		info.signal = d.value;
		info.core_dumped = d.flags & ZM_DOWN_CORE_DUMPED;
	}
	(*downs)++;
	if (on_down)
		on_down(c, &info, userdata);
}

static void recv_error(struct zm_client *c, const struct zm_record *rec)
{
	struct zm_error e;
	struct zm_error_info info;

	(void)zm_dec_error(rec, &e);
	info.ref = e.ref;
	info.error = e.code > 0 ? e.code : EPROTO;
	info.request = e.request;
	info.message = e.message;

	/* ENOENT for a DEMONITOR means the monitor's DOWN crossed it on the
	 * wire (we only demonitor refs that were active here): the DOWN is
	 * dropped, zm_demonitor() kept its promise, nobody needs to know. */
	if (e.request == ZM_REC_DEMONITOR && e.code == ENOENT)
		return;
	/* A monitor the agent refused was never set: no DOWN will come. */
	if (e.ref && (e.request == ZM_REC_MONITOR_PROC || e.request == ZM_REC_MONITOR_PIDFD))
		lzm_refset_remove(&c->active, e.ref);
	/* zm_sync() and zm_status() learn of their request's failure. */
	if (e.request == ZM_REC_SYNC && c->sync_token && !c->sync_done) {
		c->sync_done = true;
		c->request_error = -info.error;
	}
	if (e.request == ZM_REC_STATUS && c->status_token && !recv_status_done(c))
		c->request_error = -info.error;

	if (c->on_error)
		c->on_error(c, &info, c->error_userdata);
}

static void recv_status_reply(struct zm_client *c, const struct zm_record *rec)
{
	uint64_t token;
	size_t len;
	char *text;

	(void)zm_dec_u64(rec, &token);
	if (!c->status_token || token != c->status_token || recv_status_done(c))
		return;
	len = rec->len - ZM_STATUS_REPLY_LEN;
	text = malloc(len + 1);
	if (!text) {
		c->request_error = -ENOMEM;
		return;
	}
	memcpy(text, rec->body + ZM_STATUS_REPLY_LEN, len);
	text[len] = '\0';
	c->status_text = text;
}

/* Act on every whole frame in c->in. 0, or -EPROTO. */
static int recv_parse(struct zm_client *c, zm_down_fn on_down, void *userdata, int *downs)
{
	for (;;) {
		struct zm_frame f;
		struct zm_record_iter it;
		struct zm_record rec;
		int r;

		r = zm_frame_parse(zm_buf_head(&c->in), zm_buf_pending(&c->in), ZM_FRAME_MAX, &f);
		if (r == 0)
			return 0;
		if (r < 0)
			return recv_protocol_error(c);

		/* Check the whole frame before acting on any of it. */
		zm_record_iter_init(&it, &f);
		while ((r = zm_record_next(&it, &rec)) > 0)
			if (rec.len < recv_min_len(rec.type))
				return recv_protocol_error(c);
		if (r < 0)
			return recv_protocol_error(c);

		zm_record_iter_init(&it, &f);
		while (zm_record_next(&it, &rec) > 0) {
			switch (rec.type) {
			case ZM_REC_DOWN:
				recv_down(c, &rec, on_down, userdata, downs);
				break;
			case ZM_REC_ERROR:
				recv_error(c, &rec);
				break;
			case ZM_REC_SYNCED: {
				uint64_t token;

				(void)zm_dec_u64(&rec, &token);
				if (c->sync_token && token == c->sync_token)
					c->sync_done = true;
				break;
			}
			case ZM_REC_STATUS_REPLY:
				recv_status_reply(c, &rec);
				break;
			default:
				break;   /* a newer agent's record: not for us */
			}
		}
		zm_buf_consume(&c->in, f.len);
	}
}

ZM_EXPORT int zm_dispatch(struct zm_client *c, zm_down_fn on_down, void *userdata)
{
	size_t budget = LZM_READ_BUDGET;
	bool eof = false;
	int downs = 0, r;

	if (!c)
		return -EINVAL;
	if (c->dispatching)
		return -EBUSY;
	if (c->dead)
		return -ENOTCONN;

	/* A send error marks the connection dead, but read on: the agent may
	 * have said why before it closed. */
	(void)zm_flush(c);

	c->dispatching = true;
	r = recv_parse(c, on_down, userdata, &downs);
	while (r == 0 && budget > 0) {
		ssize_t n;

		r = zm_buf_reserve(&c->in, LZM_READ_CHUNK);
		if (r < 0)
			break;
		n = recv(c->fd, c->in.data + c->in.len, LZM_READ_CHUNK, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				lzm_fail(c, -ENOTCONN);
			break;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		c->in.len += (size_t)n;
		budget -= (size_t)n < budget ? (size_t)n : budget;
		r = recv_parse(c, on_down, userdata, &downs);
	}
	c->dispatching = false;

	if (r < 0)
		return r;
	if (eof)
		return lzm_fail(c, -ENOTCONN);
	if (c->dead)
		return -ENOTCONN;
	return downs;
}

/* Has c->in a whole frame (or garbage) that a dispatch would act on? */
static bool recv_has_frame(const struct zm_client *c)
{
	struct zm_frame f;

	return zm_frame_parse(zm_buf_head(&c->in), zm_buf_pending(&c->in), ZM_FRAME_MAX, &f) != 0;
}

/* Wait up to ms for the socket (or a buffered frame). 1 ready, 0 timeout. */
static int recv_poll(struct zm_client *c, int ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

	if (recv_has_frame(c))
		return 1;
	if (zm_buf_pending(&c->out) > 0)
		pfd.events |= POLLOUT;
	if (poll(&pfd, 1, ms) < 0)
		return -errno;
	return pfd.revents != 0;
}

ZM_EXPORT int zm_wait(struct zm_client *c, int timeout_ms, zm_down_fn on_down, void *userdata)
{
	int r;

	if (!c)
		return -EINVAL;
	if (c->dispatching)
		return -EBUSY;
	if (c->dead)
		return -ENOTCONN;
	r = recv_poll(c, timeout_ms < 0 ? -1 : timeout_ms);
	if (r <= 0)
		return r;
	return zm_dispatch(c, on_down, userdata);
}

/* Dispatch until done(c) or the deadline. 0, -ETIMEDOUT, or a dispatch error. */
static int recv_until(struct zm_client *c, bool (*done)(const struct zm_client *c), int timeout_ms,
		      zm_down_fn on_down, void *userdata)
{
	uint64_t deadline = lzm_deadline(timeout_ms);

	for (;;) {
		int r = zm_dispatch(c, on_down, userdata);

		if (r < 0)
			return r;
		if (done(c))
			return 0;
		r = lzm_ms_left(deadline);
		if (r == 0)
			return -ETIMEDOUT;
		r = recv_poll(c, r);
		if (r < 0 && r != -EINTR)
			return r;
	}
}

/* Queue a SYNC or STATUS with a fresh token. */
static int recv_queue_token(struct zm_client *c, uint16_t type, uint64_t *ret_token)
{
	uint8_t body[8];
	int r;

	if (c->dispatching)
		return -EBUSY;
	if (c->dead)
		return -ENOTCONN;
	r = lzm_queue(c, type, body, zm_enc_u64(body, c->next_token));
	if (r < 0)
		return r;
	*ret_token = c->next_token++;
	c->request_error = 0;
	return 0;
}

ZM_EXPORT int zm_sync(struct zm_client *c, int timeout_ms, zm_down_fn on_down, void *userdata)
{
	int r;

	if (!c)
		return -EINVAL;
	r = recv_queue_token(c, ZM_REC_SYNC, &c->sync_token);
	if (r < 0)
		return r;
	c->sync_done = false;
	r = recv_until(c, recv_synced, timeout_ms, on_down, userdata);
	if (r == 0)
		r = c->request_error;
	/* A SYNCED that comes after a timeout matches nothing. */
	c->sync_token = 0;
	c->request_error = 0;
	return r;
}

ZM_EXPORT int zm_status(struct zm_client *c, int timeout_ms, char **ret_text,
			zm_down_fn on_down, void *userdata)
{
	int r;

	if (!c || !ret_text)
		return -EINVAL;
	r = recv_queue_token(c, ZM_REC_STATUS, &c->status_token);
	if (r < 0)
		return r;
	r = recv_until(c, recv_status_done, timeout_ms, on_down, userdata);
	if (r == 0)
		r = c->request_error;
	if (r == 0) {
		*ret_text = c->status_text;
		c->status_text = NULL;
	}
	free(c->status_text);
	c->status_text = NULL;
	c->status_token = 0;
	c->request_error = 0;
	return r;
}
