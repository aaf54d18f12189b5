#!/usr/bin/env bash
# The image is reproducible: a second build of the same tree and binary, into another
# directory, gives the same rootfs.squashfs, initramfs.cpio.gz and disk.img bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./scripts/build-image --board qemu-x86_64 >/dev/null
CONCLAVE_BINARY=${CONCLAVE_BINARY:-build/conclave} timeout 600 \
  ./scripts/build-image --board qemu-x86_64 --out "$work/again" --force >/dev/null
status=0
for artefact in rootfs.squashfs initramfs.cpio.gz disk.img; do
  first=$(sha256sum < "build/qemu-x86_64/$artefact" | cut -d' ' -f1)
  second=$(sha256sum < "$work/again/$artefact" | cut -d' ' -f1)
  if [ "$first" = "$second" ]; then
    echo "ok: $artefact is the same in both builds ($first)"
  else
    echo "FAIL: $artefact differs: $first vs $second"; status=1
  fi
done
exit $status
