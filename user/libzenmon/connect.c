// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The connection: connect, HELLO/WELCOME, close, and the small accessors.
 * The handshake is the only blocking part of the library; it runs on the
 * same non-blocking socket and buffers as everything else, under a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef ZENMON_VERSION
#define ZENMON_VERSION "unknown"
#endif

/* The smallest frame limit we can work with: one MONITOR_PROC in a frame. */
#define LZM_MIN_AGENT_FRAME 64U

uint64_t lzm_deadline(int timeout_ms)
{
	struct timespec ts;

	if (timeout_ms < 0)
		return UINT64_MAX;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec +
	       (uint64_t)timeout_ms * 1000000ULL;
}

int lzm_ms_left(uint64_t deadline_ns)
{
	struct timespec ts;
	uint64_t now, left;

	if (deadline_ns == UINT64_MAX)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (now >= deadline_ns)
		return 0;
	/* Round up: waking a little late beats spinning on a 0 ms poll. */
	left = (deadline_ns - now + 999999ULL) / 1000000ULL;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

int lzm_fail(struct zm_client *c, int err)
{
	if (!c->dead) {
		c->dead = err;
		lzm_drop_fds(c);
	}
	return err;
}

static const char *connect_socket_path(const struct zm_connect_options *opts)
{
	const char *env;

	if (opts->socket_path)
		return opts->socket_path;
	env = secure_getenv(ZM_SOCKET_ENV);
	if (env && *env)
		return env;
	return ZM_DEFAULT_SOCKET;
}

/* connect(2) with SO_SNDTIMEO as the deadline: a Unix stream connect
 * blocks while the listener's backlog is full, for up to the send timeout. */
static int connect_socket(int fd, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EINPROGRESS)
			return -ETIMEDOUT;
		return -errno;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Look at the first frame the agent sent: WELCOME, or ERROR with a reason.
 * 1 when done, 0 when more bytes are needed, -errno otherwise. */
static int connect_read_welcome(struct zm_client *c)
{
	struct zm_frame f;
	struct zm_record_iter it;
	struct zm_record rec;
	int r;

	r = zm_frame_parse(zm_buf_head(&c->in), zm_buf_pending(&c->in), ZM_FRAME_MAX, &f);
	if (r == 0)
		return 0;
	if (r < 0)
		return -EPROTO;
	zm_record_iter_init(&it, &f);
	if (zm_record_next(&it, &rec) <= 0)
		return -EPROTO;

	if (rec.type == ZM_REC_ERROR) {
		struct zm_error e;

		if (zm_dec_error(&rec, &e) < 0 || e.code <= 0 || e.code >= 4096)
			return -EPROTO;
		return -e.code;
	}
	if (rec.type != ZM_REC_WELCOME || zm_dec_welcome(&rec, &c->welcome) < 0)
		return -EPROTO;
	if (c->welcome.version < 1 || c->welcome.version > ZM_PROTO_VERSION)
		return -EPROTO;
	/* The rest of the frame (nothing, today) is the agent's business. */
	while ((r = zm_record_next(&it, &rec)) > 0)
		;
	if (r < 0)
		return -EPROTO;

	c->max_frame = c->welcome.max_frame;
	if (c->max_frame == 0 || c->max_frame > ZM_FRAME_MAX)
		c->max_frame = ZM_FRAME_MAX;
	if (c->max_frame < LZM_MIN_AGENT_FRAME)
		return -EPROTO;
	zm_buf_consume(&c->in, f.len);
	return 1;
}

static int connect_handshake(struct zm_client *c, const struct zm_connect_options *opts,
			     const char *name, uint64_t deadline)
{
	struct zm_hello h = {
		.version = ZM_PROTO_VERSION,
		/* We bring monitors back after a restart: say which target each
		 * one named without identity is (resume.c). */
		.flags = opts->flags & ZM_CONNECT_NO_RECONNECT ? 0 : ZM_HELLO_RESUMABLE,
		.max_rate = opts->max_rate,
		.max_batch = opts->max_batch,
		.batch_window_us = opts->batch_window_us,
	};
	uint8_t body[ZM_HELLO_LEN + ZM_NAME_MAX];
	bool closed = false;
	int r;

	memcpy(h.name, name, strlen(name) + 1);
	c->hello = h;   /* sent again on every reconnection */
	r = lzm_queue(c, ZM_REC_HELLO, body, zm_enc_hello(body, &h));
	if (r < 0)
		return r;

	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;
		int ms;

		r = closed ? 0 : zm_flush(c);
		if (r == -EPIPE || r == -ENOTCONN) {
			/* The agent closed before our HELLO was through: it may
			 * have said why first (a refused connection's ERROR
			 * ENOSPC). Read that; end of file with nothing is
			 * -ECONNRESET below. */
			closed = true;
			r = 0;
		}
		if (r < 0 && r != -EAGAIN)
			return r;
		if (!closed && zm_buf_pending(&c->out) > 0)
			pfd.events |= POLLOUT;

		ms = lzm_ms_left(deadline);
		if (ms == 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;

		r = zm_buf_reserve(&c->in, LZM_READ_CHUNK);
		if (r < 0)
			return r;
		n = recv(c->fd, c->in.data + c->in.len, LZM_READ_CHUNK, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			/* Closed without a word: nothing we can call a zenmon agent. */
			return zm_buf_pending(&c->in) > 0 ? -EPROTO : -ECONNRESET;
		c->in.len += (size_t)n;
		r = connect_read_welcome(c);
		if (r != 0)
			return r < 0 ? r : closed ? -ECONNRESET : 0;
		if (zm_buf_pending(&c->in) > ZM_FRAME_MAX)
			return -EPROTO;
	}
}

ZM_EXPORT int zm_connect_opts(const struct zm_connect_options *opts, struct zm_client **ret_client)
{
	static const struct zm_connect_options defaults;
	struct zm_client *c;
	const char *path, *name;
	uint64_t deadline;
	int timeout_ms, r;

	if (!ret_client)
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	path = connect_socket_path(opts);
	name = opts->name ? opts->name : "libzenmon";
	if (strlen(name) > ZM_NAME_MAX)
		return -EINVAL;
	timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : LZM_DEFAULT_TIMEOUT_MS;
	deadline = lzm_deadline(timeout_ms);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->next_ref = 1;
	c->next_token = 1;
	c->fd_frame_pos = UINT64_MAX;
	c->max_frame = ZM_FRAME_MAX;
	zm_frame_writer_init(&c->w, &c->out);
	if (!(opts->flags & ZM_CONNECT_NO_RECONNECT)) {
		lzm_refset_use_vals(&c->active);
		c->path = strdup(path);
		if (!c->path) {
			free(c);
			return -ENOMEM;
		}
	}

	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		goto fail;
	}
	r = connect_socket(c->fd, path, timeout_ms);
	if (r < 0)
		goto fail;
	r = connect_handshake(c, opts, name, deadline);
	if (r < 0)
		goto fail;
	/* Only now: a connection that never worked is an error to report, not
	 * one to come back to. */
	c->resumable = c->path != NULL;

	*ret_client = c;
	return 0;
fail:
	zm_close(c);
	return r;
}

ZM_EXPORT int zm_connect(const char *socket_path, const char *name, struct zm_client **ret_client)
{
	struct zm_connect_options opts = {
		.socket_path = socket_path,
		.name = name,
	};

	return zm_connect_opts(&opts, ret_client);
}

ZM_EXPORT void zm_close(struct zm_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	lzm_drop_fds(c);
	lzm_resume_free(c);
	free(c->fds);
	zm_buf_free(&c->out);
	zm_buf_free(&c->in);
	free(c->batch);
	lzm_refset_free(&c->active);
	free(c->status_text);
	zm_buf_free(&c->text);
	free(c);
}

ZM_EXPORT int zm_fd(const struct zm_client *c)
{
	return c ? c->fd : -EINVAL;
}

ZM_EXPORT int zm_limits(const struct zm_client *c, uint32_t *ret_rate, uint32_t *ret_batch,
			uint32_t *ret_window_us)
{
	if (!c)
		return -EINVAL;
	if (ret_rate)
		*ret_rate = c->welcome.max_rate;
	if (ret_batch)
		*ret_batch = c->welcome.max_batch;
	if (ret_window_us)
		*ret_window_us = c->welcome.batch_window_us;
	return 0;
}

ZM_EXPORT size_t zm_pending(const struct zm_client *c)
{
	return c ? zm_buf_pending(&c->out) : 0;
}

ZM_EXPORT void zm_set_error_handler(struct zm_client *c, zm_error_fn on_error, void *userdata)
{
	if (!c)
		return;
	c->on_error = on_error;
	c->error_userdata = userdata;
}

ZM_EXPORT size_t zm_active_monitors(const struct zm_client *c)
{
	return c ? c->active.count : 0;
}

ZM_EXPORT const char *zm_reason_str(enum zm_down_reason reason)
{
	switch (reason) {
	case ZM_DOWN_EXITED: return "exited";
	case ZM_DOWN_KILLED: return "killed";
	case ZM_DOWN_NOPROC: return "noproc";
	case ZM_DOWN_TCP_CLOSED: return "tcp_closed";
	case ZM_DOWN_NOCONNECTION: return "noconnection";
	}
	return "unknown";
}

ZM_EXPORT const char *zm_tcp_how_str(enum zm_tcp_how how)
{
	switch (how) {
	case ZM_TCP_HOW_NONE: return "none";
	case ZM_TCP_HOW_FIN: return "fin";
	case ZM_TCP_HOW_RESET_RX: return "reset_rx";
	case ZM_TCP_HOW_RESET_TX: return "reset_tx";
	case ZM_TCP_HOW_TIMEOUT: return "timeout";
	case ZM_TCP_HOW_ERROR: return "error";
	}
	return "unknown";
}

ZM_EXPORT const char *zm_version(void)
{
	return ZENMON_VERSION;
}
