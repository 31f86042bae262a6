// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The listening socket: created once at start-up, refusing a path that a
 * live agent holds and replacing a file a dead one left; accepting clients
 * with a spare fd in reserve so that running out of fds sheds one client
 * instead of spinning (libuv's trick).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

/* 1 when the last component was made here, 0 when it existed, -errno. */
static int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) == 0)
		return 1;
	return errno == EEXIST ? 0 : -errno;
}

/*
 * An agent that will run as another user must still be able to remove its
 * socket at exit: give it the socket's directory if the agent made it. A
 * directory that was there before stays as it is (it may be /run or /tmp);
 * then the socket outlives the agent, and the next one replaces it.
 */
static void server_hand_over_dir(const struct agent *a, const char *dir, bool made)
{
	const struct priv_opts *u = &a->opts.run_as;

	if (!u->have_user || u->uid == 0)
		return;
	if (!made) {
		struct stat st;

		if (stat(dir, &st) == 0 && st.st_uid != u->uid)
			log_info("the socket directory %s is not %s's: the agent, running as %s, may not "
				 "be able to remove its socket at exit (the next start replaces it)",
				 dir, u->user, u->user);
		return;
	}
	if (chown(dir, (uid_t)u->uid, (gid_t)u->gid) < 0)
		log_warn("cannot give %s to user %s: %s (the socket will stay behind at exit)", dir,
			 u->user, strerror(errno));
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* Is a live agent answering at path? 1 yes, 0 no (stale file), -errno. */
static int socket_is_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	r = r == 0 ? 1 : (errno == ECONNREFUSED ? 0 : -errno);
	close(fd);
	return r;
}

static void server_on_accept(struct loop_source *src, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)src - offsetof(struct agent, listen_src));

	for (int i = 0; i < 64; i++) {
		int fd = accept4(src->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE) && a->spare_fd >= 0) {
				/* Out of fds: accept and drop one client with our
				 * spare, so that the backlog does not spin the loop. */
				close(a->spare_fd);
				fd = accept4(src->fd, NULL, NULL, SOCK_CLOEXEC);
				if (fd >= 0)
					close(fd);
				a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				log_warn("out of file descriptors: refused a client (raise the fd limit, LimitNOFILE=)");
				continue;
			}
			if (errno != EAGAIN)
				log_warn("accept on %s failed: %s", a->opts.socket_path, strerror(errno));
			return;
		}
		if (client_accept(a, fd) < 0) {
			log_warn("cannot take a new client: out of memory");
			close(fd);
		}
	}
}

/* The configured owner, group and mode on the socket file. 0 or -errno. */
static int server_set_owner(const struct agent *a, const char *path)
{
	const struct agent_opts *o = &a->opts;

	if (lchown(path, (uid_t)o->socket_uid, (gid_t)o->socket_gid) < 0) {
		int e = errno;

		log_error("cannot give %s to uid %u, gid %u: %s (run the agent as root, or choose a "
			  "socket-owner and socket-group it may use)", path, o->socket_uid, o->socket_gid,
			  strerror(e));
		return -e;
	}
	if (chmod(path, o->socket_mode) < 0) {
		int e = errno;

		log_error("cannot set mode %04o on %s: %s", o->socket_mode, path, strerror(e));
		return -e;
	}
	return 0;
}

int server_listen(struct agent *a)
{
	const char *path = a->opts.socket_path;
	struct sockaddr_un sa;
	char dir[PATH_MAX];
	struct stat stt;
	mode_t old_umask;
	int fd, r;

	if (fill_addr(path, &sa) < 0) {
		log_error("socket path %s is too long (at most %zu bytes): choose a shorter --socket",
			  path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	r = mkdir_p(dirname(dir), 0755);
	if (r < 0) {
		log_error("cannot create the socket directory for %s: %s", path, strerror(-r));
		return r;
	}
	server_hand_over_dir(a, dir, r == 1);
	if (lstat(path, &stt) == 0) {
		if (!S_ISSOCK(stt.st_mode)) {
			log_error("%s exists and is not a socket: remove it or choose another --socket", path);
			return -EEXIST;
		}
		r = socket_is_live(&sa);
		if (r == 1) {
			log_error("another zenmond is already serving %s: stop it first, or give this one another --socket",
				  path);
			return -EADDRINUSE;
		}
		log_info("removing stale socket %s left by an agent that is gone", path);
		if (unlink(path) < 0 && errno != ENOENT) {
			log_error("cannot remove stale socket %s: %s", path, strerror(errno));
			return -errno;
		}
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("cannot create a Unix socket: %s", strerror(errno));
		return -errno;
	}
	/* Born owner-only, so that nobody connects before the owner, group
	 * and mode below are in place. */
	old_umask = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_umask);
	if (r < 0) {
		r = -errno;
		log_error("cannot bind %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	a->socket_bound = true;
	/* Who may connect is decided by the socket file's owner, group and
	 * mode; then access.h decides what each may monitor. */
	r = server_set_owner(a, path);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		log_error("cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	a->listen_src.fd = fd;
	a->listen_src.fn = server_on_accept;
	r = loop_add(a->loop, &a->listen_src, EPOLLIN);
	if (r < 0) {
		log_error("cannot watch the listening socket: %s", strerror(-r));
		close(fd);
		a->listen_src.fd = -1;
		return r;
	}
	return 0;
}

void server_close(struct agent *a)
{
	if (a->listen_src.fd >= 0) {
		loop_del(a->loop, &a->listen_src);
		close(a->listen_src.fd);
		a->listen_src.fd = -1;
	}
	if (a->spare_fd >= 0) {
		close(a->spare_fd);
		a->spare_fd = -1;
	}
	if (a->socket_bound && unlink(a->opts.socket_path) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", a->opts.socket_path, strerror(errno));
	a->socket_bound = false;
}
