// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The zenmon wire codec: see include/zenmon/proto.h and docs/PROTOCOL.md.
 * Pure byte shuffling, no I/O. Every integer goes through the byte-wise
 * helpers below, so the wire is little-endian whatever the host is, and no
 * access is ever unaligned.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zenmon/proto.h>

/* ---- little-endian helpers --------------------------------------------- */

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* ---- zm_buf -------------------------------------------------------------- */

#define ZM_BUF_MIN_CAP 256U

int zm_buf_reserve(struct zm_buf *b, size_t n)
{
	size_t cap;
	uint8_t *data;

	if (b->cap - b->len >= n)
		return 0;
	if (n > SIZE_MAX - b->len)
		return -ENOMEM;
	/* Geometric growth: appending k bytes one at a time costs O(k) copies. */
	cap = b->cap ? b->cap : ZM_BUF_MIN_CAP;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	/* realloc keeps every offset valid, which the frame writer relies on. */
	data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

int zm_buf_append(struct zm_buf *b, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	r = zm_buf_reserve(b, n);
	if (r < 0)
		return r;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void zm_buf_consume(struct zm_buf *b, size_t n)
{
	assert(n <= zm_buf_pending(b));
	b->off += n;
	if (b->off == b->len) {
		/* The common case (everything was sent): no copy at all. */
		b->off = 0;
		b->len = 0;
	} else if (b->off > b->cap / 2) {
		/* Compact only once the dead prefix is most of the buffer, so a
		 * byte is moved at most a bounded number of times on average. */
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
}

void zm_buf_free(struct zm_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->off = 0;
	b->len = 0;
	b->cap = 0;
}

/* ---- frame writer ----------------------------------------------------- */

void zm_frame_writer_init(struct zm_frame_writer *w, struct zm_buf *buf)
{
	w->buf = buf;
	w->start = 0;
	w->count = 0;
	w->open = 0;
}

size_t zm_frame_open_len(const struct zm_frame_writer *w)
{
	if (!w->open)
		return 0;
	/* Someone consumed from the buffer while a frame was open in it. */
	assert(w->start >= w->buf->off && w->start + ZM_FRAME_HDR_LEN <= w->buf->len);
	return w->buf->len - w->start;
}

void zm_frame_end(struct zm_frame_writer *w)
{
	uint8_t *hdr;
	size_t len;

	if (!w->open)
		return;
	len = zm_frame_open_len(w);
	hdr = w->buf->data + w->start;
	put_le32(hdr, (uint32_t)len);
	put_le16(hdr + 4, ZM_FRAME_MAGIC);
	put_le16(hdr + 6, w->count);
	w->open = 0;
	w->count = 0;
	w->start = 0;
}

int zm_frame_add(struct zm_frame_writer *w, uint16_t type, const void *body, size_t len)
{
	struct zm_buf *b = w->buf;
	size_t rec_len, need;
	int reopen, r;
	uint8_t *p;

	if (len > ZM_REC_MAX - ZM_REC_HDR_LEN)
		return -EMSGSIZE;
	rec_len = ZM_REC_HDR_LEN + len;
	if (ZM_FRAME_HDR_LEN + rec_len > ZM_FRAME_MAX)
		return -EMSGSIZE;

	reopen = !w->open || w->count == UINT16_MAX ||
		 zm_frame_open_len(w) + rec_len > ZM_FRAME_MAX;
	/* Reserve the worst case first, so that -ENOMEM changes nothing. */
	need = rec_len + (reopen ? ZM_FRAME_HDR_LEN : 0);
	r = zm_buf_reserve(b, need);
	if (r < 0)
		return r;

	if (reopen) {
		zm_frame_end(w);
		w->start = b->len;
		w->open = 1;
		w->count = 0;
		/* The header is patched by zm_frame_end(); zero it meanwhile. */
		memset(b->data + b->len, 0, ZM_FRAME_HDR_LEN);
		b->len += ZM_FRAME_HDR_LEN;
	}
	p = b->data + b->len;
	put_le16(p, type);
	put_le16(p + 2, (uint16_t)rec_len);
	if (len)
		memcpy(p + ZM_REC_HDR_LEN, body, len);
	b->len += rec_len;
	w->count++;
	return 0;
}

/* ---- encoders --------------------------------------------------------- */

/* Append the string s (at most max bytes, no NUL) at out; return its length. */
static size_t put_str(uint8_t *out, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	memcpy(out, s, n);
	return n;
}

size_t zm_enc_hello(uint8_t *out, const struct zm_hello *m)
{
	put_le32(out + 0, m->version);
	put_le32(out + 4, m->flags);
	put_le32(out + 8, m->max_rate);
	put_le32(out + 12, m->max_batch);
	put_le32(out + 16, m->batch_window_us);
	put_le32(out + 20, m->reserved);
	return ZM_HELLO_LEN + put_str(out + ZM_HELLO_LEN, m->name, ZM_NAME_MAX);
}

size_t zm_enc_welcome(uint8_t *out, const struct zm_welcome *m)
{
	put_le32(out + 0, m->version);
	put_le32(out + 4, m->flags);
	put_le32(out + 8, m->max_frame);
	put_le32(out + 12, m->max_rate);
	put_le32(out + 16, m->max_batch);
	put_le32(out + 20, m->batch_window_us);
	put_le64(out + 24, m->subscriber_id);
	return ZM_WELCOME_LEN + put_str(out + ZM_WELCOME_LEN, m->agent_version, ZM_NAME_MAX);
}

size_t zm_enc_monitor_proc(uint8_t *out, const struct zm_monitor_proc *m)
{
	put_le64(out + 0, m->ref);
	put_le32(out + 8, m->pid);
	put_le32(out + 12, m->flags);
	put_le64(out + 16, m->start_ticks);
	return ZM_MONITOR_PROC_LEN;
}

size_t zm_enc_monitor_pidfd(uint8_t *out, const struct zm_monitor_pidfd *m)
{
	put_le64(out + 0, m->ref);
	put_le32(out + 8, m->flags);
	put_le32(out + 12, m->reserved);
	return ZM_MONITOR_PIDFD_LEN;
}

size_t zm_enc_demonitor(uint8_t *out, const struct zm_demonitor *m)
{
	put_le64(out + 0, m->ref);
	put_le32(out + 8, m->flags);
	put_le32(out + 12, m->reserved);
	return ZM_DEMONITOR_LEN;
}

size_t zm_enc_monitored(uint8_t *out, const struct zm_monitored *m)
{
	put_le64(out + 0, m->ref);
	put_le16(out + 8, m->kind);
	put_le16(out + 10, m->flags);
	put_le32(out + 12, m->pid);
	put_le64(out + 16, m->start_ticks);
	return ZM_MONITORED_LEN;
}

size_t zm_enc_down(uint8_t *out, const struct zm_down *m)
{
	put_le64(out + 0, m->ref);
	put_le64(out + 8, m->time_ns);
	put_le16(out + 16, m->kind);
	put_le16(out + 18, m->reason);
	put_le32(out + 20, m->flags);
	put_le32(out + 24, (uint32_t)m->value);
	put_le32(out + 28, m->pid);
	put_le64(out + 32, m->start_ticks);
	if (m->kind != ZM_TARGET_TCP)
		return ZM_DOWN_LEN;
	/* The TCP tail: how it closed, and which connection it was. */
	out[40] = m->tcp_how;
	out[41] = m->tcp_old_state;
	out[42] = m->tuple.family;
	out[43] = 0;
	put_le16(out + 44, m->tuple.sport);
	put_le16(out + 46, m->tuple.dport);
	memcpy(out + 48, m->tuple.saddr, 16);
	memcpy(out + 64, m->tuple.daddr, 16);
	return ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN;
}

size_t zm_enc_monitor_tcp(uint8_t *out, const struct zm_monitor_tcp *m)
{
	put_le64(out + 0, m->ref);
	out[8] = m->by;
	out[9] = m->tuple.family;
	put_le16(out + 10, 0);
	put_le32(out + 12, m->flags);
	put_le64(out + 16, m->cookie);
	memcpy(out + 24, m->tuple.saddr, 16);
	memcpy(out + 40, m->tuple.daddr, 16);
	put_le16(out + 56, m->tuple.sport);
	put_le16(out + 58, m->tuple.dport);
	put_le32(out + 60, 0);
	return ZM_MONITOR_TCP_LEN;
}

size_t zm_enc_error(uint8_t *out, const struct zm_error *m)
{
	put_le64(out + 0, m->ref);
	put_le32(out + 8, (uint32_t)m->code);
	put_le16(out + 12, m->request);
	put_le16(out + 14, m->reserved);
	return ZM_ERROR_LEN + put_str(out + ZM_ERROR_LEN, m->message, ZM_MSG_MAX);
}

size_t zm_enc_u64(uint8_t *out, uint64_t token)
{
	put_le64(out, token);
	return 8;
}

size_t zm_enc_targets(uint8_t *out, const struct zm_targets *m)
{
	put_le64(out + 0, m->token);
	put_le32(out + 8, m->limit);
	put_le32(out + 12, m->flags);
	return ZM_TARGETS_LEN;
}

size_t zm_enc_text_reply(uint8_t *out, const struct zm_text_reply *m)
{
	put_le64(out + 0, m->token);
	put_le32(out + 8, m->flags);
	put_le32(out + 12, m->reserved);
	return ZM_TEXT_REPLY_LEN;
}

/* Text bytes one text-reply record holds at most. */
#define TEXT_CHUNK_MAX (ZM_REC_MAX - ZM_REC_HDR_LEN - ZM_TEXT_REPLY_LEN)

int zm_frame_add_text_reply(struct zm_frame_writer *w, uint16_t type, uint64_t token,
			    const char *text, size_t len)
{
	struct zm_text_reply h = { .token = token };
	uint8_t *body = malloc(ZM_TEXT_REPLY_LEN + (len < TEXT_CHUNK_MAX ? len : TEXT_CHUNK_MAX));
	int r = 0, records = 0;

	if (!body)
		return -ENOMEM;
	do {
		size_t n = len;

		if (n > TEXT_CHUNK_MAX) {
			/* Cut after the last newline that fits, so that no line
			 * is split across records unless it alone is too long. */
			const char *nl = memrchr(text, '\n', TEXT_CHUNK_MAX);

			n = nl ? (size_t)(nl - text) + 1 : TEXT_CHUNK_MAX;
		}
		h.flags = n < len ? ZM_TEXT_MORE : 0;
		zm_enc_text_reply(body, &h);
		memcpy(body + ZM_TEXT_REPLY_LEN, text, n);
		r = zm_frame_add(w, type, body, ZM_TEXT_REPLY_LEN + n);
		records++;
		text += n;
		len -= n;
	} while (r == 0 && len > 0);
	free(body);
	return r < 0 ? r : records;
}

/* ---- frame and record parsing ------------------------------------------ */

int zm_frame_parse(const uint8_t *p, size_t n, uint32_t max_frame, struct zm_frame *ret)
{
	uint32_t len;

	if (n < ZM_FRAME_HDR_LEN)
		return 0;
	/* Judge the header as soon as it is here: garbage is refused at once,
	 * not after waiting for the megabyte its length claims. */
	if (get_le16(p + 4) != ZM_FRAME_MAGIC)
		return -EBADMSG;
	len = get_le32(p);
	if (len < ZM_FRAME_HDR_LEN)
		return -EBADMSG;
	if (len > max_frame)
		return -EMSGSIZE;
	if (n < len)
		return 0;
	ret->records = p + ZM_FRAME_HDR_LEN;
	ret->records_len = len - ZM_FRAME_HDR_LEN;
	ret->len = len;
	ret->count = get_le16(p + 6);
	return 1;
}

void zm_record_iter_init(struct zm_record_iter *it, const struct zm_frame *f)
{
	it->p = f->records;
	it->left = f->records_len;
	it->count = f->count;
	it->seen = 0;
}

int zm_record_next(struct zm_record_iter *it, struct zm_record *ret)
{
	uint16_t len;

	/* On error the iterator does not move: every later call fails the same way. */
	if (it->seen == it->count)
		return it->left == 0 ? 0 : -EBADMSG;
	if (it->left < ZM_REC_HDR_LEN)
		return -EBADMSG;
	len = get_le16(it->p + 2);
	if (len < ZM_REC_HDR_LEN || len > it->left)
		return -EBADMSG;
	ret->type = get_le16(it->p);
	ret->len = (uint16_t)(len - ZM_REC_HDR_LEN);
	ret->body = it->p + ZM_REC_HDR_LEN;
	it->p += len;
	it->left -= len;
	it->seen++;
	return 1;
}

/* ---- decoders --------------------------------------------------------- */

/* Copy the trailing bytes after the fixed part (at most max) as a C string. */
static void get_str(char *dst, const struct zm_record *r, size_t fixed, size_t max)
{
	size_t n = r->len - fixed;

	if (n > max)
		n = max;
	memcpy(dst, r->body + fixed, n);
	dst[n] = '\0';
}

int zm_dec_hello(const struct zm_record *r, struct zm_hello *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_HELLO_LEN)
		return -EBADMSG;
	ret->version = get_le32(p + 0);
	ret->flags = get_le32(p + 4);
	ret->max_rate = get_le32(p + 8);
	ret->max_batch = get_le32(p + 12);
	ret->batch_window_us = get_le32(p + 16);
	ret->reserved = get_le32(p + 20);
	get_str(ret->name, r, ZM_HELLO_LEN, ZM_NAME_MAX);
	return 0;
}

int zm_dec_welcome(const struct zm_record *r, struct zm_welcome *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_WELCOME_LEN)
		return -EBADMSG;
	ret->version = get_le32(p + 0);
	ret->flags = get_le32(p + 4);
	ret->max_frame = get_le32(p + 8);
	ret->max_rate = get_le32(p + 12);
	ret->max_batch = get_le32(p + 16);
	ret->batch_window_us = get_le32(p + 20);
	ret->subscriber_id = get_le64(p + 24);
	get_str(ret->agent_version, r, ZM_WELCOME_LEN, ZM_NAME_MAX);
	return 0;
}

int zm_dec_monitor_proc(const struct zm_record *r, struct zm_monitor_proc *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_MONITOR_PROC_LEN)
		return -EBADMSG;
	ret->ref = get_le64(p + 0);
	ret->pid = get_le32(p + 8);
	ret->flags = get_le32(p + 12);
	ret->start_ticks = get_le64(p + 16);
	return 0;
}

int zm_dec_monitor_pidfd(const struct zm_record *r, struct zm_monitor_pidfd *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_MONITOR_PIDFD_LEN)
		return -EBADMSG;
	ret->ref = get_le64(p + 0);
	ret->flags = get_le32(p + 8);
	ret->reserved = get_le32(p + 12);
	return 0;
}

int zm_dec_monitored(const struct zm_record *r, struct zm_monitored *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_MONITORED_LEN)
		return -EBADMSG;
	ret->ref = get_le64(p + 0);
	ret->kind = get_le16(p + 8);
	ret->flags = get_le16(p + 10);
	ret->pid = get_le32(p + 12);
	ret->start_ticks = get_le64(p + 16);
	return 0;
}

int zm_dec_demonitor(const struct zm_record *r, struct zm_demonitor *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_DEMONITOR_LEN)
		return -EBADMSG;
	ret->ref = get_le64(p + 0);
	ret->flags = get_le32(p + 8);
	ret->reserved = get_le32(p + 12);
	return 0;
}

int zm_dec_down(const struct zm_record *r, struct zm_down *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_DOWN_LEN)
		return -EBADMSG;
	/* Kind TCP has a tail; any other kind ignores bytes past 40. */
	if (get_le16(p + 16) == ZM_TARGET_TCP && r->len < ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN)
		return -EBADMSG;
	memset(ret, 0, sizeof(*ret));
	ret->ref = get_le64(p + 0);
	ret->time_ns = get_le64(p + 8);
	ret->kind = get_le16(p + 16);
	ret->reason = get_le16(p + 18);
	ret->flags = get_le32(p + 20);
	ret->value = (int32_t)get_le32(p + 24);
	ret->pid = get_le32(p + 28);
	ret->start_ticks = get_le64(p + 32);
	if (ret->kind != ZM_TARGET_TCP)
		return 0;
	ret->tcp_how = p[40];
	ret->tcp_old_state = p[41];
	ret->tuple.family = p[42];
	ret->tuple.sport = get_le16(p + 44);
	ret->tuple.dport = get_le16(p + 46);
	memcpy(ret->tuple.saddr, p + 48, 16);
	memcpy(ret->tuple.daddr, p + 64, 16);
	return 0;
}

int zm_dec_monitor_tcp(const struct zm_record *r, struct zm_monitor_tcp *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_MONITOR_TCP_LEN)
		return -EBADMSG;
	memset(ret, 0, sizeof(*ret));
	ret->ref = get_le64(p + 0);
	ret->by = p[8];
	ret->tuple.family = p[9];
	ret->flags = get_le32(p + 12);
	ret->cookie = get_le64(p + 16);
	memcpy(ret->tuple.saddr, p + 24, 16);
	memcpy(ret->tuple.daddr, p + 40, 16);
	ret->tuple.sport = get_le16(p + 56);
	ret->tuple.dport = get_le16(p + 58);
	return 0;
}

int zm_dec_error(const struct zm_record *r, struct zm_error *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_ERROR_LEN)
		return -EBADMSG;
	ret->ref = get_le64(p + 0);
	ret->code = (int32_t)get_le32(p + 8);
	ret->request = get_le16(p + 12);
	ret->reserved = get_le16(p + 14);
	get_str(ret->message, r, ZM_ERROR_LEN, ZM_MSG_MAX);
	return 0;
}

int zm_dec_u64(const struct zm_record *r, uint64_t *ret)
{
	if (r->len < 8)
		return -EBADMSG;
	*ret = get_le64(r->body);
	return 0;
}

int zm_dec_targets(const struct zm_record *r, struct zm_targets *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_TARGETS_LEN)
		return -EBADMSG;
	ret->token = get_le64(p + 0);
	ret->limit = get_le32(p + 8);
	ret->flags = get_le32(p + 12);
	return 0;
}

int zm_dec_text_reply(const struct zm_record *r, struct zm_text_reply *ret)
{
	const uint8_t *p = r->body;

	if (r->len < ZM_TEXT_REPLY_LEN)
		return -EBADMSG;
	ret->token = get_le64(p + 0);
	ret->flags = get_le32(p + 8);
	ret->reserved = get_le32(p + 12);
	ret->text = p + ZM_TEXT_REPLY_LEN;
	ret->text_len = r->len - ZM_TEXT_REPLY_LEN;
	return 0;
}

/* ---- names ------------------------------------------------------------ */

const char *zm_rec_type_name(uint16_t type)
{
	switch (type) {
	case ZM_REC_HELLO: return "HELLO";
	case ZM_REC_WELCOME: return "WELCOME";
	case ZM_REC_MONITOR_PROC: return "MONITOR_PROC";
	case ZM_REC_MONITOR_PIDFD: return "MONITOR_PIDFD";
	case ZM_REC_DEMONITOR: return "DEMONITOR";
	case ZM_REC_SYNC: return "SYNC";
	case ZM_REC_STATUS: return "STATUS";
	case ZM_REC_MONITOR_TCP: return "MONITOR_TCP";
	case ZM_REC_STATS: return "STATS";
	case ZM_REC_TARGETS: return "TARGETS";
	case ZM_REC_DOWN: return "DOWN";
	case ZM_REC_ERROR: return "ERROR";
	case ZM_REC_SYNCED: return "SYNCED";
	case ZM_REC_STATUS_REPLY: return "STATUS_REPLY";
	case ZM_REC_STATS_REPLY: return "STATS_REPLY";
	case ZM_REC_TARGETS_REPLY: return "TARGETS_REPLY";
	case ZM_REC_MONITORED: return "MONITORED";
	}
	return "unknown";
}

const char *zm_reason_name(uint16_t reason)
{
	switch (reason) {
	case ZM_REASON_EXITED: return "exited";
	case ZM_REASON_KILLED: return "killed";
	case ZM_REASON_NOPROC: return "noproc";
	case ZM_REASON_TCP_CLOSED: return "tcp_closed";
	case ZM_REASON_NOCONNECTION: return "noconnection";
	}
	return "unknown";
}
