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
#include <bpf/libbpf.h>

#include "zenmon.skel.h"

#include "kwatch.h"
#include "log.h"

#define KWATCH_BPFFS "/sys/fs/bpf"
#define KWATCH_BTF "/sys/kernel/btf/vmlinux"
#define KWATCH_PRIV_HINT "run as root or grant CAP_BPF+CAP_PERFMON"

/* What we pin, by map name; also what a dead agent may have left behind. */
static const char *const kwatch_pin_names[] = { "zm_procs", "zm_tcp", "zm_events", "zm_stats" };
#define KWATCH_NPINS (sizeof(kwatch_pin_names) / sizeof(kwatch_pin_names[0]))

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
	size_t page_size;

	uint64_t wakeup_interval_ns;
	int lock_fd;    /* the pin directory, flock()ed; -1 until we hold it */
	char *pin_dir;
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
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			err = -errno;
			close(fd);
			if (err == -EWOULDBLOCK) {
				log_error("pin directory %s is in use by another zenmond (stop it, or "
					  "give this one --pin-dir)",
					  pin_dir);
				return -EBUSY;
			}
			log_error("cannot lock pin directory %s: %s", pin_dir, strerror(-err));
			return err;
		}
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
 * We hold the lock, so any pin of ours in the directory belongs to an agent
 * that died without cleaning up. Left there, libbpf would reuse those maps
 * and we would inherit watches nobody monitors any more.
 */
static int kwatch_remove_stale_pins(int dir_fd, const char *pin_dir)
{
	for (size_t i = 0; i < KWATCH_NPINS; i++) {
		if (unlinkat(dir_fd, kwatch_pin_names[i], 0) == 0) {
			log_info("removed stale pin %s/%s left by a previous zenmond", pin_dir,
				 kwatch_pin_names[i]);
			continue;
		}
		if (errno == ENOENT)
			continue;
		log_error("cannot remove stale pin %s/%s: %s", pin_dir, kwatch_pin_names[i],
			  strerror(errno));
		return -errno;
	}
	return 0;
}

/* ---- load and attach ---------------------------------------------------- */

static int kwatch_set_pin_paths(struct kwatch *k)
{
	struct bpf_map *maps[] = { k->skel->maps.zm_procs, k->skel->maps.zm_tcp,
				   k->skel->maps.zm_events, k->skel->maps.zm_stats };
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
 * Attach program by program, so that a failure names its tracepoint. The
 * links go where the skeleton keeps them, so zenmon_bpf__detach() and
 * __destroy() release them.
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
	return 0;
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
	err = kwatch_remove_stale_pins(k->lock_fd, k->pin_dir);
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
	err = kwatch_set_pin_paths(k);
	if (err < 0) {
		log_error("cannot pin maps under %s: %s", k->pin_dir, strerror(-err));
		goto cleanup;
	}

	/* libbpf creates the maps, pins them where set above, and loads. */
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

	log_debug("kernel watch loaded: maps pinned under %s, wakeup interval %llu ns",
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

	n = ring_buffer__consume(k->rb);
	if (n < 0)
		return n;
	if (n > 0 || !kwatch_rb_pending(k))
		return n;
	/* Reserved when we looked; usually committed a few hundred ns later. */
	n = ring_buffer__consume(k->rb);
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

	/* Full map: the kernel answers E2BIG, which is what we promise. */
	err = bpf_map_update_elem(k->procs_fd, &key, &val, BPF_NOEXIST);
	return err < 0 ? -errno : 0;
}

int kwatch_del_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks)
{
	struct zm_proc_key key = { .tgid = tgid, .start_ticks = start_ticks };

	return bpf_map_delete_elem(k->procs_fd, &key) < 0 ? -errno : 0;
}

uint32_t kwatch_exit_gen(const struct kwatch *k, uint32_t tgid)
{
	/* Acquire: what the caller reads next (/proc) comes after this load. */
	return __atomic_load_n(&k->skel->bss->zm_exit_gen[tgid & (ZM_EXIT_GEN_SLOTS - 1)],
			       __ATOMIC_ACQUIRE);
}

int kwatch_lookup_proc(struct kwatch *k, uint32_t tgid, uint64_t start_ticks,
		       struct zm_proc_watch *ret)
{
	struct zm_proc_key key = { .tgid = tgid, .start_ticks = start_ticks };
	struct zm_proc_watch val;

	if (bpf_map_lookup_elem(k->procs_fd, &key, &val) < 0)
		return -errno;
	*ret = val;
	return 0;
}

/* Walk a map's keys; key and next are caller buffers of its key size. */
static long kwatch_count_keys(int fd, void *key, void *next, size_t key_size)
{
	long n = 0;
	int err;

	err = bpf_map_get_next_key(fd, NULL, next);
	while (err == 0) {
		n++;
		memcpy(key, next, key_size);
		err = bpf_map_get_next_key(fd, key, next);
	}
	return errno == ENOENT ? n : -errno;
}

long kwatch_count_procs(struct kwatch *k)
{
	struct zm_proc_key key, next;

	return kwatch_count_keys(k->procs_fd, &key, &next, sizeof(key));
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

	if (cookie == 0)
		return -EINVAL;
	return bpf_map_update_elem(k->tcp_fd, &key, &val, BPF_NOEXIST) < 0 ? -errno : 0;
}

int kwatch_del_tcp(struct kwatch *k, uint64_t cookie)
{
	__u64 key = cookie;

	return bpf_map_delete_elem(k->tcp_fd, &key) < 0 ? -errno : 0;
}

int kwatch_lookup_tcp(struct kwatch *k, uint64_t cookie, struct zm_tcp_watch *ret)
{
	__u64 key = cookie;
	struct zm_tcp_watch val;

	if (bpf_map_lookup_elem(k->tcp_fd, &key, &val) < 0)
		return -errno;
	*ret = val;
	return 0;
}

long kwatch_count_tcp(struct kwatch *k)
{
	__u64 key, next;

	return kwatch_count_keys(k->tcp_fd, &key, &next, sizeof(key));
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
 * The next key is fetched before on_event runs, because on_event may delete
 * the entry it is given, and get_next_key() from a deleted key restarts the
 * walk at the first bucket.
 */
static int kwatch_scan_procs(struct kwatch *k)
{
	struct zm_proc_key key, next;
	struct zm_proc_watch val;
	struct zm_event ev;
	bool more;
	int found = 0;

	if (bpf_map_get_next_key(k->procs_fd, NULL, &key) < 0)
		return errno == ENOENT ? 0 : -errno;
	do {
		more = bpf_map_get_next_key(k->procs_fd, &key, &next) == 0;
		if (!more && errno != ENOENT)
			return -errno;
		/* ENOENT: deleted since we saw its key; nothing to report. */
		if (bpf_map_lookup_elem(k->procs_fd, &key, &val) == 0 &&
		    val.state == ZM_WATCH_FIRED) {
			ev = (struct zm_event){
				.kind = ZM_EV_PROC_EXIT,
				.tgid = key.tgid,
				.start_ticks = key.start_ticks,
				.exit_ns = val.exit_ns,
				.exit_code = val.exit_code,
				.tid = 0,
			};
			k->counters.proc_recovered++;
			k->on_event(k->ctx, &ev);
			found++;
		}
		key = next;
	} while (more);
	return found;
}

static int kwatch_scan_tcp(struct kwatch *k)
{
	struct zm_tcp_watch val;
	struct zm_tcp_event ev;
	__u64 key, next;
	bool more;
	int found = 0;

	if (bpf_map_get_next_key(k->tcp_fd, NULL, &key) < 0)
		return errno == ENOENT ? 0 : -errno;
	do {
		more = bpf_map_get_next_key(k->tcp_fd, &key, &next) == 0;
		if (!more && errno != ENOENT)
			return -errno;
		if (bpf_map_lookup_elem(k->tcp_fd, &key, &val) == 0 &&
		    val.state == ZM_WATCH_FIRED) {
			ev = (struct zm_tcp_event){
				.kind = ZM_EV_TCP_CLOSE,
				.old_state = val.old_state,
				.how = val.how,
				.cookie = key,
				.close_ns = val.close_ns,
				.sk_err = val.sk_err,
			};
			k->counters.tcp_recovered++;
			k->on_tcp(k->tcp_ctx, &ev);
			found++;
		}
		key = next;
	} while (more);
	return found;
}

int kwatch_scan_fired(struct kwatch *k)
{
	int procs, socks = 0;

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

int kwatch_foreach_proc(struct kwatch *k,
			int (*fn)(void *ctx, const struct zm_proc_key *key, const struct zm_proc_watch *w),
			void *ctx)
{
	struct zm_proc_key key, next;
	struct zm_proc_watch val;
	int err, r;

	err = bpf_map_get_next_key(k->procs_fd, NULL, &next);
	while (err == 0) {
		key = next;
		/* ENOENT: deleted since we saw its key; nothing to show. */
		if (bpf_map_lookup_elem(k->procs_fd, &key, &val) == 0 && (r = fn(ctx, &key, &val)) != 0)
			return r;
		err = bpf_map_get_next_key(k->procs_fd, &key, &next);
	}
	return errno == ENOENT ? 0 : -errno;
}

int kwatch_foreach_tcp(struct kwatch *k,
		       int (*fn)(void *ctx, uint64_t cookie, const struct zm_tcp_watch *w), void *ctx)
{
	struct zm_tcp_watch val;
	__u64 key, next;
	int err, r;

	err = bpf_map_get_next_key(k->tcp_fd, NULL, &next);
	while (err == 0) {
		key = next;
		if (bpf_map_lookup_elem(k->tcp_fd, &key, &val) == 0 && (r = fn(ctx, key, &val)) != 0)
			return r;
		err = bpf_map_get_next_key(k->tcp_fd, &key, &next);
	}
	return errno == ENOENT ? 0 : -errno;
}

uint64_t kwatch_wakeup_interval_ns(const struct kwatch *k)
{
	return k->wakeup_interval_ns;
}

const char *kwatch_pin_dir(const struct kwatch *k)
{
	return k->pin_dir;
}

void kwatch_close(struct kwatch *k)
{
	if (!k)
		return;

	if (k->skel) {
		/* Detach first, so that the last drain sees every exit we reported. */
		zenmon_bpf__detach(k->skel);
		if (k->rb)
			ring_buffer__consume(k->rb);
	}
	ring_buffer__free(k->rb);
	if (k->rb_pos)
		munmap(k->rb_pos, k->rb_pos_len);
	zenmon_bpf__destroy(k->skel);

	/*
	 * Only the lock holder touches the directory: a kwatch_open() that lost
	 * the lock must leave the running agent's pins alone.
	 */
	if (k->lock_fd >= 0) {
		for (size_t i = 0; i < KWATCH_NPINS; i++)
			if (unlinkat(k->lock_fd, kwatch_pin_names[i], 0) < 0 && errno != ENOENT)
				log_warn("cannot remove pin %s/%s: %s", k->pin_dir,
					 kwatch_pin_names[i], strerror(errno));
		/* Another tool may keep pins of its own there: then leave it. */
		if (rmdir(k->pin_dir) < 0 && errno != ENOTEMPTY && errno != EEXIST &&
		    errno != ENOENT && errno != EBUSY)
			log_warn("cannot remove pin directory %s: %s", k->pin_dir,
				 strerror(errno));
		close(k->lock_fd);
	}
	free(k->percpu);
	free(k->pin_dir);
	free(k);
}
