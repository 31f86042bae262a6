// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The wire codec (user/common/proto.c) against docs/PROTOCOL.md: exact bytes,
 * round trips, the frame writer's splitting, and every way a peer's bytes can
 * be wrong. Inputs under test are copied into buffers of their exact size, so
 * a read past the end shows up under `make SAN=1 test`.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <zenmon/proto.h>

/* cmocka passes every test a state pointer that these tests do not use. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Largest body any encoder writes: ERROR with a full message. */
#define BODY_MAX (ZM_ERROR_LEN + ZM_MSG_MAX)

/* ---- helpers ------------------------------------------------------------ */

/* A malloc'd copy of exactly n bytes (n may be 0). */
static uint8_t *dup_exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	assert_non_null(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

/* Compare n bytes with a hex string such as "2e 00 00 00 7a 6d". */
static void assert_hex(const uint8_t *got, size_t n, const char *hex)
{
	size_t i = 0;
	unsigned int byte;
	int used;

	while (sscanf(hex, " %2x%n", &byte, &used) == 1) {
		if (i >= n)
			fail_msg("got %zu bytes, the expected bytes go on", n);
		if (got[i] != byte)
			fail_msg("byte %zu: got %02x, want %02x", i, got[i], byte);
		i++;
		hex += used;
	}
	if (i != n)
		fail_msg("got %zu bytes, want %zu", n, i);
}

/* Put one record in a frame of its own, in a fresh buffer. */
static void one_record_frame(struct zm_buf *b, uint16_t type, const void *body, size_t len)
{
	struct zm_frame_writer w;

	zm_frame_writer_init(&w, b);
	assert_int_equal(zm_frame_add(&w, type, body, len), 0);
	zm_frame_end(&w);
}

/* Parse the single frame at the head of b and return its only record. */
static struct zm_record only_record(const struct zm_buf *b, uint16_t want_type)
{
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record r, extra;

	assert_int_equal(zm_frame_parse(zm_buf_head(b), zm_buf_pending(b), ZM_FRAME_MAX, &f), 1);
	assert_int_equal(f.len, zm_buf_pending(b));
	assert_int_equal(f.count, 1);
	zm_record_iter_init(&it, &f);
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(r.type, want_type);
	assert_int_equal(zm_record_next(&it, &extra), 0);
	return r;
}

/* Write a frame header by hand (for malformed frames the writer won't make). */
static void put_frame_hdr(uint8_t *p, uint32_t len, uint16_t magic, uint16_t count)
{
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
	p[4] = (uint8_t)magic;
	p[5] = (uint8_t)(magic >> 8);
	p[6] = (uint8_t)count;
	p[7] = (uint8_t)(count >> 8);
}

static void put_rec_hdr(uint8_t *p, uint16_t type, uint16_t len)
{
	p[0] = (uint8_t)type;
	p[1] = (uint8_t)(type >> 8);
	p[2] = (uint8_t)len;
	p[3] = (uint8_t)(len >> 8);
}

/* Iterate a hand-made frame to its end; return the first non-1 result and
 * the number of records seen before it. */
static int iterate_all(const uint8_t *frame, size_t n, int *ret_seen)
{
	uint8_t *copy = dup_exact(frame, n);
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record r;
	int seen = 0, res;

	assert_int_equal(zm_frame_parse(copy, n, ZM_FRAME_MAX, &f), 1);
	zm_record_iter_init(&it, &f);
	while ((res = zm_record_next(&it, &r)) == 1)
		seen++;
	free(copy);
	*ret_seen = seen;
	return res;
}

/* ---- exact bytes -------------------------------------------------------- */

static void test_encoding_is_little_endian(void **state)
{
	struct zm_monitor_proc m = {
		.ref = 0x0102030405060708ULL,
		.pid = 0x11223344U,
		.flags = ZM_MON_START_TIME,
		.start_ticks = 0xa1a2a3a4a5a6a7a8ULL,
	};
	uint8_t out[ZM_MONITOR_PROC_LEN];

	assert_int_equal(zm_enc_monitor_proc(out, &m), ZM_MONITOR_PROC_LEN);
	assert_hex(out, sizeof(out),
		   "08 07 06 05 04 03 02 01  44 33 22 11  01 00 00 00"
		   "a8 a7 a6 a5 a4 a3 a2 a1");
}

static void test_frame_header_is_length_then_zm_magic_then_count(void **state)
{
	struct zm_buf b = {0};
	uint8_t body[8] = {0};

	one_record_frame(&b, ZM_REC_SYNC, body, zm_enc_u64(body, 0x42));
	/* length 20 = 8 header + 4 record header + 8 body; 'z' 'm'; count 1 */
	assert_hex(zm_buf_head(&b), zm_buf_pending(&b),
		   "14 00 00 00 7a 6d 01 00  13 00 0c 00  42 00 00 00 00 00 00 00");
	zm_buf_free(&b);
}

static void test_down_body_layout_matches_protocol_doc(void **state)
{
	struct zm_down d = {
		.ref = 0x1122334455667788ULL,
		.time_ns = 0x0807060504030201ULL,
		.kind = ZM_TARGET_PROCESS,
		.reason = ZM_REASON_KILLED,
		.flags = ZM_DOWN_CORE_DUMPED,
		.value = 11,
		.pid = 0x01020304U,
		.start_ticks = 0xf0e0d0c0b0a09080ULL,
	};
	uint8_t out[ZM_DOWN_LEN];

	assert_int_equal(zm_enc_down(out, &d), ZM_DOWN_LEN);
	assert_hex(out, sizeof(out),
		   "88 77 66 55 44 33 22 11  01 02 03 04 05 06 07 08"
		   "01 00  02 00  01 00 00 00  0b 00 00 00  04 03 02 01"
		   "80 90 a0 b0 c0 d0 e0 f0");
}

static void test_error_code_and_message_layout(void **state)
{
	struct zm_error e = {.ref = 5, .code = EEXIST, .request = ZM_REC_MONITOR_PROC};
	uint8_t out[BODY_MAX];

	strcpy(e.message, "dup");
	assert_int_equal(zm_enc_error(out, &e), ZM_ERROR_LEN + 3);
	assert_hex(out, ZM_ERROR_LEN + 3,
		   "05 00 00 00 00 00 00 00  11 00 00 00  10 00  00 00  64 75 70");
}

/* The worked example in docs/PROTOCOL.md, byte for byte. */
static void test_protocol_doc_hello_example(void **state)
{
	struct zm_hello h = {.version = ZM_PROTO_VERSION};
	struct zm_buf b = {0};
	uint8_t body[BODY_MAX];

	strcpy(h.name, "py-example");
	one_record_frame(&b, ZM_REC_HELLO, body, zm_enc_hello(body, &h));
	assert_hex(zm_buf_head(&b), zm_buf_pending(&b),
		   "2e 00 00 00 7a 6d 01 00 01 00 26 00 01 00 00 00"
		   "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
		   "00 00 00 00 70 79 2d 65 78 61 6d 70 6c 65");
	zm_buf_free(&b);
}

static void test_protocol_doc_welcome_example(void **state)
{
	struct zm_welcome wl = {
		.version = ZM_PROTO_VERSION, .max_frame = ZM_FRAME_MAX, .max_rate = 100000,
		.max_batch = 1024, .batch_window_us = 1000, .subscriber_id = 7,
	};
	struct zm_buf b = {0};
	uint8_t body[BODY_MAX];

	strcpy(wl.agent_version, "0.1.0");
	one_record_frame(&b, ZM_REC_WELCOME, body, zm_enc_welcome(body, &wl));
	assert_hex(zm_buf_head(&b), zm_buf_pending(&b),
		   "31 00 00 00 7a 6d 01 00 02 00 29 00 01 00 00 00"
		   "00 00 00 00 00 00 10 00 a0 86 01 00 00 04 00 00"
		   "e8 03 00 00 07 00 00 00 00 00 00 00 30 2e 31 2e"
		   "30");
	zm_buf_free(&b);
}

static void test_protocol_doc_two_monitors_example(void **state)
{
	struct zm_monitor_proc m1 = {.ref = 1, .pid = 4242};
	struct zm_monitor_proc m2 = {.ref = 2, .pid = 4243, .flags = ZM_MON_START_TIME,
				     .start_ticks = 123456};
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	uint8_t body[BODY_MAX];

	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_add(&w, ZM_REC_MONITOR_PROC, body, zm_enc_monitor_proc(body, &m1)), 0);
	assert_int_equal(zm_frame_add(&w, ZM_REC_MONITOR_PROC, body, zm_enc_monitor_proc(body, &m2)), 0);
	zm_frame_end(&w);
	assert_hex(zm_buf_head(&b), zm_buf_pending(&b),
		   "40 00 00 00 7a 6d 02 00 10 00 1c 00 01 00 00 00"
		   "00 00 00 00 92 10 00 00 00 00 00 00 00 00 00 00"
		   "00 00 00 00 10 00 1c 00 02 00 00 00 00 00 00 00"
		   "93 10 00 00 01 00 00 00 40 e2 01 00 00 00 00 00");
	zm_buf_free(&b);
}

static void test_protocol_doc_down_example(void **state)
{
	struct zm_down d = {
		.ref = 1, .time_ns = 1700000000123456789ULL, .kind = ZM_TARGET_PROCESS,
		.reason = ZM_REASON_EXITED, .value = 3, .pid = 4242, .start_ticks = 98765,
	};
	struct zm_buf b = {0};
	uint8_t body[BODY_MAX];

	one_record_frame(&b, ZM_REC_DOWN, body, zm_enc_down(body, &d));
	assert_hex(zm_buf_head(&b), zm_buf_pending(&b),
		   "34 00 00 00 7a 6d 01 00 20 00 2c 00 01 00 00 00"
		   "00 00 00 00 15 cd 85 3d fe 9c 97 17 01 00 01 00"
		   "00 00 00 00 03 00 00 00 92 10 00 00 cd 81 01 00"
		   "00 00 00 00");
	zm_buf_free(&b);
}

/* ---- round trips through frame, iterator and decoder --------------------- */

static void test_down_roundtrips_all_fields(void **state)
{
	struct zm_down in = {
		.ref = UINT64_MAX - 1, .time_ns = 1700000000123456789ULL,
		.kind = ZM_TARGET_PROCESS, .reason = ZM_REASON_KILLED,
		.flags = ZM_DOWN_CORE_DUMPED, .value = -7, .pid = 4194304,
		.start_ticks = 0x123456789abcULL,
	}, out;
	struct zm_buf b = {0};
	struct zm_record r;
	uint8_t body[BODY_MAX];

	one_record_frame(&b, ZM_REC_DOWN, body, zm_enc_down(body, &in));
	r = only_record(&b, ZM_REC_DOWN);
	assert_int_equal(r.len, ZM_DOWN_LEN);
	assert_int_equal(zm_dec_down(&r, &out), 0);
	assert_true(out.ref == in.ref);
	assert_true(out.time_ns == in.time_ns);
	assert_int_equal(out.kind, in.kind);
	assert_int_equal(out.reason, in.reason);
	assert_int_equal(out.flags, in.flags);
	assert_int_equal(out.value, -7);
	assert_int_equal(out.pid, in.pid);
	assert_true(out.start_ticks == in.start_ticks);
	zm_buf_free(&b);
}

static void test_hello_roundtrips_with_name(void **state)
{
	struct zm_hello in = {
		.version = ZM_PROTO_VERSION, .flags = 0, .max_rate = 5000,
		.max_batch = 64, .batch_window_us = 2500, .reserved = 0,
	}, out;
	struct zm_buf b = {0};
	struct zm_record r;
	uint8_t body[BODY_MAX];

	strcpy(in.name, "billing-worker");
	one_record_frame(&b, ZM_REC_HELLO, body, zm_enc_hello(body, &in));
	r = only_record(&b, ZM_REC_HELLO);
	assert_int_equal(r.len, ZM_HELLO_LEN + strlen("billing-worker"));
	assert_int_equal(zm_dec_hello(&r, &out), 0);
	assert_int_equal(out.version, ZM_PROTO_VERSION);
	assert_int_equal(out.max_rate, 5000);
	assert_int_equal(out.max_batch, 64);
	assert_int_equal(out.batch_window_us, 2500);
	assert_string_equal(out.name, "billing-worker");
	zm_buf_free(&b);
}

static void test_welcome_roundtrips_with_agent_version(void **state)
{
	struct zm_welcome in = {
		.version = ZM_PROTO_VERSION, .flags = 0, .max_frame = ZM_FRAME_MAX,
		.max_rate = 100000, .max_batch = 1024, .batch_window_us = 1000,
		.subscriber_id = 0x100000001ULL,
	}, out;
	struct zm_buf b = {0};
	struct zm_record r;
	uint8_t body[BODY_MAX];

	strcpy(in.agent_version, "zenmond 0.1.0");
	one_record_frame(&b, ZM_REC_WELCOME, body, zm_enc_welcome(body, &in));
	r = only_record(&b, ZM_REC_WELCOME);
	assert_int_equal(zm_dec_welcome(&r, &out), 0);
	assert_int_equal(out.max_frame, ZM_FRAME_MAX);
	assert_int_equal(out.max_rate, 100000);
	assert_int_equal(out.max_batch, 1024);
	assert_int_equal(out.batch_window_us, 1000);
	assert_true(out.subscriber_id == 0x100000001ULL);
	assert_string_equal(out.agent_version, "zenmond 0.1.0");
	zm_buf_free(&b);
}

static void test_monitor_requests_roundtrip(void **state)
{
	struct zm_monitor_proc mp = {.ref = 9, .pid = 1, .flags = ZM_MON_START_TIME,
				     .start_ticks = 77}, mp2;
	struct zm_monitor_pidfd mf = {.ref = 10, .flags = 0}, mf2;
	struct zm_demonitor dm = {.ref = 9, .flags = ZM_DEMON_FLUSH}, dm2;
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record r;
	uint8_t body[BODY_MAX];

	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_add(&w, ZM_REC_MONITOR_PROC, body, zm_enc_monitor_proc(body, &mp)), 0);
	assert_int_equal(zm_frame_add(&w, ZM_REC_MONITOR_PIDFD, body, zm_enc_monitor_pidfd(body, &mf)), 0);
	assert_int_equal(zm_frame_add(&w, ZM_REC_DEMONITOR, body, zm_enc_demonitor(body, &dm)), 0);
	zm_frame_end(&w);

	assert_int_equal(zm_frame_parse(zm_buf_head(&b), zm_buf_pending(&b), ZM_FRAME_MAX, &f), 1);
	assert_int_equal(f.count, 3);
	zm_record_iter_init(&it, &f);
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(zm_dec_monitor_proc(&r, &mp2), 0);
	assert_true(mp2.ref == 9 && mp2.pid == 1 && mp2.flags == ZM_MON_START_TIME &&
		    mp2.start_ticks == 77);
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(zm_dec_monitor_pidfd(&r, &mf2), 0);
	assert_true(mf2.ref == 10 && mf2.flags == 0);
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(zm_dec_demonitor(&r, &dm2), 0);
	assert_true(dm2.ref == 9 && dm2.flags == ZM_DEMON_FLUSH);
	assert_int_equal(zm_record_next(&it, &r), 0);
	zm_buf_free(&b);
}

static void test_error_roundtrips_with_message(void **state)
{
	struct zm_error in = {.ref = 42, .code = ESRCH, .request = ZM_REC_MONITOR_PROC}, out;
	struct zm_buf b = {0};
	struct zm_record r;
	uint8_t body[BODY_MAX];

	strcpy(in.message, "pid 1234 is a thread, not a process");
	one_record_frame(&b, ZM_REC_ERROR, body, zm_enc_error(body, &in));
	r = only_record(&b, ZM_REC_ERROR);
	assert_int_equal(zm_dec_error(&r, &out), 0);
	assert_true(out.ref == 42);
	assert_int_equal(out.code, ESRCH);
	assert_int_equal(out.request, ZM_REC_MONITOR_PROC);
	assert_string_equal(out.message, "pid 1234 is a thread, not a process");
	zm_buf_free(&b);
}

static void test_sync_token_roundtrips(void **state)
{
	struct zm_buf b = {0};
	struct zm_record r;
	uint64_t token = 0;
	uint8_t body[8];

	one_record_frame(&b, ZM_REC_SYNCED, body, zm_enc_u64(body, 0xfedcba9876543210ULL));
	r = only_record(&b, ZM_REC_SYNCED);
	assert_int_equal(zm_dec_u64(&r, &token), 0);
	assert_true(token == 0xfedcba9876543210ULL);
	zm_buf_free(&b);
}

static void test_status_reply_text_follows_token(void **state)
{
	static const char text[] = "version 0.1.0\nmonitors 3\n";
	uint8_t body[8 + sizeof(text)];
	struct zm_buf b = {0};
	struct zm_record r;
	uint64_t token = 0;
	size_t n = zm_enc_u64(body, 99);

	memcpy(body + n, text, sizeof(text) - 1);
	one_record_frame(&b, ZM_REC_STATUS_REPLY, body, n + sizeof(text) - 1);
	r = only_record(&b, ZM_REC_STATUS_REPLY);
	assert_int_equal(zm_dec_u64(&r, &token), 0);
	assert_true(token == 99);
	assert_int_equal(r.len - ZM_STATUS_REPLY_LEN, sizeof(text) - 1);
	assert_memory_equal(r.body + ZM_STATUS_REPLY_LEN, text, sizeof(text) - 1);
	zm_buf_free(&b);
}

static void test_empty_trailing_string_decodes_as_empty(void **state)
{
	struct zm_hello in = {.version = ZM_PROTO_VERSION}, out;
	uint8_t body[BODY_MAX];
	struct zm_record r;
	uint8_t *exact;

	memset(out.name, 'x', sizeof(out.name));
	r.type = ZM_REC_HELLO;
	r.len = (uint16_t)zm_enc_hello(body, &in);
	assert_int_equal(r.len, ZM_HELLO_LEN);
	exact = dup_exact(body, r.len);
	r.body = exact;
	assert_int_equal(zm_dec_hello(&r, &out), 0);
	assert_string_equal(out.name, "");
	free(exact);
}

/* ---- strings: truncation ------------------------------------------------ */

static void test_hello_name_truncated_to_max_on_encode(void **state)
{
	struct zm_hello h = {.version = ZM_PROTO_VERSION};
	uint8_t body[BODY_MAX];

	/* Fill the whole array, terminator included: the encoder must stop at 64. */
	memset(h.name, 'n', sizeof(h.name));
	assert_int_equal(zm_enc_hello(body, &h), ZM_HELLO_LEN + ZM_NAME_MAX);
	assert_int_equal(body[ZM_HELLO_LEN + ZM_NAME_MAX - 1], 'n');
}

static void test_hello_name_truncated_to_max_on_decode(void **state)
{
	uint8_t body[ZM_HELLO_LEN + 200];
	struct zm_hello out;
	struct zm_record r;
	uint8_t *exact;

	memset(body, 0, ZM_HELLO_LEN);
	memset(body + ZM_HELLO_LEN, 'a', 200);
	exact = dup_exact(body, sizeof(body));
	r.type = ZM_REC_HELLO;
	r.body = exact;
	r.len = sizeof(body);
	assert_int_equal(zm_dec_hello(&r, &out), 0);
	assert_int_equal(strlen(out.name), ZM_NAME_MAX);
	assert_int_equal(out.name[0], 'a');
	free(exact);
}

static void test_welcome_version_truncated_to_max(void **state)
{
	struct zm_welcome in = {.version = ZM_PROTO_VERSION}, out;
	uint8_t body[BODY_MAX];
	struct zm_record r;

	memset(in.agent_version, 'v', sizeof(in.agent_version));
	r.len = (uint16_t)zm_enc_welcome(body, &in);
	assert_int_equal(r.len, ZM_WELCOME_LEN + ZM_NAME_MAX);
	r.body = body;
	r.type = ZM_REC_WELCOME;
	assert_int_equal(zm_dec_welcome(&r, &out), 0);
	assert_int_equal(strlen(out.agent_version), ZM_NAME_MAX);
}

static void test_error_message_truncated_to_max(void **state)
{
	struct zm_error in = {.ref = 1, .code = EINVAL}, out;
	uint8_t body[ZM_ERROR_LEN + ZM_MSG_MAX + 100];
	struct zm_record r;
	uint8_t *exact;

	memset(in.message, 'm', sizeof(in.message));
	assert_int_equal(zm_enc_error(body, &in), ZM_ERROR_LEN + ZM_MSG_MAX);

	/* A peer that sends a longer message gets it cut, not an overflow. */
	memset(body + ZM_ERROR_LEN, 'q', ZM_MSG_MAX + 100);
	exact = dup_exact(body, sizeof(body));
	r.type = ZM_REC_ERROR;
	r.body = exact;
	r.len = sizeof(body);
	assert_int_equal(zm_dec_error(&r, &out), 0);
	assert_int_equal(strlen(out.message), ZM_MSG_MAX);
	assert_int_equal(out.message[ZM_MSG_MAX - 1], 'q');
	free(exact);
}

/* ---- decoders refuse short bodies --------------------------------------- */

static void test_decoder_rejects_short_body(void **state)
{
	uint8_t zeros[BODY_MAX] = {0};
	struct zm_hello h;
	struct zm_welcome wl;
	struct zm_monitor_proc mp;
	struct zm_monitor_pidfd mf;
	struct zm_demonitor dm;
	struct zm_monitor_tcp mt;
	struct zm_down d;
	struct zm_error e;
	uint64_t token;
	struct zm_record r;
	uint8_t *exact;

#define CHECK_SHORT(fixed, call)                                       \
	do {                                                           \
		exact = dup_exact(zeros, (fixed) - 1);                 \
		r.body = exact;                                        \
		r.len = (uint16_t)((fixed) - 1);                       \
		assert_int_equal(call, -EBADMSG);                      \
		r.len = 0;                                             \
		assert_int_equal(call, -EBADMSG);                      \
		free(exact);                                           \
	} while (0)

	r.type = 0;
	CHECK_SHORT(ZM_HELLO_LEN, zm_dec_hello(&r, &h));
	CHECK_SHORT(ZM_WELCOME_LEN, zm_dec_welcome(&r, &wl));
	CHECK_SHORT(ZM_MONITOR_PROC_LEN, zm_dec_monitor_proc(&r, &mp));
	CHECK_SHORT(ZM_MONITOR_PIDFD_LEN, zm_dec_monitor_pidfd(&r, &mf));
	CHECK_SHORT(ZM_DEMONITOR_LEN, zm_dec_demonitor(&r, &dm));
	CHECK_SHORT(ZM_DOWN_LEN, zm_dec_down(&r, &d));
	CHECK_SHORT(ZM_MONITOR_TCP_LEN, zm_dec_monitor_tcp(&r, &mt));
	CHECK_SHORT(ZM_ERROR_LEN, zm_dec_error(&r, &e));
	CHECK_SHORT(ZM_SYNC_LEN, zm_dec_u64(&r, &token));
#undef CHECK_SHORT
}

static void test_decoder_leaves_output_untouched_on_short_body(void **state)
{
	uint8_t body[ZM_DOWN_LEN - 1];
	struct zm_down d;
	struct zm_record r = {.body = body, .type = ZM_REC_DOWN, .len = sizeof(body)};

	memset(body, 0xee, sizeof(body));
	memset(&d, 0x5a, sizeof(d));
	assert_int_equal(zm_dec_down(&r, &d), -EBADMSG);
	assert_true(d.ref == 0x5a5a5a5a5a5a5a5aULL);
	assert_int_equal(d.pid, 0x5a5a5a5aU);
}

/* ---- forward compatibility ---------------------------------------------- */

static void test_trailing_bytes_ignored_for_forward_compat(void **state)
{
	/* A later version's DOWN with 8 more bytes still decodes. */
	struct zm_down in = {.ref = 3, .reason = ZM_REASON_NOPROC, .pid = 77}, out;
	uint8_t body[ZM_DOWN_LEN + 8];
	struct zm_buf b = {0};
	struct zm_record r;

	zm_enc_down(body, &in);
	memset(body + ZM_DOWN_LEN, 0xab, 8);
	one_record_frame(&b, ZM_REC_DOWN, body, sizeof(body));
	r = only_record(&b, ZM_REC_DOWN);
	assert_int_equal(r.len, ZM_DOWN_LEN + 8);
	assert_int_equal(zm_dec_down(&r, &out), 0);
	assert_true(out.ref == 3);
	assert_int_equal(out.reason, ZM_REASON_NOPROC);
	assert_int_equal(out.pid, 77);
	zm_buf_free(&b);
}

static void test_unknown_record_type_is_skippable(void **state)
{
	/* An unknown record between two known ones: the iterator steps over it
	 * by its length and the next record is intact. */
	uint8_t frame[8 + 12 + 7 + 12];
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record r;
	uint64_t token;

	put_frame_hdr(frame, sizeof(frame), ZM_FRAME_MAGIC, 3);
	put_rec_hdr(frame + 8, ZM_REC_SYNCED, 12);
	zm_enc_u64(frame + 12, 1);
	put_rec_hdr(frame + 20, 0x7f7f, 7);
	memset(frame + 24, 0xcc, 3);
	put_rec_hdr(frame + 27, ZM_REC_SYNCED, 12);
	zm_enc_u64(frame + 31, 2);

	assert_int_equal(zm_frame_parse(frame, sizeof(frame), ZM_FRAME_MAX, &f), 1);
	zm_record_iter_init(&it, &f);
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(r.type, 0x7f7f);
	assert_int_equal(r.len, 3);
	assert_string_equal(zm_rec_type_name(r.type), "unknown");
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(zm_dec_u64(&r, &token), 0);
	assert_true(token == 2);
	assert_int_equal(zm_record_next(&it, &r), 0);
}

/* ---- frame parsing ------------------------------------------------------ */

static void test_frame_parse_rejects_bad_magic(void **state)
{
	uint8_t frame[8];
	struct zm_frame f;

	put_frame_hdr(frame, 8, 0x6d7b, 0);
	assert_int_equal(zm_frame_parse(frame, sizeof(frame), ZM_FRAME_MAX, &f), -EBADMSG);
	/* Byte-swapped magic (a big-endian writer) is refused too. */
	put_frame_hdr(frame, 8, 0x7a6d, 0);
	assert_int_equal(zm_frame_parse(frame, sizeof(frame), ZM_FRAME_MAX, &f), -EBADMSG);
}

static void test_frame_parse_rejects_garbage_before_whole_frame(void **state)
{
	/* An HTTP request is not a zenmon frame: refused at once, not after
	 * waiting for the bytes its "length" would claim. */
	static const char http[] = "GET / HTTP/1.1\r\n";
	struct zm_frame f;

	assert_int_equal(zm_frame_parse((const uint8_t *)http, 8, ZM_FRAME_MAX, &f), -EBADMSG);
}

static void test_frame_parse_rejects_length_below_header(void **state)
{
	uint8_t frame[16] = {0};
	struct zm_frame f;

	for (uint32_t len = 0; len < ZM_FRAME_HDR_LEN; len++) {
		put_frame_hdr(frame, len, ZM_FRAME_MAGIC, 0);
		assert_int_equal(zm_frame_parse(frame, sizeof(frame), ZM_FRAME_MAX, &f), -EBADMSG);
	}
}

static void test_oversized_frame_rejected(void **state)
{
	uint8_t hdr[8];
	struct zm_frame f;

	put_frame_hdr(hdr, ZM_FRAME_MAX + 1, ZM_FRAME_MAGIC, 1);
	assert_int_equal(zm_frame_parse(hdr, sizeof(hdr), ZM_FRAME_MAX, &f), -EMSGSIZE);
	put_frame_hdr(hdr, UINT32_MAX, ZM_FRAME_MAGIC, 1);
	assert_int_equal(zm_frame_parse(hdr, sizeof(hdr), ZM_FRAME_MAX, &f), -EMSGSIZE);
}

static void test_frame_parse_honours_callers_max_frame(void **state)
{
	uint8_t hdr[8];
	struct zm_frame f;

	put_frame_hdr(hdr, 4096, ZM_FRAME_MAGIC, 1);
	assert_int_equal(zm_frame_parse(hdr, sizeof(hdr), 4095, &f), -EMSGSIZE);
	/* At the limit it is only waiting for the rest. */
	assert_int_equal(zm_frame_parse(hdr, sizeof(hdr), 4096, &f), 0);
}

static void test_truncated_frame_needs_more_bytes(void **state)
{
	struct zm_down d = {.ref = 1, .reason = ZM_REASON_EXITED};
	struct zm_buf b = {0};
	struct zm_frame f;
	uint8_t body[BODY_MAX];
	size_t total;

	one_record_frame(&b, ZM_REC_DOWN, body, zm_enc_down(body, &d));
	total = zm_buf_pending(&b);
	for (size_t n = 0; n < total; n++) {
		uint8_t *prefix = dup_exact(zm_buf_head(&b), n);

		assert_int_equal(zm_frame_parse(prefix, n, ZM_FRAME_MAX, &f), 0);
		free(prefix);
	}
	assert_int_equal(zm_frame_parse(zm_buf_head(&b), total, ZM_FRAME_MAX, &f), 1);
	zm_buf_free(&b);
}

static void test_frame_parse_finds_first_of_two_frames(void **state)
{
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	struct zm_frame f;
	uint8_t body[8];
	uint64_t token;
	struct zm_record_iter it;
	struct zm_record r;

	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_add(&w, ZM_REC_SYNC, body, zm_enc_u64(body, 1)), 0);
	zm_frame_end(&w);
	assert_int_equal(zm_frame_add(&w, ZM_REC_SYNC, body, zm_enc_u64(body, 2)), 0);
	assert_int_equal(zm_frame_add(&w, ZM_REC_SYNC, body, zm_enc_u64(body, 3)), 0);
	zm_frame_end(&w);

	assert_int_equal(zm_frame_parse(zm_buf_head(&b), zm_buf_pending(&b), ZM_FRAME_MAX, &f), 1);
	assert_int_equal(f.len, 20);
	assert_int_equal(f.count, 1);
	zm_buf_consume(&b, f.len);
	assert_int_equal(zm_frame_parse(zm_buf_head(&b), zm_buf_pending(&b), ZM_FRAME_MAX, &f), 1);
	assert_int_equal(f.len, 32);
	assert_int_equal(f.count, 2);
	zm_record_iter_init(&it, &f);
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(zm_dec_u64(&r, &token), 0);
	assert_true(token == 2);
	zm_buf_free(&b);
}

/* ---- record iteration --------------------------------------------------- */

static void test_empty_frame_has_no_records(void **state)
{
	uint8_t frame[8];
	int seen;

	put_frame_hdr(frame, 8, ZM_FRAME_MAGIC, 0);
	assert_int_equal(iterate_all(frame, sizeof(frame), &seen), 0);
	assert_int_equal(seen, 0);
}

static void test_record_iter_rejects_overrun(void **state)
{
	/* The record claims 20 bytes; the frame holds 12 of it. */
	uint8_t frame[8 + 12];
	int seen;

	put_frame_hdr(frame, sizeof(frame), ZM_FRAME_MAGIC, 1);
	put_rec_hdr(frame + 8, ZM_REC_SYNC, 20);
	memset(frame + 12, 0, 8);
	assert_int_equal(iterate_all(frame, sizeof(frame), &seen), -EBADMSG);
	assert_int_equal(seen, 0);
}

static void test_record_iter_rejects_length_below_header(void **state)
{
	uint8_t frame[8 + 4];
	int seen;

	for (uint16_t len = 0; len < ZM_REC_HDR_LEN; len++) {
		put_frame_hdr(frame, sizeof(frame), ZM_FRAME_MAGIC, 1);
		put_rec_hdr(frame + 8, ZM_REC_SYNC, len);
		assert_int_equal(iterate_all(frame, sizeof(frame), &seen), -EBADMSG);
	}
}

static void test_record_iter_rejects_truncated_record_header(void **state)
{
	uint8_t frame[8 + 2] = {0};
	int seen;

	put_frame_hdr(frame, sizeof(frame), ZM_FRAME_MAGIC, 1);
	assert_int_equal(iterate_all(frame, sizeof(frame), &seen), -EBADMSG);
	assert_int_equal(seen, 0);
}

static void test_record_iter_rejects_fewer_records_than_count(void **state)
{
	uint8_t frame[8 + 12 + 12];
	int seen;

	put_frame_hdr(frame, sizeof(frame), ZM_FRAME_MAGIC, 3);
	put_rec_hdr(frame + 8, ZM_REC_SYNC, 12);
	zm_enc_u64(frame + 12, 1);
	put_rec_hdr(frame + 20, ZM_REC_SYNC, 12);
	zm_enc_u64(frame + 24, 2);
	assert_int_equal(iterate_all(frame, sizeof(frame), &seen), -EBADMSG);
	assert_int_equal(seen, 2);
}

static void test_record_iter_rejects_bytes_after_count(void **state)
{
	uint8_t frame[8 + 12 + 12];
	int seen;

	put_frame_hdr(frame, sizeof(frame), ZM_FRAME_MAGIC, 1);
	put_rec_hdr(frame + 8, ZM_REC_SYNC, 12);
	zm_enc_u64(frame + 12, 1);
	put_rec_hdr(frame + 20, ZM_REC_SYNC, 12);
	zm_enc_u64(frame + 24, 2);
	assert_int_equal(iterate_all(frame, sizeof(frame), &seen), -EBADMSG);
	assert_int_equal(seen, 1);
}

static void test_record_iter_error_repeats(void **state)
{
	uint8_t frame[8 + 4];
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record r;

	put_frame_hdr(frame, sizeof(frame), ZM_FRAME_MAGIC, 1);
	put_rec_hdr(frame + 8, ZM_REC_SYNC, 2);
	assert_int_equal(zm_frame_parse(frame, sizeof(frame), ZM_FRAME_MAX, &f), 1);
	zm_record_iter_init(&it, &f);
	assert_int_equal(zm_record_next(&it, &r), -EBADMSG);
	assert_int_equal(zm_record_next(&it, &r), -EBADMSG);
}

static void test_record_with_empty_body_is_valid(void **state)
{
	uint8_t frame[8 + 4];
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record r;
	uint64_t token;

	put_frame_hdr(frame, sizeof(frame), ZM_FRAME_MAGIC, 1);
	put_rec_hdr(frame + 8, ZM_REC_SYNC, 4);
	assert_int_equal(zm_frame_parse(frame, sizeof(frame), ZM_FRAME_MAX, &f), 1);
	zm_record_iter_init(&it, &f);
	assert_int_equal(zm_record_next(&it, &r), 1);
	assert_int_equal(r.len, 0);
	/* ...but no SYNC decoder accepts it. */
	assert_int_equal(zm_dec_u64(&r, &token), -EBADMSG);
	assert_int_equal(zm_record_next(&it, &r), 0);
}

/* ---- frame writer ------------------------------------------------------- */

static void test_writer_puts_many_records_in_one_frame(void **state)
{
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record r;
	struct zm_down d = {.reason = ZM_REASON_EXITED}, out;
	uint8_t body[BODY_MAX];

	zm_frame_writer_init(&w, &b);
	for (uint64_t i = 1; i <= 1000; i++) {
		d.ref = i;
		assert_int_equal(zm_frame_add(&w, ZM_REC_DOWN, body, zm_enc_down(body, &d)), 0);
	}
	zm_frame_end(&w);
	assert_int_equal(zm_buf_pending(&b), 8 + 1000 * (4 + ZM_DOWN_LEN));
	assert_int_equal(zm_frame_parse(zm_buf_head(&b), zm_buf_pending(&b), ZM_FRAME_MAX, &f), 1);
	assert_int_equal(f.count, 1000);
	zm_record_iter_init(&it, &f);
	for (uint64_t i = 1; i <= 1000; i++) {
		assert_int_equal(zm_record_next(&it, &r), 1);
		assert_int_equal(zm_dec_down(&r, &out), 0);
		assert_true(out.ref == i);
	}
	assert_int_equal(zm_record_next(&it, &r), 0);
	zm_buf_free(&b);
}

/* Walk every frame in b, checking each is whole, valid and within the limit.
 * Returns the number of frames; the total of records goes to *ret_records,
 * the first frame's length to *ret_first_len (if not NULL). */
static size_t walk_frames(struct zm_buf *b, size_t *ret_records, size_t *ret_first_len)
{
	const uint8_t *p = zm_buf_head(b);
	size_t n = zm_buf_pending(b), frames = 0, records = 0;
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record r;
	int res;

	while (n > 0) {
		assert_int_equal(zm_frame_parse(p, n, ZM_FRAME_MAX, &f), 1);
		assert_true(f.len <= ZM_FRAME_MAX);
		if (frames == 0 && ret_first_len)
			*ret_first_len = f.len;
		zm_record_iter_init(&it, &f);
		while ((res = zm_record_next(&it, &r)) == 1)
			records++;
		assert_int_equal(res, 0);
		frames++;
		p += f.len;
		n -= f.len;
	}
	*ret_records = records;
	return frames;
}

static void test_writer_splits_frames_at_max(void **state)
{
	const size_t body_len = ZM_REC_MAX - ZM_REC_HDR_LEN;   /* largest record */
	const size_t per_frame = (ZM_FRAME_MAX - ZM_FRAME_HDR_LEN) / ZM_REC_MAX;
	uint8_t *body = calloc(1, body_len);
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	size_t records, first_len = 0;

	assert_non_null(body);
	zm_frame_writer_init(&w, &b);
	for (size_t i = 0; i < 40; i++)
		assert_int_equal(zm_frame_add(&w, 0x7000, body, body_len), 0);
	zm_frame_end(&w);
	/* 16 records of 65535 fill a frame to 8 + 1048560 bytes; a 17th would not fit. */
	assert_int_equal(per_frame, 16);
	assert_int_equal(walk_frames(&b, &records, &first_len), 3);
	assert_int_equal(records, 40);
	assert_int_equal(first_len, ZM_FRAME_HDR_LEN + per_frame * ZM_REC_MAX);
	free(body);
	zm_buf_free(&b);
}

static void test_writer_fills_frame_exactly_to_max(void **state)
{
	/* Records that add up to exactly ZM_FRAME_MAX share one frame. */
	const size_t rec = 0x10000 - 16;          /* 65520-byte records */
	const size_t left = ZM_FRAME_MAX - ZM_FRAME_HDR_LEN - 16 * rec;   /* 248 */
	uint8_t *body = calloc(1, ZM_REC_MAX);
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	size_t records, first_len = 0;

	assert_non_null(body);
	assert_true(left >= ZM_REC_HDR_LEN && left <= ZM_REC_MAX);
	zm_frame_writer_init(&w, &b);
	for (int i = 0; i < 16; i++)
		assert_int_equal(zm_frame_add(&w, 0x7000, body, rec - ZM_REC_HDR_LEN), 0);
	assert_int_equal(zm_frame_add(&w, 0x7000, body, left - ZM_REC_HDR_LEN), 0);
	assert_int_equal(zm_frame_open_len(&w), ZM_FRAME_MAX);
	/* The next record, even an empty one, opens a new frame. */
	assert_int_equal(zm_frame_add(&w, 0x7000, NULL, 0), 0);
	assert_int_equal(zm_frame_open_len(&w), ZM_FRAME_HDR_LEN + ZM_REC_HDR_LEN);
	zm_frame_end(&w);
	assert_int_equal(walk_frames(&b, &records, &first_len), 2);
	assert_int_equal(first_len, ZM_FRAME_MAX);
	assert_int_equal(records, 18);
	free(body);
	zm_buf_free(&b);
}

static void test_writer_splits_frames_at_count_limit(void **state)
{
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	struct zm_frame f;
	size_t records;

	zm_frame_writer_init(&w, &b);
	for (size_t i = 0; i < 65536; i++)
		assert_int_equal(zm_frame_add(&w, 0x7000, NULL, 0), 0);
	zm_frame_end(&w);
	assert_int_equal(zm_frame_parse(zm_buf_head(&b), zm_buf_pending(&b), ZM_FRAME_MAX, &f), 1);
	assert_int_equal(f.count, 65535);
	assert_int_equal(walk_frames(&b, &records, NULL), 2);
	assert_int_equal(records, 65536);
	zm_buf_free(&b);
}

static void test_writer_rejects_record_too_big_for_u16_length(void **state)
{
	const size_t too_big = ZM_REC_MAX - ZM_REC_HDR_LEN + 1;
	uint8_t *body = calloc(1, too_big);
	struct zm_buf b = {0};
	struct zm_frame_writer w;

	assert_non_null(body);
	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_add(&w, 0x7000, NULL, 0), 0);
	assert_int_equal(zm_frame_add(&w, 0x7000, body, too_big), -EMSGSIZE);
	/* Nothing was written: the open frame still holds one record. */
	assert_int_equal(zm_frame_open_len(&w), ZM_FRAME_HDR_LEN + ZM_REC_HDR_LEN);
	assert_int_equal(w.count, 1);
	assert_int_equal(zm_frame_add(&w, 0x7000, body, too_big - 1), 0);
	free(body);
	zm_buf_free(&b);
}

static void test_writer_open_len_tracks_the_open_frame(void **state)
{
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	uint8_t body[8];

	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_open_len(&w), 0);
	assert_int_equal(zm_frame_add(&w, ZM_REC_SYNC, body, zm_enc_u64(body, 1)), 0);
	assert_int_equal(zm_frame_open_len(&w), 8 + 12);
	assert_int_equal(zm_frame_add(&w, ZM_REC_SYNC, body, zm_enc_u64(body, 2)), 0);
	assert_int_equal(zm_frame_open_len(&w), 8 + 24);
	zm_frame_end(&w);
	assert_int_equal(zm_frame_open_len(&w), 0);
	/* Ending twice, or with nothing open, writes nothing. */
	zm_frame_end(&w);
	assert_int_equal(zm_buf_pending(&b), 32);
	zm_buf_free(&b);
}

static void test_writer_appends_after_bytes_already_in_buffer(void **state)
{
	/* The writer appends to a buffer that still holds unsent bytes. */
	struct zm_buf b = {0};
	struct zm_frame_writer w;
	struct zm_frame f;
	uint8_t body[8];

	assert_int_equal(zm_buf_append(&b, "xyz", 3), 0);
	zm_buf_consume(&b, 1);
	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_add(&w, ZM_REC_SYNC, body, zm_enc_u64(body, 1)), 0);
	zm_frame_end(&w);
	assert_int_equal(zm_buf_pending(&b), 2 + 20);
	assert_memory_equal(zm_buf_head(&b), "yz", 2);
	assert_int_equal(zm_frame_parse(zm_buf_head(&b) + 2, 20, ZM_FRAME_MAX, &f), 1);
	assert_int_equal(f.count, 1);
	zm_buf_free(&b);
}

/* ---- zm_buf ------------------------------------------------------------- */

static void test_buf_append_then_consume_returns_bytes_in_order(void **state)
{
	struct zm_buf b = {0};

	assert_int_equal(zm_buf_append(&b, "hello ", 6), 0);
	assert_int_equal(zm_buf_append(&b, "world", 5), 0);
	assert_int_equal(zm_buf_pending(&b), 11);
	zm_buf_consume(&b, 6);
	assert_int_equal(zm_buf_pending(&b), 5);
	assert_memory_equal(zm_buf_head(&b), "world", 5);
	zm_buf_free(&b);
}

static void test_buf_consume_all_resets_without_freeing(void **state)
{
	struct zm_buf b = {0};
	size_t cap;
	uint8_t *data;

	assert_int_equal(zm_buf_append(&b, "abcdef", 6), 0);
	cap = b.cap;
	data = b.data;
	zm_buf_consume(&b, 6);
	assert_int_equal(zm_buf_pending(&b), 0);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.data, data);
	zm_buf_free(&b);
}

static void test_buf_consume_compacts_past_half(void **state)
{
	struct zm_buf b = {0};
	uint8_t chunk[64];
	size_t cap, total = 0;

	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)i;
	while (total < 1000) {
		assert_int_equal(zm_buf_append(&b, chunk, sizeof(chunk)), 0);
		total += sizeof(chunk);
	}
	cap = b.cap;
	/* Consume just past half the capacity, keeping the last chunk. */
	zm_buf_consume(&b, total - sizeof(chunk));
	assert_true(total - sizeof(chunk) > cap / 2);
	assert_int_equal(b.off, 0);
	assert_int_equal(zm_buf_pending(&b), sizeof(chunk));
	assert_memory_equal(zm_buf_head(&b), chunk, sizeof(chunk));
	assert_int_equal(b.cap, cap);
	zm_buf_free(&b);
}

static void test_buf_consume_small_prefix_moves_nothing(void **state)
{
	struct zm_buf b = {0};
	uint8_t chunk[100] = {0};

	assert_int_equal(zm_buf_append(&b, chunk, sizeof(chunk)), 0);
	zm_buf_consume(&b, 10);
	assert_int_equal(b.off, 10);
	assert_int_equal(zm_buf_pending(&b), 90);
	zm_buf_free(&b);
}

static void test_buf_grows_geometrically(void **state)
{
	struct zm_buf b = {0};
	size_t grows = 0, cap = 0;

	for (int i = 0; i < 1000000; i++) {
		assert_int_equal(zm_buf_append(&b, "x", 1), 0);
		if (b.cap != cap) {
			assert_true(b.cap >= 2 * cap);
			cap = b.cap;
			grows++;
		}
	}
	assert_int_equal(zm_buf_pending(&b), 1000000);
	assert_true(grows <= 20);
	assert_true(b.cap < 2 * 1000000);
	zm_buf_free(&b);
}

static void test_buf_reserve_gives_room_without_changing_content(void **state)
{
	struct zm_buf b = {0};

	assert_int_equal(zm_buf_append(&b, "keep", 4), 0);
	assert_int_equal(zm_buf_reserve(&b, 100000), 0);
	assert_true(b.cap - b.len >= 100000);
	assert_int_equal(zm_buf_pending(&b), 4);
	assert_memory_equal(zm_buf_head(&b), "keep", 4);
	zm_buf_free(&b);
}

static void test_buf_reserve_failure_leaves_buffer_intact(void **state)
{
	struct zm_buf b = {0};
	uint8_t *data;

	assert_int_equal(zm_buf_append(&b, "keep", 4), 0);
	data = b.data;
	assert_int_equal(zm_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	assert_int_equal(zm_buf_reserve(&b, SIZE_MAX - 2), -ENOMEM);
	assert_ptr_equal(b.data, data);
	assert_int_equal(zm_buf_pending(&b), 4);
	assert_memory_equal(zm_buf_head(&b), "keep", 4);
	zm_buf_free(&b);
}

static void test_buf_free_is_null_safe_and_leaves_reusable_buffer(void **state)
{
	struct zm_buf b = {0};

	zm_buf_free(NULL);
	zm_buf_free(&b);
	assert_int_equal(zm_buf_append(&b, "a", 1), 0);
	zm_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(zm_buf_pending(&b), 0);
	assert_int_equal(zm_buf_append(&b, "b", 1), 0);
	assert_memory_equal(zm_buf_head(&b), "b", 1);
	zm_buf_free(&b);
}

/* ---- TCP monitors -------------------------------------------------------- */

/* An IPv4 address in a tuple's 16-byte address field. */
static void put_v4(uint8_t *a, uint8_t x, uint8_t y, uint8_t z, uint8_t w)
{
	memset(a, 0, 16);
	a[0] = x;
	a[1] = y;
	a[2] = z;
	a[3] = w;
}

static void test_monitor_tcp_body_layout_matches_protocol_doc(void **state)
{
	/* The MONITOR_TCP worked example in docs/PROTOCOL.md. */
	struct zm_monitor_tcp m = {
		.ref = 3, .by = ZM_TCP_BY_TUPLE,
		.tuple = { .family = 2, .sport = 5000, .dport = 41234 },
	};
	struct zm_buf b = {0};
	uint8_t body[BODY_MAX];

	put_v4(m.tuple.saddr, 127, 0, 0, 1);
	put_v4(m.tuple.daddr, 127, 0, 0, 1);
	assert_int_equal(zm_enc_monitor_tcp(body, &m), ZM_MONITOR_TCP_LEN);
	one_record_frame(&b, ZM_REC_MONITOR_TCP, body, ZM_MONITOR_TCP_LEN);
	assert_hex(zm_buf_head(&b), zm_buf_pending(&b),
		   "4c 00 00 00 7a 6d 01 00"
		   "15 00 44 00"
		   "03 00 00 00 00 00 00 00"
		   "03  02  00 00  00 00 00 00"
		   "00 00 00 00 00 00 00 00"
		   "7f 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00"
		   "7f 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00"
		   "88 13  12 a1  00 00 00 00");
	zm_buf_free(&b);
}

static void test_monitor_tcp_by_cookie_puts_cookie_at_16(void **state)
{
	struct zm_monitor_tcp m = {
		.ref = 0x1122334455667788ULL, .by = ZM_TCP_BY_COOKIE, .flags = 0xa0b0c0d0U,
		.cookie = 0xf0e0d0c0b0a09080ULL,
	};
	uint8_t out[ZM_MONITOR_TCP_LEN];

	memset(out, 0xee, sizeof(out));
	assert_int_equal(zm_enc_monitor_tcp(out, &m), ZM_MONITOR_TCP_LEN);
	assert_hex(out, sizeof(out),
		   "88 77 66 55 44 33 22 11  02  00  00 00  d0 c0 b0 a0"
		   "80 90 a0 b0 c0 d0 e0 f0"
		   "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
		   "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
		   "00 00  00 00  00 00 00 00");
}

static void test_monitor_tcp_roundtrips_each_way(void **state)
{
	struct zm_monitor_tcp in[3] = {
		{ .ref = 1, .by = ZM_TCP_BY_FD },
		{ .ref = 2, .by = ZM_TCP_BY_COOKIE, .cookie = UINT64_MAX - 5 },
		{ .ref = UINT64_MAX, .by = ZM_TCP_BY_TUPLE, .flags = 0,
		  .tuple = { .family = 10, .sport = 65535, .dport = 1 } },
	};

	for (int i = 0; i < 16; i++) {
		in[2].tuple.saddr[i] = (uint8_t)(0x20 + i);
		in[2].tuple.daddr[i] = (uint8_t)(0xf0 - i);
	}
	for (size_t i = 0; i < 3; i++) {
		struct zm_monitor_tcp out;
		struct zm_buf b = {0};
		struct zm_record r;
		uint8_t body[BODY_MAX];

		one_record_frame(&b, ZM_REC_MONITOR_TCP, body, zm_enc_monitor_tcp(body, &in[i]));
		r = only_record(&b, ZM_REC_MONITOR_TCP);
		assert_int_equal(r.len, ZM_MONITOR_TCP_LEN);
		memset(&out, 0x5a, sizeof(out));
		assert_int_equal(zm_dec_monitor_tcp(&r, &out), 0);
		assert_true(out.ref == in[i].ref);
		assert_int_equal(out.by, in[i].by);
		assert_int_equal(out.flags, in[i].flags);
		assert_true(out.cookie == in[i].cookie);
		assert_int_equal(out.tuple.family, in[i].tuple.family);
		assert_memory_equal(out.tuple.saddr, in[i].tuple.saddr, 16);
		assert_memory_equal(out.tuple.daddr, in[i].tuple.daddr, 16);
		assert_int_equal(out.tuple.sport, in[i].tuple.sport);
		assert_int_equal(out.tuple.dport, in[i].tuple.dport);
		zm_buf_free(&b);
	}
}

static void test_protocol_doc_tcp_down_example(void **state)
{
	/* The TCP DOWN worked example in docs/PROTOCOL.md: the peer reset it. */
	struct zm_down d = {
		.ref = 3, .time_ns = 1700000000123456789ULL, .kind = ZM_TARGET_TCP,
		.reason = ZM_REASON_TCP_CLOSED, .value = 104, .start_ticks = 4097,
		.tcp_how = ZM_TCP_RESET_RX, .tcp_old_state = 1,
		.tuple = { .family = 2, .sport = 5000, .dport = 41234 },
	};
	struct zm_buf b = {0};
	uint8_t body[BODY_MAX];

	put_v4(d.tuple.saddr, 127, 0, 0, 1);
	put_v4(d.tuple.daddr, 127, 0, 0, 1);
	assert_int_equal(zm_enc_down(body, &d), ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN);
	one_record_frame(&b, ZM_REC_DOWN, body, ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN);
	assert_hex(zm_buf_head(&b), zm_buf_pending(&b),
		   "5c 00 00 00 7a 6d 01 00"
		   "20 00 54 00"
		   "03 00 00 00 00 00 00 00"
		   "15 cd 85 3d fe 9c 97 17"
		   "02 00  04 00  00 00 00 00"
		   "68 00 00 00  00 00 00 00"
		   "01 10 00 00 00 00 00 00"
		   "02  01  02  00  88 13  12 a1"
		   "7f 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00"
		   "7f 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00");
	zm_buf_free(&b);
}

static void test_down_tcp_roundtrips_all_fields(void **state)
{
	struct zm_down in = {
		.ref = UINT64_MAX, .time_ns = 42, .kind = ZM_TARGET_TCP,
		.reason = ZM_REASON_TCP_CLOSED, .value = 110, .start_ticks = 0x0102030405060708ULL,
		.tcp_how = ZM_TCP_TIMEOUT, .tcp_old_state = 8,
		.tuple = { .family = 10, .sport = 443, .dport = 50123 },
	}, out;
	struct zm_buf b = {0};
	struct zm_record r;
	uint8_t body[BODY_MAX];

	for (int i = 0; i < 16; i++) {
		in.tuple.saddr[i] = (uint8_t)(i + 1);
		in.tuple.daddr[i] = (uint8_t)(0xff - i);
	}
	one_record_frame(&b, ZM_REC_DOWN, body, zm_enc_down(body, &in));
	r = only_record(&b, ZM_REC_DOWN);
	assert_int_equal(r.len, ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN);
	assert_int_equal(zm_dec_down(&r, &out), 0);
	assert_true(out.ref == in.ref);
	assert_true(out.time_ns == 42);
	assert_int_equal(out.kind, ZM_TARGET_TCP);
	assert_int_equal(out.reason, ZM_REASON_TCP_CLOSED);
	assert_int_equal(out.flags, 0);
	assert_int_equal(out.value, 110);
	assert_int_equal(out.pid, 0);
	assert_true(out.start_ticks == in.start_ticks);
	assert_int_equal(out.tcp_how, ZM_TCP_TIMEOUT);
	assert_int_equal(out.tcp_old_state, 8);
	assert_int_equal(out.tuple.family, 10);
	assert_memory_equal(out.tuple.saddr, in.tuple.saddr, 16);
	assert_memory_equal(out.tuple.daddr, in.tuple.daddr, 16);
	assert_int_equal(out.tuple.sport, 443);
	assert_int_equal(out.tuple.dport, 50123);
	zm_buf_free(&b);
}

static void test_down_tcp_noconnection_with_unknown_endpoints_roundtrips(void **state)
{
	struct zm_down in = {
		.ref = 9, .kind = ZM_TARGET_TCP, .reason = ZM_REASON_NOCONNECTION, .start_ticks = 77,
	}, out;
	uint8_t body[BODY_MAX], zeros[16] = {0};
	struct zm_record r = {.body = body, .type = ZM_REC_DOWN};

	r.len = (uint16_t)zm_enc_down(body, &in);
	assert_int_equal(r.len, ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN);
	assert_int_equal(zm_dec_down(&r, &out), 0);
	assert_int_equal(out.reason, ZM_REASON_NOCONNECTION);
	assert_true(out.start_ticks == 77);
	assert_int_equal(out.tcp_how, 0);
	assert_int_equal(out.tuple.family, 0);
	assert_memory_equal(out.tuple.saddr, zeros, 16);
	assert_int_equal(out.tuple.sport, 0);
}

static void test_down_tcp_shorter_than_tail_is_rejected(void **state)
{
	struct zm_down in = {.ref = 1, .kind = ZM_TARGET_TCP, .reason = ZM_REASON_TCP_CLOSED}, out;
	uint8_t full[ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN];

	zm_enc_down(full, &in);
	for (size_t len = ZM_DOWN_LEN; len < sizeof(full); len++) {
		uint8_t *exact = dup_exact(full, len);
		struct zm_record r = {.body = exact, .type = ZM_REC_DOWN, .len = (uint16_t)len};

		memset(&out, 0x5a, sizeof(out));
		assert_int_equal(zm_dec_down(&r, &out), -EBADMSG);
		/* Untouched on failure, like every decoder. */
		assert_true(out.ref == 0x5a5a5a5a5a5a5a5aULL);
		free(exact);
	}
}

static void test_down_process_ignores_any_tail(void **state)
{
	/* A process DOWN is 40 bytes, and bytes past them mean nothing to it,
	 * even 40 that look like a TCP tail. */
	struct zm_down in = {.ref = 5, .kind = ZM_TARGET_PROCESS, .reason = ZM_REASON_EXITED,
			     .value = 1, .pid = 99}, out;
	uint8_t body[ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN], zeros[16] = {0};
	struct zm_record r = {.body = body, .type = ZM_REC_DOWN, .len = sizeof(body)};

	assert_int_equal(zm_enc_down(body, &in), ZM_DOWN_LEN);
	memset(body + ZM_DOWN_LEN, 0xab, ZM_DOWN_TCP_TAIL_LEN);
	assert_int_equal(zm_dec_down(&r, &out), 0);
	assert_int_equal(out.kind, ZM_TARGET_PROCESS);
	assert_int_equal(out.pid, 99);
	assert_int_equal(out.tcp_how, 0);
	assert_int_equal(out.tcp_old_state, 0);
	assert_int_equal(out.tuple.family, 0);
	assert_memory_equal(out.tuple.daddr, zeros, 16);
}

static void test_down_of_unknown_kind_needs_only_40_bytes(void **state)
{
	/* A later version's kind: the client still sees a DOWN (the monitor
	 * is over), from the 40 bytes every kind has. */
	uint8_t body[ZM_DOWN_LEN] = {0};
	struct zm_record r = {.body = body, .type = ZM_REC_DOWN, .len = sizeof(body)};
	struct zm_down out;

	body[0] = 8;
	body[16] = 3;   /* kind 3 */
	assert_int_equal(zm_dec_down(&r, &out), 0);
	assert_true(out.ref == 8);
	assert_int_equal(out.kind, 3);
}

/* ---- STATS, TARGETS and their text replies ------------------------------ */

static void test_targets_body_layout_matches_protocol_doc(void **state)
{
	struct zm_targets m = { .token = 0x0102030405060708ULL, .limit = 500, .flags = 0 }, got;
	uint8_t body[ZM_TARGETS_LEN];
	struct zm_record r = { .body = body, .type = ZM_REC_TARGETS, .len = ZM_TARGETS_LEN };

	assert_int_equal(zm_enc_targets(body, &m), ZM_TARGETS_LEN);
	assert_hex(body, sizeof(body), "08 07 06 05 04 03 02 01  f4 01 00 00  00 00 00 00");
	assert_int_equal(zm_dec_targets(&r, &got), 0);
	assert_true(got.token == m.token);
	assert_int_equal(got.limit, 500);
	assert_int_equal(got.flags, 0);
	r.len = ZM_TARGETS_LEN - 1;
	assert_int_equal(zm_dec_targets(&r, &got), -EBADMSG);
}

static void test_text_reply_layout_is_token_flags_reserved_then_text(void **state)
{
	struct zm_text_reply m = { .token = 7, .flags = ZM_TEXT_MORE }, got;
	uint8_t body[ZM_TEXT_REPLY_LEN + 3];
	struct zm_record r = { .body = body, .type = ZM_REC_STATS_REPLY, .len = sizeof(body) };

	assert_int_equal(zm_enc_text_reply(body, &m), ZM_TEXT_REPLY_LEN);
	memcpy(body + ZM_TEXT_REPLY_LEN, "a 1", 3);
	assert_hex(body, sizeof(body), "07 00 00 00 00 00 00 00  01 00 00 00  00 00 00 00  61 20 31");
	assert_int_equal(zm_dec_text_reply(&r, &got), 0);
	assert_true(got.token == 7);
	assert_int_equal(got.flags, ZM_TEXT_MORE);
	assert_int_equal(got.text_len, 3);
	assert_memory_equal(got.text, "a 1", 3);
	r.len = ZM_TEXT_REPLY_LEN - 1;
	assert_int_equal(zm_dec_text_reply(&r, &got), -EBADMSG);
}

/*
 * The text of every reply record in b, joined; checks the MORE flags and the
 * token, and with whole_lines that no record but the last cuts a line.
 */
static char *join_text_replies(const struct zm_buf *b, uint64_t token, bool whole_lines,
			       size_t *ret_records)
{
	size_t off = 0, records = 0, len = 0;
	char *text = calloc(1, 1);
	bool ended = false;

	assert_non_null(text);
	while (off < zm_buf_pending(b)) {
		struct zm_frame f;
		struct zm_record_iter it;
		struct zm_record rec;

		assert_int_equal(zm_frame_parse(zm_buf_head(b) + off, zm_buf_pending(b) - off, ZM_FRAME_MAX, &f), 1);
		zm_record_iter_init(&it, &f);
		while (zm_record_next(&it, &rec) > 0) {
			struct zm_text_reply t;

			assert_false(ended);
			assert_int_equal(rec.type, ZM_REC_TARGETS_REPLY);
			assert_int_equal(zm_dec_text_reply(&rec, &t), 0);
			assert_true(t.token == token);
			if (whole_lines && (t.flags & ZM_TEXT_MORE))
				assert_true(t.text_len > 0 && t.text[t.text_len - 1] == '\n');
			text = realloc(text, len + t.text_len + 1);
			assert_non_null(text);
			memcpy(text + len, t.text, t.text_len);
			len += t.text_len;
			text[len] = '\0';
			ended = !(t.flags & ZM_TEXT_MORE);
			records++;
		}
		off += f.len;
	}
	assert_true(ended);
	*ret_records = records;
	return text;
}

static void test_short_text_reply_is_one_record_without_more(void **state)
{
	struct zm_buf b = { 0 };
	struct zm_frame_writer w;
	size_t records;
	char *text;

	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_add_text_reply(&w, ZM_REC_TARGETS_REPLY, 5, "a\nb\n", 4), 1);
	zm_frame_end(&w);
	text = join_text_replies(&b, 5, true, &records);
	assert_int_equal(records, 1);
	assert_string_equal(text, "a\nb\n");
	free(text);
	zm_buf_free(&b);
}

static void test_empty_text_reply_is_one_empty_record(void **state)
{
	struct zm_buf b = { 0 };
	struct zm_frame_writer w;
	size_t records;
	char *text;

	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_add_text_reply(&w, ZM_REC_TARGETS_REPLY, 6, "", 0), 1);
	zm_frame_end(&w);
	text = join_text_replies(&b, 6, true, &records);
	assert_int_equal(records, 1);
	assert_string_equal(text, "");
	free(text);
	zm_buf_free(&b);
}

static void test_long_text_reply_splits_after_whole_lines(void **state)
{
	/* 3000 lines of 48 bytes: 144 kB, three records at least. */
	size_t n = 3000 * 48, records;
	char *in = malloc(n + 1), *out;
	struct zm_buf b = { 0 };
	struct zm_frame_writer w;
	size_t off = 0;

	assert_non_null(in);
	for (int i = 0; i < 3000; i++)
		off += (size_t)sprintf(in + off, "target kind=process pid=%08d monitors=1 x=y\n", i);
	assert_int_equal(off, n);
	zm_frame_writer_init(&w, &b);
	assert_true(zm_frame_add_text_reply(&w, ZM_REC_TARGETS_REPLY, 9, in, n) >= 3);
	zm_frame_end(&w);
	/* every record but the last ends with a newline: no line is cut */
	out = join_text_replies(&b, 9, true, &records);
	assert_true(records >= 3);
	assert_string_equal(out, in);
	free(in);
	free(out);
	zm_buf_free(&b);
}

static void test_text_reply_line_longer_than_a_record_is_cut(void **state)
{
	size_t n = 100000, records;
	char *in = malloc(n + 1), *out;
	struct zm_buf b = { 0 };
	struct zm_frame_writer w;

	assert_non_null(in);
	memset(in, 'x', n);
	in[n] = '\0';
	zm_frame_writer_init(&w, &b);
	assert_int_equal(zm_frame_add_text_reply(&w, ZM_REC_TARGETS_REPLY, 1, in, n), 2);
	zm_frame_end(&w);
	out = join_text_replies(&b, 1, false, &records);
	assert_int_equal(records, 2);
	assert_string_equal(out, in);
	free(in);
	free(out);
	zm_buf_free(&b);
}

/* ---- names -------------------------------------------------------------- */

static void test_record_type_names(void **state)
{
	assert_string_equal(zm_rec_type_name(ZM_REC_HELLO), "HELLO");
	assert_string_equal(zm_rec_type_name(ZM_REC_WELCOME), "WELCOME");
	assert_string_equal(zm_rec_type_name(ZM_REC_MONITOR_PROC), "MONITOR_PROC");
	assert_string_equal(zm_rec_type_name(ZM_REC_MONITOR_PIDFD), "MONITOR_PIDFD");
	assert_string_equal(zm_rec_type_name(ZM_REC_DEMONITOR), "DEMONITOR");
	assert_string_equal(zm_rec_type_name(ZM_REC_SYNC), "SYNC");
	assert_string_equal(zm_rec_type_name(ZM_REC_STATUS), "STATUS");
	assert_string_equal(zm_rec_type_name(ZM_REC_MONITOR_TCP), "MONITOR_TCP");
	assert_string_equal(zm_rec_type_name(ZM_REC_DOWN), "DOWN");
	assert_string_equal(zm_rec_type_name(ZM_REC_ERROR), "ERROR");
	assert_string_equal(zm_rec_type_name(ZM_REC_SYNCED), "SYNCED");
	assert_string_equal(zm_rec_type_name(ZM_REC_STATUS_REPLY), "STATUS_REPLY");
	assert_string_equal(zm_rec_type_name(ZM_REC_STATS), "STATS");
	assert_string_equal(zm_rec_type_name(ZM_REC_TARGETS), "TARGETS");
	assert_string_equal(zm_rec_type_name(ZM_REC_STATS_REPLY), "STATS_REPLY");
	assert_string_equal(zm_rec_type_name(ZM_REC_TARGETS_REPLY), "TARGETS_REPLY");
	assert_string_equal(zm_rec_type_name(0), "unknown");
}

static void test_reason_names(void **state)
{
	assert_string_equal(zm_reason_name(ZM_REASON_EXITED), "exited");
	assert_string_equal(zm_reason_name(ZM_REASON_KILLED), "killed");
	assert_string_equal(zm_reason_name(ZM_REASON_NOPROC), "noproc");
	assert_string_equal(zm_reason_name(ZM_REASON_TCP_CLOSED), "tcp_closed");
	assert_string_equal(zm_reason_name(ZM_REASON_NOCONNECTION), "noconnection");
	assert_string_equal(zm_reason_name(0), "unknown");
	assert_string_equal(zm_reason_name(99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding_is_little_endian),
		cmocka_unit_test(test_targets_body_layout_matches_protocol_doc),
		cmocka_unit_test(test_text_reply_layout_is_token_flags_reserved_then_text),
		cmocka_unit_test(test_short_text_reply_is_one_record_without_more),
		cmocka_unit_test(test_empty_text_reply_is_one_empty_record),
		cmocka_unit_test(test_long_text_reply_splits_after_whole_lines),
		cmocka_unit_test(test_text_reply_line_longer_than_a_record_is_cut),
		cmocka_unit_test(test_frame_header_is_length_then_zm_magic_then_count),
		cmocka_unit_test(test_down_body_layout_matches_protocol_doc),
		cmocka_unit_test(test_error_code_and_message_layout),
		cmocka_unit_test(test_protocol_doc_hello_example),
		cmocka_unit_test(test_protocol_doc_welcome_example),
		cmocka_unit_test(test_protocol_doc_two_monitors_example),
		cmocka_unit_test(test_protocol_doc_down_example),
		cmocka_unit_test(test_down_roundtrips_all_fields),
		cmocka_unit_test(test_hello_roundtrips_with_name),
		cmocka_unit_test(test_welcome_roundtrips_with_agent_version),
		cmocka_unit_test(test_monitor_requests_roundtrip),
		cmocka_unit_test(test_error_roundtrips_with_message),
		cmocka_unit_test(test_sync_token_roundtrips),
		cmocka_unit_test(test_status_reply_text_follows_token),
		cmocka_unit_test(test_empty_trailing_string_decodes_as_empty),
		cmocka_unit_test(test_hello_name_truncated_to_max_on_encode),
		cmocka_unit_test(test_hello_name_truncated_to_max_on_decode),
		cmocka_unit_test(test_welcome_version_truncated_to_max),
		cmocka_unit_test(test_error_message_truncated_to_max),
		cmocka_unit_test(test_decoder_rejects_short_body),
		cmocka_unit_test(test_decoder_leaves_output_untouched_on_short_body),
		cmocka_unit_test(test_trailing_bytes_ignored_for_forward_compat),
		cmocka_unit_test(test_unknown_record_type_is_skippable),
		cmocka_unit_test(test_frame_parse_rejects_bad_magic),
		cmocka_unit_test(test_frame_parse_rejects_garbage_before_whole_frame),
		cmocka_unit_test(test_frame_parse_rejects_length_below_header),
		cmocka_unit_test(test_oversized_frame_rejected),
		cmocka_unit_test(test_frame_parse_honours_callers_max_frame),
		cmocka_unit_test(test_truncated_frame_needs_more_bytes),
		cmocka_unit_test(test_frame_parse_finds_first_of_two_frames),
		cmocka_unit_test(test_empty_frame_has_no_records),
		cmocka_unit_test(test_record_iter_rejects_overrun),
		cmocka_unit_test(test_record_iter_rejects_length_below_header),
		cmocka_unit_test(test_record_iter_rejects_truncated_record_header),
		cmocka_unit_test(test_record_iter_rejects_fewer_records_than_count),
		cmocka_unit_test(test_record_iter_rejects_bytes_after_count),
		cmocka_unit_test(test_record_iter_error_repeats),
		cmocka_unit_test(test_record_with_empty_body_is_valid),
		cmocka_unit_test(test_writer_puts_many_records_in_one_frame),
		cmocka_unit_test(test_writer_splits_frames_at_max),
		cmocka_unit_test(test_writer_fills_frame_exactly_to_max),
		cmocka_unit_test(test_writer_splits_frames_at_count_limit),
		cmocka_unit_test(test_writer_rejects_record_too_big_for_u16_length),
		cmocka_unit_test(test_writer_open_len_tracks_the_open_frame),
		cmocka_unit_test(test_writer_appends_after_bytes_already_in_buffer),
		cmocka_unit_test(test_buf_append_then_consume_returns_bytes_in_order),
		cmocka_unit_test(test_buf_consume_all_resets_without_freeing),
		cmocka_unit_test(test_buf_consume_compacts_past_half),
		cmocka_unit_test(test_buf_consume_small_prefix_moves_nothing),
		cmocka_unit_test(test_buf_grows_geometrically),
		cmocka_unit_test(test_buf_reserve_gives_room_without_changing_content),
		cmocka_unit_test(test_buf_reserve_failure_leaves_buffer_intact),
		cmocka_unit_test(test_buf_free_is_null_safe_and_leaves_reusable_buffer),
		cmocka_unit_test(test_monitor_tcp_body_layout_matches_protocol_doc),
		cmocka_unit_test(test_monitor_tcp_by_cookie_puts_cookie_at_16),
		cmocka_unit_test(test_monitor_tcp_roundtrips_each_way),
		cmocka_unit_test(test_protocol_doc_tcp_down_example),
		cmocka_unit_test(test_down_tcp_roundtrips_all_fields),
		cmocka_unit_test(test_down_tcp_noconnection_with_unknown_endpoints_roundtrips),
		cmocka_unit_test(test_down_tcp_shorter_than_tail_is_rejected),
		cmocka_unit_test(test_down_process_ignores_any_tail),
		cmocka_unit_test(test_down_of_unknown_kind_needs_only_40_bytes),
		cmocka_unit_test(test_record_type_names),
		cmocka_unit_test(test_reason_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
