/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * sockdiag: name a TCP socket by its cookie, the kernel's unique and never
 * reused socket id, which is what the kernel watch is keyed by. From an fd
 * (SO_COOKIE), from a 4-tuple and from a cookie (NETLINK_SOCK_DIAG), always in
 * the caller's network namespace. Also the parsers the agent and the CLI need:
 * "ADDR:PORT" endpoints and sock_diag replies.
 *
 * Nothing here logs or keeps state: each query opens, uses and closes its own
 * netlink socket, and blocks until the kernel has answered (the kernel answers
 * at once; a query by cookie walks every TCP socket of the namespace).
 * Functions return 0 or -errno, and touch their ret_* outputs only on success.
 */
#ifndef ZENMOND_SOCKDIAG_H
#define ZENMOND_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

struct sockdiag_endpoint {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network order; AF_INET fills the first 4 bytes, the rest is 0 */
	uint16_t port;    /* host order */
};

/* A connection as its socket sees it. Both ends have the same family. */
struct sockdiag_tuple {
	struct sockdiag_endpoint local;
	struct sockdiag_endpoint remote;
};

/* What a sock_diag reply says about one socket. */
struct sockdiag_sock {
	uint64_t cookie;
	uint8_t state; /* TCP_ESTABLISHED = 1, ... (netinet/tcp.h); TCP_SYN_RECV for a request */
	uint32_t uid;  /* its owner: the uid of the socket's inode (0 for a time-wait entry) */
	struct sockdiag_tuple tuple;
};

/*
 * Called once per socket in a reply. Return 0 to go on, 1 to stop parsing
 * (sockdiag_parse_reply() then returns 1), or -errno to fail with it.
 */
typedef int (*sockdiag_sock_fn)(void *ctx, const struct sockdiag_sock *s);

/*
 * The cookie and TCP state (tcpi_state: TCP_ESTABLISHED, TCP_CLOSE_WAIT, ...)
 * of a TCP socket the caller holds an fd of. -ENOTSOCK if fd is not a socket,
 * -EPROTOTYPE if it is not an AF_INET/AF_INET6 TCP socket (MPTCP included),
 * -EBADF, other -errno. Getting the cookie gives the socket one if it had
 * none, which is what lets the kernel watch see it.
 */
int sockdiag_cookie_of_fd(int fd, uint64_t *ret_cookie, uint8_t *ret_state);

/*
 * The live TCP socket whose local and remote ends are t's, in this network
 * namespace: its cookie and state. A time-wait entry counts (state
 * TCP_TIME_WAIT), a listener does not. -ENOENT if there is none, -EINVAL if
 * t's ends differ in family or are not AF_INET/AF_INET6, other -errno.
 * AF_INET6 ends holding v4-mapped addresses find IPv4 sockets too.
 */
int sockdiag_lookup(const struct sockdiag_tuple *t, uint64_t *ret_cookie, uint8_t *ret_state);
/* The same, the whole answer: cookie, state, owner and ends. */
int sockdiag_lookup_sock(const struct sockdiag_tuple *t, struct sockdiag_sock *ret);

/*
 * The state of the TCP socket (or time-wait entry) with this cookie in this
 * network namespace: whether a cookie names a live connection. The kernel
 * cannot look a socket up by cookie alone, so this walks every IPv4 and IPv6
 * TCP socket: milliseconds for tens of thousands. -ENOENT if none has it.
 */
int sockdiag_cookie_state(uint64_t cookie, uint8_t *ret_state);
/* The same, the whole answer: state, owner and ends. */
int sockdiag_cookie_sock(uint64_t cookie, struct sockdiag_sock *ret);

/*
 * Call fn for every TCP socket and time-wait entry of one family (AF_INET or
 * AF_INET6) in this network namespace, until fn returns non-zero. For
 * checking many cookies in one pass instead of one sockdiag_cookie_state()
 * each. 0, -EINVAL for another family, fn's -errno, other -errno.
 */
int sockdiag_dump(int family, sockdiag_sock_fn fn, void *ctx);


/*
 * Parse what one recv() on a NETLINK_SOCK_DIAG socket returned: netlink
 * messages carrying struct inet_diag_msg, then NLMSG_DONE for a dump.
 * Messages whose sequence number is not seq are skipped. Returns 1 when the
 * reply is complete (NLMSG_DONE, an ACK, a message that is not part of a
 * multipart dump, or fn said stop), 0 when more is to come, the error of an
 * NLMSG_ERROR or of a failed dump as -errno, -EBADMSG if the bytes are not a
 * well-formed reply. Never reads outside buf[0, len).
 */
int sockdiag_parse_reply(const void *buf, size_t len, uint32_t seq, sockdiag_sock_fn fn,
			 void *ctx);

/*
 * "1.2.3.4:80" or "[::1]:80" (brackets required around an IPv6 address; no
 * zone ids, no names). The port is 1-65535. -EINVAL for anything else.
 */
int sockdiag_parse_endpoint(const char *s, struct sockdiag_endpoint *ret);

#endif
