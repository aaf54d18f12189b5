#!/usr/bin/env bash
# Fuzzes the update bundle parsers that run before nothing else protects them — the squashfs
# payload reader and the manifest parser (Fuzz/ConclaveUpdate/*.swift) — with libFuzzer and
# AddressSanitizer for a bounded time (FUZZ_SECONDS per target, default 12), seeded with a
# small mksquashfs image and a manifest. Fails on a crash, leak, hang or broken check and
# prints the input in hex so it can become a unit test.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-12}
targets=(SquashfsPayload ManifestText)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v mksquashfs >/dev/null || { echo "fuzz-update: mksquashfs missing: run scripts/bootstrap" >&2; exit 1; }

# The parsers only (no OpenSSL): squashfs, zlib wrapper, manifest, INI, SemVer, errors.
flags=(-sanitize=fuzzer,address -parse-as-library -O -use-ld=lld)
sources=(Squashfs ByteSource Zlib UpdateError KeyFile Manifest SemanticVersion)
echo "fuzz-update: building the bundle parsers and ${#targets[@]} fuzz targets"
files=()
for name in "${sources[@]}"; do files+=("Sources/ConclaveUpdate/$name.swift"); done
swiftc "${flags[@]}" -emit-library -static -module-name ConclaveUpdate -I Sources/CZlib \
  -emit-module -emit-module-path "$work/ConclaveUpdate.swiftmodule" -o "$work/libConclaveUpdate.a" "${files[@]}"
for target in "${targets[@]}"; do
  mkdir -p "$work/$target/corpus"
  swiftc "${flags[@]}" -I "$work" -I Sources/CZlib "Fuzz/ConclaveUpdate/$target.swift" "$work/libConclaveUpdate.a" -lz \
    -o "$work/$target/fuzz"
done

# Seeds: a small gzip squashfs as rauc bundle makes them (stored and compressed blocks, a
# fragment), and manifests.
mkdir "$work/content"
printf '[update]\ncompatible=conclave-qemu-x86_64\nversion=1.2.0\n\n[image.rootfs]\nfilename=rootfs.img\nsha256=%064d\nsize=5000\n' 0 \
  > "$work/content/manifest.raucm"
head -c 4096 /dev/urandom > "$work/content/rootfs.img"
seq 1 400 >> "$work/content/rootfs.img"
mksquashfs "$work/content" "$work/SquashfsPayload/corpus/bundle" -all-root -noappend -no-progress -no-xattrs -quiet -b 4096
cp "$work/content/manifest.raucm" "$work/ManifestText/corpus/plain"
printf '[update]\ncompatible=c\nversion=2.0.0-rc.1+b\ndescription=d\n[bundle]\nformat=plain\n[image.rootfs]\nfilename=a\nsha256=%064d\nsize=1\n' 7 \
  > "$work/ManifestText/corpus/full"

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
      [ -e "$artifact" ] && echo "  input $(basename "$artifact"): $(od -An -v -tx1 "$artifact" | tr -d ' \n')"
    done
  fi
done
[ "${#failed[@]}" -eq 0 ] || { echo "fuzz-update: failed: ${failed[*]}" >&2; exit 1; }
