# Shared helpers for the tls-*.sh and cert-*.sh integration tests (sourced, not run).
# Uses the static binary build/conclave (scripts/test builds it first) unless CONCLAVE_BIN points
# at another, makes a work directory, and kills every background process on exit.

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [ -z "${CONCLAVE_BIN:-}" ]; then
  [ -x build/conclave ] || ./scripts/build-static >/dev/null
  CONCLAVE_BIN="$(pwd)/build/conclave"
fi
conclave() { "$CONCLAVE_BIN" "$@"; }

work=$(mktemp -d)
background_pids=()
cleanup() {
  # `conclave` is a function, so `conclave … &` is a subshell whose child is the server: end both.
  for pid in "${background_pids[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  for pid in "${background_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# A free-looking high port (loopback only).
pick_port() { echo $((30000 + RANDOM % 20000)); }

# wait_for_line FILE PATTERN: up to 20 s for PATTERN to appear in FILE.
wait_for_line() {
  for _ in $(seq 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "--- $1:" >&2; cat "$1" >&2 || true
  fail "timed out waiting for '$2' in $1"
}

# openssl_ca DIR NAME: a P-256 CA (DIR/NAME.pem, DIR/NAME.key) made by the openssl CLI.
openssl_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/$2.key" -out "$1/$2.pem" \
    -subj "/CN=$2" -days 30 -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
}

# openssl_leaf DIR CA NAME USAGE SAN: key + certificate (DIR/NAME.key, DIR/NAME.pem) signed by CA.
openssl_leaf() {
  local dir=$1 ca=$2 name=$3 usage=$4 san=$5
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/$name.key" -out "$dir/$name.csr" \
    -subj "/CN=$name" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=%s\n%s\n' "$usage" "${san:+subjectAltName=$san}" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.pem" -CAkey "$dir/$ca.key" -CAcreateserial -days 30 \
    -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
  chmod 600 "$dir/$name.key"
}
