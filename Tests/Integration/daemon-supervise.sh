#!/usr/bin/env bash
# conclave supervise as root in a network namespace of the test's own: workers run under their
# own uids with no capabilities and no_new_privs; media flows through the relay worker; a
# killed relay worker is restarted and gets its legs again; a killed control worker leaves the
# relay forwarding; SIGHUP reloads the legs file; SIGTERM stops everything cleanly; a bad
# configuration is refused naming the field.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/conclave ] || ./scripts/build-static >/dev/null
binary=$(pwd)/build/conclave
work=$(mktemp -d)
namespace=conclave-daemon-$$
ip netns add "$namespace"
cleanup() {
  ip netns pids "$namespace" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns delete "$namespace" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
in_ns() { ip netns exec "$namespace" "$@"; }
in_ns ip link set lo up
fail() { echo "FAIL: $*"; echo "--- supervisor log"; cat "$work/supervise.log" 2>/dev/null || true; exit 1; }

state=$work/state
mkdir -p "$state/pki"
chmod 755 "$work" "$state"
"$binary" loadgen make-legs --meetings 2 --participants 3 >"$state/legs.json"
chmod 644 "$state/legs.json"
cat >"$state/conclave.json" <<JSON
{ "version": 1, "listen": "127.0.0.1", "controlPort": 10443, "apiPort": 18443, "mediaPort": 40100,
  "mediaTCPPort": 40200, "relayThreads": 1, "legsFile": "legs.json",
  "controlAccount": { "user": "conclave-test-control", "uid": 64101, "gid": 64101 },
  "relayAccount": { "user": "conclave-test-media", "uid": 64102, "gid": 64102 } }
JSON

status() { in_ns "$binary" status --json --run-directory "$work/run"; }
field() {  # field ROLE PYTHON-EXPRESSION-ON-w (the worker report)
  status | python3 -c "import json,sys; r=json.load(sys.stdin); w=next(w for w in r['workers'] if w['role']=='$1'); print($2)"
}
wait_for() {  # wait_for DESCRIPTION COMMAND…: retries for 15 s
  local description=$1; shift
  for _ in $(seq 150); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.1; done
  fail "timed out waiting for $description"
}
relay_legs_are() { [ "$(field relay "w['status']['legs']")" = "$1" ]; }
restarted() {  # restarted ROLE OLD-PID: a worker of ROLE runs with another pid
  local pid
  pid=$(field "$1" "w['pid']")
  [ "$pid" != None ] && [ "$pid" != "$2" ]
}
load() {  # load SECONDS: loadgen through the relay worker, every packet checked
  in_ns "$binary" loadgen --legs "$state/legs.json" --relay 127.0.0.1:40100 --meetings 2 --participants 3 \
    --audio-pps 50 --video-pps 200 --duration "$1" --check >"$work/load.out" || { cat "$work/load.out"; return 1; }
}

ip netns exec "$namespace" "$binary" supervise --state "$state" --run-directory "$work/run" --stop-deadline 6 \
  2>"$work/supervise.log" &
supervisor=$!
wait_for "both workers and 6 legs in the relay" relay_legs_are 6

# Privileges, seen from outside.
for role in relay control; do
  pid=$(field $role "w['pid']")
  expected_uid=$([ $role = relay ] && echo 64102 || echo 64101)
  python3 - "$pid" "$expected_uid" <<'PYTHON' || fail "$role worker privileges"
import sys
pid, uid = sys.argv[1], sys.argv[2]
fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
fields = {key: value.split() for key, value in fields.items()}
assert fields["Uid"] == [uid] * 4, fields["Uid"]
assert fields["Gid"] == [uid] * 4, fields["Gid"]
assert fields["Groups"] == [uid], fields["Groups"]
for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
    assert int(fields[name][0], 16) == 0, (name, fields[name])
assert fields["NoNewPrivs"] == ["1"], fields["NoNewPrivs"]
print(f"pid {pid}: uid/gid {uid}, every capability set empty, NoNewPrivs 1")
PYTHON
done
relay=$(field relay "w['pid']")
if ls -l "/proc/$relay/fd" | grep -q "$state/pki"; then fail "the relay worker has a file open under pki/"; fi
supervisor_caps=$(awk '/^CapEff/ {print $2}' "/proc/$supervisor/status")
[ "$((16#$supervisor_caps))" -eq $(( (1<<5) | (1<<6) | (1<<7) | (1<<8) )) ] \
  || fail "supervisor keeps CapEff $supervisor_caps, expected KILL, SETGID, SETUID, SETPCAP only"
in_ns "$binary" status --run-directory "$work/run"

load 2 || fail "media through the relay worker"
echo "media flows: $(head -1 "$work/load.out")"

# A killed relay worker is restarted and the control worker sends it every leg again.
kill -9 "$relay"
wait_for "a new relay worker" restarted relay "$relay"
wait_for "the legs in the new relay worker" relay_legs_are 6
load 2 || fail "media after the relay worker restarted"
[ "$(field relay "w['restarts']")" = 1 ] || fail "relay restart not counted"
echo "relay worker restarted, legs re-sent, media flows"

# A killed control worker: the relay keeps forwarding the legs it has meanwhile.
control=$(field control "w['pid']")
kill -9 "$control"
load 2 || fail "media while the control worker restarts"
wait_for "a new control worker" restarted control "$control"
relay_legs_are 6 || fail "relay lost legs when the control worker restarted"
echo "control worker restarted; relay kept forwarding"

# SIGHUP while media flows: no loss. Then a changed legs file reaches the relay on reload.
load 3 &
loader=$!
sleep 1
kill -HUP "$supervisor"
wait "$loader" || fail "media lost across SIGHUP"
python3 - "$state/legs.json" <<'PYTHON'
import json, sys
document = json.load(open(sys.argv[1]))
document["legs"] = [leg for leg in document["legs"] if leg["meeting"] == 1]
json.dump(document, open(sys.argv[1] + ".new", "w"))
PYTHON
mv "$state/legs.json.new" "$state/legs.json"
kill -HUP "$supervisor"
wait_for "the reload to remove meeting 2's legs" relay_legs_are 3
echo "reload: no loss, legs file changes applied"

# SIGTERM: control, then relay, then exit 0, within the deadline.
start=$SECONDS
kill -TERM "$supervisor"
wait "$supervisor" || fail "supervisor exited with $?"
[ $((SECONDS - start)) -le 6 ] || fail "stopping took $((SECONDS - start)) s"
[ -z "$(ip netns pids "$namespace")" ] || fail "processes left: $(ip netns pids "$namespace")"
grep -q "control worker stopped" "$work/supervise.log" && grep -q "relay worker stopped" "$work/supervise.log" \
  || fail "workers were not stopped in order"
echo "SIGTERM: stopped cleanly in $((SECONDS - start)) s"

# A bad field is refused at start, named, and nothing is changed or left running.
sed -i 's/"controlPort": 10443/"controlPort": "ten"/' "$state/conclave.json"
before=$(sha256sum "$state/conclave.json")
if ip netns exec "$namespace" "$binary" supervise --state "$state" --run-directory "$work/run" 2>"$work/bad.log"; then
  fail "a bad configuration was accepted"
fi
grep -q "controlPort: expected an integer" "$work/bad.log" || fail "the refusal does not name the field: $(cat "$work/bad.log")"
[ "$(sha256sum "$state/conclave.json")" = "$before" ] || fail "the configuration was changed"
echo "bad configuration refused: $(grep -o 'controlPort: .*' "$work/bad.log")"
