// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmond: the zenmon host agent. Loads the kernel watch, listens on a Unix
 * socket, turns process deaths into DOWN notifications for subscribers.
 * One thread, one epoll loop (loop.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

#define DEFAULT_PIN_DIR "/sys/fs/bpf/zenmon"
#define CHECK_INTERVAL_MS 250   /* drop check, limits, and the backstop drain */
#define DEFAULT_MAX_BATCH 1024U
/* A frame holds at most 1 MiB: 16384 DOWNs of 44 bytes fit with room. */
#define MAX_BATCH_LIMIT 16384U
#define DEFAULT_BATCH_WINDOW_US 1000U
#define DISPATCH_MAX_BATCHES 64 /* per pass, before the loop looks at other events */

enum {
	OPT_MAX_RATE = 0x100,
	OPT_MAX_BATCH,
	OPT_BATCH_WINDOW,
	OPT_GLOBAL_RATE,
	OPT_STALL_TIMEOUT,
	OPT_MAX_QUEUED,
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: zenmond [OPTIONS]\n"
"\n"
"The zenmon host agent: Erlang-style monitors for Linux processes. Programs\n"
"connect to its Unix socket (with libzenmon, zenmonctl, or the protocol in\n"
"docs/PROTOCOL.md), monitor processes, and receive exactly one DOWN per\n"
"monitor when the process dies. eBPF on sched_process_exit does the watching.\n"
"Runs in the foreground and logs to standard error. Needs root (or\n"
"CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE, plus CAP_SYS_ADMIN to mount bpffs).\n"
"\n"
"Options:\n"
"  -s, --socket PATH         listen on PATH (default: $%s, else %s)\n"
"  -p, --pin-dir DIR         pin the BPF maps under DIR, on a bpf filesystem\n"
"                            (default: %s); inspect them with\n"
"                            bpftool map dump pinned DIR/zm_procs\n"
"  -m, --socket-mode MODE    permissions of the socket file, octal (default: 0666);\n"
"                            whoever may open it may monitor any process\n"
"  -w, --wakeup-interval US  at most one kernel wakeup of the agent per US\n"
"                            microseconds under an exit storm (default: %llu);\n"
"                            a lone exit always wakes it at once\n"
"\n"
"Delivery (each subscriber asks in its HELLO; these are the agent's caps and\n"
"the values a subscriber gets when it asks for none):\n"
"      --max-rate N          DOWNs per second to one subscriber (default: 0,\n"
"                            no limit)\n"
"      --max-batch N         DOWN records per frame, 1..%u (default: %u)\n"
"      --batch-window US     how long a DOWN may wait for company once a\n"
"                            subscriber is busy; a DOWN for an idle one goes at\n"
"                            once (default: %u)\n"
"      --global-rate N       DOWNs per second to all subscribers together\n"
"                            (default: 0, no limit)\n"
"      --stall-timeout SEC   disconnect a subscriber whose socket stayed full\n"
"                            for SEC seconds, after a last ERROR (default: 0,\n"
"                            never: a slow reader is only back-pressured)\n"
"      --max-queued N        disconnect a subscriber with more than N DOWNs\n"
"                            waiting (default: 0, no limit: a queue never\n"
"                            holds more than the subscriber's monitors)\n"
"\n"
"  -l, --log-level LEVEL     error, warn, info (default) or debug\n"
"  -h, --help                show this help and exit\n"
"  -V, --version             show the version and exit\n"
"\n"
"Signals: SIGTERM or SIGINT stop the agent cleanly: it delivers the DOWNs the\n"
"kernel already reported, closes every connection, removes its socket and\n"
"its pinned maps.\n"
"\n"
"Exit status: 0 after a clean stop, 1 when it cannot start (the reason is\n"
"logged), 2 on a usage error.\n",
		ZM_SOCKET_ENV, ZM_DEFAULT_SOCKET, DEFAULT_PIN_DIR,
		ZM_DEFAULT_WAKEUP_INTERVAL_NS / 1000ULL,
		MAX_BATCH_LIMIT, DEFAULT_MAX_BATCH, DEFAULT_BATCH_WINDOW_US);
}

static int parse_u64(const char *s, int base, unsigned long long max, unsigned long long *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!*s || *s == '-')
		return -EINVAL;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_delivery_opt(int opt, const char *arg, struct agent_opts *o)
{
	static const struct {
		int opt;
		const char *name;
		unsigned long long min, max;
		size_t offset;
	} table[] = {
		{ OPT_MAX_RATE, "--max-rate", 0, 100000000, offsetof(struct agent_opts, max_rate) },
		{ OPT_MAX_BATCH, "--max-batch", 1, MAX_BATCH_LIMIT, offsetof(struct agent_opts, max_batch) },
		{ OPT_BATCH_WINDOW, "--batch-window", 0, 10000000, offsetof(struct agent_opts, batch_window_us) },
		{ OPT_GLOBAL_RATE, "--global-rate", 0, 1000000000, offsetof(struct agent_opts, global_rate) },
		{ OPT_STALL_TIMEOUT, "--stall-timeout", 0, 86400, offsetof(struct agent_opts, stall_timeout_s) },
		{ OPT_MAX_QUEUED, "--max-queued", 0, 1000000000, offsetof(struct agent_opts, max_queued) },
	};
	unsigned long long v;

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (table[i].opt != opt)
			continue;
		if (parse_u64(arg, 10, table[i].max, &v) < 0 || v < table[i].min) {
			fprintf(stderr, "zenmond: invalid %s '%s': give a whole number from %llu to %llu\n",
				table[i].name, arg, table[i].min, table[i].max);
			return -EINVAL;
		}
		*(uint32_t *)((char *)o + table[i].offset) = (uint32_t)v;
		return 0;
	}
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct agent_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "wakeup-interval", required_argument, NULL, 'w' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "max-rate", required_argument, NULL, OPT_MAX_RATE },
		{ "max-batch", required_argument, NULL, OPT_MAX_BATCH },
		{ "batch-window", required_argument, NULL, OPT_BATCH_WINDOW },
		{ "global-rate", required_argument, NULL, OPT_GLOBAL_RATE },
		{ "stall-timeout", required_argument, NULL, OPT_STALL_TIMEOUT },
		{ "max-queued", required_argument, NULL, OPT_MAX_QUEUED },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *env = getenv(ZM_SOCKET_ENV);
	unsigned long long v;
	enum log_level lvl;
	int c;

	o->socket_path = env && *env ? env : ZM_DEFAULT_SOCKET;
	o->pin_dir = DEFAULT_PIN_DIR;
	o->proc_root = "/proc";
	o->socket_mode = 0666;
	o->wakeup_interval_ns = ZM_DEFAULT_WAKEUP_INTERVAL_NS;
	o->max_batch = DEFAULT_MAX_BATCH;
	o->batch_window_us = DEFAULT_BATCH_WINDOW_US;

	while ((c = getopt_long(argc, argv, "s:p:m:w:l:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'p':
			o->pin_dir = optarg;
			break;
		case 'm':
			if (parse_u64(optarg, 8, 0777, &v) < 0) {
				fprintf(stderr, "zenmond: invalid --socket-mode '%s': give octal permissions such as 0660\n", optarg);
				return 2;
			}
			o->socket_mode = (unsigned int)v;
			break;
		case 'w':
			if (parse_u64(optarg, 10, 1000000, &v) < 0 || v == 0) {
				fprintf(stderr, "zenmond: invalid --wakeup-interval '%s': give microseconds from 1 to 1000000\n", optarg);
				return 2;
			}
			o->wakeup_interval_ns = v * 1000ULL;
			break;
		case 'l':
			if (log_parse_level(optarg, &lvl) < 0) {
				fprintf(stderr, "zenmond: invalid --log-level '%s': use error, warn, info or debug\n", optarg);
				return 2;
			}
			log_set_level(lvl);
			break;
		case OPT_MAX_RATE:
		case OPT_MAX_BATCH:
		case OPT_BATCH_WINDOW:
		case OPT_GLOBAL_RATE:
		case OPT_STALL_TIMEOUT:
		case OPT_MAX_QUEUED:
			if (parse_delivery_opt(c, optarg, o) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("zenmond %s (protocol %d)\n", ZENMON_VERSION, ZM_PROTO_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'zenmond --help' for more information.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "zenmond: unexpected argument '%s'\nTry 'zenmond --help' for more information.\n",
			argv[optind]);
		return 2;
	}
	if (o->socket_path[0] != '/') {
		fprintf(stderr, "zenmond: --socket '%s' must be an absolute path\n", o->socket_path);
		return 2;
	}
	return 0;
}

static int timer_new(struct agent *a, struct loop_source *src, loop_fn fn)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	src->fd = fd;
	src->fn = fn;
	return loop_add(a->loop, src, EPOLLIN);
}

static void timer_arm(struct loop_source *src, uint64_t ns, bool periodic)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(ns / 1000000000ULL), .tv_nsec = (long)(ns % 1000000000ULL) },
	};

	if (periodic)
		its.it_interval = its.it_value;
	timerfd_settime(src->fd, 0, &its, NULL);
}

static void timer_ack(struct loop_source *src)
{
	uint64_t expirations;

	if (read(src->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("timerfd read: %s", strerror(errno));
}

/*
 * The agent half of the wakeup policy (bpf/zenmon.bpf.c): the kernel wakes
 * us for the first exit after a quiet interval and submits the rest of a
 * burst silently; after any drain that found records, drain again one
 * interval later, until a drain finds nothing.
 */
void agent_drain_ring(struct agent *a)
{
	int n = kwatch_drain(a->kw);

	/* -EAGAIN: a record is still being written and may carry no wakeup. */
	if (n < 0 && n != -EAGAIN)
		log_warn("reading the ring buffer failed: %s", strerror(-n));
	if ((n > 0 || n == -EAGAIN) && !a->redrain_armed) {
		timer_arm(&a->redrain_src, kwatch_wakeup_interval_ns(a->kw), false);
		a->redrain_armed = true;
	}
}

static void on_ring(struct loop_source *src, uint32_t events)
{
	agent_drain_ring((struct agent *)((char *)src - offsetof(struct agent, ring_src)));
}

static void on_redrain(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, redrain_src));

	timer_ack(src);
	a->redrain_armed = false;
	agent_drain_ring(a);
}

/* Every CHECK_INTERVAL_MS: a backstop drain, and if the kernel counted
 * ring-buffer drops, recover those exits from the map. */
static void on_check(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, check_src));
	struct zm_kstats ks;

	timer_ack(src);
	agent_drain_ring(a);
	client_check_limits(a, agent_now_ns(CLOCK_MONOTONIC));
	if (a->rescan_needed) {
		a->rescan_needed = false;
		if (kwatch_scan_fired(a->kw) < 0)
			a->rescan_needed = true;
	}
	if (kwatch_read_stats(a->kw, &ks) == 0 && ks.rb_dropped > a->rb_dropped_seen) {
		int n;

		log_warn("the kernel dropped %llu records (ring buffer full); recovering them from the watch map",
			 (unsigned long long)(ks.rb_dropped - a->rb_dropped_seen));
		a->rb_dropped_seen = ks.rb_dropped;
		n = kwatch_scan_fired(a->kw);
		if (n < 0)
			log_error("cannot scan the watch map: %s", strerror(-n));
		else
			log_info("recovered %d deaths from the watch maps", n);
	}
}

static void on_signal(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, signal_src));
	struct signalfd_siginfo si;

	if (read(src->fd, &si, sizeof(si)) == sizeof(si))
		log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
	loop_stop(a->loop);
}

void agent_dispatch(struct agent *a)
{
	uint64_t now = agent_now_ns(CLOCK_MONOTONIC);
	uint64_t next = dispatch_run(&a->dispatcher, now, DISPATCH_MAX_BATCHES);
	struct itimerspec its = { 0 };

	a->dispatch_due = false;
	if (next != UINT64_MAX) {
		/* A due time in the past (the pass stopped at its cap) fires at
		 * once, after the loop has looked at everything else. */
		if (next <= now)
			next = now + 1;
		its.it_value.tv_sec = (time_t)(next / 1000000000ULL);
		its.it_value.tv_nsec = (long)(next % 1000000000ULL);
	}
	timerfd_settime(a->dispatch_src.fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_dispatch_timer(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, dispatch_src));

	timer_ack(src);
	a->dispatch_due = true; /* run from before_sleep, with everything else queued */
}

static void before_sleep(void *ctx)
{
	struct agent *a = ctx;

	if (a->dispatch_due)
		agent_dispatch(a);
	client_flush_all(a);
}

static int setup_signals(struct agent *a)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	a->signal_src.fd = fd;
	a->signal_src.fn = on_signal;
	return loop_add(a->loop, &a->signal_src, EPOLLIN);
}

static void close_source(struct agent *a, struct loop_source *src)
{
	if (src->fd < 0)
		return;
	loop_del(a->loop, src);
	close(src->fd);
	src->fd = -1;
}

/*
 * On the way out: hand every queued DOWN to the sockets, ignoring pacing,
 * as far as the sockets take them without blocking.
 */
static void shutdown_flush(struct agent *a)
{
	for (int pass = 0; pass < 1000; pass++) {
		uint64_t before = a->downs_sent;

		/* A clock an hour further on each pass: every bucket full, every
		 * window elapsed. */
		dispatch_run(&a->dispatcher,
			     agent_now_ns(CLOCK_MONOTONIC) + (uint64_t)(pass + 1) * 3600000000000ULL,
			     DISPATCH_MAX_BATCHES);
		client_flush_all(a);
		if (a->downs_sent == before)
			break;
	}
}

int main(int argc, char **argv)
{
	static const struct registry_ops reg_ops = {
		.unwatch = monitor_unwatch,
		.queued = client_on_queued,
	};
	struct agent a = {
		.listen_src.fd = -1, .spare_fd = -1, .redrain_src.fd = -1,
		.check_src.fd = -1, .signal_src.fd = -1, .ring_src.fd = -1,
		.dispatch_src.fd = -1,
	};
	struct kwatch_opts kopts;
	int r, status = 1;

	r = parse_args(argc, argv, &a.opts);
	if (r)
		return r;
	a.started_mono_ns = agent_now_ns(CLOCK_MONOTONIC);

	a.loop = loop_new();
	a.reg = registry_new(&reg_ops, &a);
	a.scratch = calloc(a.opts.max_batch, sizeof(*a.scratch));
	if (!a.loop || !a.reg || !a.scratch) {
		log_error("cannot start: %s", strerror(errno ? errno : ENOMEM));
		goto out;
	}
	r = setup_signals(&a);
	if (r < 0) {
		log_error("cannot set up signal handling: %s", strerror(-r));
		goto out;
	}

	kopts = (struct kwatch_opts){ .pin_dir = a.opts.pin_dir,
				      .wakeup_interval_ns = a.opts.wakeup_interval_ns };
	r = kwatch_open(&kopts, monitor_on_kernel_event, &a, &a.kw);
	if (r < 0)
		goto out; /* kwatch said what went wrong and what to do */
	kwatch_set_tcp_handler(a.kw, monitor_on_tcp_event, &a);
	a.ring_src.fd = kwatch_fd(a.kw);
	a.ring_src.fn = on_ring;
	r = loop_add(a.loop, &a.ring_src, EPOLLIN);
	if (r < 0) {
		log_error("cannot watch the ring buffer: %s", strerror(-r));
		a.ring_src.fd = -1;
		goto out;
	}
	dispatch_init(&a.dispatcher, &client_dispatch_ops, a.opts.global_rate,
		      a.opts.global_rate ? (a.opts.global_rate < a.opts.max_batch ? a.opts.global_rate
									  : a.opts.max_batch) : 0,
		      a.started_mono_ns);
	r = timer_new(&a, &a.redrain_src, on_redrain);
	if (r >= 0)
		r = timer_new(&a, &a.check_src, on_check);
	if (r >= 0)
		r = timer_new(&a, &a.dispatch_src, on_dispatch_timer);
	if (r < 0) {
		log_error("cannot create timers: %s", strerror(-r));
		goto out;
	}
	timer_arm(&a.check_src, CHECK_INTERVAL_MS * 1000000ULL, true);

	r = server_listen(&a);
	if (r < 0)
		goto out;

	log_info("zenmond %s ready: socket %s, maps pinned in %s", ZENMON_VERSION,
		 a.opts.socket_path, kwatch_pin_dir(a.kw));
	loop_set_before_sleep(a.loop, before_sleep, &a);
	r = loop_run(a.loop);
	if (r < 0) {
		log_error("event loop failed: %s", strerror(-r));
		goto out;
	}
	status = 0;

out:
	/* Stop taking clients, deliver what the kernel already reported, then
	 * let everything go. */
	server_close(&a);
	if (a.kw) {
		/* The last DOWNs go out without pacing: the agent is leaving. */
		kwatch_drain(a.kw);
		shutdown_flush(&a);
	}
	client_close_all(&a);
	monitor_free_pending(&a);
	if (a.loop) {
		close_source(&a, &a.redrain_src);
		close_source(&a, &a.dispatch_src);
		close_source(&a, &a.check_src);
		close_source(&a, &a.signal_src);
		if (a.ring_src.fd >= 0)
			loop_del(a.loop, &a.ring_src); /* kwatch owns that fd */
	}
	kwatch_close(a.kw);
	registry_free(a.reg);
	loop_free(a.loop);
	free(a.scratch);
	if (status == 0)
		log_info("stopped");
	return status;
}
