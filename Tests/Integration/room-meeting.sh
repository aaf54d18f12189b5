#!/usr/bin/env bash
# Three room systems hold an encrypted meeting through a server appliance, each in its own
# network namespace, joined by veth pairs through a bridge namespace:
# - each room feeds distinct RTP (with a plaintext marker) on its loopback and receives the other
#   two rooms' packets byte-identical; a capture on the server's veth holds no RTP and no marker;
# - refusals: unknown, locked and full meetings, wrong passcode, guests not allowed, a server
#   name the certificate does not cover, an untrusted server; secured mode refuses encapsulated
#   meetings and the switch is audited; a killed room's leg is removed.
set -euo pipefail
binary=${CONCLAVE:-$(cd "$(dirname "$0")/../.." && pwd)/build/conclave}
peer=$(cd "$(dirname "$0")" && pwd)/lib/rtp_peer.py
[ -x "$binary" ] || { echo "room-meeting: $binary missing (scripts/build-static)" >&2; exit 1; }
fail() { echo "room-meeting: FAIL: $*" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"  # the workers (uid 990, 991) reach the state directory through it
tag=rm$$
spaces=("$tag-br" "$tag-srv" "$tag-r1" "$tag-r2" "$tag-r3")
cleanup() {
  for ns in "${spaces[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$work"
}
trap cleanup EXIT
for ns in "${spaces[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$tag-br" link add br0 type bridge
ip -n "$tag-br" link set br0 up
index=1
for host in srv r1 r2 r3; do
  ip link add "$tag-$host" netns "$tag-$host" type veth peer name "p-$host" netns "$tag-br"
  ip -n "$tag-br" link set "p-$host" master br0 up
  address=10.77.0.$index
  [ "$host" = srv ] || address=10.77.0.$((index + 10))
  ip -n "$tag-$host" addr add "$address/24" dev "$tag-$host"
  ip -n "$tag-$host" link set "$tag-$host" up
  mkdir -p "/etc/netns/$tag-$host"
  echo "10.77.0.1 conclave.test" > "/etc/netns/$tag-$host/hosts"
  index=$((index + 1))
done
srv() { ip netns exec "$tag-srv" "$@"; }
room() { local n=$1; shift; ip netns exec "$tag-r$n" "$@"; }

# The server appliance: a self-signed certificate for conclave.test, mixed mode to start with.
state=$work/server; run=$work/run
mkdir -p "$state"
cat > "$state/conclave.json" <<JSON
{"version": 1, "securityMode": "mixed", "controlPort": 443, "apiPort": 8443, "mediaPort": 3478, "mediaTCPPort": 4443}
JSON
"$binary" cert self-signed --state "$state" --fqdn conclave.test >/dev/null
"$binary" cert trust export --state "$state" --out "$work/server-trust.pem" >/dev/null
# The management server's join-token key; the appliance holds its public half.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/sso.key" 2>/dev/null
openssl ec -in "$work/sso.key" -pubout -out "$state/pki/sso-key.pem" 2>/dev/null
ip netns exec "$tag-srv" tshark -q -i "$tag-srv" -f "udp or tcp" -w "$work/capture.pcapng" >/dev/null 2>&1 &
ip netns exec "$tag-srv" "$binary" supervise --state "$state" --run-directory "$run" >"$work/supervise.log" 2>&1 &
supervisor=$!
for _ in $(seq 100); do "$binary" status --run-directory "$run" 2>/dev/null | grep -q "control: pid" && break; sleep 0.1; done
"$binary" status --run-directory "$run" | grep -q "control: pid" || { cat "$work/supervise.log"; fail "the daemon did not start"; }
meeting() { local verb=$1; shift; "$binary" meeting "$verb" --run-directory "$run" "$@"; }
meeting start m1 --name "Board room" --limit 3 >/dev/null

join() {  # join N NAME extra-args… (background; events in $work/events.N)
  local n=$1; shift
  # `ip netns exec` directly (not a shell function) so that $! is the agent itself.
  ip netns exec "$tag-r$n" "$binary" room join --server conclave.test --meeting m1 --trust "$work/server-trust.pem" \
    --rtp-in 127.0.0.1:5004 --rtp-out 127.0.0.1:5006 --json-events "$@" >"$work/events.$n" 2>&1 &
}
for n in 1 2; do join "$n" --nickname "room-$n"; eval "room_pid_$n=$!"; done
# Room 3 is a room-system box: `conclave supervise` with role room, trust imported into its store.
room3=$work/room3; mkdir -p "$room3"
"$binary" cert trust import --state "$room3" "$work/server-trust.pem" >/dev/null
cat > "$room3/conclave.json" <<JSON
{"version": 1, "role": "room", "room": {"server": "conclave.test", "meeting": "m1", "nickname": "room-3"}}
JSON
ip netns exec "$tag-r3" "$binary" supervise --state "$room3" --run-directory "$work/run3" >"$work/events.3" 2>&1 &
room_pid_3=$!
participants() { meeting show m1 | grep -c "leg " || true; }
for _ in $(seq 150); do [ "$(participants)" -eq 3 ] && break; sleep 0.1; done
[ "$(participants)" -eq 3 ] || { tail -n 5 "$work"/events.* "$work/supervise.log"; fail "three rooms did not join"; }
[ "$(awk '/^Uid:/ {print $2}' "/proc/$room_pid_3/status")" != 0 ] || { grep "^Uid\|^CapEff" "/proc/$room_pid_3/status"; cat "$work/events.3"; fail "the room system runs as root"; }
grep -q "^CapEff:[[:space:]]*0*$" "/proc/$room_pid_3/status" || fail "the room system kept capabilities"
for n in 1 2; do grep -q '"event":"joined"' "$work/events.$n" || fail "room $n has no joined event"; done
for _ in $(seq 50); do [ "$(grep -c '"participant-joined"' "$work/events.1")" -ge 1 ] && break; sleep 0.1; done
grep -q '"participant-joined"' "$work/events.1" || fail "room 1 did not hear the others join"

# Media: COUNT packets from each room at 50 per second, all started together; each room must
# receive the other two rooms' packets byte-identical, and nothing else.
media_round() {  # media_round NAME COUNT
  local round=$1 count=$2 n
  for n in 1 2 3; do
    ip netns exec "$tag-r$n" python3 "$peer" "room$n" 127.0.0.1:5004 5006 "$count" 50 "$work/$round.$n.json" --start-file "$work/$round.go" &
    eval "peer_pid_$n=$!"
  done
  # Every peer listens before anyone sends (a slow start would miss the first packets).
  for _ in $(seq 200); do [ -e "$work/$round.1.json.ready" ] && [ -e "$work/$round.2.json.ready" ] && [ -e "$work/$round.3.json.ready" ] && break; sleep 0.1; done
  touch "$work/$round.go"
  for n in 1 2 3; do eval "wait \$peer_pid_$n"; done
  python3 - "$work" "$round" <<'PY' || { "$binary" status --run-directory "$run" --json; grep -h '"quality"' "$work"/events.* | tail -n 3; fail "$round: media was not delivered byte-identical"; }
import json, sys
work, round = sys.argv[1], sys.argv[2]
media = {n: json.load(open(f"{work}/{round}.{n}.json")) for n in (1, 2, 3)}
for n in (1, 2, 3):
    expected = set(p for m in (1, 2, 3) if m != n for p in media[m]["sent"])
    got = media[n]["received"]
    stray = [p for p in got if p not in expected]
    assert not stray, f"room {n} received {len(stray)} packets nobody sent"
    missing = expected - set(got)
    which = sorted((bytes.fromhex(p)[12:12 + 21].decode(errors="replace"), int.from_bytes(bytes.fromhex(p)[2:4], "big")) for p in missing)
    assert not missing, f"room {n} is missing {len(missing)} of {len(expected)} packets: {which}"
    print(f"{round}: room {n} received all {len(expected)} packets of the other two rooms, byte-identical")
PY
}
media_round media 100

# UDP to the relay blocked for room 2 (a policy rule): it falls back to TCP and keeps its
# media; unblocked, it returns to UDP.
ip netns exec "$tag-r2" ip rule add ipproto udp dport 3478 prohibit
transport() { tail -n 1 < <(grep '"event":"quality"' "$work/events.2") | grep -o '"transport":"[a-z]*"'; }
for _ in $(seq 150); do [ "$(transport)" = '"transport":"tcp"' ] && break; sleep 0.1; done
[ "$(transport)" = '"transport":"tcp"' ] || fail "room 2 did not fall back to TCP with UDP blocked"
media_round tcp 50
ip netns exec "$tag-r2" ip rule del ipproto udp dport 3478 prohibit
for _ in $(seq 150); do [ "$(transport)" = '"transport":"udp"' ] && break; sleep 0.1; done
[ "$(transport)" = '"transport":"udp"' ] || fail "room 2 did not return to UDP"
media_round back 50
echo "TCP fallback: room 2 moved to TCP with UDP blocked and back to UDP, media complete both ways"

# A new certificate (same name, new key) serves new connections after a reload; joined rooms stay.
fingerprint() { ip netns exec "$tag-r1" openssl s_client -connect 10.77.0.1:443 -servername conclave.test </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256; }
before=$(fingerprint)
"$binary" cert self-signed --state "$state" --fqdn conclave.test >/dev/null
kill -HUP "$supervisor"
for _ in $(seq 50); do [ "$(fingerprint)" != "$before" ] && break; sleep 0.1; done
[ "$(fingerprint)" != "$before" ] || fail "the new certificate is not served after a reload"
[ "$(participants)" -eq 3 ] || fail "a reload disturbed the joined rooms"
"$binary" cert trust export --state "$state" --out "$work/server-trust.pem" >/dev/null
echo "certificate: a new one is served after reload, the three rooms stayed joined"
grep -q '"event":"quality"' "$work/events.1" || fail "no quality event"

# Refusals, each with its code (the room exits 2 when refused).
refused() {  # refused CODE join-args…
  local code=$1; shift
  set +e
  room 1 timeout 20 "$binary" room join --server conclave.test --trust "$work/server-trust.pem" --rtp-in 127.0.0.1:5104 \
    --rtp-out 127.0.0.1:5106 --json-events "$@" >"$work/refused.out" 2>&1
  local status=$?
  set -e
  [ "$status" -eq 2 ] && grep -q "\"code\":\"$code\"" "$work/refused.out" || { cat "$work/refused.out"; fail "expected $code (exit 2), got exit $status"; }
  echo "refused as expected: $code"
}
refused meeting-full --meeting m1 --nickname fourth
refused unknown-meeting --meeting nosuch --nickname x
echo 1234-5678 > "$work/passcode"
meeting start m2 --passcode-file "$work/passcode" --guests-allowed false >/dev/null
refused guests-not-allowed --meeting m2 --nickname x --passcode-file "$work/passcode"
echo wrong-code > "$work/wrong"
refused wrong-passcode --meeting m2 --nickname x --passcode-file "$work/wrong"
# Registered users and single sign-on.
echo "correct horse battery" > "$work/alice.pw"; echo "wrong password!" > "$work/bad.pw"
"$binary" users add --state "$state" --name "Alice" --password-file "$work/alice.pw" alice@example.test >/dev/null
meeting start m3 --guests-allowed false >/dev/null
joined() {  # joined join-args… : joins, checks the joined event, leaves
  ip netns exec "$tag-r1" timeout 20 "$binary" room join --server conclave.test --trust "$work/server-trust.pem" --rtp-in 127.0.0.1:5104 \
    --rtp-out 127.0.0.1:5106 --json-events "$@" >"$work/joined.out" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q '"event":"joined"' "$work/joined.out" && break; sleep 0.1; done
  grep -q '"event":"joined"' "$work/joined.out" || { cat "$work/joined.out"; fail "join with $* failed"; }
  kill -INT "$pid"; wait "$pid" || fail "the room did not leave cleanly"
}
joined --meeting m3 --email alice@example.test --password-file "$work/alice.pw"
refused bad-credentials --meeting m3 --email alice@example.test --password-file "$work/bad.pw"
refused bad-credentials --meeting m3 --email nobody@example.test --password-file "$work/alice.pw"
"$binary" token sign --key "$work/sso.key" --audience conclave.test --email bob@example.test --name Bob --meeting m3 > "$work/token"
joined --meeting m3 --token-file "$work/token"
"$binary" token sign --key "$work/sso.key" --audience other.test --email bob@example.test > "$work/token.aud"
refused token-invalid --meeting m3 --token-file "$work/token.aud"
"$binary" token sign --key "$work/sso.key" --audience conclave.test --email bob@example.test --meeting m2 > "$work/token.meeting"
refused token-invalid --meeting m3 --token-file "$work/token.meeting"
python3 - "$work/sso.key" > "$work/token.expired" <<'PY'
# An ES256 token that expired an hour ago, signed with openssl (raw r||s, RFC 7518 §3.4).
import base64, json, subprocess, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
signing_input = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(
    {"iss": "management", "sub": "bob@example.test", "aud": "conclave.test", "iat": now - 7200, "exp": now - 3600}).encode())
der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sys.argv[1]], input=signing_input.encode(), capture_output=True, check=True).stdout
def integers(der):
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = []
    for _ in range(2):
        assert der[i] == 0x02; length = der[i + 1]; out.append(int.from_bytes(der[i + 2:i + 2 + length], "big")); i += 2 + length
    return out
r, s = integers(der)
print(signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
PY
refused token-invalid --meeting m3 --token-file "$work/token.expired"
python3 - "$state/db/identity.sqlite" <<'PY' || fail "a refused join left a trace other than the audit log"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
names = [row[0] for row in db.execute("select nickname from visit")]
assert sorted(names) == ["room-1", "room-2", "room-3"], names
refusals = db.execute("select count(*) from audit where action = 'join-refused'").fetchone()[0]
assert refusals >= 5, refusals
PY
echo "registered and token joins work; bad password, unknown user, wrong audience, wrong meeting, expired token refused"

meeting edit m1 --limit 10 --locked true >/dev/null
refused meeting-locked --meeting m1 --nickname late
grep -q '"event":"meeting-edited"' "$work/events.2" || fail "participants were not told of the edit"

# TLS: a name the certificate does not cover, and a server the room does not trust, never join.
notjoined() {
  set +e
  room 1 timeout 20 "$binary" room join "$@" --meeting m1 --nickname x --rtp-in 127.0.0.1:5104 --rtp-out 127.0.0.1:5106 --json-events >"$work/tls.out" 2>&1
  local status=$?
  set -e
  [ "$status" -eq 4 ] && ! grep -q '"joined"' "$work/tls.out" || { cat "$work/tls.out"; fail "a join over unverified TLS (exit $status)"; }
}
notjoined --server 10.77.0.1 --trust "$work/server-trust.pem"
other=$work/other; mkdir -p "$other"
"$binary" cert self-signed --state "$other" --fqdn conclave.test >/dev/null
"$binary" cert trust export --state "$other" --out "$work/other-trust.pem" >/dev/null
notjoined --server conclave.test --trust "$work/other-trust.pem"
echo "TLS: wrong host name and untrusted server both refused"

# A room that dies: its leg is removed (the control connection closes with it).
kill -9 "$room_pid_3"
for _ in $(seq 50); do [ "$(participants)" -eq 2 ] && break; sleep 0.1; done
[ "$(participants)" -eq 2 ] || fail "the dead room's leg was not removed"
for _ in $(seq 50); do grep -q '"participant-left"' "$work/events.1" && break; sleep 0.1; done
grep -q '"participant-left"' "$work/events.1" || fail "room 1 did not hear room 3 leave"

# Stop: every room hears meeting-ended and exits 0.
meeting stop m1 >/dev/null
for n in 1 2; do
  eval "pid=\$room_pid_$n"
  set +e; wait "$pid"; status=$?; set -e
  [ "$status" -eq 0 ] || fail "room $n exited $status after the meeting ended"
  grep -q '"event":"meeting-ended"' "$work/events.$n" || fail "room $n was not told the meeting ended"
done
refused meeting-ended --meeting m1 --nickname late

# Security mode: mixed lets an encapsulated leg join; secured refuses encapsulated meetings and
# legs, and the switch is in the audit log; back to mixed, the relay takes them again.
meeting start open1 --mode encapsulated >/dev/null
joined --meeting open1 --nickname masked
grep -q '"profile":"encapsulated"' "$work/joined.out" || fail "the encapsulated leg did not join in mixed mode"
security_mode() {
  python3 - "$state/conclave.json" "$1" <<'PY'
import json, sys
path = sys.argv[1]; document = json.load(open(path)); document["securityMode"] = sys.argv[2]; json.dump(document, open(path, "w"))
PY
  kill -HUP "$supervisor"
  sleep 1
}
security_mode secured
set +e; meeting start enc2 --mode encapsulated 2>"$work/secured.err"; status=$?; set -e
[ "$status" -eq 2 ] && grep -q "refused-by-security-mode" "$work/secured.err" || fail "secured mode accepted an encapsulated meeting"
refused refused-by-security-mode --meeting open1 --nickname x
python3 - "$state/db/identity.sqlite" <<'PY' || fail "the security mode switch is not in the audit log"
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("select * from audit").fetchall()
assert any("security-mode" in " ".join(map(str, row)) and "secured" in " ".join(map(str, row)) for row in rows), rows
PY
security_mode mixed
meeting start enc3 --mode encapsulated >/dev/null || fail "back in mixed mode, the relay still refuses encapsulated meetings"
echo "security mode: encapsulated joins in mixed, refused in secured (audited), accepted again in mixed"

# The wire: nothing decodes as RTP, no marker anywhere in the capture.
sleep 1
kill "$(srv pgrep -f "tshark -q -i $tag-srv" | head -n 1)" 2>/dev/null || true
sleep 1
media=$(tshark -r "$work/capture.pcapng" -Y "udp.dstport == 3478" 2>/dev/null | wc -l)
[ "$media" -ge 300 ] || fail "the capture holds only $media datagrams to the relay (3 rooms × 100 sent)"
[ "$(tshark -r "$work/capture.pcapng" -o rtp.heuristic_rtp:TRUE -Y rtp 2>/dev/null | wc -l)" -eq 0 ] || fail "RTP visible on the wire"
[ "$(tshark -r "$work/capture.pcapng" -Y 'frame contains "CONCLAVE-MARKER"' 2>/dev/null | wc -l)" -eq 0 ] || fail "plaintext marker on the wire"
echo "capture: $media media datagrams to the relay, none decodes as RTP, no marker"
echo "room-meeting: ok"
