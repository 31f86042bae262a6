// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The manual pages in docs/man, as man(1) renders them: each renders without
 * one warning from groff (all of them: --warnings=w), in the C locale and in
 * a UTF-8 one; each names its own file in .TH and has the sections a page
 * needs; and together they document everything the programs and the library
 * offer:
 *   - every option of `zenmond --help` in zenmond(8), and every setting (an
 *     option with a value, but --config) in zenmond.conf(5);
 *   - every command of `zenmonctl --help` in zenmonctl(8), and every option
 *     of `zenmonctl help COMMAND`;
 *   - every ZM_EXPORT function of include/zenmon.h in libzenmon(3), in its
 *     SYNOPSIS and in its text, and the page's example program compiles
 *     against the header;
 *   - every zenmon page a SEE ALSO names exists.
 *
 * Needs man-db and groff (tools/install-deps.sh) and a C compiler, but no
 * root and no BPF: the group runs without an agent. Without man or groff
 * the tests are skipped, and fail under CI=true.
 */
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The pages the issue asks for; any other page in docs/man is checked too. */
static const char *const required_pages[] = {
	"zenmond.8", "zenmond.conf.5", "zenmonctl.8", "libzenmon.3", "zenmon-protocol.7",
};

/* The source tree: the working directory when the tests run from it, else
 * the build directory's parent. */
static const char *source_dir(void)
{
	static char dir[PATH_MAX];

	if (dir[0])
		return dir;
	if (access("Makefile", R_OK) == 0 && access("docs/man", R_OK) == 0) {
		if (!getcwd(dir, sizeof(dir)))
			snprintf(dir, sizeof(dir), ".");
	} else {
		snprintf(dir, sizeof(dir), "%s/..", zmh_build_dir());
	}
	return dir;
}

static char *read_fd(int fd)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

static char *read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *text;

	if (fd < 0)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	text = read_fd(fd);
	close(fd);
	return text;
}

/*
 * Run argv (looked up in PATH) with the "NAME=value" strings of env added
 * to the environment; its standard output and error into *ret_out and
 * *ret_err (malloc'd). Returns the exit status, or -1 when it did not exit.
 */
static int run(const char *const *argv, const char *const *env, char **ret_out, char **ret_err)
{
	char out_path[] = "/tmp/zm-it-man-out-XXXXXX", err_path[] = "/tmp/zm-it-man-err-XXXXXX";
	int out = mkstemp(out_path), err = mkstemp(err_path), ws;
	pid_t pid;

	assert_true(out >= 0 && err >= 0);
	unlink(out_path);
	unlink(err_path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, 0);
		dup2(out, 1);
		dup2(err, 2);
		/* What a user's environment may set that changes the rendering. */
		unsetenv("MAN_KEEP_FORMATTING");
		unsetenv("MANOPT");
		unsetenv("MANROFFOPT");
		unsetenv("GROFF_TMAC_PATH");
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &ws, 0) < 0)
		assert_int_equal(errno, EINTR);
	*ret_out = read_fd(out);
	*ret_err = read_fd(err);
	close(out);
	close(err);
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* Is cmd an executable in PATH? */
static bool in_path(const char *cmd)
{
	const char *path = getenv("PATH");
	char dir[PATH_MAX], probe[PATH_MAX + 64];

	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(dir, sizeof(dir), "%.*s", (int)n, p);
		snprintf(probe, sizeof(probe), "%s/%s", dir[0] ? dir : ".", cmd);
		if (access(probe, X_OK) == 0)
			return true;
		p += n;
		if (*p == ':')
			p++;
	}
	return false;
}

static int group_setup(void **state)
{
	const char *missing = !in_path("man") ? "man (package man-db)" :
			      !in_path("groff") ? "groff (package groff-base)" : NULL;

	if (!missing)
		return 0;
	if (zmh_in_ci()) {
		fprintf(stderr, "FAIL: %s is not installed (CI=true: a missing tool is a failure; "
			"tools/install-deps.sh installs it)\n", missing);
		return -1;
	}
	fprintf(stderr, "SKIP: %s is not installed (tools/install-deps.sh installs it)\n", missing);
	*state = (void *)missing;
	return 0;
}

/* Skip the test when the group found no man or groff. */
static void need_man(void **state)
{
	if (*state)
		skip();
}

/* SOURCE/prefix/name into buf. */
static void src_path(const char *prefix, const char *name, char *buf, size_t len)
{
	if (snprintf(buf, len, "%s/%s%s", source_dir(), prefix, name) >= (int)len)
		fail_msg("path too long: %s/%s%s", source_dir(), prefix, name);
}

static void page_path(const char *page, char *buf, size_t len)
{
	src_path("docs/man/", page, buf, len);
}

/*
 * The page as man -l renders it in the C locale, without hyphenation and
 * wide, so that a word is never split: NUL-terminated text, malloc'd.
 */
static char *render(const char *page)
{
	char path[PATH_MAX], *out, *err;
	int st;

	page_path(page, path, sizeof(path));
	st = run((const char *const[]){ "man", "-l", path, NULL },
		 (const char *const[]){ "LC_ALL=C", "MANWIDTH=250", "MANROFFOPT=-rHY=0", NULL },
		 &out, &err);
	if (st != 0 || !out[0])
		fail_msg("man -l %s failed (status %d): %s", path, st, err);
	free(err);
	return out;
}

/* text with every run of white space made one space, for phrase searches
 * that must not depend on where a line broke or how it was justified. */
static char *squeeze(const char *text)
{
	char *s = malloc(strlen(text) + 1), *o = s;

	assert_non_null(s);
	for (const char *p = text; *p; p++) {
		if (isspace((unsigned char)*p)) {
			if (o > s && o[-1] != ' ')
				*o++ = ' ';
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return s;
}

/*
 * The body of section name (a heading alone on its line, at column 0) of a
 * rendered page, up to the next heading: malloc'd, "" when there is none.
 */
static char *section(const char *text, const char *name)
{
	size_t nlen = strlen(name);
	const char *start = NULL, *end;

	for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
		if (strncmp(line, name, nlen) == 0 && line[nlen] == '\n') {
			start = line + nlen + 1;
			break;
		}
	}
	if (!start)
		return strdup("");
	/* The next heading: a line starting with a capital at column 0. */
	for (end = start; *end; end = strchr(end, '\n') ? strchr(end, '\n') + 1 : end + strlen(end)) {
		if (end != start && isupper((unsigned char)*end))
			break;
	}
	return strndup(start, (size_t)(end - start));
}

/* Every page in docs/man (a name ending in .1 to .8), sorted; *ret_n of them. */
static char **list_pages(size_t *ret_n)
{
	char dir[PATH_MAX];
	struct dirent **ents;
	char **pages;
	int n;
	size_t k = 0;

	src_path("docs/man", "", dir, sizeof(dir));
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		fail_msg("cannot list %s: %s", dir, strerror(errno));
		return NULL;
	}
	pages = calloc((size_t)n + 1, sizeof(*pages));
	assert_non_null(pages);
	for (int i = 0; i < n; i++) {
		const char *dot = strrchr(ents[i]->d_name, '.');

		if (dot && dot[1] >= '1' && dot[1] <= '8' && dot[2] == '\0')
			pages[k++] = strdup(ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	*ret_n = k;
	return pages;
}

static void free_pages(char **pages, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(pages[i]);
	free(pages);
}

/* ---- rendering ------------------------------------------------------------ */

static void test_every_page_renders_without_a_warning(void **state)
{
	static const char *const locales[] = { "LC_ALL=C", "LC_ALL=C.UTF-8" };
	size_t n;
	char **pages;
	int bad = 0;

	need_man(state);
	pages = list_pages(&n);
	for (size_t r = 0; r < sizeof(required_pages) / sizeof(required_pages[0]); r++) {
		bool found = false;

		for (size_t i = 0; i < n; i++)
			found = found || strcmp(pages[i], required_pages[r]) == 0;
		if (!found) {
			fprintf(stderr, "docs/man/%s is missing\n", required_pages[r]);
			bad++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t l = 0; l < sizeof(locales) / sizeof(locales[0]); l++) {
			char path[PATH_MAX], *out, *err;
			int st;

			page_path(pages[i], path, sizeof(path));
			st = run((const char *const[]){ "man", "--warnings=w", "-l", path, NULL },
				 (const char *const[]){ locales[l], "MANWIDTH=80", NULL }, &out, &err);
			if (st != 0 || err[0] || strlen(out) < 200) {
				fprintf(stderr, "MANWIDTH=80 %s man --warnings=w -l %s: status %d, "
					"%zu bytes of output, and on standard error:\n%s\n",
					locales[l], path, st, strlen(out), err);
				bad++;
			}
			free(out);
			free(err);
		}
	}
	free_pages(pages, n);
	assert_int_equal(bad, 0);
}

/* .TH NAME SECTION: the file's own name and section (case aside). */
static void check_th(const char *page, int *bad)
{
	char path[PATH_MAX], name[128], sect[16], want[128];
	char *src, *th;
	const char *dot = strrchr(page, '.');

	page_path(page, path, sizeof(path));
	src = read_file(path);
	th = strstr(src, "\n.TH ");
	if (!th || sscanf(th + 5, "%127s %15s", name, sect) != 2) {
		fprintf(stderr, "%s: no .TH line\n", page);
		(*bad)++;
		free(src);
		return;
	}
	/* "\-" in the title is a plain '-' in the name. */
	for (char *s = name, *o = name;; s++) {
		if (s[0] == '\\' && s[1] == '-')
			s++;
		if (!(*o++ = *s))
			break;
	}
	snprintf(want, sizeof(want), "%.*s", (int)(dot - page), page);
	if (strcasecmp(name, want) != 0 || strcmp(sect, dot + 1) != 0) {
		fprintf(stderr, "%s: .TH says %s(%s), the file is %s(%s)\n", page, name, sect, want,
			dot + 1);
		(*bad)++;
	}
	free(src);
}

/*
 * Render every page in docs/man and hand it to check(page, text, &bad),
 * which counts what it finds wrong (and says so on stderr); then no page
 * may have had anything wrong.
 */
static void check_every_page(void (*check)(const char *page, const char *text, int *bad))
{
	size_t n;
	char **pages = list_pages(&n);
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		char *text = render(pages[i]);

		check(pages[i], text, &bad);
		free(text);
	}
	free_pages(pages, n);
	assert_int_equal(bad, 0);
}

/* .TH names the file; NAME, DESCRIPTION, SEE ALSO, and SYNOPSIS in
 * sections 3, 5 and 8, are there. */
static void check_th_and_sections(const char *page, const char *text, int *bad)
{
	char sect = page[strlen(page) - 1];
	const char *const want[] = {
		"NAME", "DESCRIPTION", "SEE ALSO",
		sect == '3' || sect == '5' || sect == '8' ? "SYNOPSIS" : NULL,
	};

	check_th(page, bad);
	for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		char *body = want[w] ? section(text, want[w]) : NULL;

		if (body && !body[0]) {
			fprintf(stderr, "%s: no %s section\n", page, want[w]);
			(*bad)++;
		}
		free(body);
	}
}

static void test_every_page_names_its_file_and_has_its_sections(void **state)
{
	need_man(state);
	check_every_page(check_th_and_sections);
}

/* Every zenmon page named as name(N) in the SEE ALSO is a file in docs/man. */
static void check_see_also(const char *page, const char *text, int *bad)
{
	char *see = section(text, "SEE ALSO");

	for (const char *p = see; (p = strstr(p, "zenmon")); p++) {
		const char *start = p, *paren;
		char name[128], path[PATH_MAX];

		if (p > see && (isalnum((unsigned char)p[-1]) || p[-1] == '/')) {
			/* "libzenmon(3)" is a page; ".../zenmon.h" is not. */
			if (p - see >= 3 && strncmp(p - 3, "lib", 3) == 0 &&
			    (p - see == 3 || !isalnum((unsigned char)p[-4])))
				start = p - 3;
			else
				continue;
		}
		paren = start + strcspn(start, "( \n,");
		if (*paren != '(' || !isdigit((unsigned char)paren[1]) || paren[2] != ')')
			continue;
		snprintf(name, sizeof(name), "%.*s.%c", (int)(paren - start), start, paren[1]);
		page_path(name, path, sizeof(path));
		if (access(path, R_OK) != 0) {
			fprintf(stderr, "%s: SEE ALSO names %.*s, which is not in docs/man\n", page,
				(int)(paren + 3 - start), start);
			(*bad)++;
		}
	}
	free(see);
}

static void test_see_also_names_only_pages_that_exist(void **state)
{
	need_man(state);
	check_every_page(check_see_also);
}

/* ---- the programs' options ------------------------------------------------- */

/*
 * The options of a --help text: each line that starts (after spaces) with
 * "-X, --long" or "--long". Calls fn(short_or_0, long, has_value) for each.
 */
static void for_each_option(const char *help, void (*fn)(char, const char *, bool, void *),
			    void *ctx)
{
	for (const char *line = help; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
		const char *p = line, *end;
		char shrt = 0, name[64];

		while (*p == ' ')
			p++;
		if (p == line)
			continue;       /* a heading or a usage line */
		if (p[0] == '-' && isalpha((unsigned char)p[1]) && p[2] == ',' && p[3] == ' ') {
			shrt = p[1];
			p += 4;
		}
		if (p[0] != '-' || p[1] != '-' || !isalpha((unsigned char)p[2]))
			continue;
		end = p + 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
		snprintf(name, sizeof(name), "%.*s", (int)(end - p), p);
		/* A value follows after one space: "--socket PATH". */
		fn(shrt, name, end[0] == ' ' && end[1] != ' ', ctx);
	}
}

struct option_check {
	const char *page;
	const char *text;       /* the squeezed rendering */
	int found, bad;
};

static void check_option(char shrt, const char *name, bool has_value, void *ctx)
{
	struct option_check *c = ctx;
	char both[80];

	c->found++;
	if (!strstr(c->text, name)) {
		fprintf(stderr, "%s does not mention %s\n", c->page, name);
		c->bad++;
		return;
	}
	if (!shrt)
		return;
	snprintf(both, sizeof(both), "-%c, %s", shrt, name);
	if (!strstr(c->text, both)) {
		fprintf(stderr, "%s does not show \"%s\"\n", c->page, both);
		c->bad++;
	}
}

/* The setting of an option with a value, as the KEYS section of
 * zenmond.conf(5) shows it: "key = VALUE". */
static void check_setting(char shrt, const char *name, bool has_value, void *ctx)
{
	struct option_check *c = ctx;
	char key[80];

	if (!has_value || strcmp(name, "--config") == 0)
		return;
	c->found++;
	snprintf(key, sizeof(key), " %s = ", name + 2);
	if (!strstr(c->text, key)) {
		fprintf(stderr, "%s does not describe the key \"%s\"\n", c->page, name + 2);
		c->bad++;
	}
}

/* BUILD/prog args...: its standard output, which must be there (status 0). */
static char *program_output(const char *prog, const char *const *args)
{
	char path[PATH_MAX + 32], *out, *err;
	const char *argv[8] = { path };
	int st;

	snprintf(path, sizeof(path), "%s/%s", zmh_build_dir(), prog);
	for (size_t i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	st = run(argv, NULL, &out, &err);
	if (st != 0 || !out[0])
		fail_msg("%s %s: status %d: %s", path, args[0], st, err);
	free(err);
	return out;
}

static void test_zenmond_8_documents_every_option_of_zenmond_help(void **state)
{
	char *help, *text, *flat;
	struct option_check c = { .page = "zenmond.8" };

	need_man(state);
	help = program_output("zenmond", (const char *const[]){ "--help", NULL });
	text = render("zenmond.8");
	flat = squeeze(text);
	c.text = flat;
	for_each_option(help, check_option, &c);
	/* What the issue names beside the options. */
	for (const char *const *w = (const char *const[]){ "SIGHUP", "SIGTERM", "ZENMON_SOCKET",
							  "NOTIFY_SOCKET", "EXIT STATUS", "FILES",
							  "ENVIRONMENT", "zenmond.conf(5)", NULL };
	     *w; w++) {
		if (!strstr(flat, *w)) {
			fprintf(stderr, "zenmond.8 does not mention %s\n", *w);
			c.bad++;
		}
	}
	assert_true(c.found >= 15); /* the parser found the options at all */
	free(help);
	free(text);
	free(flat);
	assert_int_equal(c.bad, 0);
}

static void test_zenmond_conf_5_documents_every_setting(void **state)
{
	char *help, *text, *keys, *flat;
	struct option_check c = { .page = "zenmond.conf.5" };

	need_man(state);
	help = program_output("zenmond", (const char *const[]){ "--help", NULL });
	text = render("zenmond.conf.5");
	keys = section(text, "KEYS");
	flat = squeeze(keys);
	c.text = flat;
	for_each_option(help, check_setting, &c);
	assert_true(c.found >= 12);
	free(help);
	free(text);
	free(keys);
	free(flat);
	assert_int_equal(c.bad, 0);
}

/* The commands under "Commands:" in zenmonctl --help: the first word of each
 * line indented by exactly two spaces. Returns how many, into names. */
static size_t zenmonctl_commands(const char *help, char names[][32], size_t max)
{
	const char *p = strstr(help, "\nCommands:\n");
	size_t n = 0;

	assert_non_null(p);
	for (p += strlen("\nCommands:\n"); *p && *p != '\n' && n < max; p += strcspn(p, "\n") + 1) {
		if (p[0] == ' ' && p[1] == ' ' && islower((unsigned char)p[2])) {
			size_t len = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");

			snprintf(names[n++], 32, "%.*s", (int)len, p + 2);
		}
		if (!p[strcspn(p, "\n")])
			break;
	}
	return n;
}

/* Is name a subsection heading of the rendered page's COMMANDS section
 * ("   monitor", or one of "   help, version")? */
static bool is_command_heading(const char *commands, const char *name)
{
	size_t len = strlen(name);

	for (const char *line = commands; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
		const char *p;

		if (strncmp(line, "   ", 3) != 0 || line[3] == ' ')
			continue;
		for (p = line + 3; *p && *p != '\n'; p += strspn(p, ", ")) {
			size_t w = strcspn(p, ", \n");

			if (w == len && strncmp(p, name, len) == 0)
				return true;
			p += w;
		}
	}
	return false;
}

static void test_zenmonctl_8_documents_every_command_and_its_options(void **state)
{
	char names[16][32];
	char *help, *text, *flat, *commands;
	struct option_check c = { .page = "zenmonctl.8" };
	size_t n;

	need_man(state);
	help = program_output("zenmonctl", (const char *const[]){ "--help", NULL });
	text = render("zenmonctl.8");
	flat = squeeze(text);
	commands = section(text, "COMMANDS");
	c.text = flat;
	n = zenmonctl_commands(help, names, 16);
	assert_true(n >= 5);
	for_each_option(help, check_option, &c);
	for (size_t i = 0; i < n; i++) {
		char *cmd_help;

		if (!is_command_heading(commands, names[i])) {
			fprintf(stderr, "zenmonctl.8 has no COMMANDS entry for %s\n", names[i]);
			c.bad++;
		}
		if (strcmp(names[i], "help") == 0 || strcmp(names[i], "version") == 0)
			continue;
		cmd_help = program_output("zenmonctl", (const char *const[]){ "help", names[i], NULL });
		for_each_option(cmd_help, check_option, &c);
		free(cmd_help);
	}
	free(commands);
	free(help);
	free(text);
	free(flat);
	assert_int_equal(c.bad, 0);
}

/* ---- the library ------------------------------------------------------------ */

static void test_libzenmon_3_documents_every_exported_function(void **state)
{
	char path[PATH_MAX], *header, *text, *synopsis, *flat_synopsis, *flat;
	int found = 0, bad = 0;

	need_man(state);
	src_path("include/", "zenmon.h", path, sizeof(path));
	header = read_file(path);
	text = render("libzenmon.3");
	synopsis = section(text, "SYNOPSIS");
	flat_synopsis = squeeze(synopsis);
	flat = squeeze(strstr(text, "\nDESCRIPTION\n") ? strstr(text, "\nDESCRIPTION\n") : "");
	for (const char *p = header; (p = strstr(p, "\nZM_EXPORT ")); p++) {
		const char *paren = strchr(p + 1, '('), *name = paren;
		char fn[64], call[72];

		assert_non_null(paren);
		while (name > p && (isalnum((unsigned char)name[-1]) || name[-1] == '_'))
			name--;
		snprintf(fn, sizeof(fn), "%.*s", (int)(paren - name), name);
		found++;
		snprintf(call, sizeof(call), " %s(", fn);
		if (!strstr(flat_synopsis, call) && !strstr(flat_synopsis, call + 1)) {
			fprintf(stderr, "libzenmon.3: %s is not in the SYNOPSIS\n", fn);
			bad++;
		}
		snprintf(call, sizeof(call), "%s()", fn);
		if (!strstr(flat, call)) {
			fprintf(stderr, "libzenmon.3: the text never describes %s\n", call);
			bad++;
		}
	}
	assert_true(found >= 20); /* the header parse found them at all */
	free(header);
	free(text);
	free(synopsis);
	free(flat_synopsis);
	free(flat);
	assert_int_equal(bad, 0);
}

/*
 * The example program of libzenmon(3) (the .EX block that starts with
 * "/\* watch.c:"), its roff escapes undone, compiles against the header
 * with every warning an error.
 */
/* The escapes an example in a page uses, and what they stand for. */
static const struct {
	const char *roff;
	char c;
} roff_escapes[] = {
	{ "\\-", '-' }, { "\\e", '\\' }, { "\\(aq", '\'' }, { "\\(dq", '"' },
};

static void test_libzenmon_3_example_compiles(void **state)
{
	char path[PATH_MAX], inc[PATH_MAX + 8], c_path[] = "/tmp/zm-it-man-XXXXXX.c";
	char *src, *start, *end, *out, *err;
	FILE *f;
	int fd, st;

	need_man(state);
	page_path("libzenmon.3", path, sizeof(path));
	src = read_file(path);
	start = strstr(src, "\n/* watch.c:");
	assert_non_null(start);
	end = strstr(start, "\n.EE\n");
	assert_non_null(end);
	fd = mkstemps(c_path, 2);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	for (const char *p = start + 1; p <= end;) {
		size_t i;

		for (i = 0; i < sizeof(roff_escapes) / sizeof(roff_escapes[0]); i++) {
			size_t len = strlen(roff_escapes[i].roff);

			if (strncmp(p, roff_escapes[i].roff, len) == 0) {
				fputc(roff_escapes[i].c, f);
				p += len;
				break;
			}
		}
		if (i == sizeof(roff_escapes) / sizeof(roff_escapes[0]))
			fputc(*p++, f);
	}
	fclose(f);
	inc[0] = '-';
	inc[1] = 'I';
	src_path("include", "", inc + 2, sizeof(inc) - 2);
	st = run((const char *const[]){ "cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
					"-Wno-unused-parameter", inc, "-fsyntax-only", c_path, NULL },
		 NULL, &out, &err);
	if (st != 0)
		fprintf(stderr, "the example of libzenmon.3 does not compile (status %d):\n%s%s\n",
			st, out, err);
	unlink(c_path);
	free(out);
	free(err);
	free(src);
	assert_int_equal(st, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_page_renders_without_a_warning),
		cmocka_unit_test(test_every_page_names_its_file_and_has_its_sections),
		cmocka_unit_test(test_see_also_names_only_pages_that_exist),
		cmocka_unit_test(test_zenmond_8_documents_every_option_of_zenmond_help),
		cmocka_unit_test(test_zenmond_conf_5_documents_every_setting),
		cmocka_unit_test(test_zenmonctl_8_documents_every_command_and_its_options),
		cmocka_unit_test(test_libzenmon_3_documents_every_exported_function),
		cmocka_unit_test(test_libzenmon_3_example_compiles),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
