#!/usr/bin/env bash
# Fuzzes each ConclaveWire decoder (Fuzz/ConclaveWire/*.swift) with libFuzzer and AddressSanitizer
# for a bounded time, from a small seed corpus of valid inputs. Fails if a target crashes, leaks,
# hangs or breaks its round-trip check, and prints the input in hex so it can become a unit test.
# FUZZ_SECONDS sets the time per target (default 20).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-12}
targets=(MediaFrameHeader RTPHeaderView RTCPCompound RelayMessageDecoder WorkerMessage ControlMessage)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The module has no dependencies, so it is built once, instrumented, and linked into each target.
# lld, because gold warns about every ASan symbol it cannot export.
flags=(-sanitize=fuzzer,address -parse-as-library -O -use-ld=lld)
echo "fuzz-wire: building ConclaveWire and ${#targets[@]} fuzz targets"
swiftc "${flags[@]}" -emit-library -static -module-name ConclaveWire \
  -emit-module -emit-module-path "$work/ConclaveWire.swiftmodule" \
  -o "$work/libConclaveWire.a" Sources/ConclaveWire/*.swift
for target in "${targets[@]}"; do
  mkdir -p "$work/$target/corpus"
  swiftc "${flags[@]}" -I "$work" "Fuzz/ConclaveWire/$target.swift" "$work/libConclaveWire.a" -o "$work/$target/fuzz"
done

# seed TARGET NAME HEX…: writes one corpus file (printf, as xxd is not always installed).
seed() {
  local file="$work/$1/corpus/$2"
  shift 2
  printf '%b' "$(printf '%s' "$@" | sed 's/../\\x&/g')" >"$file"
}
rtp="b2ef1234deadbeef01020304""0a0a0a0a0b0b0b0b""bede000110aa0000""616263""00000004"
seed MediaFrameHeader srtp "c1000001""00000007""1122334455667788""$rtp"
seed MediaFrameHeader keepalive "c1040001""00000007""1122334455667788"
seed WorkerMessage status "0105""7b7d"
seed WorkerMessage stop "0103"
seed ControlMessage join "$(printf '%s' '{"v":1,"type":"join","meeting":"m","nickname":"a"}' | od -An -tx1 | tr -d ' \n')"
seed RTPHeaderView full "$rtp"
seed RTPHeaderView minimal "80080001""00000002""00000003"
seed RTCPCompound sr-sdes-rr-pli \
  "81c8000c""11223344""e8f0a1b280000000""0001e240""00000064""00003e80" \
  "55667788""05fffffe""00010203""00000020""a1b28000""00018000" \
  "81ca0002""00000001""01000000" \
  "80c90001""00000001" \
  "a1cd0003""00000001""00000002""00000004"
# The first byte picks the chunk size the stream is fed in; then addLeg, statsReply, ack, error.
seed RelayMessageDecoder messages "07" \
  "00000053""0101""00000007""1122334455667788""00000003""00" \
  "1c$(printf 'ab%.0s' {1..28})""1c$(printf 'cd%.0s' {1..28})""026f00""026061" \
  "00000068""0107""00000009""0001""00000007""$(printf '%016x' 1 2 3 4 5)""00000006""$(printf '%016x' 7 8)" \
  "02""1234""40""000061a8""$(printf '%016x' 9 10 11)" \
  "00000003""010801" \
  "00000009""0109""0102""0003""626164"

# The Swift backtracer would fight libFuzzer and ASan over a crash; libFuzzer reports it alone.
export SWIFT_BACKTRACE=enable=no
failed=()
for target in "${targets[@]}"; do
  dir="$work/$target"
  if "$dir/fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$dir/" \
    "$dir/corpus" >"$dir/log" 2>&1; then
    echo "  ok   $target: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$dir/log")"
  else
    failed+=("$target")
    echo "  FAIL $target"
    grep -v "^#" "$dir/log" | tail -30
    for artifact in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
      if [ -e "$artifact" ]; then
        echo "  input $(basename "$artifact"): $(od -An -v -tx1 "$artifact" | tr -d ' \n')"
      fi
    done
  fi
done
[ "${#failed[@]}" -eq 0 ] || { echo "fuzz-wire: failed: ${failed[*]}" >&2; exit 1; }
