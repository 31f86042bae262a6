// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* zenmond's configuration file: see config.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* Keys longer than this cannot be ours; their suggestion is not worth a search. */
#define CONFIG_KEY_MAX 64

void config_init(struct config *cf)
{
	cf->path = NULL;
	cf->entries = NULL;
	cf->n = cf->cap = 0;
}

void config_free(struct config *cf)
{
	if (!cf)
		return;
	for (size_t i = 0; i < cf->n; i++)
		free(cf->entries[i].value);
	free(cf->entries);
	free(cf->path);
	config_init(cf);
}

const struct config_entry *config_find(const struct config *cf, int code)
{
	for (size_t i = 0; i < cf->n; i++) {
		if (cf->entries[i].code == code)
			return &cf->entries[i];
	}
	return NULL;
}

const char *config_origin(const struct config *cf, const struct config_entry *e,
			  char *buf, size_t len)
{
	if (e->line)
		snprintf(buf, len, "%s:%u", cf->path ? cf->path : "(config)", e->line);
	else
		snprintf(buf, len, "the command line");
	return buf;
}

static int config_append(struct config *cf, int code, const char *key, char *value,
			 unsigned int line)
{
	if (cf->n == cf->cap) {
		size_t cap = cf->cap ? cf->cap * 2 : 16;
		struct config_entry *e = realloc(cf->entries, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		cf->entries = e;
		cf->cap = cap;
	}
	cf->entries[cf->n++] = (struct config_entry){
		.code = code, .key = key, .value = value, .line = line,
	};
	return 0;
}

int config_set(struct config *cf, int code, const char *key, const char *value)
{
	char *v = strdup(value);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < cf->n; i++) {
		if (cf->entries[i].code != code)
			continue;
		free(cf->entries[i].value);
		cf->entries[i].value = v;
		cf->entries[i].key = key;
		cf->entries[i].line = 0;
		return 0;
	}
	if (config_append(cf, code, key, v, 0) < 0) {
		free(v);
		return -ENOMEM;
	}
	return 0;
}

/* ---- did you mean ---------------------------------------------------------- */

/* Case and '_' versus '-' are the usual slips: they cost nothing. */
static char config_fold(char c)
{
	return c == '_' ? '-' : (char)tolower((unsigned char)c);
}

/* Levenshtein distance between a and b, both at most CONFIG_KEY_MAX long. */
static size_t config_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[CONFIG_KEY_MAX + 1];

	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (config_fold(a[i - 1]) != config_fold(b[j - 1]));

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The key nearest to key, if near enough to be what was meant; else NULL. */
static const char *config_suggest(const char *key, const struct option *keys)
{
	size_t len = strlen(key), best = SIZE_MAX;
	const char *found = NULL;

	if (len > CONFIG_KEY_MAX)
		return NULL;
	for (const struct option *o = keys; o->name; o++) {
		size_t d;

		if (o->has_arg != required_argument || strlen(o->name) > CONFIG_KEY_MAX)
			continue;
		d = config_distance(key, o->name);
		if (d < best) {
			best = d;
			found = o->name;
		}
	}
	/* Two edits, or a third of a long key: beyond that it is another word. */
	return best <= 2 || best * 3 <= len ? found : NULL;
}

/* ---- parsing --------------------------------------------------------------- */

static bool config_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int config_fail(char *err, size_t errlen, const char *path, unsigned int line,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int config_fail(char *err, size_t errlen, const char *path, unsigned int line,
		       const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "%s:%u: ", path, line);

	if (n < 0 || (size_t)n >= errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * The value part of a line, [p, end), leading whitespace gone: unquote it
 * into a new string. NULL with *ret_problem set when it is malformed, or with
 * *ret_problem NULL when out of memory.
 */
static char *config_value(const char *p, const char *end, const char **ret_problem)
{
	char *out = malloc((size_t)(end - p) + 1), *o = out;

	*ret_problem = NULL;
	if (!out)
		return NULL;
	if (*p == '"' || *p == '\'') {
		char q = *p++;

		for (;; p++) {
			if (p == end) {
				*ret_problem = "unterminated quote";
				goto fail;
			}
			if (*p == q)
				break;
			if (q == '"' && *p == '\\' && p + 1 < end && (p[1] == '"' || p[1] == '\\'))
				p++;
			*o++ = *p;
		}
		for (p++; p < end && config_space(*p); p++)
			;
		if (p < end && *p != '#') {
			*ret_problem = "unexpected text after the closing quote";
			goto fail;
		}
	} else {
		const char *v = p;

		/* A '#' first or after whitespace starts a comment; "a#b" stays
		 * a value. */
		for (; p < end; p++) {
			if (*p == '#' && (p == v || config_space(p[-1])))
				break;
		}
		while (p > v && config_space(p[-1]))
			p--;
		if (p == v) {
			*ret_problem = "missing value";
			goto fail;
		}
		memcpy(o, v, (size_t)(p - v));
		o += p - v;
	}
	*o = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

/* One line, [p, end), with no newline in it. 0 or -errno (err filled). */
static int config_line(struct config *cf, const char *path, unsigned int line,
		       const char *p, const char *end, const struct option *keys,
		       char *err, size_t errlen)
{
	const char *eq, *kend, *problem;
	const struct option *opt = NULL;
	char key[CONFIG_KEY_MAX + 1];
	size_t klen;
	char *value;

	while (p < end && config_space(*p))
		p++;
	while (end > p && config_space(end[-1]))
		end--;
	if (p == end || *p == '#')
		return 0;
	eq = memchr(p, '=', (size_t)(end - p));
	if (!eq)
		return config_fail(err, errlen, path, line,
				   "expected 'key = value', found '%.*s'",
				   (int)(end - p > 60 ? 60 : end - p), p);
	for (kend = eq; kend > p && config_space(kend[-1]); kend--)
		;
	klen = (size_t)(kend - p);
	if (klen == 0)
		return config_fail(err, errlen, path, line, "missing key before '='");
	if (klen > CONFIG_KEY_MAX)
		return config_fail(err, errlen, path, line, "unknown key '%.*s...'", 40, p);
	memcpy(key, p, klen);
	key[klen] = '\0';

	for (const struct option *o = keys; o->name; o++) {
		if (strcmp(o->name, key) == 0) {
			opt = o;
			break;
		}
	}
	if (!opt) {
		const char *near = config_suggest(key, keys);

		if (near)
			return config_fail(err, errlen, path, line,
					   "unknown key '%s' (did you mean '%s'?)", key, near);
		return config_fail(err, errlen, path, line,
				   "unknown key '%s' (the keys are zenmond's long options: see zenmond --help)",
				   key);
	}
	if (opt->has_arg != required_argument)
		return config_fail(err, errlen, path, line,
				   "'%s' is a command-line option, not a setting", key);
	for (size_t i = 0; i < cf->n; i++) {
		if (cf->entries[i].code == opt->val && cf->entries[i].line)
			return config_fail(err, errlen, path, line,
					   "'%s' is set twice (first on line %u): keep one",
					   key, cf->entries[i].line);
	}

	for (p = eq + 1; p < end && config_space(*p); p++)
		;
	value = config_value(p, end, &problem);
	if (!value) {
		if (!problem)
			return -ENOMEM;
		if (strcmp(problem, "missing value") == 0)
			return config_fail(err, errlen, path, line,
					   "missing value for '%s' (for its default, remove the line)", key);
		return config_fail(err, errlen, path, line, "%s in the value of '%s'", problem, key);
	}
	if (config_append(cf, opt->val, opt->name, value, line) < 0) {
		free(value);
		return -ENOMEM;
	}
	return 0;
}

int config_parse(struct config *cf, const char *path, const char *text, size_t len,
		 const struct option *keys, char *err, size_t errlen)
{
	size_t before = cf->n;
	char *path_copy = strdup(path);
	const char *p = text, *end = text + len;
	unsigned int line = 0;
	int r = 0;

	if (!path_copy)
		return -ENOMEM;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		line++;
		if (memchr(p, '\0', (size_t)(eol - p))) {
			r = config_fail(err, errlen, path, line, "holds a NUL byte: is this a text file?");
			break;
		}
		r = config_line(cf, path, line, p, eol, keys, err, errlen);
		if (r < 0)
			break;
		p = nl ? nl + 1 : end;
	}
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "%s: out of memory", path);
		while (cf->n > before)
			free(cf->entries[--cf->n].value);
		free(path_copy);
		return r;
	}
	free(cf->path);
	cf->path = path_copy;
	return 0;
}

int config_read(struct config *cf, const char *path, const struct option *keys,
		char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t len = 0, cap = 4096;
	char *buf;
	int r;

	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return r;
	}
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	/* Read to EOF rather than trusting st_size: /dev/null and pipes work too. */
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap >= CONFIG_MAX_BYTES + 1) {
				snprintf(err, errlen, "%s is larger than %u bytes: is it the right file?",
					 path, CONFIG_MAX_BYTES);
				r = -EFBIG;
				goto out;
			}
			cap *= 2;
			if (cap > CONFIG_MAX_BYTES + 1)
				cap = CONFIG_MAX_BYTES + 1;
			nb = realloc(buf, cap);
			if (!nb) {
				snprintf(err, errlen, "%s: out of memory", path);
				r = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	r = config_parse(cf, path, buf, len, keys, err, errlen);
out:
	free(buf);
	close(fd);
	return r;
}
