// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The STATUS_REPLY text: "name value" lines whose names are part of the
 * protocol (docs/PROTOCOL.md), then one line per subscriber.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "agent.h"

int status_text(struct agent *a, struct zm_buf *out)
{
	struct zm_kstats ks = { 0 };
	char text[2048];
	long watches = kwatch_count_procs(a->kw);
	long tcp_watches = kwatch_count_tcp(a->kw);
	int n;

	kwatch_read_stats(a->kw, &ks);
	n = snprintf(text, sizeof(text),
		     "version %s\n"
		     "uptime_seconds %llu\n"
		     "subscribers %zu\n"
		     "monitors %zu\n"
		     "targets %zu\n"
		     "kernel_watches %ld\n"
		     "ringbuf_dropped %llu\n"
		     "kernel_exits %llu\n"
		     "kernel_matched %llu\n"
		     "kernel_wakeups %llu\n"
		     "kernel_tcp_watches %ld\n"
		     "kernel_tcp_closes %llu\n"
		     "kernel_tcp_matched %llu\n"
		     "downs_delivered %llu\n"
		     "downs_queued %zu\n"
		     "downs_flushed %llu\n"
		     "subscribers_dropped %llu\n",
		     ZENMON_VERSION,
		     (unsigned long long)((agent_now_ns(CLOCK_MONOTONIC) - a->started_mono_ns) / 1000000000ULL),
		     registry_sub_count(a->reg),
		     registry_monitor_count(a->reg),
		     registry_target_count(a->reg),
		     watches < 0 ? 0 : watches,
		     (unsigned long long)ks.rb_dropped,
		     (unsigned long long)ks.exits,
		     (unsigned long long)ks.matched,
		     (unsigned long long)ks.wakeups,
		     tcp_watches < 0 ? 0 : tcp_watches,
		     (unsigned long long)ks.tcp_closes,
		     (unsigned long long)ks.tcp_matched,
		     (unsigned long long)a->downs_sent,
		     registry_queued_count(a->reg),
		     (unsigned long long)a->downs_flushed,
		     (unsigned long long)a->subscribers_dropped);
	if (zm_buf_append(out, text, (size_t)n) < 0)
		return -ENOMEM;
	return client_status_lines(a, out, ZM_REC_MAX - ZM_REC_HDR_LEN);
}
