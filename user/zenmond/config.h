/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * zenmond's configuration file (/etc/zenmon/zenmond.conf): one setting per
 * line, "key = value", where the keys are the agent's long option names
 * (max-rate, socket, ...), so that every option has one name in both places.
 *
 *   # a comment                    whole-line comments, blank lines
 *   max-rate = 20000               whitespace around key and value ignored
 *   socket = "/run/zenmon/z.sock"  quotes optional: "..." (with \" and \\) or '...'
 *   max-queued = 100000  # note    after whitespace, '#' starts a comment
 *                                  (in an unquoted value; quote a value holding " #")
 *
 * Each key at most once. The module only parses: it maps each key to its
 * option's getopt code through the caller's struct option table and keeps
 * the value text; what a value means is the caller's business. Settings
 * from the command line join with config_set(), replacing the file's, so a
 * walk over the entries gives the effective settings.
 *
 * Errors come back as text in the caller's buffer, "PATH:LINE: problem"
 * (systemd and compiler style), for the caller to print once.
 */
#ifndef ZENMOND_CONFIG_H
#define ZENMOND_CONFIG_H

#include <getopt.h>
#include <stddef.h>

/* Larger than any sane configuration: a bigger file is the wrong file. */
#define CONFIG_MAX_BYTES (1U << 20)

struct config_entry {
	int code;               /* the option's getopt code (struct option .val) */
	const char *key;        /* its long name (the table's string) */
	char *value;            /* owned; NUL-terminated, quotes removed */
	unsigned int line;      /* line in the file; 0: from the command line */
};

struct config {
	char *path;                     /* the file read, for messages; NULL if none */
	struct config_entry *entries;   /* file order; command-line additions last */
	size_t n, cap;
};

/* An empty configuration (no file, no entries). */
void config_init(struct config *cf);

/*
 * Parse text (len bytes, need not be NUL-terminated) as the file path and
 * add its entries to cf. keys is a getopt table ending in a zeroed entry;
 * only options with required_argument are keys; a no_argument option named
 * in the file is an error ("a command-line option"). 0, or -EINVAL with the
 * first problem in err ("PATH:LINE: ..."), or -ENOMEM. On error cf keeps
 * what it held before.
 */
int config_parse(struct config *cf, const char *path, const char *text, size_t len,
		 const struct option *keys, char *err, size_t errlen);

/*
 * Read the file at path and config_parse() it. -ENOENT when it does not
 * exist (err says so; whether that matters is the caller's decision), other
 * -errno when it cannot be read, -EFBIG beyond CONFIG_MAX_BYTES, or what
 * config_parse() returns.
 */
int config_read(struct config *cf, const char *path, const struct option *keys,
		char *err, size_t errlen);

/*
 * Set code (named key, which must outlive cf) to value (copied), as the
 * command line does: replaces an entry with the same code wherever it came
 * from (line becomes 0), else appends. 0 or -ENOMEM.
 */
int config_set(struct config *cf, int code, const char *key, const char *value);

/* The entry for code, or NULL. */
const struct config_entry *config_find(const struct config *cf, int code);

/*
 * Where an entry came from, for messages: "PATH:LINE" or "the command line".
 * Returns buf.
 */
const char *config_origin(const struct config *cf, const struct config_entry *e,
			  char *buf, size_t len);

/* Free the entries and the path; cf is then empty (config_init()). NULL-safe. */
void config_free(struct config *cf);

#endif
