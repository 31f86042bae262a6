// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Replies: read what the agent sent, check each frame whole, then act on
 * its records. One parser serves both ways of taking DOWNs: the DOWNs of a
 * frame are decoded into c->batch and handed to a zm_batch_fn in chunks,
 * of the whole frame for zm_dispatch_batch() and of one DOWN for
 * zm_dispatch() (whose zm_down_fn sits behind recv_one_by_one()).
 *
 * DOWNs are filtered against the active set at the moment their chunk is
 * handed over, which is what makes zm_demonitor() final: a DOWN already
 * read, or still in the socket, finds its reference gone and is dropped.
 * With chunks of one that holds even for a DOWN later in the same frame as
 * the one whose callback demonitored it.
 *
 * Callbacks run with records pointing into c->in and DOWNs in c->batch;
 * nothing a callback may call (zm_monitor_*, zm_demonitor, zm_flush)
 * touches either, and the calls that would (the dispatches and waits,
 * zm_sync, zm_status) refuse with -EBUSY.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/* At most this many dispatches to read a dead connection's last bytes. */
#define RECV_DRAIN_MAX 64

/* Where a dispatch hands DOWNs: fn (NULL: nowhere, only counted) gets at
 * most chunk of them per call. */
struct recv_sink {
	zm_batch_fn fn;
	void *userdata;
	size_t chunk;
};

/* zm_dispatch()'s callback behind the batch interface. */
struct recv_single {
	zm_down_fn on_down;
	void *userdata;
};

static void recv_one_by_one(struct zm_client *c, const struct zm_down_info *downs, size_t n,
			    void *userdata)
{
	const struct recv_single *s = userdata;

	for (size_t i = 0; i < n; i++)
		s->on_down(c, &downs[i], s->userdata);
}

static struct recv_sink recv_sink_single(struct recv_single *s, zm_down_fn on_down, void *userdata)
{
	s->on_down = on_down;
	s->userdata = userdata;
	return (struct recv_sink){ .fn = on_down ? recv_one_by_one : NULL, .userdata = s, .chunk = 1 };
}

static struct recv_sink recv_sink_batch(zm_batch_fn on_batch, void *userdata)
{
	return (struct recv_sink){ .fn = on_batch, .userdata = userdata, .chunk = SIZE_MAX };
}

/* Is a record we act on long enough to decode? Types we skip always are.
 * A DOWN's length depends on its kind: the codec knows. */
static bool recv_record_ok(const struct zm_record *rec)
{
	struct zm_down d;

	switch (rec->type) {
	case ZM_REC_DOWN: return zm_dec_down(rec, &d) == 0;
	case ZM_REC_ERROR: return rec->len >= ZM_ERROR_LEN;
	case ZM_REC_SYNCED: return rec->len >= ZM_SYNCED_LEN;
	case ZM_REC_STATUS_REPLY: return rec->len >= ZM_STATUS_REPLY_LEN;
	case ZM_REC_STATS_REPLY:
	case ZM_REC_TARGETS_REPLY: return rec->len >= ZM_TEXT_REPLY_LEN;
	case ZM_REC_MONITORED: return rec->len >= ZM_MONITORED_LEN;
	case ZM_REC_WELCOME: return rec->len >= ZM_WELCOME_LEN;
	}
	return true;
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

static bool recv_text_done(const struct zm_client *c)
{
	return c->text_done || c->request_error;
}

/* The read side is over (EOF, a read error): so is the connection. */
static int recv_end(struct zm_client *c)
{
	c->rd_done = true;
	return lzm_fail(c, -ENOTCONN);
}

static int recv_protocol_error(struct zm_client *c)
{
	lzm_fail(c, -EPROTO);
	c->rd_done = true;
	/* Unusable now: let the agent drop our monitors at once. */
	shutdown(c->fd, SHUT_RDWR);
	return -EPROTO;
}

/* Make room for n decoded DOWNs in c->batch (empty on entry). 0 or -ENOMEM. */
static int recv_reserve_batch(struct zm_client *c, size_t n)
{
	struct zm_down_info *b;
	size_t cap;

	if (n <= c->batch_cap)
		return 0;
	/* n is at most a frame's record count (a u16): no overflow. */
	for (cap = c->batch_cap ? c->batch_cap : 64; cap < n; cap *= 2)
		;
	b = malloc(cap * sizeof(*b));   /* nothing in the old one to keep */
	if (!b)
		return -ENOMEM;
	free(c->batch);
	c->batch = b;
	c->batch_cap = cap;
	return 0;
}

/* The wire's tuple as the API's endpoints; family 0 (unknown) stays all 0. */
static void recv_decode_endpoints(const struct zm_tcp_tuple *t, struct zm_tcp_endpoints *e)
{
	size_t alen;

	if (t->family == AF_INET)
		alen = sizeof(e->local.v4);
	else if (t->family == AF_INET6)
		alen = sizeof(e->local.v6);
	else
		return;   /* unknown: nothing we could name */
	e->family = t->family;
	memcpy(&e->local, t->saddr, alen);
	memcpy(&e->remote, t->daddr, alen);
	e->local_port = t->sport;
	e->remote_port = t->dport;
}

static void recv_decode_down(const struct zm_record *rec, struct zm_down_info *info)
{
	struct zm_down d;

	(void)zm_dec_down(rec, &d);   /* checked already */
	*info = (struct zm_down_info){
		.ref = d.ref,
		.time_ns = d.time_ns,
		.kind = (enum zm_kind)d.kind,
		.reason = (enum zm_down_reason)d.reason,
	};
	if (d.kind == ZM_TARGET_TCP) {
		info->cookie = d.start_ticks;
		if (d.reason == ZM_REASON_TCP_CLOSED) {
			info->tcp_how = (enum zm_tcp_how)d.tcp_how;
			info->tcp_errno = d.value;
		}
		info->tcp_old_state = d.tcp_old_state;
		recv_decode_endpoints(&d.tuple, &info->tcp);
		return;
	}
	info->pid = (pid_t)d.pid;
	info->start_ticks = d.start_ticks;
	if (d.reason == ZM_REASON_EXITED) {
		info->status = d.value;
	} else if (d.reason == ZM_REASON_KILLED) {
		info->signal = d.value;
		info->core_dumped = d.flags & ZM_DOWN_CORE_DUMPED;
	}
}

/*
 * Hand over the DOWNs collected in c->batch, chunk by chunk, dropping each
 * whose reference is no longer active (demonitored, already down, or never
 * ours). A reference leaves the active set only as its chunk is formed, so
 * a callback's zm_demonitor() of a reference not yet handed over works.
 * The survivors are packed to the front in place: no copy elsewhere.
 */
static void recv_deliver(struct zm_client *c, const struct recv_sink *k, int *downs)
{
	struct zm_down_info *d = c->batch;
	size_t n = c->batch_len, i = 0, w = 0;

	c->batch_len = 0;
	while (i < n) {
		size_t first = w;

		for (; i < n && w - first < k->chunk; i++) {
			if (!lzm_ref_end(c, d[i].ref))
				continue;
			if (w != i)
				d[w] = d[i];
			w++;
		}
		if (w == first)
			continue;
		*downs += (int)(w - first);
		if (k->fn)
			k->fn(c, d + first, w - first, k->userdata);
	}
}

/* DOWNs the library owes without the agent (resume.c: monitors whose target
 * the agent had said was gone), handed over like the agent's. */
static void recv_deliver_local(struct zm_client *c, const struct recv_sink *k, int *downs)
{
	size_t n = c->nlocal;

	if (n == 0 || recv_reserve_batch(c, n) < 0)
		return;   /* out of memory: they stay owed, for the next dispatch */
	memcpy(c->batch, c->local, n * sizeof(*c->batch));
	c->batch_len = n;
	c->nlocal = 0;
	recv_deliver(c, k, downs);
}

static void recv_error(struct zm_client *c, const struct zm_record *rec, const struct recv_sink *k,
		       int *downs)
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
	/* Callbacks see records in wire order: the DOWNs before this ERROR
	 * go first (only then is a frame's batch split). */
	if (c->on_error)
		recv_deliver(c, k, downs);
	/* A monitor the agent refused was never set: no DOWN will come. */
	if (e.ref && (e.request == ZM_REC_MONITOR_PROC || e.request == ZM_REC_MONITOR_PIDFD ||
		      e.request == ZM_REC_MONITOR_TCP))
		lzm_ref_end(c, e.ref);
	/* An ERROR about the connection itself (ref 0, request 0) comes just
	 * before the agent closes it on purpose: a protocol error of ours, a
	 * refused HELLO, --stall-timeout, --max-queued, a quota. Coming back
	 * would undo what it meant (or be refused again): the end is final. */
	if ((e.ref == 0 && e.request == 0) || e.request == ZM_REC_HELLO)
		c->resumable = false;
	/* zm_sync() and zm_status() learn of their request's failure. */
	if (e.request == ZM_REC_SYNC && c->sync_token && !c->sync_done) {
		c->sync_done = true;
		c->request_error = -info.error;
	}
	if (e.request == ZM_REC_STATUS && c->status_token && !recv_status_done(c))
		c->request_error = -info.error;
	if (e.request && e.request == c->text_request && c->text_token && !recv_text_done(c))
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

/* One record of a STATS or TARGETS answer: its text joins what came before. */
static void recv_text_reply(struct zm_client *c, const struct zm_record *rec)
{
	struct zm_text_reply t;

	(void)zm_dec_text_reply(rec, &t);   /* checked already */
	if (!c->text_token || t.token != c->text_token || rec->type != c->text_reply ||
	    recv_text_done(c))
		return;
	if (zm_buf_pending(&c->text) + t.text_len > LZM_TEXT_MAX) {
		c->request_error = -EMSGSIZE;
		return;
	}
	if (zm_buf_append(&c->text, t.text, t.text_len) < 0) {
		c->request_error = -ENOMEM;
		return;
	}
	if (!(t.flags & ZM_TEXT_MORE))
		c->text_done = true;
}

/* Act on every whole frame in c->in. 0, -EPROTO, or -ENOMEM (the frame
 * that did not fit stays buffered, untouched, for the next call). */
static int recv_parse(struct zm_client *c, const struct recv_sink *k, int *downs)
{
	for (;;) {
		struct zm_frame f;
		struct zm_record_iter it;
		struct zm_record rec;
		size_t n_downs = 0;
		int r;

		r = zm_frame_parse(zm_buf_head(&c->in), zm_buf_pending(&c->in), ZM_FRAME_MAX, &f);
		if (r == 0)
			return 0;
		if (r < 0)
			return recv_protocol_error(c);

		/* Check the whole frame before acting on any of it. */
		zm_record_iter_init(&it, &f);
		while ((r = zm_record_next(&it, &rec)) > 0) {
			if (!recv_record_ok(&rec))
				return recv_protocol_error(c);
			n_downs += rec.type == ZM_REC_DOWN;
		}
		if (r < 0)
			return recv_protocol_error(c);
		r = recv_reserve_batch(c, n_downs);
		if (r < 0)
			return r;

		zm_record_iter_init(&it, &f);
		while (zm_record_next(&it, &rec) > 0) {
			switch (rec.type) {
			case ZM_REC_DOWN:
				recv_decode_down(&rec, &c->batch[c->batch_len++]);
				break;
			case ZM_REC_ERROR:
				recv_error(c, &rec, k, downs);
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
			case ZM_REC_MONITORED: {
				struct zm_monitored m;

				(void)zm_dec_monitored(&rec, &m);   /* checked already */
				lzm_ident_resolved(c, &m);
				break;
			}
			case ZM_REC_WELCOME: {
				/* A reconnection's (resume.c); the first one's
				 * was read by zm_connect(). */
				struct zm_welcome w;

				if (zm_dec_welcome(&rec, &w) < 0 || lzm_on_welcome(c, &w) < 0)
					return recv_protocol_error(c);
				break;
			}
			case ZM_REC_STATS_REPLY:
			case ZM_REC_TARGETS_REPLY:
				recv_text_reply(c, &rec);
				break;
			default:
				break;   /* a newer agent's record: not for us */
			}
		}
		recv_deliver(c, k, downs);
		zm_buf_consume(&c->in, f.len);
	}
}

/* Room for one read at the end of c->in. The partial frame left at the
 * front slides down first, so the buffer stays near one read plus one
 * frame instead of growing with every read that ends mid-frame. */
static int recv_make_room(struct zm_buf *b)
{
	if (b->cap - b->len < LZM_READ_CHUNK && b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	return zm_buf_reserve(b, LZM_READ_CHUNK);
}

/* Both dispatches: flush, then read and act on up to LZM_READ_BUDGET bytes. */
static int recv_dispatch(struct zm_client *c, const struct recv_sink *k)
{
	size_t budget = LZM_READ_BUDGET;
	int downs = 0, r;

	if (c->dispatching)
		return -EBUSY;
	if (c->dead && c->rd_done)
		return -ENOTCONN;
	/* Reconnecting: try if it is time; DOWNs owed meanwhile go out. */
	lzm_reconnect_poll(c);
	if (c->reconnecting) {
		c->dispatching = true;
		recv_deliver_local(c, k, &downs);
		c->dispatching = false;
		return downs;
	}

	/* A send error marks the connection dead, but read on: the agent may
	 * have said why before it closed, and that must reach the callbacks
	 * before we say -ENOTCONN (or reconnect). */
	if (!c->dead)
		(void)zm_flush(c);

	c->dispatching = true;
	recv_deliver_local(c, k, &downs);
	r = recv_parse(c, k, &downs);
	while (r == 0 && budget > 0) {
		ssize_t n;

		r = recv_make_room(&c->in);
		if (r < 0)
			break;
		n = recv(c->fd, c->in.data + c->in.len, LZM_READ_CHUNK, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Nothing more now. On a dead connection nothing more
			 * will come either: the agent hung up (EOF is usual,
			 * ECONNRESET when it left our requests unread). */
			if (errno != EAGAIN || c->dead)
				recv_end(c);
			break;
		}
		if (n == 0) {
			recv_end(c);
			break;
		}
		c->in.len += (size_t)n;
		budget -= (size_t)n < budget ? (size_t)n : budget;
		r = recv_parse(c, k, &downs);
	}
	c->dispatching = false;

	if (r < 0)
		return r;
	/* Everything the lost connection held is handed over: come back. */
	if (c->rd_done && lzm_conn_lost(c, c->dead ? c->dead : -ENOTCONN))
		return downs;
	if (c->rd_done)
		return -ENOTCONN;
	return downs;
}

/* A dead connection: hand over what the agent sent before it went, then
 * -ENOTCONN (or the dispatch's own error). */
static int recv_drain(struct zm_client *c, const struct recv_sink *k)
{
	for (int i = 0; i < RECV_DRAIN_MAX; i++) {
		int r = recv_dispatch(c, k);

		if (r < 0)
			return r;
	}
	c->rd_done = true;
	return -ENOTCONN;
}

ZM_EXPORT int zm_dispatch(struct zm_client *c, zm_down_fn on_down, void *userdata)
{
	struct recv_single s;
	struct recv_sink k = recv_sink_single(&s, on_down, userdata);

	if (!c)
		return -EINVAL;
	return recv_dispatch(c, &k);
}

ZM_EXPORT int zm_dispatch_batch(struct zm_client *c, zm_batch_fn on_batch, void *userdata)
{
	struct recv_sink k = recv_sink_batch(on_batch, userdata);

	if (!c)
		return -EINVAL;
	return recv_dispatch(c, &k);
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

	/* A dead connection has only its last bytes left: go and read them. */
	if (c->dead || recv_has_frame(c) || c->nlocal)
		return 1;
	/* Reconnecting: the fd is the timer of the next try. */
	if (zm_buf_pending(&c->out) > 0)
		pfd.events |= POLLOUT;
	if (poll(&pfd, 1, ms) < 0)
		return -errno;
	return pfd.revents != 0;
}

static int recv_wait(struct zm_client *c, int timeout_ms, const struct recv_sink *k)
{
	int r;

	if (c->dispatching)
		return -EBUSY;
	if (c->dead && c->rd_done)
		return -ENOTCONN;
	r = recv_poll(c, timeout_ms < 0 ? -1 : timeout_ms);
	if (r <= 0)
		return r;
	return recv_dispatch(c, k);
}

ZM_EXPORT int zm_wait(struct zm_client *c, int timeout_ms, zm_down_fn on_down, void *userdata)
{
	struct recv_single s;
	struct recv_sink k = recv_sink_single(&s, on_down, userdata);

	if (!c)
		return -EINVAL;
	return recv_wait(c, timeout_ms, &k);
}

ZM_EXPORT int zm_wait_batch(struct zm_client *c, int timeout_ms, zm_batch_fn on_batch, void *userdata)
{
	struct recv_sink k = recv_sink_batch(on_batch, userdata);

	if (!c)
		return -EINVAL;
	return recv_wait(c, timeout_ms, &k);
}

/* Dispatch until done(c) or the deadline. 0, -ETIMEDOUT, or a dispatch error. */
static int recv_until(struct zm_client *c, bool (*done)(const struct zm_client *c), int timeout_ms,
		      const struct recv_sink *k)
{
	uint64_t deadline = lzm_deadline(timeout_ms);

	for (;;) {
		int r = recv_dispatch(c, k);

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

/* Queue a SYNC or STATUS with a fresh token. On a dead connection, hand
 * over what is left to read and fail with -ENOTCONN. */
static int recv_queue_token(struct zm_client *c, uint16_t type, const struct recv_sink *k,
			    uint64_t *ret_token)
{
	uint8_t body[8];
	int r;

	if (c->dispatching)
		return -EBUSY;
	if (c->dead && !lzm_resuming(c))
		return c->rd_done ? -ENOTCONN : recv_drain(c, k);
	/* Resuming: queued nowhere now, sent on the next connection. */
	r = lzm_queue(c, type, body, zm_enc_u64(body, c->next_token));
	if (r < 0)
		return r;
	*ret_token = c->next_token++;
	c->request_error = 0;
	return 0;
}

ZM_EXPORT int zm_sync(struct zm_client *c, int timeout_ms, zm_down_fn on_down, void *userdata)
{
	struct recv_single s;
	struct recv_sink k = recv_sink_single(&s, on_down, userdata);
	int r;

	if (!c)
		return -EINVAL;
	r = recv_queue_token(c, ZM_REC_SYNC, &k, &c->sync_token);
	if (r < 0)
		return r;
	c->sync_done = false;
	r = recv_until(c, recv_synced, timeout_ms, &k);
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
	struct recv_single s;
	struct recv_sink k = recv_sink_single(&s, on_down, userdata);
	int r;

	if (!c || !ret_text)
		return -EINVAL;
	r = recv_queue_token(c, ZM_REC_STATUS, &k, &c->status_token);
	if (r < 0)
		return r;
	r = recv_until(c, recv_status_done, timeout_ms, &k);
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

/*
 * A request answered by text-reply records (STATS, TARGETS): queue body
 * (its first 8 bytes are set to a fresh token here), collect the answer's
 * text and hand it over NUL-terminated.
 */
static int recv_text_request(struct zm_client *c, uint16_t type, uint16_t reply, uint8_t *body,
			     size_t len, int timeout_ms, char **ret_text, zm_down_fn on_down,
			     void *userdata)
{
	struct recv_single s;
	struct recv_sink k = recv_sink_single(&s, on_down, userdata);
	int r;

	if (c->dispatching)
		return -EBUSY;
	if (c->dead && !lzm_resuming(c))
		return c->rd_done ? -ENOTCONN : recv_drain(c, &k);
	zm_enc_u64(body, c->next_token);
	r = lzm_queue(c, type, body, len);
	if (r < 0)
		return r;
	c->text_token = c->next_token++;
	c->text_request = type;
	c->text_reply = reply;
	c->text_done = false;
	c->request_error = 0;
	zm_buf_free(&c->text);

	r = recv_until(c, recv_text_done, timeout_ms, &k);
	if (r == 0)
		r = c->request_error;
	if (r == 0)
		r = zm_buf_append(&c->text, "", 1);
	if (r == 0) {
		/* Only ever appended to: the text starts at offset 0. */
		*ret_text = (char *)c->text.data;
		c->text = (struct zm_buf){ 0 };
	}
	zm_buf_free(&c->text);
	/* Records of this answer that come after a timeout match nothing. */
	c->text_token = 0;
	c->text_request = c->text_reply = 0;
	c->request_error = 0;
	return r;
}

ZM_EXPORT int zm_stats(struct zm_client *c, int timeout_ms, char **ret_text,
		       zm_down_fn on_down, void *userdata)
{
	uint8_t body[ZM_STATS_LEN];

	if (!c || !ret_text)
		return -EINVAL;
	return recv_text_request(c, ZM_REC_STATS, ZM_REC_STATS_REPLY, body, sizeof(body),
				 timeout_ms, ret_text, on_down, userdata);
}

ZM_EXPORT int zm_targets(struct zm_client *c, int timeout_ms, uint32_t limit, char **ret_text,
			 zm_down_fn on_down, void *userdata)
{
	struct zm_targets m = { .limit = limit };
	uint8_t body[ZM_TARGETS_LEN];

	if (!c || !ret_text)
		return -EINVAL;
	c->text_limit = limit;   /* to ask again after a reconnection */
	return recv_text_request(c, ZM_REC_TARGETS, ZM_REC_TARGETS_REPLY, body,
				 zm_enc_targets(body, &m), timeout_ms, ret_text, on_down, userdata);
}
