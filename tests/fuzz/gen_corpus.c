// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Writes the fuzzers' seed corpus: valid frames made with the codec, so
 * that the fuzzers start from what real clients and the agent send.
 *
 *   gen_corpus DIR      writes DIR/frames/NAME and DIR/requests/NAME
 *
 * The files are committed (tests/fuzz/corpus/); run `make fuzz-corpus`
 * after a protocol change to write them again. A requests seed starts with
 * fuzz_requests.c's three control bytes (fds to pass, agent options); the
 * frames seeds are the same streams without them, and the agent's replies.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zenmon/proto.h>

/* fuzz_requests.c's control bytes. */
#define FD_NONE 0x00
#define FD_ONE(kind) (0x01 | (kind) << 2)
#define FD_DEVNULL 0
#define FD_PIDFD_SELF 1
#define FD_PIDFD_REAPED 2
#define FD_TCP 3
#define OPT_MAX_QUEUED 0x01
#define OPT_FIRE 0x02
#define OPT_SMALL_BATCH 0x04
#define OPT_GLOBAL_RATE 0x08
#define OPT_HOW(n) ((n) << 4)
#define WHO_ROOT 0x00
#define WHO_NOBODY 0x01
#define WHO_QUOTAS 0x02
#define WHO_INHERITED 0x04
#define WHO_ADOPT_NOW 0x08
/* The watches the fake maps inherit (fuzz_requests.c). */
#define DEAD_PID 4242
#define DEAD_START 777
#define DEAD_COOKIE 12345
/* A pid no process has (below PID_MAX_LIMIT): a noproc target. */
#define NO_PID 4194000

static const char *out_dir;
static struct zm_buf buf;
static struct zm_frame_writer w;

static void die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void add(uint16_t type, const void *body, size_t len)
{
	if (zm_frame_add(&w, type, body, len) < 0)
		die("zm_frame_add");
}

/* Close the frame: the next record starts another. */
static void end(void)
{
	zm_frame_end(&w);
}

static void hello_flags(const char *name, uint32_t flags)
{
	struct zm_hello h = { .version = ZM_PROTO_VERSION, .flags = flags };
	uint8_t b[ZM_HELLO_LEN + ZM_NAME_MAX];

	snprintf(h.name, sizeof(h.name), "%s", name);
	add(ZM_REC_HELLO, b, zm_enc_hello(b, &h));
}

static void hello(const char *name)
{
	hello_flags(name, 0);
}

static void monitor_proc(uint64_t ref, uint32_t pid, uint32_t flags, uint64_t start)
{
	struct zm_monitor_proc m = { .ref = ref, .pid = pid, .flags = flags, .start_ticks = start };
	uint8_t b[ZM_MONITOR_PROC_LEN];

	add(ZM_REC_MONITOR_PROC, b, zm_enc_monitor_proc(b, &m));
}

static void monitor_pidfd(uint64_t ref)
{
	struct zm_monitor_pidfd m = { .ref = ref };
	uint8_t b[ZM_MONITOR_PIDFD_LEN];

	add(ZM_REC_MONITOR_PIDFD, b, zm_enc_monitor_pidfd(b, &m));
}

static void demonitor(uint64_t ref, uint32_t flags)
{
	struct zm_demonitor m = { .ref = ref, .flags = flags };
	uint8_t b[ZM_DEMONITOR_LEN];

	add(ZM_REC_DEMONITOR, b, zm_enc_demonitor(b, &m));
}

static void token(uint16_t type, uint64_t t)
{
	uint8_t b[8];

	add(type, b, zm_enc_u64(b, t));
}

static void targets(uint64_t t, uint32_t limit)
{
	struct zm_targets m = { .token = t, .limit = limit };
	uint8_t b[ZM_TARGETS_LEN];

	add(ZM_REC_TARGETS, b, zm_enc_targets(b, &m));
}

static void monitor_tcp_flags(uint64_t ref, uint8_t by, uint64_t cookie, uint32_t flags)
{
	struct zm_monitor_tcp m = { .ref = ref, .by = by, .cookie = cookie, .flags = flags };
	uint8_t b[ZM_MONITOR_TCP_LEN];

	if (by == ZM_TCP_BY_TUPLE) {
		m.tuple.family = AF_INET;
		inet_pton(AF_INET, "127.0.0.1", m.tuple.saddr);
		inet_pton(AF_INET, "127.0.0.1", m.tuple.daddr);
		m.tuple.sport = 1;
		m.tuple.dport = 2;
	}
	add(ZM_REC_MONITOR_TCP, b, zm_enc_monitor_tcp(b, &m));
}

static void monitor_tcp(uint64_t ref, uint8_t by, uint64_t cookie)
{
	monitor_tcp_flags(ref, by, cookie, 0);
}

static void down(uint64_t ref, uint16_t kind, uint16_t reason, int32_t value)
{
	struct zm_down d = { .ref = ref, .time_ns = 1700000000000000000ULL, .kind = kind,
			     .reason = reason, .value = value, .pid = 4242, .start_ticks = 777 };
	uint8_t b[ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN];

	if (kind == ZM_TARGET_TCP) {
		d.tcp_how = ZM_TCP_FIN;
		d.tcp_old_state = 1;
		d.tuple.family = AF_INET;
		d.tuple.sport = 80;
		d.tuple.dport = 5555;
	}
	add(ZM_REC_DOWN, b, zm_enc_down(b, &d));
}

/* Write the buffer (closed) as DIR/sub/name, after ctl (NULL: none), and empty it. */
static void emit_ctl(const char *sub, const char *name, const uint8_t *ctl)
{
	char path[4096];
	FILE *f;

	end();
	snprintf(path, sizeof(path), "%s/%s", out_dir, sub);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, sub, name);
	f = fopen(path, "wb");
	if (!f || (ctl && fwrite(ctl, 1, 3, f) != 3) ||
	    fwrite(zm_buf_head(&buf), 1, zm_buf_pending(&buf), f) != zm_buf_pending(&buf) || fclose(f))
		die(path);
}

/* The same stream as a requests seed (with its control bytes) and a frames seed. */
static void emit_who(const char *name, uint8_t fds, uint8_t opts, uint8_t who)
{
	const uint8_t ctl[3] = { fds, opts, who };

	emit_ctl("requests", name, ctl);
	emit_ctl("frames", name, NULL);
	zm_buf_consume(&buf, zm_buf_pending(&buf));
}

static void emit(const char *name, uint8_t fds, uint8_t opts)
{
	emit_who(name, fds, opts, WHO_ROOT);
}

static void emit_frames(const char *name)
{
	emit_ctl("frames", name, NULL);
	zm_buf_consume(&buf, zm_buf_pending(&buf));
}

int main(int argc, char **argv)
{
	static const char stats[] = "# HELP zenmon_up 1\nzenmon_up 1\nzenmon_subscribers 2\n";
	struct zm_welcome wel = { .version = ZM_PROTO_VERSION, .max_frame = ZM_FRAME_MAX,
				  .max_batch = 1024, .batch_window_us = 1000, .subscriber_id = 7 };
	struct zm_error err = { .ref = 5, .code = EBADF, .request = ZM_REC_MONITOR_PIDFD };
	uint8_t b[ZM_WELCOME_LEN + ZM_MSG_MAX + 64];
	char *big;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) < 0 && errno != EEXIST)
		die(out_dir);
	zm_frame_writer_init(&w, &buf);

	/* ---- client to agent: requests seeds (and frames seeds) ---------- */
	hello("fuzz");
	emit("hello", FD_NONE, 0);

	hello("fuzz");
	token(ZM_REC_SYNC, 1);
	emit("hello_sync_one_frame", FD_NONE, 0);

	hello("fuzz");
	end();
	monitor_proc(1, 1, 0, 0);
	end();
	token(ZM_REC_SYNC, 2);
	emit("monitor_proc", FD_NONE, OPT_FIRE);

	hello("fuzz");
	end();
	monitor_proc(1, 1, ZM_MON_START_TIME, 1);
	monitor_proc(2, 0x7fffffff, 0, 0);
	monitor_proc(3, 1, 0x80, 0);
	emit("monitor_proc_noproc_and_errors", FD_NONE, 0);

	hello("fuzz");
	end();
	monitor_pidfd(1);
	emit("monitor_pidfd_self", FD_ONE(FD_PIDFD_SELF), OPT_FIRE | OPT_HOW(5));

	hello("fuzz");
	end();
	monitor_pidfd(1);
	emit("monitor_pidfd_no_fd", FD_NONE, 0);

	hello("fuzz");
	end();
	monitor_pidfd(1);
	emit("monitor_pidfd_reaped", FD_ONE(FD_PIDFD_REAPED), 0);

	hello("fuzz");
	end();
	monitor_pidfd(1);
	emit("monitor_pidfd_devnull", FD_ONE(FD_DEVNULL), 0);

	hello("fuzz");
	end();
	monitor_proc(1, 1, 0, 0);
	demonitor(1, ZM_DEMON_FLUSH);
	demonitor(2, 0);
	emit("demonitor", FD_NONE, 0);

	hello("fuzz");
	end();
	token(ZM_REC_STATUS, 3);
	emit("status", FD_NONE, 0);

	hello("fuzz");
	end();
	token(ZM_REC_STATS, 4);
	emit("stats", FD_NONE, 0);

	hello("fuzz");
	end();
	monitor_proc(1, 1, 0, 0);
	targets(5, 0);
	targets(6, 1);
	emit("targets", FD_NONE, 0);

	hello("fuzz");
	end();
	monitor_tcp(1, ZM_TCP_BY_FD, 0);
	end();
	targets(7, 0);
	emit("monitor_tcp_fd", FD_ONE(FD_TCP), OPT_FIRE | OPT_HOW(2));

	hello("fuzz");
	end();
	monitor_tcp(1, ZM_TCP_BY_COOKIE, 12345);
	monitor_tcp(2, ZM_TCP_BY_TUPLE, 0);
	monitor_tcp(3, 9, 0);
	monitor_tcp(4, ZM_TCP_BY_FD, 0);
	emit("monitor_tcp_cookie_tuple", FD_NONE, OPT_FIRE);

	/* Several records to a frame, several frames. */
	hello("fuzz-multi");
	monitor_proc(1, 1, 0, 0);
	monitor_proc(2, 1, 0, 0);
	monitor_proc(3, 1, 0, 0);
	token(ZM_REC_SYNC, 8);
	end();
	token(ZM_REC_STATUS, 9);
	demonitor(2, ZM_DEMON_FLUSH);
	monitor_pidfd(4);
	emit("multi_record_frames", FD_ONE(FD_PIDFD_SELF), OPT_FIRE | OPT_SMALL_BATCH | OPT_HOW(9));

	/* Enough monitors that DOWNs go in batches, or overflow --max-queued. */
	hello("fuzz-many");
	for (uint64_t ref = 1; ref <= 40; ref++)
		monitor_proc(ref, 1, 0, 0);
	emit("many_monitors_batched", FD_NONE, OPT_FIRE | OPT_SMALL_BATCH | OPT_GLOBAL_RATE);
	hello("fuzz-many");
	for (uint64_t ref = 1; ref <= 40; ref++)
		monitor_proc(ref, 1, 0, 0);
	emit("many_monitors_max_queued", FD_NONE, OPT_FIRE | OPT_MAX_QUEUED);

	/* A local user: root's processes are refused (EPERM); what it passes
	 * by fd is its own; its quotas bind. */
	hello("fuzz-user");
	end();
	monitor_proc(1, 1, 0, 0);
	monitor_pidfd(2);
	monitor_tcp(3, ZM_TCP_BY_COOKIE, 99);
	token(ZM_REC_SYNC, 10);
	emit_who("user_foreign_and_own", FD_ONE(FD_PIDFD_SELF), OPT_FIRE, WHO_NOBODY);
	hello("fuzz-user");
	end();
	for (uint64_t ref = 1; ref <= 20; ref++)
		monitor_proc(ref, NO_PID, 0, 0);
	token(ZM_REC_SYNC, 11);
	emit_who("user_over_quota", FD_NONE, 0, WHO_NOBODY | WHO_QUOTAS);
	hello("fuzz-root");
	end();
	for (uint64_t ref = 1; ref <= 20; ref++)
		monitor_proc(ref, NO_PID, 0, 0);
	emit_who("root_exempt_from_quota", FD_NONE, 0, WHO_QUOTAS);

	/* After a restart: monitors brought back by identity find the deaths
	 * the kernel saw while no agent ran. */
	hello_flags("fuzz-resume", ZM_HELLO_RESUMABLE);
	end();
	monitor_proc(1, DEAD_PID, ZM_MON_START_TIME | ZM_MON_RESUME, DEAD_START);
	monitor_proc(2, 1, 0, 0);
	monitor_tcp_flags(3, ZM_TCP_BY_COOKIE, DEAD_COOKIE, ZM_MON_RESUME);
	monitor_pidfd(4);
	emit_who("resume_after_restart", FD_ONE(FD_PIDFD_SELF), OPT_FIRE, WHO_INHERITED);
	hello_flags("fuzz-resume", ZM_HELLO_RESUMABLE);
	end();
	monitor_proc(1, DEAD_PID, ZM_MON_START_TIME | ZM_MON_RESUME, DEAD_START);
	targets(12, 0);
	emit_who("resume_after_adoption_ended", FD_NONE, 0, WHO_INHERITED | WHO_ADOPT_NOW);

	/* ---- agent to client: frames seeds ---------------------------------- */
	snprintf(wel.agent_version, sizeof(wel.agent_version), "zenmond 0.1.0");
	add(ZM_REC_WELCOME, b, zm_enc_welcome(b, &wel));
	emit_frames("welcome");

	down(1, ZM_TARGET_PROCESS, ZM_REASON_EXITED, 3);
	down(2, ZM_TARGET_PROCESS, ZM_REASON_KILLED, 9);
	down(3, ZM_TARGET_PROCESS, ZM_REASON_NOPROC, 0);
	emit_frames("down_process_batch");

	{
		struct zm_monitored m = { .ref = 9, .kind = ZM_TARGET_PROCESS, .pid = 4242,
					  .start_ticks = 777 };

		add(ZM_REC_MONITORED, b, zm_enc_monitored(b, &m));
		m.flags = ZM_MONITORED_GONE;
		add(ZM_REC_MONITORED, b, zm_enc_monitored(b, &m));
		emit_frames("monitored");
	}

	down(4, ZM_TARGET_TCP, ZM_REASON_TCP_CLOSED, 0);
	down(5, ZM_TARGET_TCP, ZM_REASON_NOCONNECTION, 0);
	emit_frames("down_tcp");

	snprintf(err.message, sizeof(err.message), "the file descriptor passed is not a pidfd");
	add(ZM_REC_ERROR, b, zm_enc_error(b, &err));
	token(ZM_REC_SYNCED, 1);
	emit_frames("error_synced");

	if (zm_frame_add_text_reply(&w, ZM_REC_STATS_REPLY, 4, stats, sizeof(stats) - 1) < 0)
		die("text reply");
	emit_frames("stats_reply");

	/* A text of several records: a reply with ZM_TEXT_MORE. */
	big = malloc(70000);
	if (!big)
		die("malloc");
	for (size_t i = 0; i < 70000; i++)
		big[i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
	if (zm_frame_add_text_reply(&w, ZM_REC_TARGETS_REPLY, 5, big, 70000) < 0)
		die("text reply");
	free(big);
	emit_frames("targets_reply_two_records");

	zm_buf_free(&buf);
	return 0;
}
