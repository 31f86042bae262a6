/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * `make bench` keeps working: the harness (build/zm-bench) runs one of its
 * modules against the agent built beside it and prints the machine, its
 * parameters and a table whose zenmon column holds figures, next to the
 * pidfd baseline. It measures nothing here: the figures are only checked to
 * be there and to make sense (speeds above zero, memory per monitor within
 * reason), since timings on a shared CI machine prove nothing.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run zm-bench with args, its standard output into out (NUL-ended). Its
 * wait status, or -errno. */
static int run_bench(const char *const *args, char *out, size_t cap)
{
	char bench[512], zenmond[512];
	const char *argv[16];
	size_t argc = 0, len = 0;
	int p[2], ws;
	ssize_t n;
	pid_t pid;

	snprintf(bench, sizeof(bench), "%s/zm-bench", zmh_build_dir());
	snprintf(zenmond, sizeof(zenmond), "%s", zmh_zenmond_path());
	argv[argc++] = bench;
	argv[argc++] = "--zenmond";
	argv[argc++] = zenmond;
	for (size_t i = 0; args[i] && argc < 15; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	if (pipe(p) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while (len + 1 < cap && (n = read(p[0], out + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	if (waitpid(pid, &ws, 0) != pid)
		return -errno;
	return ws;
}

/* The number in the zenmon column of the row whose measure starts with
 * measure, or -1. */
static double row_value(const char *out, const char *measure)
{
	const char *row = strstr(out, measure);
	double v;

	/* measure, padding, unit, then the zenmon column. */
	if (!row || sscanf(row + strlen(measure), "%*s %lf", &v) != 1)
		return -1;
	return v;
}

static void test_register_module_prints_machine_parameters_and_figures(void **state)
{
	static const char *const args[] = { "--runs", "1", "--out", "/tmp/zm-it-bench", "register",
					    NULL };
	char *out = malloc(1 << 16);
	double per_s, conns10, bytes, pidfd_bytes, cpu_ns;
	int ws;

	(void)zmh_env(state);
	assert_non_null(out);
	ws = run_bench(args, out, 1 << 16);
	if (ws < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		fail_msg("zm-bench register: wait status %#x; it printed:\n%s", ws, out);
	if (!strstr(out, "machine: Linux ") || !strstr(out, "1 run(s) per measure"))
		fail_msg("no machine or parameter line:\n%s", out);
	per_s = row_value(out, "monitors/s, 100k on 1000 procs, 1 connection");
	conns10 = row_value(out, "monitors/s, 100k on 1000 procs, 10 connections");
	bytes = row_value(out, "agent memory per monitor, 100k monitors");
	pidfd_bytes = row_value(out, "kernel memory per target, 10k targets");
	cpu_ns = row_value(out, "agent CPU per monitor, 1 connection");
	if (per_s <= 0 || conns10 <= 0 || bytes <= 0 || bytes > 4096 || pidfd_bytes <= 0)
		fail_msg("figures missing or absurd (%.0f, %.0f mon/s, %.0f B/monitor, %.0f B/target):"
			 "\n%s", per_s, conns10, bytes, pidfd_bytes, out);
	/* The agent's CPU per monitor: some, and no more than the wall time
	 * per monitor allows on this machine's CPUs (it is one thread). */
	if (cpu_ns <= 0 || cpu_ns > 1e9 / per_s * 1.05)
		fail_msg("agent CPU per monitor %.0f ns, absurd beside %.0f mon/s:\n%s", cpu_ns,
			 per_s, out);
	if (!strstr(out, "x pidfd"))
		fail_msg("no ratio against the pidfd baseline:\n%s", out);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ZMH_TEST(test_register_module_prints_machine_parameters_and_figures),
	};

	return cmocka_run_group_tests(tests, zmh_group_setup, zmh_group_teardown);
}
