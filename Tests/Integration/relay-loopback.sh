#!/usr/bin/env bash
# The relay and the load generator over loopback, in a network namespace of the test's own:
# 3 meetings × 4 participants per profile, every packet delivered to the 3 others and checked;
# forged, replayed and hijacking packets are dropped, counted and do not move the latch; a leg
# moved to TCP and back keeps receiving; tshark finds no RTP and no plaintext on the wire.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/conclave ] || ./scripts/build-static >/dev/null
binary=$(pwd)/build/conclave
work=$(mktemp -d)
namespace=conclave-relay-$$
ip netns add "$namespace"
cleanup() {
  ip netns pids "$namespace" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns delete "$namespace" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
in_ns() { ip netns exec "$namespace" "$@"; }
in_ns ip link set lo up
fail() { echo "FAIL: $*"; exit 1; }

ip netns exec "$namespace" tshark -q -i lo -f "udp or tcp" -w "$work/capture.pcapng" >/dev/null 2>&1 &
capture=$!
sleep 2

run_profile() {  # profile, extra loadgen arguments…
  local profile=$1; shift
  "$binary" loadgen make-legs --meetings 3 --participants 4 --profile "$profile" >"$work/$profile.json"
  ip netns exec "$namespace" "$binary" relay standalone --legs "$work/$profile.json" --listen 127.0.0.1 --port 40100 \
    --threads 2 --tcp-port 40200 --duration 60 >"$work/$profile.stats" 2>"$work/$profile.log" &
  local relay=$!
  sleep 1
  in_ns timeout 60 "$binary" loadgen --legs "$work/$profile.json" --relay 127.0.0.1:40100 --relay-threads 2 \
    --relay-tcp 127.0.0.1:40200 --meetings 3 --participants 4 --duration 4 --check --json "$@" >"$work/$profile.report" \
    || { cat "$work/$profile.report" "$work/$profile.log"; fail "$profile: loadgen reported loss, corruption or a successful attack"; }
  kill -TERM "$relay"
  wait "$relay" || fail "$profile: relay exited with an error: $(cat "$work/$profile.log")"
  echo "$profile: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("sent", r["sent"], "received", r["received"], "of", r["expected"], "over TCP", r["receivedOverTCP"], "p99 ms", r["latencyMilliseconds"]["p99"])' "$work/$profile.report")"
}

run_profile gcm --attack --switch-to-tcp 1.5 --switch-to-udp 3
run_profile sha1 --size 160
run_profile encapsulated

python3 - "$work" <<'PYTHON' || fail "relay or loadgen counters"
import json, sys
work = sys.argv[1]
report = json.load(open(f"{work}/gcm.report"))
assert report["expected"] > 0 and report["received"] == report["expected"], report
# Each receiver gets every packet of the 3 others: 3 × what was sent, exactly.
assert report["expected"] == 3 * report["sent"], report
assert report["receivedOverTCP"] > 0, "the leg moved to TCP received nothing over TCP"
attack = report["attack"]
assert attack["attackerReceived"] == 0, attack
stats = json.loads(open(f"{work}/gcm.stats").read().splitlines()[-1])
victim = next(leg for leg in stats["legs"] if leg["leg"] == attack["victimLeg"])["statistics"]
# forged (own address) + forged hijack (new address) fail authentication; replay + replayed hijack are replays
assert victim["authenticationFailures"] == 2, victim
assert victim["replays"] == 2, victim
for leg in stats["legs"]:
    s = leg["statistics"]
    assert s["lost"] == 0 and s["packetsIn"] > 0 and s["packetsOut"] > 0, leg
    assert s["audioPackets"] > 0 and s["videoPackets"] > 0, leg
print("counters ok: victim", victim["authenticationFailures"], "auth failures,", victim["replays"], "replays")
PYTHON

# (Background processes run under `ip netns exec` directly, which execs them, so $! is theirs.)
# Secured mode refuses encapsulated legs with a clear error.
if in_ns "$binary" relay standalone --legs "$work/encapsulated.json" --listen 127.0.0.1 --port 40300 \
    --security-mode secured --duration 1 >/dev/null 2>"$work/secured.log"; then
  fail "secured mode accepted encapsulated legs"
fi
grep -q "secured" "$work/secured.log" || fail "secured-mode refusal says: $(cat "$work/secured.log")"

# A positive control proves the marker filter can fire: one plaintext datagram to port 40999.
in_ns python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"xx CONCLAVE-PLAIN!! xx", ("127.0.0.1", 40999))'
sleep 1
kill -INT "$capture"
wait "$capture" || true
marker='frame contains "CONCLAVE-PLAIN!!"'
count() { tshark -r "$work/capture.pcapng" "$@" 2>/dev/null | wc -l; }
[ "$(count -Y "$marker && udp.dstport == 40999")" -eq 1 ] || fail "the positive control was not captured"
[ "$(count -Y "$marker && !(udp.dstport == 40999)")" -eq 0 ] || fail "plaintext payload visible on the wire"
media=$(count -Y "udp.port == 40100 || udp.port == 40101")
[ "$media" -gt 1000 ] || fail "capture holds only $media media datagrams"
rtp=$(count -d udp.port==40100,rtp -d udp.port==40101,rtp -Y "rtp.version == 2")
[ "$rtp" -eq 0 ] || fail "$rtp datagrams decode as RTP"
heuristic=$(count --enable-heuristic rtp_udp -Y "rtp")
[ "$heuristic" -eq 0 ] || fail "$heuristic datagrams decode as RTP heuristically"
# Per-packet DSCP on what the relay sends: EF (46) for audio, AF41 (34) for video.
from_relay="(udp.srcport == 40100 || udp.srcport == 40101)"
audio=$(count -Y "$from_relay && ip.dsfield.dscp == 46")
video=$(count -Y "$from_relay && ip.dsfield.dscp == 34")
[ "$audio" -gt 0 ] && [ "$video" -gt "$audio" ] || fail "relay DSCP: $audio EF and $video AF41 datagrams"
echo "capture: $media media datagrams, none decodes as RTP, no plaintext marker; relay sent $audio EF and $video AF41"
