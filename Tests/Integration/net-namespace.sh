#!/usr/bin/env bash
# `conclave net` on a veth pair in a network namespace of the test's own: apply sets MTU,
# txqueuelen, addresses, routes, root qdisc, channels, features, RPS/XPS masks and the
# namespace's own sysctls, checked independently with ip -j, tc -j, ethtool and /sys; rings
# and coalescing on veth are reported as not supported (or refuse the profile when it requires
# them); diff after apply is empty and a second apply changes nothing; MTU 100000 fails, names
# the setting and leaves the link as it was;
# dhcp-event with a recorded udhcpc environment configures address, route and DNS.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/conclave ] || ./scripts/build-static >/dev/null
binary=${CONCLAVE_BINARY:-$(pwd)/build/conclave}
command -v ethtool >/dev/null || { echo "FAIL: ethtool is not installed (scripts/bootstrap installs it)"; exit 1; }
work=$(mktemp -d)
namespace=conclave-net-$$
ip netns add "$namespace"
cleanup() {
  ip netns pids "$namespace" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns delete "$namespace" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
in_ns() { timeout 30 ip netns exec "$namespace" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
net() { timeout 30 "$binary" net "$@"; }

in_ns ip link set lo up
in_ns ip link add va0 numrxqueues 2 numtxqueues 2 type veth peer name vb0 numrxqueues 2 numtxqueues 2

# The qdisc the relay wants (fq), or the first kind this kernel has: some test kernels are
# built without sch_fq and sch_fq_codel.
qdisc=
for kind in fq fq_codel pfifo_fast; do
  if in_ns tc qdisc replace dev vb0 root "$kind" 2>/dev/null; then qdisc=$kind; in_ns tc qdisc del dev vb0 root; break; fi
done
[ -n "$qdisc" ] || fail "no usable root qdisc kind in this kernel"
echo "qdisc kind: $qdisc"

host_name=$(cat /proc/sys/kernel/hostname)
host_somaxconn=$(cat /proc/sys/net/core/somaxconn)
host_ports=$(cat /proc/sys/net/ipv4/ip_local_port_range)
expected_rps=$(python3 -c 'import os; print(format((1 << os.cpu_count()) - 1 if os.cpu_count() < 8 else 0xff, "x"))')

cat >"$work/profile.json" <<EOF
{"description": "net-namespace test",
 "links": {"va0": {"mtu": 9000, "txqueuelen": 2500, "qdisc": "$qdisc",
                   "rings": {"rx": 4096, "tx": 4096}, "coalesce": {"rx-usecs": 50, "adaptive-rx": true},
                   "channels": {"rx": 1, "tx": 1},
                   "features": {"gro": true, "tso": false, "rx-udp-gro-forwarding": true},
                   "rps_cpus": "ff", "xps_cpus": "1", "rps_flow_cnt": 2048}},
 "sysctl": {"net.core.somaxconn": "8192", "net.ipv4.ip_local_port_range": "20000 60999"}}
EOF
mkdir -p "$work/state"
cat >"$work/state/conclave.json" <<'EOF'
{"role": "server",
 "network": {"hostname": "conclave-net-test", "dns": ["192.0.2.53", "2001:db8::53"], "search": ["example.test"], "ntp": ["192.0.2.123"],
             "interfaces": {"va0": {"addresses": ["192.0.2.10/24", "2001:db8::10/64"], "gateway": "192.0.2.1", "gateway6": "2001:db8::1",
                                    "routes": [{"to": "198.51.100.0/24", "via": "192.0.2.254"}]}}}}
EOF
target=(--profile "$work/profile.json" --state "$work/state" --resolv-conf "$work/resolv.conf")

# --- apply -----------------------------------------------------------------------------------
net apply --netns "$namespace" "${target[@]}" >"$work/apply1.out" 2>&1 || { cat "$work/apply1.out"; fail "first apply failed"; }
cat "$work/apply1.out"
for line in "changed va0 mtu: 1500 → 9000" "changed va0 txqueuelen: 1000 → 2500" "changed va0 channels: rx 2, tx 2 → rx 1, tx 1" \
    "changed va0 address 192.0.2.10/24: absent → present" "changed route default: absent → default via 192.0.2.1 dev va0" \
    "changed sysctl net.core.somaxconn:" "note: va0 rings: not supported by this device; skipped" \
    "note: va0 coalesce: not supported by this device; skipped" "note: hostname: not per network namespace; skipped"; do
  grep -qF "$line" "$work/apply1.out" || fail "apply output lacks \"$line\""
done

# --- checked independently -------------------------------------------------------------------
in_ns ip -j link show dev va0 >"$work/link.json"
in_ns ip -j address show dev va0 >"$work/addr.json"
in_ns ip -j route show >"$work/route4.json"
in_ns ip -6 -j route show >"$work/route6.json"
in_ns tc -j qdisc show dev va0 >"$work/qdisc.json"
python3 - "$work" "$qdisc" <<'PYTHON' || fail "ip/tc disagree with what apply reported"
import json, sys
work, qdisc = sys.argv[1], sys.argv[2]
link = json.load(open(f"{work}/link.json"))[0]
assert link["mtu"] == 9000, link
assert link["txqlen"] == 2500, link
assert "UP" in link["flags"], link
addresses = {f'{a["local"]}/{a["prefixlen"]}' for a in json.load(open(f"{work}/addr.json"))[0]["addr_info"]}
assert {"192.0.2.10/24", "2001:db8::10/64"} <= addresses, addresses
routes = json.load(open(f"{work}/route4.json"))
assert any(r["dst"] == "default" and r.get("gateway") == "192.0.2.1" and r["dev"] == "va0" for r in routes), routes
assert any(r["dst"] == "198.51.100.0/24" and r.get("gateway") == "192.0.2.254" for r in routes), routes
routes6 = json.load(open(f"{work}/route6.json"))
assert any(r["dst"] == "default" and r.get("gateway") == "2001:db8::1" and r["dev"] == "va0" for r in routes6), routes6
roots = [q for q in json.load(open(f"{work}/qdisc.json")) if q.get("root")]
assert roots and roots[0]["kind"] == qdisc, roots
print("ip/tc: mtu 9000, txqlen 2500, up, addresses, IPv4 + IPv6 default and static routes, root qdisc", qdisc)
PYTHON
in_ns ethtool -l va0 >"$work/channels.txt"
python3 - "$work/channels.txt" <<'PYTHON' || fail "ethtool -l: $(cat "$work/channels.txt")"
import sys
text = open(sys.argv[1]).read()
current = text.split("Current hardware settings:")[1]
values = {line.split(":")[0].strip(): line.split(":")[1].strip() for line in current.strip().splitlines() if ":" in line}
assert values["RX"] == "1" and values["TX"] == "1", values
print("ethtool -l: RX 1, TX 1")
PYTHON
in_ns ethtool -k va0 >"$work/features.txt"
grep -q "^generic-receive-offload: on" "$work/features.txt" || fail "GRO is not on: $(grep generic-receive "$work/features.txt")"
grep -q "^tcp-segmentation-offload: off" "$work/features.txt" || fail "TSO is not off: $(grep tcp-segmentation "$work/features.txt")"
grep -q "^rx-udp-gro-forwarding: on" "$work/features.txt" || fail "rx-udp-gro-forwarding is not on"
echo "ethtool -k: gro on, tso off, rx-udp-gro-forwarding on"
in_ns ethtool -g va0 >/dev/null 2>&1 && fail "veth unexpectedly has rings: the 'not supported' path was not exercised"
rps=$(in_ns cat /sys/class/net/va0/queues/rx-0/rps_cpus | tr -d ',' | sed 's/^0*//'); rps=${rps:-0}
[ "$rps" = "$expected_rps" ] || fail "rx-0 rps_cpus is $rps, expected $expected_rps"
[ "$(in_ns cat /sys/class/net/va0/queues/rx-0/rps_flow_cnt)" = 2048 ] || fail "rps_flow_cnt"
xps=$(in_ns cat /sys/class/net/va0/queues/tx-0/xps_cpus | tr -d ',' | sed 's/^0*//')
[ "$xps" = 1 ] || fail "tx-0 xps_cpus is $xps"
in_ns test ! -e /sys/class/net/va0/queues/rx-1 || fail "rx-1 still exists after channels rx 1"
echo "/sys: rps_cpus $rps, rps_flow_cnt 2048, xps_cpus 1, one rx queue"
[ "$(in_ns cat /proc/sys/net/core/somaxconn)" = 8192 ] || fail "namespace somaxconn"
[ "$(in_ns cat /proc/sys/net/ipv4/ip_local_port_range | tr -s '\t ' ' ')" = "20000 60999" ] || fail "namespace ip_local_port_range"
[ "$(cat /proc/sys/net/core/somaxconn)" = "$host_somaxconn" ] || fail "the host's somaxconn changed"
[ "$(cat /proc/sys/net/ipv4/ip_local_port_range)" = "$host_ports" ] || fail "the host's ip_local_port_range changed"
[ "$(cat /proc/sys/kernel/hostname)" = "$host_name" ] || fail "the host's name changed"
echo "sysctl: namespace somaxconn 8192, ip_local_port_range 20000 60999; host sysctls and host name untouched"
grep -q "^nameserver 192.0.2.53$" "$work/resolv.conf" && grep -q "^search example.test$" "$work/resolv.conf" || fail "resolv.conf: $(cat "$work/resolv.conf")"

# --- idempotence -----------------------------------------------------------------------------
net diff --netns "$namespace" "${target[@]}" >"$work/diff.out" 2>&1 || { cat "$work/diff.out"; fail "diff failed"; }
if grep -q "^change " "$work/diff.out"; then cat "$work/diff.out"; fail "diff after apply is not empty"; fi
net apply --netns "$namespace" "${target[@]}" >"$work/apply2.out" 2>&1 || { cat "$work/apply2.out"; fail "second apply failed"; }
grep -q "^no change" "$work/apply2.out" && ! grep -q "^changed" "$work/apply2.out" || { cat "$work/apply2.out"; fail "second apply changed something"; }
echo "diff after apply: no change lines; second apply: $(grep '^no change' "$work/apply2.out")"

# --- an impossible value fails, names the setting, and leaves the link as it was ---------------
cat >"$work/bad.json" <<'EOF'
{"links": {"va0": {"txqueuelen": 3000, "mtu": 100000}}}
EOF
if net apply --netns "$namespace" --profile "$work/bad.json" --state "$work/state" --resolv-conf "$work/resolv.conf" >"$work/bad.out" 2>&1; then
  cat "$work/bad.out"; fail "MTU 100000 was accepted"
fi
grep -q "va0 mtu → 100000 failed" "$work/bad.out" || { cat "$work/bad.out"; fail "the failure does not name the setting"; }
grep -q "rolled back: va0 txqueuelen" "$work/bad.out" || { cat "$work/bad.out"; fail "the txqueuelen change was not rolled back"; }
in_ns ip -j link show dev va0 | python3 -c 'import json,sys; l=json.load(sys.stdin)[0]; assert (l["mtu"], l["txqlen"]) == (9000, 2500), l' \
  || fail "the link changed after a failed apply"
echo "MTU 100000: $(grep 'failed' "$work/bad.out")"

# --- a setting the profile requires and veth lacks refuses the whole profile --------------------
cat >"$work/required.json" <<'EOF'
{"links": {"va0": {"txqueuelen": 3000, "rings": {"rx": 1024}, "required": ["rings"]}}}
EOF
if net apply --netns "$namespace" --profile "$work/required.json" --state "$work/state" --resolv-conf "$work/resolv.conf" >"$work/required.out" 2>&1; then
  cat "$work/required.out"; fail "a required setting the device lacks was accepted"
fi
grep -q "va0 rings: not supported by this device, and the profile requires it" "$work/required.out" || { cat "$work/required.out"; fail "required: message"; }
[ "$(in_ns cat /sys/class/net/va0/tx_queue_len)" = 2500 ] || fail "a refused profile changed txqueuelen"
echo "required rings on veth: $(cat "$work/required.out")"

# --- show --------------------------------------------------------------------------------------
net show --netns "$namespace" --json >"$work/show.json"
python3 - "$work/show.json" <<'PYTHON' || fail "net show --json"
import json, sys
report = json.load(open(sys.argv[1]))
va0 = next(l for l in report["links"] if l["link"]["name"] == "va0")
assert va0["link"]["mtu"] == 9000 and va0["link"]["txqueuelen"] == 2500, va0["link"]
assert va0.get("rings") is None and va0.get("coalesce") is None, "veth rings/coalescing should be unsupported"
assert va0["channels"]["current"] == {"rx": 1, "tx": 1}, va0["channels"]
assert va0["features"]["rx-gro"] is True and va0["features"]["tx-tcp-segmentation"] is False
assert report["sysctl"]["net.core.somaxconn"] == "8192"
print("show --json: va0 mtu 9000, channels rx 1 tx 1, rings/coalesce unsupported")
PYTHON
net show --netns "$namespace" | grep -q "rings: not supported by this device" || fail "net show text"

# --- dhcp-event with a recorded udhcpc environment ---------------------------------------------
lease=(interface=vb0 ip=10.9.0.5 subnet=255.255.255.0 mask=24 router=10.9.0.1 "dns=10.9.0.53 10.9.0.54"
       domain=example.test lease=3600 serverid=10.9.0.1 opt53=05)
in_ns env -i "${lease[@]}" "$binary" net dhcp-event bound --resolv-conf "$work/dhcp-resolv.conf" >"$work/dhcp.out" 2>&1 \
  || { cat "$work/dhcp.out"; fail "dhcp-event bound failed"; }
cat "$work/dhcp.out"
in_ns ip -j address show dev vb0 | python3 -c '
import json, sys
info = json.load(sys.stdin)[0]
assert "UP" in info["flags"], info["flags"]
assert any(a["local"] == "10.9.0.5" and a["prefixlen"] == 24 for a in info["addr_info"]), info["addr_info"]' || fail "dhcp address"
in_ns ip -j route show default | python3 -c '
import json, sys
routes = json.load(sys.stdin)
assert any(r.get("gateway") == "10.9.0.1" and r["dev"] == "vb0" for r in routes), routes' || fail "dhcp default route"
grep -q "^nameserver 10.9.0.54$" "$work/dhcp-resolv.conf" && grep -q "^search example.test$" "$work/dhcp-resolv.conf" \
  || fail "dhcp resolv.conf: $(cat "$work/dhcp-resolv.conf")"
in_ns env -i "${lease[@]}" "$binary" net dhcp-event renew --resolv-conf "$work/dhcp-resolv.conf" | grep -q "no change" \
  || fail "renewing the same lease changed something"
in_ns env -i interface=vb0 "$binary" net dhcp-event deconfig --resolv-conf "$work/dhcp-resolv.conf" >/dev/null
in_ns ip -j -4 address show dev vb0 | python3 -c 'import json,sys; i=json.load(sys.stdin); assert not i or not i[0]["addr_info"], i' \
  || fail "deconfig left an IPv4 address"
echo "dhcp-event: bound sets 10.9.0.5/24, default via 10.9.0.1, resolv.conf; renew: no change; deconfig: address gone"
echo "net-namespace: ok"
