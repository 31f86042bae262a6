// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The agent's metrics and their Prometheus text exposition (metrics.c):
 * valid names, a HELP and a TYPE line before every family's samples, label
 * values escaped, histograms whose buckets, _sum and _count agree, and the
 * counters where a user expects them.
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

/* ---- helpers --------------------------------------------------------------- */

static struct metrics m;

static struct metrics_view view(void)
{
	struct metrics_view v = { .m = &m, .have_kstats = true, .have_proc = true };

	return v;
}

/* Render v; the caller frees the NUL-terminated text. */
static char *render(const struct metrics_view *v)
{
	struct zm_buf b = { 0 };

	assert_int_equal(metrics_render(v, &b), 0);
	assert_int_equal(zm_buf_append(&b, "", 1), 0);
	return (char *)b.data;
}

static int setup(void **state)
{
	memset(&m, 0, sizeof(m));
	metrics_init(&m);
	return 0;
}

static bool valid_name(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return false;
	return true;
}

/* The sample line "name{...} value" or "name value" whose name and labels
 * part is exactly key; its value, or NULL. */
static const char *sample_value(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, n) == 0 && p[n] == ' ')
			return p + n + 1;
	return NULL;
}

static unsigned long long sample_u64(const char *text, const char *key)
{
	const char *v = sample_value(text, key);

	if (!v)
		fail_msg("no sample %s in:\n%s", key, text);
	return strtoull(v, NULL, 10);
}

/*
 * Check the exposition format line by line: every line a HELP, a TYPE or a
 * sample; HELP then TYPE once per family, before its samples; each sample
 * named for the family last declared (with a histogram's suffixes); valid
 * names; counters named *_total; and each family's samples together.
 */
static void check_format(const char *text)
{
	char family[128] = "", type[32] = "", declared[256][128];
	size_t ndeclared = 0;
	bool help_seen = false;

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len;

		assert_non_null(nl);   /* the text ends with a newline */
		len = (size_t)(nl - p);
		if (strncmp(p, "# HELP ", 7) == 0) {
			const char *name = p + 7, *sp = memchr(name, ' ', len - 7);

			assert_non_null(sp);
			assert_true(valid_name(name, (size_t)(sp - name)));
			snprintf(family, sizeof(family), "%.*s", (int)(sp - name), name);
			for (size_t i = 0; i < ndeclared; i++)
				if (strcmp(declared[i], family) == 0)
					fail_msg("family %s declared twice", family);
			assert_true(ndeclared < 256);
			strcpy(declared[ndeclared++], family);
			help_seen = true;
			type[0] = '\0';
		} else if (strncmp(p, "# TYPE ", 7) == 0) {
			size_t fl = strlen(family);

			assert_true(help_seen);
			assert_true(strncmp(p + 7, family, fl) == 0 && p[7 + fl] == ' ');
			snprintf(type, sizeof(type), "%.*s", (int)(len - 8 - fl), p + 8 + fl);
			assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
				    strcmp(type, "histogram") == 0);
			if (strcmp(type, "counter") == 0)
				assert_true(fl > 6 && strcmp(family + fl - 6, "_total") == 0);
			help_seen = false;
		} else {
			size_t fl = strlen(family), nlen = 0;
			const char *rest;

			assert_true(type[0]);   /* a sample needs its TYPE first */
			while (nlen < len && p[nlen] != '{' && p[nlen] != ' ')
				nlen++;
			assert_true(valid_name(p, nlen));
			assert_true(strncmp(p, family, fl) == 0);
			rest = p + fl;
			if (strcmp(type, "histogram") == 0)
				assert_true(strncmp(rest, "_bucket{", 8) == 0 || strncmp(rest, "_sum ", 5) == 0 ||
					    strncmp(rest, "_count ", 7) == 0);
			else
				assert_true(nlen == fl);
			/* the value: a number after the last space */
			rest = memrchr(p, ' ', len);
			assert_non_null(rest);
			assert_true(isdigit((unsigned char)rest[1]));
		}
		p = nl + 1;
	}
}

/* ---- the format ------------------------------------------------------------ */

static void test_render_is_valid_exposition_format(void **state)
{
	struct metrics_view v = view();
	char *text;

	m.downs_enqueued[ZM_REASON_KILLED] = 4;
	m.errors[EINVAL] = 1;
	metrics_hist_observe(&m.batch, 3);
	metrics_hist_observe(&m.loop, 123456);
	v.start_time_ns = 1700000000123456789ULL;
	v.proc.cpu_ns = 2500000000ULL;
	text = render(&v);
	check_format(text);
	free(text);
}

static void test_render_without_kernel_counters_is_still_valid(void **state)
{
	struct metrics_view v = view();
	char *text;

	v.have_kstats = false;
	v.have_proc = false;
	text = render(&v);
	check_format(text);
	/* absent rather than a counter that seems to go back to 0 */
	assert_null(strstr(text, "zenmon_kernel_ringbuf_drops_total"));
	assert_null(strstr(text, "process_cpu_seconds_total"));
	assert_non_null(strstr(text, "zenmon_kernel_records_total"));
	free(text);
}

static void test_label_values_are_escaped(void **state)
{
	struct zm_buf b = { 0 };
	struct metrics_writer w = { .out = &b };
	struct metrics_label l[] = { { "a", "x\"y\\z\nw" }, { "b", "plain" } };

	metrics_write_sample(&w, "zenmon_x", "", l, 2, "1");
	assert_int_equal(w.err, 0);
	assert_int_equal(zm_buf_append(&b, "", 1), 0);
	assert_string_equal((char *)b.data, "zenmon_x{a=\"x\\\"y\\\\z\\nw\",b=\"plain\"} 1\n");
	zm_buf_free(&b);
}

static void test_help_escapes_backslash_and_newline_but_not_quotes(void **state)
{
	struct zm_buf b = { 0 };
	struct metrics_writer w = { .out = &b };

	metrics_write_family(&w, "zenmon_x_total", "counter", "a \"b\" c\\d\ne");
	assert_int_equal(zm_buf_append(&b, "", 1), 0);
	assert_string_equal((char *)b.data, "# HELP zenmon_x_total a \"b\" c\\\\d\\ne\n"
					    "# TYPE zenmon_x_total counter\n");
	zm_buf_free(&b);
}

static void test_unlabelled_sample_has_no_braces(void **state)
{
	struct zm_buf b = { 0 };
	struct metrics_writer w = { .out = &b };

	metrics_write_u64(&w, "zenmon_y", NULL, 0, 18446744073709551615ULL);
	assert_int_equal(zm_buf_append(&b, "", 1), 0);
	assert_string_equal((char *)b.data, "zenmon_y 18446744073709551615\n");
	zm_buf_free(&b);
}

static void test_scaled_values_print_without_trailing_zeros(void **state)
{
	char buf[48];

	assert_string_equal(metrics_format_scaled(250000, 1000000000, buf, sizeof(buf)), "0.00025");
	assert_string_equal(metrics_format_scaled(1000000000, 1000000000, buf, sizeof(buf)), "1");
	assert_string_equal(metrics_format_scaled(1500000000, 1000000000, buf, sizeof(buf)), "1.5");
	assert_string_equal(metrics_format_scaled(0, 1000000000, buf, sizeof(buf)), "0");
	assert_string_equal(metrics_format_scaled(1, 1000000000, buf, sizeof(buf)), "0.000000001");
	assert_string_equal(metrics_format_scaled(42, 1, buf, sizeof(buf)), "42");
	assert_string_equal(metrics_format_scaled(18446744073709551615ULL, 1000000000, buf, sizeof(buf)),
			    "18446744073.709551615");
}

/* ---- histograms ------------------------------------------------------------ */

static void test_histogram_buckets_cumulate_to_count_and_sum_adds_up(void **state)
{
	static const uint64_t sizes[] = { 1, 1, 3, 100, 1024, 20000 };
	struct metrics_view v = view();
	unsigned long long prev = 0, b;
	char key[64], *text;
	uint64_t sum = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		metrics_hist_observe(&m.batch, sizes[i]);
		sum += sizes[i];
	}
	text = render(&v);
	for (size_t i = 0; i < m.batch.nbounds; i++) {
		snprintf(key, sizeof(key), "zenmon_batch_size_bucket{le=\"%llu\"}",
			 (unsigned long long)m.batch.bounds[i]);
		b = sample_u64(text, key);
		assert_true(b >= prev);
		prev = b;
	}
	assert_int_equal(sample_u64(text, "zenmon_batch_size_bucket{le=\"1\"}"), 2);
	assert_int_equal(sample_u64(text, "zenmon_batch_size_bucket{le=\"4\"}"), 3);
	assert_int_equal(sample_u64(text, "zenmon_batch_size_bucket{le=\"1024\"}"), 5);
	/* 20000 is above every bound: only +Inf holds it */
	assert_int_equal(sample_u64(text, "zenmon_batch_size_bucket{le=\"16384\"}"), 5);
	assert_int_equal(sample_u64(text, "zenmon_batch_size_bucket{le=\"+Inf\"}"), 6);
	assert_int_equal(sample_u64(text, "zenmon_batch_size_count"), 6);
	assert_int_equal(sample_u64(text, "zenmon_batch_size_sum"), sum);
	free(text);
}

static void test_loop_pass_lands_in_its_seconds_bucket(void **state)
{
	struct metrics_view v = view();
	char *text;

	metrics_on_loop_pass(&m, 300000);      /* 300 µs */
	metrics_on_loop_pass(&m, 2000000000);  /* 2 s: beyond the last bound */
	text = render(&v);
	assert_int_equal(sample_u64(text, "zenmon_loop_iteration_duration_seconds_bucket{le=\"0.00025\"}"), 0);
	assert_int_equal(sample_u64(text, "zenmon_loop_iteration_duration_seconds_bucket{le=\"0.0005\"}"), 1);
	assert_int_equal(sample_u64(text, "zenmon_loop_iteration_duration_seconds_bucket{le=\"1\"}"), 1);
	assert_int_equal(sample_u64(text, "zenmon_loop_iteration_duration_seconds_bucket{le=\"+Inf\"}"), 2);
	assert_int_equal(sample_u64(text, "zenmon_loop_iteration_duration_seconds_count"), 2);
	assert_string_equal(strtok(strstr(text, "zenmon_loop_iteration_duration_seconds_sum ") + 43, "\n"),
			    "2.0003");
	free(text);
}

/* ---- what the families say ------------------------------------------------- */

static void test_downs_are_counted_by_reason(void **state)
{
	struct metrics_view v = view();
	char *text;

	metrics_downs_enqueued(&m, ZM_REASON_KILLED, 3);
	metrics_down_delivered(&m, ZM_REASON_KILLED);
	metrics_down_delivered(&m, ZM_REASON_EXITED);
	metrics_down_delivered(&m, 77);   /* a reason this agent does not know */
	text = render(&v);
	assert_int_equal(sample_u64(text, "zenmon_downs_enqueued_total{reason=\"killed\"}"), 3);
	assert_int_equal(sample_u64(text, "zenmon_downs_delivered_total{reason=\"killed\"}"), 1);
	assert_int_equal(sample_u64(text, "zenmon_downs_delivered_total{reason=\"exited\"}"), 1);
	assert_int_equal(sample_u64(text, "zenmon_downs_delivered_total{reason=\"noproc\"}"), 0);
	assert_int_equal(sample_u64(text, "zenmon_downs_delivered_total{reason=\"unknown\"}"), 1);
	/* unknown shows only once something is counted there */
	assert_null(sample_value(text, "zenmon_downs_enqueued_total{reason=\"unknown\"}"));
	free(text);
}

static void test_monitors_and_targets_come_from_the_registry_counters(void **state)
{
	struct metrics_view v = view();
	char *text;

	v.reg.added[ZM_TARGET_PROCESS] = 5;
	v.reg.added[ZM_TARGET_TCP] = 2;
	v.reg.popped = 3;
	v.reg.removed_armed = 1;
	v.reg.removed_queued = 1;
	v.reg.dropped_armed = 1;
	v.reg.dropped_queued = 2;
	v.reg.targets[ZM_TARGET_PROCESS] = 4;
	v.monitors = 6;
	v.queued = 7;
	v.queued_max = 5;
	text = render(&v);
	assert_int_equal(sample_u64(text, "zenmon_monitors_created_total{kind=\"process\"}"), 5);
	assert_int_equal(sample_u64(text, "zenmon_monitors_created_total{kind=\"tcp\"}"), 2);
	assert_int_equal(sample_u64(text, "zenmon_monitors_removed_total{reason=\"down\"}"), 3);
	assert_int_equal(sample_u64(text, "zenmon_monitors_removed_total{reason=\"demonitor\"}"), 2);
	assert_int_equal(sample_u64(text, "zenmon_monitors_removed_total{reason=\"disconnect\"}"), 3);
	assert_int_equal(sample_u64(text, "zenmon_downs_flushed_total"), 1);
	assert_int_equal(sample_u64(text, "zenmon_downs_discarded_total"), 2);
	assert_int_equal(sample_u64(text, "zenmon_targets{kind=\"process\"}"), 4);
	assert_int_equal(sample_u64(text, "zenmon_targets{kind=\"tcp\"}"), 0);
	assert_int_equal(sample_u64(text, "zenmon_monitors"), 6);
	assert_int_equal(sample_u64(text, "zenmon_downs_queued"), 7);
	assert_int_equal(sample_u64(text, "zenmon_downs_queued_max"), 5);
	free(text);
}

static void test_records_by_type_and_errors_by_code(void **state)
{
	struct metrics_view v = view();
	char *text;

	metrics_record_in(&m, ZM_REC_MONITOR_PROC);
	metrics_record_in(&m, ZM_REC_MONITOR_PROC);
	metrics_record_in(&m, 0x3ff);          /* not a record type */
	metrics_record_out(&m, ZM_REC_DOWN, 10);
	metrics_error(&m, EEXIST);
	metrics_error(&m, -5);                 /* not an errno */
	text = render(&v);
	assert_int_equal(sample_u64(text, "zenmon_records_received_total{type=\"MONITOR_PROC\"}"), 2);
	assert_int_equal(sample_u64(text, "zenmon_records_received_total{type=\"TARGETS\"}"), 0);
	assert_int_equal(sample_u64(text, "zenmon_records_received_total{type=\"unknown\"}"), 1);
	assert_int_equal(sample_u64(text, "zenmon_records_sent_total{type=\"DOWN\"}"), 10);
	assert_int_equal(sample_u64(text, "zenmon_errors_sent_total{code=\"EEXIST\"}"), 1);
	assert_int_equal(sample_u64(text, "zenmon_errors_sent_total{code=\"other\"}"), 1);
	/* only codes that were sent */
	assert_null(strstr(text, "code=\"EINVAL\""));
	free(text);
}

static void test_kernel_counters_and_build_info(void **state)
{
	struct metrics_view v = view();
	char *text;

	v.ks.rb_dropped = 9;
	v.ks.exits = 100;
	v.ks.matched = 4;
	v.kc.proc_records = 3;
	v.kc.proc_recovered = 1;
	text = render(&v);
	assert_int_equal(sample_u64(text, "zenmon_kernel_ringbuf_drops_total"), 9);
	assert_int_equal(sample_u64(text, "zenmon_kernel_process_exits_total"), 100);
	assert_int_equal(sample_u64(text, "zenmon_kernel_process_exits_watched_total"), 4);
	assert_int_equal(sample_u64(text, "zenmon_kernel_records_total{kind=\"process_exit\"}"), 3);
	assert_int_equal(sample_u64(text, "zenmon_kernel_records_recovered_total{kind=\"process_exit\"}"), 1);
	assert_int_equal(sample_u64(text, "zenmon_build_info{version=\"" ZENMON_VERSION "\",protocol=\"1\"}"), 1);
	free(text);
}

static void test_process_numbers_read_from_proc_self(void **state)
{
	struct metrics_process p;

	assert_int_equal(metrics_read_process("/proc", &p), 0);
	assert_true(p.rss_bytes > 0);
	assert_true(p.vsize_bytes >= p.rss_bytes);
	assert_true(p.open_fds >= 3);   /* stdin, stdout, stderr at least */
	assert_true(p.max_fds >= p.open_fds);
	assert_int_equal(metrics_read_process("/nonexistent", &p), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_render_is_valid_exposition_format, setup),
		cmocka_unit_test_setup(test_render_without_kernel_counters_is_still_valid, setup),
		cmocka_unit_test_setup(test_label_values_are_escaped, setup),
		cmocka_unit_test_setup(test_help_escapes_backslash_and_newline_but_not_quotes, setup),
		cmocka_unit_test_setup(test_unlabelled_sample_has_no_braces, setup),
		cmocka_unit_test_setup(test_scaled_values_print_without_trailing_zeros, setup),
		cmocka_unit_test_setup(test_histogram_buckets_cumulate_to_count_and_sum_adds_up, setup),
		cmocka_unit_test_setup(test_loop_pass_lands_in_its_seconds_bucket, setup),
		cmocka_unit_test_setup(test_downs_are_counted_by_reason, setup),
		cmocka_unit_test_setup(test_monitors_and_targets_come_from_the_registry_counters, setup),
		cmocka_unit_test_setup(test_records_by_type_and_errors_by_code, setup),
		cmocka_unit_test_setup(test_kernel_counters_and_build_info, setup),
		cmocka_unit_test_setup(test_process_numbers_read_from_proc_self, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
