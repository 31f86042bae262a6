// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * zm-bench: zenmon measured side by side with what users would pick
 * instead (a pidfd per target, the proc connector, bcc's exitsnoop, and no
 * observer at all), in one run on one machine, printed as one table.
 *
 * Needs root: every module starts its own zenmond, and the baselines need
 * CAP_NET_ADMIN (proc connector) and CAP_BPF (exitsnoop). Run through
 * `make bench` (quick pass) or `make bench FULL=1`.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "zenmon.h"

static const struct module {
	const char *name;
	int (*run)(const struct bench_cfg *cfg, struct bench_table *t);
	const char *what;
} modules[] = {
	{ "storm", bench_storm, "cost to the host: fork+exit storm throughput under each observer" },
	{ "latency", bench_latency, "detection latency: a target's exit to the news in hand" },
	{ "massdeath", bench_massdeath, "mass death: N watched processes killed at once" },
	{ "register", bench_register, "registration: monitors per second, memory per monitor" },
	{ "fanout", bench_fanout, "fan-out: one death delivered to many monitors" },
};
#define N_MODULES (sizeof(modules) / sizeof(modules[0]))

static void usage(FILE *f)
{
	fprintf(f,
"Usage: zm-bench [OPTIONS] [MODULE...]\n"
"Measure zenmon against a pidfd watcher, the proc connector, exitsnoop and no\n"
"observer, in one run, and print one table (medians of --runs runs).\n"
"\n"
"Modules (default: all, in this order):\n");
	for (size_t i = 0; i < N_MODULES; i++)
		fprintf(f, "  %-10s %s\n", modules[i].name, modules[i].what);
	fprintf(f,
"\n"
"Options:\n"
"  --zenmond PATH   the agent to measure (default: build/zenmond)\n"
"  --out DIR        where data files and PNG plots go (default: build/bench)\n"
"  --full           the large sizes too (100,000 processes, 1,000,000 monitors)\n"
"  --runs N         runs per measure, medians reported (default: 3)\n"
"  -v, --verbose    progress on stderr\n"
"  -h, --help       this help\n"
"\n"
"Needs root. The quick pass takes a few minutes; --full much longer.\n");
}

static const struct module *find_module(const char *name)
{
	for (size_t i = 0; i < N_MODULES; i++)
		if (strcmp(modules[i].name, name) == 0)
			return &modules[i];
	return NULL;
}

static int make_dirs(const char *path)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "zenmond", required_argument, NULL, 'z' },
		{ "out", required_argument, NULL, 'o' },
		{ "full", no_argument, NULL, 'F' },
		{ "runs", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct bench_cfg cfg = { .zenmond = "build/zenmond", .out_dir = "build/bench", .runs = 3 };
	const struct module *run[N_MODULES];
	struct bench_table table = { 0 };
	size_t n_run = 0;
	bool ok = true;
	int c, r;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'z':
			cfg.zenmond = optarg;
			break;
		case 'o':
			cfg.out_dir = optarg;
			break;
		case 'F':
			cfg.full = true;
			break;
		case 'r':
			cfg.runs = atoi(optarg);
			if (cfg.runs < 1 || cfg.runs > 99) {
				fprintf(stderr, "zm-bench: --runs wants 1..99, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'v':
			cfg.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		const struct module *m = find_module(argv[i]);

		if (!m) {
			fprintf(stderr, "zm-bench: no module '%s' (see zm-bench --help)\n", argv[i]);
			return 2;
		}
		if (n_run == N_MODULES) {
			fprintf(stderr, "zm-bench: name each module at most once\n");
			return 2;
		}
		run[n_run++] = m;
	}
	if (!n_run)
		for (size_t i = 0; i < N_MODULES; i++)
			run[n_run++] = &modules[i];

	if (geteuid() != 0) {
		fprintf(stderr, "zm-bench: needs root (zenmond and exitsnoop load BPF programs, the "
			"proc connector needs CAP_NET_ADMIN)\n");
		return 1;
	}
	if (access(cfg.zenmond, X_OK) != 0) {
		fprintf(stderr, "zm-bench: %s: %s (build it first: make)\n", cfg.zenmond,
			strerror(errno));
		return 1;
	}
	r = make_dirs(cfg.out_dir);
	if (r < 0) {
		fprintf(stderr, "zm-bench: cannot create %s: %s\n", cfg.out_dir, strerror(-r));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	bench_print_machine(stdout, "zm-bench: zenmon against what users would pick instead");
	printf("zenmon: %s (libzenmon %s); %s pass, %d run(s) per measure, medians; data and "
	       "plots in %s\n", cfg.zenmond, zm_version(), cfg.full ? "full" : "quick", cfg.runs,
	       cfg.out_dir);
	for (size_t i = 0; i < n_run; i++) {
		uint64_t t0 = bench_now_ns();

		printf("\n== %s: %s\n", run[i]->name, run[i]->what);
		if (run[i]->run(&cfg, &table) < 0) {
			printf("== %s: FAILED a check (see above)\n", run[i]->name);
			ok = false;
		}
		printf("== %s: %.1f s\n", run[i]->name, (bench_now_ns() - t0) / 1e9);
	}
	printf("\n");
	bench_table_print(&table, stdout);
	bench_table_free(&table);
	bench_restore_sysctls();
	return ok ? 0 : 1;
}
