// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Requests: MONITOR and DEMONITOR are framed into one output buffer at once
 * (the library picks the reference, so nothing waits for the agent) and go
 * out on zm_flush(), many records per frame and many frames per send().
 *
 * A passed fd (a pidfd, or a socket to monitor) rides as SCM_RIGHTS with the
 * first byte of the frame that holds its MONITOR_PIDFD or MONITOR_TCP (by
 * fd) record: the agent keeps passed fds in arrival order, in one queue for
 * both, and hands one to each such record it parses, so an fd must arrive no
 * later than its record. A frame that carries fds (at most 253, SCM_MAX_FD)
 * therefore starts at a send boundary: flushing sends plain bytes up to it,
 * then one sendmsg() with its fds, whose bytes run up to the next such
 * frame. The kernel delivers the fds with the first of those bytes however
 * the agent's reads split them.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

void lzm_drop_fds(struct zm_client *c)
{
	for (size_t i = c->fd_head; i < c->fd_len; i++)
		close(c->fds[i].fd);
	c->fd_head = 0;
	c->fd_len = 0;
}

/* Make room for one more pending fd. 0 or -ENOMEM. */
static int send_reserve_fd(struct zm_client *c)
{
	struct lzm_pending_fd *fds;
	size_t cap;

	if (c->fd_head > 0 && c->fd_len == c->fd_cap) {
		memmove(c->fds, c->fds + c->fd_head, (c->fd_len - c->fd_head) * sizeof(*c->fds));
		c->fd_len -= c->fd_head;
		c->fd_head = 0;
	}
	if (c->fd_len < c->fd_cap)
		return 0;
	cap = c->fd_cap ? c->fd_cap * 2 : 16;
	fds = realloc(c->fds, cap * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	c->fds = fds;
	c->fd_cap = cap;
	return 0;
}

/* Stream offset of the open frame's header; UINT64_MAX when none is open.
 * Valid because nothing is consumed from c->out while a frame is open. */
static uint64_t send_open_frame_pos(const struct zm_client *c)
{
	if (!c->w.open)
		return UINT64_MAX;
	return c->out_pos + (c->w.start - c->out.off);
}

int lzm_queue(struct zm_client *c, uint16_t type, const void *body, size_t len)
{
	/* Resuming: nothing goes out now. Monitors are sent again from the
	 * active set once reconnected, and so is a SYNC, STATUS, STATS or
	 * TARGETS still waited for (resume.c); a DEMONITOR has nothing left to
	 * undo on an agent that never saw the monitor. */
	if (c->dead || c->reconnecting)
		return lzm_resuming(c) ? 0 : -ENOTCONN;
	if (c->w.open && zm_frame_open_len(&c->w) + ZM_REC_HDR_LEN + len > c->max_frame)
		zm_frame_end(&c->w);
	return zm_frame_add(&c->w, type, body, len);
}

void lzm_maybe_flush(struct zm_client *c)
{
	/* Measured from what the last flush left behind: when the socket is
	 * full, trying again on every request would only cut frames short. */
	if (zm_buf_pending(&c->out) >= c->autoflush_mark + LZM_AUTOFLUSH_BYTES)
		(void)zm_flush(c);
}

/*
 * Queue one record that claims a passed fd (MONITOR_PIDFD, MONITOR_TCP by
 * fd): fd is dup'd, and the dup rides with the frame that holds the record.
 * Everything or nothing: on failure no record or fd is left behind.
 */
int lzm_queue_fd(struct zm_client *c, uint16_t type, const void *body, size_t len, int fd)
{
	uint64_t pos;
	int dup_fd, r;

	r = send_reserve_fd(c);
	if (r < 0)
		return r;
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	/* The open frame has not been sent (zm_flush() closes it first), so
	 * its start can still carry fds: join it, unless it already carries as
	 * many as one sendmsg() can. */
	if (send_open_frame_pos(c) == c->fd_frame_pos && c->fd_frame_count >= LZM_MAX_FDS_PER_MSG)
		zm_frame_end(&c->w);
	r = lzm_queue(c, type, body, len);
	if (r < 0) {
		close(dup_fd);
		return r;
	}
	/* lzm_queue() may still have opened a new frame (the open one was
	 * full): the fd goes with whichever frame holds the record. */
	pos = send_open_frame_pos(c);
	if (pos != c->fd_frame_pos) {
		c->fd_frame_pos = pos;
		c->fd_frame_count = 0;
	}
	c->fds[c->fd_len].pos = pos;
	c->fds[c->fd_len].fd = dup_fd;
	c->fd_len++;
	c->fd_frame_count++;
	return 0;
}

/* What a new monitor names, for bringing it back after a restart (resume.c). */
struct send_ident {
	uint8_t kind;
	enum lzm_id_state state;
	uint32_t pid;
	uint64_t id;
	uint8_t by;                      /* MONITOR_TCP */
	const struct zm_tcp_tuple *tuple;
};

/*
 * Queue one MONITOR record, whose body names reference c->next_ref, and make
 * that reference active, with what it names kept if the client resumes.
 * With fd >= 0 the record claims a passed fd (lzm_queue_fd()). While the
 * connection is coming back, nothing is queued: the monitor goes with the
 * others once reconnected. Everything or nothing: on failure no reference,
 * record or fd is left behind.
 */
static int send_monitor(struct zm_client *c, uint16_t type, const void *body, size_t len, int fd,
			const struct send_ident *id, uint64_t *ret_ref)
{
	uint64_t ref = c->next_ref;
	int r;

	if (c->dead && !lzm_resuming(c))
		return -ENOTCONN;
	r = lzm_refset_add(&c->active, ref);
	if (r < 0)
		return r;
	if (c->resumable) {
		r = lzm_ident_set(c, ref, id->kind, id->pid, id->id, id->state, type, id->by, fd,
				  id->tuple);
		if (r < 0) {
			lzm_ref_end(c, ref);
			return r;
		}
	}
	if (!lzm_resuming(c)) {
		r = fd >= 0 ? lzm_queue_fd(c, type, body, len, fd) : lzm_queue(c, type, body, len);
		if (r < 0) {
			lzm_ref_end(c, ref);
			return r;
		}
	}
	c->next_ref++;
	if (ret_ref)
		*ret_ref = ref;
	lzm_maybe_flush(c);
	return 0;
}

static int send_monitor_proc(struct zm_client *c, pid_t pid, uint32_t flags, uint64_t start_ticks,
			     uint64_t *ret_ref)
{
	struct zm_monitor_proc m = {
		.ref = c->next_ref,
		.pid = (uint32_t)pid,
		.flags = flags,
		.start_ticks = start_ticks,
	};
	/* By pid and start time the target is named exactly; by pid alone
	 * the agent says which process it was (MONITORED). */
	struct send_ident id = {
		.kind = ZM_TARGET_PROCESS,
		.state = flags & ZM_MON_START_TIME ? LZM_ID_KNOWN : LZM_ID_PID,
		.pid = (uint32_t)pid,
		.id = start_ticks,
	};
	uint8_t body[ZM_MONITOR_PROC_LEN];

	return send_monitor(c, ZM_REC_MONITOR_PROC, body, zm_enc_monitor_proc(body, &m), -1, &id,
			    ret_ref);
}

ZM_EXPORT int zm_monitor_pid(struct zm_client *c, pid_t pid, uint64_t *ret_ref)
{
	if (!c || pid <= 0)
		return -EINVAL;
	return send_monitor_proc(c, pid, 0, 0, ret_ref);
}

ZM_EXPORT int zm_monitor_pid_start(struct zm_client *c, pid_t pid, uint64_t start_ticks, uint64_t *ret_ref)
{
	if (!c || pid <= 0)
		return -EINVAL;
	return send_monitor_proc(c, pid, ZM_MON_START_TIME, start_ticks, ret_ref);
}

ZM_EXPORT int zm_monitor_pidfd(struct zm_client *c, int pidfd, uint64_t *ret_ref)
{
	struct zm_monitor_pidfd m = { 0 };
	struct send_ident id = { .kind = ZM_TARGET_PROCESS, .state = LZM_ID_PEND };
	uint8_t body[ZM_MONITOR_PIDFD_LEN];

	if (!c || pidfd < 0)
		return -EINVAL;
	m.ref = c->next_ref;
	return send_monitor(c, ZM_REC_MONITOR_PIDFD, body, zm_enc_monitor_pidfd(body, &m), pidfd,
			    &id, ret_ref);
}

/* MONITOR_TCP of any form; fd >= 0 for ZM_TCP_BY_FD. */
static int send_monitor_tcp(struct zm_client *c, struct zm_monitor_tcp *m, int fd, uint64_t *ret_ref)
{
	uint8_t body[ZM_MONITOR_TCP_LEN];
	/* A cookie names the socket exactly; an fd or a tuple waits for the
	 * agent to say which socket (MONITORED). */
	struct send_ident id = {
		.kind = ZM_TARGET_TCP,
		.state = m->by == ZM_TCP_BY_COOKIE ? LZM_ID_KNOWN : LZM_ID_PEND,
		.id = m->cookie,
		.by = m->by,
		.tuple = m->by == ZM_TCP_BY_TUPLE ? &m->tuple : NULL,
	};

	m->ref = c->next_ref;
	return send_monitor(c, ZM_REC_MONITOR_TCP, body, zm_enc_monitor_tcp(body, m), fd, &id,
			    ret_ref);
}

ZM_EXPORT int zm_monitor_tcp_fd(struct zm_client *c, int sockfd, uint64_t *ret_ref)
{
	struct zm_monitor_tcp m = { .by = ZM_TCP_BY_FD };

	if (!c || sockfd < 0)
		return -EINVAL;
	return send_monitor_tcp(c, &m, sockfd, ret_ref);
}

ZM_EXPORT int zm_monitor_tcp_cookie(struct zm_client *c, uint64_t cookie, uint64_t *ret_ref)
{
	struct zm_monitor_tcp m = { .by = ZM_TCP_BY_COOKIE, .cookie = cookie };

	/* The kernel hands out cookies from 1: 0 names no socket. */
	if (!c || cookie == 0)
		return -EINVAL;
	return send_monitor_tcp(c, &m, -1, ret_ref);
}

ZM_EXPORT int zm_monitor_tcp_tuple(struct zm_client *c, const struct zm_tcp_endpoints *e,
				   uint64_t *ret_ref)
{
	struct zm_monitor_tcp m = { .by = ZM_TCP_BY_TUPLE };
	size_t alen;

	if (!c || !e)
		return -EINVAL;
	if (e->family == AF_INET)
		alen = sizeof(e->local.v4);
	else if (e->family == AF_INET6)
		alen = sizeof(e->local.v6);
	else
		return -EINVAL;
	/* The wire's address fields are 16 bytes; IPv4 fills the first 4. */
	m.tuple.family = (uint8_t)e->family;
	memcpy(m.tuple.saddr, &e->local, alen);
	memcpy(m.tuple.daddr, &e->remote, alen);
	m.tuple.sport = e->local_port;
	m.tuple.dport = e->remote_port;
	return send_monitor_tcp(c, &m, -1, ret_ref);
}

ZM_EXPORT int zm_demonitor(struct zm_client *c, uint64_t ref, unsigned int flags)
{
	struct zm_demonitor m = {
		.ref = ref,
		.flags = flags & ZM_DEMONITOR_FLUSH ? ZM_DEMON_FLUSH : 0,
	};
	uint8_t body[ZM_DEMONITOR_LEN];
	int r;

	if (!c || (flags & ~ZM_DEMONITOR_FLUSH))
		return -EINVAL;
	if (c->dead && !lzm_resuming(c))
		return -ENOTCONN;
	if (!lzm_refset_contains(&c->active, ref))
		return -ENOENT;
	r = lzm_queue(c, ZM_REC_DEMONITOR, body, zm_enc_demonitor(body, &m));
	if (r < 0)
		return r;
	/* From here on a DOWN for ref, even one already read, is dropped; and
	 * a reconnection does not bring it back. */
	lzm_ref_end(c, ref);
	lzm_maybe_flush(c);
	return 0;
}

/* Send one chunk: len bytes from the head of c->out, with nfds fds. */
static ssize_t send_chunk(struct zm_client *c, size_t len, size_t nfds)
{
	struct iovec iov = { .iov_base = zm_buf_head(&c->out), .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int) * LZM_MAX_FDS_PER_MSG)];
		struct cmsghdr align;
	} cbuf;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (nfds == 0)
		return send(c->fd, iov.iov_base, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	memset(&cbuf, 0, sizeof(cbuf));
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	for (size_t i = 0; i < nfds; i++)
		memcpy(CMSG_DATA(cm) + i * sizeof(int), &c->fds[c->fd_head + i].fd, sizeof(int));
	return sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int send_all(struct zm_client *c)
{
	zm_frame_end(&c->w);
	while (zm_buf_pending(&c->out) > 0) {
		size_t len = zm_buf_pending(&c->out), nfds = 0;
		ssize_t n;

		if (c->fd_head < c->fd_len) {
			uint64_t next = c->fds[c->fd_head].pos;

			assert(next >= c->out_pos);
			if (next == c->out_pos) {
				/* Every fd of the frame starting here goes now. */
				while (c->fd_head + nfds < c->fd_len && nfds < LZM_MAX_FDS_PER_MSG &&
				       c->fds[c->fd_head + nfds].pos == next)
					nfds++;
				if (c->fd_head + nfds < c->fd_len)
					next = c->fds[c->fd_head + nfds].pos;
			}
			/* Stop where the next fds must ride. */
			if (next > c->out_pos && next - c->out_pos < len)
				len = (size_t)(next - c->out_pos);
		}

		n = send_chunk(c, len, nfds);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return -EAGAIN;
			if (errno == EPIPE)
				return lzm_fail(c, -EPIPE);
			if (errno == ECONNRESET || errno == ENOTCONN)
				return lzm_fail(c, -ENOTCONN);
			return lzm_fail(c, -errno);
		}
		if (n == 0)
			return -EAGAIN;
		/* Any byte sent means the fds went with it: ours can go. */
		for (size_t i = 0; i < nfds; i++)
			close(c->fds[c->fd_head + i].fd);
		c->fd_head += nfds;
		if (c->fd_head == c->fd_len)
			c->fd_head = c->fd_len = 0;
		zm_buf_consume(&c->out, (size_t)n);
		c->out_pos += (uint64_t)n;
	}
	return 0;
}

ZM_EXPORT int zm_flush(struct zm_client *c)
{
	int r;

	if (!c)
		return -EINVAL;
	if (c->dead || c->reconnecting)
		return lzm_resuming(c) ? 0 : -ENOTCONN; /* kept for the next connection */
	r = send_all(c);
	c->autoflush_mark = zm_buf_pending(&c->out);
	return r;
}
