#!/usr/bin/env bash
# Fuzzes the SIP message and SDP parsers (Fuzz/ConclaveSIP/*.swift) with libFuzzer and
# AddressSanitizer for a bounded time, from a small seed corpus of valid messages. Each target
# also checks that what parsed survives a serialize-and-parse round trip. Fails if a target
# crashes, leaks, hangs or breaks a check, and prints the input in hex so it can become a unit test.
# FUZZ_SECONDS sets the time per target (default 12).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-12}
targets=(SIPMessageParser SessionDescriptionParser)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The parsers need no OpenSSL: everything but the digest hashing and its one user (DigestHashing,
# GuestAccess) is built instrumented into one library linked into each target. lld, because gold
# warns about ASan symbols.
flags=(-sanitize=fuzzer,address -parse-as-library -O -use-ld=lld)
sources=()
for file in Sources/ConclaveSIP/*.swift; do
  case "$(basename "$file")" in
    DigestHashing.swift | GuestAccess.swift) ;;
    *) sources+=("$file") ;;
  esac
done
echo "fuzz-sip: building ConclaveSIP (${#sources[@]} files) and ${#targets[@]} fuzz targets"
swiftc "${flags[@]}" -emit-library -static -module-name ConclaveSIP \
  -emit-module -emit-module-path "$work/ConclaveSIP.swiftmodule" \
  -o "$work/libConclaveSIP.a" "${sources[@]}"
for target in "${targets[@]}"; do
  mkdir -p "$work/$target/corpus"
  swiftc "${flags[@]}" -I "$work" "Fuzz/ConclaveSIP/$target.swift" "$work/libConclaveSIP.a" -o "$work/$target/fuzz"
done

# seed TARGET NAME LINE…: one corpus file, the lines joined with CRLF.
seed() {
  local file="$work/$1/corpus/$2"
  shift 2
  printf '%s\r\n' "$@" >"$file"
}
key=PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR
sdp=("v=0" "o=room 2890844526 2890844526 IN IP4 192.0.2.10" "s=-" "c=IN IP4 192.0.2.10" "t=0 0"
  "m=audio 49170 RTP/SAVP 111 0 101" "a=rtpmap:111 opus/48000/2" "a=rtpmap:101 telephone-event/8000"
  "a=fmtp:101 0-15" "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:$key|2^31" "a=rtcp-mux" "a=sendonly"
  "m=video 49172 RTP/AVP 96 97" "a=rtpmap:96 VP8/90000" "a=rtpmap:97 H264/90000"
  "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1")
seed SessionDescriptionParser offer "${sdp[@]}"
length=$(printf '%s\r\n' "${sdp[@]}" | wc -c)
seed SIPMessageParser invite "INVITE sip:standup@conclave.example SIP/2.0" \
  "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport" "Max-Forwards: 70" \
  "To: <sip:standup@conclave.example>" "f: \"Room 4\" <sip:room4@example.org>;tag=1928301774" \
  "i: a84b4c76e66710@192.0.2.10" "CSeq: 314159 INVITE" "Contact: <sip:room4@192.0.2.10:5060>" \
  "Record-Route: <sip:proxy.example.org;lr>, <sip:edge.example.org;lr>" \
  "Authorization: Digest username=\"room4\", realm=\"conclave\", nonce=\"bm9uY2U=\", uri=\"sip:standup@conclave.example\"," \
  "  response=\"0123\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c\"" \
  "Content-Type: application/sdp" "Content-Length: $length" "" "${sdp[@]}"
seed SIPMessageParser response "SIP/2.0 200 OK" "Via: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKx" \
  "To: <sips:m@h>;tag=a" "From: <sips:u@h>;tag=b" "Call-ID: c" "CSeq: 2 BYE" "l: 0" ""

# The Swift backtracer would fight libFuzzer and ASan over a crash; libFuzzer reports it alone.
export SWIFT_BACKTRACE=enable=no
failed=()
for target in "${targets[@]}"; do
  dir="$work/$target"
  if "$dir/fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -artifact_prefix="$dir/" \
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
[ "${#failed[@]}" -eq 0 ] || { echo "fuzz-sip: failed: ${failed[*]}" >&2; exit 1; }
