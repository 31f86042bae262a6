/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Bad input: a malformed stream gets one ERROR (ref 0) and the connection is
 * closed, while another subscriber keeps getting its DOWNs and the agent
 * lives on; a bad request gets an ERROR about that request and the
 * connection stays usable.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a bystander: another subscriber, with a monitor, during the abuse -- */

struct bystander {
	struct zm_client *cl;
	struct zmh_collector *col;
	struct zmh_child child;
	uint64_t ref;
};

static void bystander_begin(struct zmh_env *env, struct bystander *b)
{
	memset(b, 0, sizeof(*b));
	b->col = zmh_collector_new();
	assert_int_equal(zmh_connect(&env->agent, "it-bystander", b->col, &b->cl), 0);
	assert_int_equal(zmh_child_spawn(&b->child), 0);
	assert_int_equal(zm_monitor_pid_start(b->cl, b->child.pid, b->child.start_ticks, &b->ref), 0);
	assert_int_equal(zmh_sync(b->cl, b->col), 0);
}

/* Kill the bystander's target after the abuse: its DOWN must still arrive,
 * and the agent must still be running and accepting. */
static void bystander_end(struct zmh_env *env, struct bystander *b)
{
	const struct zm_down_info *d;
	struct zmh_raw probe;

	assert_int_equal(zmh_child_exit(&b->child, 21), 0);
	assert_int_equal(zmh_child_reap(&b->child), 0);
	assert_int_equal(zmh_wait_downs(b->cl, b->col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_collector_count(b->col, b->ref, &d), 1);
	assert_int_equal(d->reason, ZM_DOWN_EXITED);
	assert_int_equal(d->status, 21);
	assert_int_equal(b->col->nerr, 0);
	assert_true(zmh_agent_alive(&env->agent));
	assert_int_equal(zmh_raw_connect(&probe, env->agent.sock, true), 0);
	assert_int_equal(zmh_raw_sync(&probe, 7), 0);
	zmh_raw_close(&probe);
	zmh_client_close(b->cl);
}

/* Expect an ERROR about the stream (ref 0) with code, then the close. */
static void expect_fatal(struct zmh_raw *r, int code)
{
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zm_record zr;
	struct zm_error e;
	int x;

	assert_non_null(rec);
	x = zmh_raw_expect(r, ZM_REC_ERROR, ZMH_TIMEOUT_MS, rec, NULL);
	if (x != 1)
		fail_msg("want an ERROR record (%s), got %s", strerror(code),
			 x == 0 ? "the connection closed without one" : strerror(-x));
	zr = (struct zm_record){ .body = rec->body, .type = rec->type, .len = rec->len };
	assert_int_equal(zm_dec_error(&zr, &e), 0);
	if (e.code != code)
		fail_msg("want ERROR %d (%s), got %d (%s): \"%s\"", code, strerror(code), e.code,
			 strerror(e.code), e.message);
	assert_int_equal(e.ref, 0);
	assert_true(e.message[0] != '\0');
	free(rec);
	x = zmh_raw_wait_closed(r, ZMH_TIMEOUT_MS, NULL);
	if (x != 1)
		fail_msg("the agent did not close the connection after a fatal ERROR (%s)",
			 strerror(-x));
}

/* Expect an ERROR about one request; the connection must stay open. */
static void expect_request_error(struct zmh_raw *r, uint64_t ref, uint16_t request, int code)
{
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zm_record zr;
	struct zm_error e;
	int x;

	assert_non_null(rec);
	x = zmh_raw_expect(r, ZM_REC_ERROR, ZMH_TIMEOUT_MS, rec, NULL);
	if (x != 1)
		fail_msg("want an ERROR record (%s) for ref %llu, got %s", strerror(code),
			 (unsigned long long)ref, x == 0 ? "a closed connection" : strerror(-x));
	zr = (struct zm_record){ .body = rec->body, .type = rec->type, .len = rec->len };
	assert_int_equal(zm_dec_error(&zr, &e), 0);
	if (e.code != code)
		fail_msg("want ERROR %d (%s), got %d (%s): \"%s\"", code, strerror(code), e.code,
			 strerror(e.code), e.message);
	assert_int_equal(e.ref, ref);
	assert_int_equal(e.request, request);
	free(rec);
	/* still open and in step */
	assert_int_equal(zmh_raw_sync(r, 0x5eed0000ULL + ref), 0);
}

static void send_monitor(struct zmh_raw *r, uint64_t ref, uint32_t pid, uint32_t flags,
			 uint64_t start)
{
	struct zm_monitor_proc m = { .ref = ref, .pid = pid, .flags = flags, .start_ticks = start };
	uint8_t body[ZM_MONITOR_PROC_LEN];

	assert_int_equal(zmh_raw_send_record(r, ZM_REC_MONITOR_PROC, body,
					     zm_enc_monitor_proc(body, &m)), 0);
}

/* ---- the stream is broken: ERROR, then close ---------------------------- */

static void test_garbage_before_hello_gets_error_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct bystander b;
	struct zmh_raw r;
	/* reads as length 0x20 with magic "xx": a bad magic */
	static const uint8_t junk[32] = { 0x20, 0, 0, 0, 'x', 'x', 0x01, 0, 'g', 'a', 'r', 'b',
					  'a', 'g', 'e', '!', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
					  13, 14, 15, 16 };

	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, false), 0);
	assert_int_equal(zmh_raw_send(&r, junk, sizeof(junk)), 0);
	expect_fatal(&r, EBADMSG);
	zmh_raw_close(&r);
	bystander_end(env, &b);
}

static void test_http_request_gets_error_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct bystander b;
	struct zmh_raw r;
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zm_record zr;
	struct zm_error e;

	/* "GET " reads as a 542 MB length: whichever check comes first, it is
	 * refused at once with EMSGSIZE or EBADMSG, never waited on */
	assert_non_null(rec);
	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, false), 0);
	assert_int_equal(zmh_raw_send(&r, http, sizeof(http) - 1), 0);
	assert_int_equal(zmh_raw_expect(&r, ZM_REC_ERROR, ZMH_TIMEOUT_MS, rec, NULL), 1);
	zr = (struct zm_record){ .body = rec->body, .type = rec->type, .len = rec->len };
	assert_int_equal(zm_dec_error(&zr, &e), 0);
	assert_true(e.code == EMSGSIZE || e.code == EBADMSG);
	assert_int_equal(e.ref, 0);
	assert_int_equal(zmh_raw_wait_closed(&r, ZMH_TIMEOUT_MS, NULL), 1);
	free(rec);
	zmh_raw_close(&r);
	bystander_end(env, &b);
}

static void test_bad_magic_gets_ebadmsg_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct bystander b;
	struct zmh_raw r;
	uint8_t f[8 + 4 + 8];

	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	zmh_frame_header(f, sizeof(f), 0x1234, 1);
	zmh_put_u16(f + 8, ZM_REC_SYNC);
	zmh_put_u16(f + 10, 12);
	zmh_put_u64(f + 12, 1);
	assert_int_equal(zmh_raw_send(&r, f, sizeof(f)), 0);
	expect_fatal(&r, EBADMSG);
	zmh_raw_close(&r);
	bystander_end(env, &b);
}

static void test_frame_length_below_header_gets_ebadmsg_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct bystander b;
	struct zmh_raw r;
	uint8_t f[8];

	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	zmh_frame_header(f, 4, ZM_FRAME_MAGIC, 0);
	assert_int_equal(zmh_raw_send(&r, f, sizeof(f)), 0);
	expect_fatal(&r, EBADMSG);
	zmh_raw_close(&r);
	bystander_end(env, &b);
}

static void test_oversized_frame_gets_emsgsize_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct bystander b;
	struct zmh_raw r;
	uint8_t f[8];

	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	/* only the header: the agent must refuse it without waiting for 2 MiB */
	zmh_frame_header(f, 2U << 20, ZM_FRAME_MAGIC, 1);
	assert_int_equal(zmh_raw_send(&r, f, sizeof(f)), 0);
	expect_fatal(&r, EMSGSIZE);
	zmh_raw_close(&r);
	bystander_end(env, &b);
}

static void test_frame_one_byte_over_max_gets_emsgsize(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;
	uint8_t f[8];

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	zmh_frame_header(f, ZM_FRAME_MAX + 1, ZM_FRAME_MAGIC, 1);
	assert_int_equal(zmh_raw_send(&r, f, sizeof(f)), 0);
	expect_fatal(&r, EMSGSIZE);
	zmh_raw_close(&r);
	assert_true(zmh_agent_alive(&env->agent));
}

static void test_truncated_frame_then_close_leaves_agent_serving(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct bystander b;
	struct zmh_raw r;
	uint8_t f[8 + 10];

	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	memset(f, 0xab, sizeof(f));
	zmh_frame_header(f, 100, ZM_FRAME_MAGIC, 2);
	assert_int_equal(zmh_raw_send(&r, f, sizeof(f)), 0);
	assert_int_equal(shutdown(r.fd, SHUT_WR), 0);
	/* the agent closes its side (an ERROR first is allowed, not required) */
	assert_int_equal(zmh_raw_wait_closed(&r, ZMH_TIMEOUT_MS, NULL), 1);
	zmh_raw_close(&r);
	bystander_end(env, &b);
}

static void test_unknown_record_type_gets_eproto_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct bystander b;
	struct zmh_raw r;
	uint8_t body[8] = { 0 };

	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	assert_int_equal(zmh_raw_send_record(&r, 0x7777, body, sizeof(body)), 0);
	expect_fatal(&r, EPROTO);
	zmh_raw_close(&r);
	bystander_end(env, &b);
}

static void test_monitor_before_hello_gets_eproto_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct bystander b;
	struct zmh_raw r;

	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, false), 0);
	send_monitor(&r, 1, (uint32_t)getpid(), 0, 0);
	expect_fatal(&r, EPROTO);
	zmh_raw_close(&r);
	bystander_end(env, &b);
}

static void test_record_overrunning_its_frame_gets_ebadmsg_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct bystander b;
	struct zmh_raw r;
	uint8_t f[8 + 4 + ZM_MONITOR_PROC_LEN];
	struct zm_monitor_proc m = { .ref = 1, .pid = (uint32_t)getpid() };

	bystander_begin(env, &b);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	zmh_frame_header(f, sizeof(f), ZM_FRAME_MAGIC, 1);
	zmh_put_u16(f + 8, ZM_REC_MONITOR_PROC);
	zmh_put_u16(f + 10, 100); /* the frame holds 28 */
	zm_enc_monitor_proc(f + 12, &m);
	assert_int_equal(zmh_raw_send(&r, f, sizeof(f)), 0);
	expect_fatal(&r, EBADMSG);
	zmh_raw_close(&r);
	/* and the monitor in the broken frame was not set */
	assert_int_equal(zmh_map_count(env->agent.pin_dir, getpid()), 0);
	bystander_end(env, &b);
}

static void test_record_count_above_records_gets_ebadmsg_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;
	uint8_t f[8 + 12];

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	zmh_frame_header(f, sizeof(f), ZM_FRAME_MAGIC, 3); /* says 3, holds 1 */
	zmh_put_u16(f + 8, ZM_REC_SYNC);
	zmh_put_u16(f + 10, 12);
	zmh_put_u64(f + 12, 1);
	assert_int_equal(zmh_raw_send(&r, f, sizeof(f)), 0);
	expect_fatal(&r, EBADMSG);
	zmh_raw_close(&r);
	assert_true(zmh_agent_alive(&env->agent));
}

static void test_short_record_body_gets_ebadmsg_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;
	uint8_t body[4] = { 1, 0, 0, 0 }; /* MONITOR_PROC needs 24 */

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	assert_int_equal(zmh_raw_send_record(&r, ZM_REC_MONITOR_PROC, body, sizeof(body)), 0);
	expect_fatal(&r, EBADMSG);
	zmh_raw_close(&r);
	assert_true(zmh_agent_alive(&env->agent));
}

static void test_protocol_version_0_gets_eprotonosupport_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;
	struct zm_hello h = { .version = 0 };
	uint8_t body[ZM_HELLO_LEN + ZM_NAME_MAX];

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, false), 0);
	assert_int_equal(zmh_raw_send_record(&r, ZM_REC_HELLO, body, zm_enc_hello(body, &h)), 0);
	expect_fatal(&r, EPROTONOSUPPORT);
	zmh_raw_close(&r);
}

static void test_newer_protocol_version_gets_welcome_version_1(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;
	struct zm_hello h = { .version = 7 };
	uint8_t body[ZM_HELLO_LEN + ZM_NAME_MAX];
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zm_record zr;
	struct zm_welcome w;

	assert_non_null(rec);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, false), 0);
	assert_int_equal(zmh_raw_send_record(&r, ZM_REC_HELLO, body, zm_enc_hello(body, &h)), 0);
	assert_int_equal(zmh_raw_expect(&r, ZM_REC_WELCOME, ZMH_TIMEOUT_MS, rec, NULL), 1);
	zr = (struct zm_record){ .body = rec->body, .type = rec->type, .len = rec->len };
	assert_int_equal(zm_dec_welcome(&zr, &w), 0);
	assert_int_equal(w.version, 1);
	assert_int_equal(w.max_frame, ZM_FRAME_MAX);
	assert_int_equal(zmh_raw_sync(&r, 9), 0);
	free(rec);
	zmh_raw_close(&r);
}

static void test_second_hello_gets_eproto_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;
	struct zm_hello h = { .version = ZM_PROTO_VERSION };
	uint8_t body[ZM_HELLO_LEN + ZM_NAME_MAX];

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	assert_int_equal(zmh_raw_send_record(&r, ZM_REC_HELLO, body, zm_enc_hello(body, &h)), 0);
	expect_fatal(&r, EPROTO);
	zmh_raw_close(&r);
}

static void test_agent_to_client_record_from_client_gets_eproto_and_close(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;
	struct zm_down d = { .ref = 1, .kind = ZM_TARGET_PROCESS, .reason = ZM_REASON_NOPROC };
	uint8_t body[ZM_DOWN_LEN];

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	assert_int_equal(zmh_raw_send_record(&r, ZM_REC_DOWN, body, zm_enc_down(body, &d)), 0);
	expect_fatal(&r, EPROTO);
	zmh_raw_close(&r);
}

/* ---- one request is wrong: ERROR about it, connection stays ------------ */

static void test_ref_zero_gets_einval(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	send_monitor(&r, 0, (uint32_t)getpid(), 0, 0);
	expect_request_error(&r, 0, ZM_REC_MONITOR_PROC, EINVAL);
	zmh_raw_close(&r);
}

static void test_duplicate_ref_gets_eexist_and_first_monitor_stays(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_child c;
	struct zmh_raw r;
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zm_record zr;
	struct zm_down d;

	assert_non_null(rec);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	assert_int_equal(zmh_child_spawn(&c), 0);
	send_monitor(&r, 5, (uint32_t)c.pid, ZM_MON_START_TIME, c.start_ticks);
	send_monitor(&r, 5, (uint32_t)c.pid, ZM_MON_START_TIME, c.start_ticks);
	expect_request_error(&r, 5, ZM_REC_MONITOR_PROC, EEXIST);

	/* the first monitor 5 is still armed and fires once */
	assert_int_equal(zmh_child_exit(&c, 4), 0);
	assert_int_equal(zmh_child_reap(&c), 0);
	assert_int_equal(zmh_raw_expect(&r, ZM_REC_DOWN, ZMH_TIMEOUT_MS, rec, NULL), 1);
	zr = (struct zm_record){ .body = rec->body, .type = rec->type, .len = rec->len };
	assert_int_equal(zm_dec_down(&zr, &d), 0);
	assert_int_equal(d.ref, 5);
	assert_int_equal(d.reason, ZM_REASON_EXITED);
	assert_int_equal(d.value, 4);
	assert_int_equal(zmh_raw_sync(&r, 1), 0);
	free(rec);
	zmh_raw_close(&r);
}

static void test_demonitor_unknown_ref_gets_enoent(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zm_demonitor m = { .ref = 77, .flags = ZM_DEMON_FLUSH };
	uint8_t body[ZM_DEMONITOR_LEN];
	struct zmh_raw r;

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	assert_int_equal(zmh_raw_send_record(&r, ZM_REC_DEMONITOR, body, zm_enc_demonitor(body, &m)), 0);
	expect_request_error(&r, 77, ZM_REC_DEMONITOR, ENOENT);
	zmh_raw_close(&r);
}

static void test_pid_zero_gets_einval(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	send_monitor(&r, 10, 0, 0, 0);
	expect_request_error(&r, 10, ZM_REC_MONITOR_PROC, EINVAL);
	zmh_raw_close(&r);
}

static void test_pid_minus_one_gets_einval(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	send_monitor(&r, 11, 0xffffffffU, 0, 0);
	expect_request_error(&r, 11, ZM_REC_MONITOR_PROC, EINVAL);
	zmh_raw_close(&r);
}

static void test_pid_above_pid_max_limit_gets_einval(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	send_monitor(&r, 12, 0x7fffffffU, 0, 0);
	expect_request_error(&r, 12, ZM_REC_MONITOR_PROC, EINVAL);
	zmh_raw_close(&r);
}

static void test_unknown_monitor_flags_get_einval(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	send_monitor(&r, 13, (uint32_t)getpid(), 0x80, 0);
	expect_request_error(&r, 13, ZM_REC_MONITOR_PROC, EINVAL);
	zmh_raw_close(&r);
}

static void test_monitor_pidfd_without_fd_gets_ebadf(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zm_monitor_pidfd m = { .ref = 15 };
	uint8_t body[ZM_MONITOR_PIDFD_LEN];
	struct zmh_raw r;

	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	assert_int_equal(zmh_raw_send_record(&r, ZM_REC_MONITOR_PIDFD, body,
					     zm_enc_monitor_pidfd(body, &m)), 0);
	expect_request_error(&r, 15, ZM_REC_MONITOR_PIDFD, EBADF);
	zmh_raw_close(&r);
}

static void test_monitor_pidfd_with_non_pidfd_reports_ebadf(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	uint64_t ref = 0;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(zmh_connect(&env->agent, "it-notpidfd", col, &cl), 0);
	assert_int_equal(zm_monitor_pidfd(cl, p[0], &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(col->nerr, 1);
	assert_int_equal(col->errs[0].ref, ref);
	assert_int_equal(col->errs[0].error, EBADF);
	assert_int_equal(col->errs[0].request, ZM_REC_MONITOR_PIDFD);
	assert_int_equal(col->n, 0);
	assert_int_equal(zm_active_monitors(cl), 0);
}

/*
 * A second thread of this process, for a tid that is no process. It runs
 * until stop_thread(), however long the agent takes to answer: a tid gone
 * before the MONITOR is handled would be noproc, not ESRCH. A test that
 * fails before stop_thread() leaves it to thread_teardown().
 */
static int thread_stop;
static pthread_t sleeper;
static bool sleeper_running;

static void *sleeper_thread(void *arg)
{
	pid_t *tid = arg;

	__atomic_store_n(tid, gettid(), __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&thread_stop, __ATOMIC_SEQ_CST))
		zmh_sleep_ms(1);
	return NULL;
}

static void stop_thread(void)
{
	if (!sleeper_running)
		return;
	__atomic_store_n(&thread_stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(sleeper, NULL);
	sleeper_running = false;
}

static pid_t start_thread(void)
{
	static pid_t tid;

	tid = 0;
	__atomic_store_n(&thread_stop, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(pthread_create(&sleeper, NULL, sleeper_thread, &tid), 0);
	sleeper_running = true;
	while (__atomic_load_n(&tid, __ATOMIC_SEQ_CST) == 0)
		zmh_sleep_ms(1);
	return tid;
}

static int thread_teardown(void **state)
{
	stop_thread();
	return zmh_test_teardown(state);
}

#define THREAD_TEST(f) cmocka_unit_test_setup_teardown(f, zmh_test_setup, thread_teardown)

static void test_thread_id_gets_esrch(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_raw r;
	pid_t tid = start_thread();

	assert_int_not_equal(tid, getpid());
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);
	send_monitor(&r, 14, (uint32_t)tid, 0, 0);
	expect_request_error(&r, 14, ZM_REC_MONITOR_PROC, ESRCH);
	zmh_raw_close(&r);
	stop_thread();
}

static void test_thread_id_via_library_reports_esrch_to_error_handler(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	uint64_t ref = 0;
	pid_t tid = start_thread();

	assert_int_equal(zmh_connect(&env->agent, "it-tid", col, &cl), 0);
	assert_int_equal(zm_monitor_pid(cl, tid, &ref), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(col->nerr, 1);
	assert_int_equal(col->errs[0].ref, ref);
	assert_int_equal(col->errs[0].error, ESRCH);
	assert_int_equal(col->errs[0].request, ZM_REC_MONITOR_PROC);
	assert_int_equal(col->n, 0);
	assert_int_equal(zm_active_monitors(cl), 0);
	stop_thread();
}

static void test_library_refuses_bad_arguments_locally(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	uint64_t ref = 0;

	assert_int_equal(zmh_connect(&env->agent, "it-args", col, &cl), 0);
	assert_int_equal(zm_monitor_pid(cl, 0, &ref), -EINVAL);
	assert_int_equal(zm_monitor_pid(cl, -1, &ref), -EINVAL);
	assert_int_equal(zm_monitor_pidfd(cl, -1, &ref), -EINVAL);
	assert_int_equal(zm_demonitor(cl, 12345, 0), -ENOENT);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(col->nerr, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_garbage_before_hello_gets_error_and_close),
		ZMH_TEST(test_http_request_gets_error_and_close),
		ZMH_TEST(test_bad_magic_gets_ebadmsg_and_close),
		ZMH_TEST(test_frame_length_below_header_gets_ebadmsg_and_close),
		ZMH_TEST(test_oversized_frame_gets_emsgsize_and_close),
		ZMH_TEST(test_frame_one_byte_over_max_gets_emsgsize),
		ZMH_TEST(test_truncated_frame_then_close_leaves_agent_serving),
		ZMH_TEST(test_unknown_record_type_gets_eproto_and_close),
		ZMH_TEST(test_monitor_before_hello_gets_eproto_and_close),
		ZMH_TEST(test_record_overrunning_its_frame_gets_ebadmsg_and_close),
		ZMH_TEST(test_record_count_above_records_gets_ebadmsg_and_close),
		ZMH_TEST(test_short_record_body_gets_ebadmsg_and_close),
		ZMH_TEST(test_protocol_version_0_gets_eprotonosupport_and_close),
		ZMH_TEST(test_newer_protocol_version_gets_welcome_version_1),
		ZMH_TEST(test_second_hello_gets_eproto_and_close),
		ZMH_TEST(test_agent_to_client_record_from_client_gets_eproto_and_close),
		ZMH_TEST(test_ref_zero_gets_einval),
		ZMH_TEST(test_duplicate_ref_gets_eexist_and_first_monitor_stays),
		ZMH_TEST(test_demonitor_unknown_ref_gets_enoent),
		ZMH_TEST(test_pid_zero_gets_einval),
		ZMH_TEST(test_pid_minus_one_gets_einval),
		ZMH_TEST(test_pid_above_pid_max_limit_gets_einval),
		ZMH_TEST(test_unknown_monitor_flags_get_einval),
		ZMH_TEST(test_monitor_pidfd_without_fd_gets_ebadf),
		ZMH_TEST(test_monitor_pidfd_with_non_pidfd_reports_ebadf),
		THREAD_TEST(test_thread_id_gets_esrch),
		THREAD_TEST(test_thread_id_via_library_reports_esrch_to_error_handler),
		ZMH_TEST(test_library_refuses_bad_arguments_locally),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
