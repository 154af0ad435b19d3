#!/usr/bin/env bash
# ab.sh: A/B benchmark of ringproxy builds (and haproxy) on loopback, set up
# like deploy/bench: proxy pinned to CPU 0, nginx / iperf3 / load generators
# on CPU 1, CPU charged = max(proxy utime+stime delta, CPU 0 busy delta), both
# without steal (printed apart: the host ran others).
# -w control is the exception: control-plane latency (ctlprobe) with the
# proxy's workers on every CPU, idle and under full keep-alive load.
set -u
usage() {
	printf '%s\n' "usage: $0 [-s SECONDS] [-r ROUNDS] [-w keepalive|close|bulk|rate|redis|control] [-c CONNS] [-q RATE] [-p stat|record] TARGET..." \
		"  TARGET: haproxy | RINGPROXY-BINARY[:uring|:epoll] (default uring); defaults -s 6 -r 3 -w keepalive -c 64" \
		"  -c: wrk's (keepalive, close), rategen's (rate) or redis-benchmark's (redis) connections" \
		"  redis: redis-benchmark -t get to redis-server, measured over a window of SECONDS once it runs" \
		"  -p (keepalive, close, redis, rate): perf on the proxy's CPU over the measurement, which it perturbs: stat prints" \
		"    syscalls, task switches, io_uring submissions and completions, IPIs and timer interrupts per request;" \
		"    record writes a cpu-clock profile with call graphs (perf report -i FILE) and prints its top symbols" \
		"    and the CPU per request by kind of work (perfcat: TCP/IP, wakeups, timers, which any proxy pays; io_uring," \
		"    epoll, syscalls, user code, the proxy's own)" \
		"  rate: rategen offers RATE keep-alive requests/s (default 16000) over CONNS connections: CPU at equal load" \
		"  control: ctlprobe latency of /metrics, /stats.json, a 404 and admin show info, idle then under" \
		"    wrk -t2 -c64, workers = CPUs, http check every 1s; ringproxy targets only" >&2
	exit 2
}
S=6 R=3 W=keepalive Q=16000 C=64 PERF=
while getopts s:r:w:q:c:p:h o; do
	case $o in s) S=$OPTARG ;; r) R=$OPTARG ;; w) W=$OPTARG ;; q) Q=$OPTARG ;; c) C=$OPTARG ;; p) PERF=$OPTARG ;; *) usage ;; esac
done
shift $((OPTIND - 1))
(($#)) || usage
[[ $S =~ ^[1-9][0-9]*$ && $R =~ ^[1-9][0-9]*$ && $Q =~ ^[1-9][0-9]*$ && $C =~ ^[1-9][0-9]*$ ]] || usage
[[ $W == keepalive || $W == close || $W == bulk || $W == rate || $W == redis || $W == control ]] || usage
[[ -z $PERF || (($PERF == stat || $PERF == record) && ($W == keepalive || $W == close || $W == redis || $W == rate)) ]] || usage
die() { echo "ab.sh: $*" >&2; exit 1; }
((EUID == 0)) || die "run as root (taskset, rlimits)"
NEED=(taskset setsid ss nginx wrk jq awk); [[ $W == bulk ]] && NEED+=(iperf3)
[[ $W == redis ]] && NEED+=(redis-server redis-benchmark redis-cli)
[[ -n $PERF ]] && NEED+=(perf)
for t in "${NEED[@]}"; do command -v $t >/dev/null || die "$t not found"; done

RUN=${AB_RUN:-/tmp/ringproxy-ab} # configs, logs, results.tsv: kept for inspection
NGINX_PORT=28080 IPERF_PORT=28081 REDIS_PORT=28083 HTTP_PORT=28110 BULK_PORT=28111 STATS_PORT=28112 REDIS_FE=28113
PROXY_CPU=0 LOAD_CPU=1 CLIENT_CPU=1 WORKERS=1 # CLIENT_CPU: wrk, rategen, iperf3 client, ctlprobe
if [[ $W == control ]]; then # issue #14: "with both CPUs busy": loops on every CPU (ringproxy pins them)
	PROXY_CPU=0-$(($(nproc) - 1)) CLIENT_CPU=0-$(($(nproc) - 1)) WORKERS=$(nproc)
fi
SOCK=$RUN/admin.sock
BODY='ringproxy bench: hello from the nginx backend.\n' # as deploy/bench: 47 bytes

# Targets: KIND[i] haproxy|ringproxy, BIN[i], ENG[i], NAME[i] (label).
KIND=() BIN=() ENG=() NAME=()
for arg in "$@"; do
	i=${#KIND[@]}
	if [[ $arg == haproxy ]]; then
		[[ $W == control ]] && die "-w control measures ringproxy's control plane: no haproxy"
		command -v haproxy >/dev/null || die "haproxy not found"
		KIND+=(haproxy) BIN+=(haproxy) ENG+=(-) name=haproxy
	else
		bin=$arg eng=uring
		if [[ $arg =~ ^(.*):(uring|epoll)$ ]]; then bin=${BASH_REMATCH[1]} eng=${BASH_REMATCH[2]}; fi
		[[ -x $bin && -f $bin ]] || die "$bin: not an executable file"
		KIND+=(ringproxy) BIN+=("$(realpath "$bin")") ENG+=("$eng") name="$(basename "$bin"):$eng"
	fi
	for n in "${NAME[@]}"; do [[ $n == "$name" ]] && name="$name#$((i + 1))"; done
	NAME+=("$name")
done

# Refuse to start if any of our ports already has a listener.
for p in $NGINX_PORT $IPERF_PORT $REDIS_PORT $HTTP_PORT $BULK_PORT $STATS_PORT $REDIS_FE; do
	[[ -z $(ss -Hltn "sport = :$p") ]] || die "port $p is in use: $(ss -Hltnp "sport = :$p" | head -1)"
done

# ---- processes: each in its own session/process group (setsid does not fork
# here, so $! is the process itself), killed as a group.
PIDS=() # live groups: nginx, iperf3 server, proxy, load generator
alive() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [[ ${s:0:1} != Z ]]; }
spawn() { # spawn CPU LOGNAME CMD...: start in the background, sets SPAWNED
	local cpu=$1 log=$RUN/logs/$2; shift 2
	setsid taskset -c "$cpu" "$@" >"$log.out" 2>"$log.err" </dev/null &
	SPAWNED=$!
	PIDS+=("$SPAWNED")
}
forget() { local p keep=(); for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done; PIDS=("${keep[@]}"); }
stop() { # stop PID...: SIGTERM the groups, SIGKILL after 3 s
	local p n any
	for p in "$@"; do kill -TERM -- "-$p" 2>/dev/null; done
	for ((n = 0; n < 30; n++)); do
		any=0; for p in "$@"; do alive "$p" && any=1; done
		((any)) || break
		sleep 0.1
	done
	for p in "$@"; do kill -KILL -- "-$p" 2>/dev/null; wait "$p" 2>/dev/null; forget "$p"; done
}
# Drop the TIME_WAIT sockets our traffic left: a close run fills the ephemeral
# port range, which makes connect() slower for whichever target runs next.
flush_tw() {
	local p f=()
	for p in $NGINX_PORT $IPERF_PORT $REDIS_PORT $HTTP_PORT $BULK_PORT $STATS_PORT $REDIS_FE; do f+=(or sport = :$p or dport = :$p); done
	ss -K -Htan state time-wait "( ${f[*]:1} )" >/dev/null 2>&1
}
cleanup() {
	trap - EXIT INT TERM
	((${#PIDS[@]})) && stop "${PIDS[@]}"
	flush_tw
}
trap cleanup EXIT
trap 'echo "ab.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

wait_listen() { # wait_listen PID PORT...: up to 10 s, fails if PID exits
	local pid=$1 p n ok; shift
	for ((n = 0; n < 200; n++)); do
		alive "$pid" || return 1
		ok=1; for p in "$@"; do [[ -n $(ss -Hltn "sport = :$p") ]] || ok=0; done
		((ok)) && return 0
		sleep 0.05
	done
	return 1
}
http_ok() { # one HTTP/1.0 request to PORT answered 200
	timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && head -c 12 <&3" 2>/dev/null | grep -q ' 200'
}
errtail() { tail -n 3 "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-200; }
died() { alive "$1" || echo "(the proxy exited: $(errtail "$RUN/logs/$tag-"*proxy.err))"; }

# ---- CPU accounting, in clock ticks (deploy/bench/runner/procfs.go)
TCK=$(getconf CLK_TCK)
proc_ticks() { local s; s=$(<"/proc/$1/stat") || return 1; s=${s##*) }; set -- $s; echo $((${12} + ${13})); }
# Busy leaves out steal: the kernel leaves it out of utime+stime too, and it is time the host ran others.
core_ticks() { # core_ticks [CPU]: busy and steal ticks of the proxy's CPU (or CPU)
	local c u n s i w q sq st r cpu=${1:-$PROXY_CPU}
	while read -r c u n s i w q sq st r; do [[ $c == cpu$cpu ]] && { echo $((u + n + s + q + sq)) $st; return; }; done </proc/stat
}
# -w control: the CPU time of everything else on the machine (other engineers' tests) over a probe
busy_ticks() { local c u n s i w q sq st r; read -r c u n s i w q sq st r </proc/stat; echo $((u + n + s + q + sq)); }
group_ticks() { # utime+stime of every process in our process groups (PIDS)
	local f s g t=0; local -A ours
	for g in "${PIDS[@]}"; do ours[$g]=1; done
	for f in /proc/[0-9]*/stat; do
		{ read -r s <"$f"; } 2>/dev/null || continue # gone meanwhile
		s=${s##*) }; set -- $s
		[[ -n ${ours[$3]:-} ]] && t=$((t + ${12} + ${13}))
	done
	echo $t
}
# The load CPU's busy time (clients, backends, and the softirq of what they
# send) says whether a proxy makes its peers work harder per request: where
# that CPU is the bottleneck (a few closed-loop connections), it sets req/s.
cpu_begin() { P0=$(proc_ticks "$1") && read -r C0 ST0 < <(core_ticks) && read -r L0 _ < <(core_ticks $LOAD_CPU); }
cpu_end() { # sets CPU_PROC CPU_CORE CPU (charged), CPU_STEAL (the core's, charged to no one) and CPU_LOAD in seconds
	local p1 c1 st1 l1; p1=$(proc_ticks "$1") || return 1; read -r c1 st1 < <(core_ticks); read -r l1 _ < <(core_ticks $LOAD_CPU)
	read -r CPU_PROC CPU_CORE CPU CPU_STEAL CPU_LOAD < <(awk -v p=$((p1 - P0)) -v c=$((c1 - C0)) -v st=$((st1 - ST0)) -v l=$((l1 - L0)) -v t="$TCK" \
		'BEGIN { printf "%.2f %.2f %.2f %.2f %.2f\n", p/t, c/t, (p > c ? p : c)/t, st/t, l/t }')
}
load_us() { awk -v l="$CPU_LOAD" -v n="$1" 'BEGIN { printf "%.2f", l/n*1e6 }'; } # load_us REQUESTS: the load CPU's µs per request

# ---- setup: rlimits and maxconn as deploy/bench, run directory, backends
ulimit -Hn 1048576 2>/dev/null; ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n); MAXCONN=$(((NOFILE - 500) * 2 / 5)); ((MAXCONN > 30000)) && MAXCONN=30000
rm -rf "$RUN" && mkdir -p "$RUN/logs" "$RUN/nginx" || die "cannot create $RUN"
cat >"$RUN/nginx.conf" <<EOF
worker_processes 1; worker_cpu_affinity $((10 ** LOAD_CPU)); worker_rlimit_nofile $NOFILE;
daemon off; master_process on; pid $RUN/nginx.pid; error_log $RUN/logs/nginx-error.log warn;
events { worker_connections 30000; use epoll; }
http {
    access_log off; default_type text/plain; keepalive_requests 100000000; keepalive_timeout 300s;
    client_body_temp_path $RUN/nginx/body; proxy_temp_path $RUN/nginx/proxy;
    fastcgi_temp_path $RUN/nginx/fastcgi; uwsgi_temp_path $RUN/nginx/uwsgi; scgi_temp_path $RUN/nginx/scgi;
    server { listen 127.0.0.1:$NGINX_PORT backlog=4096; location / { return 200 "$BODY"; } }
}
EOF
{
	printf 'global\n    nbthread 1\n    maxconn %d\n\ndefaults\n    mode tcp\n    option splice-auto\n' "$MAXCONN"
	printf '    maxconn %d\n    timeout connect 5s\n    timeout client 10m\n    timeout server 10m\n' "$MAXCONN"
	printf '\nlisten %s\n    bind 127.0.0.1:%d\n    server %s1 127.0.0.1:%d\n' http $HTTP_PORT http $NGINX_PORT bulk $BULK_PORT bulk $IPERF_PORT \
		redis $REDIS_FE redis $REDIS_PORT
} >"$RUN/haproxy.cfg"
for eng in uring epoll; do
	{
		printf '[global]\nengine  = "%s"\nworkers = %d\nmaxconn = %d\ngrace   = "1s"\n\n[log]\nlevel  = "warn"\naccess = false\n' "$eng" "$WORKERS" "$MAXCONN"
		[[ $W == control ]] && printf '\n[admin]\nstats  = "127.0.0.1:%d"\nsocket = "%s"\n' $STATS_PORT "$SOCK"
		for r in "http $HTTP_PORT $NGINX_PORT" "bulk $BULK_PORT $IPERF_PORT" "redis $REDIS_FE $REDIS_PORT"; do
			set -- $r
			printf '\n[[frontend]]\nname           = "%s"\nbind           = ["127.0.0.1:%d"]\nbackend        = "%s"\ntimeout_client = "10m"\n' "$1" "$2" "$1"
			printf '\n[[backend]]\nname           = "%s"\ntimeout_server = "10m"\n' "$1"
			[[ $W == control && $1 == http ]] && # a good server a starved check could mark DOWN
				printf '\n  [backend.check]\n  kind     = "http"\n  path     = "/"\n  interval = "1s"\n  timeout  = "1s"\n'
			printf '\n  [[backend.server]]\n  name    = "%s1"\n  address = "127.0.0.1:%d"\n' "$1" "$3"
		done
	} >"$RUN/ringproxy-$eng.toml"
done
cat >"$RUN/report.lua" <<'EOF'
done = function(s, lat, req) local e = s.errors; io.write(string.format("BENCH %d %d %d %.1f %.1f\n", s.requests,
  s.duration, e.connect + e.read + e.write + e.status + e.timeout, lat:percentile(50), lat:percentile(99))) end
EOF

TOOLS=() # the project's own tools: rategen (Debian has no wrk2), ctlprobe, perfcat (-p record)
[[ $W == rate ]] && TOOLS+=(rategen)
[[ $W == control ]] && TOOLS+=(ctlprobe)
[[ $PERF == record ]] && TOOLS+=(perfcat)
for tool in "${TOOLS[@]}"; do
	command -v "${GO:-go}" >/dev/null || die "go not found (needed to build $tool)"
	(cd "$(dirname "$0")/../.." && "${GO:-go}" build -o "$RUN/$tool" ./deploy/bench/$tool) || die "cannot build $tool"
done

spawn $LOAD_CPU nginx nginx -p "$RUN/nginx" -e "$RUN/logs/nginx-error.log" -c "$RUN/nginx.conf"
NGINX=$SPAWNED
wait_listen $NGINX $NGINX_PORT && http_ok $NGINX_PORT || die "nginx did not start: $(errtail "$RUN/logs/nginx-error.log")"
if [[ $W == redis ]]; then
	spawn $LOAD_CPU redis-server redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no \
		--protected-mode no --daemonize no --dir "$RUN" --maxclients 30000 --tcp-backlog 4096
	wait_listen $SPAWNED $REDIS_PORT || die "redis-server did not start: $(errtail "$RUN/logs/redis-server.out")"
fi
if [[ $W == bulk ]]; then
	spawn $LOAD_CPU iperf3-server iperf3 -s -B 127.0.0.1 -p $IPERF_PORT
	wait_listen $SPAWNED $IPERF_PORT || die "iperf3 server did not start: $(errtail "$RUN/logs/iperf3-server.err")"
fi

redis_served() { redis-cli -p $REDIS_PORT info stats 2>/dev/null | awk -F: '/^total_commands_processed/ { print $2 + 0 }'; }

# load LOGNAME CMD...: run a load generator on the client CPU(s) and wait for it
load() { spawn $CLIENT_CPU "$@"; wait "$SPAWNED"; local rc=$?; forget "$SPAWNED"; return $rc; }

# ---- -p: perf on the proxy's CPU around a command (perf_cmd sets PERF_CMD and PERF_OUT for tag $1)
# AB_PERF_EVENTS replaces the -p stat events (perf list), e.g. sock:sock_recv_length,net:netif_rx
PERF_EVENTS=raw_syscalls:sys_enter,sched:sched_switch,io_uring:io_uring_submit_req,io_uring:io_uring_complete
PERF_EVENTS+=,irq_vectors:call_function_single_entry,irq_vectors:local_timer_entry
PERF_EVENTS=${AB_PERF_EVENTS:-$PERF_EVENTS}
perf_cmd() {
	PERF_CMD=() PERF_OUT=
	case $PERF in
	stat) PERF_OUT=$RUN/logs/$1-perf-stat.csv PERF_CMD=(perf stat -C "$PROXY_CPU" -x, -e "$PERF_EVENTS" -o "$PERF_OUT" --) ;;
	record) PERF_OUT=$RUN/$1-perf.data PERF_CMD=(perf record -q -e cpu-clock -g -C "$PROXY_CPU" -o "$PERF_OUT" --) ;;
	esac
}
perf_report() { # perf_report REQUESTS: what -p measured, per request or as top symbols
	[[ -n $PERF ]] || return 0
	if [[ ! -s $PERF_OUT ]]; then echo "    perf: no output ($PERF_OUT)"; return 0; fi
	case $PERF in
	stat) awk -F, -v n="$1" '$1 ~ /^[0-9]+$/ { printf "    %-42s %9.3f /req\n", $3, $1 / n }' "$PERF_OUT" ;;
	record)
		echo "    perf: $PERF_OUT; top symbols (self):"
		perf report -i "$PERF_OUT" --no-children --sort comm,sym -q -g none 2>/dev/null | head -12 | sed 's/^/    /'
		echo "    by kind of work (perfcat: innermost named frame of each sample's call chain):"
		perf script -i "$PERF_OUT" -F comm,period,ip,sym,dso 2>/dev/null | "$RUN/perfcat" -n "$1" -unit "$([[ $W == close ]] && echo conn || echo req)" 2>&1 | sed 's/^/    /' ;;
	esac
}

# ---- one measurement; appends "round target fig..." to $RUN/results.tsv
RES=$RUN/results.tsv
measure() { # measure ROUND INDEX
	local rnd=$1 i=$2 name=${NAME[$2]} tag="r$1-t$(($2 + 1))" proxy line
	flush_tw
	if [[ ${KIND[$i]} == haproxy ]]; then
		spawn $PROXY_CPU "$tag-haproxy" haproxy -db -f "$RUN/haproxy.cfg"
	else
		spawn $PROXY_CPU "$tag-ringproxy" "${BIN[$i]}" run --config "$RUN/ringproxy-${ENG[$i]}.toml"
	fi
	proxy=$SPAWNED
	local ports=($HTTP_PORT $BULK_PORT); [[ $W == control ]] && ports+=($STATS_PORT)
	if ! wait_listen $proxy "${ports[@]}" || ! http_ok $HTTP_PORT; then
		echo "round $rnd  $name  FAILED: proxy did not start: $(errtail "$RUN/logs/$tag-"*.err)"
		stop $proxy; return
	fi
	sleep 0.5
	[[ $W == control ]] || cpu_begin $proxy
	case $W in
	keepalive | close)
		local hdr=() rq us er p50 p99 x
		[[ $W == close ]] && hdr=(-H 'Connection: close')
		perf_cmd "$tag"
		load "$tag-wrk" "${PERF_CMD[@]}" wrk -t1 -c"$C" -d"${S}s" --timeout 5s --latency -s "$RUN/report.lua" "${hdr[@]}" "http://127.0.0.1:$HTTP_PORT/"
		read -r x rq us er p50 p99 < <(grep '^BENCH ' "$RUN/logs/$tag-wrk.out")
		if [[ ${rq:-0} -gt 0 ]] && cpu_end $proxy; then
			read -r line < <(awk -v rq="$rq" -v us="$us" -v c="$CPU" -v p50="$p50" -v p99="$p99" -v w="$W" 'BEGIN {
				if (w == "keepalive") printf "%.0f\t%.3f\t%.3f\t%.2f\n", rq/(us/1e6), p50/1000, p99/1000, c/rq*1e6
				else printf "%.0f\t%.2f\n", rq/(us/1e6), c/rq*1e6 }')
			printf '%s\t%s\t%s\n' "$rnd" "$name" "$line" >>"$RES"
			set -- $line
			[[ $W == keepalive ]] && line=$(printf '%7s req/s  p50 %s ms  p99 %s ms  CPU %s µs/req' "$@")
			[[ $W == close ]] && line=$(printf '%7s conn/s  CPU %s µs/conn' "$@")
			printf 'round %s  %-22s %s  (proc %ss core %ss steal %ss; load CPU %s µs/req)%s\n' "$rnd" "$name" "$line" "$CPU_PROC" "$CPU_CORE" "$CPU_STEAL" "$(load_us "$rq")" \
				"$( ((er > 0)) && echo "  $er wrk errors")"
			perf_report "$rq"
		else
			echo "round $rnd  $name  FAILED: wrk: $(errtail "$RUN/logs/$tag-wrk.err") $(errtail "$RUN/logs/$tag-wrk.out") $(died $proxy)"
		fi ;;
	redis)
		# redis-benchmark has no duration: it runs with a large -n, and the
		# window starts once it does; redis-server counts the requests.
		local bench c0 c1 t0 t1 rq
		spawn $CLIENT_CPU "$tag-redis-benchmark" redis-benchmark -h 127.0.0.1 -p $REDIS_FE -t get -c "$C" -n 2000000000 -q
		bench=$SPAWNED
		sleep 1
		cpu_begin $proxy
		c0=$(redis_served) t0=$EPOCHREALTIME
		perf_cmd "$tag"
		"${PERF_CMD[@]}" sleep "$S"
		c1=$(redis_served) t1=$EPOCHREALTIME
		cpu_end $proxy
		stop $bench
		rq=$((${c1:-0} - ${c0:-0} - 1)) # the first INFO counts itself
		if ((rq > 0)); then
			read -r line < <(awk -v rq="$rq" -v c="$CPU" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f\t%.2f\n", rq/(t1-t0), c/rq*1e6 }')
			printf '%s\t%s\t%s\n' "$rnd" "$name" "$line" >>"$RES"
			set -- $line
			printf 'round %s  %-22s %7s req/s  CPU %s µs/req  (proc %ss core %ss steal %ss; load CPU %s µs/req)\n' "$rnd" "$name" "$@" "$CPU_PROC" "$CPU_CORE" "$CPU_STEAL" "$(load_us "$rq")"
			perf_report "$rq"
		else
			echo "round $rnd  $name  FAILED: redis-benchmark: $(errtail "$RUN/logs/$tag-redis-benchmark.err") $(died $proxy)"
		fi ;;
	rate)
		local out=$RUN/logs/$tag-rategen.out rq ach p50 p99 er
		perf_cmd "$tag"
		load "$tag-rategen" "${PERF_CMD[@]}" env GOMAXPROCS=1 "$RUN/rategen" -addr "127.0.0.1:$HTTP_PORT" -rate "$Q" -conns "$C" -duration "${S}s"
		read -r rq ach p50 p99 er < <(jq -r '"\(.requests) \(.achieved_rps) \(.p50_us) \(.p99_us) \(.errors)"' "$out" 2>/dev/null)
		if [[ ${rq:-0} -gt 0 ]] && cpu_end $proxy; then
			read -r line < <(awk -v rq="$rq" -v a="$ach" -v c="$CPU" -v p50="$p50" -v p99="$p99" \
				'BEGIN { printf "%.0f\t%.3f\t%.3f\t%.2f\n", a, p50/1000, p99/1000, c/rq*1e6 }')
			printf '%s\t%s\t%s\n' "$rnd" "$name" "$line" >>"$RES"
			set -- $line
			printf 'round %s  %-22s %7s req/s  p50 %s ms  p99 %s ms  CPU %s µs/req  (proc %ss core %ss steal %ss; load CPU %s µs/req)%s\n' "$rnd" "$name" "$@" \
				"$CPU_PROC" "$CPU_CORE" "$CPU_STEAL" "$(load_us "$rq")" "$( ((${er:-0} > 0)) && echo "  $er errors")"
			perf_report "$rq"
		else
			echo "round $rnd  $name  FAILED: rategen: $(errtail "$RUN/logs/$tag-rategen.err") $(died $proxy)"
		fi ;;
	bulk)
		local dir rev bytes=0 cpu=0 gb=() ok=1 out
		for dir in up down; do
			rev=(); [[ $dir == down ]] && rev=(-R)
			out=$RUN/logs/$tag-iperf3-$dir.out
			load "$tag-iperf3-$dir" iperf3 -c 127.0.0.1 -p $BULK_PORT -P 4 -t "$S" -J --connect-timeout 5000 "${rev[@]}"
			local b g
			read -r b g < <(jq -r '"\(.end.sum_received.bytes // 0) \(.end.sum_received.bits_per_second // 0)"' "$out" 2>/dev/null)
			if [[ ${b:-0} == 0 ]] || ! cpu_end $proxy; then
				echo "round $rnd  $name  FAILED: iperf3 $dir: $(jq -r '.error // empty' "$out" 2>/dev/null) $(errtail "${out%.out}.err") $(died $proxy)"
				ok=0; break
			fi
			bytes=$(awk -v a="$bytes" -v b="$b" 'BEGIN { printf "%.0f", a + b }')
			cpu=$(awk -v a="$cpu" -v b="$CPU" 'BEGIN { print a + b }') # charged per run, summed
			gb+=("$(awk -v g="$g" 'BEGIN { printf "%.2f", g/1e9 }')")
			cpu_begin $proxy
		done
		if ((ok)); then
			line=$(awk -v c="$cpu" -v b="$bytes" 'BEGIN { printf "%.3f", c/(b/1e9) }')
			printf '%s\t%s\t%s\t%s\t%s\n' "$rnd" "$name" "${gb[0]}" "${gb[1]}" "$line" >>"$RES"
			printf 'round %s  %-22s up %s Gbit/s  down %s Gbit/s  CPU %s s/GB  (%ss over %.2f GB)\n' \
				"$rnd" "$name" "${gb[0]}" "${gb[1]}" "$line" "$cpu" "$(awk -v b="$bytes" 'BEGIN { print b/1e9 }')"
		fi ;;
	control)
		# Three phases: ctlprobe alone for S seconds (the baseline); ctlprobe for
		# S seconds while wrk saturates the proxy (wrk starts 1 s before, ends 2 s
		# after); wrk alone for S seconds: the data plane's req/s without control
		# traffic, which the fix must not lower (under the probe the builds answer
		# different numbers of control requests, and each one costs CPU).
		local probe=(-stats "127.0.0.1:$STATS_PORT" -socket "$SOCK" -n $((S * 50)) -interval 20ms -duration "${S}s" -json)
		local phase out wrk p0 p1 x rq us er p50 p99 rps cpu fig nm b0 b1 g0 g1 t0 t1 pcpu other d
		for phase in idle load wrk; do
			rps=- cpu=- nm=- pcpu=0 other=-
			fig=$(printf -- '-\t%.0s' {1..13})-
			out=$RUN/logs/$tag-ctlprobe-$phase.out
			if [[ $phase != idle ]]; then
				d=$S; [[ $phase == load ]] && d=$((S + 3))
				p0=$(proc_ticks $proxy)
				spawn $CLIENT_CPU "$tag-wrk-$phase" wrk -t2 -c64 -d"${d}s" --timeout 5s --latency -s "$RUN/report.lua" "http://127.0.0.1:$HTTP_PORT/"
				wrk=$SPAWNED
				sleep 1
			fi
			b0=$(busy_ticks) g0=$(group_ticks) t0=$EPOCHREALTIME
			if [[ $phase == wrk ]]; then
				sleep $((S > 2 ? S - 2 : 1)) # the window ends before wrk does: its CPU must still be counted
			else
				load "$tag-ctlprobe-$phase" "$RUN/ctlprobe" "${probe[@]}"
				pcpu=$(jq -r '.cpu_s // 0' "$out" 2>/dev/null)
			fi
			b1=$(busy_ticks) g1=$(group_ticks) t1=$EPOCHREALTIME
			# other CPU: % of the machine used meanwhile by processes not ours (ctlprobe's own time is ours)
			other=$(awk -v b=$((b1 - b0)) -v g=$((g1 - g0)) -v p="${pcpu:-0}" -v t0="$t0" -v t1="$t1" -v hz="$TCK" -v n="$(nproc)" \
				'BEGIN { o = (b - g) / hz - p; if (o < 0) o = 0; printf "%.0f", o / ((t1 - t0) * n) * 100 }')
			if [[ $phase != idle ]]; then
				wait $wrk; forget $wrk
				p1=$(proc_ticks $proxy)
				read -r x rq us er p50 p99 < <(grep '^BENCH ' "$RUN/logs/$tag-wrk-$phase.out")
				if [[ ${rq:-0} -gt 0 && -n $p1 ]]; then
					read -r rps cpu < <(awk -v rq="$rq" -v us="$us" -v t=$((p1 - p0)) -v hz="$TCK" \
						'BEGIN { printf "%.0f %.2f\n", rq/(us/1e6), t/hz/rq*1e6 }')
				else
					echo "round $rnd  $name  $phase: wrk FAILED: $(errtail "$RUN/logs/$tag-wrk-$phase.err") $(died $proxy)"
					[[ $phase == wrk ]] && continue
				fi
			fi
			if [[ $phase != wrk ]]; then
				# metrics stats notfound info: p50 p99 each; errors; checks failures transitions seen-DOWN longest-gap
				fig=$(jq -r '[(.kinds | .metrics, .stats, .notfound, .info | .p50_ms, .p99_ms), ([.kinds[].errors] | add),
					(.checks | .checks, .check_failures, .transitions, .servers_seen_down, .max_check_gap_ms)] | @tsv' "$out" 2>/dev/null)
				nm=$(jq -r '.kinds.metrics.count' "$out" 2>/dev/null)
				if [[ -z $fig ]]; then
					echo "round $rnd  $name  $phase: ctlprobe FAILED: $(errtail "${out%.out}.err") $(died $proxy)"
					continue
				fi
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rnd" "$name" "$phase" "$rps" "$cpu" "$fig" "$other" "$nm" >>"$RES"
			set -- $fig
			printf 'round %s  %-22s %-4s' "$rnd" "$name" "$phase"
			[[ $phase != wrk ]] && printf '  metrics %s/%s  stats.json %s/%s  404 %s/%s  show info %s/%s ms (p50/p99), %s /metrics answered' "${@:1:8}" "$nm" &&
				printf '  %s errors  checks %s failed %s transitions %s DOWN %s gap %s ms' "${@:9:6}"
			[[ $phase != idle ]] && printf '  %s req/s  CPU %s µs/req' "$rps" "$cpu"
			printf '  other CPU %s%%\n' "$other"
		done ;;
	esac
	stop $proxy
	sleep 1 # let TIME_WAIT and softirq settle before the next proxy
}

echo "ab.sh: workload $W, ${S}s x $R rounds, targets: ${NAME[*]} (maxconn $MAXCONN, logs in $RUN)"
for ((rnd = 1; rnd <= R; rnd++)); do
	for ((i = 0; i < ${#NAME[@]}; i++)); do measure $rnd $i; done
done

# ---- summary: mean [min..max] per figure, CPU ratio against the first target
if [[ $W == control ]]; then # medians instead, as a Markdown table: a few starved rounds would drag a mean
	echo
	echo "summary (control): median (min..max) over rounds of each run's figure; p50/p99 in ms; check counts summed over"
	echo "rounds, check gap the longest seen (expected <= 1100 ms); other CPU: share of the machine used by processes not"
	echo "this benchmark's during the phase; wrk: the data plane alone, no control traffic:"
	echo
	[[ -s $RES ]] || { echo "  no successful measurement"; exit 1; }
	awk -F'\t' -v order="$(printf '%s\t' "${NAME[@]}")" '
	{ k = $2 SUBSEP $3; n[k]++; for (f = 4; f <= NF; f++) v[k, f, n[k]] = $f }
	END {
	  print "| build | phase | n | /metrics p50 | /metrics p99 | /stats.json p50 | /stats.json p99 | 404 p50 | 404 p99 | show info p50 | show info p99 | req/s | CPU µs/req | checks / failed / transitions / seen DOWN | check gap ms | other CPU % |"
	  print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
	  nt = split(order, tn, "\t"); np = split("idle load wrk", pn, " ")
	  for (ph = 1; ph <= np; ph++) for (j = 1; j <= nt; j++) {
	    t = tn[j]; p = pn[ph]; k = t SUBSEP p; if (t == "") continue
	    line = sprintf("| %s | %s | %d", t, p, n[k])
	    if (!n[k]) { print line " | all failed |"; continue }
	    for (f = 6; f <= 13; f++) line = line " | " med(k, f)
	    line = line " | " med(k, 4) " | " med(k, 5)
	    if (p == "wrk") chk = "-"
	    else { for (f = 15; f <= 18; f++) { s[f] = 0; for (i = 1; i <= n[k]; i++) s[f] += v[k, f, i] }
	      chk = sprintf("%d / %d / %d / %d", s[15], s[16], s[17], s[18]) }
	    g = "-"; for (i = 1; i <= n[k]; i++) if (v[k, 19, i] != "-" && (g == "-" || v[k, 19, i] + 0 > g)) g = v[k, 19, i] + 0
	    print line " | " chk " | " (g == "-" ? g : sprintf("%.0f", g)) " | " med(k, 20) " |" }
	}
	function med(k, f,   a, i, j, x, m) { m = 0
	  for (i = 1; i <= n[k]; i++) if (v[k, f, i] != "-" && v[k, f, i] != "") a[++m] = v[k, f, i] + 0
	  if (!m) return "-"
	  for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
	  return sprintf("%s (%s..%s)", fmt(m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2), fmt(a[1]), fmt(a[m])) }
	function fmt(v) { return v >= 100 ? sprintf("%.0f", v) : v >= 10 ? sprintf("%.1f", v) : sprintf("%.3g", v) }' "$RES"
	exit 0
fi
case $W in
keepalive | rate) HDR="req/s p50_ms p99_ms cpu_µs/req" ;;
redis) HDR="req/s cpu_µs/req" ;;
close) HDR="conn/s cpu_µs/conn" ;;
bulk) HDR="Gbit/s_up Gbit/s_down cpu_s/GB" ;;
esac
echo
echo "summary ($W, mean [min..max] over rounds; CPU ratio = mean CPU per unit / ${NAME[0]}'s):"
[[ -s $RES ]] || { echo "  no successful measurement"; exit 1; }
awk -F'\t' -v hdr="$HDR" -v order="$(printf '%s\t' "${NAME[@]}")" '
{ t = $2; n[t]++; for (f = 3; f <= NF; f++) { k = t SUBSEP f; s[k] += $f
  if (n[t] == 1 || $f < lo[k]) lo[k] = $f; if (n[t] == 1 || $f > hi[k]) hi[k] = $f }; nf = NF }
END {
  nh = split(hdr, h, " "); nt = split(order, tn, "\t")
  for (j = 1; j <= nt; j++) { t = tn[j]; if (t == "") continue
    line = sprintf("  %-22s n=%d", t, n[t])
    if (!n[t]) { print line "  (all failed)"; continue }
    for (f = 3; f <= nf; f++) { k = t SUBSEP f; m = s[k] / n[t]
      line = line sprintf("  %s %s [%s..%s]", h[f - 2], fmt(m), fmt(lo[k]), fmt(hi[k])) }
    base = tn[1]; if (n[base]) line = line sprintf("  CPU ratio %.3f", m / (s[base SUBSEP nf] / n[base]))
    print line }
}
function fmt(v) { return v >= 100 ? sprintf("%.0f", v) : v >= 10 ? sprintf("%.1f", v) : sprintf("%.3g", v) }' "$RES"
