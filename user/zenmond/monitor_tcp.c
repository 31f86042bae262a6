// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * TCP connection monitors: a target is a socket, named by its cookie (the
 * kernel's never-reused socket id). The order that makes registration
 * race-free is the one processes use (monitor.c): name the socket, arm the
 * kernel watch, and only then check that the connection is still open. One
 * that closed before the watch existed is resolved here: from the kernel
 * map if the close was seen after all, else as noconnection.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "sockdiag.h"

static struct reg_key tcp_key(uint64_t cookie)
{
	return (struct reg_key){ .kind = ZM_TARGET_TCP, .a = cookie };
}

/* States in which the connection still carries data or is closing
 * normally: its move to TCP_CLOSE is still to come. */
static bool tcp_state_open(uint8_t state)
{
	switch (state) {
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSE_WAIT:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		return true;
	default:
		return false;
	}
}

static void endpoints_from_tuple(struct sockdiag_tuple *s, const struct zm_tcp_tuple *t)
{
	memset(s, 0, sizeof(*s));
	s->local.family = s->remote.family = t->family;
	memcpy(s->local.addr, t->saddr, sizeof(s->local.addr));
	memcpy(s->remote.addr, t->daddr, sizeof(s->remote.addr));
	s->local.port = t->sport;
	s->remote.port = t->dport;
}

static void queue_noconnection(struct agent *a, struct client *c, uint64_t ref, uint64_t cookie,
			       const struct zm_tcp_tuple *t)
{
	struct reg_key key = tcp_key(cookie);
	struct zm_down d = {
		.time_ns = agent_now_ns(CLOCK_REALTIME),
		.kind = ZM_TARGET_TCP,
		.reason = ZM_REASON_NOCONNECTION,
		.start_ticks = cookie,
	};

	if (t)
		d.tuple = *t;
	monitor_queue_gone(a, c, ref, &key, &d, ZM_REC_MONITOR_TCP);
}

/* The connection is gone or not open: fire its target with the best reason. */
static void tcp_resolve_gone(struct agent *a, uint64_t cookie, const struct zm_tcp_tuple *t)
{
	struct reg_key key = tcp_key(cookie);
	struct zm_tcp_watch w;
	struct zm_down d = { .kind = ZM_TARGET_TCP, .start_ticks = cookie };

	if (t)
		d.tuple = *t;
	if (kwatch_lookup_tcp(a->kw, cookie, &w) == 0 && w.state == ZM_WATCH_FIRED) {
		d.time_ns = monitor_boot_to_realtime(w.close_ns);
		d.reason = ZM_REASON_TCP_CLOSED;
		d.tcp_how = w.how;
		d.tcp_old_state = w.old_state;
		d.value = w.sk_err;
	} else {
		d.time_ns = agent_now_ns(CLOCK_REALTIME);
		d.reason = ZM_REASON_NOCONNECTION;
	}
	if (monitor_fire(a, &key, &d))
		monitor_forget_kernel(a, &key);
}

/*
 * Add the monitor on cookie; for a new target arm the watch, then ask
 * recheck() whether the connection is still open. recheck returns 1 open,
 * 0 not open or gone. owner, if known, is stored on the target for the
 * access checks of later monitors (NULL: not known).
 */
static void tcp_watch(struct agent *a, struct client *c, uint64_t ref, uint64_t cookie,
		      const struct zm_tcp_tuple *t, int (*recheck)(const void *arg, uint64_t cookie),
		      const void *arg, const struct reg_owner *owner)
{
	struct reg_key key = tcp_key(cookie);
	bool new_target;
	int r;

	r = registry_monitor_add(a->reg, client_sub(c), ref, &key, &new_target);
	if (r < 0) {
		client_error(c, ref, ZM_REC_MONITOR_TCP, -r, "cannot add the monitor: %s", strerror(-r));
		return;
	}
	if (owner)
		registry_target_set_owner(a->reg, &key, owner);
	if (!new_target) {
		monitor_confirm(a, c, ref, &key, false);
		return;
	}
	adopt_claim(a, &key);
	r = kwatch_add_tcp(a->kw, cookie);
	if (r < 0 && r != -EEXIST) {
		registry_monitor_remove(a->reg, client_sub(c), ref);
		if (r == -E2BIG)
			client_error(c, ref, ZM_REC_MONITOR_TCP, ENOSPC,
				     "the kernel socket watch map is full; demonitor some first");
		else
			client_error(c, ref, ZM_REC_MONITOR_TCP, -r,
				     "cannot arm the kernel watch for socket %llu: %s",
				     (unsigned long long)cookie, strerror(-r));
		return;
	}
	monitor_confirm(a, c, ref, &key, false);
	if (recheck(arg, cookie) != 1)
		tcp_resolve_gone(a, cookie, t);
}

static int recheck_fd(const void *arg, uint64_t cookie)
{
	uint64_t again;
	uint8_t state;

	return sockdiag_cookie_of_fd(*(const int *)arg, &again, &state) == 0 && again == cookie &&
	       tcp_state_open(state);
}

static int recheck_tuple(const void *arg, uint64_t cookie)
{
	uint64_t again;
	uint8_t state;

	return sockdiag_lookup(arg, &again, &state) == 0 && again == cookie && tcp_state_open(state);
}

static int recheck_cookie(const void *arg, uint64_t cookie)
{
	uint8_t state;

	return sockdiag_cookie_state(cookie, &state) == 0 && tcp_state_open(state);
}

static bool sockaddr_endpoint(const struct sockaddr_storage *ss, uint8_t addr[16], uint16_t *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		memcpy(addr, &sin->sin_addr, 4);
		*port = ntohs(sin->sin_port);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		memcpy(addr, &sin6->sin6_addr, 16);
		*port = ntohs(sin6->sin6_port);
		return true;
	}
	return false;
}

static void tcp_fd_endpoints(int fd, struct zm_tcp_tuple *t)
{
	struct sockaddr_storage local, remote;
	socklen_t llen = sizeof(local), rlen = sizeof(remote);

	memset(t, 0, sizeof(*t));
	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0 ||
	    getpeername(fd, (struct sockaddr *)&remote, &rlen) < 0 ||
	    local.ss_family != remote.ss_family ||
	    !sockaddr_endpoint(&local, t->saddr, &t->sport) ||
	    !sockaddr_endpoint(&remote, t->daddr, &t->dport)) {
		memset(t, 0, sizeof(*t));
		return;
	}
	t->family = (uint8_t)local.ss_family;
}

/* May restricted client c monitor a socket of uid owner (access.h)? If not,
 * c has its ERROR EPERM. */
static bool tcp_owner_ok(struct client *c, uint64_t ref, uint64_t cookie, uint32_t owner)
{
	struct reg_owner o = { .ruid = owner, .suid = owner };

	if (client_unrestricted(c) || access_owns(client_uid(c), &o))
		return true;
	client_error(c, ref, ZM_REC_MONITOR_TCP, EPERM,
		     "socket %llu belongs to uid %u: uid %u may monitor only its own sockets (pass "
		     "the socket itself, or have allow-uids or allow-groups name it)",
		     (unsigned long long)cookie, owner, client_uid(c));
	return false;
}

/*
 * BY_COOKIE for a restricted client: the owner stored on the target, else
 * the socket's, found by walking the sockets (once per target: it is then
 * stored). true to go on, with *ret_owner set when it was looked up;
 * false when c has its answer (EPERM, noconnection, an error).
 */
static bool tcp_cookie_owner_ok(struct agent *a, struct client *c, uint64_t ref, uint64_t cookie,
				struct reg_owner *ret_owner, bool *ret_have)
{
	struct reg_key key = tcp_key(cookie);
	struct sockdiag_sock s;
	struct reg_owner o;
	int r;

	if (registry_target_owner(a->reg, &key, &o) == 0 && access_owns(client_uid(c), &o))
		return true;
	r = sockdiag_cookie_sock(cookie, &s);
	if (r == -ENOENT || (r == 0 && !tcp_state_open(s.state))) {
		queue_noconnection(a, c, ref, cookie, NULL);
		return false;
	}
	if (r < 0) {
		client_error(c, ref, ZM_REC_MONITOR_TCP, -r,
			     "cannot look the socket up to tell who owns it: %s", strerror(-r));
		return false;
	}
	*ret_owner = (struct reg_owner){ .ruid = s.uid, .suid = s.uid };
	*ret_have = true;
	return tcp_owner_ok(c, ref, cookie, s.uid);
}

static void monitor_tcp_fd(struct agent *a, struct client *c, uint64_t ref, int fd)
{
	struct zm_tcp_tuple t = { 0 };
	struct reg_owner owner;
	struct stat sb;
	uint64_t cookie;
	uint8_t state;
	int r;

	r = sockdiag_cookie_of_fd(fd, &cookie, &state);
	if (r == -ENOTSOCK || r == -EPROTOTYPE || r == -EBADF) {
		client_error(c, ref, ZM_REC_MONITOR_TCP, -r, "%s",
			     r == -ENOTSOCK ? "the file descriptor passed is not a socket" :
			     r == -EPROTOTYPE ? "the socket passed is not a TCP socket (AF_INET/AF_INET6, SOCK_STREAM)" :
			     "the file descriptor passed is not valid");
		return;
	}
	if (r < 0) {
		client_error(c, ref, ZM_REC_MONITOR_TCP, -r, "cannot read the socket's cookie: %s",
			     strerror(-r));
		return;
	}
	/* The endpoints, for the DOWN of a connection that is not open (the
	 * kernel record carries them otherwise). Unknown stays family 0. */
	tcp_fd_endpoints(fd, &t);
	if (!tcp_state_open(state)) {
		queue_noconnection(a, c, ref, cookie, &t);
		return;
	}
	/* Passing the socket proves access (access.h). Its inode's owner is
	 * what sock_diag reports: keep it for monitors by cookie. */
	if (fstat(fd, &sb) == 0) {
		owner = (struct reg_owner){ .ruid = (uint32_t)sb.st_uid, .suid = (uint32_t)sb.st_uid };
		tcp_watch(a, c, ref, cookie, &t, recheck_fd, &fd, &owner);
	} else {
		tcp_watch(a, c, ref, cookie, &t, recheck_fd, &fd, NULL);
	}
}

void monitor_tcp(struct agent *a, struct client *c, const struct zm_monitor_tcp *m, int fd)
{
	struct sockdiag_tuple st;
	struct sockdiag_sock sock;
	struct reg_owner owner;
	bool have_owner = false;
	int r;

	if (m->by == ZM_TCP_BY_FD && fd < 0) {
		client_error(c, m->ref, ZM_REC_MONITOR_TCP, EBADF,
			     "no file descriptor came with this MONITOR_TCP record "
			     "(send the socket as SCM_RIGHTS with the frame that holds the record)");
		return;
	}
	if (!monitor_check_ref(a, c, m->ref, ZM_REC_MONITOR_TCP))
		goto out;
	if (m->flags & ~ZM_MON_RESUME) {
		client_error(c, m->ref, ZM_REC_MONITOR_TCP, EINVAL, "unknown flags 0x%x", m->flags);
		goto out;
	}
	if ((m->flags & ZM_MON_RESUME) && m->by != ZM_TCP_BY_COOKIE) {
		client_error(c, m->ref, ZM_REC_MONITOR_TCP, EINVAL,
			     "RESUME needs BY_COOKIE: a monitor is brought back by socket cookie");
		goto out;
	}
	/* Brought back from an agent that went away: a close recorded meanwhile
	 * is its DOWN (adopt.c), as for processes. */
	if ((m->flags & ZM_MON_RESUME) && m->cookie != 0) {
		struct reg_key key = tcp_key(m->cookie);
		struct zm_down d;

		struct reg_owner o;
		bool has_o;

		/* For a restricted client, only of a socket that was its own
		 * (the kernel records sk_uid with the close; monitor_proc()). */
		if (adopt_death(a, &key, &d, &o, &has_o) && monitor_may_learn(c, &o, has_o)) {
			monitor_queue_gone(a, c, m->ref, &key, &d, ZM_REC_MONITOR_TCP);
			goto out;
		}
	}
	a->confirm_ref = client_resumable(c) && m->by != ZM_TCP_BY_COOKIE ? m->ref : 0;
	switch (m->by) {
	case ZM_TCP_BY_FD:
		monitor_tcp_fd(a, c, m->ref, fd);
		break;
	case ZM_TCP_BY_COOKIE:
		if (m->cookie == 0) {
			client_error(c, m->ref, ZM_REC_MONITOR_TCP, EINVAL, "socket cookie 0 names no socket");
			break;
		}
		if (!client_unrestricted(c) &&
		    !tcp_cookie_owner_ok(a, c, m->ref, m->cookie, &owner, &have_owner))
			break;
		tcp_watch(a, c, m->ref, m->cookie, NULL, recheck_cookie, NULL,
			  have_owner ? &owner : NULL);
		break;
	case ZM_TCP_BY_TUPLE:
		if (m->tuple.family != AF_INET && m->tuple.family != AF_INET6) {
			client_error(c, m->ref, ZM_REC_MONITOR_TCP, EINVAL,
				     "address family %u is neither AF_INET (2) nor AF_INET6 (10)",
				     m->tuple.family);
			break;
		}
		endpoints_from_tuple(&st, &m->tuple);
		r = sockdiag_lookup_sock(&st, &sock);
		if (r == -ENOENT || (r == 0 && !tcp_state_open(sock.state))) {
			queue_noconnection(a, c, m->ref, r == 0 ? sock.cookie : 0, &m->tuple);
			break;
		}
		if (r < 0) {
			client_error(c, m->ref, ZM_REC_MONITOR_TCP, -r, "cannot look the connection up: %s",
				     strerror(-r));
			break;
		}
		if (!tcp_owner_ok(c, m->ref, sock.cookie, sock.uid))
			break;
		owner = (struct reg_owner){ .ruid = sock.uid, .suid = sock.uid };
		tcp_watch(a, c, m->ref, sock.cookie, &m->tuple, recheck_tuple, &st, &owner);
		break;
	default:
		client_error(c, m->ref, ZM_REC_MONITOR_TCP, EINVAL,
			     "unknown way %u to name a connection (1 fd, 2 cookie, 3 tuple)", m->by);
		break;
	}
out:
	a->confirm_ref = 0;
	if (fd >= 0)
		close(fd);
}

bool monitor_on_tcp_event(void *ctx, const struct zm_tcp_event *ev)
{
	struct agent *a = ctx;
	struct reg_key key = tcp_key(ev->cookie);
	struct zm_down d = {
		.time_ns = monitor_boot_to_realtime(ev->close_ns),
		.kind = ZM_TARGET_TCP,
		.reason = ZM_REASON_TCP_CLOSED,
		.value = ev->sk_err,
		.start_ticks = ev->cookie,
		.tcp_how = ev->how,
		.tcp_old_state = ev->old_state,
	};

	d.tuple.family = (uint8_t)ev->family;
	memcpy(d.tuple.saddr, ev->saddr, sizeof(d.tuple.saddr));
	memcpy(d.tuple.daddr, ev->daddr, sizeof(d.tuple.daddr));
	d.tuple.sport = ev->sport;
	d.tuple.dport = ev->dport;
	return monitor_kernel_death(a, &key, &d);
}
