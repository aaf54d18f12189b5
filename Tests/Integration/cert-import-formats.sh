#!/usr/bin/env bash
# Files made by the openssl CLI import: PEM, DER, P7B (PEM and DER) and PKCS#12; each refused
# import names its reason on one line and leaves current/ byte-identical; rollback restores
# the previous certificate; `cert check` exit codes follow expiry.
set -euo pipefail
source "$(dirname "$0")/tls-lib.bash"
state=$work/state
current=$state/pki/current

openssl_ca "$work" ca
openssl_leaf "$work" ca good serverAuth "DNS:conclave.test,IP:127.0.0.1"
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
shown() { conclave cert show --state "$state" --json | sed -n 's/.*"sha256Fingerprint" : "\(.*\)".*/\1/p'; }

# PKCS#12 from openssl (3.0 defaults: AES-256-CBC, PBKDF2), with a password file.
echo "p12 secret" >"$work/password"
openssl pkcs12 -export -inkey "$work/good.key" -in "$work/good.pem" -certfile "$work/ca.pem" \
  -passout file:"$work/password" -out "$work/good.p12"
echo "wrong" >"$work/wrong-password"
if conclave cert import-p12 --state "$state" "$work/good.p12" --password-file "$work/wrong-password" --fqdn conclave.test 2>"$work/err"; then
  fail "wrong PKCS#12 password accepted"
fi
grep -q "wrong password" "$work/err" || { cat "$work/err"; fail "no reason for the wrong password"; }
conclave cert import-p12 --state "$state" "$work/good.p12" --password-file "$work/password" --fqdn conclave.test >/dev/null
[ "$(shown)" = "$(fingerprint "$work/good.pem")" ] || fail "PKCS#12 import did not activate the certificate"
[ "$(stat -c %a "$current/key.pem")" = 600 ] || fail "key.pem is not 0600"

# P7B (PEM and DER) and DER certificates, each with the openssl-made key.
openssl crl2pkcs7 -nocrl -certfile "$work/good.pem" -certfile "$work/ca.pem" -out "$work/chain.p7b"
openssl crl2pkcs7 -nocrl -certfile "$work/good.pem" -certfile "$work/ca.pem" -outform DER -out "$work/chain-der.p7b"
openssl x509 -in "$work/good.pem" -outform DER -out "$work/good.der"
for file in chain.p7b chain-der.p7b; do
  openssl_leaf "$work" ca "next-$file" serverAuth "DNS:conclave.test"
  openssl crl2pkcs7 -nocrl -certfile "$work/next-$file.pem" -certfile "$work/ca.pem" -out "$work/$file"
  [ "$file" = chain-der.p7b ] && openssl pkcs7 -in "$work/$file" -outform DER -out "$work/$file.tmp" && mv "$work/$file.tmp" "$work/$file"
  conclave cert import --state "$state" "$work/$file" --key "$work/next-$file.key" >/dev/null || fail "import of $file"
  [ "$(shown)" = "$(fingerprint "$work/next-$file.pem")" ] || fail "$file did not activate"
done
conclave cert import --state "$state" "$work/good.der" --chain "$work/ca.pem" --key "$work/good.key" >/dev/null || fail "DER import"
[ "$(shown)" = "$(fingerprint "$work/good.pem")" ] || fail "DER import did not activate"

# Refusals, each with its reason; current/ must not change.
snapshot() { (cd "$current" && sha256sum cert.pem chain.pem key.pem; readlink "$state/pki/current"); }
before=$(snapshot)
refuse() {  # refuse REASON-PATTERN ARGS…
  local pattern=$1; shift
  if conclave cert import --state "$state" "$@" >/dev/null 2>"$work/err"; then fail "accepted: $*"; fi
  grep -q "$pattern" "$work/err" || { cat "$work/err"; fail "expected '$pattern' for: $*"; }
  [ "$(wc -l <"$work/err")" -eq 1 ] || { cat "$work/err"; fail "reason is not one line for: $*"; }
  [ "$(snapshot)" = "$before" ] || fail "current/ changed after a refused import: $*"
}
openssl_leaf "$work" ca wrong-name serverAuth "DNS:other.test"
openssl_ca "$work" stranger
openssl_leaf "$work" stranger unanchored serverAuth "DNS:conclave.test"
openssl req -new -newkey rsa:1024 -nodes -keyout "$work/weak.key" -out "$work/weak.csr" -subj "/CN=weak" 2>/dev/null
printf 'subjectAltName=DNS:conclave.test\nextendedKeyUsage=serverAuth\n' >"$work/weak.ext"
openssl x509 -req -in "$work/weak.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -days 30 -extfile "$work/weak.ext" -out "$work/weak.pem" 2>/dev/null
chmod 600 "$work/weak.key"
openssl x509 -req -in "$work/good.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -days 30 -sha1 -extfile "$work/good.ext" -out "$work/sha1.pem" 2>/dev/null
echo "not a certificate" >"$work/garbage.pem"
cp "$work/good.key" "$work/open.key" && chmod 644 "$work/open.key"

refuse "not in the certificate's SANs" "$work/wrong-name.pem" --chain "$work/ca.pem" --key "$work/wrong-name.key"
refuse "does not match" "$work/good.pem" --chain "$work/ca.pem" --key "$work/wrong-name.key"
refuse "does not build" "$work/unanchored.pem" --key "$work/unanchored.key"
refuse "at least 2048" "$work/weak.pem" --chain "$work/ca.pem" --key "$work/weak.key"
refuse "SHA-1" "$work/sha1.pem" --chain "$work/ca.pem" --key "$work/good.key"
refuse "is a CA certificate" "$work/ca.pem" --key "$work/ca.key"
refuse "not a certificate" "$work/garbage.pem" --key "$work/good.key"
refuse "unreadable" "$work/missing.pem" --key "$work/good.key"
refuse "readable by group or others" "$work/good.pem" --key "$work/open.key"
refuse "no pending key" "$work/good.pem"

# Rollback goes back to the P7B-DER certificate imported before the DER one.
conclave cert rollback --state "$state" >/dev/null
[ "$(shown)" = "$(fingerprint "$work/next-chain-der.p7b.pem")" ] || fail "rollback did not restore the previous certificate"

# Expiry: a certificate with 5 days left is warn-7 (exit 4).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/short.key" -out "$work/short.pem" \
  -subj "/CN=conclave.test" -days 5 -addext "subjectAltName=DNS:conclave.test" -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
chmod 600 "$work/short.key"
conclave cert import --state "$state" "$work/short.pem" --key "$work/short.key" >/dev/null
set +e; conclave cert check --state "$state" >"$work/check"; code=$?; set -e
[ "$code" -eq 4 ] && grep -q "^warn-7" "$work/check" || fail "cert check: exit $code, $(cat "$work/check")"
echo "cert-import-formats: ok"
