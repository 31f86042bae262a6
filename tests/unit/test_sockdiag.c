// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * sockdiag: the reply parser on crafted netlink messages, the endpoint
 * parser on literal text, and the queries against real loopback sockets
 * (sock_diag answers unprivileged callers about their own namespace).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include <cmocka.h>

#include "sockdiag.h"

#define SEQ 7

/* ---- building replies --------------------------------------------------- */

struct reply {
	uint8_t buf[4096] __attribute__((aligned(8)));
	size_t len;
};

static void *add_msg(struct reply *r, uint16_t type, uint16_t flags, uint32_t seq,
		     size_t payload_len)
{
	struct nlmsghdr h = {
		.nlmsg_len = (uint32_t)(NLMSG_HDRLEN + payload_len),
		.nlmsg_type = type,
		.nlmsg_flags = flags,
		.nlmsg_seq = seq,
	};
	void *payload;

	assert_true(r->len + NLMSG_ALIGN(h.nlmsg_len) <= sizeof(r->buf));
	memcpy(r->buf + r->len, &h, sizeof(h));
	payload = r->buf + r->len + NLMSG_HDRLEN;
	memset(payload, 0, payload_len);
	r->len += NLMSG_ALIGN(h.nlmsg_len);
	return payload;
}

static void add_sock4(struct reply *r, uint16_t flags, uint64_t cookie, uint8_t state,
		      const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct inet_diag_msg *m = add_msg(r, SOCK_DIAG_BY_FAMILY, flags, SEQ, sizeof(*m) + 8);

	m->idiag_family = AF_INET;
	m->idiag_state = state;
	m->id.idiag_sport = htons(sport);
	m->id.idiag_dport = htons(dport);
	assert_int_equal(inet_pton(AF_INET, src, m->id.idiag_src), 1);
	assert_int_equal(inet_pton(AF_INET, dst, m->id.idiag_dst), 1);
	m->id.idiag_cookie[0] = (uint32_t)cookie;
	m->id.idiag_cookie[1] = (uint32_t)(cookie >> 32);
}

static void add_sock6(struct reply *r, uint16_t flags, uint64_t cookie, uint8_t state,
		      const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct inet_diag_msg *m = add_msg(r, SOCK_DIAG_BY_FAMILY, flags, SEQ, sizeof(*m));

	m->idiag_family = AF_INET6;
	m->idiag_state = state;
	m->id.idiag_sport = htons(sport);
	m->id.idiag_dport = htons(dport);
	assert_int_equal(inet_pton(AF_INET6, src, m->id.idiag_src), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, m->id.idiag_dst), 1);
	m->id.idiag_cookie[0] = (uint32_t)cookie;
	m->id.idiag_cookie[1] = (uint32_t)(cookie >> 32);
}

static void add_int_msg(struct reply *r, uint16_t type, int value)
{
	int *p = add_msg(r, type, 0, SEQ, type == NLMSG_ERROR ? sizeof(struct nlmsgerr) : sizeof(int));

	*p = value;
}

/* ---- a recording callback ----------------------------------------------- */

struct seen {
	int n;
	int stop_at; /* return 1 on this call (1-based); 0 never */
	int fail_with;
	struct sockdiag_sock last;
};

static int on_sock(void *ctx, const struct sockdiag_sock *s)
{
	struct seen *seen = ctx;

	seen->n++;
	seen->last = *s;
	if (seen->fail_with)
		return seen->fail_with;
	return seen->n == seen->stop_at ? 1 : 0;
}

/* ---- sockdiag_parse_reply() --------------------------------------------- */

static void test_parse_exact_answer_gives_the_socket_and_ends(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };
	uint8_t a[4];

	add_sock4(&r, 0, 0x123456789abcULL, TCP_ESTABLISHED, "10.0.0.1", 40000, "10.0.0.2", 80);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), 1);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.last.cookie, 0x123456789abcULL);
	assert_int_equal(seen.last.state, TCP_ESTABLISHED);
	assert_int_equal(seen.last.tuple.local.family, AF_INET);
	assert_int_equal(seen.last.tuple.remote.family, AF_INET);
	assert_int_equal(seen.last.tuple.local.port, 40000);
	assert_int_equal(seen.last.tuple.remote.port, 80);
	inet_pton(AF_INET, "10.0.0.1", a);
	assert_memory_equal(seen.last.tuple.local.addr, a, 4);
	inet_pton(AF_INET, "10.0.0.2", a);
	assert_memory_equal(seen.last.tuple.remote.addr, a, 4);
	/* the rest of an AF_INET address is zero */
	for (int i = 4; i < 16; i++)
		assert_int_equal(seen.last.tuple.local.addr[i], 0);
}

static void test_parse_ipv6_answer_copies_16_byte_addresses(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };
	uint8_t a[16];

	add_sock6(&r, 0, 42, TCP_CLOSE_WAIT, "fd77::1", 1234, "2001:db8::ff", 443);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), 1);
	assert_int_equal(seen.last.tuple.local.family, AF_INET6);
	assert_int_equal(seen.last.state, TCP_CLOSE_WAIT);
	inet_pton(AF_INET6, "fd77::1", a);
	assert_memory_equal(seen.last.tuple.local.addr, a, 16);
	inet_pton(AF_INET6, "2001:db8::ff", a);
	assert_memory_equal(seen.last.tuple.remote.addr, a, 16);
	assert_int_equal(seen.last.tuple.remote.port, 443);
}

static void test_parse_dump_without_done_asks_for_more(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_sock4(&r, NLM_F_MULTI, 1, TCP_ESTABLISHED, "127.0.0.1", 1, "127.0.0.1", 2);
	add_sock4(&r, NLM_F_MULTI, 2, TCP_LISTEN, "127.0.0.1", 2, "0.0.0.0", 0);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.last.cookie, 2);
}

static void test_parse_dump_ends_at_done(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_sock4(&r, NLM_F_MULTI, 1, TCP_ESTABLISHED, "127.0.0.1", 1, "127.0.0.1", 2);
	add_int_msg(&r, NLMSG_DONE, 0);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), 1);
	assert_int_equal(seen.n, 1);
}

static void test_parse_done_carrying_an_error_returns_it(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_int_msg(&r, NLMSG_DONE, -ENOMEM);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), -ENOMEM);
}

static void test_parse_error_message_returns_its_errno(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_int_msg(&r, NLMSG_ERROR, -ENOENT);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), -ENOENT);
	assert_int_equal(seen.n, 0);
}

static void test_parse_ack_ends_the_reply(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_int_msg(&r, NLMSG_ERROR, 0);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), 1);
}

static void test_parse_error_out_of_errno_range_is_ebadmsg(void **state)
{
	struct reply a = { 0 }, b = { 0 };
	struct seen seen = { 0 };

	add_int_msg(&a, NLMSG_ERROR, 5);
	add_int_msg(&b, NLMSG_DONE, -100000);
	assert_int_equal(sockdiag_parse_reply(a.buf, a.len, SEQ, on_sock, &seen), -EBADMSG);
	assert_int_equal(sockdiag_parse_reply(b.buf, b.len, SEQ, on_sock, &seen), -EBADMSG);
}

static void test_parse_callback_stop_ends_before_later_messages(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { .stop_at = 1 };

	add_sock4(&r, NLM_F_MULTI, 1, TCP_ESTABLISHED, "127.0.0.1", 1, "127.0.0.1", 2);
	add_sock4(&r, NLM_F_MULTI, 2, TCP_ESTABLISHED, "127.0.0.1", 3, "127.0.0.1", 4);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), 1);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.last.cookie, 1);
}

static void test_parse_callback_error_is_returned(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { .fail_with = -ENOMEM };

	add_sock4(&r, NLM_F_MULTI, 1, TCP_ESTABLISHED, "127.0.0.1", 1, "127.0.0.1", 2);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), -ENOMEM);
}

static void test_parse_skips_other_sequence_numbers_and_noops(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };
	int *p;

	p = add_msg(&r, NLMSG_ERROR, 0, SEQ + 1, sizeof(struct nlmsgerr));
	*p = -EPERM; /* someone else's error: not ours */
	add_msg(&r, NLMSG_NOOP, 0, SEQ, 0);
	add_sock4(&r, 0, 9, TCP_ESTABLISHED, "127.0.0.1", 1, "127.0.0.1", 2);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), 1);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.last.cookie, 9);
}

static void test_parse_empty_buffer_asks_for_more(void **state)
{
	struct seen seen = { 0 };

	assert_int_equal(sockdiag_parse_reply("", 0, SEQ, on_sock, &seen), 0);
}

static void test_parse_last_message_may_end_unpadded(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };
	struct inet_diag_msg *m;

	/* 5 payload bytes of attributes after the message: length not a multiple of 4 */
	m = add_msg(&r, SOCK_DIAG_BY_FAMILY, 0, SEQ, sizeof(*m) + 5);
	m->idiag_family = AF_INET;
	r.len -= 3; /* the padding the sender need not send */
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), 1);
	assert_int_equal(seen.n, 1);
}

static void test_parse_cut_header_is_ebadmsg(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_sock4(&r, NLM_F_MULTI, 1, TCP_ESTABLISHED, "127.0.0.1", 1, "127.0.0.1", 2);
	/* a second header cut short */
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len + 8, SEQ, on_sock, &seen), -EBADMSG);
}

static void test_parse_length_past_the_buffer_is_ebadmsg(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_sock4(&r, 0, 1, TCP_ESTABLISHED, "127.0.0.1", 1, "127.0.0.1", 2);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len - 4, SEQ, on_sock, &seen), -EBADMSG);
	assert_int_equal(seen.n, 0);
}

static void test_parse_length_below_a_header_is_ebadmsg(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };
	struct nlmsghdr h = { .nlmsg_len = 4, .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_seq = SEQ };

	memcpy(r.buf, &h, sizeof(h));
	assert_int_equal(sockdiag_parse_reply(r.buf, sizeof(h), SEQ, on_sock, &seen), -EBADMSG);
	h.nlmsg_len = 0; /* would loop forever if taken as a length */
	memcpy(r.buf, &h, sizeof(h));
	assert_int_equal(sockdiag_parse_reply(r.buf, sizeof(h), SEQ, on_sock, &seen), -EBADMSG);
}

static void test_parse_short_socket_message_is_ebadmsg(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_msg(&r, SOCK_DIAG_BY_FAMILY, 0, SEQ, sizeof(struct inet_diag_msg) - 1);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), -EBADMSG);
	assert_int_equal(seen.n, 0);
}

static void test_parse_short_error_message_is_ebadmsg(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_msg(&r, NLMSG_ERROR, 0, SEQ, 2);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), -EBADMSG);
}

static void test_parse_unknown_family_is_ebadmsg(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };
	struct inet_diag_msg *m = add_msg(&r, SOCK_DIAG_BY_FAMILY, 0, SEQ, sizeof(*m));

	m->idiag_family = AF_UNIX;
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), -EBADMSG);
	assert_int_equal(seen.n, 0);
}

static void test_parse_unknown_type_is_ebadmsg(void **state)
{
	struct reply r = { 0 };
	struct seen seen = { 0 };

	add_msg(&r, 0x123, 0, SEQ, 16);
	assert_int_equal(sockdiag_parse_reply(r.buf, r.len, SEQ, on_sock, &seen), -EBADMSG);
}

/* ---- sockdiag_parse_endpoint() ------------------------------------------ */

static void test_endpoint_ipv4(void **state)
{
	struct sockdiag_endpoint e;
	uint8_t a[4] = { 1, 2, 3, 4 };

	assert_int_equal(sockdiag_parse_endpoint("1.2.3.4:80", &e), 0);
	assert_int_equal(e.family, AF_INET);
	assert_int_equal(e.port, 80);
	assert_memory_equal(e.addr, a, 4);
	for (int i = 4; i < 16; i++)
		assert_int_equal(e.addr[i], 0);
	assert_int_equal(sockdiag_parse_endpoint("255.255.255.255:65535", &e), 0);
	assert_int_equal(e.port, 65535);
}

static void test_endpoint_ipv6_in_brackets(void **state)
{
	struct sockdiag_endpoint e;
	uint8_t a[16];

	assert_int_equal(sockdiag_parse_endpoint("[::1]:80", &e), 0);
	assert_int_equal(e.family, AF_INET6);
	assert_int_equal(e.port, 80);
	inet_pton(AF_INET6, "::1", a);
	assert_memory_equal(e.addr, a, 16);
	assert_int_equal(sockdiag_parse_endpoint("[::ffff:10.0.0.1]:443", &e), 0);
	inet_pton(AF_INET6, "::ffff:10.0.0.1", a);
	assert_memory_equal(e.addr, a, 16);
	assert_int_equal(sockdiag_parse_endpoint("[fd77:0:0::2]:1", &e), 0);
	assert_int_equal(e.port, 1);
}

static void test_endpoint_rejects_bad_text_and_leaves_ret_alone(void **state)
{
	static const char *const bad[] = {
		"",               "1.2.3.4",          "1.2.3.4:",        ":80",
		"1.2.3.4:0",      "1.2.3.4:65536",    "1.2.3.4:99999999999", "1.2.3.4:+80",
		"1.2.3.4:-1",     "1.2.3.4: 80",      "1.2.3.4:80 ",     "1.2.3.4:8x",
		"1.2.3:80",       "1.2.3.256:80",     "localhost:80",    "::1:80",
		"[::1]",          "[::1]80",          "[::1]:",          "[]:80",
		"[::1:80",        "[1.2.3.4]:80",     "[fe80::1%eth0]:80", "[::1]:80:80",
		"[[::1]]:80",     "1.2.3.4:80:80",
	};
	struct sockdiag_endpoint e = { .family = 99, .port = 7 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sockdiag_parse_endpoint(bad[i], &e) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(e.family, 99);
		assert_int_equal(e.port, 7);
	}
	assert_int_equal(sockdiag_parse_endpoint(NULL, &e), -EINVAL);
}

/* ---- real sockets -------------------------------------------------------- */

struct conn {
	int l, c, s;
	struct sockdiag_tuple t; /* the client's view */
};

static void conn_open(struct conn *k, int family)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	char text[80], host[64];
	struct sockaddr_storage a, b;
	socklen_t al = sizeof(a), bl = sizeof(b);

	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	k->l = socket(family, SOCK_STREAM, 0);
	assert_true(k->l >= 0);
	assert_int_equal(bind(k->l, (struct sockaddr *)&ss, sl), 0);
	assert_int_equal(listen(k->l, 1), 0);
	assert_int_equal(getsockname(k->l, (struct sockaddr *)&ss, &sl), 0);
	k->c = socket(family, SOCK_STREAM, 0);
	assert_int_equal(connect(k->c, (struct sockaddr *)&ss, sl), 0);
	k->s = accept(k->l, NULL, NULL);
	assert_true(k->s >= 0);

	/* the tuple through the text form, as the CLI would give it */
	getsockname(k->c, (struct sockaddr *)&a, &al);
	getpeername(k->c, (struct sockaddr *)&b, &bl);
	if (family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, host, sizeof(host));
		snprintf(text, sizeof(text), "%s:%u", host, ntohs(((struct sockaddr_in *)&a)->sin_port));
		assert_int_equal(sockdiag_parse_endpoint(text, &k->t.local), 0);
		inet_ntop(AF_INET, &((struct sockaddr_in *)&b)->sin_addr, host, sizeof(host));
		snprintf(text, sizeof(text), "%s:%u", host, ntohs(((struct sockaddr_in *)&b)->sin_port));
		assert_int_equal(sockdiag_parse_endpoint(text, &k->t.remote), 0);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, host, sizeof(host));
		snprintf(text, sizeof(text), "[%s]:%u", host,
			 ntohs(((struct sockaddr_in6 *)&a)->sin6_port));
		assert_int_equal(sockdiag_parse_endpoint(text, &k->t.local), 0);
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&b)->sin6_addr, host, sizeof(host));
		snprintf(text, sizeof(text), "[%s]:%u", host,
			 ntohs(((struct sockaddr_in6 *)&b)->sin6_port));
		assert_int_equal(sockdiag_parse_endpoint(text, &k->t.remote), 0);
	}
}

static void conn_close(struct conn *k)
{
	close(k->c);
	close(k->s);
	close(k->l);
}

static void check_lookups_agree(int family)
{
	struct conn k;
	uint64_t ck, ck2, sk;
	uint8_t st;
	socklen_t len = sizeof(ck2);
	struct sockdiag_tuple server;

	conn_open(&k, family);
	assert_int_equal(sockdiag_cookie_of_fd(k.c, &ck, &st), 0);
	assert_int_equal(st, TCP_ESTABLISHED);
	assert_int_equal(getsockopt(k.c, SOL_SOCKET, SO_COOKIE, &ck2, &len), 0);
	assert_int_equal(ck, ck2);

	assert_int_equal(sockdiag_lookup(&k.t, &ck2, &st), 0);
	assert_int_equal(ck2, ck);
	assert_int_equal(st, TCP_ESTABLISHED);
	assert_int_equal(sockdiag_cookie_state(ck, &st), 0);
	assert_int_equal(st, TCP_ESTABLISHED);

	/* the same connection seen from the server's socket */
	assert_int_equal(sockdiag_cookie_of_fd(k.s, &sk, &st), 0);
	server.local = k.t.remote;
	server.remote = k.t.local;
	assert_int_equal(sockdiag_lookup(&server, &ck2, &st), 0);
	assert_int_equal(ck2, sk);

	/* the peer half-closes: the client is in CLOSE_WAIT */
	shutdown(k.s, SHUT_WR);
	usleep(20000);
	assert_int_equal(sockdiag_cookie_state(ck, &st), 0);
	assert_int_equal(st, TCP_CLOSE_WAIT);
	assert_int_equal(sockdiag_cookie_of_fd(k.c, &ck2, &st), 0);
	assert_int_equal(st, TCP_CLOSE_WAIT);
	conn_close(&k);
}

static void test_real_ipv4_fd_tuple_and_cookie_name_one_socket(void **state)
{
	check_lookups_agree(AF_INET);
}

static void test_real_ipv6_fd_tuple_and_cookie_name_one_socket(void **state)
{
	check_lookups_agree(AF_INET6);
}

static void test_real_listener_does_not_answer_for_an_unknown_peer(void **state)
{
	struct conn k;
	uint64_t ck = 0xdead;
	uint8_t st = 0xee;
	struct sockdiag_tuple t;

	conn_open(&k, AF_INET);
	/* local end = the listener's address and port, a peer that never connected */
	t.local = k.t.remote;
	t.remote = k.t.local;
	t.remote.port = (uint16_t)(t.remote.port == 65535 ? 65534 : t.remote.port + 1);
	assert_int_equal(sockdiag_lookup(&t, &ck, &st), -ENOENT);
	assert_int_equal(ck, 0xdead);
	assert_int_equal(st, 0xee);
	conn_close(&k);
}

static void test_real_closed_connection_is_gone(void **state)
{
	struct conn k;
	uint64_t ck, sk, got;
	uint8_t st;
	struct sockdiag_tuple server;
	struct linger lg = { 1, 0 };

	conn_open(&k, AF_INET);
	assert_int_equal(sockdiag_cookie_of_fd(k.c, &ck, &st), 0);
	assert_int_equal(sockdiag_cookie_of_fd(k.s, &sk, &st), 0);
	server.local = k.t.remote;
	server.remote = k.t.local;
	/* the client aborts: no time-wait entry on either side */
	setsockopt(k.c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(k.c);
	usleep(20000);
	assert_int_equal(sockdiag_lookup(&k.t, &got, &st), -ENOENT);
	assert_int_equal(sockdiag_cookie_state(ck, &st), -ENOENT);
	/* the server's socket is still open, but closed by the RST */
	assert_int_equal(sockdiag_cookie_of_fd(k.s, &got, &st), 0);
	assert_int_equal(got, sk);
	assert_int_equal(st, TCP_CLOSE);
	assert_int_equal(sockdiag_lookup(&server, &got, &st), -ENOENT);
	close(k.s);
	close(k.l);
}

struct dump_find {
	uint64_t cookie;
	int seen_total;
	int found;
	uint8_t state;
};

static int on_dump(void *ctx, const struct sockdiag_sock *s)
{
	struct dump_find *d = ctx;

	d->seen_total++;
	if (s->cookie == d->cookie) {
		d->found++;
		d->state = s->state;
	}
	return 0;
}

static int fail_dump(void *ctx, const struct sockdiag_sock *s)
{
	return -ECANCELED;
}

static void test_real_dump_sees_every_socket_of_its_family(void **state)
{
	struct conn k4, k6;
	struct dump_find d = { 0 };
	uint64_t ck6;
	uint8_t st;

	conn_open(&k4, AF_INET);
	conn_open(&k6, AF_INET6);
	assert_int_equal(sockdiag_cookie_of_fd(k4.c, &d.cookie, &st), 0);
	assert_int_equal(sockdiag_cookie_of_fd(k6.c, &ck6, &st), 0);
	assert_int_equal(sockdiag_dump(AF_INET, on_dump, &d), 0);
	assert_int_equal(d.found, 1);
	assert_int_equal(d.state, TCP_ESTABLISHED);
	assert_true(d.seen_total >= 3); /* listener, client, server at least */
	d = (struct dump_find){ .cookie = ck6 };
	assert_int_equal(sockdiag_dump(AF_INET, on_dump, &d), 0);
	assert_int_equal(d.found, 0);
	assert_int_equal(sockdiag_dump(AF_INET6, on_dump, &d), 0);
	assert_int_equal(d.found, 1);
	assert_int_equal(sockdiag_dump(AF_INET6, fail_dump, NULL), -ECANCELED);
	assert_int_equal(sockdiag_dump(AF_UNIX, on_dump, &d), -EINVAL);
	conn_close(&k4);
	conn_close(&k6);
}

static void test_real_lookup_rejects_mixed_families(void **state)
{
	struct sockdiag_tuple t = { 0 };
	uint64_t ck;
	uint8_t st;

	assert_int_equal(sockdiag_parse_endpoint("127.0.0.1:1", &t.local), 0);
	assert_int_equal(sockdiag_parse_endpoint("[::1]:2", &t.remote), 0);
	assert_int_equal(sockdiag_lookup(&t, &ck, &st), -EINVAL);
	t.remote.family = t.local.family = AF_UNIX;
	assert_int_equal(sockdiag_lookup(&t, &ck, &st), -EINVAL);
}

static void test_real_cookie_of_fd_rejects_what_is_not_tcp(void **state)
{
	int udp = socket(AF_INET, SOCK_DGRAM, 0);
	int unx = socket(AF_UNIX, SOCK_STREAM, 0);
	int fds[2];
	uint64_t ck = 0xdead;
	uint8_t st = 0xee;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(sockdiag_cookie_of_fd(udp, &ck, &st), -EPROTOTYPE);
	assert_int_equal(sockdiag_cookie_of_fd(unx, &ck, &st), -EPROTOTYPE);
	assert_int_equal(sockdiag_cookie_of_fd(fds[0], &ck, &st), -ENOTSOCK);
	close(fds[1]);
	assert_int_equal(sockdiag_cookie_of_fd(fds[1], &ck, &st), -EBADF);
	assert_int_equal(ck, 0xdead);
	assert_int_equal(st, 0xee);
	close(fds[0]);
	close(udp);
	close(unx);
}

static void test_real_unconnected_tcp_socket_reads_close(void **state)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	uint64_t ck;
	uint8_t st;

	assert_int_equal(sockdiag_cookie_of_fd(fd, &ck, &st), 0);
	assert_true(ck != 0);
	assert_int_equal(st, TCP_CLOSE);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_exact_answer_gives_the_socket_and_ends),
		cmocka_unit_test(test_parse_ipv6_answer_copies_16_byte_addresses),
		cmocka_unit_test(test_parse_dump_without_done_asks_for_more),
		cmocka_unit_test(test_parse_dump_ends_at_done),
		cmocka_unit_test(test_parse_done_carrying_an_error_returns_it),
		cmocka_unit_test(test_parse_error_message_returns_its_errno),
		cmocka_unit_test(test_parse_ack_ends_the_reply),
		cmocka_unit_test(test_parse_error_out_of_errno_range_is_ebadmsg),
		cmocka_unit_test(test_parse_callback_stop_ends_before_later_messages),
		cmocka_unit_test(test_parse_callback_error_is_returned),
		cmocka_unit_test(test_parse_skips_other_sequence_numbers_and_noops),
		cmocka_unit_test(test_parse_empty_buffer_asks_for_more),
		cmocka_unit_test(test_parse_last_message_may_end_unpadded),
		cmocka_unit_test(test_parse_cut_header_is_ebadmsg),
		cmocka_unit_test(test_parse_length_past_the_buffer_is_ebadmsg),
		cmocka_unit_test(test_parse_length_below_a_header_is_ebadmsg),
		cmocka_unit_test(test_parse_short_socket_message_is_ebadmsg),
		cmocka_unit_test(test_parse_short_error_message_is_ebadmsg),
		cmocka_unit_test(test_parse_unknown_family_is_ebadmsg),
		cmocka_unit_test(test_parse_unknown_type_is_ebadmsg),
		cmocka_unit_test(test_endpoint_ipv4),
		cmocka_unit_test(test_endpoint_ipv6_in_brackets),
		cmocka_unit_test(test_endpoint_rejects_bad_text_and_leaves_ret_alone),
		cmocka_unit_test(test_real_ipv4_fd_tuple_and_cookie_name_one_socket),
		cmocka_unit_test(test_real_ipv6_fd_tuple_and_cookie_name_one_socket),
		cmocka_unit_test(test_real_listener_does_not_answer_for_an_unknown_peer),
		cmocka_unit_test(test_real_closed_connection_is_gone),
		cmocka_unit_test(test_real_dump_sees_every_socket_of_its_family),
		cmocka_unit_test(test_real_lookup_rejects_mixed_families),
		cmocka_unit_test(test_real_cookie_of_fd_rejects_what_is_not_tcp),
		cmocka_unit_test(test_real_unconnected_tcp_socket_reads_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
