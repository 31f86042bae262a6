#!/usr/bin/env bash
# Install what zenmon needs to build and test, on Debian 12 (bookworm) or a
# close relative. Idempotent: installs only what is missing, and prints
# nothing more than one line when everything is there.
#
#   tools/install-deps.sh          build and test dependencies
#   tools/install-deps.sh --bench  and what `make bench` measures against
set -euo pipefail

# package            what proves it is installed (a glob: one match is enough)
deps=(
	"clang           /usr/bin/clang"
	"llvm            /usr/bin/llvm-strip"
	"libclang-rt-14-dev /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a"
	"libbpf-dev      /usr/include/bpf/libbpf.h"
	"bpftool         /usr/sbin/bpftool"
	"libelf-dev      /usr/include/libelf.h"
	"zlib1g-dev      /usr/include/zlib.h"
	"libcmocka-dev   /usr/include/cmocka.h"
	"libmicrohttpd-dev /usr/include/microhttpd.h"
	"python3         /usr/bin/python3"
	"pkg-config      /usr/bin/pkg-config"
	"gcc             /usr/bin/gcc"
	"make            /usr/bin/make"
	"iproute2        /usr/sbin/ip"
	"procps          /usr/bin/pgrep"
	"man-db          /usr/bin/man"      # renders docs/man in tests/integration/test_manpages.c
	"groff-base      /usr/bin/groff"
)

# The benchmarks' baselines and plots (make bench).
bench_deps=(
	"libbpf-tools    /usr/sbin/exitsnoop"
	"gnuplot-nox     /usr/bin/gnuplot"
)

case "${1:-}" in
	--bench) deps+=("${bench_deps[@]}") ;;
	"") ;;
	*) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

missing=()
for d in "${deps[@]}"; do
	read -r pkg path <<<"$d"
	compgen -G "$path" >/dev/null || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all build dependencies are present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root to install them (zenmon's build, tests and agent need root: there is no sudo here)" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: missing packages: ${missing[*]}, and apt-get is not available: install them with this system's package manager" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
