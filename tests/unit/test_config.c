// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* zenmond's configuration file parser (user/zenmond/config.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* A table shaped like zenmond's own: short and long codes, a flag option. */
enum { K_MAX_RATE = 0x100, K_MAX_BATCH, K_CHECK };

static const struct option keys[] = {
	{ "socket", required_argument, NULL, 's' },
	{ "pin-dir", required_argument, NULL, 'p' },
	{ "log-level", required_argument, NULL, 'l' },
	{ "max-rate", required_argument, NULL, K_MAX_RATE },
	{ "max-batch", required_argument, NULL, K_MAX_BATCH },
	{ "check-config", no_argument, NULL, K_CHECK },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* Parse text as /etc/zenmon/zenmond.conf; the return value, err filled. */
static int parse(struct config *cf, const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return config_parse(cf, "/etc/zenmon/zenmond.conf", text, strlen(text), keys, err, errlen);
}

/* Parse text that must fail; check the message is exactly want. */
static void expect_error(const char *text, const char *want)
{
	struct config cf;
	char err[512];

	config_init(&cf);
	assert_int_equal(parse(&cf, text, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	assert_int_equal(cf.n, 0);
	assert_null(cf.path);
	config_free(&cf);
}

/* Parse text that must succeed; check the value code gets is exactly want. */
static void expect_setting(const char *text, int code, const char *want)
{
	const struct config_entry *e;
	struct config cf;
	char err[256];

	config_init(&cf);
	if (parse(&cf, text, err, sizeof(err)) != 0)
		fail_msg("\"%s\" did not parse: %s", text, err);
	e = config_find(&cf, code);
	assert_non_null(e);
	assert_string_equal(e->value, want);
	config_free(&cf);
}

static void test_good_file_gives_each_setting_with_its_line(void **state)
{
	struct config cf;
	char err[256];
	const struct config_entry *e;

	config_init(&cf);
	assert_int_equal(parse(&cf,
			       "# zenmond settings\n"
			       "\n"
			       "max-rate = 20000\n"
			       "   max-batch=64   \r\n"
			       "\tsocket\t=\t\"/run/zenmon/a b.sock\"  # quoted: holds a space\n"
			       "pin-dir = '/sys/fs/bpf/zm#1'\n"
			       "log-level = debug # trailing comment\n",
			       err, sizeof(err)), 0);
	assert_int_equal(cf.n, 5);
	assert_string_equal(cf.path, "/etc/zenmon/zenmond.conf");

	e = config_find(&cf, K_MAX_RATE);
	assert_non_null(e);
	assert_string_equal(e->key, "max-rate");
	assert_string_equal(e->value, "20000");
	assert_int_equal(e->line, 3);
	e = config_find(&cf, K_MAX_BATCH);
	assert_string_equal(e->value, "64");
	assert_int_equal(e->line, 4);
	e = config_find(&cf, 's');
	assert_string_equal(e->value, "/run/zenmon/a b.sock");
	assert_int_equal(e->line, 5);
	e = config_find(&cf, 'p');
	assert_string_equal(e->value, "/sys/fs/bpf/zm#1");
	e = config_find(&cf, 'l');
	assert_string_equal(e->value, "debug");
	assert_int_equal(e->line, 7);
	config_free(&cf);
	assert_int_equal(cf.n, 0);
}

static void test_hash_inside_a_word_is_part_of_the_value(void **state)
{
	expect_setting("socket = /run/zm#1.sock", 's', "/run/zm#1.sock");
}

static void test_double_quotes_take_backslash_escapes(void **state)
{
	expect_setting("socket = \"/a\\\"b\\\\c\"\n", 's', "/a\"b\\c");
	expect_setting("socket = '/a\\b'\n", 's', "/a\\b");
}

static void test_empty_file_and_comments_only_give_nothing(void **state)
{
	struct config cf;
	char err[256];

	config_init(&cf);
	assert_int_equal(parse(&cf, "", err, sizeof(err)), 0);
	assert_int_equal(parse(&cf, "# nothing\n\n   \n\t# indented comment\n", err, sizeof(err)), 0);
	assert_int_equal(cf.n, 0);
	config_free(&cf);
}

static void test_line_without_equals_is_an_error(void **state)
{
	expect_error("max-rate = 1\nmax-batch 64\n",
		     "/etc/zenmon/zenmond.conf:2: expected 'key = value', found 'max-batch 64'");
}

static void test_missing_key_is_an_error(void **state)
{
	expect_error("\n\n = 5\n", "/etc/zenmon/zenmond.conf:3: missing key before '='");
}

static void test_unknown_key_suggests_the_near_one(void **state)
{
	expect_error("# comment\nmax_rate = 20000\n",
		     "/etc/zenmon/zenmond.conf:2: unknown key 'max_rate' (did you mean 'max-rate'?)");
	expect_error("Max-Batch = 1\n",
		     "/etc/zenmon/zenmond.conf:1: unknown key 'Max-Batch' (did you mean 'max-batch'?)");
	expect_error("--socket = /x\n",
		     "/etc/zenmon/zenmond.conf:1: unknown key '--socket' (did you mean 'socket'?)");
}

static void test_unknown_key_far_from_all_suggests_nothing(void **state)
{
	expect_error("colour = blue\n",
		     "/etc/zenmon/zenmond.conf:1: unknown key 'colour' "
		     "(the keys are zenmond's long options: see zenmond --help)");
}

static void test_flag_option_is_not_a_setting(void **state)
{
	expect_error("help = yes\n",
		     "/etc/zenmon/zenmond.conf:1: 'help' is a command-line option, not a setting");
}

static void test_key_set_twice_is_an_error(void **state)
{
	expect_error("max-rate = 1\n# again\nmax-rate = 2\n",
		     "/etc/zenmon/zenmond.conf:3: 'max-rate' is set twice (first on line 1): keep one");
}

static void test_missing_value_is_an_error(void **state)
{
	expect_error("max-rate =   # none\n",
		     "/etc/zenmon/zenmond.conf:1: missing value for 'max-rate' (for its default, remove the line)");
	expect_error("max-rate =",
		     "/etc/zenmon/zenmond.conf:1: missing value for 'max-rate' (for its default, remove the line)");
}

static void test_unterminated_quote_is_an_error(void **state)
{
	expect_error("socket = \"/run/zm.sock\n",
		     "/etc/zenmon/zenmond.conf:1: unterminated quote in the value of 'socket'");
}

static void test_text_after_closing_quote_is_an_error(void **state)
{
	expect_error("socket = '/run/zm.sock' extra\n",
		     "/etc/zenmon/zenmond.conf:1: unexpected text after the closing quote in the value of 'socket'");
}

static void test_nul_byte_is_an_error(void **state)
{
	static const char text[] = "max-rate = 1\nmax-batch = 2\0junk\n";
	struct config cf;
	char err[256];

	config_init(&cf);
	assert_int_equal(config_parse(&cf, "f.conf", text, sizeof(text) - 1, keys, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "f.conf:2: holds a NUL byte: is this a text file?");
	config_free(&cf);
}

static void test_quoted_empty_value_is_kept_for_the_caller_to_judge(void **state)
{
	expect_setting("socket = \"\"\n", 's', "");
}

static void test_failed_parse_keeps_what_was_there(void **state)
{
	struct config cf;
	char err[256];

	config_init(&cf);
	assert_int_equal(config_set(&cf, 's', "socket", "/cli.sock"), 0);
	assert_int_equal(parse(&cf, "max-rate = 5\nbogus\n", err, sizeof(err)), -EINVAL);
	assert_int_equal(cf.n, 1);
	assert_string_equal(cf.entries[0].value, "/cli.sock");
	config_free(&cf);
}

static void test_command_line_overrides_the_file(void **state)
{
	struct config cf;
	const struct config_entry *e;
	char err[256], where[128];

	config_init(&cf);
	assert_int_equal(parse(&cf, "max-rate = 20000\nmax-batch = 64\n", err, sizeof(err)), 0);
	/* As zenmond does: the command line's settings after the file's. */
	assert_int_equal(config_set(&cf, K_MAX_RATE, "max-rate", "500"), 0);
	assert_int_equal(config_set(&cf, 'l', "log-level", "debug"), 0);
	assert_int_equal(cf.n, 3);

	e = config_find(&cf, K_MAX_RATE);
	assert_string_equal(e->value, "500");
	assert_int_equal(e->line, 0);
	assert_string_equal(config_origin(&cf, e, where, sizeof(where)), "the command line");
	e = config_find(&cf, K_MAX_BATCH);
	assert_string_equal(e->value, "64");
	assert_string_equal(config_origin(&cf, e, where, sizeof(where)), "/etc/zenmon/zenmond.conf:2");
	e = config_find(&cf, 'l');
	assert_string_equal(e->value, "debug");
	config_free(&cf);
}

static void test_last_of_a_repeated_command_line_option_wins(void **state)
{
	struct config cf;

	config_init(&cf);
	assert_int_equal(config_set(&cf, 'l', "log-level", "debug"), 0);
	assert_int_equal(config_set(&cf, 'l', "log-level", "warn"), 0);
	assert_int_equal(cf.n, 1);
	assert_string_equal(config_find(&cf, 'l')->value, "warn");
	assert_null(config_find(&cf, 's'));
	config_free(&cf);
}

static void test_read_missing_file_is_enoent_with_its_name(void **state)
{
	struct config cf;
	char err[256];

	config_init(&cf);
	assert_int_equal(config_read(&cf, "/nonexistent/zenmond.conf", keys, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "cannot open /nonexistent/zenmond.conf: No such file or directory");
	config_free(&cf);
}

static void test_read_dev_null_is_an_empty_configuration(void **state)
{
	struct config cf;
	char err[256];

	config_init(&cf);
	assert_int_equal(config_read(&cf, "/dev/null", keys, err, sizeof(err)), 0);
	assert_int_equal(cf.n, 0);
	assert_string_equal(cf.path, "/dev/null");
	config_free(&cf);
}

/* A temp file holding text; its path in path[]. */
static void write_temp(char *path, const char *text, size_t len)
{
	int fd;

	strcpy(path, "/tmp/zm-test-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
	close(fd);
}

static void test_read_file_reports_its_path_and_line(void **state)
{
	static const char text[] = "max-rate = 1\nmax-rat = 2\n";
	struct config cf;
	char path[64], err[256], want[256];

	write_temp(path, text, sizeof(text) - 1);
	config_init(&cf);
	assert_int_equal(config_read(&cf, path, keys, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: unknown key 'max-rat' (did you mean 'max-rate'?)", path);
	assert_string_equal(err, want);
	config_free(&cf);
	unlink(path);
}

static void test_read_oversized_file_is_refused(void **state)
{
	size_t len = CONFIG_MAX_BYTES + 1;
	char *text = malloc(len);
	struct config cf;
	char path[64], err[256];

	assert_non_null(text);
	memset(text, '#', len);
	write_temp(path, text, len);
	free(text);
	config_init(&cf);
	assert_int_equal(config_read(&cf, path, keys, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "is larger than 1048576 bytes"));
	config_free(&cf);
	unlink(path);
}

static void test_read_file_at_the_size_limit_is_fine(void **state)
{
	size_t len = CONFIG_MAX_BYTES;
	char *text = malloc(len);
	struct config cf;
	char path[64], err[256];

	assert_non_null(text);
	memset(text, '#', len);
	write_temp(path, text, len);
	free(text);
	config_init(&cf);
	assert_int_equal(config_read(&cf, path, keys, err, sizeof(err)), 0);
	assert_int_equal(cf.n, 0);
	config_free(&cf);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file_gives_each_setting_with_its_line),
		cmocka_unit_test(test_hash_inside_a_word_is_part_of_the_value),
		cmocka_unit_test(test_double_quotes_take_backslash_escapes),
		cmocka_unit_test(test_empty_file_and_comments_only_give_nothing),
		cmocka_unit_test(test_line_without_equals_is_an_error),
		cmocka_unit_test(test_missing_key_is_an_error),
		cmocka_unit_test(test_unknown_key_suggests_the_near_one),
		cmocka_unit_test(test_unknown_key_far_from_all_suggests_nothing),
		cmocka_unit_test(test_flag_option_is_not_a_setting),
		cmocka_unit_test(test_key_set_twice_is_an_error),
		cmocka_unit_test(test_missing_value_is_an_error),
		cmocka_unit_test(test_unterminated_quote_is_an_error),
		cmocka_unit_test(test_text_after_closing_quote_is_an_error),
		cmocka_unit_test(test_nul_byte_is_an_error),
		cmocka_unit_test(test_quoted_empty_value_is_kept_for_the_caller_to_judge),
		cmocka_unit_test(test_failed_parse_keeps_what_was_there),
		cmocka_unit_test(test_command_line_overrides_the_file),
		cmocka_unit_test(test_last_of_a_repeated_command_line_option_wins),
		cmocka_unit_test(test_read_missing_file_is_enoent_with_its_name),
		cmocka_unit_test(test_read_dev_null_is_an_empty_configuration),
		cmocka_unit_test(test_read_file_reports_its_path_and_line),
		cmocka_unit_test(test_read_oversized_file_is_refused),
		cmocka_unit_test(test_read_file_at_the_size_limit_is_fine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
