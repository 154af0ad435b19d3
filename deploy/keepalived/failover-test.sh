#!/usr/bin/env bash
# Failover of two ringproxy appliances behind one VRRP address, on one
# machine: network namespaces lb1, lb2 and client on a bridge, keepalived
# in each lb with deploy/keepalived/keepalived.conf's health check. It
# checks that the address serves from lb1, moves to lb2 within seconds
# when lb1's ringproxy dies, and comes back when it returns.
#
# Needs root, iproute2, keepalived, curl and python3; run it with
# `make failover-test` (it builds bin/ringproxy). Not part of make test.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=$PWD/bin/ringproxy
VIP=10.77.0.100
NS=(rpf-lb1 rpf-lb2 rpf-client)
fail() { echo "failover-test: FAIL: $*" >&2; exit 1; }

# net_down removes the namespaces, their processes and the bridge.
net_down() {
	for n in "${NS[@]}"; do
		ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
	done
	sleep 0.3
	for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	ip link del rpf-br 2>/dev/null || true
}
for tool in ip keepalived curl python3; do
	command -v "$tool" >/dev/null || fail "$tool is not installed"
done
[ -x "$BIN" ] || fail "$BIN missing: make build"
net_down # what an interrupted run left
WORK=$(mktemp -d /tmp/ringproxy-failover.XXXXXX)
trap 'net_down; rm -rf "$WORK"' EXIT

# One segment: a bridge in the root namespace, a veth to each namespace.
ip link add rpf-br type bridge
ip link set rpf-br up
i=1
for n in "${NS[@]}"; do
	ip netns add "$n"
	ip link add "rpf-v$i" type veth peer name eth0 netns "$n"
	ip link set "rpf-v$i" master rpf-br up
	ip -n "$n" addr add "10.77.0.$i/24" dev eth0
	ip -n "$n" link set eth0 up
	ip -n "$n" link set lo up
	i=$((i + 1))
done

# Each appliance: a backend naming it, ringproxy listening on every
# address (so it serves the VIP the moment it holds it), keepalived.
for lb in lb1 lb2; do
	n=rpf-$lb
	mkdir -p "$WORK/$lb"
	echo "$lb" > "$WORK/$lb/index.html"
	ip netns exec "$n" python3 -m http.server 9000 --bind 127.0.0.1 --directory "$WORK/$lb" >/dev/null 2>&1 &
	cat > "$WORK/$lb/ringproxy.toml" <<EOF
[global]
workers = 1
grace = "1s"
[log]
access = false
[admin]
socket = "$WORK/$lb/admin.sock"
[[frontend]]
name = "web"
bind = ["0.0.0.0:8080"]
backend = "app"
timeout_client = "5s"
[[backend]]
name = "app"
timeout_connect = "1s"
  [[backend.server]]
  name = "local"
  address = "127.0.0.1:9000"
EOF
	prio=150 state=MASTER
	[ "$lb" = lb2 ] && prio=100 state=BACKUP
	# The shipped example, with this test's interface, address, socket and
	# priorities.
	sed -e "s|router_id ringproxy-a|router_id rpf-$lb|" \
		-e "s|/usr/local/bin/ringproxy|$BIN|" \
		-e "s|/run/ringproxy/admin.sock|$WORK/$lb/admin.sock|" \
		-e "s|state MASTER |state $state |" \
		-e "s|priority 150 |priority $prio |" \
		-e "s|192.0.2.10/24|$VIP/24|" \
		deploy/keepalived/keepalived.conf > "$WORK/$lb/keepalived.conf"
	ip netns exec "$n" "$BIN" run -c "$WORK/$lb/ringproxy.toml" > "$WORK/$lb/ringproxy.log" 2>&1 &
	echo $! > "$WORK/$lb/ringproxy.pid"
	ip netns exec "$n" keepalived -n -l -G -f "$WORK/$lb/keepalived.conf" \
		-p "$WORK/$lb/ka.pid" -r "$WORK/$lb/vrrp.pid" -c "$WORK/$lb/chk.pid" > "$WORK/$lb/keepalived.log" 2>&1 &
done

who() { ip netns exec rpf-client curl -s -m 1 "http://$VIP:8080/index.html" || true; }
# waitfor WANT SECONDS: until the VIP answers WANT; prints the time taken.
waitfor() {
	local want=$1 limit=$2 start=$SECONDS
	while [ $((SECONDS - start)) -lt "$limit" ]; do
		[ "$(who)" = "$want" ] && { echo $((SECONDS - start)); return 0; }
		sleep 0.2
	done
	return 1
}

t=$(waitfor lb1 15) || fail "the VIP never served from lb1; logs in $WORK"
echo "failover-test: $VIP served by lb1 after ${t}s"
kill "$(cat "$WORK/lb1/ringproxy.pid")"
t=$(waitfor lb2 10) || fail "the VIP did not move to lb2 after lb1's ringproxy stopped"
echo "failover-test: lb1's ringproxy stopped; lb2 serves after ${t}s"
ip netns exec rpf-lb1 "$BIN" run -c "$WORK/lb1/ringproxy.toml" > "$WORK/lb1/ringproxy.log" 2>&1 &
t=$(waitfor lb1 15) || fail "the VIP did not come back to lb1 after its ringproxy returned"
echo "failover-test: lb1's ringproxy back; lb1 serves again after ${t}s"
echo "failover-test: OK"
