#!/usr/bin/env bash
# `conclave users` on a fresh state directory (add, duplicate, weak password, no terminal,
# passwd, erase and what it prints, the audit log, file modes and owners when root works in a
# directory another uid owns), and join tokens interoperating with the openssl command line both
# ways: tokens openssl signs (ES256 as raw r||s, EdDSA) verify with `conclave token verify`, and
# tokens `conclave token sign` makes verify with openssl; tampered, expired, wrong audience or
# meeting, alg "none" and HS256 are refused.
# Runs the static binary: CONCLAVE=/path/to/conclave, default build/conclave.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONCLAVE=${CONCLAVE:-${CONCLAVE_BIN:-build/conclave}}
[ -x "$CONCLAVE" ] || { echo "FAIL: $CONCLAVE is not an executable (build it with scripts/build-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Every command is bounded in time and has no terminal (setsid) and no standard input.
conclave() { timeout 60 setsid -w "$CONCLAVE" "$@" </dev/null; }
# refused WHAT PATTERN COMMAND…: the command must fail and say PATTERN on standard error.
refused() {
  local what=$1 pattern=$2
  shift 2
  if conclave "$@" >"$work/out" 2>"$work/err"; then fail "$what: accepted"; fi
  grep -q -- "$pattern" "$work/err" || { cat "$work/err" >&2; fail "$what: no '$pattern' in the error"; }
}

state=$work/state
mkdir -m 0755 "$state"
# The control worker's uid owns the state directory; this test runs as root like the console.
owner=4242
[ "$(id -u)" = 0 ] && chown "$owner:$owner" "$state"
printf 'correct horse battery\n' >"$work/password"
printf 'short\n' >"$work/short"
printf 'another good password\n' >"$work/password2"

# --- users ----------------------------------------------------------------------------------
conclave users add --state "$state" --name "Alice Liddell" " Alice@Example.ORG" --password-file "$work/password" >"$work/out"
grep -q "users: added alice@example.org (Alice Liddell)" "$work/out" || fail "add printed: $(cat "$work/out")"
conclave users add --state "$state" --name "Bob" bob@example.org --password-file "$work/password" >/dev/null
[ "$(conclave users list --state "$state")" = $'alice@example.org\tAlice Liddell\nbob@example.org\tBob' ] || fail "list: $(conclave users list --state "$state")"
conclave users show --state "$state" ALICE@example.org | grep -q "^name: Alice Liddell$" || fail "show"

before=$(conclave users audit --state "$state" --limit 1000 | wc -l)
refused "duplicate" "already exists" users add --state "$state" --name Other alice@example.org --password-file "$work/password"
refused "short password" "at least 10 characters" users add --state "$state" --name Carol carol@example.org --password-file "$work/short"
refused "bad email" "invalid email" users add --state "$state" --name Carol "carol at example.org" --password-file "$work/password"
refused "no terminal" "--password-file" users add --state "$state" --name Carol carol@example.org
refused "unknown user" "no registered user" users passwd --state "$state" carol@example.org --password-file "$work/password2"
[ "$(conclave users list --state "$state" | wc -l)" = 2 ] || fail "a refused add changed the users"
[ "$(conclave users audit --state "$state" --limit 1000 | wc -l)" = "$before" ] || fail "a refused command wrote an audit entry"

refused "short new password" "at least 10 characters" users passwd --state "$state" alice@example.org --password-file "$work/short"
conclave users passwd --state "$state" alice@example.org --password-file "$work/password2" | grep -q "password set for alice@example.org" \
  || fail "passwd"

conclave users audit --state "$state" >"$work/audit"
grep -q "local user.add \[alice@example.org\]" "$work/audit" || { cat "$work/audit" >&2; fail "user.add not audited"; }
grep -q "local user.password-set \[alice@example.org\]" "$work/audit" || fail "user.password-set not audited"

conclave users erase --state "$state" Alice@example.org >"$work/out"
grep -q "removed user alice@example.org, 0 visits, 2 audit entries naming them" "$work/out" || fail "erase printed: $(cat "$work/out")"
refused "erase twice" "no registered user" users erase --state "$state" alice@example.org
conclave users audit --state "$state" >"$work/audit"
grep -qi "alice" "$work/audit" && { cat "$work/audit" >&2; fail "the audit log still names the erased user"; }
grep -q "local user.erase erased one registered user" "$work/audit" || fail "erase not audited"
[ "$(conclave users list --state "$state")" = $'bob@example.org\tBob' ] || fail "list after erase"
# Nothing of Alice is left in the database files either (secure_delete zeroes freed cells;
# erase checkpoints the write-ahead log, which held the old pages).
if grep -qai "alice" "$state"/db/identity.sqlite*; then fail "the erased email is still in the database files"; fi

# Files: directory 0700, database 0600, all owned by the state directory's owner (root gave them away).
[ "$(stat -c %a "$state/db")" = 700 ] || fail "db directory is $(stat -c %a "$state/db")"
[ "$(stat -c %a "$state/db/identity.sqlite")" = 600 ] || fail "identity.sqlite is $(stat -c %a "$state/db/identity.sqlite")"
if [ "$(id -u)" = 0 ]; then
  for file in "$state/db" "$state"/db/identity.sqlite*; do
    [ "$(stat -c %u:%g "$file")" = "$owner:$owner" ] || fail "$file is owned by $(stat -c %u:%g "$file"), not $owner"
  done
fi

# The configured retention is validated like every conclave.json field.
echo '{"guestRetentionDays": 0}' >"$state/conclave.json"
refused "retention 0" "guestRetentionDays" users list --state "$state"
echo '{"guestRetentionDays": 7}' >"$state/conclave.json"
conclave users list --state "$state" >/dev/null

# --- join tokens ----------------------------------------------------------------------------
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
unb64url() {
  local text padded
  text=$(tr -- '-_' '+/')
  padded=$text
  case $((${#text} % 4)) in 2) padded="$text==" ;; 3) padded="$text=" ;; esac
  printf '%s' "$padded" | base64 -d
}
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ec.key" 2>/dev/null
openssl pkey -in "$work/ec.key" -pubout -out "$work/ec.pub"
openssl genpkey -algorithm ED25519 -out "$work/ed.key"
openssl pkey -in "$work/ed.key" -pubout -out "$work/ed.pub"
fqdn=conclave.example.org
now=$(date +%s)

# openssl_token ALG KEY PAYLOAD: a JWS made by the openssl CLI; ES256 turns openssl's DER
# signature into the raw r||s of RFC 7518 §3.4.
openssl_token() {
  local alg=$1 key=$2 payload=$3 input
  input="$(printf '{"alg":"%s","typ":"JWT"}' "$alg" | b64url).$(printf '%s' "$payload" | b64url)"
  printf '%s' "$input" >"$work/input"
  if [ "$alg" = ES256 ]; then
    openssl dgst -sha256 -sign "$key" -out "$work/sig.der" "$work/input"
    openssl asn1parse -inform DER -in "$work/sig.der" | awk -F: '/INTEGER/ { printf "%064s", $NF }' | tr ' ' 0 | tr a-f A-F | basenc --base16 -d >"$work/sig"
  else
    openssl pkeyutl -sign -inkey "$key" -rawin -in "$work/input" -out "$work/sig"
  fi
  printf '%s.%s' "$input" "$(b64url <"$work/sig")"
}
payload() { printf '{"iss":"mgmt","sub":"Bob@example.org","aud":"%s","exp":%d,"meeting":"board","name":"Bob"}' "${2:-$fqdn}" "$1"; }

for kind in ec ed; do
  alg=$([ $kind = ec ] && echo ES256 || echo EdDSA)
  token=$(openssl_token $alg "$work/$kind.key" "$(payload $((now + 300)))")
  conclave token verify --key "$work/$kind.pub" --audience $fqdn --meeting board "$token" >"$work/out" \
    || fail "$alg token signed by openssl refused: $(cat "$work/out")"
  grep -q "valid: bob@example.org for $fqdn, issued by mgmt, meeting board" "$work/out" || fail "$alg claims: $(cat "$work/out")"
  refused "$alg wrong meeting" 'for meeting "board"' token verify --key "$work/$kind.pub" --audience $fqdn --meeting other "$token"
  refused "$alg wrong audience" "not this appliance" token verify --key "$work/$kind.pub" --audience other.example.org --meeting board "$token"
  expired=$(openssl_token $alg "$work/$kind.key" "$(payload $((now - 120)))")
  refused "$alg expired" "expired" token verify --key "$work/$kind.pub" --audience $fqdn --meeting board "$expired"
  # Tampered payload (another subject) under the original signature.
  forged="${token%%.*}.$(payload $((now + 300)) | sed 's/Bob@/Mallory@/' | b64url).${token##*.}"
  refused "$alg tampered payload" "does not verify" token verify --key "$work/$kind.pub" --audience $fqdn --meeting board "$forged"
  other=$([ $kind = ec ] && echo ed || echo ec)
  refused "$alg with the other key" "does not verify" token verify --key "$work/$other.pub" --audience $fqdn --meeting board "$token"

  # conclave token sign → openssl verifies the signature.
  token=$(conclave token sign --key "$work/$kind.key" --audience $fqdn --email Carol@example.org --meeting board --name Carol --ttl 60)
  header=$(printf '%s' "${token%%.*}" | unb64url)
  [ "$header" = "{\"alg\":\"$alg\",\"typ\":\"JWT\"}" ] || fail "header $header"
  claims=$(printf '%s' "$token" | cut -d. -f2 | unb64url)
  for claim in '"sub":"carol@example.org"' "\"aud\":\"$fqdn\"" '"meeting":"board"' '"name":"Carol"' '"exp":' '"iat":'; do
    case $claims in *"$claim"*) ;; *) fail "$alg claims lack $claim: $claims" ;; esac
  done
  printf '%s' "${token%.*}" >"$work/input"
  printf '%s' "${token##*.}" | unb64url >"$work/sig"
  [ "$(stat -c %s "$work/sig")" = 64 ] || fail "$alg signature is $(stat -c %s "$work/sig") bytes, not 64"
  if [ $kind = ec ]; then
    r=$(head -c 32 "$work/sig" | basenc --base16 -w0); s=$(tail -c 32 "$work/sig" | basenc --base16 -w0)
    printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "$r" "$s" >"$work/sig.cnf"
    openssl asn1parse -genconf "$work/sig.cnf" -out "$work/sig.der" -noout
    openssl dgst -sha256 -verify "$work/ec.pub" -signature "$work/sig.der" "$work/input" >/dev/null \
      || fail "openssl refuses the ES256 token conclave signed"
  else
    openssl pkeyutl -verify -pubin -inkey "$work/ed.pub" -rawin -in "$work/input" -sigfile "$work/sig" >/dev/null \
      || fail "openssl refuses the EdDSA token conclave signed"
  fi
  conclave token verify --key "$work/$kind.pub" --audience $fqdn --meeting board "$token" >/dev/null || fail "own $alg token refused"
done

# alg "none" and HS256 (an HMAC "keyed" with the public key PEM: the algorithm confusion attack).
none="$(printf '{"alg":"none"}' | b64url).$(payload $((now + 300)) | b64url)."
refused "alg none" 'algorithm "none" is not accepted' token verify --key "$work/ec.pub" --audience $fqdn --meeting board "$none"
input="$(printf '{"alg":"HS256","typ":"JWT"}' | b64url).$(payload $((now + 300)) | b64url)"
mac=$(printf '%s' "$input" | openssl dgst -sha256 -mac HMAC -macopt "key:$(cat "$work/ec.pub")" -binary | b64url)
refused "HS256" 'algorithm "HS256" is not accepted' token verify --key "$work/ec.pub" --audience $fqdn --meeting board "$input.$mac"
refused "RSA signing key" "cannot sign join tokens" token sign --key <(openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null) \
  --audience $fqdn --email a@example.org

echo "identity-cli: ok"
