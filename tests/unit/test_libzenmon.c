// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * libzenmon against a fake agent: a Unix socket in a temporary directory,
 * served by a thread for the handshake (zm_connect blocks for WELCOME) and
 * then, in most tests, driven step by step from the test itself, so every
 * byte the client sees arrives exactly when the test says. Tests that need
 * the agent to answer while the client blocks (zm_sync, zm_status) keep the
 * thread serving instead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "zenmon.h"
#include "zenmon/proto.h"
#include "../../user/libzenmon/refset.h"

/* ---- the fake agent ------------------------------------------------------ */

enum fake_mode {
	FAKE_WELCOME,        /* answer HELLO with WELCOME, then leave it to the test */
	FAKE_SERVE,          /* WELCOME, then answer SYNC/STATUS (and DOWN every MONITOR) */
	FAKE_HELLO_ERROR,    /* answer HELLO with ERROR(hello_error) */
	FAKE_GARBAGE,        /* answer HELLO with bytes that are no frame */
	FAKE_SILENT,         /* read HELLO, never answer */
	FAKE_CLOSE,          /* read HELLO, close without a word */
	FAKE_WELCOME_V2,     /* answer with a WELCOME of protocol version 2 */
};

struct frec {
	uint16_t type;
	uint16_t len;        /* body length */
	uint8_t body[128];   /* the first bytes of the body */
	int fd;              /* MONITOR_PIDFD, MONITOR_TCP by fd: the fd taken for it,
				-1 if none was there */
	size_t frame;        /* which frame (0, 1, ...) it came in */
};

struct fake {
	char dir[64];
	char path[96];
	int lfd, fd;
	enum fake_mode mode;
	int hello_error;
	uint32_t welcome_rate, welcome_batch, welcome_window_us;   /* WELCOME's limits */
	bool down_every_monitor;
	const char *status_text;
	pthread_t thread;
	bool thread_running;

	struct zm_buf in;
	int fds[8192];           /* fds received, not yet taken by a record */
	size_t fd_head, fd_len;
	struct frec *log;        /* every record received after HELLO */
	size_t n_log, cap_log;
	size_t n_frames;
	struct zm_hello hello;
	bool got_hello;
};

static void fake_stash_fds(struct fake *f, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			assert_true(f->fd_len < sizeof(f->fds) / sizeof(f->fds[0]));
			memcpy(&f->fds[f->fd_len++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		}
	}
}

/* One recvmsg() of at most chunk bytes. >0 bytes, 0 EOF, -EAGAIN, -errno. */
static ssize_t fake_recv(struct fake *f, size_t chunk, bool dontwait)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 253)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
	ssize_t n;

	if (zm_buf_reserve(&f->in, chunk) < 0)
		return -ENOMEM;
	iov.iov_base = f->in.data + f->in.len;
	iov.iov_len = chunk;
	n = recvmsg(f->fd, &mh, MSG_CMSG_CLOEXEC | (dontwait ? MSG_DONTWAIT : 0));
	if (n < 0)
		return -errno;
	if (mh.msg_flags & MSG_CTRUNC)
		return -EMSGSIZE;
	fake_stash_fds(f, &mh);
	f->in.len += (size_t)n;
	return n;
}

/* Does this request claim a passed fd? MONITOR_PIDFD, MONITOR_TCP by fd. */
static bool fake_takes_fd(const struct zm_record *rec)
{
	return rec->type == ZM_REC_MONITOR_PIDFD ||
	       (rec->type == ZM_REC_MONITOR_TCP && rec->len > 8 && rec->body[8] == ZM_TCP_BY_FD);
}

/* Parse one whole frame from the buffer into the log. Records in it, 0 if
 * no whole frame is buffered, -1 if it is malformed. */
static int fake_take_frame(struct fake *f)
{
	struct zm_frame fr;
	struct zm_record_iter it;
	struct zm_record rec;
	int r, n = 0;

	r = zm_frame_parse(zm_buf_head(&f->in), zm_buf_pending(&f->in), ZM_FRAME_MAX, &fr);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	zm_record_iter_init(&it, &fr);
	while ((r = zm_record_next(&it, &rec)) > 0) {
		struct frec *l;

		if (rec.type == ZM_REC_HELLO && !f->got_hello) {
			if (zm_dec_hello(&rec, &f->hello) < 0)
				return -1;
			f->got_hello = true;
			n++;
			continue;
		}
		if (f->n_log == f->cap_log) {
			f->cap_log = f->cap_log ? f->cap_log * 2 : 64;
			f->log = realloc(f->log, f->cap_log * sizeof(*f->log));
			if (!f->log)
				return -1;
		}
		l = &f->log[f->n_log++];
		l->type = rec.type;
		l->len = rec.len;
		memcpy(l->body, rec.body, rec.len < sizeof(l->body) ? rec.len : sizeof(l->body));
		l->fd = -1;
		l->frame = f->n_frames;
		/* Both fd-passing requests take from one queue, as the agent's do. */
		if (fake_takes_fd(&rec) && f->fd_head < f->fd_len)
			l->fd = f->fds[f->fd_head++];
		n++;
	}
	if (r < 0)
		return -1;
	f->n_frames++;
	zm_buf_consume(&f->in, fr.len);
	return n;
}

/* Block (up to 2 s) until one whole frame is in; its record count, or -1. */
static int fake_read_frame(struct fake *f)
{
	for (;;) {
		struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
		int r = fake_take_frame(f);

		if (r != 0)
			return r;
		if (poll(&pfd, 1, 2000) <= 0)
			return -1;
		if (fake_recv(f, 64 * 1024, true) <= 0)
			return -1;
	}
}

/* Write all of a buffer (blocking). */
static void fake_write(struct fake *f, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t k = send(f->fd, b, n, MSG_NOSIGNAL);

		assert_true(k > 0);
		b += k;
		n -= (size_t)k;
	}
}

/* Records go into f->outbuf through a writer; fake_send() writes them out. */
static struct zm_buf fake_out;
static struct zm_frame_writer fake_w;

static void fake_add(uint16_t type, const void *body, size_t len)
{
	if (!fake_w.buf)
		zm_frame_writer_init(&fake_w, &fake_out);
	assert_int_equal(zm_frame_add(&fake_w, type, body, len), 0);
}

static void fake_add_down(uint64_t ref, uint16_t reason, int32_t value, uint32_t flags,
			  uint32_t pid, uint64_t start_ticks, uint64_t time_ns)
{
	struct zm_down d = {
		.ref = ref, .time_ns = time_ns, .kind = ZM_TARGET_PROCESS, .reason = reason,
		.flags = flags, .value = value, .pid = pid, .start_ticks = start_ticks,
	};
	uint8_t body[ZM_DOWN_LEN];

	fake_add(ZM_REC_DOWN, body, zm_enc_down(body, &d));
}

/* A DOWN of kind TCP: d's kind is set here, the rest is the caller's. */
static void fake_add_tcp_down(struct zm_down d)
{
	uint8_t body[ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN];

	d.kind = ZM_TARGET_TCP;
	assert_int_equal(zm_enc_down(body, &d), sizeof(body));
	fake_add(ZM_REC_DOWN, body, sizeof(body));
}

static void fake_add_error(uint64_t ref, int code, uint16_t request, const char *msg)
{
	struct zm_error e = { .ref = ref, .code = code, .request = request };
	uint8_t body[ZM_ERROR_LEN + ZM_MSG_MAX];

	snprintf(e.message, sizeof(e.message), "%s", msg);
	fake_add(ZM_REC_ERROR, body, zm_enc_error(body, &e));
}

static void fake_add_u64(uint16_t type, uint64_t token)
{
	uint8_t body[8];

	fake_add(type, body, zm_enc_u64(body, token));
}

static void fake_send(struct fake *f)
{
	zm_frame_end(&fake_w);
	fake_write(f, zm_buf_head(&fake_out), zm_buf_pending(&fake_out));
	zm_buf_consume(&fake_out, zm_buf_pending(&fake_out));
}

static void fake_welcome_version(struct fake *f, uint32_t version)
{
	struct zm_welcome w = {
		.version = version,
		.max_frame = ZM_FRAME_MAX,
		.max_rate = f->welcome_rate,
		.max_batch = f->welcome_batch,
		.batch_window_us = f->welcome_window_us,
		.subscriber_id = 42,
	};
	uint8_t body[ZM_WELCOME_LEN + ZM_NAME_MAX];

	snprintf(w.agent_version, sizeof(w.agent_version), "fake 1.0");
	fake_add(ZM_REC_WELCOME, body, zm_enc_welcome(body, &w));
	fake_send(f);
}

static void fake_welcome(struct fake *f)
{
	fake_welcome_version(f, ZM_PROTO_VERSION);
}

/* Answer what a serving agent answers; false at EOF. */
static bool fake_serve_once(struct fake *f)
{
	size_t first = f->n_log;

	if (fake_read_frame(f) < 0)
		return false;
	for (size_t i = first; i < f->n_log; i++) {
		const struct frec *l = &f->log[i];
		struct zm_record rec = { .body = l->body, .type = l->type, .len = l->len };

		if (l->type == ZM_REC_MONITOR_PROC && f->down_every_monitor) {
			struct zm_monitor_proc m;

			assert_int_equal(zm_dec_monitor_proc(&rec, &m), 0);
			fake_add_down(m.ref, ZM_REASON_EXITED, 7, 0, m.pid, 0, 1);
		} else if (l->type == ZM_REC_SYNC) {
			uint64_t token;

			assert_int_equal(zm_dec_u64(&rec, &token), 0);
			fake_add_u64(ZM_REC_SYNCED, token);
		} else if (l->type == ZM_REC_STATUS) {
			uint8_t body[8 + 256];
			uint64_t token;
			size_t n = strlen(f->status_text);

			assert_int_equal(zm_dec_u64(&rec, &token), 0);
			zm_enc_u64(body, token);
			memcpy(body + 8, f->status_text, n);
			fake_add(ZM_REC_STATUS_REPLY, body, 8 + n);
		}
	}
	fake_send(f);
	return true;
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;

	f->fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (f->fd < 0)
		return NULL;
	if (fake_read_frame(f) < 0 || !f->got_hello)
		return NULL;
	f->n_frames = 0;   /* count frames after the HELLO */

	switch (f->mode) {
	case FAKE_WELCOME:
		fake_welcome(f);
		break;
	case FAKE_SERVE:
		fake_welcome(f);
		while (fake_serve_once(f))
			;
		break;
	case FAKE_HELLO_ERROR:
		fake_add_error(0, f->hello_error, ZM_REC_HELLO, "protocol version 1 is not supported");
		fake_send(f);
		break;
	case FAKE_GARBAGE:
		fake_write(f, "HTTP/1.0 400 Bad Request\r\n\r\n", 28);
		break;
	case FAKE_CLOSE:
		shutdown(f->fd, SHUT_RDWR);
		break;
	case FAKE_WELCOME_V2:
		fake_welcome_version(f, 2);
		break;
	case FAKE_SILENT: {
		char c;

		while (recv(f->fd, &c, 1, 0) > 0)
			;
		break;
	}
	}
	return NULL;
}

/* A fake that is not listening yet: set its fields, then fake_start(). */
static struct fake *fake_alloc(enum fake_mode mode)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mode = mode;
	return f;
}

static struct fake *fake_start(struct fake *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	f->fd = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/zm-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/zenmon.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 16), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_thread, f), 0);
	f->thread_running = true;
	return f;
}

static struct fake *fake_new(enum fake_mode mode)
{
	return fake_start(fake_alloc(mode));
}

static void fake_join(struct fake *f)
{
	if (f->thread_running) {
		pthread_join(f->thread, NULL);
		f->thread_running = false;
	}
}

static void fake_free(struct fake *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		shutdown(f->fd, SHUT_RDWR);
	fake_join(f);
	if (f->fd >= 0)
		close(f->fd);
	close(f->lfd);
	for (size_t i = f->fd_head; i < f->fd_len; i++)
		close(f->fds[i]);
	for (size_t i = 0; i < f->n_log; i++)
		if (f->log[i].fd >= 0)
			close(f->log[i].fd);
	free(f->log);
	zm_buf_free(&f->in);
	zm_buf_free(&fake_out);
	fake_w.buf = NULL;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
}

/* A fake in FAKE_WELCOME mode and a client connected to it. */
struct env {
	struct fake *f;
	struct zm_client *c;
};

static int env_setup(void **state)
{
	/* The fake agent is one connection: a client that reconnected after it
	 * hung up would find nobody (the reconnection is tested for real in
	 * tests/integration/test_restart.c). */
	struct zm_connect_options o = { .name = "unit-test", .flags = ZM_CONNECT_NO_RECONNECT };
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->f = fake_new(FAKE_WELCOME);
	o.socket_path = e->f->path;
	assert_int_equal(zm_connect_opts(&o, &e->c), 0);
	fake_join(e->f);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	zm_close(e->c);
	fake_free(e->f);
	free(e);
	return 0;
}

/* ---- callbacks ------------------------------------------------------------ */

struct seen {
	int downs;
	struct zm_down_info down[16];
	int errors;
	struct zm_error_info error;
	char message[ZM_MSG_MAX + 1];
	/* what on_down does besides recording */
	uint64_t demonitor_ref;
	int demonitor_r;
	int dispatch_r;
	bool try_dispatch;
};

static void on_down(struct zm_client *c, const struct zm_down_info *d, void *userdata)
{
	struct seen *s = userdata;

	if (s->downs < 16)
		s->down[s->downs] = *d;
	s->downs++;
	if (s->demonitor_ref)
		s->demonitor_r = zm_demonitor(c, s->demonitor_ref, ZM_DEMONITOR_FLUSH);
	if (s->try_dispatch)
		s->dispatch_r = zm_dispatch(c, on_down, userdata);
}

static void on_error(struct zm_client *c, const struct zm_error_info *err, void *userdata)
{
	struct seen *s = userdata;

	s->errors++;
	s->error = *err;
	snprintf(s->message, sizeof(s->message), "%s", err->message);
	s->error.message = s->message;
}

/* Dispatch until the client has read everything the fake sent (the fake
 * writes before this is called, so it is all in the socket already). */
static int dispatch_all(struct zm_client *c, struct seen *s)
{
	int total = 0;

	for (int i = 0; i < 100; i++) {
		struct pollfd pfd = { .fd = zm_fd(c), .events = POLLIN };
		int r = zm_wait(c, 10, on_down, s);

		if (r < 0)
			return r;
		total += r;
		if (r == 0 && poll(&pfd, 1, 0) == 0)
			break;
	}
	return total;
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static pid_t fdinfo_pid(int fd)
{
	char path[64], line[256];
	FILE *fp;
	int pid = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	fp = fopen(path, "re");
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "Pid:\t%d", &pid) == 1)
			break;
	fclose(fp);
	return pid;
}

static int count_open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* ---- connecting ------------------------------------------------------------ */

static void test_connect_exchanges_hello_and_welcome(void **state)
{
	struct fake *f = fake_new(FAKE_WELCOME);
	struct zm_client *c = NULL;

	assert_int_equal(zm_connect(f->path, "unit-test", &c), 0);
	fake_join(f);
	assert_non_null(c);
	assert_true(f->got_hello);
	assert_int_equal(f->hello.version, ZM_PROTO_VERSION);
	/* It will bring its monitors back after a restart: it asks for
	 * MONITORED records. */
	assert_int_equal(f->hello.flags, ZM_HELLO_RESUMABLE);
	assert_string_equal(f->hello.name, "unit-test");
	/* The socket it hands over is non-blocking and close-on-exec. */
	assert_true(fcntl(zm_fd(c), F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(zm_fd(c), F_GETFD) & FD_CLOEXEC);
	assert_int_equal(zm_pending(c), 0);
	assert_int_equal(zm_active_monitors(c), 0);
	zm_close(c);
	fake_free(f);
}

static void test_connect_without_reconnect_asks_for_no_monitored(void **state)
{
	struct fake *f = fake_new(FAKE_WELCOME);
	struct zm_connect_options o = { .name = "unit-test", .flags = ZM_CONNECT_NO_RECONNECT };
	struct zm_client *c = NULL;

	o.socket_path = f->path;
	assert_int_equal(zm_connect_opts(&o, &c), 0);
	fake_join(f);
	assert_int_equal(f->hello.flags, 0);
	assert_false(zm_reconnecting(c));
	zm_close(c);
	fake_free(f);
}

static void test_connect_default_name_is_libzenmon(void **state)
{
	struct fake *f = fake_new(FAKE_WELCOME);
	struct zm_client *c = NULL;

	assert_int_equal(zm_connect(f->path, NULL, &c), 0);
	fake_join(f);
	assert_string_equal(f->hello.name, "libzenmon");
	zm_close(c);
	fake_free(f);
}

static void test_hello_carries_pacing_options(void **state)
{
	struct fake *f = fake_new(FAKE_WELCOME);
	struct zm_connect_options o = {
		.socket_path = f->path, .name = "unit-test",
		.max_rate = 20000, .max_batch = 64, .batch_window_us = 2500,
	};
	struct zm_client *c = NULL;

	assert_int_equal(zm_connect_opts(&o, &c), 0);
	fake_join(f);
	assert_int_equal(f->hello.max_rate, 20000);
	assert_int_equal(f->hello.max_batch, 64);
	assert_int_equal(f->hello.batch_window_us, 2500);
	assert_int_equal(f->hello.reserved, 0);
	zm_close(c);
	fake_free(f);
}

static void test_hello_without_pacing_options_asks_for_agent_defaults(void **state)
{
	struct fake *f = fake_new(FAKE_WELCOME);
	struct zm_client *c = NULL;

	assert_int_equal(zm_connect(f->path, "unit-test", &c), 0);
	fake_join(f);
	assert_int_equal(f->hello.max_rate, 0);
	assert_int_equal(f->hello.max_batch, 0);
	assert_int_equal(f->hello.batch_window_us, 0);
	zm_close(c);
	fake_free(f);
}

static void test_limits_are_those_of_welcome(void **state)
{
	struct fake *f = fake_alloc(FAKE_WELCOME);
	struct zm_connect_options o = { .max_rate = 1000000, .max_batch = 100000 };
	struct zm_client *c = NULL;
	uint32_t rate = 1, batch = 1, window = 1;

	/* The agent clamps what was asked: the client reports the clamp. */
	f->welcome_rate = 20000;
	f->welcome_batch = 512;
	f->welcome_window_us = 1500;
	fake_start(f);
	o.socket_path = f->path;
	assert_int_equal(zm_connect_opts(&o, &c), 0);
	fake_join(f);
	assert_int_equal(zm_limits(c, &rate, &batch, &window), 0);
	assert_int_equal(rate, 20000);
	assert_int_equal(batch, 512);
	assert_int_equal(window, 1500);
	assert_int_equal(zm_limits(c, NULL, &batch, NULL), 0);
	assert_int_equal(zm_limits(NULL, &rate, &batch, &window), -EINVAL);
	zm_close(c);
	fake_free(f);
}

static void test_connect_missing_socket_gives_enoent(void **state)
{
	struct zm_client *c = (struct zm_client *)0x1;

	assert_int_equal(zm_connect("/tmp/zm-test-does-not-exist/zenmon.sock", "x", &c), -ENOENT);
	/* ret_client is untouched on failure. */
	assert_ptr_equal(c, (struct zm_client *)0x1);
}

static void test_connect_honours_zenmon_socket_env(void **state)
{
	struct fake *f = fake_new(FAKE_WELCOME);
	struct zm_client *c = NULL;

	setenv(ZM_SOCKET_ENV, f->path, 1);
	assert_int_equal(zm_connect(NULL, "from-env", &c), 0);
	unsetenv(ZM_SOCKET_ENV);
	fake_join(f);
	assert_string_equal(f->hello.name, "from-env");
	zm_close(c);
	fake_free(f);
}

static void test_connect_hello_error_gives_its_code(void **state)
{
	struct fake *f = fake_new(FAKE_HELLO_ERROR);
	struct zm_client *c = NULL;

	f->hello_error = EPROTONOSUPPORT;
	assert_int_equal(zm_connect(f->path, "x", &c), -EPROTONOSUPPORT);
	assert_null(c);
	fake_free(f);
}

static void test_connect_garbage_reply_gives_eproto(void **state)
{
	struct fake *f = fake_new(FAKE_GARBAGE);
	struct zm_client *c = NULL;

	assert_int_equal(zm_connect(f->path, "x", &c), -EPROTO);
	fake_free(f);
}

static void test_connect_refuses_welcome_of_unknown_version(void **state)
{
	struct fake *f = fake_new(FAKE_WELCOME_V2);
	struct zm_client *c = NULL;

	assert_int_equal(zm_connect(f->path, "x", &c), -EPROTO);
	fake_free(f);
}

static void test_connect_agent_closing_without_answer_gives_econnreset(void **state)
{
	struct fake *f = fake_new(FAKE_CLOSE);
	struct zm_client *c = NULL;

	assert_int_equal(zm_connect(f->path, "x", &c), -ECONNRESET);
	fake_free(f);
}

static void test_connect_silent_agent_times_out(void **state)
{
	struct fake *f = fake_new(FAKE_SILENT);
	struct zm_connect_options o = { .socket_path = f->path, .timeout_ms = 100 };
	struct zm_client *c = NULL;

	assert_int_equal(zm_connect_opts(&o, &c), -ETIMEDOUT);
	fake_free(f);
}

static void test_connect_rejects_overlong_name(void **state)
{
	char name[ZM_NAME_MAX + 2];
	struct zm_client *c = NULL;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(zm_connect("/nonexistent", name, &c), -EINVAL);
	assert_int_equal(zm_connect("/nonexistent", "x", NULL), -EINVAL);
}

static void test_close_accepts_null(void **state)
{
	zm_close(NULL);
}

/* ---- monitoring ------------------------------------------------------------ */

static void test_refs_are_distinct_and_nonzero(void **state)
{
	struct env *e = *state;
	uint64_t refs[300];

	for (int i = 0; i < 300; i++) {
		if (i % 2)
			assert_int_equal(zm_monitor_pid(e->c, 1000 + i, &refs[i]), 0);
		else
			assert_int_equal(zm_monitor_pid_start(e->c, 1000 + i, 77, &refs[i]), 0);
		assert_true(refs[i] != 0);
		for (int j = 0; j < i; j++)
			assert_true(refs[i] != refs[j]);
	}
	assert_int_equal(zm_active_monitors(e->c), 300);
}

static void test_monitor_requests_are_pipelined_in_one_frame(void **state)
{
	struct env *e = *state;
	uint64_t refs[100];

	for (int i = 0; i < 100; i++) {
		if (i % 2)
			assert_int_equal(zm_monitor_pid(e->c, 2000 + i, &refs[i]), 0);
		else
			assert_int_equal(zm_monitor_pid_start(e->c, 2000 + i, 5000 + i, &refs[i]), 0);
	}
	/* Nothing is sent before a flush (far below the auto-flush size). */
	assert_true(zm_pending(e->c) > 0);
	assert_int_equal(zm_flush(e->c), 0);
	assert_int_equal(zm_pending(e->c), 0);

	assert_int_equal(fake_read_frame(e->f), 100);
	for (int i = 0; i < 100; i++) {
		const struct frec *l = &e->f->log[i];
		struct zm_record rec = { .body = l->body, .type = l->type, .len = l->len };
		struct zm_monitor_proc m;

		assert_int_equal(l->type, ZM_REC_MONITOR_PROC);
		assert_int_equal(l->frame, 0);
		assert_int_equal(zm_dec_monitor_proc(&rec, &m), 0);
		assert_int_equal(m.ref, refs[i]);
		assert_int_equal(m.pid, 2000 + i);
		if (i % 2) {
			assert_int_equal(m.flags, 0);
		} else {
			assert_int_equal(m.flags, ZM_MON_START_TIME);
			assert_int_equal(m.start_ticks, 5000 + i);
		}
	}
}

static void test_monitor_rejects_bad_arguments(void **state)
{
	struct env *e = *state;
	uint64_t ref = 99;

	assert_int_equal(zm_monitor_pid(e->c, 0, &ref), -EINVAL);
	assert_int_equal(zm_monitor_pid(e->c, -5, &ref), -EINVAL);
	assert_int_equal(zm_monitor_pid_start(e->c, 0, 1, &ref), -EINVAL);
	assert_int_equal(zm_monitor_pidfd(e->c, -1, &ref), -EINVAL);
	assert_int_equal(zm_monitor_pid(NULL, 1, &ref), -EINVAL);
	assert_int_equal(ref, 99);
	assert_int_equal(zm_active_monitors(e->c), 0);
	assert_int_equal(zm_pending(e->c), 0);
}

static void test_monitor_pidfd_with_bad_fd_gives_ebadf(void **state)
{
	struct env *e = *state;
	uint64_t ref = 99;

	assert_int_equal(zm_monitor_pidfd(e->c, 4000, &ref), -EBADF);
	assert_int_equal(ref, 99);
	assert_int_equal(zm_active_monitors(e->c), 0);
}

static void test_autoflush_sends_without_explicit_flush(void **state)
{
	struct env *e = *state;
	uint64_t ref;
	int n = 0;

	/* 28 bytes a record: 3000 records is past the 64 KiB threshold. */
	for (int i = 0; i < 3000; i++)
		assert_int_equal(zm_monitor_pid(e->c, 100 + i, &ref), 0);
	assert_true(zm_pending(e->c) < 3000 * (ZM_REC_HDR_LEN + ZM_MONITOR_PROC_LEN));
	while (fake_take_frame(e->f) == 0 && fake_recv(e->f, 64 * 1024, true) > 0)
		;
	for (size_t i = 0; i < e->f->n_log; i++)
		n += e->f->log[i].type == ZM_REC_MONITOR_PROC;
	assert_true(n > 0);
}

/* ---- DOWNs ------------------------------------------------------------------- */

static void test_down_for_active_ref_is_dispatched_once_with_all_fields(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	assert_int_equal(zm_monitor_pid_start(e->c, 4321, 987654, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(ref, ZM_REASON_KILLED, 11, ZM_DOWN_CORE_DUMPED, 4321, 987654, 1700000000123456789ULL);
	fake_send(e->f);

	assert_int_equal(dispatch_all(e->c, &s), 1);
	assert_int_equal(s.downs, 1);
	assert_int_equal(s.down[0].ref, ref);
	assert_int_equal(s.down[0].time_ns, 1700000000123456789ULL);
	assert_int_equal(s.down[0].kind, ZM_KIND_PROCESS);
	assert_int_equal(s.down[0].reason, ZM_DOWN_KILLED);
	assert_int_equal(s.down[0].signal, 11);
	assert_int_equal(s.down[0].status, 0);
	assert_true(s.down[0].core_dumped);
	assert_int_equal(s.down[0].pid, 4321);
	assert_int_equal(s.down[0].start_ticks, 987654);
	assert_int_equal(zm_active_monitors(e->c), 0);

	/* A second DOWN for the same ref (an agent bug) is not handed over. */
	fake_add_down(ref, ZM_REASON_KILLED, 11, 0, 4321, 987654, 1);
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(s.downs, 1);
}

static void test_down_exited_carries_status_and_noproc_nothing(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t r1, r2;

	assert_int_equal(zm_monitor_pid(e->c, 10, &r1), 0);
	assert_int_equal(zm_monitor_pid(e->c, 11, &r2), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(r1, ZM_REASON_EXITED, 3, 0, 10, 0, 5);
	fake_add_down(r2, ZM_REASON_NOPROC, 0, 0, 11, 0, 6);
	fake_send(e->f);

	assert_int_equal(dispatch_all(e->c, &s), 2);
	assert_int_equal(s.down[0].reason, ZM_DOWN_EXITED);
	assert_int_equal(s.down[0].status, 3);
	assert_int_equal(s.down[0].signal, 0);
	assert_false(s.down[0].core_dumped);
	assert_int_equal(s.down[1].reason, ZM_DOWN_NOPROC);
	assert_int_equal(s.down[1].status, 0);
	assert_int_equal(s.down[1].signal, 0);
	assert_int_equal(s.down[1].pid, 11);
}

static void test_down_for_unknown_ref_is_dropped(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };

	fake_add_down(12345, ZM_REASON_EXITED, 0, 0, 1, 0, 1);
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(s.downs, 0);
}

static void test_demonitor_flush_drops_down_already_received(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	struct zm_demonitor dm;
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 777, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	assert_int_equal(fake_read_frame(e->f), 1);
	/* The DOWN is in the client's socket before it demonitors. */
	fake_add_down(ref, ZM_REASON_EXITED, 0, 0, 777, 0, 1);
	fake_send(e->f);

	assert_int_equal(zm_demonitor(e->c, ref, ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zm_active_monitors(e->c), 0);
	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(s.downs, 0);

	/* And the agent was told, flag and all. */
	assert_int_equal(fake_read_frame(e->f), 1);
	assert_int_equal(e->f->log[1].type, ZM_REC_DEMONITOR);
	assert_int_equal(zm_dec_demonitor(&(struct zm_record){ .body = e->f->log[1].body,
			 .type = e->f->log[1].type, .len = e->f->log[1].len }, &dm), 0);
	assert_int_equal(dm.ref, ref);
	assert_int_equal(dm.flags, ZM_DEMON_FLUSH);
}

static void test_demonitor_flush_drops_down_read_in_part(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;
	size_t half;

	assert_int_equal(zm_monitor_pid(e->c, 778, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(ref, ZM_REASON_EXITED, 0, 0, 778, 0, 1);
	zm_frame_end(&fake_w);
	half = zm_buf_pending(&fake_out) / 2;
	fake_write(e->f, zm_buf_head(&fake_out), half);
	/* The client reads half a frame and holds it. */
	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(zm_demonitor(e->c, ref, ZM_DEMONITOR_FLUSH), 0);
	fake_write(e->f, zm_buf_head(&fake_out) + half, zm_buf_pending(&fake_out) - half);
	zm_buf_consume(&fake_out, zm_buf_pending(&fake_out));
	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(s.downs, 0);
}

static void test_demonitor_without_flush_also_drops_down(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 779, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(ref, ZM_REASON_EXITED, 0, 0, 779, 0, 1);
	fake_send(e->f);
	assert_int_equal(zm_demonitor(e->c, ref, 0), 0);
	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(s.downs, 0);
}

static void test_demonitor_unknown_ref_gives_enoent(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	assert_int_equal(zm_demonitor(e->c, 12345, ZM_DEMONITOR_FLUSH), -ENOENT);
	assert_int_equal(zm_demonitor(e->c, 0, 0), -ENOENT);
	/* Demonitored already. */
	assert_int_equal(zm_monitor_pid(e->c, 55, &ref), 0);
	assert_int_equal(zm_demonitor(e->c, ref, 0), 0);
	assert_int_equal(zm_demonitor(e->c, ref, 0), -ENOENT);
	/* Down already. */
	assert_int_equal(zm_monitor_pid(e->c, 56, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(ref, ZM_REASON_EXITED, 0, 0, 56, 0, 1);
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), 1);
	assert_int_equal(zm_demonitor(e->c, ref, ZM_DEMONITOR_FLUSH), -ENOENT);
}

static void test_demonitor_rejects_unknown_flags(void **state)
{
	struct env *e = *state;
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 55, &ref), 0);
	assert_int_equal(zm_demonitor(e->c, ref, 0x80), -EINVAL);
	assert_int_equal(zm_active_monitors(e->c), 1);
}

static void test_demonitor_from_on_down_drops_later_down_in_same_frame(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t r1, r2;

	assert_int_equal(zm_monitor_pid(e->c, 60, &r1), 0);
	assert_int_equal(zm_monitor_pid(e->c, 61, &r2), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(r1, ZM_REASON_EXITED, 0, 0, 60, 0, 1);
	fake_add_down(r2, ZM_REASON_EXITED, 0, 0, 61, 0, 1);
	fake_send(e->f);

	s.demonitor_ref = r2;
	assert_int_equal(dispatch_all(e->c, &s), 1);
	assert_int_equal(s.downs, 1);
	assert_int_equal(s.down[0].ref, r1);
	assert_int_equal(s.demonitor_r, 0);
	assert_int_equal(zm_active_monitors(e->c), 0);
}

static void test_dispatch_from_on_down_is_ebusy(void **state)
{
	struct env *e = *state;
	struct seen s = { .try_dispatch = true };
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 62, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(ref, ZM_REASON_EXITED, 0, 0, 62, 0, 1);
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), 1);
	assert_int_equal(s.dispatch_r, -EBUSY);
}

static void test_unknown_record_types_are_ignored(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint8_t future[12] = { 1, 2, 3 };
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 63, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add(0x7e, future, sizeof(future));
	fake_add_down(ref, ZM_REASON_EXITED, 1, 0, 63, 0, 1);
	fake_add(0x7f, NULL, 0);
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), 1);
	assert_int_equal(s.down[0].status, 1);
}

static void test_longer_down_record_is_accepted(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	struct zm_down d = { .reason = ZM_REASON_EXITED, .kind = ZM_TARGET_PROCESS, .value = 9, .pid = 64 };
	uint8_t body[ZM_DOWN_LEN + 16] = { 0 };

	assert_int_equal(zm_monitor_pid(e->c, 64, &d.ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	zm_enc_down(body, &d);
	fake_add(ZM_REC_DOWN, body, sizeof(body));   /* a newer agent's longer DOWN */
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), 1);
	assert_int_equal(s.down[0].status, 9);
}

/* ---- batches ---------------------------------------------------------------- */

/* What zm_dispatch_batch() handed over, and errors, in the order seen. */
struct batches {
	int calls;
	size_t n[16];            /* size of each call */
	uint64_t refs[1024];     /* every ref handed over, in order */
	size_t n_refs;
	char order[64];          /* 'B' for a batch, 'E' for an error */
	size_t n_order;
	int errors;
	int error;
};

static void on_batch(struct zm_client *c, const struct zm_down_info *downs, size_t n, void *userdata)
{
	struct batches *b = userdata;

	assert_true(n > 0);
	if (b->calls < 16)
		b->n[b->calls] = n;
	b->calls++;
	for (size_t i = 0; i < n && b->n_refs < 1024; i++)
		b->refs[b->n_refs++] = downs[i].ref;
	if (b->n_order < sizeof(b->order) - 1)
		b->order[b->n_order++] = 'B';
}

static void on_batch_error(struct zm_client *c, const struct zm_error_info *err, void *userdata)
{
	struct batches *b = userdata;

	b->errors++;
	b->error = err->error;
	if (b->n_order < sizeof(b->order) - 1)
		b->order[b->n_order++] = 'E';
}

/* dispatch_all() for batches. */
static int dispatch_batch_all(struct zm_client *c, struct batches *b)
{
	int total = 0;

	for (int i = 0; i < 100; i++) {
		struct pollfd pfd = { .fd = zm_fd(c), .events = POLLIN };
		int r = zm_wait_batch(c, 10, on_batch, b);

		if (r < 0)
			return r;
		total += r;
		if (r == 0 && poll(&pfd, 1, 0) == 0)
			break;
	}
	return total;
}

static void test_dispatch_batch_hands_a_frame_as_one_array(void **state)
{
	struct env *e = *state;
	struct batches b = { 0 };
	uint64_t refs[500];

	for (int i = 0; i < 500; i++)
		assert_int_equal(zm_monitor_pid(e->c, 1000 + i, &refs[i]), 0);
	assert_int_equal(zm_flush(e->c), 0);
	for (int i = 0; i < 500; i++)
		fake_add_down(refs[i], ZM_REASON_EXITED, i % 256, 0, 1000 + i, 0, 1);
	fake_send(e->f);   /* one frame of 500 records */

	assert_int_equal(dispatch_batch_all(e->c, &b), 500);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.n[0], 500);
	for (int i = 0; i < 500; i++)
		assert_int_equal(b.refs[i], refs[i]);
	assert_int_equal(zm_active_monitors(e->c), 0);
}

static void test_dispatch_batch_drops_demonitored_refs(void **state)
{
	struct env *e = *state;
	struct batches b = { 0 };
	uint64_t refs[10];
	size_t k = 0;

	for (int i = 0; i < 10; i++)
		assert_int_equal(zm_monitor_pid(e->c, 2000 + i, &refs[i]), 0);
	assert_int_equal(zm_demonitor(e->c, refs[3], ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zm_demonitor(e->c, refs[7], ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zm_flush(e->c), 0);
	/* Every DOWN crossed its DEMONITOR: the frame still holds all ten. */
	for (int i = 0; i < 10; i++)
		fake_add_down(refs[i], ZM_REASON_NOPROC, 0, 0, 2000 + i, 0, 1);
	fake_send(e->f);

	assert_int_equal(dispatch_batch_all(e->c, &b), 8);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.n[0], 8);
	for (int i = 0; i < 10; i++)
		if (i != 3 && i != 7)
			assert_int_equal(b.refs[k++], refs[i]);
}

static void test_dispatch_batch_keeps_wire_order_around_an_error(void **state)
{
	struct env *e = *state;
	struct batches b = { 0 };
	uint64_t refs[4];

	zm_set_error_handler(e->c, on_batch_error, &b);
	for (int i = 0; i < 4; i++)
		assert_int_equal(zm_monitor_pid(e->c, 3000 + i, &refs[i]), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(refs[0], ZM_REASON_NOPROC, 0, 0, 3000, 0, 1);
	fake_add_down(refs[1], ZM_REASON_NOPROC, 0, 0, 3001, 0, 1);
	fake_add_error(refs[2], ENOSPC, ZM_REC_MONITOR_PROC, "watch table full");
	fake_add_down(refs[3], ZM_REASON_NOPROC, 0, 0, 3003, 0, 1);
	fake_send(e->f);   /* one frame */

	assert_int_equal(dispatch_batch_all(e->c, &b), 3);
	assert_string_equal(b.order, "BEB");
	assert_int_equal(b.n[0], 2);
	assert_int_equal(b.n[1], 1);
	assert_int_equal(b.refs[2], refs[3]);
}

static void test_dispatch_batch_counts_downs_without_callback(void **state)
{
	struct env *e = *state;
	uint64_t refs[3];

	for (int i = 0; i < 3; i++)
		assert_int_equal(zm_monitor_pid(e->c, 4000 + i, &refs[i]), 0);
	assert_int_equal(zm_flush(e->c), 0);
	for (int i = 0; i < 3; i++)
		fake_add_down(refs[i], ZM_REASON_NOPROC, 0, 0, 4000 + i, 0, 1);
	fake_send(e->f);
	assert_int_equal(zm_wait_batch(e->c, 1000, NULL, NULL), 3);
	assert_int_equal(zm_active_monitors(e->c), 0);
}

static void on_batch_redispatch(struct zm_client *c, const struct zm_down_info *downs, size_t n,
				void *userdata)
{
	int *r = userdata;

	r[0] = zm_dispatch_batch(c, on_batch_redispatch, userdata);
	r[1] = zm_wait_batch(c, 0, on_batch_redispatch, userdata);
	r[2] = zm_dispatch(c, NULL, NULL);
}

static void test_dispatch_batch_from_on_batch_is_ebusy(void **state)
{
	struct env *e = *state;
	int r[3] = { 0 };
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 5000, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(ref, ZM_REASON_NOPROC, 0, 0, 5000, 0, 1);
	fake_send(e->f);
	assert_int_equal(zm_wait_batch(e->c, 1000, on_batch_redispatch, r), 1);
	assert_int_equal(r[0], -EBUSY);
	assert_int_equal(r[1], -EBUSY);
	assert_int_equal(r[2], -EBUSY);
}

/* ---- errors -------------------------------------------------------------------- */

static void test_agent_error_reaches_error_handler_with_message(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	zm_set_error_handler(e->c, on_error, &s);
	assert_int_equal(zm_monitor_pid(e->c, 70, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_error(ref, EPERM, ZM_REC_MONITOR_PROC, "not allowed to watch pid 70");
	fake_send(e->f);

	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.error.ref, ref);
	assert_int_equal(s.error.error, EPERM);
	assert_int_equal(s.error.request, ZM_REC_MONITOR_PROC);
	assert_string_equal(s.message, "not allowed to watch pid 70");
}

static void test_enoent_for_crossed_demonitor_is_not_reported(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	zm_set_error_handler(e->c, on_error, &s);
	assert_int_equal(zm_monitor_pid(e->c, 72, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	/* The DOWN left the agent before the DEMONITOR reached it. */
	fake_add_down(ref, ZM_REASON_EXITED, 0, 0, 72, 0, 1);
	fake_send(e->f);
	assert_int_equal(zm_demonitor(e->c, ref, ZM_DEMONITOR_FLUSH), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_error(ref, ENOENT, ZM_REC_DEMONITOR, "no active monitor has reference 1");
	fake_send(e->f);

	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(s.downs, 0);
	assert_int_equal(s.errors, 0);
}

static void test_agent_error_for_monitor_ends_the_monitor(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 71, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_error(ref, EINVAL, ZM_REC_MONITOR_PROC, "bad");
	fake_add_down(ref, ZM_REASON_NOPROC, 0, 0, 71, 0, 1);
	fake_send(e->f);
	/* No handler set: the error is dropped, the monitor still ends. */
	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(zm_active_monitors(e->c), 0);
	assert_int_equal(zm_demonitor(e->c, ref, 0), -ENOENT);
}

static void test_agent_eof_gives_enotconn(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 80, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(ref, ZM_REASON_EXITED, 0, 0, 80, 0, 1);
	fake_send(e->f);
	shutdown(e->f->fd, SHUT_RDWR);

	/* What arrived before the end is still handed over. */
	assert_int_equal(dispatch_all(e->c, &s), -ENOTCONN);
	assert_int_equal(s.downs, 1);
	assert_int_equal(zm_dispatch(e->c, on_down, &s), -ENOTCONN);
	assert_int_equal(zm_monitor_pid(e->c, 81, &ref), -ENOTCONN);
	assert_int_equal(zm_flush(e->c), -ENOTCONN);
}

static void test_final_error_then_eof_reaches_handler_before_enotconn(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };

	zm_set_error_handler(e->c, on_error, &s);
	/* The agent gives up on a subscriber that stopped reading. */
	fake_add_error(0, ETIMEDOUT, 0, "subscriber read nothing for 30 s");
	fake_send(e->f);
	shutdown(e->f->fd, SHUT_RDWR);

	/* dispatch_all() stops at the first error it gets: by then the
	 * handler has seen the ERROR. */
	assert_int_equal(dispatch_all(e->c, &s), -ENOTCONN);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.error.ref, 0);
	assert_int_equal(s.error.error, ETIMEDOUT);
	assert_string_equal(s.message, "subscriber read nothing for 30 s");
	assert_int_equal(zm_dispatch(e->c, on_down, &s), -ENOTCONN);
	assert_int_equal(s.errors, 1);
}

static void test_final_error_reaches_handler_after_a_failed_send(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;
	int r;

	zm_set_error_handler(e->c, on_error, &s);
	fake_add_error(0, ENOBUFS, 0, "too many DOWNs waiting");
	fake_send(e->f);
	close(e->f->fd);
	e->f->fd = -1;

	/* The client writes first and learns of the end from the send. */
	assert_int_equal(zm_monitor_pid(e->c, 90, &ref), 0);
	r = zm_flush(e->c);
	assert_true(r == -EPIPE || r == -ENOTCONN);
	assert_int_equal(zm_monitor_pid(e->c, 91, &ref), -ENOTCONN);
	assert_int_equal(s.errors, 0);
	/* Receiving still hands over the agent's last words, then ends. */
	assert_int_equal(zm_wait(e->c, 1000, on_down, &s), -ENOTCONN);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.error.error, ENOBUFS);
	assert_int_equal(zm_dispatch(e->c, on_down, &s), -ENOTCONN);
	assert_int_equal(zm_sync(e->c, 100, on_down, &s), -ENOTCONN);
	assert_int_equal(s.errors, 1);
}

static void test_sync_on_a_lost_connection_hands_over_the_final_error(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	zm_set_error_handler(e->c, on_error, &s);
	fake_add_error(0, ETIMEDOUT, 0, "bye");
	fake_send(e->f);
	close(e->f->fd);
	e->f->fd = -1;
	assert_int_equal(zm_monitor_pid(e->c, 92, &ref), 0);
	(void)zm_flush(e->c);

	assert_int_equal(zm_sync(e->c, 1000, on_down, &s), -ENOTCONN);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.error.error, ETIMEDOUT);
}

static void test_malformed_frame_gives_eproto(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	fake_write(e->f, "\x10\0\0\0XXXX\0\0\0\0\0\0\0\0", 16);
	assert_int_equal(dispatch_all(e->c, &s), -EPROTO);
	/* The client is unusable from then on. */
	assert_int_equal(zm_dispatch(e->c, on_down, &s), -ENOTCONN);
	assert_int_equal(zm_monitor_pid(e->c, 1, &ref), -ENOTCONN);
}

static void test_short_down_record_gives_eproto(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint8_t body[ZM_DOWN_LEN - 1] = { 0 };
	uint64_t ref;

	assert_int_equal(zm_monitor_pid(e->c, 1, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	body[0] = (uint8_t)ref;
	fake_add(ZM_REC_DOWN, body, sizeof(body));
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), -EPROTO);
	assert_int_equal(s.downs, 0);
}

static void test_frame_with_wrong_count_is_refused_whole(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;
	uint8_t *hdr;

	assert_int_equal(zm_monitor_pid(e->c, 1, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_down(ref, ZM_REASON_EXITED, 0, 0, 1, 0, 1);
	zm_frame_end(&fake_w);
	hdr = zm_buf_head(&fake_out);
	hdr[6] = 2;   /* claims two records, holds one */
	fake_write(e->f, zm_buf_head(&fake_out), zm_buf_pending(&fake_out));
	zm_buf_consume(&fake_out, zm_buf_pending(&fake_out));
	assert_int_equal(dispatch_all(e->c, &s), -EPROTO);
	/* The DOWN in the bad frame was not acted on. */
	assert_int_equal(s.downs, 0);
}

/* ---- pidfds ---------------------------------------------------------------------- */

static void test_pidfd_is_passed_to_agent(void **state)
{
	struct env *e = *state;
	pid_t child = spawn_sleeper();
	int pidfd = pidfd_open_(child), before;
	uint64_t ref;

	assert_true(pidfd >= 0);
	before = count_open_fds();
	assert_int_equal(zm_monitor_pidfd(e->c, pidfd, &ref), 0);
	assert_int_equal(count_open_fds(), before + 1);   /* the library's dup */
	assert_int_equal(zm_flush(e->c), 0);
	assert_int_equal(count_open_fds(), before);       /* sent, dup closed */

	assert_int_equal(fake_read_frame(e->f), 1);
	assert_int_equal(e->f->log[0].type, ZM_REC_MONITOR_PIDFD);
	assert_true(e->f->log[0].fd >= 0);
	assert_int_equal(fdinfo_pid(e->f->log[0].fd), child);
	/* The caller's fd is its own still. */
	assert_int_equal(fdinfo_pid(pidfd), child);
	{
		struct zm_monitor_pidfd m;
		const struct frec *l = &e->f->log[0];

		assert_int_equal(zm_dec_monitor_pidfd(&(struct zm_record){ .body = l->body,
				 .type = l->type, .len = l->len }, &m), 0);
		assert_int_equal(m.ref, ref);
	}
	close(pidfd);
	reap(child);
}

static void test_pidfds_beyond_one_sendmsg_arrive_in_order(void **state)
{
	struct env *e = *state;
	pid_t kids[2] = { spawn_sleeper(), spawn_sleeper() };
	int pidfds[2] = { pidfd_open_(kids[0]), pidfd_open_(kids[1]) };
	size_t per_frame[16] = { 0 };
	const int n = 300;   /* two frames' worth of pidfds */
	uint64_t ref;
	int got = 0;

	assert_true(pidfds[0] >= 0 && pidfds[1] >= 0);
	for (int i = 0; i < n; i++) {
		assert_int_equal(zm_monitor_pidfd(e->c, pidfds[i % 2], &ref), 0);
		if (i % 7 == 0)
			assert_int_equal(zm_monitor_pid(e->c, 1000 + i, &ref), 0);
	}
	assert_int_equal(zm_flush(e->c), 0);

	while (got < n) {
		assert_true(fake_read_frame(e->f) > 0);
		got = 0;
		for (size_t i = 0; i < e->f->n_log; i++)
			got += e->f->log[i].type == ZM_REC_MONITOR_PIDFD;
	}
	got = 0;
	for (size_t i = 0; i < e->f->n_log; i++) {
		const struct frec *l = &e->f->log[i];

		if (l->type != ZM_REC_MONITOR_PIDFD)
			continue;
		assert_true(l->fd >= 0);
		assert_int_equal(fdinfo_pid(l->fd), kids[got % 2]);
		assert_true(l->frame < 16);
		per_frame[l->frame]++;
		got++;
	}
	for (int i = 0; i < 16; i++)
		assert_true(per_frame[i] <= 253);
	assert_int_equal(e->f->fd_head, e->f->fd_len);   /* no stray fds */
	close(pidfds[0]);
	close(pidfds[1]);
	reap(kids[0]);
	reap(kids[1]);
}

static void test_flush_survives_partial_writes(void **state)
{
	struct env *e = *state;
	pid_t kid = spawn_sleeper();
	int pidfd = pidfd_open_(kid), sndbuf = 4096, rounds = 0;
	const int n = 20000;
	uint64_t ref, next_pid = 1;
	size_t seen_proc = 0, seen_pidfd = 0;
	int r;

	assert_true(pidfd >= 0);
	assert_int_equal(setsockopt(zm_fd(e->c), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	for (int i = 0; i < n; i++) {
		if (i % 100 == 0)
			assert_int_equal(zm_monitor_pidfd(e->c, pidfd, &ref), 0);
		else
			assert_int_equal(zm_monitor_pid(e->c, i + 1, &ref), 0);
	}
	/* Flush against a full socket, draining it a little at a time in odd
	 * sizes, so sends end mid-frame and mid-record. */
	while ((r = zm_flush(e->c)) == -EAGAIN) {
		while (fake_recv(e->f, 333, true) > 0)
			;
		rounds++;
	}
	assert_int_equal(r, 0);
	assert_true(rounds > 1);
	while (fake_recv(e->f, 333, true) > 0)
		;
	while (fake_take_frame(e->f) > 0)
		;
	assert_int_equal(zm_buf_pending(&e->f->in), 0);

	for (size_t i = 0; i < e->f->n_log; i++) {
		const struct frec *l = &e->f->log[i];

		if (l->type == ZM_REC_MONITOR_PROC) {
			struct zm_monitor_proc m;

			assert_int_equal(zm_dec_monitor_proc(&(struct zm_record){ .body = l->body,
					 .type = l->type, .len = l->len }, &m), 0);
			if (next_pid % 100 == 1)
				next_pid++;
			assert_int_equal(m.pid, next_pid);
			next_pid++;
			seen_proc++;
		} else {
			assert_int_equal(l->type, ZM_REC_MONITOR_PIDFD);
			assert_true(l->fd >= 0);
			assert_int_equal(fdinfo_pid(l->fd), kid);
			seen_pidfd++;
		}
	}
	assert_int_equal(seen_pidfd, n / 100);
	assert_int_equal(seen_proc, n - n / 100);
	close(pidfd);
	reap(kid);
}

/* ---- round trips ------------------------------------------------------------------ */

static void test_sync_round_trip_dispatches_what_came_before(void **state)
{
	struct fake *f = fake_new(FAKE_SERVE);
	struct zm_client *c = NULL;
	struct seen s = { 0 };
	uint64_t ref;

	f->down_every_monitor = true;
	assert_int_equal(zm_connect(f->path, "sync", &c), 0);
	assert_int_equal(zm_monitor_pid(c, 90, &ref), 0);
	assert_int_equal(zm_sync(c, 2000, on_down, &s), 0);
	/* The agent sent the DOWN before SYNCED: it is in by now. */
	assert_int_equal(s.downs, 1);
	assert_int_equal(s.down[0].ref, ref);
	assert_int_equal(s.down[0].status, 7);
	assert_int_equal(zm_sync(c, 2000, on_down, &s), 0);
	zm_close(c);
	fake_free(f);
}

static void test_sync_without_reply_times_out(void **state)
{
	struct env *e = *state;

	assert_int_equal(zm_sync(e->c, 50, NULL, NULL), -ETIMEDOUT);
	/* A late SYNCED for it matches nothing and harms nothing. */
	assert_int_equal(fake_read_frame(e->f), 1);
	fake_add_u64(ZM_REC_SYNCED, 1);
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &(struct seen){ 0 }), 0);
}

static void test_status_returns_reply_text(void **state)
{
	struct fake *f = fake_new(FAKE_SERVE);
	struct zm_client *c = NULL;
	char *text = NULL;

	f->status_text = "version zenmond 0.1.0\nsubscribers 1\n";
	assert_int_equal(zm_connect(f->path, "status", &c), 0);
	assert_int_equal(zm_status(c, 2000, &text, NULL, NULL), 0);
	assert_non_null(text);
	assert_string_equal(text, "version zenmond 0.1.0\nsubscribers 1\n");
	free(text);
	zm_close(c);
	fake_free(f);
}

/* Answers one STATUS with an ERROR, from a thread, as the client blocks. */
static void *answer_status_with_error(void *arg)
{
	struct fake *f = arg;

	if (fake_read_frame(f) == 1) {
		fake_add_error(0, ENOMEM, ZM_REC_STATUS, "cannot build the status reply");
		fake_send(f);
	}
	return NULL;
}

static void test_status_error_reply_gives_its_code(void **state)
{
	struct env *e = *state;
	char *text = (char *)0x1;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, answer_status_with_error, e->f), 0);
	assert_int_equal(zm_status(e->c, 2000, &text, NULL, NULL), -ENOMEM);
	pthread_join(t, NULL);
	assert_ptr_equal(text, (char *)0x1);
}

static void test_wait_times_out_with_nothing_to_read(void **state)
{
	struct env *e = *state;

	assert_int_equal(zm_wait(e->c, 10, on_down, NULL), 0);
}

/* ---- the pieces ---------------------------------------------------------------------- */

static void test_refset_holds_a_million_refs(void **state)
{
	struct lzm_refset s = { 0 };
	const uint64_t n = 1000000;

	for (uint64_t r = 1; r <= n; r++)
		assert_int_equal(lzm_refset_add(&s, r), 1);
	assert_int_equal(lzm_refset_add(&s, 5), 0);
	assert_int_equal(s.count, n);
	for (uint64_t r = 2; r <= n; r += 2)
		assert_true(lzm_refset_remove(&s, r));
	assert_int_equal(s.count, n / 2);
	for (uint64_t r = 1; r <= n; r++)
		assert_int_equal(lzm_refset_contains(&s, r), r % 2 == 1);
	assert_false(lzm_refset_remove(&s, 2));
	assert_false(lzm_refset_contains(&s, 0));
	for (uint64_t r = 1; r <= n; r += 2)
		assert_true(lzm_refset_remove(&s, r));
	assert_int_equal(s.count, 0);
	assert_true(s.cap <= 128);   /* it gave the memory back */
	lzm_refset_free(&s);
	lzm_refset_free(NULL);
}

static void test_refset_survives_churn_with_collisions(void **state)
{
	struct lzm_refset s = { 0 };
	uint64_t live[512] = { 0 };
	uint64_t x = 88172645463325252ULL;

	/* Random adds and removes against a shadow array. */
	for (int i = 0; i < 200000; i++) {
		int k;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k = (int)(x % 512);
		if (live[k]) {
			assert_true(lzm_refset_remove(&s, live[k]));
			live[k] = 0;
		} else {
			live[k] = (x >> 9) | 1;
			if (lzm_refset_add(&s, live[k]) == 0)
				live[k] = 0;   /* a duplicate value already live elsewhere: rare */
		}
		if (i % 1000 == 0)
			for (int j = 0; j < 512; j++)
				if (live[j])
					assert_true(lzm_refset_contains(&s, live[j]));
	}
	lzm_refset_free(&s);
}

/* ---- TCP monitors ---------------------------------------------------------------- */

/* A connected pair over IPv4 loopback: *ret_client and *ret_server. */
static void tcp_pair(int *ret_client, int *ret_server)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0 && c >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*ret_server = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*ret_server >= 0);
	*ret_client = c;
	close(l);
}

static uint64_t socket_cookie(int fd)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len), 0);
	return cookie;
}

static struct zm_monitor_tcp decode_monitor_tcp(const struct frec *l)
{
	struct zm_record rec = { .body = l->body, .type = l->type, .len = l->len };
	struct zm_monitor_tcp m;

	assert_int_equal(l->type, ZM_REC_MONITOR_TCP);
	assert_int_equal(l->len, ZM_MONITOR_TCP_LEN);
	assert_int_equal(zm_dec_monitor_tcp(&rec, &m), 0);
	return m;
}

static void test_monitor_tcp_each_form_is_encoded(void **state)
{
	struct env *e = *state;
	struct zm_tcp_endpoints v4 = { .family = AF_INET, .local_port = 5000, .remote_port = 41234 };
	struct zm_tcp_endpoints v6 = { .family = AF_INET6, .local_port = 443, .remote_port = 65535 };
	uint8_t want4[16] = { 127, 0, 0, 1 }, want4r[16] = { 10, 1, 2, 3 };
	struct zm_monitor_tcp m;
	uint64_t r1, r2, r3;

	v4.local.v4.s_addr = htonl(0x7f000001);
	v4.remote.v4.s_addr = htonl(0x0a010203);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &v6.local.v6), 1);
	assert_int_equal(inet_pton(AF_INET6, "fe80::abcd", &v6.remote.v6), 1);

	assert_int_equal(zm_monitor_tcp_cookie(e->c, 0x0123456789abcdefULL, &r1), 0);
	assert_int_equal(zm_monitor_tcp_tuple(e->c, &v4, &r2), 0);
	assert_int_equal(zm_monitor_tcp_tuple(e->c, &v6, &r3), 0);
	assert_int_equal(zm_active_monitors(e->c), 3);
	assert_int_equal(zm_flush(e->c), 0);
	assert_int_equal(fake_read_frame(e->f), 3);

	m = decode_monitor_tcp(&e->f->log[0]);
	assert_true(m.ref == r1);
	assert_int_equal(m.by, ZM_TCP_BY_COOKIE);
	assert_true(m.cookie == 0x0123456789abcdefULL);
	assert_int_equal(m.flags, 0);
	assert_int_equal(m.tuple.family, 0);
	assert_int_equal(e->f->log[0].fd, -1);

	m = decode_monitor_tcp(&e->f->log[1]);
	assert_true(m.ref == r2);
	assert_int_equal(m.by, ZM_TCP_BY_TUPLE);
	assert_true(m.cookie == 0);
	assert_int_equal(m.tuple.family, AF_INET);
	assert_memory_equal(m.tuple.saddr, want4, 16);   /* network order, rest zero */
	assert_memory_equal(m.tuple.daddr, want4r, 16);
	assert_int_equal(m.tuple.sport, 5000);           /* host order */
	assert_int_equal(m.tuple.dport, 41234);
	/* And on the wire, little-endian: 5000 = 88 13. */
	assert_int_equal(e->f->log[1].body[56], 0x88);
	assert_int_equal(e->f->log[1].body[57], 0x13);

	m = decode_monitor_tcp(&e->f->log[2]);
	assert_true(m.ref == r3);
	assert_int_equal(m.by, ZM_TCP_BY_TUPLE);
	assert_int_equal(m.tuple.family, AF_INET6);
	assert_memory_equal(m.tuple.saddr, &v6.local.v6, 16);
	assert_memory_equal(m.tuple.daddr, &v6.remote.v6, 16);
	assert_int_equal(m.tuple.sport, 443);
	assert_int_equal(m.tuple.dport, 65535);
}

static void test_monitor_tcp_fd_passes_the_socket_itself(void **state)
{
	struct env *e = *state;
	struct zm_monitor_tcp m;
	int cfd, sfd, before, type = 0;
	socklen_t len = sizeof(type);
	uint64_t ref;

	tcp_pair(&cfd, &sfd);
	before = count_open_fds();
	assert_int_equal(zm_monitor_tcp_fd(e->c, cfd, &ref), 0);
	assert_int_equal(count_open_fds(), before + 1);   /* the library's dup */
	assert_int_equal(zm_flush(e->c), 0);
	assert_int_equal(count_open_fds(), before);       /* sent, dup closed */

	assert_int_equal(fake_read_frame(e->f), 1);
	m = decode_monitor_tcp(&e->f->log[0]);
	assert_true(m.ref == ref);
	assert_int_equal(m.by, ZM_TCP_BY_FD);
	assert_true(m.cookie == 0);
	/* What arrived is the same socket: a TCP socket with the same cookie. */
	assert_true(e->f->log[0].fd >= 0);
	assert_int_equal(getsockopt(e->f->log[0].fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
	assert_int_equal(type, SOCK_STREAM);
	assert_true(socket_cookie(e->f->log[0].fd) == socket_cookie(cfd));
	assert_true(socket_cookie(cfd) != socket_cookie(sfd));
	/* The caller's fd is its own still. */
	assert_true(fcntl(cfd, F_GETFD) >= 0);
	close(cfd);
	close(sfd);
}

static void test_pidfds_and_sockets_share_one_fd_queue(void **state)
{
	struct env *e = *state;
	pid_t child = spawn_sleeper();
	int pidfd = pidfd_open_(child), cfd, sfd;
	uint64_t refs[5];

	assert_true(pidfd >= 0);
	tcp_pair(&cfd, &sfd);
	/* Interleaved, with requests that pass no fd between them. */
	assert_int_equal(zm_monitor_pidfd(e->c, pidfd, &refs[0]), 0);
	assert_int_equal(zm_monitor_tcp_fd(e->c, cfd, &refs[1]), 0);
	assert_int_equal(zm_monitor_tcp_cookie(e->c, 77, &refs[2]), 0);
	assert_int_equal(zm_monitor_tcp_fd(e->c, sfd, &refs[3]), 0);
	assert_int_equal(zm_monitor_pidfd(e->c, pidfd, &refs[4]), 0);
	assert_int_equal(zm_flush(e->c), 0);
	assert_int_equal(fake_read_frame(e->f), 5);

	assert_int_equal(e->f->log[0].type, ZM_REC_MONITOR_PIDFD);
	assert_int_equal(fdinfo_pid(e->f->log[0].fd), child);
	assert_true(socket_cookie(e->f->log[1].fd) == socket_cookie(cfd));
	assert_int_equal(e->f->log[2].fd, -1);
	assert_true(socket_cookie(e->f->log[3].fd) == socket_cookie(sfd));
	assert_int_equal(e->f->log[4].type, ZM_REC_MONITOR_PIDFD);
	assert_int_equal(fdinfo_pid(e->f->log[4].fd), child);
	assert_int_equal(e->f->fd_head, e->f->fd_len);   /* no stray fds */
	close(cfd);
	close(sfd);
	close(pidfd);
	reap(child);
}

static void test_monitor_tcp_rejects_bad_arguments(void **state)
{
	struct env *e = *state;
	struct zm_tcp_endpoints unix_ends = { .family = AF_UNIX, .local_port = 1, .remote_port = 2 };
	struct zm_tcp_endpoints none = { 0 };
	uint64_t ref = 99;

	assert_int_equal(zm_monitor_tcp_fd(e->c, -1, &ref), -EINVAL);
	assert_int_equal(zm_monitor_tcp_fd(NULL, 0, &ref), -EINVAL);
	assert_int_equal(zm_monitor_tcp_fd(e->c, 4000, &ref), -EBADF);
	assert_int_equal(zm_monitor_tcp_cookie(e->c, 0, &ref), -EINVAL);
	assert_int_equal(zm_monitor_tcp_cookie(NULL, 1, &ref), -EINVAL);
	assert_int_equal(zm_monitor_tcp_tuple(e->c, NULL, &ref), -EINVAL);
	assert_int_equal(zm_monitor_tcp_tuple(e->c, &unix_ends, &ref), -EINVAL);
	assert_int_equal(zm_monitor_tcp_tuple(e->c, &none, &ref), -EINVAL);
	assert_int_equal(ref, 99);
	assert_int_equal(zm_active_monitors(e->c), 0);
	assert_int_equal(zm_pending(e->c), 0);
}

static void test_tcp_down_decodes_every_field(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	struct zm_down d = {
		.time_ns = 1700000000123456789ULL, .reason = ZM_REASON_TCP_CLOSED, .value = ECONNRESET,
		.start_ticks = 0xfedcba9876543210ULL, .tcp_how = ZM_TCP_RESET_RX, .tcp_old_state = 1,
		.tuple = { .family = AF_INET6, .sport = 8080, .dport = 51000 },
	};
	struct in6_addr l6, r6;
	uint64_t ref;

	assert_int_equal(inet_pton(AF_INET6, "2001:db8::10", &l6), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::20", &r6), 1);
	memcpy(d.tuple.saddr, &l6, 16);
	memcpy(d.tuple.daddr, &r6, 16);
	assert_int_equal(zm_monitor_tcp_cookie(e->c, d.start_ticks, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	d.ref = ref;
	fake_add_tcp_down(d);
	fake_send(e->f);

	assert_int_equal(dispatch_all(e->c, &s), 1);
	assert_true(s.down[0].ref == ref);
	assert_true(s.down[0].time_ns == 1700000000123456789ULL);
	assert_int_equal(s.down[0].kind, ZM_KIND_TCP);
	assert_int_equal(s.down[0].reason, ZM_DOWN_TCP_CLOSED);
	assert_true(s.down[0].cookie == 0xfedcba9876543210ULL);
	assert_int_equal(s.down[0].tcp_how, ZM_TCP_HOW_RESET_RX);
	assert_int_equal(s.down[0].tcp_errno, ECONNRESET);
	assert_int_equal(s.down[0].tcp_old_state, 1);
	assert_int_equal(s.down[0].tcp.family, AF_INET6);
	assert_memory_equal(&s.down[0].tcp.local.v6, &l6, 16);
	assert_memory_equal(&s.down[0].tcp.remote.v6, &r6, 16);
	assert_int_equal(s.down[0].tcp.local_port, 8080);
	assert_int_equal(s.down[0].tcp.remote_port, 51000);
	/* The process fields say nothing. */
	assert_int_equal(s.down[0].pid, 0);
	assert_true(s.down[0].start_ticks == 0);
	assert_int_equal(s.down[0].status, 0);
	assert_int_equal(s.down[0].signal, 0);
	assert_false(s.down[0].core_dumped);
	assert_int_equal(zm_active_monitors(e->c), 0);
}

static void test_tcp_down_ipv4_and_noconnection(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	struct zm_down fin = {
		.reason = ZM_REASON_TCP_CLOSED, .start_ticks = 5, .tcp_how = ZM_TCP_FIN,
		.tcp_old_state = 9, .tuple = { .family = AF_INET, .saddr = { 127, 0, 0, 1 },
		.daddr = { 192, 168, 1, 2 }, .sport = 5000, .dport = 41234 },
	};
	struct zm_down none = { .reason = ZM_REASON_NOCONNECTION, .start_ticks = 6 };
	uint64_t r1, r2;

	assert_int_equal(zm_monitor_tcp_cookie(e->c, 5, &r1), 0);
	assert_int_equal(zm_monitor_tcp_cookie(e->c, 6, &r2), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fin.ref = r1;
	none.ref = r2;
	fake_add_tcp_down(fin);
	fake_add_tcp_down(none);
	fake_send(e->f);

	assert_int_equal(dispatch_all(e->c, &s), 2);
	assert_int_equal(s.down[0].reason, ZM_DOWN_TCP_CLOSED);
	assert_int_equal(s.down[0].tcp_how, ZM_TCP_HOW_FIN);
	assert_int_equal(s.down[0].tcp_errno, 0);
	assert_int_equal(s.down[0].tcp_old_state, 9);
	assert_int_equal(s.down[0].tcp.family, AF_INET);
	assert_int_equal(ntohl(s.down[0].tcp.local.v4.s_addr), 0x7f000001);
	assert_int_equal(ntohl(s.down[0].tcp.remote.v4.s_addr), 0xc0a80102);
	assert_int_equal(s.down[0].tcp.local_port, 5000);
	assert_int_equal(s.down[0].tcp.remote_port, 41234);

	assert_true(s.down[1].ref == r2);
	assert_int_equal(s.down[1].kind, ZM_KIND_TCP);
	assert_int_equal(s.down[1].reason, ZM_DOWN_NOCONNECTION);
	assert_true(s.down[1].cookie == 6);
	assert_int_equal(s.down[1].tcp_how, ZM_TCP_HOW_NONE);
	assert_int_equal(s.down[1].tcp_errno, 0);
	assert_int_equal(s.down[1].tcp.family, 0);   /* not known */
	assert_int_equal(s.down[1].tcp.local_port, 0);
}

static void test_tcp_down_without_its_tail_gives_eproto(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	struct zm_down d = { .kind = ZM_TARGET_TCP, .reason = ZM_REASON_TCP_CLOSED };
	uint8_t body[ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN];
	uint64_t ref;

	assert_int_equal(zm_monitor_tcp_cookie(e->c, 1, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	d.ref = ref;
	zm_enc_down(body, &d);
	fake_add(ZM_REC_DOWN, body, ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN - 1);
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), -EPROTO);
	assert_int_equal(s.downs, 0);
}

static void test_agent_error_for_monitor_tcp_ends_the_monitor(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	uint64_t ref;

	zm_set_error_handler(e->c, on_error, &s);
	assert_int_equal(zm_monitor_tcp_cookie(e->c, 12, &ref), 0);
	assert_int_equal(zm_flush(e->c), 0);
	fake_add_error(ref, EPROTOTYPE, ZM_REC_MONITOR_TCP, "not a TCP socket");
	fake_send(e->f);
	assert_int_equal(dispatch_all(e->c, &s), 0);
	assert_int_equal(s.errors, 1);
	assert_true(s.error.ref == ref);
	assert_int_equal(s.error.error, EPROTOTYPE);
	assert_int_equal(s.error.request, ZM_REC_MONITOR_TCP);
	assert_int_equal(zm_active_monitors(e->c), 0);
	assert_int_equal(zm_demonitor(e->c, ref, 0), -ENOENT);
}

static void test_reason_str_and_version(void **state)
{
	assert_string_equal(zm_reason_str(ZM_DOWN_EXITED), "exited");
	assert_string_equal(zm_reason_str(ZM_DOWN_KILLED), "killed");
	assert_string_equal(zm_reason_str(ZM_DOWN_NOPROC), "noproc");
	assert_string_equal(zm_reason_str(ZM_DOWN_TCP_CLOSED), "tcp_closed");
	assert_string_equal(zm_reason_str(ZM_DOWN_NOCONNECTION), "noconnection");
	assert_string_equal(zm_reason_str((enum zm_down_reason)99), "unknown");
	assert_string_equal(zm_tcp_how_str(ZM_TCP_HOW_NONE), "none");
	assert_string_equal(zm_tcp_how_str(ZM_TCP_HOW_FIN), "fin");
	assert_string_equal(zm_tcp_how_str(ZM_TCP_HOW_RESET_RX), "reset_rx");
	assert_string_equal(zm_tcp_how_str(ZM_TCP_HOW_RESET_TX), "reset_tx");
	assert_string_equal(zm_tcp_how_str(ZM_TCP_HOW_TIMEOUT), "timeout");
	assert_string_equal(zm_tcp_how_str(ZM_TCP_HOW_ERROR), "error");
	assert_string_equal(zm_tcp_how_str((enum zm_tcp_how)6), "unknown");
	assert_non_null(zm_version());
	assert_true(strlen(zm_version()) > 0);
}

#define ENV_TEST(t) cmocka_unit_test_setup_teardown(t, env_setup, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_exchanges_hello_and_welcome),
		cmocka_unit_test(test_connect_without_reconnect_asks_for_no_monitored),
		cmocka_unit_test(test_connect_default_name_is_libzenmon),
		cmocka_unit_test(test_hello_carries_pacing_options),
		cmocka_unit_test(test_hello_without_pacing_options_asks_for_agent_defaults),
		cmocka_unit_test(test_limits_are_those_of_welcome),
		cmocka_unit_test(test_connect_missing_socket_gives_enoent),
		cmocka_unit_test(test_connect_honours_zenmon_socket_env),
		cmocka_unit_test(test_connect_hello_error_gives_its_code),
		cmocka_unit_test(test_connect_garbage_reply_gives_eproto),
		cmocka_unit_test(test_connect_refuses_welcome_of_unknown_version),
		cmocka_unit_test(test_connect_agent_closing_without_answer_gives_econnreset),
		cmocka_unit_test(test_connect_silent_agent_times_out),
		cmocka_unit_test(test_connect_rejects_overlong_name),
		cmocka_unit_test(test_close_accepts_null),
		ENV_TEST(test_refs_are_distinct_and_nonzero),
		ENV_TEST(test_monitor_requests_are_pipelined_in_one_frame),
		ENV_TEST(test_monitor_rejects_bad_arguments),
		ENV_TEST(test_monitor_pidfd_with_bad_fd_gives_ebadf),
		ENV_TEST(test_autoflush_sends_without_explicit_flush),
		ENV_TEST(test_down_for_active_ref_is_dispatched_once_with_all_fields),
		ENV_TEST(test_down_exited_carries_status_and_noproc_nothing),
		ENV_TEST(test_down_for_unknown_ref_is_dropped),
		ENV_TEST(test_demonitor_flush_drops_down_already_received),
		ENV_TEST(test_demonitor_flush_drops_down_read_in_part),
		ENV_TEST(test_demonitor_without_flush_also_drops_down),
		ENV_TEST(test_demonitor_unknown_ref_gives_enoent),
		ENV_TEST(test_demonitor_rejects_unknown_flags),
		ENV_TEST(test_demonitor_from_on_down_drops_later_down_in_same_frame),
		ENV_TEST(test_dispatch_from_on_down_is_ebusy),
		ENV_TEST(test_unknown_record_types_are_ignored),
		ENV_TEST(test_longer_down_record_is_accepted),
		ENV_TEST(test_dispatch_batch_hands_a_frame_as_one_array),
		ENV_TEST(test_dispatch_batch_drops_demonitored_refs),
		ENV_TEST(test_dispatch_batch_keeps_wire_order_around_an_error),
		ENV_TEST(test_dispatch_batch_counts_downs_without_callback),
		ENV_TEST(test_dispatch_batch_from_on_batch_is_ebusy),
		ENV_TEST(test_agent_error_reaches_error_handler_with_message),
		ENV_TEST(test_enoent_for_crossed_demonitor_is_not_reported),
		ENV_TEST(test_agent_error_for_monitor_ends_the_monitor),
		ENV_TEST(test_agent_eof_gives_enotconn),
		ENV_TEST(test_final_error_then_eof_reaches_handler_before_enotconn),
		ENV_TEST(test_final_error_reaches_handler_after_a_failed_send),
		ENV_TEST(test_sync_on_a_lost_connection_hands_over_the_final_error),
		ENV_TEST(test_malformed_frame_gives_eproto),
		ENV_TEST(test_short_down_record_gives_eproto),
		ENV_TEST(test_frame_with_wrong_count_is_refused_whole),
		ENV_TEST(test_pidfd_is_passed_to_agent),
		ENV_TEST(test_pidfds_beyond_one_sendmsg_arrive_in_order),
		ENV_TEST(test_flush_survives_partial_writes),
		ENV_TEST(test_monitor_tcp_each_form_is_encoded),
		ENV_TEST(test_monitor_tcp_fd_passes_the_socket_itself),
		ENV_TEST(test_pidfds_and_sockets_share_one_fd_queue),
		ENV_TEST(test_monitor_tcp_rejects_bad_arguments),
		ENV_TEST(test_tcp_down_decodes_every_field),
		ENV_TEST(test_tcp_down_ipv4_and_noconnection),
		ENV_TEST(test_tcp_down_without_its_tail_gives_eproto),
		ENV_TEST(test_agent_error_for_monitor_tcp_ends_the_monitor),
		cmocka_unit_test(test_sync_round_trip_dispatches_what_came_before),
		ENV_TEST(test_sync_without_reply_times_out),
		cmocka_unit_test(test_status_returns_reply_text),
		ENV_TEST(test_status_error_reply_gives_its_code),
		ENV_TEST(test_wait_times_out_with_nothing_to_read),
		cmocka_unit_test(test_refset_holds_a_million_refs),
		cmocka_unit_test(test_refset_survives_churn_with_collisions),
		cmocka_unit_test(test_reason_str_and_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
