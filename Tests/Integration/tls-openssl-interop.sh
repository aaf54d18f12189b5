#!/usr/bin/env bash
# Interop with the openssl CLI in both directions: our CSR verifies and carries its SANs and
# an openssl CA signs it; `openssl s_client` verifies `conclave tls serve` (chain and
# hostname) and derives the same exporter value; `conclave tls connect` verifies
# `openssl s_server` and derives its exporter value too; wrong names and CAs are refused.
set -euo pipefail
source "$(dirname "$0")/tls-lib.bash"
state=$work/state

openssl_ca "$work" ca
openssl_ca "$work" stranger

# Our CSR, signed by an openssl CA.
conclave cert request --state "$state" --fqdn conclave.test --san IP:127.0.0.1 --out "$work/csr.pem" 2>/dev/null
openssl req -in "$work/csr.pem" -noout -verify 2>&1 | grep -q "verify OK" || fail "openssl req -verify refused our CSR"
openssl req -in "$work/csr.pem" -noout -text | grep -q "DNS:conclave.test, IP Address:127.0.0.1" || fail "CSR lacks the SANs"
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$work/server.ext"
openssl x509 -req -in "$work/csr.pem" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 30 \
  -copy_extensions copy -extfile "$work/server.ext" -out "$work/server.pem" 2>/dev/null
conclave cert import --state "$state" "$work/server.pem" --chain "$work/ca.pem" >/dev/null

# openssl s_client → conclave tls serve.
port=$(pick_port)
conclave tls serve --state "$state" --listen "127.0.0.1:$port" --export EXPORTER-conclave-test:32 >"$work/serve.log" 2>&1 &
background_pids+=($!)
wait_for_line "$work/serve.log" "listening"
(echo "hello through tls"; sleep 1) | timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername conclave.test \
  -verify_return_error -verify_hostname conclave.test -CAfile "$work/ca.pem" \
  -keymatexport EXPORTER-conclave-test -keymatexportlen 32 >"$work/s_client.log" 2>&1 || { cat "$work/s_client.log"; fail "s_client failed"; }
grep -q "Verify return code: 0 (ok)" "$work/s_client.log" || fail "s_client did not verify conclave tls serve"
grep -q "^hello through tls" "$work/s_client.log" || fail "no echo through conclave tls serve"
theirs=$(sed -n 's/^ *Keying material: //p' "$work/s_client.log" | tr 'a-f' 'A-F')
wait_for_line "$work/serve.log" "export EXPORTER-conclave-test:"
ours=$(sed -n 's/^export EXPORTER-conclave-test: //p' "$work/serve.log" | head -1)
[ -n "$theirs" ] && [ "$theirs" = "$ours" ] || fail "exporter mismatch: openssl $theirs, conclave $ours"
grep -q "^sni: conclave.test" "$work/serve.log" || fail "serve did not see the SNI name"

if (sleep 1) | timeout 20 openssl s_client -connect "127.0.0.1:$port" -verify_return_error -verify_hostname wrong.test \
  -CAfile "$work/ca.pem" >"$work/s_client-wrong.log" 2>&1; then
  fail "s_client accepted a wrong hostname"
fi

# conclave tls connect → openssl s_server.
openssl_leaf "$work" ca peer.test serverAuth "DNS:peer.test"
port2=$(pick_port)
# s_server's standard input stays open (a FIFO with a writer we own) so it keeps serving.
mkfifo "$work/s_server.in"
sleep 60 >"$work/s_server.in" &
background_pids+=($!)
openssl s_server -accept "127.0.0.1:$port2" -cert "$work/peer.test.pem" -key "$work/peer.test.key" \
  -keymatexport EXPORTER-conclave-test -keymatexportlen 48 <"$work/s_server.in" >"$work/s_server.log" 2>&1 &
background_pids+=($!)
wait_for_line "$work/s_server.log" "ACCEPT"
echo "hello s_server" | timeout 20 "$CONCLAVE_BIN" tls connect "127.0.0.1:$port2" --servername peer.test --ca "$work/ca.pem" \
  --export EXPORTER-conclave-test:48 >"$work/connect.log" 2>&1 || { cat "$work/connect.log"; fail "tls connect refused s_server"; }
grep -q "^version: TLSv1.3" "$work/connect.log" || fail "tls connect did not report TLS 1.3"
grep -q "^peer: CN=peer.test" "$work/connect.log" || fail "tls connect did not report the peer"
wait_for_line "$work/s_server.log" "hello s_server"
ours=$(sed -n 's/^export EXPORTER-conclave-test: //p' "$work/connect.log")
theirs=$(sed -n 's/^ *Keying material: //p' "$work/s_server.log" | tr 'a-f' 'A-F' | head -1)
[ -n "$ours" ] && [ "$ours" = "$theirs" ] || fail "exporter mismatch: conclave $ours, openssl $theirs"

# Refusals: a CA that did not sign the server, and a name not in its SANs.
if echo x | timeout 20 "$CONCLAVE_BIN" tls connect "127.0.0.1:$port2" --servername peer.test --ca "$work/stranger.pem" >"$work/c1.log" 2>&1; then
  fail "tls connect accepted a server from another CA"
fi
grep -q "unable to get local issuer certificate" "$work/c1.log" || { cat "$work/c1.log"; fail "no reason for the CA refusal"; }
if echo x | timeout 20 "$CONCLAVE_BIN" tls connect "127.0.0.1:$port2" --servername wrong.test --ca "$work/ca.pem" >"$work/c2.log" 2>&1; then
  fail "tls connect accepted a wrong hostname"
fi
grep -q "hostname mismatch" "$work/c2.log" || { cat "$work/c2.log"; fail "no reason for the hostname refusal"; }
echo "tls-openssl-interop: ok"
