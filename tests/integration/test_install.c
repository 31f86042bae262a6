// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * `make install` and `make uninstall` into a DESTDIR: the files land where
 * the variables say, the shared library carries its soname, a program
 * builds against the installed header with pkg-config and runs against the
 * installed library, an edited configuration file survives both, and
 * uninstall leaves nothing of ours behind.
 *
 * It runs make on the build directory under test (ZM_BUILD), which is
 * normally up to date, so nothing is rebuilt. Needs no root and no BPF: the
 * group runs without an agent.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The source tree: the working directory when the tests run from it, else
 * the build directory's parent. */
static const char *source_dir(void)
{
	static char dir[PATH_MAX];

	if (dir[0])
		return dir;
	if (access("Makefile", R_OK) == 0 && access("dist/zenmond.service", R_OK) == 0) {
		if (!getcwd(dir, sizeof(dir)))
			snprintf(dir, sizeof(dir), ".");
	} else {
		snprintf(dir, sizeof(dir), "%s/..", zmh_build_dir());
	}
	return dir;
}

/* An absolute build directory: make runs in the source tree. */
static const char *build_dir(void)
{
	static char dir[PATH_MAX];

	if (!dir[0] && !realpath(zmh_build_dir(), dir))
		snprintf(dir, sizeof(dir), "%s", zmh_build_dir());
	return dir;
}

/*
 * Run argv with the environment given as "NAME=value" strings added (and
 * make's own variables removed, so that a `make test` above does not leak
 * into the make below), output into log. The exit status, or -1.
 */
static int run(const char *const *argv, const char *const *env, const char *log)
{
	pid_t pid = fork();
	int ws;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		unsetenv("MAKEFLAGS");
		unsetenv("MFLAGS");
		unsetenv("MAKELEVEL");
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "test: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &ws, 0) != pid)
		return -1;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static void dump(const char *log)
{
	char buf[16384];
	int fd = open(log, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	fprintf(stderr, "---- %s ----\n%s---- end ----\n", log, buf);
	if (fd >= 0)
		close(fd);
}

struct dest {
	char root[64];           /* the DESTDIR */
	char log[96];            /* what make and cc said */
};

static void dest_make(struct dest *d)
{
	snprintf(d->root, sizeof(d->root), "/tmp/zm-it-install-XXXXXX");
	assert_non_null(mkdtemp(d->root));
	snprintf(d->log, sizeof(d->log), "%s.log", d->root);
	unlink(d->log);
}

static void dest_remove(struct dest *d)
{
	zmh_cmd((const char *const[]){ "rm", "-rf", d->root, NULL }, true);
	unlink(d->log);
}

/* make -C SRC TARGET BUILD=... DESTDIR=... PREFIX=/usr [SAN=1]: must succeed. */
static void make_target(struct dest *d, const char *target)
{
	char build[PATH_MAX + 8], destdir[96];
	const char *argv[12] = { "make", "--no-print-directory", "-C", source_dir(), target };
	size_t argc = 5;

	snprintf(build, sizeof(build), "BUILD=%s", build_dir());
	snprintf(destdir, sizeof(destdir), "DESTDIR=%s", d->root);
	argv[argc++] = build;
	argv[argc++] = destdir;
	argv[argc++] = "PREFIX=/usr";
#if defined(__SANITIZE_ADDRESS__)
	argv[argc++] = "SAN=1";         /* if anything is rebuilt, the same way */
#endif
	argv[argc] = NULL;
	if (run(argv, NULL, d->log) != 0) {
		dump(d->log);
		fail_msg("make %s DESTDIR=%s PREFIX=/usr failed", target, d->root);
	}
}

static void expect_file(const struct dest *d, const char *rel, mode_t type, mode_t perm)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s", d->root, rel);
	if (lstat(path, &st) != 0)
		fail_msg("make install did not create %s", rel);
	if ((st.st_mode & S_IFMT) != type)
		fail_msg("%s has type 0%o, want 0%o", rel, st.st_mode & S_IFMT, type);
	if (perm && (st.st_mode & 07777) != perm)
		fail_msg("%s has mode %04o, want %04o", rel, st.st_mode & 07777, perm);
}

/* The output of a command (popen), first line, into buf. */
static void first_line_of(const char *cmd, char *buf, size_t cap)
{
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	buf[0] = '\0';
	if (!fgets(buf, (int)cap, p))
		buf[0] = '\0';
	pclose(p);
	buf[strcspn(buf, "\n")] = '\0';
}

static bool file_has(const char *path, const char *text)
{
	char buf[16384];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static int leftovers;
static char leftover_names[1024];

static int count_non_dir(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag != FTW_D && flag != FTW_DP) {
		leftovers++;
		if (strlen(leftover_names) + strlen(path) + 2 < sizeof(leftover_names)) {
			strcat(leftover_names, path);
			strcat(leftover_names, " ");
		}
	}
	return 0;
}

static int count_left(const struct dest *d)
{
	leftovers = 0;
	leftover_names[0] = '\0';
	assert_int_equal(nftw(d->root, count_non_dir, 16, FTW_PHYS), 0);
	return leftovers;
}

static void test_install_lays_out_the_files_and_uninstall_removes_them(void **state)
{
	/* Paths here are under /tmp/zm-it-install-XXXXXX or the source tree:
	 * short, but sized so that the compiler can prove nothing is cut. */
	char path[PATH_MAX + 64], line[512], cmd[6 * PATH_MAX], prog[256], src[256];
	char flags[1024], pc_env1[256], pc_env2[256], ld_env[256];
	struct dest d;
	DIR *man;
	FILE *f;

	dest_make(&d);
	make_target(&d, "install");

	expect_file(&d, "/usr/sbin/zenmond", S_IFREG, 0755);
	expect_file(&d, "/usr/bin/zenmonctl", S_IFREG, 0755);
	expect_file(&d, "/usr/lib/libzenmon.a", S_IFREG, 0644);
	expect_file(&d, "/usr/lib/libzenmon.so.1", S_IFREG, 0755);
	expect_file(&d, "/usr/lib/libzenmon.so", S_IFLNK, 0);
	expect_file(&d, "/usr/include/zenmon.h", S_IFREG, 0644);
	expect_file(&d, "/usr/include/zenmon/proto.h", S_IFREG, 0644);
	expect_file(&d, "/usr/lib/pkgconfig/zenmon.pc", S_IFREG, 0);
	expect_file(&d, "/usr/lib/systemd/system/zenmond.service", S_IFREG, 0);
	expect_file(&d, "/etc/zenmon/zenmond.conf", S_IFREG, 0644);

	snprintf(path, sizeof(path), "%s/usr/lib/libzenmon.so", d.root);
	assert_int_equal(readlink(path, line, sizeof(line) - 1), (ssize_t)strlen("libzenmon.so.1"));
	line[strlen("libzenmon.so.1")] = '\0';
	assert_string_equal(line, "libzenmon.so.1");

	/* The soname the linker records in programs. */
	snprintf(cmd, sizeof(cmd), "readelf -d '%s/usr/lib/libzenmon.so.1' | grep SONAME", d.root);
	first_line_of(cmd, line, sizeof(line));
	if (!strstr(line, "[libzenmon.so.1]"))
		fail_msg("libzenmon.so.1 has no soname libzenmon.so.1 (readelf: \"%s\")", line);

	/* The unit runs the installed binary; the .pc names the install's dirs. */
	snprintf(path, sizeof(path), "%s/usr/lib/systemd/system/zenmond.service", d.root);
	assert_true(file_has(path, "\nExecStart=/usr/sbin/zenmond\n"));
	assert_true(file_has(path, "\nType=notify\n"));
	assert_true(file_has(path, "\nRuntimeDirectory=zenmon\n"));
	snprintf(path, sizeof(path), "%s/usr/lib/pkgconfig/zenmon.pc", d.root);
	assert_true(file_has(path, "prefix=/usr\n"));
	assert_true(file_has(path, "libdir=/usr/lib\n"));
	assert_true(file_has(path, "includedir=/usr/include\n"));

	/* Every man page the tree has, in its section. */
	snprintf(path, sizeof(path), "%s/docs/man", source_dir());
	man = opendir(path);
	for (struct dirent *e; man && (e = readdir(man));) {
		const char *dot = strrchr(e->d_name, '.');
		char rel[PATH_MAX];

		if (!dot || dot[1] < '1' || dot[1] > '8' || dot[2])
			continue;
		snprintf(rel, sizeof(rel), "/usr/share/man/man%c/%s", dot[1], e->d_name);
		expect_file(&d, rel, S_IFREG, 0644);
	}
	if (man)
		closedir(man);

	/* A program against the installed header and library, via pkg-config. */
	snprintf(src, sizeof(src), "%s/usr/prog.c", d.root);
	snprintf(prog, sizeof(prog), "%s/usr/prog", d.root);
	f = fopen(src, "w");
	assert_non_null(f);
	fputs("#include <stdio.h>\n#include <zenmon.h>\n#include <zenmon/proto.h>\n"
	      "int main(void)\n{\n\tstruct zm_client *c;\n"
	      "\tint r = zm_connect(\"/nonexistent/zm.sock\", \"t\", &c);\n"
	      "\tprintf(\"%s %d\\n\", zm_version(), r < 0);\n\treturn 0;\n}\n", f);
	fclose(f);
	snprintf(pc_env1, sizeof(pc_env1), "PKG_CONFIG_SYSROOT_DIR=%s", d.root);
	snprintf(pc_env2, sizeof(pc_env2), "PKG_CONFIG_LIBDIR=%s/usr/lib/pkgconfig", d.root);
	snprintf(cmd, sizeof(cmd), "env %s %s pkg-config --cflags --libs zenmon", pc_env1, pc_env2);
	first_line_of(cmd, flags, sizeof(flags));
	snprintf(line, sizeof(line), "-I%s/usr/include", d.root);
	if (!strstr(flags, line) || !strstr(flags, "-lzenmon"))
		fail_msg("pkg-config --cflags --libs zenmon says \"%s\", want %s ... -lzenmon", flags, line);
	snprintf(cmd, sizeof(cmd), "cc -Wall -Werror %s -o '%s' '%s' %s >>'%s' 2>&1",
#if defined(__SANITIZE_ADDRESS__)
		 "-fsanitize=address,undefined",
#else
		 "",
#endif
		 prog, src, flags, d.log);
	if (system(cmd) != 0) {
		dump(d.log);
		fail_msg("a program does not build against the installed zenmon: %s", cmd);
	}
	snprintf(cmd, sizeof(cmd), "readelf -d '%s' | grep NEEDED | grep -c 'libzenmon.so.1'", prog);
	first_line_of(cmd, line, sizeof(line));
	assert_string_equal(line, "1");
	snprintf(ld_env, sizeof(ld_env), "%s/usr/lib", d.root);
	snprintf(cmd, sizeof(cmd), "LD_LIBRARY_PATH='%s' '%s'", ld_env, prog);
	first_line_of(cmd, line, sizeof(line));
	snprintf(flags, sizeof(flags), "%s 1", zm_version());
	assert_string_equal(line, flags);
	unlink(src);
	unlink(prog);

	make_target(&d, "uninstall");
	if (count_left(&d) != 0) {
		dump(d.log);
		fail_msg("make uninstall left %d files: %s", leftovers, leftover_names);
	}
	snprintf(path, sizeof(path), "%s/usr/include/zenmon", d.root);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/etc/zenmon", d.root);
	assert_int_equal(access(path, F_OK), -1);
	dest_remove(&d);
}

static void test_install_keeps_an_edited_config_file(void **state)
{
	char path[PATH_MAX];
	struct dest d;
	FILE *f;

	dest_make(&d);
	make_target(&d, "install");
	snprintf(path, sizeof(path), "%s/etc/zenmon/zenmond.conf", d.root);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("max-rate = 5\n", f);
	fclose(f);

	make_target(&d, "install");
	assert_true(file_has(path, "max-rate = 5\n"));
	assert_true(file_has(d.log, "keeping"));

	make_target(&d, "uninstall");
	assert_true(file_has(path, "max-rate = 5\n"));
	assert_int_equal(count_left(&d), 1);
	dest_remove(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_install_lays_out_the_files_and_uninstall_removes_them),
		cmocka_unit_test(test_install_keeps_an_edited_config_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
