/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * The agent's state, shared by its modules: the loop, the kernel side, the
 * registry, the listening socket and the clients. One thread owns all of it.
 */
#ifndef ZENMOND_AGENT_H
#define ZENMOND_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "zenmon/proto.h"
#include "access.h"
#include "dispatch.h"
#include "kwatch.h"
#include "loop.h"
#include "metrics.h"
#include "priv.h"
#include "registry.h"

struct adopt;
struct client;
struct pending_exit;
struct metrics_http;

struct agent_opts {
	const char *socket_path;
	const char *pin_dir;
	const char *proc_root;        /* "/proc" */
	uint64_t wakeup_interval_ns;
	uint32_t ring_bytes;             /* --ring-size */
	unsigned int socket_mode;     /* permissions of the socket file */
	/* Delivery: caps on what a subscriber may ask in HELLO, and the
	 * values it gets when it asks for none (0 rate = unlimited). */
	uint32_t max_rate;            /* DOWNs/s per subscriber, 0 = no cap */
	uint32_t max_batch;           /* DOWNs per frame */
	uint32_t batch_window_us;
	uint32_t global_rate;         /* DOWNs/s for all subscribers together, 0 = no cap */
	uint32_t stall_timeout_s;     /* disconnect a subscriber that reads nothing for this long */
	uint32_t max_queued;          /* disconnect a subscriber with more DOWNs waiting, 0 = no cap */
	const char *metrics_listen;   /* --metrics-listen HOST:PORT; NULL: no HTTP listener */
	int log_level;                /* enum log_level */
	/* Access (access.h, priv.h). */
	uint32_t socket_uid;          /* owner of the socket file */
	uint32_t socket_gid;          /* its group */
	bool socket_owner_set, socket_group_set, socket_mode_set; /* given, not defaults */
	struct priv_opts run_as;      /* user: who the agent runs as after set-up */
	struct access_ids allow_uids; /* may monitor any target, like root */
	struct access_ids allow_groups;
	struct access_quotas quotas;
	/* Stop reading a subscriber's requests while more than this many bytes
	 * of its answers wait unsent (0: AGENT_DEFAULT_QUEUED_BYTES). */
	uint32_t max_queued_bytes;
	uint32_t adopt_timeout_s;     /* keep inherited watches this long for returning clients */
};

#define AGENT_DEFAULT_QUEUED_BYTES (4U << 20)

struct agent {
	struct agent_opts opts;
	struct loop *loop;
	struct kwatch *kw;
	struct registry *reg;

	struct loop_source listen_src;
	int spare_fd;                 /* given up to accept() and close on EMFILE */
	bool socket_bound;

	struct loop_source ring_src;
	struct loop_source redrain_src;   /* timerfd: drain again after one wakeup interval */
	bool redrain_armed;
	struct loop_source check_src;     /* timerfd: periodic drop check */
	struct loop_source signal_src;    /* signalfd: SIGTERM, SIGINT */
	struct loop_source dispatch_src;  /* timerfd: the dispatcher's next due time */
	struct dispatcher dispatcher;
	struct zm_down *scratch;          /* max_batch DOWNs popped for one frame */

	struct client *clients;           /* all connections */
	struct client *dirty;             /* clients with output to send */
	struct pending_exit *pending;     /* targets caught mid-exit, waited on by pidfd */
	struct adopt *adopt;              /* watches inherited from the previous agent (adopt.c) */
	/* Stopping: kernel watches stay for the next agent, whatever the
	 * registry lets go of (monitor_forget_kernel()). */
	bool stopping;
	/* The request being handled wants a MONITORED for this ref, 0 if none
	 * (monitor_confirm()). */
	uint64_t confirm_ref;
	struct pid_hint *pid_hints;       /* pid -> the identity last resolved (monitor.c) */

	struct access_table access;       /* connections and monitors per uid (access.h) */
	/* A zombie's exit status is readable (CAP_SYS_PTRACE, priv.c): else
	 * /proc shows 0 for it, and a zombie found at MONITOR is noproc. */
	bool zombie_status_readable;

	struct metrics metrics;           /* what the agent counts (metrics.h) */
	struct metrics_http *http;        /* the /metrics listener, if any */

	uint64_t started_mono_ns;
	uint64_t downs_sent;
	uint64_t downs_flushed;           /* queued DOWNs a demonitor took back */
	uint64_t subscribers_dropped;     /* disconnected for not reading */
	uint64_t rb_dropped_seen;
	uint64_t burst_records; /* ring records since the ring was last empty */
	bool rescan_needed;               /* a fire ran out of memory or a scan failed: rescan */
	bool dispatch_due;                /* DOWNs were queued since the dispatcher last ran */
};

/* Consume the ring buffer's records, and keep draining once per wakeup
 * interval while records keep coming (main.c; the policy is in
 * bpf/zenmon.bpf.c). */
void agent_drain_ring(struct agent *a);

/* CLOCK_MONOTONIC / CLOCK_BOOTTIME / CLOCK_REALTIME now, in nanoseconds. */
uint64_t agent_now_ns(int clock_id);

/* ---- server.c: the listening socket -------------------------------------- */

/* Create the socket directory and the socket (refusing a path a live agent
 * holds, replacing a stale file), with the configured owner, group and
 * mode. Logs and returns -errno. */
int server_listen(struct agent *a);
void server_close(struct agent *a);

/* ---- client.c: one connection -------------------------------------------- */

/*
 * Take a new connection: its credentials (SO_PEERCRED, SO_PEERGROUPS) decide
 * what it may monitor. A connection past its uid's max-connections-per-uid
 * gets ERROR ENOSPC and is closed here (0 all the same). -errno when it
 * cannot be taken (the caller closes fd).
 */
int client_accept(struct agent *a, int fd);
/* Queue one record for the client (the before-sleep hook sends it). */
int client_queue(struct client *c, uint16_t type, const void *body, size_t len);
/* Queue text as text-reply records (zm_frame_add_text_reply()). 0 or -ENOMEM. */
int client_queue_text(struct client *c, uint16_t type, uint64_t token, const char *text, size_t len);
/* Queue an ERROR about one request (ref may be 0) with a printf message. */
void client_error(struct client *c, uint64_t ref, uint16_t request, int code,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Take the oldest fd the client passed with SCM_RIGHTS; -1 if none. */
int client_take_fd(struct client *c);
struct reg_sub *client_sub(const struct client *c);
/* Did the client's HELLO ask for MONITORED records (ZM_HELLO_RESUMABLE)? */
bool client_resumable(const struct client *c);
/* The peer's uid (SO_PEERCRED), and whether it may monitor any target
 * (root, allow-uids, allow-groups: access.h). */
uint32_t client_uid(const struct client *c);
bool client_unrestricted(const struct client *c);
/* May c add one more monitor (its and its uid's quotas)? On false the
 * client has its ERROR ENOSPC. */
bool client_monitor_quota(struct client *c, uint64_t ref, uint16_t request);
/* After a reload: apply allow-uids, allow-groups and the request rate to
 * every connected subscriber. */
void client_apply_access(struct agent *a);
/* Send what is queued, for every client with output. */
void client_flush_all(struct agent *a);
/* The dispatcher's and the registry's hooks (client.c). */
extern const struct dispatch_ops client_dispatch_ops;
void client_on_queued(void *ctx, struct reg_sub *s);
/* Disconnect subscribers past --stall-timeout or --max-queued. */
void client_check_limits(struct agent *a, uint64_t now_ns);
/* After a reload: lower each subscriber's rate and batch to the agent's
 * (possibly new) --max-rate and --max-batch. How many were lowered. */
size_t client_apply_caps(struct agent *a);
/* Run the dispatcher now and arm its timer for the next due time. */
void agent_dispatch(struct agent *a);
void client_close(struct client *c, const char *why);
void client_close_all(struct agent *a);
/* Append "subscriber id=.. name=.. monitors=.. queued=.." lines while the
 * buffer stays within max_len bytes. */
int client_status_lines(struct agent *a, struct zm_buf *out, size_t max_len);

/* ---- monitor.c: monitors, demonitors, deaths ----------------------------- */

void monitor_proc(struct agent *a, struct client *c, const struct zm_monitor_proc *m);
void monitor_pidfd(struct agent *a, struct client *c, const struct zm_monitor_pidfd *m, int pidfd);
void monitor_demonitor(struct agent *a, struct client *c, const struct zm_demonitor *m);
/* The checks every MONITOR request shares (ref nonzero and free, the
 * client's monitor quotas); on failure the client has its ERROR. */
bool monitor_check_ref(struct agent *a, struct client *c, uint64_t ref, uint16_t request);
/* Fire a target: its monitors become queued DOWNs like d. false when out of
 * memory (nothing changed; a rescan is scheduled). */
bool monitor_fire(struct agent *a, const struct reg_key *key, const struct zm_down *d);
/* A monitor whose target was gone before it was set: add it on key and, if
 * no live target of that identity exists, fire it at once with d. */
void monitor_queue_gone(struct agent *a, struct client *c, uint64_t ref, const struct reg_key *key,
			const struct zm_down *d, uint16_t request);
/*
 * Tell a resumable client (client_resumable()) which target a monitor it
 * named without identity (a pid alone, a pidfd, a socket fd or tuple) has:
 * a MONITORED record, so that it can bring the monitor back by identity
 * after an agent restart. Only for the request being handled, if its
 * handler set a->confirm_ref to ref. gone: the target did not exist (its
 * DOWN is noproc or noconnection).
 */
void monitor_confirm(struct agent *a, struct client *c, uint64_t ref, const struct reg_key *key,
		     bool gone);
/*
 * A target's kernel watch is no longer needed by the registry: delete it,
 * unless the agent is stopping (the next agent adopts it) or the watch is
 * an adopted one still kept for returning clients (adopt.c).
 */
void monitor_forget_kernel(struct agent *a, const struct reg_key *key);
/*
 * The kernel reports a target's death (ring-buffer record or map scan):
 * fire its monitors, and keep the FIRED watch until their DOWNs are sent
 * (monitor_released()), or for the adoption period. true when that queued
 * DOWNs, i.e. the death was news.
 */
bool monitor_kernel_death(struct agent *a, const struct reg_key *key, const struct zm_down *d);
uint64_t monitor_boot_to_realtime(uint64_t boot_ns);

/* ---- monitor_tcp.c: TCP connection monitors ------------------------------ */

void monitor_tcp(struct agent *a, struct client *c, const struct zm_monitor_tcp *m, int fd);
bool monitor_on_tcp_event(void *ctx, const struct zm_tcp_event *ev);

/* kwatch's event callback: a watched process died. */
bool monitor_on_kernel_event(void *ctx, const struct zm_event *ev);
/* The registry's unwatch and released callbacks. */
void monitor_unwatch(void *ctx, const struct reg_key *key);
void monitor_released(void *ctx, const struct reg_key *key);
void monitor_free_pending(struct agent *a);

/* ---- adopt.c: watches inherited from the previous agent ------------------ */

/*
 * After kwatch_open(), before the socket listens: if the maps were
 * inherited, take every watch in them as adopted for opts.adopt_timeout_s
 * (a timer then calls adopt_expire()). 0 or -errno (logged).
 */
int adopt_load(struct agent *a);
/* A new registry target for key: an adopted armed watch of it is the
 * registry's from now on. */
void adopt_claim(struct agent *a, const struct reg_key *key);
/*
 * The death recorded for an adopted key, as a DOWN (ref 0), and who owned
 * the target as the kernel recorded it at the death (*ret_has_owner false
 * when it did not: a watch left by an older agent); false if none.
 */
bool adopt_death(struct agent *a, const struct reg_key *key, struct zm_down *ret,
		 struct reg_owner *ret_owner, bool *ret_has_owner);
/* May c learn of the death of a target that owner owned? */
bool monitor_may_learn(struct client *c, const struct reg_owner *owner, bool has_owner);
/* key died (d): remember it for monitors brought back later, if adopted.
 * true when the kernel watch is the adoption's (not to be deleted now). */
bool adopt_note_death(struct agent *a, const struct reg_key *key, const struct zm_down *d);
/* Is key's kernel watch held by the adoption? */
bool adopt_owns(struct agent *a, const struct reg_key *key);
/* Adopted watches still kept (0 once the period is over). */
size_t adopt_count(const struct agent *a);
/* End the period: delete the kernel watches nobody claimed, free. */
void adopt_expire(struct agent *a);
/* Free without touching the kernel (on the way out). NULL-safe. */
void adopt_free(struct agent *a);

/* ---- status.c ------------------------------------------------------------ */

/* The STATUS_REPLY text: "name value" lines. 0 or -ENOMEM. */
int status_text(struct agent *a, struct zm_buf *out);

/* ---- report.c: the agent's reports on itself ----------------------------- */

/* The metrics text (Prometheus exposition format) appended to out. 0 or -ENOMEM. */
int report_metrics(struct agent *a, struct zm_buf *out);
/* Answer a STATS or a TARGETS request (the client gets its reply or an ERROR). */
void report_stats(struct agent *a, struct client *c, uint64_t token);
void report_targets(struct agent *a, struct client *c, const struct zm_targets *m);

/* ---- metrics_http.c: the /metrics listener ------------------------------- */

/*
 * Listen on a->opts.metrics_listen ("HOST:PORT", "[V6]:PORT" or "PORT" for
 * the loopback address) and serve GET /metrics from the agent's loop.
 * Logs what went wrong (address in use, not an address, ...) and returns
 * -errno.
 */
int metrics_http_start(struct agent *a);
/* Close the listener and every scrape in progress. NULL-safe. */
void metrics_http_stop(struct agent *a);
/*
 * Parse a --metrics-listen value into a socket address (numeric only: no
 * name lookups in a daemon's start). 0, or -EINVAL with a message in err.
 */
int metrics_http_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
			      char *err, size_t errlen);

#endif
