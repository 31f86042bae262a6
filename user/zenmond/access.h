/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Access control: which targets a subscriber may monitor, and the
 * bookkeeping of its quotas. Pure: the caller brings the peer's credentials
 * (SO_PEERCRED, SO_PEERGROUPS), the targets' owners (/proc, sock_diag) and
 * the clock; only the access_parse_*() functions look names up (getpwnam,
 * getgrnam).
 *
 * The policy. A subscriber is *unrestricted* when its uid is 0 (root in the
 * agent's user namespace: SO_PEERCRED tells a uid, not capabilities), is in
 * allow-uids, or its primary or a supplementary group is in allow-groups;
 * it may monitor anything. Any other subscriber may monitor
 *   - a process it could signal: kill(2)'s rule (kill_ok_by_cred() in the
 *     kernel), the sender's uid equal to the target's real or saved uid.
 *     SO_PEERCRED reports the peer's effective uid at connect(): that is the
 *     uid checked (its real uid is not known to us);
 *   - a TCP socket it owns: the socket's uid (its inode's, as sock_diag and
 *     ss report it) equal to its uid;
 *   - anything it names by fd: a socket it passes, which it could only get
 *     by owning it or by its owner's choice, and a pidfd, for which
 *     pidfd_open(2) checks nothing but which, since Linux 6.15, tells its
 *     holder the exit status itself (PIDFD_GET_INFO, PIDFD_INFO_EXIT): the
 *     agent adds nothing to what the fd already reveals.
 * A target that is gone reveals nothing (noproc, noconnection) and is not
 * checked.
 */
#ifndef ZENMOND_ACCESS_H
#define ZENMOND_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pacer.h"
#include "registry.h"

/* Entries of allow-uids or allow-groups: a list for people, not a database. */
#define ACCESS_MAX_IDS 64

struct access_ids {
	uint32_t id[ACCESS_MAX_IDS];
	size_t n;
};

/*
 * Parse a list of users (groups false) or groups: names or numeric ids,
 * separated by commas and/or blanks ("0, 1000 alice"); "" is the empty
 * list. Names are resolved now (getpwnam, getgrnam). 0, or -EINVAL with the
 * problem in err ("no user 'bob'", "more than 64 ...").
 */
int access_parse_ids(const char *text, bool groups, struct access_ids *ret, char *err,
		     size_t errlen);
/* One user (groups false) or group: a name or a number. 0, or -EINVAL
 * with the problem in err. */
int access_parse_id(const char *text, bool groups, uint32_t *ret, char *err, size_t errlen);
/* One user to run as, by name or uid: it must have an entry in the user
 * database, for its primary group (*ret_gid). 0, or -EINVAL with err. */
int access_parse_user(const char *text, uint32_t *ret_uid, uint32_t *ret_gid, char *err,
		      size_t errlen);

/* The list as its setting reads back: "0,1000", "" when empty. */
void access_format_ids(const struct access_ids *ids, char *buf, size_t len);
bool access_ids_has(const struct access_ids *ids, uint32_t id);

/* What the kernel says about the process at the other end of a connection. */
struct access_peer {
	uint32_t uid;                /* effective uid at connect() */
	uint32_t gid;                /* effective gid at connect() */
	const uint32_t *groups;      /* supplementary groups (SO_PEERGROUPS) */
	size_t ngroups;
};

/* May peer monitor any target (see the policy above)? */
bool access_unrestricted(const struct access_peer *peer, const struct access_ids *allow_uids,
			 const struct access_ids *allow_groups);

/*
 * May a restricted subscriber of this uid monitor a target owned by owner:
 * signal a process whose real or saved uid it is, or own a socket?
 */
bool access_owns(uint32_t uid, const struct reg_owner *owner);

/* ---- quotas ------------------------------------------------------------- */

/* The limits; 0 means no limit. They bind restricted and unrestricted
 * subscribers alike, except uid 0's (access_quota_exempt()). */
struct access_quotas {
	uint32_t monitors_per_subscriber;  /* held: armed, or DOWN not yet read */
	uint32_t monitors_per_uid;         /* held by all connections of one uid */
	uint32_t connections_per_uid;
	uint32_t requests_per_second;      /* per subscriber, and per uid over all its
					    * subscribers; the burst is one second's worth */
	uint32_t queued_bytes_per_uid;     /* answers unsent to all its connections */
};

/* Root could exhaust the host without the agent's help: quotas leave it alone. */
static inline bool access_quota_exempt(uint32_t uid)
{
	return uid == 0;
}

enum access_verdict {
	ACCESS_OK = 0,
	ACCESS_SUBSCRIBER_FULL,   /* monitors_per_subscriber reached */
	ACCESS_UID_FULL,          /* monitors_per_uid reached */
};

/* May a subscriber holding sub_held monitors, whose uid holds uid_held,
 * add one more? */
enum access_verdict access_monitor_quota(const struct access_quotas *q, size_t sub_held,
					 size_t uid_held);

/* One subscriber's request budget: a token bucket of requests_per_second. */
struct access_rate {
	struct token_bucket tb;
	uint32_t rate;               /* what tb was made with; 0: unlimited */
};

/* Fill the bucket for rate requests per second (0: unlimited) at now_ns. */
void access_rate_init(struct access_rate *r, uint32_t rate, uint64_t now_ns);
/* Take one request's token: false when the subscriber is over its rate. */
bool access_rate_take(struct access_rate *r, uint64_t now_ns);

/*
 * Per-uid counts: connections, and monitors held by all of them (the
 * registry keeps .monitors, through registry_sub_set_counter()). An entry
 * lives while the uid has a connection or a monitor.
 */
struct access_uid {
	uint32_t uid;
	uint32_t connections;
	size_t monitors;
	/* Its connections' requests together: more connections are not more
	 * requests (rate 0, unlimited, until client.c sets it). */
	struct access_rate rate;
	size_t queued_bytes;         /* answers unsent to its connections (client.c) */
	struct access_uid *next;
};

/* All uids with a connection. A zeroed table is empty and ready. */
struct access_table {
	struct access_uid *head;
	size_t n;
};

/* uid's entry, made (with nothing counted) if it has none; NULL on -ENOMEM. */
struct access_uid *access_uid_get(struct access_table *t, uint32_t uid);
/* Free u if it counts nothing any more. NULL-safe. */
void access_uid_release(struct access_table *t, struct access_uid *u);
void access_table_free(struct access_table *t);

#endif
