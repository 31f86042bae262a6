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
 * pin dir /sys/fs/bpf/zm-it-<pid>-<n>, --config /dev/null so that no host
 * configuration file applies); zmh_group_teardown() stops it and
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
/* An agent's start: loading and verifying BPF takes seconds on a busy
 * machine (tens under sanitizers), and a CI run starts dozens of agents. */
#define ZMH_START_TIMEOUT_MS 60000
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
 * to ZMH_START_TIMEOUT_MS) until the socket accepts connections. On failure the
 * agent's log is printed and the agent killed. 0 or -errno.
 */
int zmh_agent_start(struct zmh_agent *a);
/*
 * zmh_agent_start() with extra zenmond options after the harness's own
 * (NULL-terminated, e.g. { "--stall-timeout", "1", NULL }); NULL: none. An
 * extra "--socket PATH" replaces the harness's socket (a->sock is PATH).
 */
int zmh_agent_start_args(struct zmh_agent *a, const char *const *extra);
/*
 * Start zenmond again on a's socket, pin dir and log (a is not running: it
 * was stopped with zmh_agent_stop_keep() or zmh_agent_kill9()), wait for it
 * to serve. 0 or -errno.
 */
int zmh_agent_restart_args(struct zmh_agent *a, const char *const *extra);
/* SIGTERM, wait, check: status 0, socket removed, programs still pinned.
 * Nothing is cleaned up: for a restart. 0 or -errno. */
int zmh_agent_stop_keep(struct zmh_agent *a);
/* SIGKILL and reap. 0 or -errno. */
int zmh_agent_kill9(struct zmh_agent *a);
/* zenmond --cleanup --pin-dir pin_dir; 0 when it exited 0 and the dir is gone. */
int zmh_cleanup_pins(const char *pin_dir);
/* Start another agent on a's pin dir but its own socket (for the pin-lock
 * test): returns its pid, or -errno; the caller waits for it. */
pid_t zmh_agent_spawn_raw(const char *sock, const char *pin_dir, const char *log);
/*
 * SIGTERM, wait up to ZMH_TIMEOUT_MS, then check: exited with status 0,
 * socket removed, programs still pinned (a clean stop leaves them), and
 * that zenmond --cleanup then removes the pin dir. Prints what was wrong (and the log) and
 * returns -errno on any failure; kills the agent if it would not stop.
 * Removes the temp dir when everything was right.
 */
int zmh_agent_stop(struct zmh_agent *a);
/* Is the agent still running (not exited)? */
bool zmh_agent_alive(const struct zmh_agent *a);
/* Print the agent's log to stderr, with a header. */
void zmh_agent_dump_log(const struct zmh_agent *a);
/* Does the agent's log hold text? */
bool zmh_agent_log_has(const struct zmh_agent *a, const char *text);

/*
 * A second agent for one test (other options than the group's, or one the
 * test stops and restarts): started with zmh_agent_start_args(), and
 * tracked by its pin dir through zmh_agent_stop_keep(), zmh_agent_kill9()
 * and zmh_agent_restart_args(), so that the per-test teardown leaves nothing
 * of it when an assert failed: it stops it if it runs (like zmh_agent_stop())
 * and removes its pins if it was left stopped with them. zmh_extra_agent_stop()
 * stops it and untracks it, and returns what zmh_agent_stop() returns.
 */
int zmh_extra_agent_start(struct zmh_agent *a, const char *const *extra);
int zmh_extra_agent_stop(struct zmh_agent *a);

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
/* Wait (up to ZMH_TIMEOUT_MS, or timeout_ms) until it is a zombie, without
 * reaping it (waitid WNOWAIT). 0, -ETIMEDOUT or -errno. */
int zmh_child_wait_zombie(struct zmh_child *c);
int zmh_child_wait_zombie_ms(struct zmh_child *c, int timeout_ms);
/* Forget a child the test reaped itself (e.g. through a reaper thread). */
void zmh_child_forget(struct zmh_child *c);

/*
 * Child i of a batch ends one of two ways, so that a batch's DOWNs carry
 * varied reasons: even i killed by SIGKILL, odd i exit(i % 200). 0 or -errno.
 */
int zmh_child_end_varied(struct zmh_child *c, size_t i);
struct zmh_collector;
/*
 * Does ref hold exactly one DOWN in col, for c's process, with the reason
 * zmh_child_end_varied(c, i) gave it? NULL if so, else what is wrong (a
 * static buffer, for fail_msg).
 */
const char *zmh_varied_down_wrong(const struct zmh_collector *col, uint64_t ref,
				  const struct zmh_child *c, size_t i);

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
/* The same with the caller's options (socket_path NULL: the agent's; the
 * rest as given, so max_rate 0 asks for the agent's default). */
int zmh_connect_opts(const struct zmh_agent *a, const struct zm_connect_options *opts,
		     struct zmh_collector *col, struct zm_client **ret);
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

/* ---- agent status ------------------------------------------------------ */

/*
 * The agent's status text (zm_status) through c, which should hold no
 * monitors: DOWNs that arrive meanwhile are consumed uncounted. malloc'd
 * into *ret_text. 0 or -errno.
 */
int zmh_status(struct zm_client *c, char **ret_text);
/* The value of the "key N" line; -ENOENT when there is none. */
int zmh_status_u64(const char *text, const char *key, uint64_t *ret);
/* field=N on the "subscriber ..." line with name=name; -ENOENT when the
 * subscriber or the field is missing. */
int zmh_status_sub_u64(const char *text, const char *name, const char *field, uint64_t *ret);

/* ---- the pinned watched-process map ------------------------------------ */

/* Entries in PIN_DIR/zm_procs: all (tgid 0) or those of one tgid. -errno on failure. */
long zmh_map_count(const char *pin_dir, pid_t tgid);
/* The pinned zm_exit_gen's value for pid's slot. 0 or -errno. */
int zmh_exit_gen(const char *pin_dir, pid_t pid, uint64_t *ret);
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

/* ---- TCP connections, network namespaces, TCP monitors over the raw client */

/*
 * Sockets made here are tracked: the per-test teardown closes every one the
 * test did not close with zmh_fd_close(). Functions return the fd (>= 0) or
 * -errno.
 */
void zmh_fd_track(int fd);
/* Untrack and close (searches from the newest: closing in reverse order of
 * creation is O(1) each). */
void zmh_fd_close(int fd);
/* A process of the test's own making that the per-test teardown SIGKILLs and
 * reaps unless zmh_pid_untrack() was called (after the test reaped it). */
void zmh_pid_track(pid_t pid);
void zmh_pid_untrack(pid_t pid);

/* A TCP listener on addr ("127.0.0.1", "::1", ...) port 0; *ret_port its port. */
int zmh_tcp_listen(int family, const char *addr, int backlog, uint16_t *ret_port);
/* A blocking connect to addr:port. */
int zmh_tcp_connect(int family, const char *addr, uint16_t port);
/* accept() on lfd, waiting up to timeout_ms. */
int zmh_tcp_accept(int lfd, int timeout_ms);
/* An established pair over addr (loopback): *ret_cli the connecting end,
 * *ret_srv the accepted one; the listener is closed. 0 or -errno. */
int zmh_tcp_pair(int family, const char *addr, int *ret_cli, int *ret_srv);
/* SO_COOKIE. 0 or -errno. */
int zmh_sock_cookie(int fd, uint64_t *ret);
/* The connection as fd sees it: saddr:sport local, daddr:dport remote. */
int zmh_sock_tuple(int fd, struct zm_tcp_tuple *ret);
/* SO_LINGER {1, 0}: the next close() resets the connection. */
int zmh_sock_linger0(int fd);
/* poll() for events on fd: 1 ready, -ETIMEDOUT, -errno. */
int zmh_fd_wait(int fd, short events, int timeout_ms);
/* Raise RLIMIT_NOFILE's soft limit to want (at most the hard limit); the
 * soft limit now in effect, or -errno. */
long zmh_raise_nofile(long want);

/*
 * Run argv (argv[0] looked up in PATH), stdout to /dev/null; stderr too when
 * quiet. The exit status (0 = success), or -errno when it could not run.
 */
int zmh_cmd(const char *const *argv, bool quiet);

/*
 * A network namespace zmt-<pid> joined to the root namespace by a veth pair:
 * root end ZMH_NS_ROOT_V4/30 and ZMH_NS_ROOT_V6/64, namespace end
 * ZMH_NS_PEER_V4 and ZMH_NS_PEER_V6 (IPv6 with nodad), both up, lo up in the
 * namespace. These addresses exist only on this pair. The root end knows the
 * namespace end's link address for good (permanent neighbour entries), so a
 * link cut (zmh_netns_link()) stalls connections until they time out rather
 * than failing them with a host-unreachable error.
 * zmh_netns_create() also removes namespaces zmt-N left by dead processes,
 * and registers an atexit() teardown; zmh_netns_destroy() is idempotent.
 */
#define ZMH_NS_ROOT_V4 "10.251.0.1"
#define ZMH_NS_PEER_V4 "10.251.0.2"
#define ZMH_NS_ROOT_V6 "fd00:251::1"
#define ZMH_NS_PEER_V6 "fd00:251::2"

struct zmh_netns {
	char name[32];      /* zmt-<pid> */
	char veth_root[16]; /* zmv<pid>a, in the root namespace */
	char veth_ns[16];   /* zmv<pid>b, in the namespace */
	bool created;
};

int zmh_netns_create(struct zmh_netns *n);
void zmh_netns_destroy(struct zmh_netns *n);
/* Take the namespace's veth end down (the link is cut: packets both ways are
 * dropped) or up again (IPv6 addresses re-added). 0 or -errno. */
int zmh_netns_link(struct zmh_netns *n, bool up);
/* socket() created inside the namespace (it stays there; tracked). */
int zmh_netns_socket(const struct zmh_netns *n, int domain, int type);

/* Connect to the agent with HELLO asking max_rate 1000000 (no pacing in the
 * way) and name; otherwise as zmh_raw_connect(r, sock, true). */
int zmh_raw_connect_named(struct zmh_raw *r, const char *sock, const char *name);
/* One MONITOR_TCP in one frame; fd >= 0 travels as SCM_RIGHTS with it
 * (m->by is the caller's: a BY_FD record with fd -1 sends no fd). */
int zmh_raw_monitor_tcp(struct zmh_raw *r, const struct zm_monitor_tcp *m, int fd);
/* n (<= 253) MONITOR_TCP records in one frame, fds[i] (or none when fds is
 * NULL or fds[i] < 0) in the same sendmsg(), in order. */
int zmh_raw_monitor_tcp_many(struct zmh_raw *r, const struct zm_monitor_tcp *ms,
			     const int *fds, size_t n);
/* Shorthands for one monitor. */
int zmh_raw_monitor_tcp_fd(struct zmh_raw *r, uint64_t ref, int fd);
int zmh_raw_monitor_tcp_cookie(struct zmh_raw *r, uint64_t ref, uint64_t cookie);
int zmh_raw_monitor_tcp_tuple(struct zmh_raw *r, uint64_t ref, const struct zm_tcp_tuple *t);
int zmh_raw_demonitor(struct zmh_raw *r, uint64_t ref, uint32_t flags);

/* What a raw client received: every DOWN and ERROR, decoded, in order. */
struct zmh_rawcol {
	struct zm_down *downs;
	size_t n, cap;
	struct zm_error *errs;
	size_t nerr, errcap;
};

/* Freed by the per-test teardown (aborts on ENOMEM). */
struct zmh_rawcol *zmh_rawcol_new(void);
/*
 * Read from r into col until col->n >= want_downs or timeout_ms passes
 * (SYNCED and STATUS_REPLY are skipped). col->n, or -errno (-ECONNRESET on
 * EOF, -EBADMSG/-EPROTO on garbage).
 */
long zmh_raw_collect(struct zmh_raw *r, struct zmh_rawcol *col, size_t want_downs, int timeout_ms);
/* SYNC and wait for SYNCED, collecting what comes before it. 0 or -errno. */
int zmh_raw_sync_col(struct zmh_raw *r, struct zmh_rawcol *col);
/* zmh_raw_sync_col(), then collect for ms: the number of DOWNs that came. */
long zmh_raw_quiet(struct zmh_raw *r, struct zmh_rawcol *col, int ms);
/* DOWNs for ref (the first in *ret, may be NULL). */
size_t zmh_rawcol_count(const struct zmh_rawcol *col, uint64_t ref, const struct zm_down **ret);
/* The first ERROR for ref, or NULL. */
const struct zm_error *zmh_rawcol_err(const struct zmh_rawcol *col, uint64_t ref);
/* One line describing d ("ref=.. kind=.. reason=.. how=.. value=.. cookie=.."). */
void zmh_down_str(const struct zm_down *d, char *buf, size_t cap);
/* Print every DOWN and ERROR in col to stderr (for a failing assertion). */
void zmh_rawcol_dump(const struct zmh_rawcol *col, const char *what);

/* ---- the pinned watched-socket map ------------------------------------- */

/* Entries in PIN_DIR/zm_tcp: all (cookies NULL) or those whose key is one of
 * cookies[0..n). -errno on failure. */
long zmh_tcp_map_count(const char *pin_dir, const uint64_t *cookies, size_t n);
/* Poll until the count equals want or timeout_ms passes; the last count. */
long zmh_tcp_map_wait_count(const char *pin_dir, const uint64_t *cookies, size_t n, long want,
			    int timeout_ms);

#endif
