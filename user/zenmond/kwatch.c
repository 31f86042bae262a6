// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * kwatch: the agent's hold on the kernel side (see kwatch.h). Loads
 * bpf/zenmon.bpf.c from the embedded skeleton, pins its maps under a locked
 * directory, attaches the programs and wraps the maps and ring buffer.
 *
 * Errors are logged here, once, because only this module knows what the user
 * should do about them (become root, mount bpffs, enable BTF ...); callers get
 * -errno and need not log again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "zenmon.skel.h"

#include "kwatch.h"
#include "log.h"

#define KWATCH_BPFFS "/sys/fs/bpf"
#define KWATCH_BTF "/sys/kernel/btf/vmlinux"
#define KWATCH_PRIV_HINT "run as root or grant CAP_BPF+CAP_PERFMON"

/*
 * What we pin: the maps, by name, and a link per program, "link_" and the
 * program's name (bpffs refuses names with a dot). A new link is pinned
 * under its name with KWATCH_LINK_TMP appended and then renamed over the old
 * one (kwatch_pin_links()); a leftover of that is removed at start.
 */
static const char *const kwatch_pin_names[] = { "zm_procs", "zm_tcp", "zm_events", "zm_stats",
						 "zm_exit_gen" };
#define KWATCH_NPINS (sizeof(kwatch_pin_names) / sizeof(kwatch_pin_names[0]))
static const char *const kwatch_link_names[] = { "link_zm_process_exit", "link_zm_tcp_close",
						 "link_zm_tcp_rst" };
#define KWATCH_NLINKS (sizeof(kwatch_link_names) / sizeof(kwatch_link_names[0]))
#define KWATCH_LINK_TMP "_new"

/* What kwatch_on_sample() returns to make libbpf stop: any negative value. */
#define KWATCH_DRAIN_STOP (-ECANCELED)

/* Pending deletes per map before they are flushed regardless of the loop. */
#define KWATCH_DEL_BATCH 4096
/* zm_exit_gen as mapped: an array's elements sit 8 bytes apart. */
#define KWATCH_EXIT_GEN_LEN ((size_t)ZM_EXIT_GEN_SLOTS * sizeof(uint64_t))

/* Entries per BPF_MAP_LOOKUP_BATCH call of a map scan. */
#define KWATCH_SCAN_BATCH 1024

struct kwatch {
	struct zenmon_bpf *skel;
	struct ring_buffer *rb;
	kwatch_event_fn on_event;
	void *ctx;
	kwatch_tcp_fn on_tcp;
	void *tcp_ctx;
	bool warned_no_tcp; /* a TCP record came with no handler set */
	struct kwatch_counters counters;

	int procs_fd;
	int tcp_fd;
	int stats_fd;
	int ncpus;
	struct zm_kstats *percpu; /* ncpus slots, for kwatch_read_stats() */

	/*
	 * A read-only view of the ring's consumer page and producer page. libbpf
	 * 1.1 has no ring__avail_data_size(); kwatch_drain() needs to know
	 * whether a record is still reserved after it consumed everything
	 * committed (see the wakeup policy in bpf/zenmon.bpf.c).
	 */
	void *rb_pos;
	size_t rb_pos_len;
	/* zm_exit_gen, mapped read-only (kwatch_exit_gen()). */
	const uint64_t *exit_gen;
	size_t page_size;

	/*
	 * Deletes of watches wait here and reach the kernel as one
	 * BPF_MAP_DELETE_BATCH per map (kwatch_flush_deletes()): a mass death
	 * releases thousands of watches in one loop pass, and a bpf() call
	 * apiece was most of the agent's time per DOWN in `zm-bench massdeath`.
	 */
	struct zm_proc_key del_procs[KWATCH_DEL_BATCH];
	__u64 del_tcp[KWATCH_DEL_BATCH];
	uint32_t n_del_procs, n_del_tcp;
	uint32_t drained; /* records kwatch_on_sample() saw in this drain */

	uint64_t wakeup_interval_ns;
	int lock_fd;    /* the pin directory, flock()ed; -1 until we hold it */
	char *pin_dir;

	/* What kwatch_open() found pinned: maps reused, maps that did not fit
	 * (created afresh), links of a previous agent's programs replaced. */
	unsigned int maps_reused, maps_replaced, links_replaced;
};

/* ---- libbpf messages ---------------------------------------------------- */

/*
 * libbpf's print hook is process-wide and has no context pointer. The agent
 * has one kwatch and one thread, so the verifier's verdict from the last
 * failed load is kept here for kwatch_open() to quote.
 */
static char kwatch_verifier_reason[256];
static char kwatch_verifier_prog[64];
static char kwatch_libbpf_last[256];

static void kwatch_copy_line(char *dst, size_t dstsz, const char *src, size_t len)
{
	while (len > 0 && (src[len - 1] == '\n' || src[len - 1] == ' '))
		len--;
	if (len >= dstsz)
		len = dstsz - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* An instruction ("12: (61) r1 = ...") or source line ("; x = y; @ f.c:3"). */
static bool kwatch_is_insn_line(const char *line)
{
	const char *p = line;

	if (*p == ';')
		return true;
	while (*p >= '0' && *p <= '9')
		p++;
	return p > line && *p == ':';
}

/*
 * From a verifier log, the words that say why. The verifier ends with
 * "processed N insns ..."; before that come one or two lines of verdict
 * ("invalid access to memory, mem_size=32 off=40 size=1", "R0 min value is
 * outside ...") after the last instruction it looked at. Keep the last two.
 */
static void kwatch_note_verifier_log(const char *log)
{
	const char *line = strchrnul(log, '\n'); /* skip the BEGIN banner */
	const char *why[2] = { NULL, NULL };
	size_t why_len[2] = { 0, 0 };

	while (*line) {
		const char *end = strchrnul(line, '\n');

		if (strncmp(line, "processed ", 10) == 0 ||
		    strncmp(line, "-- END PROG LOAD LOG --", 23) == 0)
			break;
		if (end == line) {
			/* blank */
		} else if (kwatch_is_insn_line(line)) {
			why[0] = why[1] = NULL;
		} else {
			why[0] = why[1];
			why_len[0] = why_len[1];
			why[1] = line;
			why_len[1] = (size_t)(end - line);
		}
		line = *end ? end + 1 : end;
	}
	if (why[0] && why[1])
		snprintf(kwatch_verifier_reason, sizeof(kwatch_verifier_reason), "%.*s; %.*s",
			 (int)why_len[0], why[0], (int)why_len[1], why[1]);
	else if (why[1])
		kwatch_copy_line(kwatch_verifier_reason, sizeof(kwatch_verifier_reason), why[1],
				 why_len[1]);
}

static int kwatch_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL;
	const char *line, *log;
	va_list aq;
	int n;

	/*
	 * libbpf's debug level traces every CO-RE relocation: hundreds of lines
	 * nobody needs to run zenmond. Warnings (which carry the verifier log)
	 * and info go to our debug level.
	 */
	if (level == LIBBPF_DEBUG)
		return 0;
	/* Warnings are formatted even when not shown: we may quote them. */
	if (level != LIBBPF_WARN && log_get_level() < LOG_LVL_DEBUG)
		return 0;

	va_copy(aq, ap);
	n = vasprintf(&msg, fmt, aq);
	va_end(aq);
	if (n < 0)
		return 0;

	if (level == LIBBPF_WARN) {
		log = strstr(msg, "-- BEGIN PROG LOAD LOG --");
		if (log) {
			/* "libbpf: prog 'zm_tcp_close': -- BEGIN PROG LOAD LOG --" */
			const char *name = strstr(msg, "prog '");

			kwatch_note_verifier_log(log);
			if (name && name < log) {
				name += 6;
				kwatch_copy_line(kwatch_verifier_prog, sizeof(kwatch_verifier_prog),
						 name, strcspn(name, "'"));
			}
		}
		else
			kwatch_copy_line(kwatch_libbpf_last, sizeof(kwatch_libbpf_last), msg,
					 strlen(msg));
	}

	/* One log line per line: the verifier log is many. */
	for (line = msg; *line;) {
		const char *end = strchrnul(line, '\n');

		if (end > line)
			log_debug("%s%.*s", strncmp(line, "libbpf: ", 8) ? "libbpf: " : "",
				  (int)(end - line), line);
		line = *end ? end + 1 : end;
	}
	free(msg);
	return n;
}

/* ---- preflight ---------------------------------------------------------- */

static bool kwatch_has_cap(const struct __user_cap_data_struct *data, unsigned int cap)
{
	return data[cap / 32].effective & (1U << (cap % 32));
}

/*
 * Loading a tracing program needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN,
 * which also covers kernels before 5.8). Checked up front because the kernel's
 * answer, EPERM from bpf(2), does not say which step or what to grant.
 */
static int kwatch_check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0; /* cannot tell: let the kernel decide */
	if (kwatch_has_cap(data, CAP_SYS_ADMIN) ||
	    (kwatch_has_cap(data, CAP_BPF) && kwatch_has_cap(data, CAP_PERFMON)))
		return 0;
	if (geteuid() != 0)
		log_error("cannot load BPF programs: not running as root (euid %u) and without "
			  "CAP_BPF+CAP_PERFMON (%s)",
			  (unsigned int)geteuid(), KWATCH_PRIV_HINT);
	else
		log_error("cannot load BPF programs: running as root but without "
			  "CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN (were capabilities dropped by "
			  "the service manager? grant CAP_BPF+CAP_PERFMON)");
	return -EPERM;
}

static bool kwatch_is_bpffs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && (unsigned long)sfs.f_type == BPF_FS_MAGIC;
}

/* statfs() the nearest existing ancestor of path (path itself included). */
static int kwatch_statfs_existing(const char *path, struct statfs *ret)
{
	char buf[PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (;;) {
		if (statfs(buf, ret) == 0)
			return 0;
		if (errno != ENOENT)
			return -errno;
		slash = strrchr(buf, '/');
		if (!slash)
			return statfs(".", ret) == 0 ? 0 : -errno;
		if (slash == buf) {
			/* "/x" missing: the root exists */
			return statfs("/", ret) == 0 ? 0 : -errno;
		}
		*slash = '\0';
	}
}

/*
 * Pins live on a bpf filesystem. Mount the usual one if nothing is there
 * (a minimal system or container may not have it), then insist that pin_dir
 * is on one: pinning elsewhere fails with an EPERM that explains nothing.
 */
static int kwatch_ensure_bpffs(const char *pin_dir)
{
	struct statfs sfs;
	int mount_err = 0;
	int err;

	if (!kwatch_is_bpffs(KWATCH_BPFFS)) {
		if (mount("bpf", KWATCH_BPFFS, "bpf", 0, "mode=0700") == 0)
			log_info("mounted bpffs on " KWATCH_BPFFS);
		else
			mount_err = -errno;
	}

	err = kwatch_statfs_existing(pin_dir, &sfs);
	if (err < 0) {
		log_error("cannot use pin directory %s: %s", pin_dir, strerror(-err));
		return err;
	}
	if ((unsigned long)sfs.f_type != BPF_FS_MAGIC) {
		if (mount_err)
			log_error("pin directory %s is not on a bpf filesystem, and mounting one on "
				  KWATCH_BPFFS " failed: %s (mount it: mount -t bpf bpf " KWATCH_BPFFS
				  ")",
				  pin_dir, strerror(-mount_err));
		else
			log_error("pin directory %s is not on a bpf filesystem (use a directory under "
				  KWATCH_BPFFS ", or mount one: mount -t bpf bpf DIR)",
				  pin_dir);
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p with mode 0700 for the directories we create. */
static int kwatch_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * flock() the open pin directory fd, without waiting. On failure fd is
 * closed and the reason logged: busy_hint says what to do when another
 * zenmond holds it (-EBUSY). 0 or -errno.
 */
static int kwatch_flock_dir(int fd, const char *pin_dir, const char *busy_hint)
{
	int err;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	err = -errno;
	close(fd);
	if (err == -EWOULDBLOCK) {
		log_error("pin directory %s is in use by %s", pin_dir, busy_hint);
		return -EBUSY;
	}
	log_error("cannot lock pin directory %s: %s", pin_dir, strerror(-err));
	return err;
}

/*
 * Take the pin directory: create it, open it and flock() it. A previous agent
 * removes the directory when it exits, so we may lock a directory that was
 * just unlinked under us; compare with what the path names now and retry.
 */
static int kwatch_lock_dir(const char *pin_dir, int *ret_fd)
{
	struct stat by_fd, by_path;
	int fd = -1;
	int err;

	for (int tries = 0; tries < 5; tries++) {
		err = kwatch_mkdir_p(pin_dir);
		if (err < 0) {
			log_error("cannot create pin directory %s: %s%s", pin_dir, strerror(-err),
				  err == -EACCES || err == -EPERM ?
					  " (run as root, or give --pin-dir a bpffs directory you can write)" :
					  "");
			return err;
		}
		fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			log_error("cannot open pin directory %s: %s", pin_dir, strerror(-err));
			return err;
		}
		err = kwatch_flock_dir(fd, pin_dir,
				       "another zenmond (stop it, or give this one --pin-dir)");
		if (err < 0)
			return err;
		if (fstat(fd, &by_fd) == 0 && stat(pin_dir, &by_path) == 0 &&
		    by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino) {
			*ret_fd = fd;
			return 0;
		}
		close(fd); /* raced with the previous owner's rmdir */
	}
	log_error("cannot lock pin directory %s: it keeps being replaced", pin_dir);
	return -EAGAIN;
}

/*
 * We hold the lock, so no agent is running on this directory. What a
 * previous one pinned stays and is reused (kwatch_check_pinned_maps(),
 * kwatch_pin_links()), except a link pinned under a temporary name by an
 * agent that died between pinning and renaming it: the link under the real
 * name is the one that counts.
 */
static int kwatch_remove_stale_tmp_links(int dir_fd, const char *pin_dir)
{
	char name[64];

	for (size_t i = 0; i < KWATCH_NLINKS; i++) {
		snprintf(name, sizeof(name), "%s" KWATCH_LINK_TMP, kwatch_link_names[i]);
		if (unlinkat(dir_fd, name, 0) == 0) {
			log_info("removed %s/%s, a link a previous zenmond pinned and did not finish "
				 "putting in place", pin_dir, name);
			continue;
		}
		if (errno == ENOENT)
			continue;
		log_error("cannot remove the leftover pin %s/%s: %s (remove it by hand: rm %s/%s)",
			  pin_dir, name, strerror(errno), pin_dir, name);
		return -errno;
	}
	return 0;
}

/*
 * Are two BTF types the same layout? Same kind, size and name, and for a
 * struct or union the same members (names, offsets, types), for an array
 * the same length and element. Typedefs and qualifiers are looked through
 * only where both sides have them: a rename of a typedef is a change too.
 */
static bool kwatch_btf_same(const struct btf *a, __u32 ia, const struct btf *b, __u32 ib, int depth)
{
	const struct btf_type *ta = btf__type_by_id(a, ia);
	const struct btf_type *tb = btf__type_by_id(b, ib);
	const char *na, *nb;

	if (!ta || !tb || depth > 16)
		return false;
	if (btf_kind(ta) != btf_kind(tb) || btf_vlen(ta) != btf_vlen(tb))
		return false;
	na = btf__name_by_offset(a, ta->name_off);
	nb = btf__name_by_offset(b, tb->name_off);
	if (strcmp(na ? na : "", nb ? nb : "") != 0)
		return false;
	switch (btf_kind(ta)) {
	case BTF_KIND_INT:
		return ta->size == tb->size && btf_int_encoding(ta) == btf_int_encoding(tb) &&
		       btf_int_bits(ta) == btf_int_bits(tb) && btf_int_offset(ta) == btf_int_offset(tb);
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		return ta->size == tb->size;
	case BTF_KIND_ARRAY:
		return btf_array(ta)->nelems == btf_array(tb)->nelems &&
		       kwatch_btf_same(a, btf_array(ta)->type, b, btf_array(tb)->type, depth + 1);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION: {
		const struct btf_member *ma = btf_members(ta), *mb = btf_members(tb);

		if (ta->size != tb->size)
			return false;
		for (__u16 i = 0; i < btf_vlen(ta); i++) {
			na = btf__name_by_offset(a, ma[i].name_off);
			nb = btf__name_by_offset(b, mb[i].name_off);
			if (strcmp(na ? na : "", nb ? nb : "") != 0 ||
			    btf_member_bit_offset(ta, i) != btf_member_bit_offset(tb, i) ||
			    btf_member_bitfield_size(ta, i) != btf_member_bitfield_size(tb, i) ||
			    !kwatch_btf_same(a, ma[i].type, b, mb[i].type, depth + 1))
				return false;
		}
		return true;
	}
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
		return kwatch_btf_same(a, ta->type, b, tb->type, depth + 1);
	default:
		return ta->size == tb->size;
	}
}

/*
 * Can the map pinned at fd serve as ours? The kernel's description must
 * match the skeleton's (type, sizes, capacity, flags: what libbpf also
 * checks), and so must the value's BTF type, member by member, because an
 * upgrade may move fields without changing a size. Reading a map's BTF
 * takes CAP_SYS_ADMIN (BPF_BTF_GET_FD_BY_ID); without it the sizes are all
 * that is compared, and kern.h asks that a change of a field's meaning
 * come with a change of its name or size. false with the difference in why.
 */
static bool kwatch_map_compatible(struct kwatch *k, const struct bpf_map *map, int fd, char *why,
				  size_t whylen)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	struct btf *pinned_btf;
	bool same;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		snprintf(why, whylen, "cannot read it: %s", strerror(errno));
		return false;
	}
	if (info.type != (__u32)bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map) ||
	    info.max_entries != bpf_map__max_entries(map) ||
	    info.map_flags != bpf_map__map_flags(map)) {
		snprintf(why, whylen,
			 "type %u, key %u B, value %u B, %u entries, flags 0x%x; this zenmond's: "
			 "type %u, key %u B, value %u B, %u entries, flags 0x%x",
			 info.type, info.key_size, info.value_size, info.max_entries, info.map_flags,
			 (unsigned int)bpf_map__type(map), bpf_map__key_size(map),
			 bpf_map__value_size(map), bpf_map__max_entries(map), bpf_map__map_flags(map));
		return false;
	}
	if (bpf_map__btf_value_type_id(map) == 0)
		return true; /* the ring buffer: no value type to compare */
	if (info.btf_id == 0 || info.btf_value_type_id == 0) {
		snprintf(why, whylen, "it carries no BTF type for its values");
		return false;
	}
	pinned_btf = btf__load_from_kernel_by_id(info.btf_id);
	if (!pinned_btf) {
		log_debug("cannot read the BTF of pinned map %s (%s): comparing its sizes only",
			  bpf_map__name(map), strerror(errno));
		return true;
	}
	same = kwatch_btf_same(pinned_btf, info.btf_value_type_id, bpf_object__btf(k->skel->obj),
			       bpf_map__btf_value_type_id(map), 0);
	btf__free(pinned_btf);
	if (!same)
		snprintf(why, whylen, "its value type is laid out differently (another zenmond version)");
	return same;
}

/*
 * Before the load: a map pinned by a previous agent is reused (libbpf finds
 * it at the pin path and takes it instead of creating one), so the watches
 * it holds and the exits the kernel recorded in it while no agent ran carry
 * over. One that does not fit this agent's layout is unpinned, with a
 * warning, and created afresh; its records are lost, and monitors that
 * clients bring back for targets that died meanwhile get noproc.
 */
static int kwatch_check_pinned_maps(struct kwatch *k)
{
	struct bpf_map *maps[] = { k->skel->maps.zm_procs, k->skel->maps.zm_tcp,
				   k->skel->maps.zm_events, k->skel->maps.zm_stats,
				   k->skel->maps.zm_exit_gen };
	char why[256];
	int fd;

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		const char *path = bpf_map__pin_path(maps[i]);

		fd = bpf_obj_get(path);
		if (fd < 0) {
			if (errno != ENOENT) {
				log_error("cannot open %s, pinned by a previous zenmond: %s (remove it: "
					  "zenmond --cleanup --pin-dir %s)",
					  path, strerror(errno), k->pin_dir);
				return -errno;
			}
			continue;
		}
		if (kwatch_map_compatible(k, maps[i], fd, why, sizeof(why))) {
			k->maps_reused++;
		} else {
			log_warn("map %s, pinned by a previous zenmond, does not fit this one (%s): "
				 "creating it afresh; what it recorded is lost, and monitors brought "
				 "back for targets that died meanwhile get noproc",
				 path, why);
			if (unlink(path) < 0 && errno != ENOENT) {
				int err = -errno;

				log_error("cannot remove the old map %s: %s", path, strerror(-err));
				close(fd);
				return err;
			}
			k->maps_replaced++;
		}
		close(fd);
	}
	return 0;
}

/* ---- load and attach ---------------------------------------------------- */

static int kwatch_set_pin_paths(struct kwatch *k)
{
	struct bpf_map *maps[] = { k->skel->maps.zm_procs, k->skel->maps.zm_tcp,
				   k->skel->maps.zm_events, k->skel->maps.zm_stats,
				   k->skel->maps.zm_exit_gen };
	char path[PATH_MAX];
	int err;

	for (size_t i = 0; i < KWATCH_NPINS; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", k->pin_dir, bpf_map__name(maps[i])) >=
		    (int)sizeof(path))
			return -ENAMETOOLONG;
		err = bpf_map__set_pin_path(maps[i], path);
		if (err < 0)
			return err;
	}
	return 0;
}

static void kwatch_log_load_error(int err)
{
	if (kwatch_verifier_reason[0])
		log_error("cannot load BPF programs: %s: the verifier rejected %s: "
			  "%s (rerun with --log-level debug for the verifier log)",
			  strerror(-err), kwatch_verifier_prog[0] ? kwatch_verifier_prog : "a program",
			  kwatch_verifier_reason);
	else if (err == -EPERM)
		log_error("cannot load BPF programs: %s (%s)", strerror(-err), KWATCH_PRIV_HINT);
	else if (kwatch_libbpf_last[0])
		log_error("cannot load BPF programs: %s (libbpf: %s)", strerror(-err),
			  kwatch_libbpf_last);
	else
		log_error("cannot load BPF programs: %s (zenmond needs Linux 5.8 or later with "
			  "BTF; rerun with --log-level debug for details)",
			  strerror(-err));
}

static void kwatch_on_attach_error(const char *what, int err)
{
	const char *hint;

	switch (-err) {
	case EPERM:
	case EACCES:
		hint = KWATCH_PRIV_HINT;
		break;
	case ENOENT:
	case EINVAL:
	case EOPNOTSUPP:
		hint = "this kernel lacks BTF-enabled tracepoints; zenmond needs Linux 5.8 or later";
		break;
	default:
		hint = "rerun with --log-level debug for details";
		break;
	}
	log_error("cannot attach %s: %s (%s)", what, strerror(-err), hint);
}

/*
 * Pin each new link over the one a previous agent left, if any, so that the
 * programs stay attached when this agent stops or dies (exits that happen
 * while no agent runs are still recorded in the maps) and a restart finds
 * them. The order is what keeps exits from being lost in a handover:
 *   1. the new programs are already attached (kwatch_attach()): from then
 *      on an exit runs both the old program and the new one. They write into
 *      the same reused maps, and the compare-and-swap on the watch's last
 *      word (bpf/zenmon.bpf.c) lets exactly one of them fire it and submit
 *      its record into the same ring;
 *   2. the new link is pinned under a temporary name, and renamed over the
 *      old pin: bpffs replaces the old pin atomically, and dropping it drops
 *      the old link's last reference, which detaches the old program.
 * At every moment one of the two programs is attached and pinned, whatever
 * instant this agent dies at. bpf_link_update() would swap the program in
 * place, but tracing links (tp_btf) do not support it (no update_prog in
 * the kernel's tracing and raw_tp link ops as of 6.18), hence attach first,
 * then drop. The old program's .bss (its exit generations, its last wakeup
 * time) goes with it; this agent's hints use the new program's, which start
 * at 0 (monitor.c's pid hints are per agent run, so nothing carries over).
 */
static int kwatch_pin_links(struct kwatch *k)
{
	struct bpf_link *links[] = { k->skel->links.zm_process_exit, k->skel->links.zm_tcp_close,
				     k->skel->links.zm_tcp_rst };
	char tmp[PATH_MAX], path[PATH_MAX];
	int err;

	_Static_assert(sizeof(links) / sizeof(links[0]) == KWATCH_NLINKS, "one pin name per link");
	for (size_t i = 0; i < KWATCH_NLINKS; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", k->pin_dir, kwatch_link_names[i]) >=
			    (int)sizeof(path) - (int)sizeof(KWATCH_LINK_TMP) ||
		    snprintf(tmp, sizeof(tmp), "%s/%s" KWATCH_LINK_TMP, k->pin_dir,
			     kwatch_link_names[i]) >= (int)sizeof(tmp)) {
			log_error("cannot pin links under %s: the path is too long", k->pin_dir);
			return -ENAMETOOLONG;
		}
		if (bpf_obj_pin(bpf_link__fd(links[i]), tmp) < 0) {
			err = -errno;
			log_error("cannot pin link %s: %s", tmp, strerror(-err));
			return err;
		}
		if (access(path, F_OK) == 0)
			k->links_replaced++;
		if (rename(tmp, path) < 0) {
			err = -errno;
			log_error("cannot put link %s in place of %s: %s", tmp, path, strerror(-err));
			unlink(tmp);
			return err;
		}
	}
	return 0;
}

/*
 * Attach program by program, so that a failure names its tracepoint. The
 * links go where the skeleton keeps them, so zenmon_bpf__detach() and
 * __destroy() release our references; the pins (kwatch_pin_links()) keep
 * the programs attached after that.
 */
static int kwatch_attach(struct kwatch *k)
{
	struct {
		struct bpf_program *prog;
		struct bpf_link **link;
		const char *what;
	} progs[] = {
		{ k->skel->progs.zm_process_exit, &k->skel->links.zm_process_exit,
		  "sched_process_exit" },
		{ k->skel->progs.zm_tcp_close, &k->skel->links.zm_tcp_close, "inet_sock_set_state" },
		{ k->skel->progs.zm_tcp_rst, &k->skel->links.zm_tcp_rst, "tcp_send_reset" },
	};
	struct bpf_link *link;
	int err;

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		link = bpf_program__attach(progs[i].prog);
		if (!link) {
			err = -errno;
			kwatch_on_attach_error(progs[i].what, err);
			return err;
		}
		*progs[i].link = link;
	}
	return kwatch_pin_links(k);
}

static void kwatch_on_proc_record(struct kwatch *k, const void *data, size_t size)
{
	struct zm_event ev;

	/* The kernel is trusted to write what we compiled, but not blindly. */
	if (size < sizeof(ev)) {
		log_warn("ignored a short process-exit record (%zu bytes, expected %zu)", size,
			 sizeof(ev));
		k->counters.bad_records++;
		return;
	}
	/* Copy out: the record's memory is the kernel's again once we return. */
	memcpy(&ev, data, sizeof(ev));
	k->counters.proc_records++;
	k->on_event(k->ctx, &ev);
}

static void kwatch_on_tcp_record(struct kwatch *k, const void *data, size_t size)
{
	struct zm_tcp_event ev;

	if (size < sizeof(ev)) {
		log_warn("ignored a short TCP-close record (%zu bytes, expected %zu)", size,
			 sizeof(ev));
		k->counters.bad_records++;
		return;
	}
	memcpy(&ev, data, sizeof(ev));
	k->counters.tcp_records++;
	if (!k->on_tcp) {
		if (!k->warned_no_tcp)
			log_warn("ignored a TCP-close record: no TCP handler is set");
		k->warned_no_tcp = true;
		return;
	}
	k->on_tcp(k->tcp_ctx, &ev);
}

/* Every record starts with its __u32 kind; each kind has its own size. */
static int kwatch_on_sample(void *ctx, void *data, size_t size)
{
	struct kwatch *k = ctx;
	__u32 kind;

	if (size < sizeof(kind)) {
		log_warn("ignored a short ring-buffer record (%zu bytes)", size);
		k->counters.bad_records++;
		return 0;
	}
	memcpy(&kind, data, sizeof(kind));
	switch (kind) {
	case ZM_EV_PROC_EXIT:
		kwatch_on_proc_record(k, data, size);
		break;
	case ZM_EV_TCP_CLOSE:
		kwatch_on_tcp_record(k, data, size);
		break;
	default:
		log_warn("ignored a ring-buffer record of unknown kind %u", kind);
		k->counters.bad_records++;
		break;
	}
	/* libbpf stops the drain after this record (it stays consumed). */
	if (++k->drained == KWATCH_DRAIN_MAX)
		return KWATCH_DRAIN_STOP;
	return 0;
}

/* Has the producer reserved anything the consumer has not passed? */
static bool kwatch_rb_pending(const struct kwatch *k)
{
	const unsigned long *cons = k->rb_pos;
	const unsigned long *prod = (const unsigned long *)((const char *)k->rb_pos + k->page_size);

	return __atomic_load_n(prod, __ATOMIC_ACQUIRE) != __atomic_load_n(cons, __ATOMIC_ACQUIRE);
}

static uint64_t kwatch_boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int kwatch_open(const struct kwatch_opts *opts, kwatch_event_fn on_event, void *ctx,
		struct kwatch **ret)
{
	struct kwatch *k = NULL;
	void *exit_gen;
	long page_size;
	int rb_fd;
	int err;

	if (!opts || !opts->pin_dir || !opts->pin_dir[0] || !on_event || !ret)
		return -EINVAL;

	err = kwatch_check_privileges();
	if (err < 0)
		return err;

	if (access(KWATCH_BTF, R_OK) < 0) {
		log_error("kernel BTF not found at " KWATCH_BTF
			  " (this kernel needs CONFIG_DEBUG_INFO_BTF=y)");
		return -ENOENT;
	}

	err = kwatch_ensure_bpffs(opts->pin_dir);
	if (err < 0)
		return err;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->lock_fd = -1;
	k->procs_fd = -1;
	k->tcp_fd = -1;
	k->stats_fd = -1;
	k->on_event = on_event;
	k->ctx = ctx;
	k->wakeup_interval_ns = opts->wakeup_interval_ns ? opts->wakeup_interval_ns :
							   ZM_DEFAULT_WAKEUP_INTERVAL_NS;
	k->pin_dir = strdup(opts->pin_dir);
	if (!k->pin_dir) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* "/sys/fs/bpf/zenmon/" and "/sys/fs/bpf/zenmon" are the same directory. */
	for (size_t n = strlen(k->pin_dir); n > 1 && k->pin_dir[n - 1] == '/'; n--)
		k->pin_dir[n - 1] = '\0';

	err = kwatch_lock_dir(k->pin_dir, &k->lock_fd);
	if (err < 0)
		goto cleanup;
	err = kwatch_remove_stale_tmp_links(k->lock_fd, k->pin_dir);
	if (err < 0)
		goto cleanup;

	libbpf_set_print(kwatch_libbpf_print);
	kwatch_verifier_reason[0] = '\0';
	kwatch_verifier_prog[0] = '\0';
	kwatch_libbpf_last[0] = '\0';

	k->skel = zenmon_bpf__open();
	if (!k->skel) {
		err = errno ? -errno : -ENOMEM;
		log_error("cannot open the embedded BPF object: %s", strerror(-err));
		goto cleanup;
	}
	k->skel->rodata->wakeup_interval_ns = k->wakeup_interval_ns;
	err = bpf_map__set_max_entries(k->skel->maps.zm_events,
				       opts->ring_bytes ? opts->ring_bytes : ZM_RINGBUF_BYTES);
	if (err < 0) {
		log_error("cannot size the ring buffer to %u bytes: %s (give --ring-size a power "
			  "of two, at least a page)", opts->ring_bytes, strerror(-err));
		goto cleanup;
	}
	err = kwatch_set_pin_paths(k);
	if (err < 0) {
		log_error("cannot pin maps under %s: %s", k->pin_dir, strerror(-err));
		goto cleanup;
	}

	err = kwatch_check_pinned_maps(k);
	if (err < 0)
		goto cleanup;

	/* libbpf reuses the maps pinned where set above, creates and pins the
	 * others, and loads. */
	err = zenmon_bpf__load(k->skel);
	if (err < 0) {
		kwatch_log_load_error(err);
		goto cleanup;
	}
	err = kwatch_attach(k);
	if (err < 0)
		goto cleanup;

	k->procs_fd = bpf_map__fd(k->skel->maps.zm_procs);
	k->tcp_fd = bpf_map__fd(k->skel->maps.zm_tcp);
	k->stats_fd = bpf_map__fd(k->skel->maps.zm_stats);
	rb_fd = bpf_map__fd(k->skel->maps.zm_events);

	k->ncpus = libbpf_num_possible_cpus();
	if (k->ncpus <= 0) {
		err = k->ncpus < 0 ? k->ncpus : -EINVAL;
		log_error("cannot count possible CPUs: %s", strerror(-err));
		goto cleanup;
	}
	k->percpu = calloc((size_t)k->ncpus, sizeof(*k->percpu));
	if (!k->percpu) {
		err = -ENOMEM;
		goto cleanup;
	}

	k->rb = ring_buffer__new(rb_fd, kwatch_on_sample, k, NULL);
	if (!k->rb) {
		err = -errno;
		log_error("cannot set up the ring buffer: %s", strerror(-err));
		goto cleanup;
	}
	page_size = sysconf(_SC_PAGESIZE);
	k->page_size = (size_t)page_size;
	k->rb_pos_len = 2 * k->page_size;
	k->rb_pos = mmap(NULL, k->rb_pos_len, PROT_READ, MAP_SHARED, rb_fd, 0);
	if (k->rb_pos == MAP_FAILED) {
		k->rb_pos = NULL;
		err = -errno;
		log_error("cannot map the ring buffer's positions: %s", strerror(-err));
		goto cleanup;
	}
	exit_gen = mmap(NULL, KWATCH_EXIT_GEN_LEN, PROT_READ, MAP_SHARED,
			bpf_map__fd(k->skel->maps.zm_exit_gen), 0);
	if (exit_gen == MAP_FAILED) {
		err = -errno;
		log_error("cannot map zm_exit_gen: %s", strerror(-err));
		goto cleanup;
	}
	k->exit_gen = exit_gen;

	if (k->maps_reused || k->links_replaced)
		log_info("took over from a previous zenmond in %s: %u of %zu maps reused (their "
			 "watches and the exits recorded while no agent ran carry over), %u programs "
			 "replaced",
			 k->pin_dir, k->maps_reused, KWATCH_NPINS, k->links_replaced);
	log_debug("kernel watch loaded: maps and links pinned under %s, wakeup interval %llu ns",
		  k->pin_dir, (unsigned long long)k->wakeup_interval_ns);
	*ret = k;
	k = NULL;
	err = 0;
cleanup:
	kwatch_close(k);
	return err;
}

/* ---- the running watch -------------------------------------------------- */

int kwatch_fd(const struct kwatch *k)
{
	return ring_buffer__epoll_fd(k->rb);
}

/*
 * Returns -EAGAIN, not 0, when nothing could be consumed but a record is
 * still reserved (its program is between reserve and submit on another CPU):
 * that record may carry no wakeup, so the caller must drain again after the
 * wakeup interval exactly as after a drain that found records.
 */
int kwatch_drain(struct kwatch *k)
{
	int n;

	k->drained = 0;
	n = ring_buffer__consume(k->rb);
	if (n == KWATCH_DRAIN_STOP)
		return KWATCH_DRAIN_MAX;
	if (n < 0)
		return n;
	if (n > 0 || !kwatch_rb_pending(k))
		return n;
	/* Reserved when we looked; usually committed a few hundred ns later. */
	n = ring_buffer__consume(k->rb);
	if (n == KWATCH_DRAIN_STOP)
		return KWATCH_DRAIN_MAX;
	if (n < 0)
		return n;
	if (n == 0 && kwatch_rb_pending(k))
		return -EAGAIN;
	return n;
}

/*
 * The armed word must be exactly the one the program computes from the key
 * (kern.h, "Element reuse" in bpf/zenmon.bpf.c).
 */
int kwatch_add_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks)
{
	struct zm_proc_key key = { .tgid = tgid, .start_ticks = start_ticks };
	struct zm_proc_watch val = {
		.added_ns = kwatch_boottime_ns(),
		.armed_tag = zm_proc_tag(tgid, start_ticks),
		.state = ZM_WATCH_ARMED,
	};
	int err;

	kwatch_flush_deletes(k);
	/* Full map: the kernel answers E2BIG, which is what we promise. */
	err = bpf_map_update_elem(k->procs_fd, &key, &val, BPF_NOEXIST);
	return err < 0 ? -errno : 0;
}

void kwatch_del_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks)
{
	struct zm_proc_key *key;

	if (k->n_del_procs == KWATCH_DEL_BATCH)
		kwatch_flush_deletes(k);
	key = &k->del_procs[k->n_del_procs++];
	memset(key, 0, sizeof(*key)); /* the padding is part of the key */
	key->tgid = tgid;
	key->start_ticks = start_ticks;
}

uint32_t kwatch_exit_gen(const struct kwatch *k, uint32_t tgid)
{
	/* Acquire: what the caller reads next (/proc) comes after this load.
	 * 32 bits of it are plenty to see a change. */
	return (uint32_t)__atomic_load_n(&k->exit_gen[tgid & (ZM_EXIT_GEN_SLOTS - 1)],
					 __ATOMIC_ACQUIRE);
}

int kwatch_lookup_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks,
		       struct zm_proc_watch *ret)
{
	struct zm_proc_key key = { .tgid = tgid, .start_ticks = start_ticks };
	struct zm_proc_watch val;

	kwatch_flush_deletes(k);
	if (bpf_map_lookup_elem(k->procs_fd, &key, &val) < 0)
		return -errno;
	*ret = val;
	return 0;
}

static int kwatch_walk(int fd, size_t key_size, size_t val_size,
		       int (*fn)(struct kwatch *k, const void *key, const void *val, void *arg),
		       struct kwatch *k, void *arg);

static int kwatch_count_one(struct kwatch *k, const void *key, const void *val, void *arg)
{
	(*(long *)arg)++;
	return 0;
}

/* Entries in a map of these key and value sizes (a batched walk). */
static long kwatch_count_entries(struct kwatch *k, int fd, size_t key_size, size_t val_size)
{
	long n = 0;
	int r;

	kwatch_flush_deletes(k);
	r = kwatch_walk(fd, key_size, val_size, kwatch_count_one, k, &n);
	return r < 0 ? r : n;
}

long kwatch_count_procs(struct kwatch *k)
{
	return kwatch_count_entries(k, k->procs_fd, sizeof(struct zm_proc_key),
				    sizeof(struct zm_proc_watch));
}

void kwatch_set_tcp_handler(struct kwatch *k, kwatch_tcp_fn fn, void *ctx)
{
	k->on_tcp = fn;
	k->tcp_ctx = ctx;
}

int kwatch_add_tcp(struct kwatch *k, uint64_t cookie)
{
	__u64 key = cookie;
	struct zm_tcp_watch val = {
		.added_ns = kwatch_boottime_ns(),
		.armed_tag = zm_tcp_tag(cookie),
		.state = ZM_WATCH_ARMED,
	};

	kwatch_flush_deletes(k);
	if (cookie == 0)
		return -EINVAL;
	return bpf_map_update_elem(k->tcp_fd, &key, &val, BPF_NOEXIST) < 0 ? -errno : 0;
}

void kwatch_del_tcp(struct kwatch *k, uint64_t cookie)
{
	if (k->n_del_tcp == KWATCH_DEL_BATCH)
		kwatch_flush_deletes(k);
	k->del_tcp[k->n_del_tcp++] = cookie;
}

/*
 * Delete n keys of key_size from the map behind fd. The kernel stops a batch
 * at the first key it cannot delete and says how many went before it; a key
 * already gone (ENOENT: deleted twice, or by kwatch_cleanup() of another
 * process) is skipped and the rest go on. Count deleted, or -errno.
 */
static long kwatch_delete_keys(int fd, const void *keys, size_t key_size, uint32_t n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t done = 0;
	long deleted = 0;

	while (done < n) {
		__u32 count = n - done;
		int err = bpf_map_delete_batch(fd, (const char *)keys + (size_t)done * key_size,
					       &count, &opts);

		err = err < 0 ? -errno : 0;
		done += count;
		deleted += count;
		if (err == 0)
			break;
		if (err != -ENOENT)
			return err;
		done++; /* the key that is gone */
	}
	return deleted;
}

/* Send the *n deletes queued for one map, what its watches are of, and empty
 * the queue; a failure is logged, not returned: the loop has no one to tell. */
static void kwatch_flush_map(int fd, const void *keys, size_t key_size, uint32_t *n,
			     const char *what, const char *map)
{
	long r;

	if (*n == 0)
		return;
	r = kwatch_delete_keys(fd, keys, key_size, *n);
	if (r < 0)
		log_warn("cannot delete %u %s watches from %s: %s (they stay in the map; a "
			 "FIRED one is reported again by the next scan)", *n, what, map,
			 strerror((int)-r));
	*n = 0;
}

void kwatch_flush_deletes(struct kwatch *k)
{
	kwatch_flush_map(k->procs_fd, k->del_procs, sizeof(k->del_procs[0]), &k->n_del_procs,
			 "process", "zm_procs");
	kwatch_flush_map(k->tcp_fd, k->del_tcp, sizeof(k->del_tcp[0]), &k->n_del_tcp, "socket",
			 "zm_tcp");
}

int kwatch_lookup_tcp(struct kwatch *k, uint64_t cookie, struct zm_tcp_watch *ret)
{
	__u64 key = cookie;
	struct zm_tcp_watch val;

	kwatch_flush_deletes(k);
	if (bpf_map_lookup_elem(k->tcp_fd, &key, &val) < 0)
		return -errno;
	*ret = val;
	return 0;
}

long kwatch_count_tcp(struct kwatch *k)
{
	return kwatch_count_entries(k, k->tcp_fd, sizeof(__u64), sizeof(struct zm_tcp_watch));
}

int kwatch_read_stats(struct kwatch *k, struct zm_kstats *ret)
{
	struct zm_kstats sum = {};
	__u32 zero = 0;

	/* A per-CPU lookup fills one value per possible CPU. */
	if (bpf_map_lookup_elem(k->stats_fd, &zero, k->percpu) < 0)
		return -errno;
	for (int i = 0; i < k->ncpus; i++) {
		sum.exits += k->percpu[i].exits;
		sum.matched += k->percpu[i].matched;
		sum.rb_dropped += k->percpu[i].rb_dropped;
		sum.wakeups += k->percpu[i].wakeups;
		sum.tcp_closes += k->percpu[i].tcp_closes;
		sum.tcp_matched += k->percpu[i].tcp_matched;
	}
	*ret = sum;
	return 0;
}

/*
 * Walk a map in batches of KWATCH_SCAN_BATCH (BPF_MAP_LOOKUP_BATCH: one
 * bpf() call per batch rather than two per entry, which at 100,000 watches
 * is the difference between a few ms and a second after a ring overflow),
 * calling fn on each entry. The batch cursor is a bucket index, so fn may
 * delete entries. 0, fn's non-zero return, or -errno.
 */
static int kwatch_walk(int fd, size_t key_size, size_t val_size,
		       int (*fn)(struct kwatch *k, const void *key, const void *val, void *arg),
		       struct kwatch *k, void *arg)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	char *keys = malloc(KWATCH_SCAN_BATCH * key_size);
	char *vals = malloc(KWATCH_SCAN_BATCH * val_size);
	__u32 in = 0, out = 0;
	bool first = true;
	int r = 0;

	if (!keys || !vals) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 count = KWATCH_SCAN_BATCH, i;
		int err = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &count,
					       &opts);

		err = err < 0 ? -errno : 0;
		if (err && err != -ENOENT) {
			r = err;
			break;
		}
		for (i = 0; i < count && r == 0; i++)
			r = fn(k, keys + i * key_size, vals + i * val_size, arg);
		if (r || err == -ENOENT)
			break;
		in = out;
		first = false;
	}
out:
	free(keys);
	free(vals);
	return r;
}

static int kwatch_scan_proc_one(struct kwatch *k, const void *kp, const void *vp, void *arg)
{
	const struct zm_proc_key *key = kp;
	const struct zm_proc_watch *val = vp;
	struct zm_event ev;

	if (val->state != ZM_WATCH_FIRED)
		return 0;
	ev = (struct zm_event){
		.kind = ZM_EV_PROC_EXIT,
		.tgid = key->tgid,
		.start_ticks = key->start_ticks,
		.exit_ns = val->exit_ns,
		.exit_code = val->exit_code,
		.tid = 0,
	};
	if (k->on_event(k->ctx, &ev)) {
		k->counters.proc_recovered++;
		(*(int *)arg)++;
	}
	return 0;
}

static int kwatch_scan_tcp_one(struct kwatch *k, const void *kp, const void *vp, void *arg)
{
	const struct zm_tcp_watch *val = vp;
	struct zm_tcp_event ev;
	__u64 key;

	if (val->state != ZM_WATCH_FIRED)
		return 0;
	memcpy(&key, kp, sizeof(key));
	ev = (struct zm_tcp_event){
		.kind = ZM_EV_TCP_CLOSE,
		.old_state = val->old_state,
		.how = val->how,
		.cookie = key,
		.close_ns = val->close_ns,
		.sk_err = val->sk_err,
	};
	if (k->on_tcp(k->tcp_ctx, &ev)) {
		k->counters.tcp_recovered++;
		(*(int *)arg)++;
	}
	return 0;
}

static int kwatch_scan_procs(struct kwatch *k)
{
	int found = 0, r;

	r = kwatch_walk(k->procs_fd, sizeof(struct zm_proc_key), sizeof(struct zm_proc_watch),
			kwatch_scan_proc_one, k, &found);
	return r < 0 ? r : found;
}

static int kwatch_scan_tcp(struct kwatch *k)
{
	int found = 0, r;

	r = kwatch_walk(k->tcp_fd, sizeof(__u64), sizeof(struct zm_tcp_watch),
			kwatch_scan_tcp_one, k, &found);
	return r < 0 ? r : found;
}

int kwatch_scan_fired(struct kwatch *k)
{
	int procs, socks = 0;

	kwatch_flush_deletes(k);
	procs = kwatch_scan_procs(k);
	if (procs < 0)
		return procs;
	if (k->on_tcp) {
		socks = kwatch_scan_tcp(k);
		if (socks < 0)
			return socks;
	}
	return procs + socks;
}

void kwatch_read_counters(const struct kwatch *k, struct kwatch_counters *ret)
{
	*ret = k->counters;
}

/* What kwatch_foreach_*() hand kwatch_walk(): the caller's callback and context. */
struct kwatch_foreach {
	int (*proc)(void *ctx, const struct zm_proc_key *key, const struct zm_proc_watch *w);
	int (*tcp)(void *ctx, uint64_t cookie, const struct zm_tcp_watch *w);
	void *ctx;
};

static int kwatch_foreach_proc_one(struct kwatch *k, const void *key, const void *val, void *arg)
{
	const struct kwatch_foreach *f = arg;

	return f->proc(f->ctx, key, val);
}

static int kwatch_foreach_tcp_one(struct kwatch *k, const void *key, const void *val, void *arg)
{
	const struct kwatch_foreach *f = arg;
	__u64 cookie;

	memcpy(&cookie, key, sizeof(cookie));
	return f->tcp(f->ctx, cookie, val);
}

int kwatch_foreach_proc(struct kwatch *k,
			int (*fn)(void *ctx, const struct zm_proc_key *key, const struct zm_proc_watch *w),
			void *ctx)
{
	struct kwatch_foreach f = { .proc = fn, .ctx = ctx };

	kwatch_flush_deletes(k);
	return kwatch_walk(k->procs_fd, sizeof(struct zm_proc_key), sizeof(struct zm_proc_watch),
			   kwatch_foreach_proc_one, k, &f);
}

int kwatch_foreach_tcp(struct kwatch *k,
		       int (*fn)(void *ctx, uint64_t cookie, const struct zm_tcp_watch *w), void *ctx)
{
	struct kwatch_foreach f = { .tcp = fn, .ctx = ctx };

	kwatch_flush_deletes(k);
	return kwatch_walk(k->tcp_fd, sizeof(__u64), sizeof(struct zm_tcp_watch),
			   kwatch_foreach_tcp_one, k, &f);
}

uint64_t kwatch_wakeup_interval_ns(const struct kwatch *k)
{
	return k->wakeup_interval_ns;
}

const char *kwatch_pin_dir(const struct kwatch *k)
{
	return k->pin_dir;
}

bool kwatch_inherited(const struct kwatch *k)
{
	return k->maps_reused > 0;
}

/*
 * The programs stay attached and the maps pinned (kwatch_pin_links() says
 * why): only our references go. Records still in the ring buffer stay there
 * too, for the next agent, which reuses the ring: nothing is drained here,
 * because a record consumed now could only be dropped.
 */
void kwatch_close(struct kwatch *k)
{
	if (!k)
		return;

	kwatch_flush_deletes(k);
	ring_buffer__free(k->rb);
	if (k->rb_pos)
		munmap(k->rb_pos, k->rb_pos_len);
	if (k->exit_gen)
		munmap((void *)k->exit_gen, KWATCH_EXIT_GEN_LEN);
	zenmon_bpf__destroy(k->skel);
	if (k->lock_fd >= 0)
		close(k->lock_fd);
	free(k->percpu);
	free(k->pin_dir);
	free(k);
}

/* Unpin every map and link of ours in the locked directory dir_fd, then
 * remove it if that left it empty. 0 or the last -errno (logged). */
static int kwatch_unpin_all(int dir_fd, const char *pin_dir, unsigned int *ret_maps,
			    unsigned int *ret_links)
{
	const char *names[KWATCH_NPINS + 2 * KWATCH_NLINKS];
	char tmp[KWATCH_NLINKS][64];
	size_t n = 0;
	int err = 0;

	for (size_t i = 0; i < KWATCH_NPINS; i++)
		names[n++] = kwatch_pin_names[i];
	for (size_t i = 0; i < KWATCH_NLINKS; i++) {
		names[n++] = kwatch_link_names[i];
		snprintf(tmp[i], sizeof(tmp[i]), "%s" KWATCH_LINK_TMP, kwatch_link_names[i]);
		names[n++] = tmp[i];
	}
	for (size_t i = 0; i < n; i++) {
		if (unlinkat(dir_fd, names[i], 0) == 0) {
			if (strncmp(names[i], "link_", 5) == 0)
				(*ret_links)++;
			else
				(*ret_maps)++;
			continue;
		}
		if (errno == ENOENT)
			continue;
		err = -errno;
		log_error("cannot remove %s/%s: %s", pin_dir, names[i], strerror(-err));
	}
	/* Another tool may keep pins of its own there: then leave it. */
	if (rmdir(pin_dir) < 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT &&
	    errno != EBUSY)
		log_warn("cannot remove pin directory %s: %s", pin_dir, strerror(errno));
	return err;
}

void kwatch_discard(struct kwatch *k)
{
	unsigned int maps = 0, links = 0;

	if (!k || k->lock_fd < 0 || k->maps_reused || k->links_replaced)
		return;
	(void)kwatch_unpin_all(k->lock_fd, k->pin_dir, &maps, &links);
}

int kwatch_cleanup(const char *pin_dir)
{
	unsigned int maps = 0, links = 0;
	int fd, err;

	if (!pin_dir || !pin_dir[0])
		return -EINVAL;
	fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT) {
			log_info("nothing to clean up: %s does not exist", pin_dir);
			return 0;
		}
		log_error("cannot open pin directory %s: %s", pin_dir, strerror(-err));
		return err;
	}
	err = kwatch_flock_dir(fd, pin_dir,
			       "a running zenmond: stop it first, then run zenmond --cleanup again");
	if (err < 0)
		return err;
	err = kwatch_unpin_all(fd, pin_dir, &maps, &links);
	close(fd);
	if (err == 0)
		log_info("removed %u maps and %u program links pinned in %s: the kernel records no "
			 "exit for zenmond until it starts again",
			 maps, links, pin_dir);
	return err;
}
