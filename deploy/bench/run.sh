#!/usr/bin/env bash
# deploy/bench/run.sh: the benchmark behind `make bench`. See README.md here.
#
#   deploy/bench/run.sh                  # ~10 s per measurement, then the sweep
#   BENCH_SECONDS=2 deploy/bench/run.sh  # quick mode
#   BENCH_SECONDS=2 BENCH_ROUNDS=1 BENCH_STEPS=sweep deploy/bench/run.sh  # the sweep alone, quickly
#
# It installs haproxy, nginx, wrk, iperf3, redis-server and redis-benchmark
# with apt-get when they are missing (root only), builds ringproxy and the
# bench tools, and runs the Go orchestrator (deploy/bench/runner), which
# starts every process, pins them with taskset, measures, and writes
# results/latest.{md,csv,svg}, latest-tls.csv and latest-sweep.{csv,svg}
# (BENCH_OUT: another directory).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GO=${GO:-go}
RINGPROXY=${RINGPROXY:-} # a prebuilt ringproxy to measure instead of building bin/ringproxy
OUT=${BENCH_OUT:-$HERE/results}
LDFLAGS=-ldflags=-checklinkname=0
WORK=""
RUNNER_PID=""

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# cleanup runs on every exit: stop the runner (which stops what it started),
# then kill any process group it recorded and could not stop itself.
cleanup() {
	trap - EXIT INT TERM HUP
	if [[ -n $RUNNER_PID ]] && kill -0 "$RUNNER_PID" 2>/dev/null; then
		kill -TERM "$RUNNER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$RUNNER_PID" 2>/dev/null || true
	fi
	if [[ -n $WORK && -s $WORK/pgids ]]; then
		while read -r pgid; do
			[[ $pgid =~ ^[0-9]+$ ]] && kill -KILL -- "-$pgid" 2>/dev/null || true
		done <"$WORK/pgids"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

check_platform() {
	[[ $(uname -s) == Linux ]] || die "Linux only"
	local n
	n=$(nproc --all)
	((n >= 2)) || die "needs at least 2 CPUs (the proxy on CPU 0, the load on CPU 1); this machine has $n"
	command -v taskset >/dev/null || die "taskset (util-linux) is missing"
	command -v "$GO" >/dev/null || die "go is missing"
	if ((n > 2)); then
		say "note: $n CPUs; the benchmark uses CPU 0 (proxy) and CPU 1 (load, backends) only"
	fi
}

# wants STEP: whether BENCH_STEPS (a comma list, default all) selects STEP.
wants() {
	local steps=${BENCH_STEPS:-all}
	[[ $steps == all || ,${steps// /}, == *,$1,* ]]
}

# ensure_tools installs the Debian packages of the tools that are missing
# (tool:package; redis-benchmark is in redis-tools).
ensure_tools() {
	local missing=() want=(haproxy:haproxy nginx:nginx wrk:wrk) pair
	export PATH=$PATH:/usr/sbin:/sbin # haproxy and nginx live in sbin
	wants bulk && want+=(iperf3:iperf3)
	wants sweep && want+=(redis-server:redis-server redis-benchmark:redis-tools)
	for pair in "${want[@]}"; do
		command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
	done
	((${#missing[@]} == 0)) && return
	if ((EUID != 0)); then
		die "missing: ${missing[*]}; run as root to have them installed (apt-get install -y ${missing[*]})"
	fi
	say "installing missing tools with apt-get: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	# Debian's packages may start their own services: the benchmark only uses
	# its own instances on its own ports, so those are left alone.
}

# build builds bin/ringproxy (as `make build` does) and the bench tools into
# the work directory.
build() {
	if [[ -z $RINGPROXY ]]; then
		say "building bin/ringproxy and the bench tools"
		(cd "$ROOT" && "$GO" build "$LDFLAGS" -o bin/ringproxy ./cmd/ringproxy)
		RINGPROXY=$ROOT/bin/ringproxy
	else
		say "building the bench tools; measuring RINGPROXY=$RINGPROXY"
	fi
	local tool
	for tool in runner iocopy holdconns rategen tlsgen; do
		(cd "$ROOT" && "$GO" build "$LDFLAGS" -o "$WORK/bin/$tool" "./deploy/bench/$tool")
	done
}

run_runner() {
	"$WORK/bin/runner" \
		-work "$WORK" \
		-out "$OUT" \
		-root "$ROOT" \
		-ringproxy "$RINGPROXY" \
		-iocopy "$WORK/bin/iocopy" \
		-holdconns "$WORK/bin/holdconns" \
		-rategen "$WORK/bin/rategen" \
		-tlsgen "$WORK/bin/tlsgen" &
	RUNNER_PID=$!
	local rc=0
	wait "$RUNNER_PID" || rc=$?
	RUNNER_PID=""
	return "$rc"
}

main() {
	check_platform
	if ((EUID != 0)); then
		say "note: not root; the idle-connection step needs RLIMIT_NOFILE above 2*BENCH_HOLD (now $(ulimit -n))"
	fi
	ensure_tools
	WORK=$(mktemp -d /tmp/ringproxy-bench.XXXXXX)
	mkdir -p "$WORK/bin"
	build
	# Raise the file limit for everything started from here (root may raise
	# the hard limit; the runner raises its own again).
	ulimit -Hn 1048576 2>/dev/null || true
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	run_runner
	say "logs and generated configs: $WORK"
}

main "$@"
