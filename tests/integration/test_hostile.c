/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Hostile and broken clients (issue 8): one that connects and never speaks,
 * one that sends half a frame and stalls, one that opens connections until
 * the limit, one that floods MONITOR for processes it may not watch, one
 * that never reads its DOWNs, one that passes fds that are no pidfds. In
 * every test a well-behaved subscriber monitors processes and kills them
 * while the abuse goes on, and must get each DOWN once, never starved:
 * within GOOD_DEADLINE_MS of the kill, a bound only a stuck or starved
 * subscriber misses (the machine is loaded on purpose, may have 2 cores and
 * run sanitizers). The slowest is printed; no latency is asserted. Where
 * the abuse could cost the agent memory or fds, the test checks that the
 * cost is bounded (and, for fds, given back).
 *
 * The unprivileged clients run in a forked child as uid 65534 (nobody),
 * switched before connecting so that SO_PEERCRED reports it; their agent
 * gets --socket-mode 0666 and a traversable directory.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define GOOD_DEADLINE_MS (2 * ZMH_TIMEOUT_MS) /* a DOWN not here by then is starved */
#define GOOD_ROUNDS 4           /* children the good subscriber kills per test */
#define GOOD_MAX 32
#define NOBODY 65534
#define SILENT_N 64             /* connections that never speak */
#define STALLED_N 16            /* connections stalled inside a frame (each kind) */
#define STALLED_BODY (256U * 1024)
#define CONN_LIMIT 8            /* --max-connections-per-uid */
#define CONN_TRIES 20
#define FD_HEADROOM 12          /* fds the agent may open past those it holds */
#define FLOOD_FRAME 256         /* MONITOR records per frame in the flood */
#define NONREADER_N 50000       /* monitors of the subscriber that never reads */
#define NONREADER_MAX_QUEUED "20000"

/* ---- the well-behaved subscriber ----------------------------------------- */

struct good {
	struct zm_client *cl;
	struct zmh_collector *col;
	uint64_t refs[GOOD_MAX];
	pid_t pids[GOOD_MAX];
	size_t n;
	int64_t slowest_ms;
};

static void good_begin(struct good *g, const struct zmh_agent *a)
{
	memset(g, 0, sizeof(*g));
	g->col = zmh_collector_new();
	assert_int_equal(zmh_connect(a, "it-good", g->col, &g->cl), 0);
}

/*
 * Monitor a new child, kill it, and wait for its DOWN: it must come within
 * GOOD_DEADLINE_MS of the kill, with the right reason, and be the only new
 * DOWN.
 */
static void good_round(struct good *g)
{
	const struct zm_down_info *d;
	struct zmh_child ch;
	int64_t t0, ms;
	uint64_t ref;
	long got;

	assert_true(g->n < GOOD_MAX);
	assert_int_equal(zmh_child_spawn(&ch), 0);
	assert_int_equal(zm_monitor_pid_start(g->cl, ch.pid, ch.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(g->cl, g->col), 0);
	t0 = zmh_mono_ms();
	assert_int_equal(zmh_child_kill(&ch, SIGKILL), 0);
	got = zmh_wait_downs(g->cl, g->col, g->n + 1, GOOD_DEADLINE_MS);
	ms = zmh_mono_ms() - t0;
	assert_int_equal(zmh_child_reap(&ch), 0);
	if (got != (long)g->n + 1)
		fail_msg("the good subscriber's DOWN for pid %d did not come within %d ms of the kill "
			 "(%ld DOWNs, want %zu)", ch.pid, GOOD_DEADLINE_MS, got, g->n + 1);
	assert_int_equal(zmh_collector_count(g->col, ref, &d), 1);
	assert_int_equal(d->pid, ch.pid);
	assert_int_equal(d->reason, ZM_DOWN_KILLED);
	assert_int_equal(d->signal, SIGKILL);
	g->refs[g->n] = ref;
	g->pids[g->n++] = ch.pid;
	if (ms > g->slowest_ms)
		g->slowest_ms = ms;
}

static void good_rounds(struct good *g, int n)
{
	for (int i = 0; i < n; i++)
		good_round(g);
}

/* Nothing more came, and every DOWN came once; no ERROR ever. */
static void good_end(struct good *g)
{
	assert_int_equal(zmh_quiet(g->cl, g->col, ZMH_QUIET_MS), 0);
	assert_int_equal(g->col->n, g->n);
	for (size_t i = 0; i < g->n; i++)
		assert_int_equal(zmh_collector_count(g->col, g->refs[i], NULL), 1);
	if (g->col->nerr)
		fail_msg("the good subscriber got ERROR %d: %s", g->col->errs[0].error,
			 g->col->errs[0].message);
	printf("  good subscriber: %zu DOWNs, each once, the slowest %lld ms after its kill\n", g->n,
	       (long long)g->slowest_ms);
	zmh_client_close(g->cl);
}

/* ---- the agent's costs --------------------------------------------------- */

/* VmRSS of the agent, in KiB. */
static long agent_rss_kb(const struct zmh_agent *a)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)a->pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	assert_true(kb > 0);
	return kb;
}

/* Open fds of the agent. */
static long agent_fds(const struct zmh_agent *a)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)a->pid);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The agent's open fds settle back to want (closing a client is the
 * agent's next pass, not ours). */
static void expect_agent_fds(const struct zmh_agent *a, long want)
{
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	long n;

	while ((n = agent_fds(a)) != want && zmh_mono_ms() < deadline)
		zmh_sleep_ms(20);
	if (n != want)
		fail_msg("the agent holds %ld fds, %ld before the abuse: it leaked some", n, want);
}

/* ---- raw bytes ----------------------------------------------------------- */

static int raw_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One frame holding the records written into buf so far, sent whole. */
static int send_frames(int fd, struct zm_frame_writer *w)
{
	int r;

	zm_frame_end(w);
	r = send_all(fd, zm_buf_head(w->buf), zm_buf_pending(w->buf));
	zm_buf_consume(w->buf, zm_buf_pending(w->buf));
	return r;
}

static void add_hello(struct zm_frame_writer *w, const char *name)
{
	struct zm_hello h = { .version = ZM_PROTO_VERSION, .max_rate = 1000000 };
	uint8_t body[ZM_HELLO_LEN + ZM_NAME_MAX];

	snprintf(h.name, sizeof(h.name), "%s", name);
	if (zm_frame_add(w, ZM_REC_HELLO, body, zm_enc_hello(body, &h)) < 0)
		abort();
}

static void add_monitor(struct zm_frame_writer *w, uint64_t ref, uint32_t pid, uint64_t start)
{
	struct zm_monitor_proc m = { .ref = ref, .pid = pid, .start_ticks = start,
				     .flags = start ? ZM_MON_START_TIME : 0 };
	uint8_t body[ZM_MONITOR_PROC_LEN];

	if (zm_frame_add(w, ZM_REC_MONITOR_PROC, body, zm_enc_monitor_proc(body, &m)) < 0)
		abort();
}

static void add_sync(struct zm_frame_writer *w, uint64_t token)
{
	uint8_t body[8];

	if (zm_frame_add(w, ZM_REC_SYNC, body, zm_enc_u64(body, token)) < 0)
		abort();
}

/* One record in one frame, with fds (n may be 0) as SCM_RIGHTS. 0 or -errno. */
static int send_record_fds(int sock, uint16_t type, const void *body, size_t len, const int *fds,
			   size_t n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} cbuf;
	uint8_t frame[ZM_FRAME_HDR_LEN + ZM_REC_HDR_LEN + ZM_MONITOR_TCP_LEN];
	struct iovec iov = { .iov_base = frame, .iov_len = ZM_FRAME_HDR_LEN + ZM_REC_HDR_LEN + len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	assert_true(len <= ZM_MONITOR_TCP_LEN && n <= 4);
	zmh_frame_header(frame, (uint32_t)iov.iov_len, ZM_FRAME_MAGIC, 1);
	zmh_put_u16(frame + 8, type);
	zmh_put_u16(frame + 10, (uint16_t)(ZM_REC_HDR_LEN + len));
	memcpy(frame + 12, body, len);
	if (n) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Read the next ERROR (DOWNs before it are a failure) and decode it. */
static void expect_error(struct zmh_raw *r, uint64_t ref, uint16_t request, int code)
{
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zm_record zr;
	struct zm_error e;
	int x;

	assert_non_null(rec);
	x = zmh_raw_expect(r, ZM_REC_ERROR, ZMH_TIMEOUT_MS, rec, NULL);
	if (x != 1)
		fail_msg("want ERROR %s for ref %llu, got %s", strerror(code), (unsigned long long)ref,
			 x == 0 ? "a closed connection" : strerror(-x));
	zr = (struct zm_record){ .body = rec->body, .type = rec->type, .len = rec->len };
	assert_int_equal(zm_dec_error(&zr, &e), 0);
	if (e.code != code || e.ref != ref || e.request != request)
		fail_msg("want ERROR %d (%s) ref %llu on 0x%x, got %d (%s) ref %llu on 0x%x: \"%s\"", code,
			 strerror(code), (unsigned long long)ref, request, e.code, strerror(e.code),
			 (unsigned long long)e.ref, e.request, e.message);
	free(rec);
}

/* ---- a hostile client in a child process ---------------------------------- */

/* What a hostile child saw, sent back through a pipe in one write. */
struct report {
	long accepted;        /* connections that got WELCOME */
	long refused;         /* connections refused with an ERROR (code in refuse_code) */
	long dropped;         /* connections closed without a word */
	int refuse_code;
	long sent;            /* MONITOR requests sent */
	long eperm, eagain, other;
	int other_code;
	long downs;
	int fail;             /* errno of what went wrong in the child itself, 0 if nothing */
	char msg[96];
};

struct hostile {
	pid_t pid;
	int report;           /* read end */
	int hold;             /* write end: the child goes on until it is closed */
};

typedef void (*hostile_fn)(const char *sock, int hold, struct report *rep);

/* Become nobody, all ids and no groups, as a local user would connect. */
static int become_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		return -errno;
	return 0;
}

static void hostile_start(struct hostile *h, const char *sock, bool as_nobody, hostile_fn fn)
{
	int rp[2], hp[2];

	assert_int_equal(pipe2(rp, O_CLOEXEC), 0);
	assert_int_equal(pipe2(hp, O_CLOEXEC), 0);
	h->pid = fork();
	assert_true(h->pid >= 0);
	if (h->pid == 0) {
		struct report rep = { 0 };
		int r;

		/* cmocka's handlers and the test's pipes are not the child's. */
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(rp[0]);
		close(hp[1]);
		r = as_nobody ? become_nobody() : 0;
		if (r < 0) {
			rep.fail = -r;
			snprintf(rep.msg, sizeof(rep.msg), "cannot become uid %d", NOBODY);
		} else {
			fn(sock, hp[0], &rep);
		}
		if (write(rp[1], &rep, sizeof(rep)) != sizeof(rep))
			_exit(2);
		/* Hold what it has (connections, unread DOWNs) until the test is done. */
		while (read(hp[0], &r, 1) > 0)
			;
		_exit(0);
	}
	close(rp[1]);
	close(hp[0]);
	h->report = rp[0];
	h->hold = hp[1];
	zmh_pid_track(h->pid);
}

/* The child's report (it keeps holding its resources). */
static void hostile_report(struct hostile *h, struct report *rep, int timeout_ms)
{
	struct pollfd p = { .fd = h->report, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1)
		fail_msg("the hostile client sent no report within %d ms", timeout_ms);
	assert_int_equal(read(h->report, rep, sizeof(*rep)), sizeof(*rep));
	if (rep->fail)
		fail_msg("hostile client: %s: %s", rep->msg, strerror(rep->fail));
}

/* Let the child go: its connections close. */
static void hostile_end(struct hostile *h)
{
	int ws;

	close(h->hold);
	close(h->report);
	assert_int_equal(waitpid(h->pid, &ws, 0), h->pid);
	zmh_pid_untrack(h->pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* Has the test said stop (its end of the hold pipe closed)? */
static bool hold_released(int hold)
{
	struct pollfd p = { .fd = hold, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* Start an agent whose socket a uid other than root can reach. */
static void start_open_agent(struct zmh_agent *a, const char *const *extra)
{
	assert_int_equal(zmh_extra_agent_start(a, extra), 0);
	/* mkdtemp made it 0700: let others reach the socket inside. */
	assert_int_equal(chmod(a->dir, 0711), 0);
}

/* ---- never speaks -------------------------------------------------------- */

static void test_silent_connections_do_not_delay_a_subscriber(void **state)
{
	struct zmh_env *env = zmh_env(state);
	int fds[SILENT_N];
	long rss0, fds0, grew;
	struct good g;

	good_begin(&g, &env->agent);
	good_round(&g);
	fds0 = agent_fds(&env->agent);
	rss0 = agent_rss_kb(&env->agent);
	for (int i = 0; i < SILENT_N; i++) {
		fds[i] = raw_socket(env->agent.sock);
		assert_true(fds[i] >= 0);
		zmh_fd_track(fds[i]);
	}
	good_rounds(&g, GOOD_ROUNDS);
	grew = agent_rss_kb(&env->agent) - rss0;
	printf("  %d silent connections: the agent grew by %ld KiB\n", SILENT_N, grew);
	/* A connection that never spoke costs its client struct, no buffers. */
	assert_true(grew < 8 * 1024);
	assert_true(zmh_agent_alive(&env->agent));
	for (int i = SILENT_N - 1; i >= 0; i--)
		zmh_fd_close(fds[i]);
	expect_agent_fds(&env->agent, fds0);
	good_round(&g);
	good_end(&g);
}

/* ---- half a frame, then nothing ------------------------------------------ */

static void test_half_frames_stall_without_delaying_others_or_growing_past_a_frame(void **state)
{
	struct zmh_env *env = zmh_env(state);
	int fds[2 * STALLED_N];
	uint8_t *body = calloc(1, STALLED_BODY);
	struct zm_buf buf = { 0 };
	struct zm_frame_writer w;
	uint8_t hdr[ZM_FRAME_HDR_LEN];
	long rss0, fds0, grew;
	struct good g;

	assert_non_null(body);
	good_begin(&g, &env->agent);
	good_round(&g);
	fds0 = agent_fds(&env->agent);
	rss0 = agent_rss_kb(&env->agent);
	zm_frame_writer_init(&w, &buf);
	for (int i = 0; i < 2 * STALLED_N; i++) {
		fds[i] = raw_socket(env->agent.sock);
		assert_true(fds[i] >= 0);
		zmh_fd_track(fds[i]);
		add_hello(&w, "it-stalled");
		assert_int_equal(send_frames(fds[i], &w), 0);
		if (i < STALLED_N) {
			/* A frame that says 1 MiB, and a quarter of it. */
			zmh_frame_header(hdr, ZM_FRAME_MAX, ZM_FRAME_MAGIC, 1);
			assert_int_equal(send_all(fds[i], hdr, sizeof(hdr)), 0);
			assert_int_equal(send_all(fds[i], body, STALLED_BODY), 0);
		} else {
			/* Five bytes of a frame header. */
			zmh_frame_header(hdr, 20, ZM_FRAME_MAGIC, 1);
			assert_int_equal(send_all(fds[i], hdr, 5), 0);
		}
	}
	zm_buf_free(&buf);
	free(body);
	good_rounds(&g, GOOD_ROUNDS);
	grew = agent_rss_kb(&env->agent) - rss0;
	printf("  %d connections stalled inside a frame: the agent grew by %ld KiB\n",
	       2 * STALLED_N, grew);
	/* Each holds what it sent (at most a frame): 16 x 256 KiB. Four times
	 * that, for the buffers' doubling and a sanitizer's quarantine of the
	 * smaller buffers they replaced, plus slack. */
	assert_true(grew < (long)(4 * STALLED_N * (STALLED_BODY / 1024) + 16 * 1024));
	assert_true(zmh_agent_alive(&env->agent));
	for (int i = 2 * STALLED_N - 1; i >= 0; i--)
		zmh_fd_close(fds[i]);
	expect_agent_fds(&env->agent, fds0);
	good_round(&g);
	good_end(&g);
}

/* ---- connections until the limit ----------------------------------------- */

/*
 * Say HELLO on a new connection and read the answer: 1 WELCOME, 2 an ERROR
 * (its code in *ret_code), 0 closed without a word, -errno. A refused
 * connection may be closed before HELLO is even read: a failed send is
 * not the answer.
 */
static int hello_answer(struct zmh_raw *r, struct zm_frame_writer *w, struct zmh_rec *rec,
			int *ret_code)
{
	struct zm_record zr;
	struct zm_error e;
	int x;

	add_hello(w, "it-connect");
	x = send_frames(r->fd, w);
	if (x < 0 && x != -EPIPE && x != -ECONNRESET)
		return x;
	x = zmh_raw_next(r, ZMH_TIMEOUT_MS, rec);
	if (x <= 0)
		return x;
	if (rec->type == ZM_REC_WELCOME)
		return 1;
	zr = (struct zm_record){ .body = rec->body, .type = rec->type, .len = rec->len };
	if (rec->type != ZM_REC_ERROR || zm_dec_error(&zr, &e) < 0)
		return -EPROTO;
	*ret_code = e.code;
	return 2;
}

/* Open connections until refused; keep the accepted ones. */
static void connect_until_refused(const char *sock, int hold, struct report *rep)
{
	struct zm_buf buf = { 0 };
	struct zm_frame_writer w;
	struct zmh_rec *rec = malloc(sizeof(*rec));

	zm_frame_writer_init(&w, &buf);
	for (int i = 0; i < CONN_TRIES && rec; i++) {
		struct zmh_raw r = { .fd = raw_socket(sock) };
		int x;

		if (r.fd < 0) {
			rep->fail = -r.fd;
			snprintf(rep->msg, sizeof(rep->msg), "connect #%d", i + 1);
			break;
		}
		x = hello_answer(&r, &w, rec, &rep->refuse_code);
		if (x == 1) {
			rep->accepted++;  /* its fd stays open */
		} else if (x == 2) {
			rep->refused++;
			if (zmh_raw_wait_closed(&r, ZMH_TIMEOUT_MS, NULL) != 1)
				rep->other++;  /* refused but left open */
			close(r.fd);
		} else if (x == 0) {
			rep->dropped++;
			close(r.fd);
		} else {
			rep->fail = -x;
			snprintf(rep->msg, sizeof(rep->msg), "connection #%d's first record", i + 1);
			break;
		}
		zm_buf_free(&r.in);
	}
	free(rec);
	zm_buf_free(&buf);
}

static void test_connections_past_the_per_uid_limit_are_refused_with_an_error(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", "--max-connections-per-uid",
					    "8", NULL };
	struct zmh_agent agent;
	struct hostile h;
	struct report rep;
	struct good g;

	(void)zmh_env(state);
	start_open_agent(&agent, args);
	good_begin(&g, &agent);
	hostile_start(&h, agent.sock, true, connect_until_refused);
	hostile_report(&h, &rep, 4 * ZMH_TIMEOUT_MS);
	/* It holds its 8 while the good subscriber (root) works. */
	good_rounds(&g, GOOD_ROUNDS);
	printf("  uid %d: %ld connections accepted, %ld refused with ERROR %d, %ld dropped\n", NOBODY,
	       rep.accepted, rep.refused, rep.refuse_code, rep.dropped);
	assert_int_equal(rep.accepted, CONN_LIMIT);
	assert_int_equal(rep.refused, CONN_TRIES - CONN_LIMIT);
	assert_int_equal(rep.refuse_code, ENOSPC);
	assert_int_equal(rep.dropped, 0);
	assert_int_equal(rep.other, 0);
	hostile_end(&h);
	good_round(&g);
	good_end(&g);
	assert_int_equal(zmh_extra_agent_stop(&agent), 0);
}

/*
 * The limit that binds root too: the agent's fds. Past it the agent accepts
 * and closes at once (its spare fd), so that the backlog does not spin it;
 * the DOWNs of monitors already set still go out, since delivering them
 * takes no new fd; once connections close, all is as before.
 */
static void test_fd_exhaustion_sheds_new_connections_and_existing_monitors_still_fire(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zm_buf buf = { 0 };
	struct zm_frame_writer w;
	struct rlimit old, lim;
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zmh_child ch;
	struct good g;
	int fds[64];
	int n = 0, accepted = 0, dropped = 0;
	long fds0;
	uint64_t ref;

	assert_non_null(rec);
	good_begin(&g, &env->agent);
	/* Monitored before the fds run out. */
	assert_int_equal(zmh_child_spawn(&ch), 0);
	assert_int_equal(zm_monitor_pid_start(g.cl, ch.pid, ch.start_ticks, &ref), 0);
	assert_int_equal(zmh_sync(g.cl, g.col), 0);

	fds0 = agent_fds(&env->agent);
	/* The soft limit only: raising a hard limit back takes CAP_SYS_RESOURCE,
	 * which a container's root may lack. */
	assert_int_equal(prlimit(env->agent.pid, RLIMIT_NOFILE, NULL, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)(fds0 + FD_HEADROOM);
	assert_int_equal(prlimit(env->agent.pid, RLIMIT_NOFILE, &lim, NULL), 0);
	zm_frame_writer_init(&w, &buf);
	for (; n < 64 && dropped == 0; n++) {
		struct zmh_raw r = { .fd = raw_socket(env->agent.sock) };
		int x, code = 0;

		assert_true(r.fd >= 0);
		fds[n] = r.fd;
		zmh_fd_track(r.fd);
		x = hello_answer(&r, &w, rec, &code);
		if (x == 1)
			accepted++;
		else if (x == 0)
			dropped++;
		else
			fail_msg("connection #%d: want WELCOME or a close, got %s", n + 1,
				 x < 0 ? strerror(-x) : strerror(code));
		zm_buf_free(&r.in);
	}
	printf("  fd limit %ld: %d connections accepted, then one dropped\n", fds0 + FD_HEADROOM,
	       accepted);
	assert_int_equal(dropped, 1);
	assert_true(accepted <= FD_HEADROOM);
	assert_true(zmh_agent_log_has(&env->agent, "out of file descriptors"));

	/* A death needs no fd to be told. */
	assert_int_equal(zmh_child_kill(&ch, SIGKILL), 0);
	assert_int_equal(zmh_wait_downs(g.cl, g.col, 1, GOOD_DEADLINE_MS), 1);
	assert_int_equal(zmh_child_reap(&ch), 0);
	assert_int_equal(zmh_collector_count(g.col, ref, NULL), 1);
	g.refs[g.n++] = ref;

	while (n > 0)
		zmh_fd_close(fds[--n]);
	assert_int_equal(prlimit(env->agent.pid, RLIMIT_NOFILE, &old, NULL), 0);
	expect_agent_fds(&env->agent, fds0);
	good_rounds(&g, GOOD_ROUNDS);
	good_end(&g);
	zm_buf_free(&buf);
	free(rec);
}

/* ---- a MONITOR flood for processes it may not watch ----------------------- */

/*
 * Count the records the agent sent: those already here, or (token nonzero)
 * all until SYNCED with token, waiting up to timeout_ms. 1 at SYNCED, 0
 * when nothing more is here, -errno.
 */
static int flood_read(struct zmh_raw *r, struct zmh_rec *rec, struct report *rep, uint64_t token,
		      int timeout_ms)
{
	int64_t deadline = zmh_mono_ms() + timeout_ms;

	for (;;) {
		int64_t left = deadline - zmh_mono_ms();
		int x = zmh_raw_next(r, left > 0 ? (int)left : 0, rec);
		struct zm_record zr = { .body = rec->body, .type = rec->type, .len = rec->len };
		struct zm_error e;
		uint64_t t;

		if (x == -ETIMEDOUT)
			return 0;
		if (x <= 0)
			return x < 0 ? x : -ECONNRESET;
		if (rec->type == ZM_REC_DOWN) {
			rep->downs++;
		} else if (rec->type == ZM_REC_ERROR && zm_dec_error(&zr, &e) == 0) {
			if (e.code == EPERM)
				rep->eperm++;
			else if (e.code == EAGAIN)
				rep->eagain++;
			else if (rep->other++ == 0)
				rep->other_code = e.code;
		} else if (rec->type == ZM_REC_SYNCED && zm_dec_u64(&zr, &t) == 0 && t == token) {
			return 1;
		}
	}
}

/*
 * Send what w holds, reading whatever the agent sends meanwhile: a client
 * that stops reading while it writes would deadlock against the agent's
 * back-pressure (the agent stops reading a client whose answers pile up).
 */
static int flood_send(struct zmh_raw *r, struct zm_frame_writer *w, struct zmh_rec *rec,
		      struct report *rep)
{
	struct zm_buf *b = w->buf;

	zm_frame_end(w);
	while (zm_buf_pending(b) > 0) {
		struct pollfd p = { .fd = r->fd, .events = POLLIN | POLLOUT };
		ssize_t n;

		if (poll(&p, 1, ZMH_TIMEOUT_MS) != 1)
			return -ETIMEDOUT;
		if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && flood_read(r, rec, rep, 0, 0) < 0)
			return -ECONNRESET;
		if (!(p.revents & POLLOUT))
			continue;
		n = send(r->fd, zm_buf_head(b), zm_buf_pending(b), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (n > 0)
			zm_buf_consume(b, (size_t)n);
	}
	return 0;
}

/* MONITOR root's processes, frame after frame, until the test says stop. */
static void flood_foreign_monitors(const char *sock, int hold, struct report *rep)
{
	const uint32_t victims[] = { 1, (uint32_t)getppid() };
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zm_buf buf = { 0 };
	struct zm_frame_writer w;
	struct zmh_raw r = { .fd = raw_socket(sock) };
	uint64_t ref = 0;
	int x = 0;

	if (!rec || r.fd < 0) {
		rep->fail = rec ? -r.fd : ENOMEM;
		snprintf(rep->msg, sizeof(rep->msg), "connect");
		return;
	}
	zm_frame_writer_init(&w, &buf);
	add_hello(&w, "it-flood");
	x = send_frames(r.fd, &w);
	if (x == 0)
		x = zmh_raw_expect(&r, ZM_REC_WELCOME, ZMH_TIMEOUT_MS, rec, NULL) == 1 ? 0 : -EPROTO;
	while (x == 0 && !hold_released(hold)) {
		for (int i = 0; i < FLOOD_FRAME; i++, ref++)
			add_monitor(&w, ref + 1, victims[ref % 2], 0);
		x = flood_send(&r, &w, rec, rep);
		rep->sent += FLOOD_FRAME;
	}
	if (x == 0) {
		add_sync(&w, 77);
		x = flood_send(&r, &w, rec, rep);
	}
	/* Every answer comes before SYNCED. */
	if (x == 0)
		x = flood_read(&r, rec, rep, 77, 3 * ZMH_TIMEOUT_MS);
	if (x == 0)
		x = -ETIMEDOUT;
	if (x < 0) {
		rep->fail = -x;
		snprintf(rep->msg, sizeof(rep->msg), "the flood's connection after %ld MONITORs",
			 rep->sent);
	}
	zm_buf_free(&buf);
	zm_buf_free(&r.in);
	free(rec);
}

static void test_monitor_flood_for_foreign_processes_gets_eperm_and_others_flow(void **state)
{
	static const char *const args[] = { "--socket-mode", "0666", NULL };
	struct zmh_agent agent;
	struct hostile h;
	struct report rep;
	struct good g;

	(void)zmh_env(state);
	start_open_agent(&agent, args);
	good_begin(&g, &agent);
	hostile_start(&h, agent.sock, true, flood_foreign_monitors);
	zmh_sleep_ms(100);  /* under way */
	good_rounds(&g, GOOD_ROUNDS);
	close(h.hold);      /* stop: SYNC, count, report */
	h.hold = -1;
	hostile_report(&h, &rep, 4 * ZMH_TIMEOUT_MS);
	printf("  uid %d sent %ld MONITORs of root's processes: %ld EPERM, %ld EAGAIN, %ld other, "
	       "%ld DOWNs\n", NOBODY, rep.sent, rep.eperm, rep.eagain, rep.other, rep.downs);
	if (rep.other)
		fail_msg("%ld other ERRORs, the first %d (%s)", rep.other, rep.other_code,
			 strerror(rep.other_code));
	/* Every request refused: EPERM, or EAGAIN past a request-rate quota. */
	assert_true(rep.sent > 0);
	assert_int_equal(rep.eperm + rep.eagain, rep.sent);
	assert_true(rep.eperm > 0);
	assert_int_equal(rep.downs, 0);
	hostile_end(&h);
	good_round(&g);
	good_end(&g);
	assert_int_equal(zmh_extra_agent_stop(&agent), 0);
}

/* ---- never reads its DOWNs ----------------------------------------------- */

/* Wait until the agent's status counts want subscribers dropped. 0, or -ETIMEDOUT. */
static int wait_dropped(struct good *g, uint64_t want)
{
	int64_t deadline = zmh_mono_ms() + ZMH_TIMEOUT_MS;
	uint64_t dropped = 0;

	for (;;) {
		char *status;

		assert_int_equal(zmh_status(g->cl, &status), 0);
		assert_int_equal(zmh_status_u64(status, "subscribers_dropped", &dropped), 0);
		free(status);
		if (dropped >= want || zmh_mono_ms() > deadline)
			return dropped == want ? 0 : -ETIMEDOUT;
		zmh_sleep_ms(50);
	}
}

static void test_non_reader_is_dropped_and_does_not_delay_others(void **state)
{
	static const char *const args[] = { "--max-queued", NONREADER_MAX_QUEUED,
					    "--stall-timeout", "2", NULL };
	struct zmh_rec *rec = malloc(sizeof(*rec));
	struct zm_buf buf = { 0 };
	struct zm_frame_writer w;
	struct zmh_agent agent;
	struct zmh_child target;
	struct zm_record zr;
	struct zm_error e;
	struct zmh_raw r;
	struct good g;
	size_t downs = 0;
	long rss0, grew;
	int x;

	(void)zmh_env(state);
	assert_non_null(rec);
	assert_int_equal(zmh_extra_agent_start(&agent, args), 0);
	good_begin(&g, &agent);
	good_round(&g);
	rss0 = agent_rss_kb(&agent);

	/* Many monitors on one process, then never another read. */
	assert_int_equal(zmh_child_spawn(&target), 0);
	assert_int_equal(zmh_raw_connect_named(&r, agent.sock, "it-nonreader"), 0);
	zm_frame_writer_init(&w, &buf);
	for (uint64_t ref = 1; ref <= NONREADER_N; ref++) {
		add_monitor(&w, ref, (uint32_t)target.pid, target.start_ticks);
		if (ref % 1000 == 0)
			assert_int_equal(send_frames(r.fd, &w), 0);
	}
	assert_int_equal(zmh_raw_sync(&r, 5), 0);
	assert_int_equal(zmh_child_kill(&target, SIGKILL), 0);
	assert_int_equal(zmh_child_reap(&target), 0);

	/* Its DOWNs pile up; the good subscriber's do not wait behind them. */
	good_rounds(&g, GOOD_ROUNDS);
	grew = agent_rss_kb(&agent) - rss0;
	printf("  %d DOWNs for a subscriber that does not read: the agent grew by %ld KiB\n",
	       NONREADER_N, grew);
	assert_true(grew < 64 * 1024);
	/* The agent checks its limits on a timer: still not reading, wait until
	 * it has dropped the non-reader. */
	assert_int_equal(wait_dropped(&g, 1), 0);

	/* It was dropped: what it gets when it finally reads is DOWNs, then
	 * an ERROR that says why, then the end. */
	x = zmh_raw_expect(&r, ZM_REC_ERROR, 3 * ZMH_TIMEOUT_MS, rec, &downs);
	if (x != 1)
		fail_msg("the non-reader got %zu DOWNs and then %s, not an ERROR", downs,
			 x == 0 ? "the end" : strerror(-x));
	zr = (struct zm_record){ .body = rec->body, .type = rec->type, .len = rec->len };
	assert_int_equal(zm_dec_error(&zr, &e), 0);
	printf("  the non-reader read %zu DOWNs, then ERROR %s: %s\n", downs,
	       strerrorname_np(e.code) ?: "?", e.message);
	assert_true(e.code == ENOBUFS || e.code == ETIMEDOUT);
	assert_true(downs < NONREADER_N);
	assert_int_equal(zmh_raw_wait_closed(&r, ZMH_TIMEOUT_MS, NULL), 1);
	zmh_raw_close(&r);
	good_round(&g);
	good_end(&g);
	zm_buf_free(&buf);
	free(rec);
	assert_int_equal(zmh_extra_agent_stop(&agent), 0);
}

/* ---- fds that are no pidfds ---------------------------------------------- */

static void test_fds_that_are_no_pidfds_get_ebadf_and_nothing_leaks(void **state)
{
	struct zmh_env *env = zmh_env(state);
	struct zm_monitor_pidfd mp = { 0 };
	struct zm_monitor_tcp mt = { .by = ZM_TCP_BY_FD };
	uint8_t body[ZM_MONITOR_TCP_LEN];
	struct zmh_rawcol *col = zmh_rawcol_new();
	const struct zm_down *d;
	struct zmh_child ch;
	struct zmh_raw r;
	struct good g;
	int devnull, efd, sp[2], reaped, closed;
	long fds0;

	good_begin(&g, &env->agent);
	good_round(&g);
	fds0 = agent_fds(&env->agent);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	efd = eventfd(0, EFD_CLOEXEC);
	assert_true(devnull >= 0 && efd >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(zmh_child_spawn(&ch), 0);
	reaped = (int)syscall(SYS_pidfd_open, ch.pid, 0);
	assert_true(reaped >= 0);
	assert_int_equal(zmh_child_exit(&ch, 0), 0);
	assert_int_equal(zmh_child_reap(&ch), 0);
	assert_int_equal(zmh_raw_connect(&r, env->agent.sock, true), 0);

	mp.ref = 1;
	assert_int_equal(send_record_fds(r.fd, ZM_REC_MONITOR_PIDFD, body,
					 zm_enc_monitor_pidfd(body, &mp), &devnull, 1), 0);
	expect_error(&r, 1, ZM_REC_MONITOR_PIDFD, EBADF);
	mp.ref = 2;
	assert_int_equal(send_record_fds(r.fd, ZM_REC_MONITOR_PIDFD, body,
					 zm_enc_monitor_pidfd(body, &mp), &efd, 1), 0);
	expect_error(&r, 2, ZM_REC_MONITOR_PIDFD, EBADF);
	mp.ref = 3;
	assert_int_equal(send_record_fds(r.fd, ZM_REC_MONITOR_PIDFD, body,
					 zm_enc_monitor_pidfd(body, &mp), &sp[0], 1), 0);
	expect_error(&r, 3, ZM_REC_MONITOR_PIDFD, EBADF);
	/* A socket that is no TCP socket, for MONITOR_TCP. */
	mt.ref = 4;
	assert_int_equal(send_record_fds(r.fd, ZM_REC_MONITOR_TCP, body,
					 zm_enc_monitor_tcp(body, &mt), &efd, 1), 0);
	expect_error(&r, 4, ZM_REC_MONITOR_TCP, ENOTSOCK);
	/* A closed fd cannot be passed at all: the kernel refuses the
	 * sendmsg, and nothing reaches the agent. */
	closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(closed >= 0);
	close(closed);
	mp.ref = 5;
	assert_int_equal(send_record_fds(r.fd, ZM_REC_MONITOR_PIDFD, body,
					 zm_enc_monitor_pidfd(body, &mp), &closed, 1), -EBADF);
	/* A pidfd whose process is reaped: a real pidfd of no process. */
	mp.ref = 6;
	assert_int_equal(send_record_fds(r.fd, ZM_REC_MONITOR_PIDFD, body,
					 zm_enc_monitor_pidfd(body, &mp), &reaped, 1), 0);
	assert_int_equal(zmh_raw_collect(&r, col, 1, ZMH_TIMEOUT_MS), 1);
	assert_int_equal(zmh_rawcol_count(col, 6, &d), 1);
	assert_int_equal(d->reason, ZM_REASON_NOPROC);
	/* Still in step, and ref 5 never existed. */
	assert_int_equal(zmh_raw_sync_col(&r, col), 0);
	assert_int_equal(col->nerr, 0);
	assert_int_equal(col->n, 1);
	good_rounds(&g, GOOD_ROUNDS);

	zmh_raw_close(&r);
	close(devnull);
	close(efd);
	close(sp[0]);
	close(sp[1]);
	close(reaped);
	/* Every fd it was passed is closed once its request was answered. */
	expect_agent_fds(&env->agent, fds0);
	good_end(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_silent_connections_do_not_delay_a_subscriber),
		ZMH_TEST(test_half_frames_stall_without_delaying_others_or_growing_past_a_frame),
		ZMH_TEST(test_connections_past_the_per_uid_limit_are_refused_with_an_error),
		ZMH_TEST(test_fd_exhaustion_sheds_new_connections_and_existing_monitors_still_fire),
		ZMH_TEST(test_monitor_flood_for_foreign_processes_gets_eperm_and_others_flow),
		ZMH_TEST(test_non_reader_is_dropped_and_does_not_delay_others),
		ZMH_TEST(test_fds_that_are_no_pidfds_get_ebadf_and_nothing_leaks),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
