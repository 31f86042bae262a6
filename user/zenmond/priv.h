/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * Privileges: the agent needs root's powers to load and attach its BPF
 * programs, pin its maps, bind its socket and set the socket's owner; once
 * that is done it keeps only the capabilities it still uses (PRIV_KEPT_CAPS,
 * each explained in priv.c) and, when a user is configured, runs as that
 * user. Raw capget/capset and prctl: no libcap (three system calls do not
 * need a library).
 */
#ifndef ZENMOND_PRIV_H
#define ZENMOND_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct priv_opts {
	bool have_user;        /* the user setting was given */
	uint32_t uid, gid;     /* that user and its primary group */
	const char *user;      /* its name, for messages */
};

/* The capabilities the running agent keeps (permitted), as a mask of
 * 1ULL << CAP_*, and those of them effective all the time. */
uint64_t priv_kept_caps(void);
uint64_t priv_effective_caps(void);

/*
 * Drop privileges, in this order, any failure fatal (a half-done drop must
 * not serve): narrow the bounding set to the kept capabilities (when the
 * agent holds CAP_SETPCAP; a service manager may have narrowed it already),
 * clear the ambient set, become the user (supplementary groups, then gid,
 * then uid, keeping the permitted set across the change), reduce the
 * permitted set to the kept capabilities, the effective set to those used
 * all the time and the inheritable set to none, set no_new_privs, then check that it all holds (and that uid
 * 0 cannot be taken back). Logs what went wrong and what to do, returns
 * -errno. A kept capability the agent never had is not an error: it logs
 * what the agent cannot do without it.
 */
int priv_drop(const struct priv_opts *o);

/* Does the agent hold cap in its effective set now? */
bool priv_has_cap(unsigned int cap);

/*
 * Make a permitted capability effective for one use: 1 when it was raised
 * (lower it again with priv_lower() right after), 0 when it was effective
 * already (leave it), -EPERM when it is not permitted, other -errno.
 */
int priv_raise(unsigned int cap);
void priv_lower(unsigned int cap);

/* "cap_sys_ptrace,cap_net_admin" for mask ("none" when empty), into buf. */
const char *priv_caps_text(uint64_t mask, char *buf, size_t len);

#endif
