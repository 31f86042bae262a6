// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zenmonctl stats and targets (ctl_stats.c): the Prometheus text and the
 * TARGETS text parsed, and printed as JSON and text. Outputs are pinned to
 * the byte: scripts read them.
 */
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

#include "ctl_stats.h"

static char *stats_json(const char *text)
{
	struct ctl_stats s;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(ctl_stats_parse(text, &s), 0);
	ctl_stats_print_json(f, &s);
	fclose(f);
	ctl_stats_free(&s);
	return buf;
}

static char *targets_out(const char *text, bool json)
{
	struct ctl_targets t;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(ctl_targets_parse(text, &t), 0);
	if (json)
		ctl_targets_print_json(f, &t);
	else
		ctl_targets_print_text(f, &t);
	fclose(f);
	ctl_targets_free(&t);
	return buf;
}

static void test_stats_json_groups_samples_by_family(void **state)
{
	char *out = stats_json("# HELP zenmon_monitors Armed monitors.\n"
			       "# TYPE zenmon_monitors gauge\n"
			       "zenmon_monitors 3\n"
			       "# HELP zenmon_downs_total DOWNs, by reason.\n"
			       "# TYPE zenmon_downs_total counter\n"
			       "zenmon_downs_total{reason=\"killed\"} 2\n"
			       "zenmon_downs_total{reason=\"exited\"} 0\n");

	assert_string_equal(out,
		"{\"zenmon_monitors\":{\"type\":\"gauge\",\"help\":\"Armed monitors.\",\"samples\":["
		"{\"name\":\"zenmon_monitors\",\"labels\":{},\"value\":3}]},"
		"\"zenmon_downs_total\":{\"type\":\"counter\",\"help\":\"DOWNs, by reason.\",\"samples\":["
		"{\"name\":\"zenmon_downs_total\",\"labels\":{\"reason\":\"killed\"},\"value\":2},"
		"{\"name\":\"zenmon_downs_total\",\"labels\":{\"reason\":\"exited\"},\"value\":0}]}}\n");
	free(out);
}

static void test_stats_json_keeps_histogram_series_in_their_family(void **state)
{
	char *out = stats_json("# HELP h_seconds Time.\n"
			       "# TYPE h_seconds histogram\n"
			       "h_seconds_bucket{le=\"0.5\"} 1\n"
			       "h_seconds_bucket{le=\"+Inf\"} 2\n"
			       "h_seconds_sum 1.25\n"
			       "h_seconds_count 2\n");

	assert_string_equal(out,
		"{\"h_seconds\":{\"type\":\"histogram\",\"help\":\"Time.\",\"samples\":["
		"{\"name\":\"h_seconds_bucket\",\"labels\":{\"le\":\"0.5\"},\"value\":1},"
		"{\"name\":\"h_seconds_bucket\",\"labels\":{\"le\":\"+Inf\"},\"value\":2},"
		"{\"name\":\"h_seconds_sum\",\"labels\":{},\"value\":1.25},"
		"{\"name\":\"h_seconds_count\",\"labels\":{},\"value\":2}]}}\n");
	free(out);
}

static void test_stats_json_unescapes_and_quotes_what_is_not_a_number(void **state)
{
	char *out = stats_json("# HELP x A \\\\ b\\nc\n"
			       "x{l=\"q\\\"u\\\\o\\nte\"} +Inf\n"
			       "y NaN\n"
			       "z 1e+06\n"
			       "# a comment\n"
			       "\n"
			       "broken{l=\"never closed} 1\n");

	assert_string_equal(out,
		"{\"x\":{\"type\":\"untyped\",\"help\":\"A \\\\ b\\nc\",\"samples\":["
		"{\"name\":\"x\",\"labels\":{\"l\":\"q\\\"u\\\\o\\nte\"},\"value\":\"+Inf\"}]},"
		"\"y\":{\"type\":\"untyped\",\"help\":\"\",\"samples\":["
		"{\"name\":\"y\",\"labels\":{},\"value\":\"NaN\"}]},"
		"\"z\":{\"type\":\"untyped\",\"help\":\"\",\"samples\":["
		"{\"name\":\"z\",\"labels\":{},\"value\":1e+06}]}}\n");
	free(out);
}

static const char targets_text[] =
	"target kind=process pid=1234 start_ticks=5678 monitors=2 kernel=armed subscribers=3,7\n"
	"target kind=tcp cookie=4097 local=127.0.0.1:5000 remote=127.0.0.1:41234 monitors=1 kernel=armed subscribers=3\n"
	"target kind=process pid=99 start_ticks=1 monitors=0 kernel=fired subscribers=\n"
	"subscriber id=3 name=billing monitors=2 queued=0 rate=0 batch=1024 sent=5\n"
	"subscriber id=7 name=zenmonctl monitors=1 queued=0 rate=0 batch=1024 sent=0\n"
	"targets total=3 listed=3 agent=2 kernel_only=1\n";

static void test_targets_json_names_subscribers_and_keeps_numbers_numeric(void **state)
{
	char *out = targets_out(targets_text, true);

	assert_string_equal(out,
		"{\"targets\":["
		"{\"kind\":\"process\",\"pid\":1234,\"start_ticks\":5678,\"monitors\":2,\"kernel\":\"armed\","
		"\"subscribers\":[{\"id\":3,\"name\":\"billing\"},{\"id\":7,\"name\":\"zenmonctl\"}]},"
		"{\"kind\":\"tcp\",\"cookie\":4097,\"local\":\"127.0.0.1:5000\",\"remote\":\"127.0.0.1:41234\","
		"\"monitors\":1,\"kernel\":\"armed\",\"subscribers\":[{\"id\":3,\"name\":\"billing\"}]},"
		"{\"kind\":\"process\",\"pid\":99,\"start_ticks\":1,\"monitors\":0,\"kernel\":\"fired\","
		"\"subscribers\":[]}],"
		"\"total\":3,\"listed\":3,\"agent\":2,\"kernel_only\":1}\n");
	free(out);
}

static void test_targets_text_is_one_row_per_target_and_a_summary(void **state)
{
	char *out = targets_out(targets_text, false);

	assert_string_equal(out,
		"KIND     TARGET                                            MONITORS  KERNEL          SUBSCRIBERS\n"
		"process  pid 1234 start 5678                                      2  armed           3 (billing), 7 (zenmonctl)\n"
		"tcp      127.0.0.1:5000 -> 127.0.0.1:41234 cookie 4097            1  armed           3 (billing)\n"
		"process  pid 99 start 1                                           0  fired           \n"
		"3 targets (2 held by the agent, 1 only in the kernel), 3 listed\n");
	free(out);
}

static void test_targets_json_of_an_unknown_subscriber_has_null_name(void **state)
{
	char *out = targets_out("target kind=process pid=1 start_ticks=2 monitors=1 kernel=armed subscribers=5\n",
				true);

	assert_string_equal(out,
		"{\"targets\":[{\"kind\":\"process\",\"pid\":1,\"start_ticks\":2,\"monitors\":1,"
		"\"kernel\":\"armed\",\"subscribers\":[{\"id\":5,\"name\":null}]}]}\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_json_groups_samples_by_family),
		cmocka_unit_test(test_stats_json_keeps_histogram_series_in_their_family),
		cmocka_unit_test(test_stats_json_unescapes_and_quotes_what_is_not_a_number),
		cmocka_unit_test(test_targets_json_names_subscribers_and_keeps_numbers_numeric),
		cmocka_unit_test(test_targets_text_is_one_row_per_target_and_a_summary),
		cmocka_unit_test(test_targets_json_of_an_unknown_subscriber_has_null_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
