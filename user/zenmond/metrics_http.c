// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The /metrics listener: libmicrohttpd in the agent's own loop, so the agent
 * stays one thread. MHD runs without a thread of its own (MHD_USE_EPOLL and
 * no internal polling): its epoll fd sits in the agent's epoll set, a
 * timerfd wakes it when MHD_get_timeout() says a connection times out or
 * has work buffered, and every MHD_run() happens from those two callbacks.
 * A scrape renders the metrics right there, in the loop, as STATS does.
 *
 * We make the listening socket ourselves, so that a failure to bind is told
 * in words (address in use, no such address here) before MHD gets it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <microhttpd.h>

#include "agent.h"
#include "log.h"
#include "sockdiag.h"

#define HTTP_DEFAULT_HOST "127.0.0.1"
#define HTTP_MAX_CONNECTIONS 16U    /* scrapers are few; a flood must not cost fds */
#define HTTP_TIMEOUT_S 10U          /* an idle or stuck scrape is closed after this */
#define HTTP_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
	struct agent *a;
	struct MHD_Daemon *d;
	struct loop_source ep_src;      /* MHD's epoll fd (MHD owns it) */
	struct loop_source timer_src;   /* when MHD must run without an event */
	char where[80];                 /* "127.0.0.1:9464", for messages */
};

int metrics_http_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
			      char *err, size_t errlen)
{
	struct sockdiag_endpoint e;
	char buf[96];

	/* "9464" and ":9464" mean the loopback address: opt-in, not open. */
	if (s[0] == ':')
		s++;
	if (s[0] && strspn(s, "0123456789") == strlen(s)) {
		snprintf(buf, sizeof(buf), "%s:%s", HTTP_DEFAULT_HOST, s);
		s = buf;
	} else if (strncmp(s, "localhost:", 10) == 0) {
		snprintf(buf, sizeof(buf), "%s:%s", HTTP_DEFAULT_HOST, s + 10);
		s = buf;
	}
	if (sockdiag_parse_endpoint(s, &e) < 0) {
		snprintf(err, errlen, "invalid --metrics-listen '%s': give HOST:PORT with a numeric "
			 "address and a port from 1 to 65535, such as 127.0.0.1:9464 or [::1]:9464", s);
		return -EINVAL;
	}
	memset(ret, 0, sizeof(*ret));
	if (e.family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ret;

		in->sin_family = AF_INET;
		in->sin_port = htons(e.port);
		memcpy(&in->sin_addr, e.addr, sizeof(in->sin_addr));
		*ret_len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(e.port);
		memcpy(&in6->sin6_addr, e.addr, sizeof(in6->sin6_addr));
		*ret_len = sizeof(*in6);
	}
	return 0;
}

static bool http_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* MHD's complaints, one log line each. */
static void http_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	log_warn("metrics listener: %s", msg);
}

static enum MHD_Result http_respond(struct MHD_Connection *conn, unsigned int status,
				    const char *type, void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result r;

	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
				       const char *method, const char *version,
				       const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	static char not_found[] = "Not found: zenmond serves its metrics at /metrics\n";
	static char not_allowed[] = "Method not allowed: GET /metrics\n";
	struct metrics_http *h = cls;
	struct zm_buf text = { 0 };

	if (strcmp(url, "/metrics") != 0)
		return http_respond(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", not_found,
				    sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return http_respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
				    not_allowed, sizeof(not_allowed) - 1, MHD_RESPMEM_PERSISTENT);
	if (report_metrics(h->a, &text) < 0) {
		static char oom[] = "zenmond ran out of memory rendering its metrics\n";

		zm_buf_free(&text);
		log_warn("metrics listener: out of memory rendering the metrics for a scrape");
		return http_respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
				    oom, sizeof(oom) - 1, MHD_RESPMEM_PERSISTENT);
	}
	/* The text starts at offset 0 (only ever appended to): MHD frees it. */
	return http_respond(conn, MHD_HTTP_OK, HTTP_CONTENT_TYPE, text.data, text.len,
			    MHD_RESPMEM_MUST_FREE);
}

/* Run MHD, then set the timer for when it must run again without an event. */
static void http_run(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	struct itimerspec its = { 0 };

	MHD_run(h->d);
	if (MHD_get_timeout(h->d, &ms) == MHD_YES) {
		/* 0: work is buffered already; come back after the other events. */
		if (ms == 0)
			its.it_value.tv_nsec = 1000;
		else {
			its.it_value.tv_sec = (time_t)(ms / 1000);
			its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
		}
	}
	timerfd_settime(h->timer_src.fd, 0, &its, NULL);
}

static void http_on_epoll(struct loop_source *src, uint32_t events)
{
	http_run((struct metrics_http *)((char *)src - offsetof(struct metrics_http, ep_src)));
}

static void http_on_timer(struct loop_source *src, uint32_t events)
{
	struct metrics_http *h = (struct metrics_http *)((char *)src - offsetof(struct metrics_http, timer_src));
	uint64_t expirations;

	if (read(src->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("metrics timerfd read: %s", strerror(errno));
	http_run(h);
}

/* The listening socket, or -errno with the reason logged in words. */
static int http_listen(const struct sockaddr_storage *ss, socklen_t len, const char *where)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, r;
	const char *hint = "";

	if (fd < 0) {
		r = -errno;
		log_error("cannot create the metrics socket for %s: %s", where, strerror(-r));
		return r;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		if (r == -EADDRINUSE)
			hint = ": another program (or another zenmond) has that port; stop it or "
			       "choose another port with --metrics-listen";
		else if (r == -EADDRNOTAVAIL)
			hint = ": no interface of this host has that address; use one it has, "
			       "such as 127.0.0.1";
		else if (r == -EACCES)
			hint = ": ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a "
			       "higher one, such as 9464";
		else if (r == -EAFNOSUPPORT)
			hint = ": this host has no IPv6; use an IPv4 address";
		log_error("cannot listen for metrics on %s: %s%s", where, strerror(-r), hint);
		return r;
	}
	return fd;
}

int metrics_http_start(struct agent *a)
{
	struct metrics_http *h;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	char err[256], addr[INET6_ADDRSTRLEN];
	socklen_t len;
	int fd, r;

	if (metrics_http_parse_listen(a->opts.metrics_listen, &ss, &len, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -EINVAL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		log_error("cannot start the metrics listener: out of memory");
		return -ENOMEM;
	}
	h->a = a;
	h->ep_src.fd = h->timer_src.fd = -1;
	if (ss.ss_family == AF_INET6)
		snprintf(h->where, sizeof(h->where), "[%s]:%u",
			 inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr)),
			 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	else
		snprintf(h->where, sizeof(h->where), "%s:%u",
			 inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr)),
			 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	a->http = h;

	fd = http_listen(&ss, len, h->where);
	if (fd < 0) {
		metrics_http_stop(a);
		return fd;
	}
	h->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				http_on_request, h,
				/* first, so that MHD says nothing on stderr itself */
				MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS,
				MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S,
				MHD_OPTION_END);
	if (!h->d) {
		r = errno ? -errno : -EIO;
		close(fd);
		log_error("cannot start the metrics listener on %s: libmicrohttpd refused (%s)",
			  h->where, strerror(-r));
		metrics_http_stop(a);
		return r;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	h->ep_src.fd = info ? info->epoll_fd : -1;
	h->ep_src.fn = http_on_epoll;
	h->timer_src.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	h->timer_src.fn = http_on_timer;
	r = h->ep_src.fd < 0 ? -ENOTSUP : h->timer_src.fd < 0 ? -errno : 0;
	if (r == 0 && (r = loop_add(a->loop, &h->ep_src, EPOLLIN)) < 0)
		h->ep_src.fd = -1;   /* not in the loop: nothing to delete */
	if (r == 0)
		r = loop_add(a->loop, &h->timer_src, EPOLLIN);
	if (r < 0) {
		log_error("cannot serve metrics from the event loop: %s", strerror(-r));
		metrics_http_stop(a);
		return r;
	}
	if (!http_is_loopback(&ss))
		log_warn("metrics are served on %s, beyond this host: anyone who reaches that port "
			 "can read them (they name no client, but show the load)", h->where);
	log_info("serving metrics on http://%s/metrics", h->where);
	return 0;
}

void metrics_http_stop(struct agent *a)
{
	struct metrics_http *h = a->http;

	if (!h)
		return;
	if (h->ep_src.fd >= 0)
		loop_del(a->loop, &h->ep_src);   /* MHD closes it */
	if (h->timer_src.fd >= 0) {
		loop_del(a->loop, &h->timer_src);
		close(h->timer_src.fd);
	}
	if (h->d)
		MHD_stop_daemon(h->d);   /* closes the listening socket and every connection */
	free(h);
	a->http = NULL;
}
