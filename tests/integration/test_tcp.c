/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * TCP connection monitors (issue 5): one DOWN per monitor when the connection
 * reaches TCP_CLOSE, saying how it closed; noconnection for one that is not
 * established or already gone; the three ways to name a connection; the
 * kernel's zm_tcp map; demonitor; a flood of closes.
 *
 * The monitors go over the harness's raw client (the records of
 * include/zenmon/proto.h), so these tests pin the agent's behaviour on the
 * wire. Connections are made over loopback, and over a veth pair between the
 * root network namespace and one the group creates (zmt-<pid>, torn down in
 * the group teardown and at exit): the agent runs in the root namespace, so
 * the monitored end is always a root-namespace socket.
 *
 * Monitoring by fd passes a duplicate of the socket to the agent, which
 * closes it once the request is handled; every test SYNCs after MONITOR
 * before closing, so that a close() here is the socket's last one.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_PER_S 1000000000ULL

/* Waiting for a connection to time out: TCP_USER_TIMEOUT 1 s, then the
 * kernel's timer granularity and a slow machine. */
#define TIMEOUT_WAIT_MS 30000
/* The flood: connections wanted, and how long their DOWNs may take. */
#define FLOOD_WANT 10000
#define FLOOD_WAIT_MS 120000
#define FLOOD_BATCH 250

static struct zmh_netns g_ns;
static const char *g_ns_error;

static int group_setup(void **state)
{
	int r = zmh_group_setup(state);

	if (r < 0 || !*state)
		return r;
	r = zmh_netns_create(&g_ns);
	if (r < 0) {
		/* The namespace tests fail with this; the others still run. */
		g_ns_error = "could not create the test network namespace (see above)";
		fprintf(stderr, "test_tcp: %s: %s\n", g_ns_error, strerror(r < 0 ? -r : EIO));
	}
	return 0;
}

static int group_teardown(void **state)
{
	zmh_netns_destroy(&g_ns);
	return zmh_group_teardown(state);
}

/* ---- helpers ----------------------------------------------------------- */

struct conn {
	struct zmh_env *env;
	struct zmh_raw raw;
	struct zmh_rawcol *col;
};

static void open_client(struct conn *c, void **state, const char *name)
{
	c->env = zmh_env(state);
	c->col = zmh_rawcol_new();
	assert_int_equal(zmh_raw_connect_named(&c->raw, c->env->agent.sock, name), 0);
}

/* The raw client's buffers go with it (the collector is the harness's). */
static void close_client(struct conn *c)
{
	zmh_raw_close(&c->raw);
}

/* Nothing came but SYNCED: no DOWN, no ERROR. */
static void assert_synced_clean(struct conn *c, const char *after)
{
	assert_int_equal(zmh_raw_sync_col(&c->raw, c->col), 0);
	if (c->col->n || c->col->nerr) {
		zmh_rawcol_dump(c->col, after);
		fail_msg("something came %s, expected nothing", after);
	}
}

static void monitor_fd_synced(struct conn *c, uint64_t ref, int fd)
{
	assert_int_equal(zmh_raw_monitor_tcp_fd(&c->raw, ref, fd), 0);
	assert_synced_clean(c, "after MONITOR_TCP by fd of an established connection");
}

/*
 * Wait (up to wait_ms) for the DOWN of ref, then a quiet spell: exactly one
 * must have come, and no ERROR. Returns it (in col).
 */
static const struct zm_down *wait_one_down(struct conn *c, uint64_t ref, int wait_ms)
{
	int64_t deadline = zmh_mono_ms() + wait_ms;
	const struct zm_down *d = NULL;
	long q;

	while (zmh_rawcol_count(c->col, ref, NULL) == 0 && zmh_mono_ms() < deadline) {
		int left = (int)(deadline - zmh_mono_ms());
		long x = zmh_raw_collect(&c->raw, c->col, c->col->n + 1, left > 0 ? left : 0);

		if (x < 0) {
			zmh_rawcol_dump(c->col, "before the read failed");
			fail_msg("reading from the agent failed: %s", strerror((int)-x));
		}
	}
	if (zmh_rawcol_count(c->col, ref, NULL) == 0) {
		zmh_rawcol_dump(c->col, "while waiting");
		fail_msg("no DOWN for ref %llu within %d ms", (unsigned long long)ref, wait_ms);
	}
	q = zmh_raw_quiet(&c->raw, c->col, ZMH_QUIET_MS);
	assert_true(q >= 0);
	if (zmh_rawcol_count(c->col, ref, &d) != 1 || c->col->nerr) {
		zmh_rawcol_dump(c->col, "received");
		fail_msg("expected exactly one DOWN for ref %llu and no ERROR",
			 (unsigned long long)ref);
	}
	return d;
}

static const char *how_str(unsigned how)
{
	static const char *const names[] = { "none", "fin", "reset_rx", "reset_tx", "timeout",
					     "error" };

	return how < sizeof(names) / sizeof(names[0]) ? names[how] : "?";
}

/* d is a tcp_closed DOWN with this how (and, when value >= 0, this value). */
static void assert_closed(const struct zm_down *d, uint8_t how, int value)
{
	char buf[512];

	zmh_down_str(d, buf, sizeof(buf));
	if (d->kind != ZM_TARGET_TCP || d->reason != ZM_REASON_TCP_CLOSED || d->tcp_how != how ||
	    (value >= 0 && d->value != value))
		fail_msg("expected kind tcp, reason tcp_closed, how %s, value %d; got %s",
			 how_str(how), value, buf);
}

static void assert_noconnection(const struct zm_down *d)
{
	char buf[512];

	zmh_down_str(d, buf, sizeof(buf));
	if (d->kind != ZM_TARGET_TCP || d->reason != ZM_REASON_NOCONNECTION || d->tcp_how != 0)
		fail_msg("expected kind tcp, reason noconnection, how 0; got %s", buf);
}

/* The DOWN names the connection: its cookie, its endpoints as fd saw them,
 * a time near now. */
static void assert_identity(const struct zm_down *d, uint64_t cookie, const struct zm_tcp_tuple *t,
			    uint64_t before_ns)
{
	char buf[512];
	uint64_t now = zmh_now_ns();
	bool ok = d->start_ticks == cookie && d->tuple.family == t->family &&
		  d->tuple.sport == t->sport && d->tuple.dport == t->dport &&
		  memcmp(d->tuple.saddr, t->saddr, 16) == 0 && memcmp(d->tuple.daddr, t->daddr, 16) == 0;

	zmh_down_str(d, buf, sizeof(buf));
	if (!ok) {
		char sa[INET6_ADDRSTRLEN] = "?", da[INET6_ADDRSTRLEN] = "?";

		inet_ntop(t->family, t->saddr, sa, sizeof(sa));
		inet_ntop(t->family, t->daddr, da, sizeof(da));
		fail_msg("DOWN identity: expected cookie=%llu family=%u %s:%u -> %s:%u; got %s",
			 (unsigned long long)cookie, t->family, sa, t->sport, da, t->dport, buf);
	}
	assert_true(d->time_ns + 5 * NS_PER_S >= before_ns);
	assert_true(d->time_ns <= now + 5 * NS_PER_S);
}

/* Read until EOF (the peer's FIN), up to ZMH_TIMEOUT_MS. */
static void wait_eof(int fd)
{
	char buf[256];

	for (;;) {
		ssize_t n;

		assert_int_equal(zmh_fd_wait(fd, POLLIN, ZMH_TIMEOUT_MS), 1);
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
	}
}

/* A tuple that names no connection: two ports nothing listens on or uses. */
static void unused_tuple(int family, const char *addr, struct zm_tcp_tuple *t)
{
	uint16_t p1 = 0, p2 = 0;
	int l1 = zmh_tcp_listen(family, addr, 1, &p1), l2 = zmh_tcp_listen(family, addr, 1, &p2);

	assert_true(l1 >= 0 && l2 >= 0);
	zmh_fd_close(l1);
	zmh_fd_close(l2);
	memset(t, 0, sizeof(*t));
	t->family = (uint8_t)family;
	assert_int_equal(inet_pton(family, addr, t->saddr), 1);
	assert_int_equal(inet_pton(family, addr, t->daddr), 1);
	t->sport = p1;
	t->dport = p2;
}

/* ---- orderly closes ----------------------------------------------------- */

/* We close first (FIN_WAIT), then the peer: fin. */
static void test_fin_local_first(void **state)
{
	struct conn c;
	struct zm_tcp_tuple t;
	const struct zm_down *d;
	uint64_t cookie, before;
	int cli, srv;

	open_client(&c, state, "it-tcp-fin-local");
	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	assert_int_equal(zmh_sock_cookie(cli, &cookie), 0);
	assert_int_equal(zmh_sock_tuple(cli, &t), 0);
	monitor_fd_synced(&c, 1, cli);

	before = zmh_now_ns();
	zmh_fd_close(cli);
	wait_eof(srv);
	zmh_fd_close(srv);
	d = wait_one_down(&c, 1, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_FIN, 0);
	assert_identity(d, cookie, &t, before);
	close_client(&c);
}

/* The peer closes first (we are in CLOSE_WAIT), then we do: fin. */
static void test_fin_peer_first(void **state)
{
	struct conn c;
	const struct zm_down *d;
	int cli, srv;

	open_client(&c, state, "it-tcp-fin-peer");
	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	monitor_fd_synced(&c, 1, cli);

	zmh_fd_close(srv);
	wait_eof(cli);
	/* CLOSE_WAIT is not closed: nothing yet. */
	assert_int_equal(zmh_raw_quiet(&c.raw, c.col, ZMH_QUIET_MS), 0);
	zmh_fd_close(cli);
	d = wait_one_down(&c, 1, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_FIN, 0);
	close_client(&c);
}

/* ---- resets ------------------------------------------------------------ */

/* The peer aborts (SO_LINGER {1, 0}, close): our socket gets an RST. */
static void test_reset_rx(void **state)
{
	struct conn c;
	const struct zm_down *d;
	int cli, srv;

	open_client(&c, state, "it-tcp-reset-rx");
	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	monitor_fd_synced(&c, 1, cli);

	assert_int_equal(zmh_sock_linger0(srv), 0);
	zmh_fd_close(srv);
	d = wait_one_down(&c, 1, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_RESET_RX, -1);
	zmh_fd_close(cli);
	assert_int_equal(zmh_raw_quiet(&c.raw, c.col, ZMH_QUIET_MS), 0);
	close_client(&c);
}

/* We abort (SO_LINGER {1, 0}, close): reset_tx. */
static void test_reset_tx_linger0(void **state)
{
	struct conn c;
	const struct zm_down *d;
	int cli, srv;

	open_client(&c, state, "it-tcp-reset-tx");
	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	monitor_fd_synced(&c, 1, cli);

	assert_int_equal(zmh_sock_linger0(cli), 0);
	zmh_fd_close(cli);
	d = wait_one_down(&c, 1, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_RESET_TX, -1);
	close_client(&c);
}

/* We close with unread data in the receive queue: the kernel resets, reset_tx. */
static void test_reset_tx_unread(void **state)
{
	struct conn c;
	const struct zm_down *d;
	int cli, srv;

	open_client(&c, state, "it-tcp-unread");
	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	monitor_fd_synced(&c, 1, cli);

	assert_int_equal(write(srv, "unread", 6), 6);
	assert_int_equal(zmh_fd_wait(cli, POLLIN, ZMH_TIMEOUT_MS), 1);
	zmh_fd_close(cli);
	d = wait_one_down(&c, 1, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_RESET_TX, -1);
	/* The peer saw the reset. */
	{
		char b;

		assert_int_equal(zmh_fd_wait(srv, POLLIN, ZMH_TIMEOUT_MS), 1);
		assert_int_equal(read(srv, &b, 1), -1);
		assert_int_equal(errno, ECONNRESET);
	}
	close_client(&c);
}

/* ---- over the veth pair ------------------------------------------------ */

static void require_ns(void)
{
	if (!g_ns.created)
		fail_msg("%s", g_ns_error ? g_ns_error : "no test network namespace");
}

/* A connection from the root namespace (monitored end, *ret_cli) to a
 * listener in the test namespace (*ret_srv: accepted there). */
static void veth_pair(int family, int *ret_cli, int *ret_srv)
{
	const char *peer = family == AF_INET ? ZMH_NS_PEER_V4 : ZMH_NS_PEER_V6;
	int lfd = zmh_netns_socket(&g_ns, family, SOCK_STREAM), cli, srv;
	uint16_t port = 0;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1;

	assert_true(lfd >= 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		s->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, peer, &s->sin_addr), 1);
		len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		s->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, peer, &s->sin6_addr), 1);
		len = sizeof(*s);
	}
	assert_int_equal(bind(lfd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(lfd, 4), 0);
	len = sizeof(ss);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
	port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					 ((struct sockaddr_in6 *)&ss)->sin6_port);
	cli = zmh_tcp_connect(family, peer, port);
	if (cli < 0)
		fail_msg("connect to [%s]:%u in namespace %s: %s", peer, port, g_ns.name,
			 strerror(-cli));
	srv = zmh_tcp_accept(lfd, ZMH_TIMEOUT_MS);
	assert_true(srv >= 0);
	zmh_fd_close(lfd);
	*ret_cli = cli;
	*ret_srv = srv;
}

/*
 * Poll cli's TCP state until the kernel closes it or wait_ms pass; true if
 * it closed. *ti holds the last state read, for the failure message.
 */
static bool wait_kernel_closed(int cli, int wait_ms, struct tcp_info *ti)
{
	int64_t deadline = zmh_mono_ms() + wait_ms;

	for (;;) {
		socklen_t len = sizeof(*ti);

		memset(ti, 0, sizeof(*ti));
		if (getsockopt(cli, IPPROTO_TCP, TCP_INFO, ti, &len) < 0)
			fail_msg("getsockopt(TCP_INFO): %s", strerror(errno));
		if (ti->tcpi_state == TCP_CLOSE)
			return true;
		if (zmh_mono_ms() >= deadline)
			return false;
		poll(NULL, 0, 20);
	}
}

/*
 * The link is cut (the namespace's veth end down) while we have data to
 * send and TCP_USER_TIMEOUT 1000 ms: the kernel gives up, timeout/ETIMEDOUT.
 */
static void test_timeout_link_cut(void **state)
{
	struct conn c;
	const struct zm_down *d;
	unsigned int uto = 1000;
	struct tcp_info ti;
	char data[4096];
	int cli, srv, err = 0;
	socklen_t elen = sizeof(err);
	bool timed_out;

	require_ns();
	open_client(&c, state, "it-tcp-timeout");
	veth_pair(AF_INET, &cli, &srv);
	assert_int_equal(setsockopt(cli, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto)), 0);
	monitor_fd_synced(&c, 1, cli);

	assert_int_equal(zmh_netns_link(&g_ns, false), 0);
	memset(data, 'x', sizeof(data));
	assert_int_equal(write(cli, data, sizeof(data)), (ssize_t)sizeof(data));
	/*
	 * First the kernel's verdict, then ours: a connection the kernel never
	 * timed out is not a DOWN zenmon missed, and the two failures need
	 * different readers. The link comes back up before anything is
	 * asserted, or every later test over the veth pair fails too.
	 */
	timed_out = wait_kernel_closed(cli, TIMEOUT_WAIT_MS, &ti);
	assert_int_equal(zmh_netns_link(&g_ns, true), 0);
	if (!timed_out)
		fail_msg("the kernel did not time the connection out within %d ms of the "
			 "link cut (tcpi_state %u, retransmits %u, probes %u, backoff %u, "
			 "unacked %u): the test's premise failed, not zenmon",
			 TIMEOUT_WAIT_MS, ti.tcpi_state, ti.tcpi_retransmits, ti.tcpi_probes,
			 ti.tcpi_backoff, ti.tcpi_unacked);
	d = wait_one_down(&c, 1, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_TIMEOUT, ETIMEDOUT);
	/* The kernel agrees. */
	assert_int_equal(getsockopt(cli, SOL_SOCKET, SO_ERROR, &err, &elen), 0);
	assert_int_equal(err, ETIMEDOUT);
	close_client(&c);
}

/* A root-namespace end of a veth connection, monitored by tuple: fin. */
static void test_veth_tuple_fin(void **state)
{
	struct conn c;
	struct zm_tcp_tuple t;
	const struct zm_down *d;
	uint64_t cookie, before;
	int cli, srv;

	require_ns();
	open_client(&c, state, "it-tcp-veth-tuple");
	veth_pair(AF_INET, &cli, &srv);
	assert_int_equal(zmh_sock_cookie(cli, &cookie), 0);
	assert_int_equal(zmh_sock_tuple(cli, &t), 0);
	assert_int_equal(zmh_raw_monitor_tcp_tuple(&c.raw, 1, &t), 0);
	assert_synced_clean(&c, "after MONITOR_TCP by tuple of an established connection");

	before = zmh_now_ns();
	zmh_fd_close(srv);
	wait_eof(cli);
	zmh_fd_close(cli);
	d = wait_one_down(&c, 1, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_FIN, 0);
	assert_identity(d, cookie, &t, before);
	close_client(&c);
}

/* ---- noconnection and refusals ------------------------------------------ */

static void test_noconnection_unknown_tuple(void **state)
{
	struct conn c;
	struct zm_tcp_tuple t;
	const struct zm_down *d;

	open_client(&c, state, "it-tcp-nocon-tuple");
	unused_tuple(AF_INET, "127.0.0.1", &t);
	assert_int_equal(zmh_raw_monitor_tcp_tuple(&c.raw, 7, &t), 0);
	d = wait_one_down(&c, 7, ZMH_TIMEOUT_MS);
	assert_noconnection(d);
	close_client(&c);
}

static void test_noconnection_closed_cookie(void **state)
{
	struct conn c;
	const struct zm_down *d;
	uint64_t cookie;
	int cli, srv;

	open_client(&c, state, "it-tcp-nocon-cookie");
	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	assert_int_equal(zmh_sock_cookie(cli, &cookie), 0);
	/* Gone for good: reset, no TIME_WAIT left behind. */
	assert_int_equal(zmh_sock_linger0(cli), 0);
	zmh_fd_close(cli);
	zmh_fd_close(srv);
	assert_int_equal(zmh_raw_monitor_tcp_cookie(&c.raw, 8, cookie), 0);
	d = wait_one_down(&c, 8, ZMH_TIMEOUT_MS);
	assert_noconnection(d);
	assert_int_equal(d->start_ticks, cookie);
	assert_int_equal(zmh_tcp_map_wait_count(c.env->agent.pin_dir, &cookie, 1, 0, ZMH_TIMEOUT_MS), 0);
	close_client(&c);
}

/* A listener is not a connection: noconnection. */
static void test_noconnection_listener_fd(void **state)
{
	struct conn c;
	const struct zm_down *d;
	uint16_t port;
	int lfd;

	open_client(&c, state, "it-tcp-nocon-listen");
	lfd = zmh_tcp_listen(AF_INET, "127.0.0.1", 4, &port);
	assert_true(lfd >= 0);
	assert_int_equal(zmh_raw_monitor_tcp_fd(&c.raw, 9, lfd), 0);
	d = wait_one_down(&c, 9, ZMH_TIMEOUT_MS);
	assert_noconnection(d);
	close_client(&c);
}

/* ERROR code for ref, no DOWN. */
static void expect_error(struct conn *c, uint64_t ref, int code)
{
	const struct zm_error *e;

	assert_int_equal(zmh_raw_sync_col(&c->raw, c->col), 0);
	assert_int_equal(zmh_raw_quiet(&c->raw, c->col, ZMH_QUIET_MS), 0);
	e = zmh_rawcol_err(c->col, ref);
	if (!e || e->code != code || e->request != ZM_REC_MONITOR_TCP || c->col->n || c->col->nerr != 1) {
		zmh_rawcol_dump(c->col, "received");
		fail_msg("expected one ERROR %d (%s) for ref %llu, request MONITOR_TCP, and no DOWN",
			 code, strerror(code), (unsigned long long)ref);
	}
}

static void test_udp_fd_eprototype(void **state)
{
	struct conn c;
	int fd;

	open_client(&c, state, "it-tcp-udp");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	zmh_fd_track(fd);
	assert_int_equal(zmh_raw_monitor_tcp_fd(&c.raw, 10, fd), 0);
	expect_error(&c, 10, EPROTOTYPE);
	close_client(&c);
}

static void test_pipe_fd_enotsock(void **state)
{
	struct conn c;
	int p[2];

	open_client(&c, state, "it-tcp-pipe");
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	zmh_fd_track(p[0]);
	zmh_fd_track(p[1]);
	assert_int_equal(zmh_raw_monitor_tcp_fd(&c.raw, 11, p[0]), 0);
	expect_error(&c, 11, ENOTSOCK);
	close_client(&c);
}

/* ---- the three ways to name a connection -------------------------------- */

enum way { BY_FD, BY_COOKIE, BY_TUPLE };

/* Monitor a loopback connection's client end the given way; close both ends
 * normally: one fin DOWN naming the connection. */
static void three_ways(void **state, int family, const char *addr, enum way way)
{
	struct conn c;
	struct zm_tcp_tuple t;
	const struct zm_down *d;
	uint64_t cookie, before;
	int cli, srv;

	open_client(&c, state, "it-tcp-ways");
	assert_int_equal(zmh_tcp_pair(family, addr, &cli, &srv), 0);
	assert_int_equal(zmh_sock_cookie(cli, &cookie), 0);
	assert_int_equal(zmh_sock_tuple(cli, &t), 0);
	switch (way) {
	case BY_FD:
		assert_int_equal(zmh_raw_monitor_tcp_fd(&c.raw, 21, cli), 0);
		break;
	case BY_COOKIE:
		assert_int_equal(zmh_raw_monitor_tcp_cookie(&c.raw, 21, cookie), 0);
		break;
	case BY_TUPLE:
		assert_int_equal(zmh_raw_monitor_tcp_tuple(&c.raw, 21, &t), 0);
		break;
	}
	assert_synced_clean(&c, "after MONITOR_TCP of an established connection");
	assert_int_equal(zmh_tcp_map_count(c.env->agent.pin_dir, &cookie, 1), 1);

	before = zmh_now_ns();
	zmh_fd_close(cli);
	wait_eof(srv);
	zmh_fd_close(srv);
	d = wait_one_down(&c, 21, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_FIN, 0);
	assert_identity(d, cookie, &t, before);
	close_client(&c);
}

static void test_by_fd(void **state) { three_ways(state, AF_INET, "127.0.0.1", BY_FD); }
static void test_by_cookie(void **state) { three_ways(state, AF_INET, "127.0.0.1", BY_COOKIE); }
static void test_by_tuple(void **state) { three_ways(state, AF_INET, "127.0.0.1", BY_TUPLE); }

/* ---- IPv6 -------------------------------------------------------------- */

static void test_ipv6_fin(void **state) { three_ways(state, AF_INET6, "::1", BY_FD); }
static void test_ipv6_by_tuple(void **state) { three_ways(state, AF_INET6, "::1", BY_TUPLE); }

static void test_ipv6_reset_rx(void **state)
{
	struct conn c;
	struct zm_tcp_tuple t;
	const struct zm_down *d;
	uint64_t cookie, before;
	int cli, srv;

	open_client(&c, state, "it-tcp-v6-rst");
	assert_int_equal(zmh_tcp_pair(AF_INET6, "::1", &cli, &srv), 0);
	assert_int_equal(zmh_sock_cookie(cli, &cookie), 0);
	assert_int_equal(zmh_sock_tuple(cli, &t), 0);
	monitor_fd_synced(&c, 1, cli);

	before = zmh_now_ns();
	assert_int_equal(zmh_sock_linger0(srv), 0);
	zmh_fd_close(srv);
	d = wait_one_down(&c, 1, ZMH_TIMEOUT_MS);
	assert_closed(d, ZM_TCP_RESET_RX, -1);
	assert_identity(d, cookie, &t, before);
	close_client(&c);
}

/* ---- the kernel map and demonitor --------------------------------------- */

/*
 * Three connections, the first monitored twice (two refs): three zm_tcp
 * entries, one per connection; after the four DOWNs, none.
 */
static void test_map_entries(void **state)
{
	struct conn c;
	int cli[3], srv[3];
	uint64_t cookies[3];

	open_client(&c, state, "it-tcp-map");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli[i], &srv[i]), 0);
		assert_int_equal(zmh_sock_cookie(cli[i], &cookies[i]), 0);
		assert_int_equal(zmh_raw_monitor_tcp_fd(&c.raw, (uint64_t)i + 1, cli[i]), 0);
	}
	assert_int_equal(zmh_raw_monitor_tcp_cookie(&c.raw, 4, cookies[0]), 0);
	assert_synced_clean(&c, "after four MONITOR_TCP of three established connections");
	assert_int_equal(zmh_tcp_map_count(c.env->agent.pin_dir, cookies, 3), 3);

	for (int i = 0; i < 3; i++) {
		zmh_fd_close(srv[i]);
		wait_eof(cli[i]);
		zmh_fd_close(cli[i]);
	}
	for (uint64_t ref = 1; ref <= 4; ref++)
		assert_closed(wait_one_down(&c, ref, ZMH_TIMEOUT_MS), ZM_TCP_FIN, 0);
	assert_int_equal(c.col->n, 4);
	assert_int_equal(zmh_tcp_map_wait_count(c.env->agent.pin_dir, cookies, 3, 0, ZMH_TIMEOUT_MS), 0);
	close_client(&c);
}

/* Demonitored before the close: no DOWN, and the kernel watch is gone. */
static void test_demonitor_no_down(void **state)
{
	struct conn c;
	uint64_t cookie;
	int cli, srv;

	open_client(&c, state, "it-tcp-demon");
	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	assert_int_equal(zmh_sock_cookie(cli, &cookie), 0);
	monitor_fd_synced(&c, 1, cli);
	assert_int_equal(zmh_tcp_map_count(c.env->agent.pin_dir, &cookie, 1), 1);
	assert_int_equal(zmh_raw_demonitor(&c.raw, 1, ZM_DEMON_FLUSH), 0);
	assert_synced_clean(&c, "after DEMONITOR");
	assert_int_equal(zmh_tcp_map_wait_count(c.env->agent.pin_dir, &cookie, 1, 0, ZMH_TIMEOUT_MS), 0);

	assert_int_equal(zmh_sock_linger0(cli), 0);
	zmh_fd_close(cli);
	zmh_fd_close(srv);
	if (zmh_raw_quiet(&c.raw, c.col, 2 * ZMH_QUIET_MS) != 0 || c.col->nerr) {
		zmh_rawcol_dump(c.col, "after the close");
		fail_msg("a demonitored connection's close gave a DOWN or an ERROR");
	}
	close_client(&c);
}

/* ---- the flood ---------------------------------------------------------- */

/*
 * A child that accepts n connections on lfd and holds them: it writes 'A'
 * once it has them all, and exits (closing them all) on 'C' or EOF on ctl.
 */
static pid_t spawn_sink(int lfd, size_t n, int *ret_ctl, int *ret_status)
{
	int ctl[2], st[2];
	pid_t pid;

	assert_int_equal(pipe2(ctl, O_CLOEXEC), 0);
	assert_int_equal(pipe2(st, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t got = 0;
		char cmd;

		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		close(ctl[1]);
		close(st[0]);
		while (got < n) {
			struct pollfd pfd[2] = { { .fd = lfd, .events = POLLIN },
						 { .fd = ctl[0], .events = POLLIN } };

			if (poll(pfd, 2, 120000) <= 0 || pfd[1].revents)
				_exit(2);
			if (accept4(lfd, NULL, NULL, SOCK_CLOEXEC) >= 0)
				got++;
			else if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				_exit(3);
		}
		if (write(st[1], "A", 1) != 1)
			_exit(4);
		while (read(ctl[0], &cmd, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ctl[0]);
	close(st[1]);
	zmh_pid_track(pid);
	zmh_fd_track(ctl[1]);
	zmh_fd_track(st[0]);
	*ret_ctl = ctl[1];
	*ret_status = st[0];
	return pid;
}

/*
 * FLOOD_WANT loopback connections (fewer if RLIMIT_NOFILE's hard limit is
 * lower: the count is printed), their client ends monitored by fd, the
 * server ends in a child. The child exits (FIN on every connection), then we
 * close every client end at once: each monitor gets exactly one fin DOWN,
 * and the map is empty of them afterwards.
 */
static void test_flood(void **state)
{
	struct conn c;
	long lim;
	size_t n = FLOOD_WANT;
	int *fds;
	uint64_t *cookies;
	uint8_t *seen;
	uint16_t port = 0;
	int lfd, ctl, stfd, ws;
	pid_t pid;
	char a;
	size_t bad_how = 0, dup = 0, unknown = 0, missing = 0;
	long got;
	const struct zm_down *first_bad = NULL;

	open_client(&c, state, "it-tcp-flood");
	lim = zmh_raise_nofile((long)n + 256);
	assert_true(lim > 0);
	if ((long)n + 256 > lim)
		n = (size_t)(lim - 256);
	fprintf(stderr, "test_tcp: flood of %zu connections (RLIMIT_NOFILE %ld)\n", n, lim);

	fds = calloc(n, sizeof(*fds));
	cookies = calloc(n, sizeof(*cookies));
	seen = calloc(n + 1, 1);
	assert_non_null(fds);
	assert_non_null(cookies);
	assert_non_null(seen);

	lfd = zmh_tcp_listen(AF_INET, "127.0.0.1", 4096, &port);
	assert_true(lfd >= 0);
	pid = spawn_sink(lfd, n, &ctl, &stfd);
	zmh_fd_close(lfd);
	for (size_t i = 0; i < n; i++) {
		fds[i] = zmh_tcp_connect(AF_INET, "127.0.0.1", port);
		if (fds[i] < 0)
			fail_msg("connection %zu of %zu: %s", i, n, strerror(-fds[i]));
		assert_int_equal(zmh_sock_cookie(fds[i], &cookies[i]), 0);
	}
	assert_int_equal(zmh_fd_wait(stfd, POLLIN, 120000), 1);
	assert_int_equal(read(stfd, &a, 1), 1);

	for (size_t i = 0; i < n; i += FLOOD_BATCH) {
		size_t k = n - i < FLOOD_BATCH ? n - i : FLOOD_BATCH;
		struct zm_monitor_tcp ms[FLOOD_BATCH];

		for (size_t j = 0; j < k; j++)
			ms[j] = (struct zm_monitor_tcp){ .ref = i + j + 1, .by = ZM_TCP_BY_FD };
		assert_int_equal(zmh_raw_monitor_tcp_many(&c.raw, ms, &fds[i], k), 0);
		/* The agent closes its duplicates as it goes: keep few in flight. */
		assert_synced_clean(&c, "after a batch of MONITOR_TCP");
	}
	assert_int_equal(zmh_tcp_map_count(c.env->agent.pin_dir, NULL, 0) >= (long)n, 1);
	assert_int_equal(zmh_tcp_map_count(c.env->agent.pin_dir, cookies, n), (long)n);

	/* Close: the peer's ends all at once (the child exits), then ours. */
	assert_int_equal(write(ctl, "C", 1), 1);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	zmh_pid_untrack(pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	for (size_t i = n; i > 0; i--)
		zmh_fd_close(fds[i - 1]);

	got = zmh_raw_collect(&c.raw, c.col, n, FLOOD_WAIT_MS);
	assert_true(got >= 0);
	assert_true(zmh_raw_quiet(&c.raw, c.col, ZMH_QUIET_MS) >= 0);
	for (size_t i = 0; i < c.col->n; i++) {
		const struct zm_down *d = &c.col->downs[i];

		if (d->ref == 0 || d->ref > n) {
			unknown++;
			continue;
		}
		if (seen[d->ref]++)
			dup++;
		if (d->reason != ZM_REASON_TCP_CLOSED || d->tcp_how != ZM_TCP_FIN ||
		    d->start_ticks != cookies[d->ref - 1]) {
			if (!bad_how)
				first_bad = d;
			bad_how++;
		}
	}
	for (size_t r = 1; r <= n; r++)
		missing += !seen[r];
	if (missing || dup || unknown || bad_how || c.col->nerr) {
		char buf[512] = "";

		if (first_bad)
			zmh_down_str(first_bad, buf, sizeof(buf));
		zmh_rawcol_dump(c.col, "flood (first 20)");
		fail_msg("%zu connections: %zu DOWNs, %zu missing, %zu duplicated, %zu unknown refs, "
			 "%zu not fin/with a wrong cookie (first: %s), %zu ERRORs",
			 n, c.col->n, missing, dup, unknown, bad_how, buf, c.col->nerr);
	}
	assert_int_equal(zmh_tcp_map_wait_count(c.env->agent.pin_dir, cookies, n, 0, ZMH_TIMEOUT_MS), 0);
	free(fds);
	free(cookies);
	free(seen);
	close_client(&c);
}

/* ---- through libzenmon -------------------------------------------------- */

static void endpoints_of(const struct zm_tcp_tuple *t, struct zm_tcp_endpoints *e)
{
	memset(e, 0, sizeof(*e));
	e->family = t->family;
	memcpy(&e->local, t->saddr, t->family == AF_INET ? 4 : 16);
	memcpy(&e->remote, t->daddr, t->family == AF_INET ? 4 : 16);
	e->local_port = t->sport;
	e->remote_port = t->dport;
}

/* The library's DOWN for a normal close: kind, reason, how, cookie, ends. */
static void assert_lib_fin(const struct zm_down_info *d, uint64_t cookie, const struct zm_tcp_tuple *t)
{
	struct zm_tcp_endpoints e;

	endpoints_of(t, &e);
	if (d->kind != ZM_KIND_TCP || d->reason != ZM_DOWN_TCP_CLOSED || d->tcp_how != ZM_TCP_HOW_FIN ||
	    d->tcp_errno != 0 || d->cookie != cookie || d->pid != 0 || d->tcp.family != e.family ||
	    d->tcp.local_port != e.local_port || d->tcp.remote_port != e.remote_port ||
	    memcmp(&d->tcp.local, &e.local, sizeof(e.local)) != 0 ||
	    memcmp(&d->tcp.remote, &e.remote, sizeof(e.remote)) != 0)
		fail_msg("library DOWN ref=%llu: kind=%d reason=%d how=%d errno=%d cookie=%llu "
			 "(want %llu) pid=%d family=%d ports %u->%u (want %u->%u)",
			 (unsigned long long)d->ref, d->kind, d->reason, d->tcp_how, d->tcp_errno,
			 (unsigned long long)d->cookie, (unsigned long long)cookie, (int)d->pid,
			 d->tcp.family, d->tcp.local_port, d->tcp.remote_port, e.local_port,
			 e.remote_port);
}

/* zm_monitor_tcp_fd / _cookie / _tuple: one fin DOWN each, fields decoded. */
static void test_lib_three_ways(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	struct zm_client *cl;
	struct zm_tcp_tuple t[3];
	struct zm_tcp_endpoints e;
	uint64_t cookie[3], ref[3];
	int cli[3], srv[3];

	assert_int_equal(zmh_connect(&env->agent, "it-tcp-lib", col, &cl), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(zmh_tcp_pair(i == 2 ? AF_INET6 : AF_INET, i == 2 ? "::1" : "127.0.0.1",
					      &cli[i], &srv[i]), 0);
		assert_int_equal(zmh_sock_cookie(cli[i], &cookie[i]), 0);
		assert_int_equal(zmh_sock_tuple(cli[i], &t[i]), 0);
	}
	assert_int_equal(zm_monitor_tcp_fd(cl, cli[0], &ref[0]), 0);
	assert_int_equal(zm_monitor_tcp_cookie(cl, cookie[1], &ref[1]), 0);
	endpoints_of(&t[2], &e);
	assert_int_equal(zm_monitor_tcp_tuple(cl, &e, &ref[2]), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(col->n, 0);
	assert_int_equal(col->nerr, 0);
	assert_int_equal(zmh_tcp_map_count(env->agent.pin_dir, cookie, 3), 3);

	for (int i = 0; i < 3; i++) {
		zmh_fd_close(cli[i]);
		wait_eof(srv[i]);
		zmh_fd_close(srv[i]);
	}
	assert_int_equal(zmh_wait_downs(cl, col, 3, ZMH_TIMEOUT_MS), 3);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(col->nerr, 0);
	for (int i = 0; i < 3; i++) {
		const struct zm_down_info *d;

		assert_int_equal(zmh_collector_count(col, ref[i], &d), 1);
		assert_lib_fin(d, cookie[i], &t[i]);
	}
	assert_int_equal(zm_active_monitors(cl), 0);
	assert_int_equal(zmh_tcp_map_wait_count(env->agent.pin_dir, cookie, 3, 0, ZMH_TIMEOUT_MS), 0);
}

/* Through the library: a listener gives noconnection, a pipe ENOTSOCK. */
static void test_lib_refusals(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_collector *col = zmh_collector_new();
	const struct zm_down_info *d;
	struct zm_client *cl;
	uint64_t r1, r2;
	uint16_t port;
	int lfd, p[2];

	assert_int_equal(zmh_connect(&env->agent, "it-tcp-lib-ref", col, &cl), 0);
	lfd = zmh_tcp_listen(AF_INET, "127.0.0.1", 4, &port);
	assert_true(lfd >= 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	zmh_fd_track(p[0]);
	zmh_fd_track(p[1]);
	assert_int_equal(zm_monitor_tcp_fd(cl, lfd, &r1), 0);
	assert_int_equal(zm_monitor_tcp_fd(cl, p[0], &r2), 0);
	assert_int_equal(zmh_sync(cl, col), 0);
	assert_int_equal(zmh_quiet(cl, col, ZMH_QUIET_MS), 0);
	assert_int_equal(zmh_collector_count(col, r1, &d), 1);
	assert_int_equal(d->kind, ZM_KIND_TCP);
	assert_int_equal(d->reason, ZM_DOWN_NOCONNECTION);
	assert_int_equal(d->tcp_how, ZM_TCP_HOW_NONE);
	assert_int_equal(zmh_collector_count(col, r2, NULL), 0);
	assert_int_equal(col->nerr, 1);
	assert_int_equal(col->errs[0].ref, r2);
	assert_int_equal(col->errs[0].error, ENOTSOCK);
	assert_int_equal(zm_active_monitors(cl), 0);
}

/* ---- zenmonctl ---------------------------------------------------------- */

/* `zenmonctl monitor-tcp --json --cookie N` prints the fin DOWN and exits 0. */
static void test_ctl_monitor_tcp_json(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zmh_proc p;
	char cookie_s[32], *out = NULL, *err = NULL;
	uint64_t cookie;
	int cli, srv, ws = 0;
	long armed;

	assert_int_equal(zmh_tcp_pair(AF_INET, "127.0.0.1", &cli, &srv), 0);
	assert_int_equal(zmh_sock_cookie(cli, &cookie), 0);
	snprintf(cookie_s, sizeof(cookie_s), "%llu", (unsigned long long)cookie);
	{
		const char *argv[] = { "zenmonctl", "monitor-tcp", "--json", "--timeout", "30",
				       "--cookie", cookie_s, NULL };

		assert_int_equal(zmh_ctl_start(&p, argv, env->agent.sock), 0);
	}
	/* Armed once the kernel watches the cookie. */
	armed = zmh_tcp_map_wait_count(env->agent.pin_dir, &cookie, 1, 1, ZMH_TIMEOUT_MS);
	zmh_fd_close(srv);
	wait_eof(cli);
	zmh_fd_close(cli);
	assert_int_equal(zmh_ctl_finish(&p, 30000, &out, &err, &ws), 0);
	if (armed != 1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0 ||
	    !zmh_json_has(out, "reason", "\"tcp_closed\"") || !zmh_json_has(out, "how", "\"fin\"") ||
	    !zmh_json_has(out, "cookie", cookie_s))
		fail_msg("zenmonctl monitor-tcp --json --cookie %s (armed: %ld, status 0x%x)\n"
			 "stdout: %s\nstderr: %s", cookie_s, armed, ws, out, err);
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_fin_local_first),
		ZMH_TEST(test_fin_peer_first),
		ZMH_TEST(test_reset_rx),
		ZMH_TEST(test_reset_tx_linger0),
		ZMH_TEST(test_reset_tx_unread),
		ZMH_TEST(test_timeout_link_cut),
		ZMH_TEST(test_veth_tuple_fin),
		ZMH_TEST(test_noconnection_unknown_tuple),
		ZMH_TEST(test_noconnection_closed_cookie),
		ZMH_TEST(test_noconnection_listener_fd),
		ZMH_TEST(test_udp_fd_eprototype),
		ZMH_TEST(test_pipe_fd_enotsock),
		ZMH_TEST(test_by_fd),
		ZMH_TEST(test_by_cookie),
		ZMH_TEST(test_by_tuple),
		ZMH_TEST(test_ipv6_fin),
		ZMH_TEST(test_ipv6_by_tuple),
		ZMH_TEST(test_ipv6_reset_rx),
		ZMH_TEST(test_map_entries),
		ZMH_TEST(test_demonitor_no_down),
		ZMH_TEST(test_lib_three_ways),
		ZMH_TEST(test_lib_refusals),
		ZMH_TEST(test_ctl_monitor_tcp_json),
		ZMH_TEST(test_flood),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
