// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Reconnecting: when the agent goes away (stopped for an upgrade, restarted,
 * killed), the library connects again by itself and brings every active
 * monitor back under the same reference.
 *
 * Bringing a monitor back means naming its target exactly, never by a pid
 * that may belong to another process by now: a process by pid and start
 * time, a socket by cookie, with ZM_MON_RESUME. A monitor made that way
 * already is known from the start. One made by pid alone, pidfd, socket fd
 * or tuple is named by the agent: with ZM_HELLO_RESUMABLE it answers a
 * MONITORED record (PROTOCOL.md), read with the other replies. Until then a
 * pid-alone monitor is sent again by pid (the agent did not resolve it, or
 * its answer was lost with it), and one by fd or tuple keeps what it needs
 * to be sent again: our own dup of the fd, or the tuple (struct lzm_pend).
 * Reading /proc ourselves instead would cost a file read per monitor on the
 * fast path (and would see another pid namespace's pids).
 *
 * The agent's side (adopt.c there) keeps the kernel's record of every death
 * it inherited for a while, so a monitor brought back for a target that
 * died meanwhile gets the real reason; one the agent knows nothing of gets
 * noproc. A monitor whose target the agent had said was gone
 * (ZM_MONITORED_GONE) is not sent again: the library owes it its noproc or
 * noconnection DOWN itself (c->local).
 *
 * Exactly once: the lost connection is read to its end first, so every DOWN
 * the old agent sent is handed over (and its monitor forgotten) before any
 * monitor is brought back; what comes back is what is still active.
 *
 * The fd the caller polls keeps its number: dup3() puts a timerfd there,
 * armed for the next try, while reconnecting, and the new socket there once
 * connected. A caller blocked in poll() on it wakes when it is time to try.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

bool lzm_resuming(const struct zm_client *c)
{
	return c->resumable && (c->reconnecting || (c->dead && c->dead != -EPROTO));
}

static void pend_free(struct lzm_pend *p)
{
	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

int lzm_ident_set(struct zm_client *c, uint64_t ref, uint8_t kind, uint32_t pid, uint64_t id,
		  enum lzm_id_state state, uint16_t type, uint8_t by, int fd,
		  const struct zm_tcp_tuple *t)
{
	struct lzm_refval *v = lzm_refset_val(&c->active, ref);
	struct lzm_pend *p;

	if (!v)
		return -ENOENT;
	*v = (struct lzm_refval){ .id = id, .pid = pid, .kind = kind, .state = (uint8_t)state };
	if (state != LZM_ID_PEND)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->type = type;
	p->by = by;
	p->fd = -1;
	if (t)
		p->tuple = *t;
	if (fd >= 0 && (p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		int err = -errno;

		free(p);
		v->state = LZM_ID_NONE;
		return err;
	}
	v->id = (uint64_t)(uintptr_t)p;
	return 0;
}

void lzm_ident_resolved(struct zm_client *c, const struct zm_monitored *m)
{
	struct lzm_refval *v = lzm_refset_val(&c->active, m->ref);

	/* Over already (its DOWN came first, or demonitored), or named by us. */
	if (!v || v->state == LZM_ID_KNOWN || v->state == LZM_ID_NONE)
		return;
	if (v->state == LZM_ID_PEND)
		pend_free((struct lzm_pend *)(uintptr_t)v->id);
	*v = (struct lzm_refval){
		.id = m->start_ticks,
		.pid = m->pid,
		.kind = (uint8_t)m->kind,
		.state = LZM_ID_KNOWN,
		.flags = m->flags & ZM_MONITORED_GONE,
	};
}

bool lzm_ref_end(struct zm_client *c, uint64_t ref)
{
	struct lzm_refval *v = lzm_refset_val(&c->active, ref);

	if (v && v->state == LZM_ID_PEND) {
		pend_free((struct lzm_pend *)(uintptr_t)v->id);
		v->state = LZM_ID_NONE;
	}
	return lzm_refset_remove(&c->active, ref);
}

void lzm_resume_free(struct zm_client *c)
{
	for (size_t i = 0; c->active.vals && i < c->active.cap; i++) {
		struct lzm_refval *v;

		if (lzm_refset_slot(&c->active, i, &v) && v->state == LZM_ID_PEND)
			pend_free((struct lzm_pend *)(uintptr_t)v->id);
	}
	free(c->local);
	free(c->path);
	c->local = NULL;
	c->path = NULL;
}

static uint64_t resume_rand(struct zm_client *c)
{
	/* xorshift64: jitter only, so that clients of one agent spread out. */
	uint64_t x = c->rng ? c->rng : 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)c;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	c->rng = x;
	return x;
}

/* The next try in half to all of the backoff, which doubles up to the cap. */
static void resume_schedule(struct zm_client *c)
{
	struct itimerspec its = { 0 };
	uint64_t ms;

	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : LZM_BACKOFF_MIN_MS;
	if (c->backoff_ms > LZM_BACKOFF_MAX_MS)
		c->backoff_ms = LZM_BACKOFF_MAX_MS;
	ms = (uint64_t)c->backoff_ms / 2 + resume_rand(c) % ((uint64_t)c->backoff_ms / 2 + 1);
	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L + 1;
	timerfd_settime(c->fd, 0, &its, NULL);
}

static void resume_notify(struct zm_client *c, enum zm_conn_event ev, int arg)
{
	bool was = c->dispatching;

	if (!c->on_conn)
		return;
	c->dispatching = true;   /* no dispatch from inside the callback */
	c->on_conn(c, ev, arg, c->conn_userdata);
	c->dispatching = was;
}

static int resume_add_local(struct zm_client *c, uint64_t ref, const struct lzm_refval *v)
{
	struct timespec ts;
	struct zm_down_info *d;

	if (c->nlocal == c->local_cap) {
		size_t cap = c->local_cap ? c->local_cap * 2 : 16;

		d = realloc(c->local, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		c->local = d;
		c->local_cap = cap;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	d = &c->local[c->nlocal++];
	*d = (struct zm_down_info){
		.ref = ref,
		.time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec,
		.kind = (enum zm_kind)v->kind,
	};
	if (v->kind == ZM_TARGET_TCP) {
		d->reason = ZM_DOWN_NOCONNECTION;
		d->cookie = v->id;
	} else {
		d->reason = ZM_DOWN_NOPROC;
		d->pid = (pid_t)v->pid;
		d->start_ticks = v->id;
	}
	return 0;
}

/* Queue one active monitor for the new agent. 1 sent, 0 owed locally. */
static int resume_one(struct zm_client *c, uint64_t ref, const struct lzm_refval *v)
{
	uint8_t body[ZM_MONITOR_TCP_LEN];

	switch (v->state) {
	case LZM_ID_KNOWN:
		if (v->flags & ZM_MONITORED_GONE)
			return resume_add_local(c, ref, v);
		if (v->kind == ZM_TARGET_TCP) {
			struct zm_monitor_tcp m = { .ref = ref, .by = ZM_TCP_BY_COOKIE,
						    .flags = ZM_MON_RESUME, .cookie = v->id };

			return lzm_queue(c, ZM_REC_MONITOR_TCP, body, zm_enc_monitor_tcp(body, &m)) ?: 1;
		} else {
			struct zm_monitor_proc m = { .ref = ref, .pid = v->pid,
						     .flags = ZM_MON_START_TIME | ZM_MON_RESUME,
						     .start_ticks = v->id };

			return lzm_queue(c, ZM_REC_MONITOR_PROC, body, zm_enc_monitor_proc(body, &m)) ?: 1;
		}
	case LZM_ID_PID: {
		struct zm_monitor_proc m = { .ref = ref, .pid = v->pid };

		return lzm_queue(c, ZM_REC_MONITOR_PROC, body, zm_enc_monitor_proc(body, &m)) ?: 1;
	}
	case LZM_ID_PEND: {
		const struct lzm_pend *p = (const struct lzm_pend *)(uintptr_t)v->id;

		if (p->type == ZM_REC_MONITOR_PIDFD) {
			struct zm_monitor_pidfd m = { .ref = ref };

			return lzm_queue_fd(c, p->type, body, zm_enc_monitor_pidfd(body, &m), p->fd) ?: 1;
		} else {
			struct zm_monitor_tcp m = { .ref = ref, .by = p->by, .tuple = p->tuple };
			size_t len = zm_enc_monitor_tcp(body, &m);

			if (p->by == ZM_TCP_BY_FD)
				return lzm_queue_fd(c, p->type, body, len, p->fd) ?: 1;
			return lzm_queue(c, p->type, body, len) ?: 1;
		}
	}
	}
	return 0;
}

/* The requests a caller is still waiting for go to the new agent too. */
static int resume_requeue_requests(struct zm_client *c)
{
	uint8_t body[ZM_TARGETS_LEN];
	int r = 0;

	if (c->sync_token && !c->sync_done)
		r = lzm_queue(c, ZM_REC_SYNC, body, zm_enc_u64(body, c->sync_token));
	if (r == 0 && c->status_token && !c->status_text && !c->request_error)
		r = lzm_queue(c, ZM_REC_STATUS, body, zm_enc_u64(body, c->status_token));
	if (r == 0 && c->text_token && !c->text_done && !c->request_error) {
		/* The old agent's part of the answer goes: the new one says it all. */
		zm_buf_free(&c->text);
		if (c->text_request == ZM_REC_TARGETS) {
			struct zm_targets m = { .token = c->text_token, .limit = c->text_limit };

			r = lzm_queue(c, ZM_REC_TARGETS, body, zm_enc_targets(body, &m));
		} else {
			r = lzm_queue(c, c->text_request, body, zm_enc_u64(body, c->text_token));
		}
	}
	return r;
}

/* Connect to the agent's socket; the new socket's fd, or -errno. */
static int resume_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A Unix connect() completes at once, or fails: EAGAIN when the
	 * listener's backlog is full, which is one more reason to try later. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The socket goes (read to its end), a disarmed timer takes its number,
 * and what was queued for it is dropped. 0 or -errno (nothing changed). */
static int resume_to_timer(struct zm_client *c)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (tfd < 0)
		return -errno;
	if (dup3(tfd, c->fd, O_CLOEXEC) < 0) {
		int err = -errno;

		close(tfd);
		return err;
	}
	close(tfd);
	lzm_drop_fds(c);
	zm_buf_free(&c->out);
	zm_buf_free(&c->in);
	zm_frame_writer_init(&c->w, &c->out);
	c->out_pos = 0;
	c->fd_frame_pos = UINT64_MAX;
	c->fd_frame_count = 0;
	c->autoflush_mark = 0;
	c->reconnecting = true;
	c->dead = 0;
	c->rd_done = false;
	return 0;
}

/* Try once. 1 reconnected, 0 not (the next try is scheduled). */
static int resume_try(struct zm_client *c)
{
	uint8_t body[ZM_HELLO_LEN + ZM_NAME_MAX];
	size_t sent = 0;
	int fd, r = 0;

	fd = resume_connect(c->path);
	if (fd < 0) {
		resume_schedule(c);
		return 0;
	}
	if (dup3(fd, c->fd, O_CLOEXEC) < 0) {
		close(fd);
		resume_schedule(c);
		return 0;
	}
	close(fd);
	c->reconnecting = false;
	c->dead = 0;
	c->rd_done = false;
	c->backoff_ms = 0;

	/* HELLO, then every monitor still active, then what a caller waits
	 * for: the agent handles them in that order, so a zm_sync() that comes
	 * back has seen every monitor brought back. */
	r = lzm_queue(c, ZM_REC_HELLO, body, zm_enc_hello(body, &c->hello));
	for (size_t i = 0; r >= 0 && i < c->active.cap; i++) {
		struct lzm_refval *v;
		uint64_t ref = lzm_refset_slot(&c->active, i, &v);

		if (!ref)
			continue;
		r = resume_one(c, ref, v);
		sent += r > 0;
	}
	if (r >= 0)
		r = resume_requeue_requests(c);
	if (r < 0) {
		/* Out of memory or fds: give this connection up, try again later. */
		if (resume_to_timer(c) == 0)
			resume_schedule(c);
		return 0;
	}
	(void)zm_flush(c);
	resume_notify(c, ZM_CONN_RESTORED, (int)sent);
	return 1;
}

bool lzm_conn_lost(struct zm_client *c, int err)
{
	if (!c->resumable || err == -EPROTO)
		return false;
	if (resume_to_timer(c) < 0)
		return false;
	resume_notify(c, ZM_CONN_LOST, err);
	resume_try(c);
	return true;
}

void lzm_reconnect_poll(struct zm_client *c)
{
	struct itimerspec cur;

	if (!c->reconnecting)
		return;
	/* The timer still running: not yet. */
	if (timerfd_gettime(c->fd, &cur) == 0 &&
	    (cur.it_value.tv_sec != 0 || cur.it_value.tv_nsec != 0))
		return;
	resume_try(c);
}

int lzm_on_welcome(struct zm_client *c, const struct zm_welcome *w)
{
	if (w->version < 1 || w->version > ZM_PROTO_VERSION)
		return -EPROTO;
	c->welcome = *w;
	c->max_frame = w->max_frame;
	if (c->max_frame == 0 || c->max_frame > ZM_FRAME_MAX)
		c->max_frame = ZM_FRAME_MAX;
	return 0;
}

ZM_EXPORT void zm_set_conn_handler(struct zm_client *c, zm_conn_fn on_conn, void *userdata)
{
	if (!c)
		return;
	c->on_conn = on_conn;
	c->conn_userdata = userdata;
}

ZM_EXPORT bool zm_reconnecting(const struct zm_client *c)
{
	return c && (c->reconnecting || (c->dead && lzm_resuming(c)));
}
