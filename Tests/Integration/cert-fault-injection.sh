#!/usr/bin/env bash
# Power-cut safety of the certificate store: the process is killed (SIGKILL, via
# CONCLAVE_FAULT_POINT) at each step of an activation and of a rollback; afterwards the
# active certificate is whole (its key matches it), it is the old one before the switch and
# the new one after, and the next activation works and cleans up.
set -euo pipefail
source "$(dirname "$0")/tls-lib.bash"
state=$work/state
current=$state/pki/current

shown() { conclave cert show --state "$state" --json | sed -n 's/.*"sha256Fingerprint" : "\(.*\)".*/\1/p'; }
consistent() {
  [ "$(openssl x509 -in "$current/cert.pem" -noout -pubkey)" = "$(openssl pkey -in "$current/key.pem" -pubout)" ] \
    || fail "$1: key and certificate in current/ do not match"
  [ "$(stat -c %a "$current/key.pem")" = 600 ] || fail "$1: key.pem is not 0600"
}

conclave cert self-signed --state "$state" --fqdn conclave.test >/dev/null
for point in temporary-written set-files-written set-ready previous-switched current-switched; do
  before=$(shown)
  set +e
  CONCLAVE_FAULT_POINT=$point "$CONCLAVE_BIN" cert self-signed --state "$state" --fqdn conclave.test >/dev/null 2>&1
  code=$?
  set -e
  [ "$code" -eq 137 ] || fail "$point: expected SIGKILL (137), got $code"
  after=$(shown)
  consistent "$point"
  if [ "$point" = current-switched ]; then
    [ "$after" != "$before" ] || fail "$point: the new certificate should be active"
  else
    [ "$after" = "$before" ] || fail "$point: the old certificate should still be active"
  fi
  conclave cert self-signed --state "$state" --fqdn conclave.test >/dev/null || fail "$point: next activation failed"
  consistent "$point, then activation"
  sets=$(find "$state/pki/sets" -mindepth 1 -maxdepth 1 | wc -l)
  [ "$sets" -le 2 ] || fail "$point: $sets sets left after cleanup: $(ls -a "$state/pki/sets")"
  find "$state/pki" -name '*.new' -o -name '*.partial' | grep -q . && fail "$point: temporary files left behind"
done

# A refused import after a crash changes nothing either.
before=$(shown)
echo junk >"$work/junk.pem"
conclave cert import --state "$state" "$work/junk.pem" 2>/dev/null && fail "junk accepted"
[ "$(shown)" = "$before" ] || fail "refused import changed the active certificate"

# Rollback killed between its two link switches: already rolled back, still whole.
previous=$(conclave cert show --state "$state" --previous --json | sed -n 's/.*"sha256Fingerprint" : "\(.*\)".*/\1/p')
set +e
CONCLAVE_FAULT_POINT=rollback-current-switched "$CONCLAVE_BIN" cert rollback --state "$state" >/dev/null 2>&1
code=$?
set -e
[ "$code" -eq 137 ] || fail "rollback: expected SIGKILL, got $code"
[ "$(shown)" = "$previous" ] || fail "rollback: the previous certificate is not active after the crash"
consistent "rollback"
echo "cert-fault-injection: ok"
