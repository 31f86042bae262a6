// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Baseline "proc connector": a NETLINK_CONNECTOR socket in the cn_proc
 * multicast group. See base_cnproc.h.
 *
 * Which exit counts. The kernel sends PROC_EVENT_EXIT for every thread as it
 * leaves do_exit(). We report a target when the event of its thread group
 * leader arrives (process_pid == process_tgid), and ignore the other
 * threads' events. That is what listeners do, and it is not exact: a leader
 * that ends with pthread_exit() while other threads run sends its event
 * before the process is dead. Being exact would mean tracking every thread
 * of every target from its fork event on, which a listener that joins late
 * cannot do. The benchmark's targets are single-threaded, so for them the
 * leader's event is the process's death.
 *
 * The subscription is the classic one: PROC_CN_MCAST_LISTEN alone, so the
 * socket receives every event of the host (fork, exec, exit, ...). Linux 6.6
 * added a per-socket event filter (struct proc_input); older agents, and the
 * headers of Debian bookworm, do not know it.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "base_cnproc.h"

#define CP_RECV_BUF 8192        /* one event is 92 bytes; the kernel sends one per datagram */
#define CP_RECV_BUDGET 4096     /* datagrams read per poll call, so a flood cannot hold it */
#define CP_ACK_WAIT_MS 1000     /* for the kernel's answer to LISTEN */

/* A target: tgid 0 marks an empty slot. */
struct cp_slot {
	pid_t tgid;
	uint64_t tag;
};

struct cnproc_listener {
	int fd;
	bool listening;         /* LISTEN was accepted: IGNORE is owed on free */
	uint32_t seq;
	uint32_t cookie;        /* our cn_msg.ack: cn_proc's answer carries cookie + 1 */
	struct cp_slot *tab;    /* open addressing, linear probing */
	size_t cap;             /* a power of two, or 0 */
	size_t count;
	uint64_t enobufs, events;
	uint64_t buf[CP_RECV_BUF / sizeof(uint64_t)];   /* aligned for nlmsghdr */
};

static uint64_t cp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- the target set ------------------------------------------------------ */

static size_t cp_hash(pid_t tgid, size_t cap)
{
	/* Fibonacci hashing: pids are dense, so spread consecutive ones. */
	return (size_t)(((uint32_t)tgid * 2654435761U) & (uint32_t)(cap - 1));
}

/* The slot holding tgid, or SIZE_MAX. */
static size_t cp_find(const struct cnproc_listener *l, pid_t tgid)
{
	if (!l->cap)
		return SIZE_MAX;
	for (size_t i = cp_hash(tgid, l->cap);; i = (i + 1) & (l->cap - 1)) {
		if (l->tab[i].tgid == tgid)
			return i;
		if (l->tab[i].tgid == 0)
			return SIZE_MAX;
	}
}

static void cp_put(struct cp_slot *tab, size_t cap, pid_t tgid, uint64_t tag)
{
	size_t i = cp_hash(tgid, cap);

	while (tab[i].tgid != 0)
		i = (i + 1) & (cap - 1);
	tab[i].tgid = tgid;
	tab[i].tag = tag;
}

/* Keep the load at most 1/2. 0 or -ENOMEM. */
static int cp_grow(struct cnproc_listener *l)
{
	size_t cap = l->cap ? l->cap * 2 : 1024;
	struct cp_slot *tab;

	if ((l->count + 1) * 2 <= l->cap)
		return 0;
	tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < l->cap; i++)
		if (l->tab[i].tgid)
			cp_put(tab, cap, l->tab[i].tgid, l->tab[i].tag);
	free(l->tab);
	l->tab = tab;
	l->cap = cap;
	return 0;
}

/* Remove slot i, shifting back the entries of its probe run so that no
 * lookup stops early at the hole (no tombstones to clean up later). */
static void cp_remove(struct cnproc_listener *l, size_t i)
{
	size_t mask = l->cap - 1, j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (l->tab[j].tgid == 0)
			break;
		home = cp_hash(l->tab[j].tgid, l->cap);
		/* Move j into the hole i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			l->tab[i] = l->tab[j];
			i = j;
		}
	}
	l->tab[i].tgid = 0;
	l->count--;
}

/* ---- the socket ---------------------------------------------------------- */

/* Send a multicast control operation to cn_proc. 0 or -errno. */
static int cp_send_op(struct cnproc_listener *l, enum proc_cn_mcast_op op)
{
	union {
		struct nlmsghdr nl;
		char raw[NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(enum proc_cn_mcast_op))];
	} m;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	struct cn_msg *cn;

	memset(&m, 0, sizeof(m));
	m.nl.nlmsg_len = NLMSG_LENGTH(sizeof(*cn) + sizeof(op));
	m.nl.nlmsg_type = NLMSG_DONE;
	cn = NLMSG_DATA(&m.nl);
	cn->id.idx = CN_IDX_PROC;
	cn->id.val = CN_VAL_PROC;
	cn->seq = ++l->seq;
	cn->ack = l->cookie;
	cn->len = sizeof(op);
	memcpy(cn->data, &op, sizeof(op));
	if (sendto(l->fd, &m, m.nl.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/*
 * Walk the netlink messages of one datagram of n bytes. For each cn_proc
 * event call on_event(l, ev, ctx). Everything is length-checked: a message
 * that does not hold what it claims ends the walk.
 */
typedef void (*cp_event_fn)(struct cnproc_listener *l, const struct cn_msg *cn,
			    const struct proc_event *ev, void *ctx);

static void cp_parse(struct cnproc_listener *l, size_t n, cp_event_fn on_event, void *ctx)
{
	const struct nlmsghdr *nl = (const struct nlmsghdr *)l->buf;
	int left = (int)n;

	for (; NLMSG_OK(nl, left); nl = NLMSG_NEXT(nl, left)) {
		const struct cn_msg *cn;
		struct proc_event ev;
		size_t payload = nl->nlmsg_len - NLMSG_HDRLEN, len;

		if (nl->nlmsg_type == NLMSG_NOOP || nl->nlmsg_type == NLMSG_ERROR)
			continue;
		if (payload < sizeof(*cn))
			break;
		cn = NLMSG_DATA(nl);
		if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC)
			continue;
		len = cn->len;
		if (len > payload - sizeof(*cn) ||
		    len < offsetof(struct proc_event, event_data.exit.exit_signal))
			continue;
		/* A copy: the event sits at an odd offset, and an older
		 * kernel's may be shorter than ours (zeros fill the rest). */
		memset(&ev, 0, sizeof(ev));
		memcpy(&ev, cn->data, len < sizeof(ev) ? len : sizeof(ev));
		on_event(l, cn, &ev, ctx);
	}
}

struct cp_ack_ctx {
	bool got;
	uint32_t err;
};

static void cp_on_ack(struct cnproc_listener *l, const struct cn_msg *cn,
		      const struct proc_event *ev, void *ctx)
{
	struct cp_ack_ctx *a = ctx;

	/* cn_proc answers on the multicast group, so other listeners' acks
	 * reach us too: ours carries our ack + 1 (its seq is replaced by a
	 * per-CPU event counter on the way out, so it cannot tell). */
	if (ev->what == PROC_EVENT_NONE && cn->ack == l->cookie + 1) {
		a->got = true;
		a->err = ev->event_data.ack.err;
	} else if (ev->what != PROC_EVENT_NONE) {
		l->events++;
	}
}

/* Wait for cn_proc's answer to our LISTEN: the only way to learn that it
 * was refused (EPERM without CAP_NET_ADMIN on older kernels). */
static int cp_wait_ack(struct cnproc_listener *l)
{
	struct cp_ack_ctx a = { .got = false };
	uint64_t deadline = cp_now_ns() + CP_ACK_WAIT_MS * 1000000ULL;

	while (!a.got) {
		struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
		uint64_t now = cp_now_ns();
		ssize_t n;

		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)((deadline - now) / 1000000ULL) + 1) < 0 && errno != EINTR)
			return -errno;
		n = recv(l->fd, l->buf, sizeof(l->buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ENOBUFS)
				l->enobufs++;
			else if (errno != EAGAIN && errno != EINTR)
				return -errno;
			continue;
		}
		cp_parse(l, (size_t)n, cp_on_ack, &a);
	}
	return a.err ? -(int)a.err : 0;
}

int cnproc_listener_new(int rcvbuf, struct cnproc_listener **ret)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	struct cnproc_listener *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	/* Tells our ack from another listener's; a collision only costs the
	 * check that LISTEN was accepted. */
	l->cookie = (uint32_t)getpid() ^ (uint32_t)cp_now_ns() ^ (uint32_t)(uintptr_t)l;
	l->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (l->fd < 0) {
		r = -errno;
		free(l);
		return r;
	}
	/* FORCE goes past net.core.rmem_max but needs CAP_NET_ADMIN, which
	 * the subscription needs anyway; plain SO_RCVBUF is the fallback. */
	if (rcvbuf > 0 &&
	    setsockopt(l->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
	    setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) {
		r = -errno;
		goto fail;
	}
	/* nl_pid 0: the kernel picks a free port id, so one process can
	 * hold several listeners. */
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto fail;
	}
	r = cp_send_op(l, PROC_CN_MCAST_LISTEN);
	if (r < 0)
		goto fail;
	/* From here the kernel counts us as a listener: undo it on failure. */
	l->listening = true;
	r = cp_wait_ack(l);
	if (r < 0)
		goto fail;
	*ret = l;
	return 0;
fail:
	cnproc_listener_free(l);
	return r;
}

void cnproc_listener_free(struct cnproc_listener *l)
{
	if (!l)
		return;
	/* cn_proc keeps a global listener count and builds every event while
	 * it is above zero: give ours back rather than leave it to close. */
	if (l->listening)
		(void)cp_send_op(l, PROC_CN_MCAST_IGNORE);
	close(l->fd);
	free(l->tab);
	free(l);
}

int cnproc_listener_add(struct cnproc_listener *l, pid_t pid, uint64_t tag)
{
	int r;

	if (pid <= 0)
		return -EINVAL;
	if (cp_find(l, pid) != SIZE_MAX)
		return -EEXIST;
	r = cp_grow(l);
	if (r < 0)
		return r;
	cp_put(l->tab, l->cap, pid, tag);
	l->count++;
	return 0;
}

struct cp_poll_ctx {
	cnproc_exit_fn fn;
	void *ud;
	uint64_t seen_ns;
	int reported;
};

static void cp_on_event(struct cnproc_listener *l, const struct cn_msg *cn,
			const struct proc_event *ev, void *ctx)
{
	struct cp_poll_ctx *p = ctx;
	pid_t tgid;
	uint64_t tag;
	size_t i;

	if (ev->what == PROC_EVENT_NONE)
		return;        /* an ack to someone's LISTEN or IGNORE */
	l->events++;
	if (ev->what != PROC_EVENT_EXIT)
		return;
	tgid = ev->event_data.exit.process_tgid;
	if (ev->event_data.exit.process_pid != tgid)
		return;        /* a thread other than the leader */
	i = cp_find(l, tgid);
	if (i == SIZE_MAX)
		return;
	tag = l->tab[i].tag;
	cp_remove(l, i);
	if (p->fn)
		p->fn(tag, tgid, (int)ev->event_data.exit.exit_code, p->seen_ns, p->ud);
	p->reported++;
}

int cnproc_listener_poll(struct cnproc_listener *l, int timeout_ms, cnproc_exit_fn fn, void *ud)
{
	struct cp_poll_ctx p = { .fn = fn, .ud = ud };
	struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
	int r;

	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	for (int k = 0; k < CP_RECV_BUDGET; k++) {
		ssize_t n = recv(l->fd, l->buf, sizeof(l->buf), MSG_DONTWAIT);

		if (n < 0) {
			/* ENOBUFS: the receive buffer overflowed and the kernel
			 * dropped events; the socket goes on after it. */
			if (errno == ENOBUFS) {
				l->enobufs++;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return p.reported ? p.reported : -errno;
		}
		p.seen_ns = cp_now_ns();
		cp_parse(l, (size_t)n, cp_on_event, &p);
	}
	return p.reported;
}

int cnproc_listener_fd(const struct cnproc_listener *l)
{
	return l->fd;
}

uint64_t cnproc_listener_enobufs(const struct cnproc_listener *l)
{
	return l->enobufs;
}

uint64_t cnproc_listener_events(const struct cnproc_listener *l)
{
	return l->events;
}

size_t cnproc_listener_count(const struct cnproc_listener *l)
{
	return l->count;
}
