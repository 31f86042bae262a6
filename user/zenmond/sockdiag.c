// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * sockdiag: TCP sockets by fd, 4-tuple and cookie (see sockdiag.h).
 *
 * Two kinds of NETLINK_SOCK_DIAG request, both SOCK_DIAG_BY_FAMILY with an
 * inet_diag_req_v2:
 *   - exact (no NLM_F_DUMP): the kernel looks the 4-tuple up the way an
 *     arriving segment would (inet_diag_find_one_icsk()) and answers with one
 *     inet_diag_msg, or NLMSG_ERROR -ENOENT. Like a segment, it falls back to
 *     a listener on the local port, so the answer's tuple is checked.
 *   - dump (NLM_F_DUMP): every socket of the family, in as many recv()s as
 *     it takes, then NLMSG_DONE. Needed for a cookie: an exact request checks
 *     a cookie but cannot look one up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "sockdiag.h"

/* Big enough for any one message of a dump (the kernel fills up to ~32 KiB). */
#define SOCKDIAG_RECV_BUF 32768

/* ---- the fd ------------------------------------------------------------- */

static int sockdiag_getsockopt_int(int fd, int level, int name, int *ret)
{
	socklen_t len = sizeof(*ret);

	if (getsockopt(fd, level, name, ret, &len) < 0)
		return -errno;
	return len == sizeof(*ret) ? 0 : -EINVAL;
}

int sockdiag_cookie_of_fd(int fd, uint64_t *ret_cookie, uint8_t *ret_state)
{
	struct tcp_info info;
	socklen_t len;
	uint64_t cookie;
	int domain, type, protocol;
	int r;

	r = sockdiag_getsockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &domain);
	if (r < 0)
		return r; /* -ENOTSOCK, -EBADF */
	r = sockdiag_getsockopt_int(fd, SOL_SOCKET, SO_TYPE, &type);
	if (r < 0)
		return r;
	r = sockdiag_getsockopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &protocol);
	if (r < 0)
		return r;
	if ((domain != AF_INET && domain != AF_INET6) || type != SOCK_STREAM ||
	    protocol != IPPROTO_TCP)
		return -EPROTOTYPE;

	len = sizeof(cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0)
		return -errno;
	if (len != sizeof(cookie) || cookie == 0)
		return -EINVAL;

	/* Only tcpi_state is needed; the kernel copies what fits. */
	len = sizeof(info);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
		return -errno;
	if (len < sizeof(info.tcpi_state))
		return -EINVAL;

	*ret_cookie = cookie;
	*ret_state = info.tcpi_state;
	return 0;
}

/* ---- parsing ------------------------------------------------------------ */

static bool sockdiag_is_v4mapped(const uint8_t a[16])
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/* The same address and port, an AF_INET one matching its v4-mapped form. */
static bool sockdiag_endpoint_eq(const struct sockdiag_endpoint *a,
				 const struct sockdiag_endpoint *b)
{
	const uint8_t *a4, *b4;

	if (a->port != b->port)
		return false;
	if (a->family == b->family)
		return memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
	if (a->family == AF_INET6 && sockdiag_is_v4mapped(a->addr))
		a4 = a->addr + 12;
	else if (a->family == AF_INET)
		a4 = a->addr;
	else
		return false;
	if (b->family == AF_INET6 && sockdiag_is_v4mapped(b->addr))
		b4 = b->addr + 12;
	else if (b->family == AF_INET)
		b4 = b->addr;
	else
		return false;
	return memcmp(a4, b4, 4) == 0;
}

static void sockdiag_sock_from_msg(const struct inet_diag_msg *m, struct sockdiag_sock *ret)
{
	size_t alen = m->idiag_family == AF_INET ? 4 : 16;

	memset(ret, 0, sizeof(*ret));
	ret->cookie = (uint64_t)m->id.idiag_cookie[0] | ((uint64_t)m->id.idiag_cookie[1] << 32);
	ret->state = m->idiag_state;
	ret->uid = m->idiag_uid;
	ret->tuple.local.family = m->idiag_family;
	ret->tuple.remote.family = m->idiag_family;
	memcpy(ret->tuple.local.addr, m->id.idiag_src, alen);
	memcpy(ret->tuple.remote.addr, m->id.idiag_dst, alen);
	ret->tuple.local.port = ntohs(m->id.idiag_sport);
	ret->tuple.remote.port = ntohs(m->id.idiag_dport);
}

int sockdiag_parse_reply(const void *buf, size_t len, uint32_t seq, sockdiag_sock_fn fn,
			 void *ctx)
{
	const uint8_t *p = buf;
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		const uint8_t *payload;
		size_t plen;
		int r;

		memcpy(&h, p + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
			return -EBADMSG;
		payload = p + off + NLMSG_HDRLEN;
		plen = h.nlmsg_len - NLMSG_HDRLEN;
		/* The next message starts aligned; the last one may end unpadded. */
		off += NLMSG_ALIGN(h.nlmsg_len) < len - off ? NLMSG_ALIGN(h.nlmsg_len) : len - off;

		if (h.nlmsg_seq != seq)
			continue; /* not an answer to this request */

		switch (h.nlmsg_type) {
		case NLMSG_ERROR: {
			struct nlmsgerr e;

			if (plen < sizeof(e.error))
				return -EBADMSG;
			memcpy(&e.error, payload, sizeof(e.error));
			if (e.error > 0 || e.error < -4095)
				return -EBADMSG;
			return e.error < 0 ? e.error : 1; /* 0 is an ACK */
		}
		case NLMSG_DONE: {
			int err = 0;

			/* A dump ends with its status, which may be an error. */
			if (plen >= sizeof(err))
				memcpy(&err, payload, sizeof(err));
			if (err > 0 || err < -4095)
				return -EBADMSG;
			return err < 0 ? err : 1;
		}
		case NLMSG_NOOP:
			continue;
		case SOCK_DIAG_BY_FAMILY: {
			struct inet_diag_msg m;
			struct sockdiag_sock s;

			if (plen < sizeof(m))
				return -EBADMSG;
			memcpy(&m, payload, sizeof(m));
			if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6)
				return -EBADMSG;
			sockdiag_sock_from_msg(&m, &s);
			r = fn(ctx, &s);
			if (r != 0)
				return r;
			if (!(h.nlmsg_flags & NLM_F_MULTI))
				return 1; /* the answer to an exact request */
			break;
		}
		default:
			return -EBADMSG;
		}
	}
	/* Trailing bytes too short for a header: a cut message. */
	return off == len ? 0 : -EBADMSG;
}

/* ---- queries ------------------------------------------------------------ */

struct sockdiag_request {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 req;
};

/* Send one request, feed every reply to fn until it is complete. */
static int sockdiag_query(struct sockdiag_request *rq, sockdiag_sock_fn fn, void *ctx)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	uint8_t *buf;
	ssize_t n;
	int fd, r;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	buf = malloc(SOCKDIAG_RECV_BUF);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	rq->nlh.nlmsg_len = sizeof(*rq);
	rq->nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	rq->nlh.nlmsg_seq = 1;
	do
		n = sendto(fd, rq, sizeof(*rq), 0, (struct sockaddr *)&kernel, sizeof(kernel));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fromlen = sizeof(from);

		n = recvfrom(fd, buf, SOCKDIAG_RECV_BUF, MSG_TRUNC, (struct sockaddr *)&from,
			     &fromlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n > SOCKDIAG_RECV_BUF) {
			r = -EMSGSIZE;
			break;
		}
		if (from.nl_pid != 0)
			continue; /* only the kernel answers */
		r = sockdiag_parse_reply(buf, (size_t)n, rq->nlh.nlmsg_seq, fn, ctx);
		if (r != 0)
			break;
	}
out:
	free(buf);
	close(fd);
	return r < 0 ? r : 0;
}

struct sockdiag_found {
	struct sockdiag_sock want; /* tuple or cookie to match */
	bool by_cookie;
	bool found;
	struct sockdiag_sock sock;
};

static int sockdiag_on_sock(void *ctx, const struct sockdiag_sock *s)
{
	struct sockdiag_found *f = ctx;

	if (f->by_cookie ? s->cookie != f->want.cookie :
			   !sockdiag_endpoint_eq(&s->tuple.local, &f->want.tuple.local) ||
				   !sockdiag_endpoint_eq(&s->tuple.remote, &f->want.tuple.remote))
		return 0;
	f->found = true;
	f->sock = *s;
	return 1;
}

int sockdiag_lookup(const struct sockdiag_tuple *t, uint64_t *ret_cookie, uint8_t *ret_state)
{
	struct sockdiag_sock s;
	int r = sockdiag_lookup_sock(t, &s);

	if (r < 0)
		return r;
	*ret_cookie = s.cookie;
	*ret_state = s.state;
	return 0;
}

int sockdiag_lookup_sock(const struct sockdiag_tuple *t, struct sockdiag_sock *ret)
{
	struct sockdiag_request rq = { 0 };
	struct sockdiag_found f = { .want.tuple = *t };
	size_t alen;
	int r;

	if (t->local.family != t->remote.family ||
	    (t->local.family != AF_INET && t->local.family != AF_INET6))
		return -EINVAL;
	alen = t->local.family == AF_INET ? 4 : 16;

	rq.nlh.nlmsg_flags = NLM_F_REQUEST;
	rq.req.sdiag_family = (uint8_t)t->local.family;
	rq.req.sdiag_protocol = IPPROTO_TCP;
	rq.req.idiag_states = ~0U;
	rq.req.id.idiag_sport = htons(t->local.port);
	rq.req.id.idiag_dport = htons(t->remote.port);
	memcpy(rq.req.id.idiag_src, t->local.addr, alen);
	memcpy(rq.req.id.idiag_dst, t->remote.addr, alen);
	rq.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	rq.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

	r = sockdiag_query(&rq, sockdiag_on_sock, &f);
	if (r < 0)
		return r;
	/* Not found, or a listener answered for its port. */
	if (!f.found || f.sock.state == TCP_LISTEN)
		return -ENOENT;
	*ret = f.sock;
	return 0;
}

int sockdiag_dump(int family, sockdiag_sock_fn fn, void *ctx)
{
	struct sockdiag_request rq = { 0 };

	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;
	rq.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	rq.req.sdiag_family = (uint8_t)family;
	rq.req.sdiag_protocol = IPPROTO_TCP;
	rq.req.idiag_states = ~0U;
	return sockdiag_query(&rq, fn, ctx);
}

int sockdiag_cookie_state(uint64_t cookie, uint8_t *ret_state)
{
	struct sockdiag_sock s;
	int r = sockdiag_cookie_sock(cookie, &s);

	if (r < 0)
		return r;
	*ret_state = s.state;
	return 0;
}

int sockdiag_cookie_sock(uint64_t cookie, struct sockdiag_sock *ret)
{
	struct sockdiag_found f = { .want.cookie = cookie, .by_cookie = true };
	int r;

	r = sockdiag_dump(AF_INET, sockdiag_on_sock, &f);
	if (r == 0 && !f.found)
		r = sockdiag_dump(AF_INET6, sockdiag_on_sock, &f);
	if (r < 0)
		return r;
	if (!f.found)
		return -ENOENT;
	*ret = f.sock;
	return 0;
}

/* ---- endpoints ---------------------------------------------------------- */

/* 1-65535, decimal digits only. */
static int sockdiag_parse_port(const char *s, uint16_t *ret)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

int sockdiag_parse_endpoint(const char *s, struct sockdiag_endpoint *ret)
{
	char host[INET6_ADDRSTRLEN];
	struct sockdiag_endpoint e = { 0 };
	const char *end, *port;
	size_t hlen;

	if (!s)
		return -EINVAL;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hlen = (size_t)(end - (s + 1));
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		e.family = AF_INET6;
		if (inet_pton(AF_INET6, host, e.addr) != 1)
			return -EINVAL;
		port = end + 2;
	} else {
		end = strrchr(s, ':');
		if (!end)
			return -EINVAL;
		hlen = (size_t)(end - s);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		/* An unbracketed IPv6 address is ambiguous: "::1:80". */
		if (strchr(host, ':'))
			return -EINVAL;
		e.family = AF_INET;
		if (inet_pton(AF_INET, host, e.addr) != 1)
			return -EINVAL;
		port = end + 1;
	}
	if (sockdiag_parse_port(port, &e.port) < 0)
		return -EINVAL;
	*ret = e;
	return 0;
}
