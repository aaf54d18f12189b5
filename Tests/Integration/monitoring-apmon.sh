#!/usr/bin/env bash
# Monitoring (docs/monitoring.md): a server appliance with two guest room agents in their own
# network namespaces reports to ApMon test receivers (Tests/Integration/lib/apmon_listener.py,
# a decoder written from the spec, not from our encoder) and serves /metrics on its plain-HTTP
# metrics port:
# - every datagram decodes; header, password, one instance id, sequence 1, 2, 3…, clusters,
#   nodes, each parameter's type and value for the meeting, its legs and the relay;
# - privacy pseudonymous, then off, then full (reloaded with SIGHUP): in the first two no
#   datagram, metric or log line holds a raw nickname, IP or MAC address; in full they are there;
#   `conclave monitoring rotate-secret` changes the pseudonyms;
# - an unresolvable destination and a receiver that is down slow nothing (joins, media) and
#   monitoring resumes when the name resolves and the receiver is back;
# - /metrics parses with prometheus_client's parser.
# MONITORING_KEEP=1 keeps the work directory (datagrams, metrics, logs) for inspection.
set -euo pipefail
binary=${CONCLAVE:-$(cd "$(dirname "$0")/../.." && pwd)/build/conclave}
lib=$(cd "$(dirname "$0")" && pwd)/lib
[ -x "$binary" ] || { echo "monitoring-apmon: $binary missing (scripts/build-static)" >&2; exit 1; }
fail() {
  echo "monitoring-apmon: FAIL: $*" >&2
  [ -z "${work:-}" ] || tail -n 15 "$work/supervise.log" "$work"/*.jsonl.out >&2 2>/dev/null || true
  exit 1
}
# Debian's python3-prometheus-client is in /usr/bin/python3's path; a python3 earlier in PATH may lack it.
python=
for candidate in python3 /usr/bin/python3; do
  "$candidate" -c "import prometheus_client" 2>/dev/null && { python=$candidate; break; }
done
[ -n "$python" ] || fail "python3-prometheus-client missing (scripts/bootstrap)"
python3() { "$python" "$@"; }

work=$(mktemp -d)
chmod 755 "$work"
tag=ma$$
spaces=("$tag-br" "$tag-srv" "$tag-r1" "$tag-r2")
cleanup() {
  for ns in "${spaces[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  [ -n "${MONITORING_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
for ns in "${spaces[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$tag-br" link add br0 type bridge
ip -n "$tag-br" link set br0 up
index=1
for host in srv r1 r2; do
  ip link add "$tag-$host" netns "$tag-$host" type veth peer name "p-$host" netns "$tag-br"
  ip -n "$tag-br" link set "p-$host" master br0 up
  address=10.78.0.$index
  [ "$host" = srv ] || address=10.78.0.$((index + 10))
  ip -n "$tag-$host" addr add "$address/24" dev "$tag-$host"
  ip -n "$tag-$host" link set "$tag-$host" up
  mkdir -p "/etc/netns/$tag-$host"
  echo "10.78.0.1 conclave.test" > "/etc/netns/$tag-$host/hosts"
  # No name server in these namespaces: a lookup that misses /etc/hosts fails at once.
  echo "nameserver 127.0.0.1" > "/etc/netns/$tag-$host/resolv.conf"
  index=$((index + 1))
done
srv() { ip netns exec "$tag-srv" "$@"; }
room() { local n=$1; shift; ip netns exec "$tag-r$n" "$@"; }
check() { python3 "$lib/apmon_check.py" "$@"; }

# Backgrounded processes run under ip netns exec directly, so $! is theirs (not a subshell's).
# Receivers: A on 8884 (password), B on 8885 behind a name that does not resolve yet.
listen() {  # listen PORT FILE
  ip netns exec "$tag-srv" "$python" "$lib/apmon_listener.py" 127.0.0.1 "$1" "$2" --seconds 300 >"$2.out" 2>&1 &
  for _ in $(seq 50); do grep -q listening "$2.out" 2>/dev/null && break; sleep 0.1; done
}
listen 8884 "$work/a.jsonl"; listener_a=$!
listen 8885 "$work/b.jsonl"; listener_b=$!

state=$work/server; run=$work/run
mkdir -p "$state"
write_config() {  # write_config PRIVACY
  cat > "$state/conclave.json" <<JSON
{"version": 1, "securityMode": "mixed", "fqdn": "conclave.test", "controlPort": 443, "apiPort": 8443, "mediaPort": 3478,
 "mediaTCPPort": 4443,
 "monitoring": {"destinations": ["127.0.0.1:8884 a-password", "collector.test:8885", "no-such-host.invalid"],
                "intervalSeconds": 30, "privacy": "$1", "metricsListen": "127.0.0.1:9464"}}
JSON
}
write_config pseudonymous
"$binary" cert self-signed --state "$state" --fqdn conclave.test >/dev/null
"$binary" cert trust export --state "$state" --out "$work/trust.pem" >/dev/null
ip netns exec "$tag-srv" "$binary" supervise --state "$state" --run-directory "$run" >"$work/supervise.log" 2>&1 &
supervisor=$!
for _ in $(seq 100); do "$binary" status --run-directory "$run" 2>/dev/null | grep -q "control: pid" && break; sleep 0.1; done
"$binary" status --run-directory "$run" | grep -q "control: pid" || { cat "$work/supervise.log"; fail "the daemon did not start"; }
meeting() { local verb=$1; shift; "$binary" meeting "$verb" --run-directory "$run" "$@"; }
meeting start m1 --name "Board room" >/dev/null

join() {  # join N NICKNAME MAC: background; events in $work/events.N
  local n=$1 nickname=$2 mac=$3
  local started; started=$(date +%s.%N)
  ip netns exec "$tag-r$n" "$binary" room join --server conclave.test --meeting m1 --trust "$work/trust.pem" --nickname "$nickname" --mac "$mac" \
    --rtp-in 127.0.0.1:5004 --rtp-out 127.0.0.1:5006 --json-events >"$work/events.$n" 2>&1 &
  eval "room_pid_$n=$!"
  for _ in $(seq 100); do grep -q '"event":"joined"' "$work/events.$n" && break; sleep 0.05; done
  grep -q '"event":"joined"' "$work/events.$n" || { cat "$work/events.$n"; fail "room $n did not join"; }
  local took; took=$(python3 -c "import time; print(round(time.time() - $started, 2))")
  python3 -c "import sys; sys.exit(0 if $took < 3 else 1)" || fail "room $n took $took s to join (an unresolvable destination must slow nothing)"
  echo "room $n joined in $took s"
}
leg_of() { python3 -c "import json,sys; print(next(json.loads(l)['leg'] for l in open(sys.argv[1]) if '\"joined\"' in l))" "$work/events.$1"; }
nick1="Alice Zyxwv"; nick2="Bob Qwerty"; mac1=52:54:00:ab:cd:01; mac2=52:54:00:ab:cd:02; ip1=10.78.0.12; ip2=10.78.0.13
join 1 "$nick1" "$mac1"
join 2 "$nick2" "$mac2"
leg1=$(leg_of 1); leg2=$(leg_of 2)

# Media, so that the legs have a transport, a port, packets and channels.
media() {
  for n in 1 2; do
    ip netns exec "$tag-r$n" "$python" "$lib/rtp_peer.py" "room$n" 127.0.0.1:5004 5006 60 50 "$work/media.$n.json" &
    eval "peer_pid_$n=$!"
  done
  for n in 1 2; do eval "wait \$peer_pid_$n"; done
}
media
version=$("$binary" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)
expect() {  # expect PRIVACY MEETINGCOUNT: the reports a check wants
  python3 - "$@" > "$work/expect.json" <<PY
import json, os, sys
users = [dict(leg=int("$leg1"), nickname="$nick1", ip="$ip1", mac="$mac1"), dict(leg=int("$leg2"), nickname="$nick2", ip="$ip2", mac="$mac2")]
for user in users:
    user.update(meeting="m1", os=os.uname().sysname + " " + os.uname().release, client_version="$version")
print(json.dumps({"relay_node": "conclave.test", "meetings": {"m1": 2}, "meeting_count": int(sys.argv[2]), "users": users, "privacy": sys.argv[1]}))
PY
}
# A meeting start is an event: an immediate report follows within a few seconds.
report_now() {  # report_now MEETING: starts a meeting and waits for the report it causes
  local before; before=$(wc -l < "$work/a.jsonl")
  meeting start "$1" >/dev/null
  for _ in $(seq 80); do
    python3 - "$work/a.jsonl" "$before" "$1" <<'PY' && return 0
import json, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
sys.exit(0 if any(json.loads(l).get("node") == sys.argv[3] for l in lines) else 1)
PY
    sleep 0.1
  done
  fail "no report after meeting $1 started"
}

phase() {  # phase PRIVACY MEETING MEETINGCOUNT: checks datagrams and metrics since the report MEETING causes
  local since; since=$(date +%s.%N)
  sleep 0.1
  report_now "$2"
  sleep 2.5  # the rest of the report, paced at 10 datagrams per second
  expect "$1" "$3"
  check datagrams "$work/a.jsonl" "$since" a-password "$work/expect.json"
  srv "$python" -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=5).read().decode(), end='')" > "$work/metrics.$1.txt"
  python3 - "$leg1" "$leg2" > "$work/metrics-expect.json" <<'PY'
import json, sys
print(json.dumps({"families": ["conclave_participants", "conclave_meetings", "conclave_relay_connected", "conclave_relay_packets_in",
    "conclave_relay_resident_memory_bytes", "conclave_relay_cpu_seconds", "conclave_certificate_days_left", "conclave_meeting_participants",
    "conclave_leg_loss_ratio", "conclave_leg_jitter_seconds", "conclave_leg_packets_in", "conclave_join_latency_seconds",
    "conclave_apmon_datagrams_sent", "conclave_apmon_destination_resolved"],
    "participants": 2, "legs": [int(sys.argv[1]), int(sys.argv[2])], "joins": 2}))
PY
  check metrics "$work/metrics.$1.txt" "$work/metrics-expect.json"
  PHASE_SINCE=$since
}

# 1. pseudonymous (the default): pseudonyms everywhere, no raw value in datagrams, metrics or logs.
phase pseudonymous p1 2
check absent "$work/a.jsonl" 0 "$nick1" "$nick2" "$ip1" "$ip2" "$mac1" "$mac2"
check absent "$work/metrics.pseudonymous.txt" 0 "$nick1" "$nick2" "$ip1" "$ip2" "$mac1" "$mac2"
check absent "$work/supervise.log" 0 "$nick1" "$nick2" "$ip1" "$ip2" "$mac1" "$mac2"
pseudonym() { python3 -c "
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get('ok') and r['node'] == sys.argv[2]:
        for n, k, v in r['params']:
            if n == 'nickname': value = v
print(value)" "$work/a.jsonl" "$leg1"; }
before_rotation=$(pseudonym)
grep -q "$before_rotation" "$work/metrics.pseudonymous.txt" || fail "metrics and ApMon disagree on the pseudonym"
"$binary" monitoring rotate-secret --run-directory "$run" >/dev/null
report_now p2; sleep 1
after_rotation=$(pseudonym)
[ "$before_rotation" != "$after_rotation" ] || fail "rotate-secret did not change the pseudonyms"
echo "pseudonymous: no raw personal value anywhere; rotate-secret changed $before_rotation → $after_rotation"

# 2. An unresolvable name, and a receiver that is down, come back.
[ ! -s "$work/b.jsonl" ] || fail "collector.test received datagrams before it resolved"
echo "127.0.0.1 collector.test" >> "/etc/netns/$tag-srv/hosts"  # in place: the bind mount keeps the inode
for _ in $(seq 200); do [ -s "$work/b.jsonl" ] && break; sleep 0.2; done
[ -s "$work/b.jsonl" ] || { tail "$work/supervise.log"; fail "monitoring did not resume when collector.test became resolvable"; }
kill "$listener_a"; wait "$listener_a" 2>/dev/null || true
meeting start down1 >/dev/null  # reports into a closed port: ICMP errors, nothing else
sleep 3
listen 8884 "$work/a2.jsonl"; listener_a=$!
report_now_a2() { meeting start "$1" >/dev/null; for _ in $(seq 80); do [ -s "$work/a2.jsonl" ] && return 0; sleep 0.1; done; fail "receiver A got nothing after it came back"; }
report_now_a2 back1
python3 - "$work/a.jsonl" "$work/a2.jsonl" <<'PY' || fail "sequence numbers after the outage do not continue"
import json, sys
before = [json.loads(l)["seq"] for l in open(sys.argv[1])]
after = [json.loads(l)["seq"] for l in open(sys.argv[2])]
assert after[0] > before[-1], (before[-1], after[0])
print(f"receiver A back: seq {before[-1]} before the outage, {after[0]} after (the gap is what was lost)")
PY
join_check_media() { media; python3 -c "
import json, sys
for n in (1, 2):
    m = json.load(open(f'$work/media.{n}.json'))
    assert len(m['received']) >= 50, (n, len(m['received']))" || fail "media suffered while destinations were down"; }
join_check_media
echo "unresolvable and down destinations: joins fast, media flows, monitoring resumed on both"
# From here receiver A is the new listener.
mv "$work/a2.jsonl" "$work/a.jsonl"
export APMON_RESUMED=1  # its sequence starts where the outage left it

# 3. off: no personal field at all.
write_config off
kill -HUP "$supervisor"; sleep 1
phase off p3 6
check absent "$work/a.jsonl" "$PHASE_SINCE" "$nick1" "$nick2" "$ip1" "$ip2" "$mac1" "$mac2"
check absent "$work/metrics.off.txt" 0 "$nick1" "$nick2" "$ip1" "$ip2" "$mac1" "$mac2"
check absent "$work/supervise.log" 0 "$nick1" "$nick2" "$ip1" "$ip2" "$mac1" "$mac2"
echo "off: no personal field sent, labelled or logged"

# 4. full: the raw values, as the seed sends them; a rejoin logs them.
write_config full
kill -HUP "$supervisor"; sleep 1
kill -INT "$room_pid_2"; wait "$room_pid_2" || true
join 2 "$nick2" "$mac2"
leg2=$(leg_of 2)
phase full p4 7
check present "$work/a.jsonl" "$PHASE_SINCE" "$nick1" "$nick2" "$ip1" "$ip2" "$mac1" "$mac2"
check present "$work/metrics.full.txt" 0 "$nick1" "$nick2" "$ip1" "$ip2" "$mac1" "$mac2"
check present "$work/supervise.log" 0 "$nick2" "$ip2"
echo "full: raw personal values in datagrams, metrics and logs"

APMON_RESUMED= check datagrams "$work/b.jsonl" "$PHASE_SINCE" "" "$work/expect.json" || fail "receiver B's datagrams do not check out"
kill "$supervisor"; wait "$supervisor" || true
echo "monitoring-apmon: ok"
