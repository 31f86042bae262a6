/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Integration-test harness: a real zenmond per test group, children whose
 * death the test controls, a DOWN collector, a raw-socket client for bytes
 * the library would never send, the pinned watched-process map, and a runner
 * for zenmonctl.
 *
 * Each test file does
 *
 *   static void test_x(void **state) { struct zmh_env *env = zmh_env(state); ... }
 *   int main(void) {
 *       const struct CMUnitTest tests[] = { ZMH_TEST(test_x), ... };
 *       return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
 *   }
 *
 * zmh_group_setup() starts the agent (own socket under /tmp/zm-it-XXXXXX, own
 * pin dir /sys/fs/bpf/zm-it-<pid>-<n>); zmh_group_teardown() stops it and
 * checks that it exited 0 and removed its socket and pins. Without root or
 * BPF the group fails under CI=true and is skipped (with a message) outside.
 *
 * Children, clients and raw connections made through the harness are
 * registered and cleaned up by the per-test teardown even when an assertion
 * jumps out of the test.
 *
 * Helpers return 0 (or a count) on success and a negative errno on failure;
 * only the zmh_group_* and zmh_env functions talk to cmocka.
 */
#ifndef ZM_IT_HARNESS_H
#define ZM_IT_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "zenmon.h"
#include "zenmon/proto.h"

/* Generous: a loaded CI machine or a sanitizer build is slow, never wrong. */
#define ZMH_TIMEOUT_MS 10000
/* How long to watch for something that must NOT happen (after a zm_sync). */
#define ZMH_QUIET_MS 250

/* ---- environment ------------------------------------------------------- */

/* The build directory: $ZM_BUILD, else the directory above this binary's
 * (BUILD/tests/it_x), else "build". */
const char *zmh_build_dir(void);
/* BUILD/zenmond, BUILD/zenmonctl (static buffers). */
const char *zmh_zenmond_path(void);
const char *zmh_zenmonctl_path(void);
/* Is CI=true set? */
bool zmh_in_ci(void);
/* NULL when the agent can run here, else why not (static text). */
const char *zmh_missing_capability(void);

/* ---- the agent --------------------------------------------------------- */

struct zmh_agent {
	pid_t pid;                 /* 0 when not running */
	char dir[128];             /* /tmp/zm-it-XXXXXX */
	char sock[160];            /* dir/sock */
	char log[160];             /* dir/zenmond.log: the agent's stderr and stdout */
	char pin_dir[128];         /* /sys/fs/bpf/zm-it-<pid>-<n> */
};

/*
 * Make the temp dir, start zenmond on its own socket and pin dir, wait (up
 * to ZMH_TIMEOUT_MS) until the socket accepts connections. On failure the
 * agent's log is printed and the agent killed. 0 or -errno.
 */
int zmh_agent_start(struct zmh_agent *a);
/* Start another agent on a's pin dir but its own socket (for the pin-lock
 * test): returns its pid, or -errno; the caller waits for it. */
pid_t zmh_agent_spawn_raw(const char *sock, const char *pin_dir, const char *log);
/*
 * SIGTERM, wait up to ZMH_TIMEOUT_MS, then check: exited with status 0,
 * socket removed, pin dir removed. Prints what was wrong (and the log) and
 * returns -errno on any failure; kills the agent if it would not stop.
 * Removes the temp dir when everything was right.
 */
int zmh_agent_stop(struct zmh_agent *a);
/* Is the agent still running (not exited)? */
bool zmh_agent_alive(const struct zmh_agent *a);
/* Print the agent's log to stderr, with a header. */
void zmh_agent_dump_log(const struct zmh_agent *a);

/* ---- cmocka glue ------------------------------------------------------- */

struct zmh_env {
	struct zmh_agent agent;
};

int zmh_group_setup(void **state);
int zmh_group_teardown(void **state);
int zmh_test_setup(void **state);
int zmh_test_teardown(void **state);
/* The group's env, or skip() the test when the group was skipped. */
struct zmh_env *zmh_env_get(void **state);
#define zmh_env(state) zmh_env_get(state)
#define ZMH_TEST(f) cmocka_unit_test_setup_teardown(f, zmh_test_setup, zmh_test_teardown)

/* ---- controlled children ----------------------------------------------- */

/*
 * A child that blocks reading commands from a pipe; the test decides when
 * and how it dies. Every signal disposition is reset to default in the child
 * (cmocka installs handlers) and every inherited fd but the pipe is closed.
 * If the test goes away (EOF on the pipe) the child exits 99.
 */
struct zmh_child {
	pid_t pid;
	int ctl;                  /* write end of the command pipe */
	uint64_t start_ticks;     /* read right after the fork */
	bool reaped;
	int wstatus;              /* valid once reaped */
};

int zmh_child_spawn(struct zmh_child *c);
/* Commands (the child acts on them at once; none of these waits or reaps). */
int zmh_child_exit(struct zmh_child *c, int code);             /* _exit(code) */
int zmh_child_raise(struct zmh_child *c, int sig);             /* raise(sig) */
/* RLIMIT_CORE unlimited, chdir(dir), raise(sig): a core dump (see zmh_core_pattern_*). */
int zmh_child_raise_core(struct zmh_child *c, int sig, const char *dir);
/* The main thread calls pthread_exit() while a second thread sleeps ms,
 * then calls exit(code). */
int zmh_child_thread_exit(struct zmh_child *c, int ms, int code);
/* kill(pid, sig) from the parent. */
int zmh_child_kill(struct zmh_child *c, int sig);
/* Wait (blocking, up to ZMH_TIMEOUT_MS) and reap; fills wstatus. */
int zmh_child_reap(struct zmh_child *c);
/* Wait until it is a zombie, without reaping it (waitid WNOWAIT). */
int zmh_child_wait_zombie(struct zmh_child *c);
/* Forget a child the test reaped itself (e.g. through a reaper thread). */
void zmh_child_forget(struct zmh_child *c);

/*
 * Spawn a child that gets pid want (write want-1 to ns_last_pid, fork; retry
 * up to attempts times when something else took the pid). 0, -EAGAIN when it
 * never landed, other -errno.
 */
int zmh_child_spawn_with_pid(struct zmh_child *c, pid_t want, int attempts);

/* /proc/PID/stat field 22. 0 or -errno (-ENOENT: no such pid). */
int zmh_read_start_ticks(pid_t pid, uint64_t *ret);
/* /proc/PID/stat field 3 (state), or 0 on error. */
char zmh_read_state(pid_t pid);
/* CLOCK_REALTIME now, in ns. */
uint64_t zmh_now_ns(void);
/* Monotonic ms, for deadlines. */
int64_t zmh_mono_ms(void);
void zmh_sleep_ms(int ms);

/*
 * core_pattern: if the current pattern writes relative to the dumping
 * process's cwd (no leading '/' or '|'), leave it (the child chdirs into the
 * temp dir); otherwise point it at DIR/core.%p and restore the original in
 * zmh_core_pattern_restore() (also at exit). 0 or -errno.
 */
int zmh_core_pattern_prepare(const char *dir);
void zmh_core_pattern_restore(void);

/* ---- clients and DOWNs ------------------------------------------------- */

struct zmh_err {
	uint64_t ref;
	int error;
	uint16_t request;
	char message[128];
};

/* What arrived on a client: every DOWN and every ERROR, in order. */
struct zmh_collector {
	struct zm_down_info *downs;
	size_t n, cap;
	struct zmh_err *errs;
	size_t nerr, errcap;
};

/* A collector freed by the per-test teardown (never NULL: aborts on ENOMEM). */
struct zmh_collector *zmh_collector_new(void);
void zmh_collector_reset(struct zmh_collector *col);
void zmh_collector_free(struct zmh_collector *col);
/* The zm_down_fn: userdata is a struct zmh_collector. */
void zmh_on_down(struct zm_client *c, const struct zm_down_info *d, void *userdata);
/* How many DOWNs for ref; the first one in *ret (may be NULL). */
size_t zmh_collector_count(const struct zmh_collector *col, uint64_t ref,
			   const struct zm_down_info **ret);

/*
 * Connect to the agent (name for `zenmonctl status`), with a high max_rate
 * so pacing does not slow the suite; errors go to col. The client is closed
 * by the per-test teardown unless zmh_client_close() closed it first.
 */
int zmh_connect(const struct zmh_agent *a, const char *name, struct zmh_collector *col,
		struct zm_client **ret);
void zmh_client_close(struct zm_client *c);
/* zm_sync with ZMH_TIMEOUT_MS, DOWNs into col. */
int zmh_sync(struct zm_client *c, struct zmh_collector *col);

/*
 * Dispatch the clients (DOWNs into cols[i]) until the total number of DOWNs
 * collected reaches want or timeout_ms passes. Returns the total collected
 * (compare with want), or -errno when a client failed.
 */
long zmh_wait_downs_multi(struct zm_client *const *cs, struct zmh_collector *const *cols,
			  size_t n, size_t want, int timeout_ms);
long zmh_wait_downs(struct zm_client *c, struct zmh_collector *col, size_t want, int timeout_ms);
/*
 * zm_sync, then keep dispatching for ms: returns how many DOWNs arrived in
 * that time (the caller expects 0), or -errno.
 */
long zmh_quiet(struct zm_client *c, struct zmh_collector *col, int ms);

/* ---- the pinned watched-process map ------------------------------------ */

/* Entries in PIN_DIR/zm_procs: all (tgid 0) or those of one tgid. -errno on failure. */
long zmh_map_count(const char *pin_dir, pid_t tgid);
/* Entries whose tgid is one of pids[0..n). */
long zmh_map_count_pids(const char *pin_dir, const pid_t *pids, size_t n);
/* Poll zmh_map_count until it equals want or timeout_ms passes; returns the last count. */
long zmh_map_wait_count(const char *pin_dir, pid_t tgid, long want, int timeout_ms);
long zmh_map_wait_count_pids(const char *pin_dir, const pid_t *pids, size_t n, long want,
			     int timeout_ms);

/* ---- raw-socket client ------------------------------------------------- */

struct zmh_raw {
	int fd;
	struct zm_buf in;
	bool eof;
	/* the frame being read out of in */
	bool in_frame;
	uint32_t frame_len;
	struct zm_record_iter it;
};

/* A record received, body copied. */
struct zmh_rec {
	uint16_t type;
	uint16_t len;
	uint8_t body[ZM_REC_MAX];
};

/* Connect (and, with hello, exchange HELLO/WELCOME). Registered for teardown. */
int zmh_raw_connect(struct zmh_raw *r, const char *sock, bool hello);
void zmh_raw_close(struct zmh_raw *r);
/* Write all n bytes (blocking). 0 or -errno (-EPIPE when the agent closed). */
int zmh_raw_send(struct zmh_raw *r, const void *p, size_t n);
/* One frame holding one record. */
int zmh_raw_send_record(struct zmh_raw *r, uint16_t type, const void *body, size_t len);
/* Build a frame header (length, magic, count) into out[8]. */
void zmh_frame_header(uint8_t *out, uint32_t len, uint16_t magic, uint16_t count);
void zmh_put_u16(uint8_t *p, uint16_t v);
void zmh_put_u32(uint8_t *p, uint32_t v);
void zmh_put_u64(uint8_t *p, uint64_t v);
/*
 * Next record from the agent: 1 and *ret; 0 on EOF (or ECONNRESET);
 * -ETIMEDOUT; -EBADMSG/-EMSGSIZE when the agent sent a malformed frame.
 */
int zmh_raw_next(struct zmh_raw *r, int timeout_ms, struct zmh_rec *ret);
/*
 * Read records until one of type arrives (DOWN records in between are
 * counted into *ret_downs if not NULL, other types fail with -EPROTO).
 * 1 and *ret, 0 on EOF, -errno.
 */
int zmh_raw_expect(struct zmh_raw *r, uint16_t type, int timeout_ms, struct zmh_rec *ret,
		   size_t *ret_downs);
/* Read until EOF: 1 when the agent closed the connection in time (records
 * read meanwhile are dropped, their count in *ret_records), -ETIMEDOUT if not. */
int zmh_raw_wait_closed(struct zmh_raw *r, int timeout_ms, size_t *ret_records);
/* SYNC with token, expect SYNCED with it (DOWNs in between counted). 0 or -errno. */
int zmh_raw_sync(struct zmh_raw *r, uint64_t token);

/* ---- zenmonctl --------------------------------------------------------- */

struct zmh_proc {
	pid_t pid;
	int out_fd, err_fd;
};

/* Start BUILD/zenmonctl argv[1..] (argv NULL-terminated; argv[0] ignored).
 * env_socket != NULL sets ZENMON_SOCKET, else it is unset. */
int zmh_ctl_start(struct zmh_proc *p, const char *const *argv, const char *env_socket);
/*
 * Wait up to timeout_ms for it to finish, collecting stdout/stderr into
 * malloc'd strings (*ret_out, *ret_err; free them). 0 and *ret_wstatus;
 * -ETIMEDOUT (it is then killed and reaped, output still returned).
 */
int zmh_ctl_finish(struct zmh_proc *p, int timeout_ms, char **ret_out, char **ret_err,
		   int *ret_wstatus);
/* Both in one. */
int zmh_ctl_run(const char *const *argv, const char *env_socket, int timeout_ms,
		char **ret_out, char **ret_err, int *ret_wstatus);

/* Does the JSON text hold "key":value (whitespace around ':' ignored; value
 * matched as a whole token: a number or a "string" with quotes)? */
bool zmh_json_has(const char *json, const char *key, const char *value);

#endif
