// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* Access control and quota bookkeeping: see access.h. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"

/* ---- id lists ----------------------------------------------------------- */

static bool access_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

/* A numeric id: decimal digits only, below (uid_t)-1 (which means "none"). */
static int access_parse_num(const char *s, uint32_t *ret)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v >= UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

/* One name or number, NUL-terminated. */
static int access_parse_one(const char *word, bool groups, uint32_t *ret, char *err, size_t errlen)
{
	if (access_parse_num(word, ret) == 0)
		return 0;
	if (groups) {
		const struct group *g = getgrnam(word);

		if (g) {
			*ret = (uint32_t)g->gr_gid;
			return 0;
		}
	} else {
		const struct passwd *pw = getpwnam(word);

		if (pw) {
			*ret = (uint32_t)pw->pw_uid;
			return 0;
		}
	}
	snprintf(err, errlen, "no %s '%s' on this host (give a name from %s or a number)",
		 groups ? "group" : "user", word, groups ? "/etc/group" : "/etc/passwd");
	return -EINVAL;
}

int access_parse_ids(const char *text, bool groups, struct access_ids *ret, char *err,
		     size_t errlen)
{
	struct access_ids ids = { .n = 0 };
	const char *p = text;

	while (*p) {
		char word[256];
		size_t n = 0;
		uint32_t id;

		while (access_sep(*p))
			p++;
		if (!*p)
			break;
		while (p[n] && !access_sep(p[n]))
			n++;
		if (n >= sizeof(word)) {
			snprintf(err, errlen, "'%.40s...' is too long for a %s name", p,
				 groups ? "group" : "user");
			return -EINVAL;
		}
		memcpy(word, p, n);
		word[n] = '\0';
		p += n;
		if (access_parse_one(word, groups, &id, err, errlen) < 0)
			return -EINVAL;
		if (access_ids_has(&ids, id))
			continue;
		if (ids.n == ACCESS_MAX_IDS) {
			snprintf(err, errlen, "more than %d %s: allow a group instead", ACCESS_MAX_IDS,
				 groups ? "groups" : "users");
			return -EINVAL;
		}
		ids.id[ids.n++] = id;
	}
	*ret = ids;
	return 0;
}

int access_parse_user(const char *text, uint32_t *ret_uid, uint32_t *ret_gid, char *err,
		      size_t errlen)
{
	const struct passwd *pw;
	uint32_t uid;

	pw = access_parse_num(text, &uid) == 0 ? getpwuid((uid_t)uid) : getpwnam(text);
	if (!pw) {
		snprintf(err, errlen, "no user '%s' in the user database (/etc/passwd): give an "
			 "existing user, whose primary group the agent takes too", text);
		return -EINVAL;
	}
	*ret_uid = (uint32_t)pw->pw_uid;
	*ret_gid = (uint32_t)pw->pw_gid;
	return 0;
}

int access_parse_id(const char *text, bool groups, uint32_t *ret, char *err, size_t errlen)
{
	return access_parse_one(text, groups, ret, err, errlen);
}

void access_format_ids(const struct access_ids *ids, char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < ids->n; i++) {
		int n = snprintf(buf + off, len - off, "%s%u", i ? "," : "", ids->id[i]);

		if (n < 0 || (size_t)n >= len - off)
			return; /* cut: the caller's buffer is for messages */
		off += (size_t)n;
	}
}

bool access_ids_has(const struct access_ids *ids, uint32_t id)
{
	for (size_t i = 0; i < ids->n; i++)
		if (ids->id[i] == id)
			return true;
	return false;
}

/* ---- policy ------------------------------------------------------------- */

bool access_unrestricted(const struct access_peer *peer, const struct access_ids *allow_uids,
			 const struct access_ids *allow_groups)
{
	if (peer->uid == 0 || access_ids_has(allow_uids, peer->uid))
		return true;
	if (allow_groups->n == 0)
		return false;
	if (access_ids_has(allow_groups, peer->gid))
		return true;
	for (size_t i = 0; i < peer->ngroups; i++)
		if (access_ids_has(allow_groups, peer->groups[i]))
			return true;
	return false;
}

bool access_owns(uint32_t uid, const struct reg_owner *owner)
{
	return uid == owner->ruid || uid == owner->suid;
}

/* ---- quotas ------------------------------------------------------------- */

enum access_verdict access_monitor_quota(const struct access_quotas *q, size_t sub_held,
					 size_t uid_held)
{
	if (q->monitors_per_subscriber && sub_held >= q->monitors_per_subscriber)
		return ACCESS_SUBSCRIBER_FULL;
	if (q->monitors_per_uid && uid_held >= q->monitors_per_uid)
		return ACCESS_UID_FULL;
	return ACCESS_OK;
}

void access_rate_init(struct access_rate *r, uint32_t rate, uint64_t now_ns)
{
	r->rate = rate;
	tb_init(&r->tb, rate, rate, now_ns);
}

bool access_rate_take(struct access_rate *r, uint64_t now_ns)
{
	if (!r->rate)
		return true;
	if (tb_available(&r->tb, now_ns) < 1)
		return false;
	tb_take(&r->tb, 1);
	return true;
}

struct access_uid *access_uid_get(struct access_table *t, uint32_t uid)
{
	struct access_uid *u;

	for (u = t->head; u; u = u->next)
		if (u->uid == uid)
			return u;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	u->next = t->head;
	t->head = u;
	t->n++;
	return u;
}

void access_uid_release(struct access_table *t, struct access_uid *u)
{
	if (!u || u->connections || u->monitors)
		return;
	for (struct access_uid **pp = &t->head; *pp; pp = &(*pp)->next) {
		if (*pp == u) {
			*pp = u->next;
			t->n--;
			free(u);
			return;
		}
	}
}

void access_table_free(struct access_table *t)
{
	while (t->head) {
		struct access_uid *u = t->head;

		t->head = u->next;
		free(u);
	}
	t->n = 0;
}
