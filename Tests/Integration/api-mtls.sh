#!/usr/bin/env bash
# The command API (docs/api.md) against `conclave supervise`, in a network namespace of its own
# (loopback only):
# - `conclave ctl` drives a meeting's whole life while `conclave room join` agents are in it:
#   idempotent start, conflicting start refused, lock refuses a new join, kick removes exactly
#   one leg, stop ends it for everyone; status, security mode (written by the supervisor, audited
#   with the client certificate), users add/show/erase;
# - mutual TLS: no client certificate, a self-signed one, one of another CA, an expired one are
#   all refused at the handshake; a pinned fingerprint list refuses other certificates of the CA;
# - malformed JSON, a huge body, a wrong content type, an unknown field, a slowloris connection
#   and a request burst (429) are each answered correctly while another client is served;
# - schemathesis against the live API with a client certificate (below the rate limit), bounded in
#   examples and time: no 5xx, status codes, content types and bodies as specified.
set -euo pipefail
binary=${CONCLAVE:-$(cd "$(dirname "$0")/../.." && pwd)/build/conclave}
[ -x "$binary" ] || { echo "api-mtls: $binary missing (scripts/build-static)" >&2; exit 1; }
fail() { echo "api-mtls: FAIL: $*" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"  # the workers (uid 990, 991) reach the state directory through it
ns=api$$
cleanup() {
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "/etc/netns/$ns" "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "/etc/netns/$ns"
echo "127.0.0.1 conclave.test" > "/etc/netns/$ns/hosts"
inns() { ip netns exec "$ns" "$@"; }

# Certificates: the appliance's own (self-signed), the API client CA and its clients, another CA.
state=$work/state; run=$work/run; pki=$work/pki
mkdir -p "$state" "$pki"
cat > "$state/conclave.json" <<JSON
{"version": 1, "securityMode": "mixed", "controlPort": 443, "apiPort": 8443, "mediaPort": 3478, "mediaTCPPort": 4443}
JSON
"$binary" cert self-signed --state "$state" --fqdn conclave.test >/dev/null
"$binary" cert trust export --state "$state" --out "$work/server-trust.pem" >/dev/null
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
ca() {  # ca NAME: a CA certificate
  key "$pki/$1.key"
  openssl req -x509 -new -key "$pki/$1.key" -subj "/CN=$1" -days 30 -out "$pki/$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
client() {  # client NAME CA [openssl ca dates…]: a client certificate NAME.pem issued by CA
  local name=$1 issuer=$2; shift 2
  key "$pki/$name.key"
  openssl req -new -key "$pki/$name.key" -subj "/CN=$name" -out "$pki/$name.csr" 2>/dev/null
  mkdir -p "$pki/db-$issuer"; touch "$pki/db-$issuer/index.txt"; [ -f "$pki/db-$issuer/serial" ] || echo 1000 > "$pki/db-$issuer/serial"
  cat > "$pki/ca.cnf" <<CNF
[ca]
default_ca = issuer
[issuer]
database = $pki/db-$issuer/index.txt
new_certs_dir = $pki/db-$issuer
serial = $pki/db-$issuer/serial
default_md = sha256
default_days = 30
policy = anything
unique_subject = no
x509_extensions = client
[anything]
commonName = supplied
[client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
CNF
  openssl ca -batch -notext -config "$pki/ca.cnf" -keyfile "$pki/$issuer.key" -cert "$pki/$issuer.pem" \
    -in "$pki/$name.csr" -out "$pki/$name.pem" "$@" >/dev/null 2>&1 || fail "openssl ca for $name"
}
ca api-ca; ca other-ca
client manager api-ca
client second api-ca
client stranger other-ca
client expired api-ca -startdate 20200101000000Z -enddate 20200201000000Z
key "$pki/selfsigned.key"
openssl req -x509 -new -key "$pki/selfsigned.key" -subj "/CN=selfsigned" -days 30 -out "$pki/selfsigned.pem" 2>/dev/null
"$binary" cert api-ca import --state "$state" "$pki/api-ca.pem" >/dev/null

# Backgrounded under `ip netns exec` directly, so that $! is the process itself (not a subshell).
ip netns exec "$ns" "$binary" supervise --state "$state" --run-directory "$run" >"$work/supervise.log" 2>&1 &
supervisor=$!
disown "$supervisor"  # the cleanup's kill -9 is expected, not a job to report
for _ in $(seq 100); do "$binary" status --run-directory "$run" 2>/dev/null | grep -q "control: pid" && break; sleep 0.1; done
"$binary" status --run-directory "$run" | grep -q "control: pid" || { cat "$work/supervise.log"; fail "the daemon did not start"; }

export CONCLAVE_API=conclave.test:8443 CONCLAVE_API_CA=$work/server-trust.pem
export CONCLAVE_API_CERT=$pki/manager.pem CONCLAVE_API_KEY=$pki/manager.key
ctl() { inns timeout 20 "$binary" ctl "$@"; }
api() {  # api CERT-NAME curl-args… : prints the HTTP status, body in $work/body
  local name=$1; shift
  inns curl -sS -o "$work/body" -w '%{http_code}' --max-time 15 --cacert "$work/server-trust.pem" \
    --cert "$pki/$name.pem" --key "$pki/$name.key" "$@"
}
for _ in $(seq 50); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
ctl status >"$work/status.txt" || { cat "$work/supervise.log"; fail "ctl status"; }
grep -q "security mode: mixed" "$work/status.txt" || { cat "$work/status.txt"; fail "status has no security mode"; }
ctl status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["version"] and s["role"] == "server" and s["securityMode"] == "mixed", s
assert sorted(w["role"] for w in s["workers"]) == ["control", "relay"], s["workers"]
assert s["certificate"]["daysLeft"] > 0 and len(s["load"]) == 3 and s["uptimeSeconds"] > 0, s
' || fail "status JSON incomplete"
echo "status: version, role, workers, certificate, load"

# Settings from a config file instead of the environment.
printf 'api = conclave.test:8443\ncert = %s\nkey = %s\nca = %s\n' "$pki/manager.pem" "$pki/manager.key" "$work/server-trust.pem" > "$work/ctl.conf"
inns env -u CONCLAVE_API -u CONCLAVE_API_CERT -u CONCLAVE_API_KEY -u CONCLAVE_API_CA CONCLAVE_CTL_CONFIG="$work/ctl.conf" \
  timeout 20 "$binary" ctl security get | grep -q "security mode: mixed" || fail "ctl with a config file"

# Meeting life cycle with room agents joined.
ctl meeting start m1 --name "Board room" --limit 5 | grep -q "^started: m1" || fail "meeting start"
ctl meeting start m1 --name "Board room" --limit 5 | grep -q "^already running: m1" || fail "a repeated start is not idempotent"
set +e; ctl meeting start m1 --name "Other" 2>"$work/err"; status=$?; set -e
[ "$status" = 2 ] && grep -q "409 meeting-exists" "$work/err" || { cat "$work/err"; fail "a conflicting start was not refused (exit $status)"; }
join() {  # join NAME PORT: a room agent in the background, events in $work/events.NAME
  ip netns exec "$ns" "$binary" room join --server conclave.test --meeting m1 --trust "$work/server-trust.pem" \
    --rtp-in "127.0.0.1:$2" --rtp-out "127.0.0.1:$(($2 + 2))" --nickname "$1" --json-events >"$work/events.$1" 2>&1 &
}
participants() { ctl meeting show m1 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["participants"]))'; }
join r1 5004; r1=$!
join r2 5104; r2=$!
for _ in $(seq 100); do [ "$(participants)" = 2 ] && break; sleep 0.1; done
[ "$(participants)" = 2 ] || { tail -n 3 "$work"/events.*; fail "two rooms did not join"; }
ctl meeting show m1 | grep -q "r1" || fail "meeting show has no participant table"
ctl meeting edit m1 --locked true | grep -q "locked" || fail "meeting edit"
set +e
inns timeout 20 "$binary" room join --server conclave.test --meeting m1 --trust "$work/server-trust.pem" \
  --rtp-in 127.0.0.1:5204 --rtp-out 127.0.0.1:5206 --nickname r3 --json-events >"$work/events.r3" 2>&1
status=$?
set -e
[ "$status" = 2 ] && grep -q '"code":"meeting-locked"' "$work/events.r3" || { cat "$work/events.r3"; fail "a locked meeting took a join (exit $status)"; }
echo "lock: a new join is refused with meeting-locked"
leg_r1=$(ctl meeting show m1 --json | python3 -c 'import json,sys; print([p["leg"] for p in json.load(sys.stdin)["participants"] if p["name"]=="r1"][0])')
ctl meeting kick m1 "$leg_r1" | grep -q "removed leg $leg_r1" || fail "kick"
[ "$(participants)" = 1 ] || fail "kick did not remove exactly one leg"
ctl meeting show m1 --json | grep -q '"name":"r2"' || fail "kick removed the wrong leg"
for _ in $(seq 50); do kill -0 "$r1" 2>/dev/null || break; sleep 0.1; done
grep -q "kicked" "$work/events.r1" || { cat "$work/events.r1"; fail "r1 was not told it was kicked"; }
echo "kick: exactly leg $leg_r1 removed, r2 still in"
ctl meeting stop m1 | grep -q "1 participants removed" || fail "meeting stop"
for _ in $(seq 50); do kill -0 "$r2" 2>/dev/null || break; sleep 0.1; done
grep -q "meeting-ended" "$work/events.r2" || { cat "$work/events.r2"; fail "r2 did not hear meeting-ended"; }
set +e; ctl meeting show m1 2>"$work/err"; status=$?; set -e
[ "$status" = 2 ] && grep -q "404 unknown-meeting" "$work/err" || fail "a stopped meeting is still shown"
echo "stop: every participant told, meeting gone"

# Security mode through the supervisor, audited with the client certificate.
ctl security set secured | grep -q "security mode: secured" || fail "security set"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["securityMode"] == "secured"' "$state/conclave.json" \
  || { cat "$state/conclave.json"; fail "conclave.json not written"; }
set +e; ctl security set open 2>"$work/err"; status=$?; set -e
[ "$status" = 2 ] && grep -q "400 invalid-settings: mode" "$work/err" || fail "a bad mode was not refused with its field"
set +e; ctl meeting start m2 --name x --mode encapsulated 2>"$work/err"; status=$?; set -e
[ "$status" = 2 ] && grep -q "refused-by-security-mode" "$work/err" || fail "secured mode took an encapsulated meeting"
ctl security set mixed >/dev/null
fingerprint=$(openssl x509 -in "$pki/manager.pem" -outform DER | sha256sum | cut -d' ' -f1)
"$binary" users audit --state "$state" >"$work/audit.txt"
grep "security-mode" "$work/audit.txt" | grep -q "CN=manager.*$fingerprint" || { cat "$work/audit.txt"; fail "the audit log does not name the client certificate"; }
grep "meeting-start" "$work/audit.txt" | grep -q "sha256:$fingerprint" || fail "meeting start not audited with the certificate"
echo "security mode: written by the supervisor, audited with subject and fingerprint"

# Monitoring settings through the supervisor; metrics on the same port.
ctl metrics | grep -q "^conclave_" || fail "ctl metrics printed no conclave_ series"
[ "$(api manager -X PUT -H 'Content-Type: application/json' --data '{"destinations":["127.0.0.1:8884 s3cret"],"privacy":"off","intervalSeconds":10}' \
  https://conclave.test:8443/v1/system/monitoring)" = 200 ] || { cat "$work/body"; fail "PUT monitoring"; }
grep -q '"privacy":"off"' "$work/body" && ! grep -q s3cret "$work/body" || { cat "$work/body"; fail "monitoring answer (privacy, no password)"; }
python3 -c 'import json,sys; m = json.load(open(sys.argv[1]))["monitoring"]; assert m["privacy"] == "off" and m["intervalSeconds"] == 10, m' \
  "$state/conclave.json" || fail "monitoring not written to conclave.json"
[ "$(api manager -X PUT -H 'Content-Type: application/json' --data '{"destinations":["no such host name!"]}' \
  https://conclave.test:8443/v1/system/monitoring)" = 400 ] && grep -q '"field":"destinations"' "$work/body" || { cat "$work/body"; fail "a bad destination was not refused with its field"; }
echo "monitoring: written by the supervisor, password never returned; metrics served"

# Users.
printf 'correct horse battery\n' > "$work/pw"
ctl users add alice@example.test --name Alice --password-file "$work/pw" | grep -q "added: alice@example.test" || fail "users add"
ctl users show alice@example.test | grep -q Alice || fail "users show"
set +e; ctl users add alice@example.test --name Alice --password-file "$work/pw" 2>"$work/err"; status=$?; set -e
[ "$status" = 2 ] && grep -q "409 user-exists" "$work/err" || fail "a second add was not refused"
ctl users erase alice@example.test | grep -q "erased alice@example.test" || fail "users erase"
set +e; ctl users show alice@example.test 2>/dev/null; status=$?; set -e
[ "$status" = 2 ] || fail "an erased user is still shown"

# Mutual TLS refusals, each at the handshake (no HTTP status at all).
refused_at_handshake() {  # NAME curl-args…
  local name=$1; shift
  set +e
  code=$(inns curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$work/server-trust.pem" "$@" \
    https://conclave.test:8443/v1/status 2>"$work/curl.err")
  local status=$?
  set -e
  [ "$status" != 0 ] && [ "$code" = 000 ] || { cat "$work/curl.err"; fail "$name: not refused at the handshake (curl $status, HTTP $code)"; }
  echo "mutual TLS: $name refused at the handshake ($(head -c 100 "$work/curl.err"))"
}
refused_at_handshake "no client certificate"
refused_at_handshake "a self-signed certificate" --cert "$pki/selfsigned.pem" --key "$pki/selfsigned.key"
refused_at_handshake "another CA's certificate" --cert "$pki/stranger.pem" --key "$pki/stranger.key"
refused_at_handshake "an expired certificate" --cert "$pki/expired.pem" --key "$pki/expired.key"
[ "$(api second https://conclave.test:8443/v1/status)" = 200 ] || fail "a second certificate of the CA was refused"

# Bad requests, answered while a slowloris connection is open and another client is served.
cat > "$work/slow.py" <<'PY'
import socket, ssl, sys, time
context = ssl.create_default_context(cafile=sys.argv[1])
context.load_cert_chain(sys.argv[2], sys.argv[3])
raw = socket.create_connection(("conclave.test", 8443))
connection = context.wrap_socket(raw, server_hostname="conclave.test")
start = time.monotonic()
header = b"GET /v1/status HTTP/1.1\r\nHost: conclave.test\r\nX-Slow: " + b"a" * 200
try:
    for byte in header:
        connection.send(bytes([byte]))
        time.sleep(0.5)
    print("slowloris: never cut off")
    sys.exit(1)
except (OSError, ssl.SSLError):
    elapsed = time.monotonic() - start
    print(f"slowloris: cut off after {elapsed:.1f} s")
    sys.exit(0 if elapsed < 20 else 1)
PY
inns python3 "$work/slow.py" "$work/server-trust.pem" "$pki/second.pem" "$pki/second.key" >"$work/slow.out" 2>&1 &
slow=$!
sleep 1
url=https://conclave.test:8443
expect() {  # expect STATUS CODE DESCRIPTION curl-args…
  local want=$1 code=$2 what=$3; shift 3
  local started=$SECONDS got
  got=$(api manager "$@")
  [ "$got" = "$want" ] || { cat "$work/body"; fail "$what: HTTP $got, expected $want"; }
  [ -z "$code" ] || grep -q "\"code\":\"$code\"" "$work/body" || { cat "$work/body"; fail "$what: no code $code"; }
  [ $((SECONDS - started)) -le 3 ] || fail "$what took $((SECONDS - started)) s while a slow client was connected"
  echo "bad request: $what → $want $code"
}
json=(-H 'Content-Type: application/json')
expect 400 bad-message "malformed JSON" -X POST "${json[@]}" --data '{"id":' "$url/v1/meetings"
expect 400 invalid-settings "unknown field" -X POST "${json[@]}" --data '{"id":"m9","name":"x","colour":"red"}' "$url/v1/meetings"
grep -q '"field":"colour"' "$work/body" || fail "the unknown field is not named"
expect 415 unsupported-media-type "wrong content type" -X POST -H 'Content-Type: text/plain' --data '{"id":"m9","name":"x"}' "$url/v1/meetings"
head -c 200000 /dev/zero | tr '\0' 'a' > "$work/huge"
expect 413 payload-too-large "huge body" -X POST "${json[@]}" --data-binary @"$work/huge" "$url/v1/meetings"
expect 404 not-found "unknown path" "$url/v1/nothing"
expect 200 "" "the spec" "$url/v1/openapi.yaml"
cp "$work/body" "$work/served.yaml"
grep -q "^openapi: 3.1.0" "$work/served.yaml" || fail "the served spec is not OpenAPI 3.1"
wait "$slow" || { cat "$work/slow.out"; fail "the slowloris connection was not bounded"; }
cat "$work/slow.out"

# A burst from one certificate is rate limited (429 with Retry-After); another certificate is not.
cat > "$work/burst.py" <<'PY'
import http.client, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
context.load_cert_chain(sys.argv[2], sys.argv[3])
connection = http.client.HTTPSConnection("conclave.test", 8443, context=context, timeout=10)
statuses = {}
retry = None
for _ in range(300):
    connection.request("GET", "/v1/system/security")
    response = connection.getresponse()
    response.read()
    statuses[response.status] = statuses.get(response.status, 0) + 1
    if response.status == 429:
        retry = response.getheader("Retry-After")
print(statuses, "Retry-After", retry)
sys.exit(0 if statuses.get(429) and retry and set(statuses) <= {200, 429} else 1)
PY
inns python3 "$work/burst.py" "$work/server-trust.pem" "$pki/manager.pem" "$pki/manager.key" || fail "a burst was not rate limited"
[ "$(api second "$url/v1/system/security")" = 200 ] || fail "the rate limit of one certificate hit another"

# Pinning: with a fingerprint list, another certificate of the same CA is refused.
second_fingerprint=$(openssl x509 -in "$pki/second.pem" -outform DER | sha256sum | cut -d' ' -f1)
python3 - "$state/conclave.json" "$second_fingerprint" <<'PY'
import json, sys
document = json.load(open(sys.argv[1])); document["apiClientFingerprints"] = [sys.argv[2]]
json.dump(document, open(sys.argv[1], "w"))
PY
kill -HUP "$supervisor"; sleep 1
[ "$(api second "$url/v1/system/security")" = 200 ] || fail "the pinned certificate was refused"
set +e; code=$(api manager "$url/v1/system/security" 2>/dev/null); set -e
[ "$code" = 000 ] || fail "a certificate that is not pinned got HTTP $code"
echo "pinning: only the listed fingerprint is served"
python3 - "$state/conclave.json" <<'PY'
import json, sys
document = json.load(open(sys.argv[1])); del document["apiClientFingerprints"]
json.dump(document, open(sys.argv[1], "w"))
PY
kill -HUP "$supervisor"; sleep 2

# schemathesis against the live API, bounded in examples and time.
python3 -c 'import schemathesis.cli' 2>/dev/null || fail "schemathesis missing (scripts/bootstrap installs it)"
set +e
(cd "$work" && inns timeout 600 python3 -c 'import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "schemathesis"; sys.exit(schemathesis())' run "$work/served.yaml" --url "$url" \
  --request-cert "$pki/manager.pem" --request-cert-key "$pki/manager.key" --tls-verify "$work/server-trust.pem" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples 25 --max-time 240 --workers 1 --rate-limit 25/s --no-color >"$work/schemathesis.log" 2>&1)  # its example database stays in $work
status=$?
set -e
tail -n 25 "$work/schemathesis.log"
[ "$status" = 0 ] || { sed -n '/FAILURES/,/SUMMARY/p' "$work/schemathesis.log" | head -n 150; fail "schemathesis found failures (exit $status)"; }
grep -q '"level":"error"\|CRITICAL' "$work/supervise.log" && { grep 'error\|CRITICAL' "$work/supervise.log" | tail; fail "the daemon logged errors"; } || true
kill -0 "$supervisor" || fail "the daemon died"
echo "api-mtls: PASS"
