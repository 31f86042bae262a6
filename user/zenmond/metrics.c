// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The agent's metrics and their Prometheus text exposition: see metrics.h.
 * docs/METRICS.md documents every family written here; change both at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics.h"

#define NS_PER_S 1000000000ULL
#define METRICS_STR_(x) #x
#define METRICS_STR(x) METRICS_STR_(x)

/* DOWNs per frame: powers of two up to the largest --max-batch. */
static const uint64_t batch_bounds[] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
};

/* One event-loop pass, in ns: 10 µs .. 1 s. */
static const uint64_t loop_bounds[] = {
	10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
	100000000, 250000000, 500000000, 1000000000,
};

_Static_assert(sizeof(batch_bounds) / sizeof(batch_bounds[0]) <= METRICS_HIST_MAX, "too many buckets");
_Static_assert(sizeof(loop_bounds) / sizeof(loop_bounds[0]) <= METRICS_HIST_MAX, "too many buckets");

void metrics_init(struct metrics *m)
{
	m->batch.bounds = batch_bounds;
	m->batch.nbounds = sizeof(batch_bounds) / sizeof(batch_bounds[0]);
	m->loop.bounds = loop_bounds;
	m->loop.nbounds = sizeof(loop_bounds) / sizeof(loop_bounds[0]);
}

void metrics_hist_observe(struct metrics_hist *h, uint64_t v)
{
	size_t i = 0;

	while (i < h->nbounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

void metrics_on_loop_pass(void *ctx, uint64_t busy_ns)
{
	metrics_hist_observe(&((struct metrics *)ctx)->loop, busy_ns);
}

/* ---- the process --------------------------------------------------------- */

int metrics_read_process(const char *proc_root, struct metrics_process *ret)
{
	struct metrics_process p = { 0 };
	unsigned long long ut, st, vsize;
	long long rss;
	char path[256], buf[1024];
	struct rlimit rl;
	struct dirent *e;
	const char *q;
	ssize_t n;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "%s/self/stat", proc_root);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	/* After the ") " that ends the command name come fields 3, 4, ...:
	 * utime 14, stime 15, vsize 23, rss 24 (pages). */
	q = strrchr(buf, ')');
	if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
			 "%*d %*d %*d %*d %*d %*d %*u %llu %lld", &ut, &st, &vsize, &rss) != 4)
		return -EBADMSG;
	p.cpu_ns = (ut + st) * (NS_PER_S / (uint64_t)sysconf(_SC_CLK_TCK));
	p.vsize_bytes = vsize;
	p.rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE) : 0;

	snprintf(path, sizeof(path), "%s/self/fd", proc_root);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			p.open_fds++;
	closedir(d);
	p.open_fds--;   /* the directory's own fd */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		p.max_fds = rl.rlim_cur;
	*ret = p;
	return 0;
}

/* ---- the exposition format ------------------------------------------------ */

static void writer_append(struct metrics_writer *w, const char *s, size_t n)
{
	if (!w->err && zm_buf_append(w->out, s, n) < 0)
		w->err = -ENOMEM;
}

static void writer_puts(struct metrics_writer *w, const char *s)
{
	writer_append(w, s, strlen(s));
}

/* s with backslash and newline escaped, and the double quote too when quote. */
static void writer_escaped(struct metrics_writer *w, const char *s, bool quote)
{
	for (const char *p = s; *p; p++) {
		const char *esc = NULL;

		if (*p == '\\')
			esc = "\\\\";
		else if (*p == '\n')
			esc = "\\n";
		else if (quote && *p == '"')
			esc = "\\\"";
		if (esc)
			writer_puts(w, esc);
		else
			writer_append(w, p, 1);
	}
}

void metrics_write_family(struct metrics_writer *w, const char *name, const char *type,
			  const char *help)
{
	writer_puts(w, "# HELP ");
	writer_puts(w, name);
	writer_puts(w, " ");
	writer_escaped(w, help, false);
	writer_puts(w, "\n# TYPE ");
	writer_puts(w, name);
	writer_puts(w, " ");
	writer_puts(w, type);
	writer_puts(w, "\n");
}

void metrics_write_sample(struct metrics_writer *w, const char *name, const char *suffix,
			  const struct metrics_label *labels, size_t nlabels, const char *value)
{
	writer_puts(w, name);
	writer_puts(w, suffix);
	for (size_t i = 0; i < nlabels; i++) {
		writer_puts(w, i ? "," : "{");
		writer_puts(w, labels[i].name);
		writer_puts(w, "=\"");
		writer_escaped(w, labels[i].value, true);
		writer_puts(w, "\"");
	}
	if (nlabels)
		writer_puts(w, "}");
	writer_puts(w, " ");
	writer_puts(w, value);
	writer_puts(w, "\n");
}

void metrics_write_u64(struct metrics_writer *w, const char *name,
		       const struct metrics_label *labels, size_t nlabels, uint64_t value)
{
	char v[24];

	snprintf(v, sizeof(v), "%" PRIu64, value);
	metrics_write_sample(w, name, "", labels, nlabels, v);
}

const char *metrics_format_scaled(uint64_t v, uint64_t scale, char *buf, size_t len)
{
	char frac[24];
	int digits = 0;
	size_t end;

	for (uint64_t s = scale; s >= 10; s /= 10)
		digits++;
	if (digits == 0) {
		snprintf(buf, len, "%" PRIu64, v);
		return buf;
	}
	/* The fraction zero-padded to 20 digits, of which the last digits count. */
	snprintf(frac, sizeof(frac), "%020" PRIu64, v % scale);
	snprintf(buf, len, "%" PRIu64 ".%s", v / scale, frac + 20 - digits);
	/* "0.000250000" -> "0.00025", "3.000000000" -> "3" */
	end = strlen(buf);
	while (end > 0 && buf[end - 1] == '0')
		end--;
	if (end > 0 && buf[end - 1] == '.')
		end--;
	buf[end] = '\0';
	return buf;
}

void metrics_write_hist(struct metrics_writer *w, const char *name, const struct metrics_hist *h,
			uint64_t scale)
{
	struct metrics_label le = { "le", NULL };
	uint64_t cumulative = 0;
	char v[48], b[48];

	for (size_t i = 0; i <= h->nbounds; i++) {
		cumulative += h->counts[i];
		le.value = i < h->nbounds ? metrics_format_scaled(h->bounds[i], scale, b, sizeof(b))
					  : "+Inf";
		snprintf(v, sizeof(v), "%" PRIu64, cumulative);
		metrics_write_sample(w, name, "_bucket", &le, 1, v);
	}
	metrics_write_sample(w, name, "_sum", NULL, 0, metrics_format_scaled(h->sum, scale, v, sizeof(v)));
	snprintf(v, sizeof(v), "%" PRIu64, h->count);
	metrics_write_sample(w, name, "_count", NULL, 0, v);
}

/* ---- the agent's families ------------------------------------------------ */

/* A family of one unlabelled sample. */
static void family_u64(struct metrics_writer *w, const char *name, const char *type,
		       const char *help, uint64_t value)
{
	metrics_write_family(w, name, type, help);
	metrics_write_u64(w, name, NULL, 0, value);
}

/* One sample per named index: label=names[i] for values[i]; names[i] NULL
 * skips index i. Index 0 is shown as other_name only when nonzero. */
static void family_labelled(struct metrics_writer *w, const char *name, const char *type,
			    const char *help, const char *label, const char *const *names,
			    const uint64_t *values, size_t n, const char *other_name)
{
	metrics_write_family(w, name, type, help);
	for (size_t i = 1; i < n; i++) {
		struct metrics_label l = { label, names[i] };

		if (names[i])
			metrics_write_u64(w, name, &l, 1, values[i]);
	}
	if (other_name && values[0]) {
		struct metrics_label l = { label, other_name };

		metrics_write_u64(w, name, &l, 1, values[0]);
	}
}

static const char *const kind_names[REG_KINDS] = {
	[ZM_TARGET_PROCESS] = "process",
	[ZM_TARGET_TCP] = "tcp",
};

static const char *const reason_names[METRICS_REASONS] = {
	[ZM_REASON_EXITED] = "exited",
	[ZM_REASON_KILLED] = "killed",
	[ZM_REASON_NOPROC] = "noproc",
	[ZM_REASON_TCP_CLOSED] = "tcp_closed",
	[ZM_REASON_NOCONNECTION] = "noconnection",
};

/* Record types by direction: the ones a client sends, the ones the agent sends. */
static const uint16_t types_in[] = {
	ZM_REC_HELLO, ZM_REC_MONITOR_PROC, ZM_REC_MONITOR_PIDFD, ZM_REC_MONITOR_TCP,
	ZM_REC_DEMONITOR, ZM_REC_SYNC, ZM_REC_STATUS, ZM_REC_STATS, ZM_REC_TARGETS,
};
static const uint16_t types_out[] = {
	ZM_REC_WELCOME, ZM_REC_DOWN, ZM_REC_ERROR, ZM_REC_SYNCED, ZM_REC_STATUS_REPLY,
	ZM_REC_STATS_REPLY, ZM_REC_TARGETS_REPLY,
};

static void family_records(struct metrics_writer *w, const char *name, const char *help,
			   const uint64_t *counts, const uint16_t *types, size_t ntypes)
{
	const char *names[METRICS_REC_TYPES] = { NULL };

	for (size_t i = 0; i < ntypes; i++)
		names[metrics_rec_index(types[i])] = zm_rec_type_name(types[i]);
	family_labelled(w, name, "counter", help, "type", names, counts, METRICS_REC_TYPES, "unknown");
}

static void family_errors(struct metrics_writer *w, const uint64_t *errors)
{
	const char *names[METRICS_ERRNOS] = { NULL };
	char unnamed[METRICS_ERRNOS][16];

	/* Only the codes sent so far: errno has too many values to list. */
	for (int i = 1; i < METRICS_ERRNOS; i++) {
		if (!errors[i])
			continue;
		names[i] = strerrorname_np(i);
		if (!names[i]) {
			snprintf(unnamed[i], sizeof(unnamed[i]), "E%d", i);
			names[i] = unnamed[i];
		}
	}
	family_labelled(w, "zenmon_errors_sent_total", "counter",
			"ERROR records sent to clients, by error code.", "code", names, errors,
			METRICS_ERRNOS, "other");
}

static void render_agent(struct metrics_writer *w, const struct metrics_view *v)
{
	const struct metrics *m = v->m;
	const struct registry_counters *rc = &v->reg;
	struct metrics_label build[] = { { "version", ZENMON_VERSION },
					 { "protocol", METRICS_STR(ZM_PROTO_VERSION) } };
	const char *removed_names[] = { NULL, "down", "demonitor", "disconnect" };
	uint64_t removed[] = { 0, rc->popped, rc->removed_armed + rc->removed_queued,
			       rc->dropped_armed + rc->dropped_queued };
	uint64_t targets[REG_KINDS];

	metrics_write_family(w, "zenmon_build_info", "gauge",
			     "Always 1; the labels say which zenmond this is.");
	metrics_write_u64(w, "zenmon_build_info", build, 2, 1);

	family_u64(w, "zenmon_subscribers", "gauge", "Clients connected now.", v->subscribers);
	family_u64(w, "zenmon_subscribers_connected_total", "counter",
		   "Client connections accepted.", m->subscribers_connected);
	family_u64(w, "zenmon_subscribers_dropped_total", "counter",
		   "Clients disconnected for not reading (--stall-timeout, --max-queued).",
		   v->subscribers_dropped);

	family_u64(w, "zenmon_monitors", "gauge",
		   "Armed monitors: waiting for their target to go down.", v->monitors);
	family_labelled(w, "zenmon_monitors_created_total", "counter",
			"Monitors set, by target kind.", "kind", kind_names, rc->added, REG_KINDS,
			"other");
	family_labelled(w, "zenmon_monitors_removed_total", "counter",
			"Monitors ended: down (their DOWN was sent), demonitor (a DEMONITOR, or "
			"undone when the agent refused the request), disconnect (their client left).",
			"reason", removed_names, removed, 4, NULL);
	for (size_t i = 0; i < REG_KINDS; i++)
		targets[i] = rc->targets[i];
	family_labelled(w, "zenmon_targets", "gauge",
			"Targets watched now (one kernel watch each, however many monitors), by kind.",
			"kind", kind_names, targets, REG_KINDS, "other");

	family_labelled(w, "zenmon_downs_enqueued_total", "counter",
			"DOWNs queued for delivery, by reason.", "reason", reason_names,
			m->downs_enqueued, METRICS_REASONS, "unknown");
	family_labelled(w, "zenmon_downs_delivered_total", "counter",
			"DOWNs handed to client sockets, by reason.", "reason", reason_names,
			m->downs_delivered, METRICS_REASONS, "unknown");
	family_u64(w, "zenmon_downs_flushed_total", "counter",
		   "Queued DOWNs a DEMONITOR took back before they were sent.", rc->removed_queued);
	family_u64(w, "zenmon_downs_discarded_total", "counter",
		   "Queued DOWNs dropped unsent because their client disconnected.",
		   rc->dropped_queued);
	family_u64(w, "zenmon_downs_queued", "gauge",
		   "DOWNs waiting to be sent, all clients together.", v->queued);
	family_u64(w, "zenmon_downs_queued_max", "gauge",
		   "DOWNs waiting for the client with the most waiting.", v->queued_max);
	metrics_write_family(w, "zenmon_batch_size", "histogram",
			     "DOWNs per DOWN frame sent (_count: batches sent).");
	metrics_write_hist(w, "zenmon_batch_size", &m->batch, 1);

	family_u64(w, "zenmon_frames_received_total", "counter", "Frames read from clients.",
		   m->frames_in);
	family_u64(w, "zenmon_frames_sent_total", "counter", "Frames written to clients.",
		   m->frames_out);
	family_u64(w, "zenmon_bytes_received_total", "counter", "Bytes read from clients.",
		   m->bytes_in);
	family_u64(w, "zenmon_bytes_sent_total", "counter", "Bytes written to clients.",
		   m->bytes_out);
	family_records(w, "zenmon_records_received_total", "Records read from clients, by type.",
		       m->records_in, types_in, sizeof(types_in) / sizeof(types_in[0]));
	family_records(w, "zenmon_records_sent_total", "Records queued for clients, by type.",
		       m->records_out, types_out, sizeof(types_out) / sizeof(types_out[0]));
	family_errors(w, m->errors);

	metrics_write_family(w, "zenmon_loop_iteration_duration_seconds", "histogram",
			     "Time the event loop spent on one pass, from waking up to waiting "
			     "again (_count: passes).");
	metrics_write_hist(w, "zenmon_loop_iteration_duration_seconds", &m->loop, NS_PER_S);
}

static void render_kernel(struct metrics_writer *w, const struct metrics_view *v)
{
	const char *kinds[] = { NULL, "process_exit", "tcp_close" };
	uint64_t records[] = { 0, v->kc.proc_records, v->kc.tcp_records };
	uint64_t recovered[] = { 0, v->kc.proc_recovered, v->kc.tcp_recovered };

	family_labelled(w, "zenmon_kernel_records_total", "counter",
			"Records read from the kernel's ring buffer, by kind.", "kind", kinds, records,
			3, NULL);
	family_u64(w, "zenmon_kernel_records_invalid_total", "counter",
		   "Ring-buffer records ignored: too short, or of an unknown kind.",
		   v->kc.bad_records);
	family_labelled(w, "zenmon_kernel_records_recovered_total", "counter",
			"Deaths found by scanning the watch maps instead of through the ring "
			"buffer (after ring-buffer drops), by kind.", "kind", kinds, recovered, 3, NULL);
	if (!v->have_kstats)
		return;   /* better absent than a counter that goes back to 0 */
	family_u64(w, "zenmon_kernel_ringbuf_drops_total", "counter",
		   "Kernel records that did not fit the ring buffer (recovered by scanning, but a "
		   "sign of overload).", v->ks.rb_dropped);
	family_u64(w, "zenmon_kernel_wakeups_total", "counter",
		   "Times the kernel woke the agent for new records.", v->ks.wakeups);
	family_u64(w, "zenmon_kernel_process_exits_total", "counter",
		   "Process exits the kernel program saw, watched or not.", v->ks.exits);
	family_u64(w, "zenmon_kernel_process_exits_watched_total", "counter",
		   "Exits of watched processes.", v->ks.matched);
	family_u64(w, "zenmon_kernel_tcp_closes_total", "counter",
		   "TCP sockets the kernel program saw reach TCP_CLOSE, watched or not.",
		   v->ks.tcp_closes);
	family_u64(w, "zenmon_kernel_tcp_closes_watched_total", "counter",
		   "Closes of watched sockets.", v->ks.tcp_matched);
}

static void render_process(struct metrics_writer *w, const struct metrics_view *v)
{
	char s[48];

	metrics_write_family(w, "process_start_time_seconds", "gauge",
			     "Start time of the process since the Unix epoch, in seconds.");
	metrics_write_sample(w, "process_start_time_seconds", "", NULL, 0,
			     metrics_format_scaled(v->start_time_ns, NS_PER_S, s, sizeof(s)));
	if (!v->have_proc)
		return;
	metrics_write_family(w, "process_cpu_seconds_total", "counter",
			     "User and system CPU time spent, in seconds.");
	metrics_write_sample(w, "process_cpu_seconds_total", "", NULL, 0,
			     metrics_format_scaled(v->proc.cpu_ns, NS_PER_S, s, sizeof(s)));
	family_u64(w, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
		   v->proc.rss_bytes);
	family_u64(w, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
		   v->proc.vsize_bytes);
	family_u64(w, "process_open_fds", "gauge", "Open file descriptors.", v->proc.open_fds);
	family_u64(w, "process_max_fds", "gauge", "The limit of open file descriptors.",
		   v->proc.max_fds);
}

int metrics_render(const struct metrics_view *v, struct zm_buf *out)
{
	struct metrics_writer w = { .out = out };

	render_agent(&w, v);
	render_kernel(&w, v);
	render_process(&w, v);
	return w.err;
}
