// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * `zenmonctl stats` and `zenmonctl targets`: see ctl_stats.h. Both texts
 * are read line by line; whatever a line does not say is left out rather
 * than guessed, so a newer agent's extra lines and words cost nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_format.h"
#include "ctl_stats.h"

/* Append one element of size sz to *v (n elements): a pointer to it, zeroed, or NULL. */
static void *stats_grow(void *v, size_t *n, size_t sz, void **ret_v)
{
	char *nv = realloc(v, (*n + 1) * sz);

	if (!nv)
		return NULL;
	*ret_v = nv;
	memset(nv + *n * sz, 0, sz);
	return nv + (*n)++ * sz;
}

static bool stats_name_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' || c == ':' || (!first && isdigit((unsigned char)c));
}

/* The metric name at *p (advanced past it), strndup'd; NULL if none (or no memory). */
static char *stats_take_name(const char **p)
{
	const char *s = *p;

	while (stats_name_char(**p, *p == s))
		(*p)++;
	return *p > s ? strndup(s, (size_t)(*p - s)) : NULL;
}

/* A JSON number exactly (RFC 8259), which a Prometheus value may not be. */
static bool stats_is_json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (isdigit((unsigned char)*s))
		while (isdigit((unsigned char)*s))
			s++;
	else
		return false;
	if (*s == '.') {
		if (!isdigit((unsigned char)*++s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return *s == '\0';
}

/* ---- stats ----------------------------------------------------------------- */

static void stats_free_sample(struct ctl_sample *x)
{
	for (size_t i = 0; i < x->n_labels; i++) {
		free(x->labels[i].name);
		free(x->labels[i].value);
	}
	free(x->labels);
	free(x->name);
	free(x->value);
}

void ctl_stats_free(struct ctl_stats *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_families; i++) {
		struct ctl_family *f = &s->families[i];

		for (size_t j = 0; j < f->n_samples; j++)
			stats_free_sample(&f->samples[j]);
		free(f->samples);
		free(f->name);
		free(f->type);
		free(f->help);
	}
	free(s->families);
	memset(s, 0, sizeof(*s));
}

static struct ctl_family *stats_family(struct ctl_stats *s, const char *name, size_t len)
{
	struct ctl_family *f;
	void *v;

	for (size_t i = 0; i < s->n_families; i++)
		if (strlen(s->families[i].name) == len && memcmp(s->families[i].name, name, len) == 0)
			return &s->families[i];
	f = stats_grow(s->families, &s->n_families, sizeof(*f), &v);
	if (!f)
		return NULL;
	s->families = v;
	f->name = strndup(name, len);
	f->type = strdup("untyped");
	f->help = strdup("");
	if (!f->name || !f->type || !f->help)
		return NULL;
	return f;
}

/* "# HELP name text" or "# TYPE name type"; other comments are skipped. */
static int stats_comment(struct ctl_stats *s, const char *p, const char *end, struct ctl_family **cur)
{
	bool help = strncmp(p, "# HELP ", 7) == 0, type = strncmp(p, "# TYPE ", 7) == 0;
	const char *name, *rest;
	struct ctl_family *f;
	char *text, *w;

	if (!help && !type)
		return 0;
	name = p + 7;
	rest = name;
	while (rest < end && *rest != ' ')
		rest++;
	f = stats_family(s, name, (size_t)(rest - name));
	if (!f)
		return -ENOMEM;
	*cur = f;
	if (rest < end)
		rest++;
	text = strndup(rest, (size_t)(end - rest));
	if (!text)
		return -ENOMEM;
	if (help) {
		/* Unescape \\ and \n. */
		w = text;
		for (const char *r = text; *r; r++) {
			if (*r == '\\' && (r[1] == '\\' || r[1] == 'n')) {
				*w++ = r[1] == 'n' ? '\n' : '\\';
				r++;
			} else {
				*w++ = *r;
			}
		}
		*w = '\0';
		free(f->help);
		f->help = text;
	} else {
		free(f->type);
		f->type = text;
	}
	return 0;
}

/* {name="value",...} at *p: labels into x. 0, -EINVAL (malformed), -ENOMEM. */
static int stats_labels(const char **p, const char *end, struct ctl_sample *x)
{
	const char *q = *p + 1;

	while (q < end && *q != '}') {
		struct ctl_label *l;
		char *v, *w;
		void *nv;

		l = stats_grow(x->labels, &x->n_labels, sizeof(*l), &nv);
		if (!l)
			return -ENOMEM;
		x->labels = nv;
		l->name = stats_take_name(&q);
		if (!l->name || q + 1 >= end || q[0] != '=' || q[1] != '"')
			return l->name ? -EINVAL : -ENOMEM;
		q += 2;
		v = w = malloc((size_t)(end - q) + 1);
		if (!v)
			return -ENOMEM;
		l->value = v;
		while (q < end && *q != '"') {
			if (*q == '\\' && q + 1 < end) {
				q++;
				*w++ = *q == 'n' ? '\n' : *q;
			} else {
				*w++ = *q;
			}
			q++;
		}
		*w = '\0';
		if (q >= end)
			return -EINVAL;
		q++;
		if (q < end && *q == ',')
			q++;
	}
	if (q >= end)
		return -EINVAL;
	*p = q + 1;
	return 0;
}

static int stats_sample(struct ctl_stats *s, const char *p, const char *end, struct ctl_family **cur)
{
	struct ctl_sample x = { 0 }, *slot;
	struct ctl_family *f = *cur;
	const char *v;
	void *nv;
	int r = -EINVAL;

	x.name = stats_take_name(&p);
	if (!x.name)
		goto skip;
	if (p < end && *p == '{' && (r = stats_labels(&p, end, &x)) < 0)
		goto skip;
	while (p < end && *p == ' ')
		p++;
	v = p;
	while (p < end && *p != ' ')
		p++;
	if (p == v)
		goto skip;
	x.value = strndup(v, (size_t)(p - v));
	if (!x.value) {
		r = -ENOMEM;
		goto skip;
	}
	if (!f || strncmp(x.name, f->name, strlen(f->name)) != 0) {
		f = stats_family(s, x.name, strlen(x.name));
		if (!f) {
			r = -ENOMEM;
			goto skip;
		}
		*cur = f;
	}
	slot = stats_grow(f->samples, &f->n_samples, sizeof(*slot), &nv);
	if (!slot) {
		r = -ENOMEM;
		goto skip;
	}
	f->samples = nv;
	*slot = x;
	return 0;
skip:
	stats_free_sample(&x);
	return r == -ENOMEM ? r : 0;   /* a line that does not parse is skipped */
}

int ctl_stats_parse(const char *text, struct ctl_stats *ret)
{
	struct ctl_stats s = { 0 };
	struct ctl_family *cur = NULL;

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		const char *end = nl ? nl : p + strlen(p);
		int r = 0;

		if (*p == '#')
			r = stats_comment(&s, p, end, &cur);
		else if (end > p)
			r = stats_sample(&s, p, end, &cur);
		if (r < 0) {
			ctl_stats_free(&s);
			return r;
		}
		p = nl ? nl + 1 : end;
	}
	*ret = s;
	return 0;
}

static void stats_json_value(FILE *f, const char *v)
{
	if (stats_is_json_number(v))
		fputs(v, f);
	else
		ctl_format_json_string(f, v);
}

void ctl_stats_print_json(FILE *f, const struct ctl_stats *s)
{
	fputc('{', f);
	for (size_t i = 0; i < s->n_families; i++) {
		const struct ctl_family *fam = &s->families[i];

		fputs(i ? "," : "", f);
		ctl_format_json_string(f, fam->name);
		fputs(":{\"type\":", f);
		ctl_format_json_string(f, fam->type);
		fputs(",\"help\":", f);
		ctl_format_json_string(f, fam->help);
		fputs(",\"samples\":[", f);
		for (size_t j = 0; j < fam->n_samples; j++) {
			const struct ctl_sample *x = &fam->samples[j];

			fputs(j ? ",{\"name\":" : "{\"name\":", f);
			ctl_format_json_string(f, x->name);
			fputs(",\"labels\":{", f);
			for (size_t k = 0; k < x->n_labels; k++) {
				fputs(k ? "," : "", f);
				ctl_format_json_string(f, x->labels[k].name);
				fputc(':', f);
				ctl_format_json_string(f, x->labels[k].value);
			}
			fputs("},\"value\":", f);
			stats_json_value(f, x->value);
			fputc('}', f);
		}
		fputs("]}", f);
	}
	fputs("}\n", f);
}

/* ---- targets --------------------------------------------------------------- */

static void targets_free_words(struct ctl_word *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(w[i].key);
		free(w[i].value);
	}
	free(w);
}

void ctl_targets_free(struct ctl_targets *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_targets; i++)
		targets_free_words(t->targets[i].words, t->targets[i].n_words);
	free(t->targets);
	for (size_t i = 0; i < t->n_subs; i++) {
		free(t->subs[i].id);
		free(t->subs[i].name);
	}
	free(t->subs);
	targets_free_words(t->summary, t->n_summary);
	memset(t, 0, sizeof(*t));
}

/* The key=value words of p..end (words without '=' are skipped). 0 or -ENOMEM. */
static int targets_words(const char *p, const char *end, struct ctl_word **ret, size_t *ret_n)
{
	struct ctl_word *v = NULL, *w;
	const char *key, *value;
	size_t n = 0, klen, vlen;

	while (ctl_next_kv(&p, end, &key, &klen, &value, &vlen)) {
		void *nv;

		w = stats_grow(v, &n, sizeof(*w), &nv);
		if (!w)
			goto nomem;
		v = nv;
		w->key = strndup(key, klen);
		w->value = strndup(value, vlen);
		if (!w->key || !w->value)
			goto nomem;
	}
	*ret = v;
	*ret_n = n;
	return 0;
nomem:
	targets_free_words(v, n);
	return -ENOMEM;
}

const char *ctl_word_get(const struct ctl_word *words, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(words[i].key, key) == 0)
			return words[i].value;
	return NULL;
}

static int targets_line(struct ctl_targets *t, const char *p, const char *end)
{
	struct ctl_word *w;
	size_t n;
	void *nv;
	int r;

	if (end - p > 7 && strncmp(p, "target ", 7) == 0) {
		struct ctl_target_line *l = stats_grow(t->targets, &t->n_targets, sizeof(*l), &nv);

		if (!l)
			return -ENOMEM;
		t->targets = nv;
		return targets_words(p + 7, end, &l->words, &l->n_words);
	}
	if (end - p > 8 && strncmp(p, "targets ", 8) == 0) {
		targets_free_words(t->summary, t->n_summary);
		t->summary = NULL;
		t->n_summary = 0;
		return targets_words(p + 8, end, &t->summary, &t->n_summary);
	}
	if (end - p > 11 && strncmp(p, "subscriber ", 11) == 0) {
		struct ctl_sub_name *s;
		const char *id, *name;

		r = targets_words(p + 11, end, &w, &n);
		if (r < 0)
			return r;
		id = ctl_word_get(w, n, "id");
		name = ctl_word_get(w, n, "name");
		s = id ? stats_grow(t->subs, &t->n_subs, sizeof(*s), &nv) : NULL;
		if (s) {
			t->subs = nv;
			s->id = strdup(id);
			s->name = name ? strdup(name) : NULL;
		}
		r = id && (!s || !s->id || (name && !s->name)) ? -ENOMEM : 0;
		targets_free_words(w, n);
		return r;
	}
	return 0;
}

int ctl_targets_parse(const char *text, struct ctl_targets *ret)
{
	struct ctl_targets t = { 0 };

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		const char *end = nl ? nl : p + strlen(p);
		int r = targets_line(&t, p, end);

		if (r < 0) {
			ctl_targets_free(&t);
			return r;
		}
		p = nl ? nl + 1 : end;
	}
	*ret = t;
	return 0;
}

static const char *targets_sub_name(const struct ctl_targets *t, const char *id, size_t len)
{
	for (size_t i = 0; i < t->n_subs; i++)
		if (strlen(t->subs[i].id) == len && memcmp(t->subs[i].id, id, len) == 0)
			return t->subs[i].name;
	return NULL;
}

/* Call fn for each id of "1,7,12" with its name (NULL if unknown). */
static void targets_each_sub(const struct ctl_targets *t, const char *list,
			     void (*fn)(FILE *f, const char *id, size_t len, const char *name, bool first),
			     FILE *f)
{
	bool first = true;

	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len)
			fn(f, p, len, targets_sub_name(t, p, len), first);
		first = first && !len;
		p = comma ? comma + 1 : p + len;
	}
}

static void targets_sub_text(FILE *f, const char *id, size_t len, const char *name, bool first)
{
	fprintf(f, "%s%.*s (%s)", first ? "" : ", ", (int)len, id, name ? name : "?");
}

static void targets_sub_json(FILE *f, const char *id, size_t len, const char *name, bool first)
{
	fprintf(f, "%s{\"id\":", first ? "" : ",");
	if (strspn(id, "0123456789") >= len && len > 0)
		fprintf(f, "%.*s", (int)len, id);
	else
		fputs("null", f);
	fputs(",\"name\":", f);
	if (name)
		ctl_format_json_string(f, name);
	else
		fputs("null", f);
	fputc('}', f);
}

static const char *targets_or(const char *v, const char *dflt)
{
	return v ? v : dflt;
}

void ctl_targets_print_text(FILE *f, const struct ctl_targets *t)
{
	const struct ctl_word *sum = t->summary;

	fprintf(f, "%-7s  %-48s  %8s  %-14s  %s\n", "KIND", "TARGET", "MONITORS", "KERNEL", "SUBSCRIBERS");
	for (size_t i = 0; i < t->n_targets; i++) {
		const struct ctl_word *w = t->targets[i].words;
		size_t n = t->targets[i].n_words;
		const char *kind = targets_or(ctl_word_get(w, n, "kind"), "?");
		char what[160];

		if (strcmp(kind, "tcp") == 0 && ctl_word_get(w, n, "local"))
			snprintf(what, sizeof(what), "%s -> %s cookie %s", ctl_word_get(w, n, "local"),
				 targets_or(ctl_word_get(w, n, "remote"), "?"),
				 targets_or(ctl_word_get(w, n, "cookie"), "?"));
		else if (strcmp(kind, "tcp") == 0)
			snprintf(what, sizeof(what), "cookie %s (socket gone)",
				 targets_or(ctl_word_get(w, n, "cookie"), "?"));
		else
			snprintf(what, sizeof(what), "pid %s start %s", targets_or(ctl_word_get(w, n, "pid"), "?"),
				 targets_or(ctl_word_get(w, n, "start_ticks"), "?"));
		fprintf(f, "%-7s  %-48s  %8s  %-14s  ", kind, what,
			targets_or(ctl_word_get(w, n, "monitors"), "?"),
			targets_or(ctl_word_get(w, n, "kernel"), "?"));
		targets_each_sub(t, ctl_word_get(w, n, "subscribers"), targets_sub_text, f);
		fputc('\n', f);
	}
	if (sum)
		fprintf(f, "%s targets (%s held by the agent, %s only in the kernel), %s listed\n",
			targets_or(ctl_word_get(sum, t->n_summary, "total"), "?"),
			targets_or(ctl_word_get(sum, t->n_summary, "agent"), "?"),
			targets_or(ctl_word_get(sum, t->n_summary, "kernel_only"), "?"),
			targets_or(ctl_word_get(sum, t->n_summary, "listed"), "?"));
}

/* "key":value for one word: an integer as a number, anything else a string. */
static void targets_json_word(FILE *f, const struct ctl_word *w)
{
	ctl_format_json_string(f, w->key);
	fputc(':', f);
	if (*w->value && strspn(w->value, "0123456789") == strlen(w->value) &&
	    (w->value[0] != '0' || w->value[1] == '\0'))
		fputs(w->value, f);
	else
		ctl_format_json_string(f, w->value);
}

void ctl_targets_print_json(FILE *f, const struct ctl_targets *t)
{
	fputs("{\"targets\":[", f);
	for (size_t i = 0; i < t->n_targets; i++) {
		const struct ctl_target_line *l = &t->targets[i];

		fputs(i ? ",{" : "{", f);
		for (size_t j = 0; j < l->n_words; j++) {
			fputs(j ? "," : "", f);
			if (strcmp(l->words[j].key, "subscribers") != 0) {
				targets_json_word(f, &l->words[j]);
				continue;
			}
			fputs("\"subscribers\":[", f);
			targets_each_sub(t, l->words[j].value, targets_sub_json, f);
			fputc(']', f);
		}
		fputc('}', f);
	}
	fputc(']', f);
	for (size_t i = 0; i < t->n_summary; i++) {
		fputc(',', f);
		targets_json_word(f, &t->summary[i]);
	}
	fputs("}\n", f);
}
