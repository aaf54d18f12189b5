#!/usr/bin/env bash
# Mutual TLS on `conclave tls serve --require-client-cert`: a client certificate from the API
# CA (made by openssl) is accepted and its subject reported; no certificate, or one from
# another CA, is refused — with `conclave tls connect` and with `openssl s_client`.
set -euo pipefail
source "$(dirname "$0")/tls-lib.bash"
state=$work/state

openssl_ca "$work" api-ca
openssl_ca "$work" other-ca
openssl_leaf "$work" api-ca management clientAuth ""
openssl_leaf "$work" other-ca intruder clientAuth ""
conclave cert self-signed --state "$state" --fqdn conclave.test >/dev/null
conclave cert trust export --state "$state" --out "$work/server-anchor.pem" >/dev/null
conclave cert api-ca import --state "$state" "$work/api-ca.pem" >/dev/null
conclave cert api-ca show --state "$state" | grep -q "CN=api-ca" || fail "api-ca show"

port=$(pick_port)
conclave tls serve --state "$state" --listen "127.0.0.1:$port" --require-client-cert >"$work/serve.log" 2>&1 &
background_pids+=($!)
wait_for_line "$work/serve.log" "listening"

connect() {
  echo "ping" | timeout 20 "$CONCLAVE_BIN" tls connect "127.0.0.1:$port" --servername conclave.test \
    --ca "$work/server-anchor.pem" "$@"
}

connect --cert "$work/management.pem" --key "$work/management.key" >"$work/ok.log" 2>&1 || { cat "$work/ok.log"; fail "API CA client refused"; }
grep -q "^ping" "$work/ok.log" || fail "no echo for the API CA client"
wait_for_line "$work/serve.log" "peer: CN=management"

if connect >"$work/none.log" 2>&1; then fail "a client without a certificate was accepted"; fi
if connect --cert "$work/intruder.pem" --key "$work/intruder.key" >"$work/other.log" 2>&1; then
  fail "a client certificate from another CA was accepted"
fi
grep -q "peer: CN=intruder" "$work/serve.log" && fail "serve reported the intruder as a verified peer"

(echo "ping"; sleep 1) | timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/server-anchor.pem" \
  -cert "$work/management.pem" -key "$work/management.key" -verify_return_error >"$work/s_client.log" 2>&1 \
  || { cat "$work/s_client.log"; fail "s_client with the API CA certificate failed"; }
grep -q "^ping" "$work/s_client.log" || fail "no echo for s_client with a client certificate"
(echo "ping"; sleep 1) | timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/server-anchor.pem" \
  >"$work/s_client-none.log" 2>&1 || true
grep -q "^ping" "$work/s_client-none.log" && fail "s_client without a certificate got an echo"
grep -qi "alert" "$work/s_client-none.log" || { cat "$work/s_client-none.log"; fail "s_client without a certificate saw no alert"; }
echo "tls-mutual: ok"
