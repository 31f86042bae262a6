// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * One client connection: read frames (and the fds that ride with them),
 * hand each record to its handler, queue replies and DOWNs, write them out
 * before the loop sleeps. A malformed frame gets one ERROR and the
 * connection is closed; a bad request gets an ERROR and nothing else.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "agent.h"
#include "log.h"

#define CLIENT_READ_CHUNK (64U * 1024)
#define CLIENT_READ_BUDGET (1U << 20)      /* bytes per wakeup, for fairness */
#define CLIENT_OUT_WRITABLE (256U * 1024)   /* give it more DOWNs only below this */
#define CLIENT_MAX_FDS 1024U               /* received and not yet claimed */
#define CLIENT_CMSG_FDS 253                 /* SCM_MAX_FD */

struct client {
	struct loop_source src;
	struct dsub ds;                    /* its place in the dispatcher */
	bool in_dispatcher;
	int write_error;                   /* -errno from a write the dispatcher made */
	uint64_t blocked_since_ns;         /* the socket has been full since then; 0 if not */
	size_t head_left;                  /* bytes of the frame at the head of out still unsent */
	struct agent *a;
	struct reg_sub *sub;
	struct client *next, *prev;        /* a->clients */
	struct client *dirty_next;         /* a->dirty */
	bool dirty;
	bool hello_done;
	bool resumable;                    /* HELLO asked for MONITORED records */
	bool closing;                      /* send what is queued, then close */
	bool want_write;
	uint32_t events;                   /* what the loop watches now */
	struct zm_buf in, out;
	struct zm_frame_writer w;
	int fds[CLIENT_MAX_FDS];           /* ring of received fds */
	unsigned int fd_head, fd_count;
	char name[ZM_NAME_MAX + 1];
	uint64_t downs_sent;
	/* Who is at the other end, and what it may do (access.h). */
	struct ucred cred;                 /* SO_PEERCRED: at connect() */
	uint32_t *groups;                  /* SO_PEERGROUPS: supplementary groups */
	size_t ngroups;
	bool unrestricted;                 /* may monitor any target */
	struct access_uid *acct;           /* its uid's connections and monitors */
	struct access_rate rate;           /* its requests per second */
	size_t counted_out;                /* its share of acct->queued_bytes */
	/* MONITORs with RESUME that still pass the request rate untaxed. */
	uint32_t resume_allowance;
};

static void client_on_events(struct loop_source *src, uint32_t events);

struct reg_sub *client_sub(const struct client *c)
{
	return c->sub;
}

bool client_resumable(const struct client *c)
{
	return c->resumable;
}

uint32_t client_uid(const struct client *c)
{
	return (uint32_t)c->cred.uid;
}

bool client_unrestricted(const struct client *c)
{
	return c->unrestricted;
}

static void client_mark_dirty(struct client *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = c->a->dirty;
	c->a->dirty = c;
}

int client_queue(struct client *c, uint16_t type, const void *body, size_t len)
{
	int r;

	if (c->closing && type != ZM_REC_ERROR)
		return 0;
	r = zm_frame_add(&c->w, type, body, len);
	if (r < 0)
		return r;
	metrics_record_out(&c->a->metrics, type, 1);
	client_mark_dirty(c);
	return 0;
}

int client_queue_text(struct client *c, uint16_t type, uint64_t token, const char *text, size_t len)
{
	int r;

	if (c->closing)
		return 0;
	r = zm_frame_add_text_reply(&c->w, type, token, text, len);
	client_mark_dirty(c);   /* what was queued before a failure goes too */
	if (r < 0)
		return r;
	metrics_record_out(&c->a->metrics, type, (uint64_t)r);
	return 0;
}

void client_error(struct client *c, uint64_t ref, uint16_t request, int code, const char *fmt, ...)
{
	struct zm_error e = { .ref = ref, .code = code, .request = request };
	uint8_t body[ZM_ERROR_LEN + ZM_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	metrics_error(&c->a->metrics, code);
	log_debug("client %llu (%s): error %s on %s ref %llu: %s",
		  (unsigned long long)registry_sub_id(c->sub), c->name, strerrorname_np(code) ?: "?",
		  zm_rec_type_name(request), (unsigned long long)ref, e.message);
	if (client_queue(c, ZM_REC_ERROR, body, zm_enc_error(body, &e)) < 0)
		log_warn("client %llu (%s): no memory to queue an error reply",
			 (unsigned long long)registry_sub_id(c->sub), c->name);
}

/* A protocol violation: tell the client why, then close once that is sent. */
static void client_fatal(struct client *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void client_fatal(struct client *c, int code, const char *fmt, ...)
{
	char msg[ZM_MSG_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("client %llu (%s): %s; closing the connection",
		 (unsigned long long)registry_sub_id(c->sub), c->name, msg);
	client_error(c, 0, 0, code, "%s", msg);
	c->closing = true;
}

int client_take_fd(struct client *c)
{
	int fd;

	if (c->fd_count == 0)
		return -1;
	fd = c->fds[c->fd_head];
	c->fd_head = (c->fd_head + 1) % CLIENT_MAX_FDS;
	c->fd_count--;
	return fd;
}

static size_t client_out_high(const struct agent *a)
{
	return a->opts.max_queued_bytes ? a->opts.max_queued_bytes : AGENT_DEFAULT_QUEUED_BYTES;
}

/* Is c's uid over max-queued-bytes-per-uid, all its connections' unsent
 * answers together (root is exempt, as from the other per-uid quotas)? */
static bool client_uid_out_full(const struct client *c)
{
	uint32_t cap = c->a->opts.quotas.queued_bytes_per_uid;

	return cap && !access_quota_exempt(client_uid(c)) && c->acct->queued_bytes >= cap;
}

/* May the agent read more of c's requests now? */
static bool client_may_read(const struct client *c)
{
	return !c->closing && zm_buf_pending(&c->out) < client_out_high(c->a) &&
	       !client_uid_out_full(c);
}

static void client_set_events(struct client *c)
{
	uint32_t ev = 0;

	if (client_may_read(c))
		ev |= EPOLLIN;
	if (c->want_write)
		ev |= EPOLLOUT;
	if (ev != c->events && loop_mod(c->a->loop, &c->src, ev) == 0)
		c->events = ev;
}

/* c's uid went back under max-queued-bytes-per-uid: its other
 * connections may be read again. */
static void client_wake_uid_peers(struct client *c)
{
	for (struct client *o = c->a->clients; o; o = o->next)
		if (o != c && o->acct == c->acct)
			client_set_events(o);
}

/* Count n bytes of c's answers as waiting unsent, in its uid's total; if
 * that brings the uid back under its cap, its other connections read again. */
static void client_count_out(struct client *c, size_t n)
{
	bool was_full = client_uid_out_full(c);

	c->acct->queued_bytes = c->acct->queued_bytes - c->counted_out + n;
	c->counted_out = n;
	if (was_full && !client_uid_out_full(c))
		client_wake_uid_peers(c);
}

/*
 * Answers piling up unsent: stop taking requests until it reads
 * (max-queued-bytes-per-subscriber), or until its uid's connections do
 * (max-queued-bytes-per-uid). Not refused with errors: an ERROR is more
 * bytes for a client that does not read. When c's answers going out bring
 * its uid back under its cap, the uid's other connections read again.
 */
static void client_update_events(struct client *c)
{
	client_count_out(c, zm_buf_pending(&c->out));
	client_set_events(c);
}

/* The peer's supplementary groups (SO_PEERGROUPS), malloc'd; NULL and 0
 * when it has none. 0 or -errno. */
static int client_peer_groups(int fd, uint32_t **ret, size_t *ret_n)
{
	gid_t small[32], *g = small;
	socklen_t len = sizeof(small);
	uint32_t *out;
	size_t n;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		/* ERANGE: len now says how much it takes. */
		if (errno != ERANGE || !(g = malloc(len)))
			return errno == ERANGE ? -ENOMEM : -errno;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
			int r = -errno;

			free(g);
			return r;
		}
	}
	n = len / sizeof(gid_t);
	out = n ? malloc(n * sizeof(*out)) : NULL;
	if (n && !out) {
		if (g != small)
			free(g);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (uint32_t)g[i];
	if (g != small)
		free(g);
	*ret = out;
	*ret_n = n;
	return 0;
}

/*
 * Refuse a connection before it starts: one ERROR ENOSPC, straight into the
 * fresh socket (which has room for one small frame), then close. What the
 * client sent meanwhile (its HELLO) is read and dropped first, so that it
 * reads the ERROR and end-of-file rather than a reset.
 */
static void client_refuse(struct agent *a, int fd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void client_refuse(struct agent *a, int fd, const char *fmt, ...)
{
	struct zm_error e = { .code = ENOSPC };
	uint8_t body[ZM_ERROR_LEN + ZM_MSG_MAX], junk[4096];
	struct zm_frame_writer w;
	struct zm_buf out = { 0 };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	log_debug("refused a connection: %s", e.message);
	metrics_error(&a->metrics, ENOSPC);
	zm_frame_writer_init(&w, &out);
	if (zm_frame_add(&w, ZM_REC_ERROR, body, zm_enc_error(body, &e)) == 0) {
		zm_frame_end(&w);
		if (send(fd, zm_buf_head(&out), zm_buf_pending(&out), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_debug("could not tell a refused client why: %s", strerror(errno));
	}
	zm_buf_free(&out);
	for (int i = 0; i < 16 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

/* Who is at the other end and what it may do. 0, or -errno. */
static int client_identify(struct client *c, int fd)
{
	const struct agent_opts *o = &c->a->opts;
	socklen_t len = sizeof(c->cred);
	struct access_peer peer;
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0)
		return -errno;
	r = client_peer_groups(fd, &c->groups, &c->ngroups);
	if (r < 0)
		return r;
	peer = (struct access_peer){ .uid = (uint32_t)c->cred.uid, .gid = (uint32_t)c->cred.gid,
				     .groups = c->groups, .ngroups = c->ngroups };
	c->unrestricted = access_unrestricted(&peer, &o->allow_uids, &o->allow_groups);
	access_rate_init(&c->rate,
			 access_quota_exempt(client_uid(c)) ? 0 : o->quotas.requests_per_second,
			 agent_now_ns(CLOCK_MONOTONIC));
	return 0;
}

int client_accept(struct agent *a, int fd)
{
	const struct access_quotas *q = &a->opts.quotas;
	struct client *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->a = a;
	c->src.fd = fd;
	c->src.fn = client_on_events;
	r = client_identify(c, fd);
	if (r < 0) {
		log_warn("cannot tell who a new client is (SO_PEERCRED, SO_PEERGROUPS): %s; closing it",
			 strerror(-r));
		free(c->groups);
		free(c);
		close(fd);
		return 0;
	}
	c->acct = access_uid_get(&a->access, client_uid(c));
	/* A new uid's bucket starts full; another connection of a known uid
	 * must not refill it. */
	if (c->acct && c->acct->rate.rate != c->rate.rate)
		access_rate_init(&c->acct->rate, c->rate.rate, agent_now_ns(CLOCK_MONOTONIC));
	if (!c->acct) {
		free(c->groups);
		free(c);
		return -ENOMEM;
	}
	if (!access_quota_exempt(client_uid(c)) && q->connections_per_uid &&
	    c->acct->connections >= q->connections_per_uid) {
		client_refuse(a, fd, "uid %u already has %u connections, its limit "
			      "(max-connections-per-uid): close one first",
			      client_uid(c), c->acct->connections);
		access_uid_release(&a->access, c->acct);
		free(c->groups);
		free(c);
		return 0;
	}
	c->sub = registry_sub_new(a->reg, c);
	if (!c->sub) {
		access_uid_release(&a->access, c->acct);
		free(c->groups);
		free(c);
		return -ENOMEM;
	}
	registry_sub_set_counter(c->sub, &c->acct->monitors);
	zm_frame_writer_init(&c->w, &c->out);
	strcpy(c->name, "-");
	c->events = EPOLLIN;
	r = loop_add(a->loop, &c->src, c->events);
	if (r < 0) {
		registry_sub_free(a->reg, c->sub);
		access_uid_release(&a->access, c->acct);
		free(c->groups);
		free(c);
		return r;
	}
	c->acct->connections++;
	c->next = a->clients;
	if (a->clients)
		a->clients->prev = c;
	a->clients = c;
	a->metrics.subscribers_connected++;
	log_debug("client %llu connected: pid %d uid %u gid %u%s",
		  (unsigned long long)registry_sub_id(c->sub), (int)c->cred.pid, client_uid(c),
		  (unsigned)c->cred.gid, c->unrestricted ? " (unrestricted)" : "");
	return 0;
}

bool client_monitor_quota(struct client *c, uint64_t ref, uint16_t request)
{
	const struct access_quotas *q = &c->a->opts.quotas;

	if (access_quota_exempt(client_uid(c)))
		return true;
	switch (access_monitor_quota(q, registry_sub_held(c->sub), c->acct->monitors)) {
	case ACCESS_OK:
		return true;
	case ACCESS_SUBSCRIBER_FULL:
		client_error(c, ref, request, ENOSPC,
			     "this connection holds %zu monitors (armed, or DOWNs not yet read), its "
			     "limit (max-monitors-per-subscriber): demonitor some or read its DOWNs first",
			     registry_sub_held(c->sub));
		return false;
	case ACCESS_UID_FULL:
		client_error(c, ref, request, ENOSPC,
			     "uid %u holds %zu monitors over all its connections, its limit "
			     "(max-monitors-per-uid): demonitor some first",
			     client_uid(c), c->acct->monitors);
		return false;
	}
	return false;
}

/*
 * One request's token from the client's rate (max-requests-per-second) and
 * one from its uid's, which all the uid's connections share: a flood spread
 * over many connections is no faster than one, and the agent's time per
 * refused request (a /proc read, for a MONITOR of another's process) stays
 * bounded per user. Over either, the request gets ERROR EAGAIN with its ref
 * (or token) and is otherwise ignored; an fd it came with is used up, so
 * that the next fd-carrying record still gets its own. SYNC and DEMONITOR are never
 * refused: one costs no more than its refusal would and clients wait on
 * it, the other frees what the quotas count. Nor is a MONITOR with RESUME,
 * up to one connection's worth of monitors (resume_allowance): it brings
 * back a monitor admitted before a restart. A record too short to decode
 * goes on, to be refused for that.
 */
static bool client_admit(struct client *c, const struct zm_record *rec)
{
	union {
		struct zm_monitor_proc proc;
		struct zm_monitor_pidfd pidfd;
		struct zm_monitor_tcp tcp;
		struct zm_targets targets;
	} m;
	uint64_t ref, now;
	bool uid_over = false;
	int fd = -1;

	switch (rec->type) {
	case ZM_REC_MONITOR_PROC:
		if (zm_dec_monitor_proc(rec, &m.proc) < 0)
			return true;
		ref = m.proc.ref;
		break;
	case ZM_REC_MONITOR_PIDFD:
		if (zm_dec_monitor_pidfd(rec, &m.pidfd) < 0)
			return true;
		ref = m.pidfd.ref;
		break;
	case ZM_REC_MONITOR_TCP:
		if (zm_dec_monitor_tcp(rec, &m.tcp) < 0)
			return true;
		ref = m.tcp.ref;
		break;
	case ZM_REC_TARGETS:
		if (zm_dec_targets(rec, &m.targets) < 0)
			return true;
		ref = m.targets.token;
		break;
	case ZM_REC_STATUS:
	case ZM_REC_STATS:
		if (zm_dec_u64(rec, &ref) < 0)
			return true;
		break;
	default:
		return true; /* SYNC, DEMONITOR, or not a request at all */
	}
	if (((rec->type == ZM_REC_MONITOR_PROC && (m.proc.flags & ZM_MON_RESUME)) ||
	     (rec->type == ZM_REC_MONITOR_TCP && (m.tcp.flags & ZM_MON_RESUME))) &&
	    c->resume_allowance > 0) {
		c->resume_allowance--;
		return true;
	}
	now = agent_now_ns(CLOCK_MONOTONIC);
	if (access_rate_take(&c->rate, now)) {
		if (access_rate_take(&c->acct->rate, now))
			return true;
		uid_over = true;
	}
	if (rec->type == ZM_REC_MONITOR_PIDFD ||
	    (rec->type == ZM_REC_MONITOR_TCP && m.tcp.by == ZM_TCP_BY_FD))
		fd = client_take_fd(c);
	if (fd >= 0)
		close(fd);
	if (uid_over)
		client_error(c, ref, rec->type, EAGAIN,
			     "uid %u is over its %u requests per second over all its connections "
			     "(max-requests-per-second holds per uid too): send it again later",
			     client_uid(c), c->acct->rate.rate);
	else
		client_error(c, ref, rec->type, EAGAIN,
			     "over this connection's %u requests per second (max-requests-per-second): "
			     "send it again later", c->rate.rate);
	return false;
}

void client_apply_access(struct agent *a)
{
	const struct agent_opts *o = &a->opts;
	uint64_t now = agent_now_ns(CLOCK_MONOTONIC);

	for (struct client *c = a->clients; c; c = c->next) {
		struct access_peer peer = {
			.uid = client_uid(c), .gid = (uint32_t)c->cred.gid,
			.groups = c->groups, .ngroups = c->ngroups,
		};
		uint32_t rate = access_quota_exempt(client_uid(c)) ? 0 : o->quotas.requests_per_second;

		c->unrestricted = access_unrestricted(&peer, &o->allow_uids, &o->allow_groups);
		if (rate != c->rate.rate)
			access_rate_init(&c->rate, rate, now);
		if (rate != c->acct->rate.rate)
			access_rate_init(&c->acct->rate, rate, now);
		client_update_events(c); /* max-queued-bytes-per-subscriber may have moved */
	}
}

void client_close(struct client *c, const char *why)
{
	struct agent *a = c->a;
	size_t mons = registry_sub_monitors(c->sub);

	log_debug("client %llu (%s) disconnected (%s); dropping its %zu monitors",
		  (unsigned long long)registry_sub_id(c->sub), c->name, why, mons);
	if (c->in_dispatcher)
		dispatch_remove(&a->dispatcher, &c->ds);
	loop_del(a->loop, &c->src);
	close(c->src.fd);
	while (c->fd_count)
		close(client_take_fd(c));
	/* Its monitors go, and with them every kernel watch nobody else needs. */
	registry_sub_free(a->reg, c->sub);
	/* Its unsent answers go too: the uid's other connections may read again. */
	client_count_out(c, 0);
	c->acct->connections--;
	access_uid_release(&a->access, c->acct);
	free(c->groups);
	if (c->prev)
		c->prev->next = c->next;
	else
		a->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->dirty) {
		for (struct client **pp = &a->dirty; *pp; pp = &(*pp)->dirty_next) {
			if (*pp == c) {
				*pp = c->dirty_next;
				break;
			}
		}
	}
	zm_buf_free(&c->in);
	zm_buf_free(&c->out);
	free(c);
}

void client_close_all(struct agent *a)
{
	while (a->clients)
		client_close(a->clients, "agent shutting down");
}

/*
 * Drop n sent bytes, keeping count of where the frame at the head ends, so
 * that a last ERROR can be put right after it (client_drop()).
 */
static void client_consume_out(struct client *c, size_t n)
{
	const uint8_t *p = zm_buf_head(&c->out);
	size_t left = n;

	while (left > 0) {
		size_t take;

		/* Frames in out are whole and ours: a header is all there. */
		if (c->head_left == 0) {
			c->head_left = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
				       (size_t)p[3] << 24;
			c->a->metrics.frames_out++;
		}
		take = left < c->head_left ? left : c->head_left;
		c->head_left -= take;
		p += take;
		left -= take;
	}
	zm_buf_consume(&c->out, n);
}

/* Write what is queued. 0, or -errno when the connection is dead. */
static int client_write(struct client *c)
{
	zm_frame_end(&c->w);
	while (zm_buf_pending(&c->out) > 0) {
		ssize_t n = send(c->src.fd, zm_buf_head(&c->out), zm_buf_pending(&c->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!c->blocked_since_ns)
					c->blocked_since_ns = agent_now_ns(CLOCK_MONOTONIC);
				c->want_write = true;
				client_update_events(c);
				return 0;
			}
			return -errno;
		}
		c->a->metrics.bytes_out += (size_t)n;
		client_consume_out(c, (size_t)n);
	}
	c->blocked_since_ns = 0;
	if (c->want_write) {
		c->want_write = false;
		client_update_events(c);
		/* Back-pressure released: its queued DOWNs may flow again. */
		if (c->in_dispatcher && registry_sub_queued(c->sub) > 0) {
			dispatch_wake(&c->a->dispatcher, &c->ds);
			c->a->dispatch_due = true;
		}
	}
	return 0;
}

void client_flush_all(struct agent *a)
{
	while (a->dirty) {
		struct client *c = a->dirty;
		int r;

		a->dirty = c->dirty_next;
		c->dirty = false;
		r = c->write_error ? c->write_error : client_write(c);
		if (r < 0)
			client_close(c, strerror(-r));
		else if (c->closing && zm_buf_pending(&c->out) == 0)
			client_close(c, "protocol error");
		else
			client_update_events(c);
	}
}

static uint32_t min_nonzero(uint32_t asked, uint32_t cap)
{
	if (!asked)
		return cap;
	return cap && cap < asked ? cap : asked;
}

/*
 * What the subscriber asked for in HELLO, within the agent's caps; 0 asks
 * for the agent's value. The bucket's burst is one batch (or one second's
 * worth, if less), so a rate limit holds from the first second on.
 */
static void client_set_limits(struct client *c, const struct zm_hello *h, struct zm_welcome *w)
{
	const struct agent_opts *o = &c->a->opts;
	struct pace_limits lim = { 0 };

	lim.rate = min_nonzero(h->max_rate, o->max_rate);
	lim.max_batch = min_nonzero(h->max_batch, o->max_batch);
	w->batch_window_us = h->batch_window_us ? h->batch_window_us : o->batch_window_us;
	if (w->batch_window_us > 10000000)
		w->batch_window_us = 10000000;
	lim.window_ns = (uint64_t)w->batch_window_us * 1000ULL;
	lim.burst = lim.rate && lim.rate < lim.max_batch ? lim.rate : lim.max_batch;
	w->max_rate = lim.rate;
	w->max_batch = lim.max_batch;
	dispatch_add(&c->a->dispatcher, &c->ds, &lim, agent_now_ns(CLOCK_MONOTONIC));
	c->in_dispatcher = true;
}

static void client_hello(struct client *c, const struct zm_record *rec)
{
	struct zm_hello h;
	struct zm_welcome w = {
		.version = ZM_PROTO_VERSION,
		.max_frame = ZM_FRAME_MAX,
		.subscriber_id = registry_sub_id(c->sub),
	};
	uint8_t body[ZM_WELCOME_LEN + ZM_NAME_MAX];

	if (zm_dec_hello(rec, &h) < 0) {
		client_fatal(c, EBADMSG, "HELLO record is %u bytes, shorter than its %u-byte fixed part",
			     rec->len, ZM_HELLO_LEN);
		return;
	}
	/* A newer client speaks our version too: it reads WELCOME's. */
	if (h.version < ZM_PROTO_VERSION) {
		client_fatal(c, EPROTONOSUPPORT, "protocol version %u is not supported (this agent speaks %u)",
			     h.version, ZM_PROTO_VERSION);
		return;
	}
	if (h.name[0]) {
		/* The name shows in status lines of "key=value" words: keep it one word. */
		snprintf(c->name, sizeof(c->name), "%s", h.name);
		for (unsigned char *p = (unsigned char *)c->name; *p; p++)
			if (*p < 0x21 || *p > 0x7e)
				*p = '_';
	}
	client_set_limits(c, &h, &w);
	snprintf(w.agent_version, sizeof(w.agent_version), "zenmond %s", ZENMON_VERSION);
	/* The flags we honour; the others are ignored (PROTOCOL.md). */
	c->resumable = h.flags & ZM_HELLO_RESUMABLE;
	/* A client back after a restart brings all its monitors at once; they
	 * were admitted before, and refusing some would end monitors the
	 * program holds. As many as one connection may hold pass untaxed. */
	c->resume_allowance = c->a->opts.quotas.monitors_per_subscriber ?
				      c->a->opts.quotas.monitors_per_subscriber : UINT32_MAX;
	w.flags = h.flags & ZM_HELLO_RESUMABLE;
	c->hello_done = true;
	client_queue(c, ZM_REC_WELCOME, body, zm_enc_welcome(body, &w));
	log_debug("client %llu says hello as \"%s\"", (unsigned long long)registry_sub_id(c->sub), c->name);
}

static void client_record(struct client *c, const struct zm_record *rec)
{
	struct agent *a = c->a;
	uint8_t body[16];
	uint64_t token;

	metrics_record_in(&a->metrics, rec->type);
	if (!c->hello_done) {
		if (rec->type == ZM_REC_HELLO)
			client_hello(c, rec);
		else
			client_fatal(c, EPROTO, "expected HELLO as the first record, got %s (0x%02x)",
				     zm_rec_type_name(rec->type), rec->type);
		return;
	}
	if (!client_admit(c, rec))
		return;

	switch (rec->type) {
	case ZM_REC_MONITOR_PROC: {
		struct zm_monitor_proc m;

		if (zm_dec_monitor_proc(rec, &m) < 0)
			goto short_body;
		monitor_proc(a, c, &m);
		return;
	}
	case ZM_REC_MONITOR_PIDFD: {
		struct zm_monitor_pidfd m;

		if (zm_dec_monitor_pidfd(rec, &m) < 0)
			goto short_body;
		monitor_pidfd(a, c, &m, client_take_fd(c));
		return;
	}
	case ZM_REC_MONITOR_TCP: {
		struct zm_monitor_tcp m;

		if (zm_dec_monitor_tcp(rec, &m) < 0)
			goto short_body;
		monitor_tcp(a, c, &m, m.by == ZM_TCP_BY_FD ? client_take_fd(c) : -1);
		return;
	}
	case ZM_REC_DEMONITOR: {
		struct zm_demonitor m;

		if (zm_dec_demonitor(rec, &m) < 0)
			goto short_body;
		monitor_demonitor(a, c, &m);
		return;
	}
	case ZM_REC_SYNC:
		if (zm_dec_u64(rec, &token) < 0)
			goto short_body;
		/* The barrier covers the kernel's side too: the watches of
		 * targets demonitored before it leave the map now, not after
		 * this pass's answers are sent, so that what bpftool shows
		 * agrees with what the client was told. */
		kwatch_flush_deletes(a->kw);
		client_queue(c, ZM_REC_SYNCED, body, zm_enc_u64(body, token));
		return;
	case ZM_REC_STATUS: {
		struct zm_buf text = { 0 };
		uint8_t tok[8];

		if (zm_dec_u64(rec, &token) < 0)
			goto short_body;
		zm_enc_u64(tok, token);
		if (zm_buf_append(&text, tok, sizeof(tok)) < 0 || status_text(a, &text) < 0 ||
		    client_queue(c, ZM_REC_STATUS_REPLY, zm_buf_head(&text), zm_buf_pending(&text)) < 0)
			client_error(c, 0, rec->type, ENOMEM, "cannot build the status reply");
		zm_buf_free(&text);
		return;
	}
	case ZM_REC_STATS:
		if (zm_dec_u64(rec, &token) < 0)
			goto short_body;
		report_stats(a, c, token);
		return;
	case ZM_REC_TARGETS: {
		struct zm_targets m;

		if (zm_dec_targets(rec, &m) < 0)
			goto short_body;
		report_targets(a, c, &m);
		return;
	}
	case ZM_REC_HELLO:
		client_fatal(c, EPROTO, "HELLO sent twice");
		return;
	default:
		client_fatal(c, EPROTO, "unknown record type 0x%02x", rec->type);
		return;
	}

short_body:
	client_fatal(c, EBADMSG, "%s record body is %u bytes, shorter than its fixed part",
		     zm_rec_type_name(rec->type), rec->len);
}

/*
 * A pipeline of thousands of MONITORs each looks its reference up in a
 * table of up to millions: two dependent cache misses per request (bucket,
 * then entry), which were a third of the agent's time registering a million
 * monitors. So the records PREFETCH_FAR ahead have their bucket loaded, and
 * those PREFETCH_NEAR ahead their entry (registry_prefetch_ref()), while the
 * requests before them are handled. The distances cover a miss's latency
 * with a request's work (about a microsecond) to spare.
 */
#define PREFETCH_NEAR 4
#define PREFETCH_FAR 8

struct prefetcher {
	struct zm_record_iter it[2];     /* [0]: PREFETCH_FAR ahead, [1]: PREFETCH_NEAR */
};

/* The records whose body starts with a reference of this connection. */
static bool record_has_ref(uint16_t type)
{
	return type == ZM_REC_MONITOR_PROC || type == ZM_REC_MONITOR_PIDFD ||
	       type == ZM_REC_MONITOR_TCP || type == ZM_REC_DEMONITOR;
}

/* Advance stage's iterator by one record and prefetch for it, if it has one. */
static void prefetch_one(struct client *c, struct prefetcher *p, int stage)
{
	struct zm_record rec;
	uint64_t ref;

	if (zm_record_next(&p->it[stage], &rec) > 0 && record_has_ref(rec.type) &&
	    zm_dec_u64(&rec, &ref) == 0)
		registry_prefetch_ref(c->a->reg, c->sub, ref, stage);
}

static void prefetch_start(struct client *c, const struct zm_frame *f, struct prefetcher *p)
{
	zm_record_iter_init(&p->it[0], f);
	zm_record_iter_init(&p->it[1], f);
	for (int i = 0; i < PREFETCH_FAR; i++)
		prefetch_one(c, p, 0);
	for (int i = 0; i < PREFETCH_NEAR; i++)
		prefetch_one(c, p, 1);
}

static void prefetch_step(struct client *c, struct prefetcher *p)
{
	prefetch_one(c, p, 0);
	prefetch_one(c, p, 1);
}

/* Parse and handle every whole frame in the input buffer. */
static void client_parse(struct client *c)
{
	while (!c->closing) {
		struct zm_frame f;
		struct zm_record_iter it;
		struct prefetcher ahead;
		struct zm_record rec;
		int r = zm_frame_parse(zm_buf_head(&c->in), zm_buf_pending(&c->in), ZM_FRAME_MAX, &f);

		if (r == 0)
			return;
		if (r == -EMSGSIZE) {
			client_fatal(c, EMSGSIZE, "frame of %u bytes is larger than the %u-byte maximum",
				     zm_buf_pending(&c->in) >= 4 ? (unsigned)(zm_buf_head(&c->in)[0] |
				     zm_buf_head(&c->in)[1] << 8 | zm_buf_head(&c->in)[2] << 16 |
				     (uint32_t)zm_buf_head(&c->in)[3] << 24) : 0, ZM_FRAME_MAX);
			return;
		}
		if (r < 0) {
			client_fatal(c, EBADMSG, "malformed frame header (bad magic or length)");
			return;
		}
		/* Check the whole frame before acting on any record of it. */
		zm_record_iter_init(&it, &f);
		while ((r = zm_record_next(&it, &rec)) > 0)
			;
		if (r < 0) {
			client_fatal(c, EBADMSG, "malformed frame: a record's length runs past the frame or the count is wrong");
			return;
		}
		c->a->metrics.frames_in++;
		zm_record_iter_init(&it, &f);
		prefetch_start(c, &f, &ahead);
		while (!c->closing && zm_record_next(&it, &rec) > 0) {
			prefetch_step(c, &ahead);
			client_record(c, &rec);
		}
		zm_buf_consume(&c->in, f.len);
	}
}

static void client_stash_fds(struct client *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;
		int *fds;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(cm);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, &fds[i], sizeof(fd));
			if (c->fd_count == CLIENT_MAX_FDS) {
				close(fd);
				if (!c->closing)
					client_fatal(c, ENOSPC, "more than %u passed fds wait for MONITOR_PIDFD records",
						     CLIENT_MAX_FDS);
				continue;
			}
			c->fds[(c->fd_head + c->fd_count) % CLIENT_MAX_FDS] = fd;
			c->fd_count++;
		}
	}
}

static void client_read(struct client *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLIENT_CMSG_FDS)];
		struct cmsghdr align;
	} cbuf;
	size_t budget = CLIENT_READ_BUDGET;

	/* Answers pile up in c->out until the loop's before-sleep flush: past
	 * max-queued-bytes-per-subscriber (or per uid), read no further in this
	 * pass either (client_update_events() then stops reading until they go
	 * out). */
	while (budget > 0 && client_may_read(c)) {
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
		ssize_t n;

		if (zm_buf_reserve(&c->in, CLIENT_READ_CHUNK) < 0) {
			client_close(c, "out of memory");
			return;
		}
		iov.iov_base = c->in.data + c->in.len;
		iov.iov_len = CLIENT_READ_CHUNK;
		n = recvmsg(c->src.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			client_close(c, strerror(errno));
			return;
		}
		client_stash_fds(c, &mh);
		if (mh.msg_flags & MSG_CTRUNC)
			client_fatal(c, EBADMSG, "too many fds in one message (at most %d)", CLIENT_CMSG_FDS);
		if (n == 0) {
			/* Handle what arrived whole, then go. */
			client_parse(c);
			if (zm_buf_pending(&c->in) > 0 && !c->closing)
				log_info("client %llu (%s): connection closed inside a frame (%zu bytes of it arrived)",
					 (unsigned long long)registry_sub_id(c->sub), c->name,
					 zm_buf_pending(&c->in));
			client_close(c, "end of stream");
			return;
		}
		c->in.len += (size_t)n;
		c->a->metrics.bytes_in += (size_t)n;
		budget -= (size_t)n < budget ? (size_t)n : budget;
		client_parse(c);
		client_update_events(c); /* count this chunk's answers for the uid */
	}
	client_update_events(c);
}

static void client_on_events(struct loop_source *src, uint32_t events)
{
	struct client *c = (struct client *)src;

	if (events & EPOLLOUT) {
		int r = client_write(c);

		if (r < 0) {
			client_close(c, strerror(-r));
			return;
		}
		if (c->closing && zm_buf_pending(&c->out) == 0) {
			client_close(c, "protocol error");
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c);
}

int client_status_lines(struct agent *a, struct zm_buf *out, size_t max_len)
{
	for (struct client *c = a->clients; c; c = c->next) {
		char line[256];
		int n = snprintf(line, sizeof(line),
				 "subscriber id=%llu name=%s pid=%d uid=%u monitors=%zu queued=%zu rate=%u "
				 "batch=%u sent=%llu\n",
				 (unsigned long long)registry_sub_id(c->sub), c->name, (int)c->cred.pid,
				 client_uid(c),
				 registry_sub_monitors(c->sub), registry_sub_queued(c->sub),
				 c->ds.lim.rate, c->ds.lim.max_batch, (unsigned long long)c->downs_sent);

		/* The text must fit one record: end after the last whole line. */
		if (zm_buf_pending(out) + (size_t)n > max_len)
			break;
		if (zm_buf_append(out, line, (size_t)n) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- delivery ------------------------------------------------------------ */

static struct client *client_of_ds(struct dsub *ds)
{
	return (struct client *)((char *)ds - offsetof(struct client, ds));
}

static uint64_t client_ds_queued(struct dsub *ds)
{
	return registry_sub_queued(client_of_ds(ds)->sub);
}

static uint64_t client_ds_oldest_ns(struct dsub *ds)
{
	return registry_sub_oldest_ns(client_of_ds(ds)->sub);
}

static bool client_ds_writable(struct dsub *ds)
{
	struct client *c = client_of_ds(ds);

	return !c->closing && !c->write_error && zm_buf_pending(&c->out) < CLIENT_OUT_WRITABLE;
}

/*
 * Send up to n queued DOWNs as one frame. The write happens here, not in
 * the before-sleep flush, so that a batch leaves as soon as it is decided and
 * the socket's own back-pressure is seen before the next batch is built.
 */
static uint32_t client_ds_send(struct dsub *ds, uint32_t n)
{
	struct client *c = client_of_ds(ds);
	struct agent *a = c->a;
	uint8_t body[ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN];
	size_t got;
	int r;

	if (n > a->opts.max_batch)
		n = a->opts.max_batch;
	got = registry_sub_pop(a->reg, c->sub, a->scratch, n);
	zm_frame_end(&c->w); /* DOWNs start a frame of their own */
	if (got)
		metrics_hist_observe(&a->metrics.batch, got);
	for (size_t i = 0; i < got; i++) {
		r = zm_frame_add(&c->w, ZM_REC_DOWN, body, zm_enc_down(body, &a->scratch[i]));
		if (r < 0) {
			/* Popped but not queued: lost. Only memory exhaustion gets
			 * here; say so loudly, and drop the client so that it sees
			 * a broken connection rather than a silent gap. */
			log_error("client %llu (%s): out of memory queueing %zu DOWNs; disconnecting it",
				  (unsigned long long)registry_sub_id(c->sub), c->name, got - i);
			c->write_error = -ENOMEM;
			client_mark_dirty(c);
			break;
		}
		metrics_down_delivered(&a->metrics, a->scratch[i].reason);
	}
	zm_frame_end(&c->w);
	metrics_record_out(&a->metrics, ZM_REC_DOWN, got);
	c->downs_sent += got;
	a->downs_sent += got;
	if (!c->write_error) {
		r = client_write(c);
		if (r < 0) {
			c->write_error = r; /* closed by client_flush_all(), outside the dispatcher */
			client_mark_dirty(c);
		}
	}
	return (uint32_t)got;
}

const struct dispatch_ops client_dispatch_ops = {
	.queued = client_ds_queued,
	.oldest_ns = client_ds_oldest_ns,
	.writable = client_ds_writable,
	.send = client_ds_send,
};

void client_on_queued(void *ctx, struct reg_sub *s)
{
	struct agent *a = ctx;
	struct client *c = registry_sub_owner(s);

	if (c->in_dispatcher) {
		dispatch_wake(&a->dispatcher, &c->ds);
		a->dispatch_due = true;
	}
}

/*
 * Let the socket take n more bytes than it holds now. Past net.core.wmem_max
 * only SO_SNDBUFFORCE can, with CAP_NET_ADMIN, which the agent keeps
 * permitted but raises for this call alone (priv.c).
 */
static void client_grow_sndbuf(struct client *c, size_t n)
{
	int cur = 0, want, raised;
	socklen_t len = sizeof(cur);

	if (getsockopt(c->src.fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) < 0)
		return;
	/* The kernel doubles what it is given and reports the doubled value. */
	want = cur / 2 + (int)n + 4096;
	raised = priv_raise(CAP_NET_ADMIN);
	if (raised < 0 || setsockopt(c->src.fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) < 0)
		setsockopt(c->src.fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	if (raised == 1)
		priv_lower(CAP_NET_ADMIN);
}

/* Disconnect, after a last ERROR if the socket takes it whole. */
static void client_drop(struct client *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void client_drop(struct client *c, int code, const char *fmt, ...)
{
	char msg[ZM_MSG_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("disconnecting subscriber %llu (%s): %s", (unsigned long long)registry_sub_id(c->sub),
		 c->name, msg);
	c->a->subscribers_dropped++;
	/*
	 * Its socket is full, and our buffer holds more frames behind it. Keep
	 * only the rest of the frame already half sent (the stream must stay
	 * whole), put the ERROR right after it, and make room in the socket for
	 * both, so that the client reads why it was dropped after the DOWNs it
	 * already has. The DOWNs cut here were never delivered: the client
	 * learns that from the ERROR.
	 */
	zm_frame_end(&c->w);
	c->out.len = c->out.off + c->head_left;
	zm_frame_writer_init(&c->w, &c->out);
	client_error(c, 0, 0, code, "%s", msg);
	zm_frame_end(&c->w);
	client_grow_sndbuf(c, zm_buf_pending(&c->out));
	client_write(c);
	client_close(c, msg);
}

/*
 * A subscriber keeps what it was granted in WELCOME, lowered to the caps in
 * force (a reload may have lowered them); never raised, since it may have
 * asked for exactly what it got. Its bucket restarts with the new rate.
 */
size_t client_apply_caps(struct agent *a)
{
	const struct agent_opts *o = &a->opts;
	uint64_t now = agent_now_ns(CLOCK_MONOTONIC);
	size_t n = 0;

	for (struct client *c = a->clients; c; c = c->next) {
		struct pace_limits lim = c->ds.lim;

		if (!c->in_dispatcher)
			continue;
		lim.rate = min_nonzero(lim.rate, o->max_rate);
		lim.max_batch = min_nonzero(lim.max_batch, o->max_batch);
		if (lim.rate == c->ds.lim.rate && lim.max_batch == c->ds.lim.max_batch)
			continue;
		lim.burst = lim.rate && lim.rate < lim.max_batch ? lim.rate : lim.max_batch;
		dispatch_set_limits(&a->dispatcher, &c->ds, &lim, now);
		dispatch_wake(&a->dispatcher, &c->ds);
		n++;
	}
	return n;
}

void client_check_limits(struct agent *a, uint64_t now_ns)
{
	const struct agent_opts *o = &a->opts;
	struct client *next;

	for (struct client *c = a->clients; c; c = next) {
		next = c->next;
		if (o->stall_timeout_s && c->blocked_since_ns &&
		    now_ns - c->blocked_since_ns > o->stall_timeout_s * 1000000000ULL)
			client_drop(c, ETIMEDOUT,
				    "it read nothing for %u s while %zu DOWNs waited (--stall-timeout)",
				    o->stall_timeout_s, registry_sub_queued(c->sub));
		else if (o->max_queued && registry_sub_queued(c->sub) > o->max_queued)
			client_drop(c, ENOBUFS, "%zu DOWNs wait for it, more than --max-queued %u",
				    registry_sub_queued(c->sub), o->max_queued);
	}
}
