// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * libFuzzer target: the wire codec (user/common/proto.c) on arbitrary bytes.
 *
 * The input is read as a stream of frames, as the agent and the library
 * read a connection. For every frame found the parser's promises are
 * checked: the frame lies within the bytes given, a shorter prefix of it is
 * "need more", its records tile it exactly. Every record is decoded by
 * every decoder from a copy of exactly its own length (so that AddressSanitizer
 * sees a read one byte past a record), and each decoding is encoded and
 * decoded again: the fixed part must come back byte for byte (padding
 * aside), and the second decoding must equal the first. Each frame is
 * written again with the frame writer from its records and must come back
 * byte for byte. Last, the whole input, repeated as its first byte says, is
 * cut into text replies and put together again.
 *
 * A broken promise aborts with a message; so does any sanitizer report.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zenmon/proto.h>

#define FUZZ_MAX_INPUT (1U << 20)
#define FUZZ_TEXT_MAX (256U * 1024)  /* about four text records */

static __attribute__((noreturn, format(printf, 1, 2))) void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz_frames: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

#define CHECK(cond, ...) do { if (!(cond)) fuzz_fail(__VA_ARGS__); } while (0)

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Bytes [0, n) of a and b equal, but for the ones skip[] lists (sorted). */
static bool same_bytes(const uint8_t *a, const uint8_t *b, size_t n, const size_t *skip, size_t nskip)
{
	for (size_t i = 0, k = 0; i < n; i++) {
		if (k < nskip && skip[k] == i) {
			k++;
			continue;
		}
		if (a[i] != b[i])
			return false;
	}
	return true;
}

static void check_str(const char *s, size_t max, const char *what)
{
	CHECK(strnlen(s, max + 1) <= max, "%s is not NUL-terminated within %zu bytes", what, max);
}

/*
 * Decode rec as type, encode the result, decode that again. out has room
 * for the largest encoding (ZM_REC_MAX).
 */
static void roundtrip(const struct zm_record *rec, uint16_t type, uint8_t *out)
{
	struct zm_record again = { .body = out, .type = type };
	size_t n;

	switch (type) {
	case ZM_REC_HELLO: {
		struct zm_hello a, b;

		if (zm_dec_hello(rec, &a) < 0) {
			CHECK(rec->len < ZM_HELLO_LEN, "HELLO of %u bytes refused", rec->len);
			return;
		}
		check_str(a.name, ZM_NAME_MAX, "HELLO name");
		n = zm_enc_hello(out, &a);
		CHECK(n == ZM_HELLO_LEN + strlen(a.name), "HELLO encodes to %zu bytes", n);
		CHECK(memcmp(out, rec->body, ZM_HELLO_LEN) == 0, "HELLO fixed part changed");
		again.len = (uint16_t)n;
		CHECK(zm_dec_hello(&again, &b) == 0, "re-encoded HELLO refused");
		CHECK(memcmp(&a, &b, offsetof(struct zm_hello, name)) == 0 && strcmp(a.name, b.name) == 0,
		      "HELLO differs after a round trip");
		return;
	}
	case ZM_REC_WELCOME: {
		struct zm_welcome a, b;

		if (zm_dec_welcome(rec, &a) < 0) {
			CHECK(rec->len < ZM_WELCOME_LEN, "WELCOME of %u bytes refused", rec->len);
			return;
		}
		check_str(a.agent_version, ZM_NAME_MAX, "WELCOME version");
		n = zm_enc_welcome(out, &a);
		CHECK(n == ZM_WELCOME_LEN + strlen(a.agent_version), "WELCOME encodes to %zu bytes", n);
		CHECK(memcmp(out, rec->body, ZM_WELCOME_LEN) == 0, "WELCOME fixed part changed");
		again.len = (uint16_t)n;
		CHECK(zm_dec_welcome(&again, &b) == 0, "re-encoded WELCOME refused");
		CHECK(memcmp(&a, &b, offsetof(struct zm_welcome, agent_version)) == 0 &&
		      strcmp(a.agent_version, b.agent_version) == 0, "WELCOME differs after a round trip");
		return;
	}
	case ZM_REC_MONITOR_PROC: {
		struct zm_monitor_proc a, b;

		if (zm_dec_monitor_proc(rec, &a) < 0) {
			CHECK(rec->len < ZM_MONITOR_PROC_LEN, "MONITOR_PROC of %u bytes refused", rec->len);
			return;
		}
		n = zm_enc_monitor_proc(out, &a);
		CHECK(n == ZM_MONITOR_PROC_LEN && memcmp(out, rec->body, n) == 0, "MONITOR_PROC changed");
		again.len = (uint16_t)n;
		CHECK(zm_dec_monitor_proc(&again, &b) == 0 && a.ref == b.ref && a.pid == b.pid &&
		      a.flags == b.flags && a.start_ticks == b.start_ticks, "MONITOR_PROC round trip");
		return;
	}
	case ZM_REC_MONITOR_PIDFD: {
		struct zm_monitor_pidfd a;

		if (zm_dec_monitor_pidfd(rec, &a) < 0) {
			CHECK(rec->len < ZM_MONITOR_PIDFD_LEN, "MONITOR_PIDFD of %u bytes refused", rec->len);
			return;
		}
		n = zm_enc_monitor_pidfd(out, &a);
		CHECK(n == ZM_MONITOR_PIDFD_LEN && memcmp(out, rec->body, n) == 0, "MONITOR_PIDFD changed");
		return;
	}
	case ZM_REC_MONITORED: {
		struct zm_monitored a;

		if (zm_dec_monitored(rec, &a) < 0) {
			CHECK(rec->len < ZM_MONITORED_LEN, "MONITORED of %u bytes refused", rec->len);
			return;
		}
		n = zm_enc_monitored(out, &a);
		CHECK(n == ZM_MONITORED_LEN && memcmp(out, rec->body, n) == 0, "MONITORED changed");
		return;
	}
	case ZM_REC_DEMONITOR: {
		struct zm_demonitor a;

		if (zm_dec_demonitor(rec, &a) < 0) {
			CHECK(rec->len < ZM_DEMONITOR_LEN, "DEMONITOR of %u bytes refused", rec->len);
			return;
		}
		n = zm_enc_demonitor(out, &a);
		CHECK(n == ZM_DEMONITOR_LEN && memcmp(out, rec->body, n) == 0, "DEMONITOR changed");
		return;
	}
	case ZM_REC_DOWN: {
		static const size_t pad[] = { 43 };   /* the TCP tail's reserved byte */
		struct zm_down a, b;

		if (zm_dec_down(rec, &a) < 0) {
			CHECK(rec->len < ZM_DOWN_LEN ||
			      (le16(rec->body + 16) == ZM_TARGET_TCP && rec->len < ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN),
			      "DOWN of %u bytes refused", rec->len);
			return;
		}
		n = zm_enc_down(out, &a);
		CHECK(n == (a.kind == ZM_TARGET_TCP ? ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN : ZM_DOWN_LEN),
		      "DOWN encodes to %zu bytes", n);
		CHECK(n <= rec->len && same_bytes(out, rec->body, n, pad, 1), "DOWN changed");
		again.len = (uint16_t)n;
		CHECK(zm_dec_down(&again, &b) == 0 && memcmp(&a, &b, sizeof(a)) == 0, "DOWN round trip");
		return;
	}
	case ZM_REC_MONITOR_TCP: {
		static const size_t pad[] = { 10, 11, 60, 61, 62, 63 };
		struct zm_monitor_tcp a, b;

		if (zm_dec_monitor_tcp(rec, &a) < 0) {
			CHECK(rec->len < ZM_MONITOR_TCP_LEN, "MONITOR_TCP of %u bytes refused", rec->len);
			return;
		}
		n = zm_enc_monitor_tcp(out, &a);
		CHECK(n == ZM_MONITOR_TCP_LEN && same_bytes(out, rec->body, n, pad, 6), "MONITOR_TCP changed");
		again.len = (uint16_t)n;
		CHECK(zm_dec_monitor_tcp(&again, &b) == 0 && memcmp(&a, &b, sizeof(a)) == 0,
		      "MONITOR_TCP round trip");
		return;
	}
	case ZM_REC_ERROR: {
		struct zm_error a, b;

		if (zm_dec_error(rec, &a) < 0) {
			CHECK(rec->len < ZM_ERROR_LEN, "ERROR of %u bytes refused", rec->len);
			return;
		}
		check_str(a.message, ZM_MSG_MAX, "ERROR message");
		n = zm_enc_error(out, &a);
		CHECK(n == ZM_ERROR_LEN + strlen(a.message), "ERROR encodes to %zu bytes", n);
		CHECK(memcmp(out, rec->body, ZM_ERROR_LEN) == 0, "ERROR fixed part changed");
		again.len = (uint16_t)n;
		CHECK(zm_dec_error(&again, &b) == 0 && a.ref == b.ref && a.code == b.code &&
		      a.request == b.request && strcmp(a.message, b.message) == 0, "ERROR round trip");
		return;
	}
	case ZM_REC_SYNC: {
		uint64_t t;

		if (zm_dec_u64(rec, &t) < 0) {
			CHECK(rec->len < 8, "u64 record of %u bytes refused", rec->len);
			return;
		}
		n = zm_enc_u64(out, t);
		CHECK(n == 8 && memcmp(out, rec->body, 8) == 0, "u64 record changed");
		return;
	}
	case ZM_REC_TARGETS: {
		struct zm_targets a;

		if (zm_dec_targets(rec, &a) < 0) {
			CHECK(rec->len < ZM_TARGETS_LEN, "TARGETS of %u bytes refused", rec->len);
			return;
		}
		n = zm_enc_targets(out, &a);
		CHECK(n == ZM_TARGETS_LEN && memcmp(out, rec->body, n) == 0, "TARGETS changed");
		return;
	}
	case ZM_REC_STATS_REPLY: {
		struct zm_text_reply a;

		if (zm_dec_text_reply(rec, &a) < 0) {
			CHECK(rec->len < ZM_TEXT_REPLY_LEN, "text reply of %u bytes refused", rec->len);
			return;
		}
		CHECK(a.text == rec->body + ZM_TEXT_REPLY_LEN && a.text_len == rec->len - ZM_TEXT_REPLY_LEN,
		      "text reply's text is not the rest of its record");
		n = zm_enc_text_reply(out, &a);
		CHECK(n == ZM_TEXT_REPLY_LEN && memcmp(out, rec->body, n) == 0, "text reply changed");
		return;
	}
	}
}

/* Every decoder on one record, from a copy of exactly its length. */
static void check_record(const struct zm_record *rec, uint8_t *scratch)
{
	static const uint16_t as[] = {
		ZM_REC_HELLO, ZM_REC_WELCOME, ZM_REC_MONITOR_PROC, ZM_REC_MONITOR_PIDFD,
		ZM_REC_DEMONITOR, ZM_REC_MONITORED, ZM_REC_DOWN, ZM_REC_MONITOR_TCP, ZM_REC_ERROR, ZM_REC_SYNC,
		ZM_REC_TARGETS, ZM_REC_STATS_REPLY,
	};
	/* malloc(0) may return NULL: keep one byte so the copy has an address. */
	uint8_t *copy = malloc(rec->len ? rec->len : 1);
	struct zm_record r = *rec;

	CHECK(copy, "out of memory");
	memcpy(copy, rec->body, rec->len);
	r.body = copy;
	for (size_t i = 0; i < sizeof(as) / sizeof(as[0]); i++)
		roundtrip(&r, as[i], scratch);
	CHECK(zm_rec_type_name(rec->type) && zm_reason_name(rec->type), "a name is NULL");
	free(copy);
}

/* One frame found at p: its records, and the frame written again. */
static void check_frame(const uint8_t *p, size_t n, const struct zm_frame *f, uint8_t *scratch)
{
	struct zm_frame again;
	struct zm_record_iter it;
	struct zm_record rec;
	struct zm_frame_writer w;
	struct zm_buf buf = { 0 };
	size_t seen = 0, bytes = 0;
	bool whole;
	int x;

	CHECK(f->len >= ZM_FRAME_HDR_LEN && f->len <= n && f->len <= ZM_FRAME_MAX,
	      "frame length %u with %zu bytes given", f->len, n);
	CHECK(f->len == le32(p) && f->count == le16(p + 6) && f->records == p + ZM_FRAME_HDR_LEN &&
	      f->records_len == f->len - ZM_FRAME_HDR_LEN, "frame fields do not match its header");
	/* One byte short of the frame is "need more", never a frame. */
	CHECK(zm_frame_parse(p, f->len - 1, ZM_FRAME_MAX, &again) == 0,
	      "a frame's prefix is not \"need more\"");

	zm_frame_writer_init(&w, &buf);
	zm_record_iter_init(&it, f);
	while ((x = zm_record_next(&it, &rec)) > 0) {
		CHECK(rec.body >= f->records + ZM_REC_HDR_LEN &&
		      rec.body + rec.len <= f->records + f->records_len, "a record outside its frame");
		CHECK(rec.body - ZM_REC_HDR_LEN == f->records + bytes, "records do not follow each other");
		bytes += ZM_REC_HDR_LEN + rec.len;
		seen++;
		check_record(&rec, scratch);
		CHECK(zm_frame_add(&w, rec.type, rec.body, rec.len) == 0, "cannot write a record again");
	}
	/* The iterator stays where it failed or ended. */
	CHECK(zm_record_next(&it, &rec) == x, "the record iterator moved after it stopped");
	whole = x == 0;
	CHECK(seen <= f->count, "more records than the count");
	if (whole) {
		CHECK(seen == f->count && bytes == f->records_len, "records do not tile the frame");
		zm_frame_end(&w);
		if (seen == 0) {
			/* The writer makes no empty frame. */
			CHECK(zm_buf_pending(&buf) == 0, "the writer made an empty frame");
		} else {
			CHECK(zm_buf_pending(&buf) == f->len && memcmp(zm_buf_head(&buf), p, f->len) == 0,
			      "a frame written again from its records differs");
		}
	}
	zm_buf_free(&buf);
}

/* Read data as a connection: frames one after another until one is bad. */
static void check_stream(const uint8_t *data, size_t size, uint32_t max_frame, uint8_t *scratch)
{
	size_t off = 0;

	for (;;) {
		const uint8_t *p = data + off;
		size_t n = size - off;
		struct zm_frame f;
		int x = zm_frame_parse(p, n, max_frame, &f);

		if (x == 0) {
			CHECK(n < ZM_FRAME_HDR_LEN || n < le32(p), "\"need more\" with a whole frame here");
			return;
		}
		if (x < 0) {
			CHECK(n >= ZM_FRAME_HDR_LEN, "an error before a whole header arrived");
			if (x == -EMSGSIZE)
				CHECK(le32(p) > max_frame && le16(p + 4) == ZM_FRAME_MAGIC, "-EMSGSIZE wrongly");
			else
				CHECK(x == -EBADMSG && (le16(p + 4) != ZM_FRAME_MAGIC || le32(p) < ZM_FRAME_HDR_LEN),
				      "error %d wrongly", x);
			return;
		}
		CHECK(f.len <= max_frame, "a frame above the maximum");
		if (max_frame == ZM_FRAME_MAX)
			check_frame(p, n, &f, scratch);
		off += f.len;
	}
}

/* Cut text into replies, parse them back, and compare. */
static void check_text(const uint8_t *data, size_t size)
{
	size_t reps = size ? (size_t)data[0] % 32 + 1 : 1, len, got = 0, off = 0;
	struct zm_buf buf = { 0 };
	struct zm_frame_writer w;
	bool last_seen = false;
	int records, seen = 0;
	char *text, *back;

	/* Repeated, so that a small input still makes a text of several records. */
	if (size && size * reps > FUZZ_TEXT_MAX)
		reps = FUZZ_TEXT_MAX / size ? FUZZ_TEXT_MAX / size : 1;
	len = size * reps;
	text = malloc(len ? len : 1);
	back = malloc(len ? len : 1);
	CHECK(text && back, "out of memory");
	for (size_t i = 0; i < reps; i++)
		memcpy(text + i * size, data, size);
	zm_frame_writer_init(&w, &buf);
	records = zm_frame_add_text_reply(&w, ZM_REC_STATS_REPLY, 42, text, len);
	CHECK(records >= 1, "text reply failed: %d", records);
	zm_frame_end(&w);

	while (off < zm_buf_pending(&buf)) {
		struct zm_frame f;
		struct zm_record_iter it;
		struct zm_record rec;
		int x = zm_frame_parse(zm_buf_head(&buf) + off, zm_buf_pending(&buf) - off, ZM_FRAME_MAX, &f);

		CHECK(x == 1, "the writer made a bad frame");
		zm_record_iter_init(&it, &f);
		while ((x = zm_record_next(&it, &rec)) > 0) {
			struct zm_text_reply t;

			CHECK(!last_seen, "a text record after the last one");
			CHECK(rec.type == ZM_REC_STATS_REPLY && zm_dec_text_reply(&rec, &t) == 0 &&
			      t.token == 42, "a bad text record");
			CHECK(got + t.text_len <= len, "more text back than went in");
			/* Cut after a newline unless the record is full. */
			if (t.flags & ZM_TEXT_MORE)
				CHECK(t.text_len > 0 && (t.text[t.text_len - 1] == '\n' ||
					rec.len == ZM_REC_MAX - ZM_REC_HDR_LEN), "a line cut short");
			else
				last_seen = true;
			memcpy(back + got, t.text, t.text_len);
			got += t.text_len;
			seen++;
		}
		CHECK(x == 0, "the writer made a frame whose records do not add up");
		off += f.len;
	}
	CHECK(last_seen && seen == records && got == len && memcmp(text, back, len) == 0,
	      "text differs after replies: %zu of %zu bytes in %d records", got, len, seen);
	zm_buf_free(&buf);
	free(text);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t scratch[ZM_REC_MAX];

	if (size > FUZZ_MAX_INPUT)
		return -1;
	check_stream(data, size, ZM_FRAME_MAX, scratch);
	/* A small maximum, as a peer that announced one would use. */
	check_stream(data, size, 64, scratch);
	check_text(data, size);
	return 0;
}
