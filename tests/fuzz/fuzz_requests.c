// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * libFuzzer target: the agent's request handling, from the bytes a client
 * writes to what the agent writes back.
 *
 * Each input is one client connection to a fresh agent: the agent's own
 * objects (client.c, monitor.c, monitor_tcp.c, report.c, the registry, the
 * dispatcher, ...) over its own event loop, with the kernel side replaced by
 * fake_kwatch.c. The connection is one end of a socketpair; the harness
 * holds the other and plays the client:
 *
 *   byte 0    the fds to pass with the first bytes, as SCM_RIGHTS:
 *             bits 0-1 how many (0..3), then two bits each for its kind:
 *             0 /dev/null, 1 a pidfd of this process, 2 a pidfd of a
 *             process already reaped, 3 an established loopback TCP socket
 *   byte 1    the agent and the run: bit 0 --max-queued 16, bit 1 the
 *             watched targets die once the agent has read everything,
 *             bit 2 --max-batch 4, bit 3 --global-rate 100, bits 4-7 how
 *             they die (an exit status, a signal, how a socket closes)
 *   byte 2    who and what limits: bit 0 the client is uid 65534 (so the
 *             access policy and the quotas apply; needs root to switch,
 *             else the client is whoever runs this), bit 1 small quotas
 *             (monitors, requests per second, queued bytes), bit 2 the
 *             maps hold a previous agent's watches (adoption; one of them
 *             fired while no agent ran), bit 3 --adopt-timeout 0
 *   the rest  the byte stream the client writes
 *
 * Run: write the stream as the socket takes it; once the agent has read it
 * all, kill the watched targets (byte 1 says whether), let the DOWNs go out
 * (the dispatcher's clock runs an hour a pass, as in the agent's shutdown
 * flush, so pacing holds nothing back), then half-close: the agent reads the
 * end of the stream and drops the client. Everything the agent wrote must
 * be well-formed frames of agent-to-client records, the first one WELCOME or
 * an ERROR; anything else aborts, as does any sanitizer report or a leak
 * once the agent is torn down.
 *
 * main.c is not linked (it is the daemon's setup); the two functions of it
 * that the other modules call are defined here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "fake_kwatch.h"
#include "log.h"
#include "procfs.h"

#define FUZZ_CTL_LEN 3               /* control bytes before the stream */
#define FUZZ_MAX_INPUT (256U * 1024)
#define FUZZ_NOBODY 65534
/* What the fake maps inherit (byte 2, bit 2): a process that died while no
 * agent ran (gen_corpus.c's seeds name it), and a socket that closed. */
#define FUZZ_DEAD_PID 4242
#define FUZZ_DEAD_START 777
#define FUZZ_DEAD_COOKIE 12345
#define FUZZ_MAX_PASSES 1000000U    /* loop passes for one input: beyond that, a hang */
#define FUZZ_DRAIN_PASSES 64U       /* passes to let queued DOWNs go out */

enum fuzz_phase {
	PHASE_FEED,     /* writing the stream; the agent reads it */
	PHASE_DRAIN,    /* targets killed; DOWNs going out */
	PHASE_CLOSE,    /* half-closed; waiting for the agent to drop the client */
};

/* Made once: the fds an input may pass (each input passes dups). */
static struct {
	int devnull;
	int pidfd_self;
	int pidfd_reaped;
	int tcp_cli, tcp_srv;
	uint64_t init_start;      /* pid 1's start time, for an inherited watch */
} fx = { -1, -1, -1, -1, -1, 0 };

struct run {
	struct agent *a;
	int peer;                 /* the harness's end; the agent has the other */
	int agent_fd;             /* the agent's end, while the agent holds it */
	const uint8_t *in;
	size_t in_len, in_off;
	int fds[3];
	size_t nfds;
	bool fds_sent;
	uint8_t flags, who;
	enum fuzz_phase phase;
	unsigned int passes, drain_passes;
	uint64_t clock_jump_ns;   /* added to the dispatcher's clock in DRAIN */
	struct zm_buf out;        /* what the agent wrote, not yet checked */
	uint64_t records_out;
	struct loop_source busy;  /* an eventfd that is always readable */
};

/* The run in progress (one at a time: libFuzzer calls us sequentially). */
static struct run *cur;
/* $ZM_FUZZ_TRACE set: print every record the agent sends (replaying a finding). */
static bool trace;

static __attribute__((noreturn, format(printf, 1, 2))) void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz_requests: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/* ---- what main.c would provide -------------------------------------------- */

void agent_drain_ring(struct agent *a)
{
	kwatch_drain(a->kw);
}

void agent_dispatch(struct agent *a)
{
	uint64_t now = agent_now_ns(CLOCK_MONOTONIC) + (cur ? cur->clock_jump_ns : 0);

	a->dispatch_due = false;
	dispatch_run(&a->dispatcher, now, 64);
}

/* ---- fixtures ------------------------------------------------------------- */

static int tcp_pair(int *ret_cli, int *ret_srv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, s = -1;

	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		goto fail;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto fail;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		goto fail;
	close(l);
	*ret_cli = c;
	*ret_srv = s;
	return 0;
fail:
	if (l >= 0)
		close(l);
	if (c >= 0)
		close(c);
	return -1;
}

static int pidfd_of_reaped_child(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(0);
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	waitpid(pid, NULL, 0);
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct proc_stat st;

	signal(SIGPIPE, SIG_IGN);
	trace = getenv("ZM_FUZZ_TRACE") != NULL;
	/* The agent logs every protocol error it refuses: that is the fuzzer's
	 * daily bread, not news. */
	log_set_level(LOG_LVL_ERROR);
	fx.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fx.pidfd_self = (int)syscall(SYS_pidfd_open, getpid(), 0);
	fx.pidfd_reaped = pidfd_of_reaped_child();
	if (fx.devnull < 0 || fx.pidfd_self < 0 || fx.pidfd_reaped < 0 ||
	    tcp_pair(&fx.tcp_cli, &fx.tcp_srv) < 0)
		fuzz_fail("cannot make the fixtures: %s", strerror(errno));
	if (procfs_read_stat("/proc", 1, &st) == 0)
		fx.init_start = st.start_ticks;
	return 0;
}

/* ---- the agent ------------------------------------------------------------ */

/* As main.c sets the agent up, but for the socket, the signals and the timers. */
static struct agent *agent_new(uint8_t flags, uint8_t who)
{
	static const struct registry_ops reg_ops = {
		.unwatch = monitor_unwatch,
		.queued = client_on_queued,
		.released = monitor_released,
	};
	struct agent *a = calloc(1, sizeof(*a));
	uint64_t now = agent_now_ns(CLOCK_MONOTONIC);

	if (!a)
		fuzz_fail("out of memory");
	a->opts = (struct agent_opts){
		.socket_path = "/nonexistent/zenmon-fuzz.sock",
		.pin_dir = "/nonexistent/zenmon-fuzz",
		.proc_root = "/proc",
		.socket_mode = 0666,
		.wakeup_interval_ns = ZM_DEFAULT_WAKEUP_INTERVAL_NS,
		.max_batch = flags & 0x04 ? 4 : 1024,
		.batch_window_us = 1000,
		.global_rate = flags & 0x08 ? 100 : 0,
		.max_queued = flags & 0x01 ? 16 : 0,
		.log_level = LOG_LVL_ERROR,
		.adopt_timeout_s = who & 0x08 ? 0 : 60,
	};
	if (who & 0x02) {
		a->opts.quotas = (struct access_quotas){
			.monitors_per_subscriber = 8,
			.monitors_per_uid = 12,
			.connections_per_uid = 1,
			.requests_per_second = 64,
		};
		a->opts.max_queued_bytes = 4096;
	}
	a->listen_src.fd = -1;
	a->spare_fd = -1;
	a->redrain_src.fd = -1;
	a->check_src.fd = -1;
	a->signal_src.fd = -1;
	a->ring_src.fd = -1;
	a->dispatch_src.fd = -1;
	a->started_mono_ns = now;
	metrics_init(&a->metrics);
	a->loop = loop_new();
	a->reg = registry_new(&reg_ops, a);
	a->scratch = calloc(a->opts.max_batch, sizeof(*a->scratch));
	if (!a->loop || !a->reg || !a->scratch ||
	    kwatch_open(NULL, monitor_on_kernel_event, a, &a->kw) < 0)
		fuzz_fail("cannot set up the agent");
	kwatch_set_tcp_handler(a->kw, monitor_on_tcp_event, a);
	if (who & 0x04) {
		fake_kwatch_inherit(a->kw, 1, fx.init_start, false, 0);
		fake_kwatch_inherit(a->kw, FUZZ_DEAD_PID, FUZZ_DEAD_START, true, 9);
		fake_kwatch_inherit_tcp(a->kw, FUZZ_DEAD_COOKIE, true, 2);
	}
	if (adopt_load(a) < 0)
		fuzz_fail("adopt_load failed");
	dispatch_init(&a->dispatcher, &client_dispatch_ops, a->opts.global_rate,
		      a->opts.global_rate ? 4 : 0, now);
	return a;
}

/* As main.c's way out: every client, every wait, every structure. */
static void agent_free(struct agent *a)
{
	a->stopping = true;
	client_close_all(a);
	adopt_free(a);
	monitor_free_pending(a);
	free(a->pid_hints);
	kwatch_close(a->kw);
	registry_free(a->reg);
	access_table_free(&a->access);
	loop_free(a->loop);
	free(a->scratch);
	free(a);
}

/* ---- the client's side ---------------------------------------------------- */

static bool is_agent_record(uint16_t type)
{
	switch (type) {
	case ZM_REC_WELCOME:
	case ZM_REC_DOWN:
	case ZM_REC_ERROR:
	case ZM_REC_SYNCED:
	case ZM_REC_STATUS_REPLY:
	case ZM_REC_STATS_REPLY:
	case ZM_REC_TARGETS_REPLY:
	case ZM_REC_MONITORED:
		return true;
	}
	return false;
}

/* A DOWN or MONITORED must name a monitor (ref 0 is none) and a kind of target. */
static void check_target(const char *what, uint64_t ref, uint16_t kind)
{
	if (ref == 0 || (kind != ZM_TARGET_PROCESS && kind != ZM_TARGET_TCP))
		fuzz_fail("%s with ref %llu kind %u", what, (unsigned long long)ref, kind);
}

/* The body of one agent record must decode as its type says. */
static void check_agent_record(struct run *r, const struct zm_record *rec)
{
	struct zm_welcome w;
	struct zm_down d;
	struct zm_error e;
	struct zm_text_reply t;
	struct zm_monitored m;
	uint64_t token;
	int x = 0;

	if (trace)
		fprintf(stderr, "fuzz_requests: pass %u: %s (%u bytes)\n", r->passes,
			zm_rec_type_name(rec->type), rec->len);
	if (!is_agent_record(rec->type))
		fuzz_fail("the agent sent record type 0x%x", rec->type);
	if (r->records_out++ == 0 && rec->type != ZM_REC_WELCOME && rec->type != ZM_REC_ERROR)
		fuzz_fail("the agent's first record is %s, not WELCOME or ERROR",
			  zm_rec_type_name(rec->type));
	switch (rec->type) {
	case ZM_REC_WELCOME:
		x = zm_dec_welcome(rec, &w);
		if (x == 0 && w.version != ZM_PROTO_VERSION)
			fuzz_fail("WELCOME says version %u", w.version);
		break;
	case ZM_REC_DOWN:
		x = zm_dec_down(rec, &d);
		if (x == 0)
			check_target("DOWN", d.ref, d.kind);
		break;
	case ZM_REC_ERROR:
		x = zm_dec_error(rec, &e);
		if (x == 0 && trace)
			fprintf(stderr, "fuzz_requests:   ref %llu %s on %s: %s\n", (unsigned long long)e.ref,
				strerrorname_np(e.code) ?: "?", zm_rec_type_name(e.request), e.message);
		if (x == 0 && (e.code <= 0 || !e.message[0]))
			fuzz_fail("ERROR with code %d, message \"%s\"", e.code, e.message);
		break;
	case ZM_REC_SYNCED:
	case ZM_REC_STATUS_REPLY:
		x = zm_dec_u64(rec, &token);
		break;
	case ZM_REC_MONITORED:
		x = zm_dec_monitored(rec, &m);
		if (x == 0)
			check_target("MONITORED", m.ref, m.kind);
		break;
	default:
		x = zm_dec_text_reply(rec, &t);
		break;
	}
	if (x < 0)
		fuzz_fail("the agent sent a %s record of %u bytes that does not decode",
			  zm_rec_type_name(rec->type), rec->len);
}

/* Check every whole frame the agent wrote so far. */
static void check_output(struct run *r)
{
	for (;;) {
		struct zm_frame f;
		struct zm_record_iter it;
		struct zm_record rec;
		int x = zm_frame_parse(zm_buf_head(&r->out), zm_buf_pending(&r->out), ZM_FRAME_MAX, &f);

		if (x == 0)
			return;
		if (x < 0)
			fuzz_fail("the agent wrote a bad frame header (%s)", strerror(-x));
		zm_record_iter_init(&it, &f);
		while ((x = zm_record_next(&it, &rec)) > 0)
			check_agent_record(r, &rec);
		if (x < 0)
			fuzz_fail("the agent wrote a frame whose records do not add up");
		zm_buf_consume(&r->out, f.len);
	}
}

/* Read what the agent wrote, as a client that always reads. */
static void drain_peer(struct run *r)
{
	static uint8_t chunk[64 * 1024];

	for (;;) {
		ssize_t n = recv(r->peer, chunk, sizeof(chunk), MSG_DONTWAIT);

		if (n <= 0)
			break;
		if (zm_buf_append(&r->out, chunk, (size_t)n) < 0)
			fuzz_fail("out of memory");
	}
	check_output(r);
}

static void feed(struct run *r)
{
	while (r->in_off < r->in_len || (!r->fds_sent && r->nfds)) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 3)];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = { .iov_base = (void *)(r->in + r->in_off), .iov_len = r->in_len - r->in_off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		uint8_t zero = 0;
		ssize_t n;

		if (!r->fds_sent && r->nfds) {
			struct cmsghdr *cm;

			/* fds need a byte to ride on: an empty stream sends a NUL. */
			if (iov.iov_len == 0) {
				iov.iov_base = &zero;
				iov.iov_len = 1;
			}
			mh.msg_control = cbuf.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * r->nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * r->nfds);
			memcpy(CMSG_DATA(cm), r->fds, sizeof(int) * r->nfds);
		}
		n = sendmsg(r->peer, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			return;  /* full (or the agent is gone): next pass */
		if (mh.msg_control) {
			r->fds_sent = true;
			if (iov.iov_base == &zero)
				continue;
		}
		r->in_off += (size_t)n;
	}
}

static uint32_t death_status(uint8_t sel)
{
	static const uint32_t statuses[16] = {
		0 << 8, 1 << 8, 3 << 8, 255 << 8,             /* exited */
		9, 15, 1, 6 | 0x80, 11 | 0x80, 2, 10, 31,      /* killed, some with a core */
		64, 0x7f, 0xffff, 0xffffffffU,                 /* nonsense from the kernel */
	};

	return statuses[sel & 15];
}

/* Before each sleep of the loop: the agent's own work, then the client's move. */
static void before_sleep(void *ctx)
{
	struct run *r = ctx;
	struct agent *a = r->a;
	int unread = 0;

	if (++r->passes > FUZZ_MAX_PASSES)
		fuzz_fail("the agent made no progress in %u loop passes (phase %d)", r->passes, r->phase);
	/* The agent checks its limits on a timer, between passes: before the
	 * dispatcher gets to DOWNs that a death just queued. */
	client_check_limits(a, agent_now_ns(CLOCK_MONOTONIC));
	if (a->dispatch_due || registry_queued_count(a->reg) > 0)
		agent_dispatch(a);
	client_flush_all(a);
	drain_peer(r);
	if (!a->clients) {
		loop_stop(a->loop);
		return;
	}

	switch (r->phase) {
	case PHASE_FEED:
		feed(r);
		if (r->in_off < r->in_len || ioctl(r->agent_fd, FIONREAD, &unread) < 0 || unread > 0)
			return;
		if (r->flags & 0x02)
			fake_kwatch_fire_all(a->kw, death_status(r->flags >> 4),
					     (uint8_t)(1 + (r->flags >> 4) % 5));
		r->phase = PHASE_DRAIN;
		return;
	case PHASE_DRAIN:
		/* Pacing may hold DOWNs for seconds: an hour a pass frees them. */
		r->clock_jump_ns += 3600ULL * 1000000000ULL;
		a->dispatch_due = true;
		if (registry_queued_count(a->reg) > 0 && ++r->drain_passes < FUZZ_DRAIN_PASSES)
			return;
		shutdown(r->peer, SHUT_WR);
		r->phase = PHASE_CLOSE;
		return;
	case PHASE_CLOSE:
		return;
	}
}

static void on_busy(struct loop_source *src, uint32_t events)
{
}

static int fd_of_kind(unsigned int kind)
{
	static const int *const kinds[4] = { &fx.devnull, &fx.pidfd_self, &fx.pidfd_reaped, &fx.tcp_cli };

	return fcntl(*kinds[kind & 3], F_DUPFD_CLOEXEC, 0);
}

/*
 * The connection. SO_PEERCRED of a socketpair is its maker's effective ids
 * at the call: as nobody, the agent sees a local user, not root.
 */
static int fuzz_socketpair(bool as_nobody, int sv[2])
{
	bool switched = as_nobody && setresgid(-1, FUZZ_NOBODY, -1) == 0;
	int r;

	switched = switched && setresuid(-1, FUZZ_NOBODY, -1) == 0;
	r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	if (switched && setresuid(-1, 0, -1) < 0)
		fuzz_fail("cannot become root again: %s", strerror(errno));
	if (as_nobody && getegid() == FUZZ_NOBODY && setresgid(-1, 0, -1) < 0)
		fuzz_fail("cannot take group 0 again: %s", strerror(errno));
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = { .peer = -1, .agent_fd = -1 };
	int sv[2], x;

	if (size < FUZZ_CTL_LEN || size > FUZZ_MAX_INPUT)
		return -1;  /* not worth keeping in the corpus */
	r.flags = data[1];
	r.who = data[2];
	r.in = data + FUZZ_CTL_LEN;
	r.in_len = size - FUZZ_CTL_LEN;
	r.nfds = data[0] & 3;
	for (size_t i = 0; i < r.nfds; i++) {
		r.fds[i] = fd_of_kind((unsigned int)data[0] >> (2 + 2 * i));
		if (r.fds[i] < 0)
			fuzz_fail("dup: %s", strerror(errno));
	}

	r.a = agent_new(r.flags, r.who);
	if (fuzz_socketpair(r.who & 0x01, sv) < 0)
		fuzz_fail("socketpair: %s", strerror(errno));
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || client_accept(r.a, sv[0]) < 0)
		fuzz_fail("cannot hand the connection to the agent");
	r.agent_fd = sv[0];
	r.peer = sv[1];
	/* An always-readable source: the loop never sleeps, so the harness
	 * gets a pass whatever the agent waits for. */
	r.busy.fd = eventfd(1, EFD_CLOEXEC);
	r.busy.fn = on_busy;
	if (r.busy.fd < 0 || loop_add(r.a->loop, &r.busy, EPOLLIN) < 0)
		fuzz_fail("eventfd: %s", strerror(errno));

	cur = &r;
	loop_set_before_sleep(r.a->loop, before_sleep, &r);
	feed(&r);
	x = loop_run(r.a->loop);
	if (x < 0)
		fuzz_fail("the loop failed: %s", strerror(-x));
	/* The client is gone: the agent closed its end. What it wrote last. */
	drain_peer(&r);
	cur = NULL;

	loop_del(r.a->loop, &r.busy);
	close(r.busy.fd);
	agent_free(r.a);
	close(r.peer);
	/* Our copies of the fds passed (the kernel gave the agent its own). */
	for (size_t i = 0; i < r.nfds; i++)
		close(r.fds[i]);
	zm_buf_free(&r.out);
	return 0;
}
