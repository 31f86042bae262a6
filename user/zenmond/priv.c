// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Dropping privileges after set-up: see priv.h.
 *
 * What the running agent does, and what each step needs once the BPF
 * programs are attached, the maps pinned and the socket bound:
 *   - map lookups, updates, deletes and ring-buffer reads on the map fds it
 *     holds: nothing (since Linux 6.5 the bpf(2) permission checks are at
 *     map creation and program load, not on fds already held, whatever
 *     kernel.unprivileged_bpf_disabled says);
 *   - detaching its links and unpinning its maps at exit: nothing but write
 *     access to the pin directory, which it owns (main.c hands it to the
 *     configured user);
 *   - /proc/PID/stat, /proc/PID/status and /proc/PID/task of any process:
 *     nothing, they are world-readable; but the exit status of a zombie
 *     (stat field 52) reads as 0 unless the reader may ptrace the process;
 *   - pidfd_open(2) of any process: nothing;
 *   - sock_diag dumps of TCP sockets, SO_COOKIE on a passed socket:
 *     nothing;
 *   - accepting clients, SO_PEERCRED, SO_PEERGROUPS: nothing;
 *   - chmod of its socket on SIGHUP: owning the socket (it does: the
 *     socket's owner defaults to the user the agent runs as);
 *   - growing a slow client's socket buffer past net.core.wmem_max
 *     (SO_SNDBUFFORCE) so that its last ERROR fits: CAP_NET_ADMIN;
 *   - no exec, no new files outside its directories, no privileged port.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "log.h"
#include "priv.h"

/*
 * The capabilities kept, and why. Each was checked by running the whole
 * integration suite against an agent holding only these (the harness starts
 * every agent as root, so every test runs after this drop). One used all the
 * time stays effective; one used rarely stays only permitted, raised around
 * its one use (priv_raise()), so that no other code path acts with it.
 */
static const struct {
	unsigned int cap;
	bool effective;        /* effective all the time, not only when raised */
	const char *name;
	const char *without;   /* what goes wrong without it, for the log */
} priv_kept[] = {
	/*
	 * A process that died just before its MONITOR arrived is a zombie
	 * whose exit status /proc/PID/stat shows only to a reader that may
	 * ptrace it (proc_pid_stat(): ptrace_may_access(PTRACE_MODE_READ));
	 * others read 0. Without it such a monitor gets noproc instead of the
	 * real exit status. The capability lets the agent read other
	 * processes' memory, which is the price of that answer.
	 */
	{ CAP_SYS_PTRACE, true, "cap_sys_ptrace",
	  "a process found already dead (a zombie) when monitored is reported as noproc, "
	  "not with its exit status" },
	/*
	 * A subscriber dropped for not reading (--stall-timeout, --max-queued)
	 * gets a last ERROR right after the frame it is in the middle of; its
	 * socket is full by then, so the agent grows the socket's buffer by
	 * what it must still send. Past net.core.wmem_max (212992 bytes by
	 * default: less than a full socket and a frame) only SO_SNDBUFFORCE
	 * can, which takes CAP_NET_ADMIN. That capability reconfigures the
	 * host's network: it is raised for that one setsockopt() and lowered
	 * again (client.c), never effective otherwise.
	 */
	{ CAP_NET_ADMIN, false, "cap_net_admin",
	  "a subscriber dropped for not reading may find end-of-file without the ERROR "
	  "that says why" },
};

#define PRIV_NKEPT (sizeof(priv_kept) / sizeof(priv_kept[0]))

/* Capability numbers run 0..63 in the two 32-bit words of capget(2). */
#define PRIV_CAP_MAX 64U

struct priv_caps {
	uint64_t effective, permitted, inheritable;
};

uint64_t priv_kept_caps(void)
{
	uint64_t mask = 0;

	for (size_t i = 0; i < PRIV_NKEPT; i++)
		mask |= 1ULL << priv_kept[i].cap;
	return mask;
}

uint64_t priv_effective_caps(void)
{
	uint64_t mask = 0;

	for (size_t i = 0; i < PRIV_NKEPT; i++)
		if (priv_kept[i].effective)
			mask |= 1ULL << priv_kept[i].cap;
	return mask;
}

static int priv_get(struct priv_caps *ret)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	ret->effective = data[0].effective | (uint64_t)data[1].effective << 32;
	ret->permitted = data[0].permitted | (uint64_t)data[1].permitted << 32;
	ret->inheritable = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
	return 0;
}

static int priv_set(const struct priv_caps *c)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {
		{ .effective = (uint32_t)c->effective, .permitted = (uint32_t)c->permitted,
		  .inheritable = (uint32_t)c->inheritable },
		{ .effective = (uint32_t)(c->effective >> 32),
		  .permitted = (uint32_t)(c->permitted >> 32),
		  .inheritable = (uint32_t)(c->inheritable >> 32) },
	};

	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

bool priv_has_cap(unsigned int cap)
{
	struct priv_caps c;

	return cap < PRIV_CAP_MAX && priv_get(&c) == 0 && (c.effective & (1ULL << cap));
}

int priv_raise(unsigned int cap)
{
	struct priv_caps c;
	int r;

	if (cap >= PRIV_CAP_MAX)
		return -EINVAL;
	r = priv_get(&c);
	if (r < 0)
		return r;
	if (c.effective & (1ULL << cap))
		return 0;
	if (!(c.permitted & (1ULL << cap)))
		return -EPERM;
	c.effective |= 1ULL << cap;
	r = priv_set(&c);
	return r < 0 ? r : 1;
}

void priv_lower(unsigned int cap)
{
	struct priv_caps c;

	if (cap >= PRIV_CAP_MAX || priv_get(&c) < 0 || !(c.effective & (1ULL << cap)))
		return;
	c.effective &= ~(1ULL << cap);
	if (priv_set(&c) < 0)
		log_error("cannot lower capability %u again after using it: %s", cap, strerror(errno));
}

const char *priv_caps_text(uint64_t mask, char *buf, size_t len)
{
	size_t off = 0;

	snprintf(buf, len, "none");
	for (unsigned int cap = 0; cap < PRIV_CAP_MAX; cap++) {
		const char *name = NULL;
		char num[16];
		int n;

		if (!(mask & (1ULL << cap)))
			continue;
		for (size_t i = 0; i < PRIV_NKEPT; i++)
			if (priv_kept[i].cap == cap)
				name = priv_kept[i].name;
		if (!name) {
			snprintf(num, sizeof(num), "cap_%u", cap);
			name = num;
		}
		n = snprintf(buf + off, len - off, "%s%s", off ? "," : "", name);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

/*
 * Narrow the bounding set to keep, so that even an exec (the agent does
 * none) could not give back what was dropped: root regains every
 * capability of the bounding set on exec, no_new_privs or not. Needs
 * CAP_SETPCAP; without it the bounding set stays as the service manager
 * left it (dist/zenmond.service narrows it too).
 */
static int priv_narrow_bounding(uint64_t keep, const struct priv_caps *now)
{
	if (!(now->effective & (1ULL << CAP_SETPCAP))) {
		log_info("not narrowing the capability bounding set: the agent lacks CAP_SETPCAP "
			 "(the service manager's bounding set stays in force)");
		return 0;
	}
	for (unsigned int cap = 0; cap < PRIV_CAP_MAX; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (in < 0)
			break; /* EINVAL: past the kernel's last capability */
		if (in == 0 || (keep & (1ULL << cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			int r = -errno;

			log_error("cannot drop capability %u from the bounding set: %s", cap,
				  strerror(errno));
			return r;
		}
	}
	return 0;
}

/* Become o's user: supplementary groups, gid, uid, in that order (each
 * later step needs the privilege the earlier ones keep). */
static int priv_become_user(const struct priv_opts *o)
{
	gid_t gid = (gid_t)o->gid;

	/* The permitted set survives the uid change only with KEEPCAPS. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
		int e = errno;

		log_error("cannot keep capabilities across the change to user %s: prctl(PR_SET_KEEPCAPS): %s",
			  o->user, strerror(e));
		return -e;
	}
	if (setgroups(1, &gid) < 0) {
		int e = errno;

		log_error("cannot set the groups of user %s (gid %u): %s (the agent needs root or "
			  "CAP_SETGID to change user)", o->user, o->gid, strerror(e));
		return -e;
	}
	if (setresgid(gid, gid, gid) < 0) {
		int e = errno;

		log_error("cannot change to group %u of user %s: %s", o->gid, o->user, strerror(e));
		return -e;
	}
	if (setresuid((uid_t)o->uid, (uid_t)o->uid, (uid_t)o->uid) < 0) {
		int e = errno;

		log_error("cannot change to user %s (uid %u): %s (the agent needs root or CAP_SETUID "
			  "to change user)", o->user, o->uid, strerror(e));
		return -e;
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
		int e = errno;

		log_error("prctl(PR_SET_KEEPCAPS, 0): %s", strerror(e));
		return -e;
	}
	return 0;
}

/* Trust, but verify (bgpd): what the kernel says now is what was asked. */
static int priv_verify(const struct priv_opts *o, const struct priv_caps *want)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	struct priv_caps c;

	if (priv_get(&c) < 0 || c.effective != want->effective || c.permitted != want->permitted ||
	    c.inheritable) {
		log_error("capabilities did not drop as asked (effective %#llx, permitted %#llx, "
			  "inheritable %#llx; want %#llx, %#llx, 0)", (unsigned long long)c.effective,
			  (unsigned long long)c.permitted, (unsigned long long)c.inheritable,
			  (unsigned long long)want->effective, (unsigned long long)want->permitted);
		return -EPERM;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		log_error("no_new_privs is not set after prctl(PR_SET_NO_NEW_PRIVS)");
		return -EPERM;
	}
	if (!o->have_user)
		return 0;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0) {
		log_error("cannot read the agent's uids and gids back: %s", strerror(errno));
		return -EPERM;
	}
	if (ru != o->uid || eu != o->uid || su != o->uid || rg != o->gid || eg != o->gid ||
	    sg != o->gid) {
		log_error("the change to user %s did not hold (uids %u/%u/%u, gids %u/%u/%u)", o->user,
			  (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg,
			  (unsigned)sg);
		return -EPERM;
	}
	if (o->uid != 0 && setresuid(0, 0, 0) == 0) {
		log_error("the agent could become root again after changing to user %s", o->user);
		return -EPERM;
	}
	return 0;
}

int priv_drop(const struct priv_opts *o)
{
	uint64_t keep = priv_kept_caps();
	struct priv_caps now, want;
	char buf[256];
	int r;

	r = priv_get(&now);
	if (r < 0) {
		log_error("cannot read the agent's capabilities (capget): %s", strerror(-r));
		return r;
	}
	r = priv_narrow_bounding(keep, &now);
	if (r < 0)
		return r;
	/* EINVAL: a kernel before 4.3 has no ambient set to clear. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		int e = errno;

		log_error("cannot clear the ambient capabilities: %s", strerror(e));
		return -e;
	}
	if (o->have_user) {
		r = priv_become_user(o);
		if (r < 0)
			return r;
	}
	want = (struct priv_caps){ .effective = priv_effective_caps() & now.permitted,
				   .permitted = keep & now.permitted };
	r = priv_set(&want);
	if (r < 0) {
		log_error("cannot drop capabilities to %s: capset: %s",
			  priv_caps_text(want.permitted, buf, sizeof(buf)), strerror(-r));
		return r;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int e = errno;

		log_error("cannot set no_new_privs: %s", strerror(e));
		return -e;
	}
	r = priv_verify(o, &want);
	if (r < 0)
		return r;

	for (size_t i = 0; i < PRIV_NKEPT; i++)
		if (!(want.permitted & (1ULL << priv_kept[i].cap)))
			log_warn("the agent was started without %s: %s (grant it, or run as root)",
				 priv_kept[i].name, priv_kept[i].without);
	if (o->have_user)
		log_info("dropped privileges: running as user %s (uid %u, gid %u) with capabilities %s",
			 o->user, o->uid, o->gid, priv_caps_text(want.permitted, buf, sizeof(buf)));
	else
		log_info("dropped privileges: running as uid %u with capabilities %s",
			 (unsigned)getuid(), priv_caps_text(want.permitted, buf, sizeof(buf)));
	log_debug("effective all the time: %s; the others only while in use",
		  priv_caps_text(want.effective, buf, sizeof(buf)));
	return 0;
}
