#!/usr/bin/env bash
# Update bundles interoperate with Debian's real rauc (1.8), both ways:
#   our `conclave update bundle` output passes `rauc info --keyring=…`;
#   a bundle made by `rauc bundle` passes `conclave update info` and installs into a
#   file-backed inactive slot (the boot state switches to it, the active slot is untouched);
#   a tampered bundle, and a bundle checked against another keyring, are refused by both tools;
#   refused installs (tampered, downgrade, wrong compatible) change no slot and no boot state;
#   --force-downgrade needs a terminal and the bundle version typed (script(1) provides the pty).
# CONCLAVE=/path/to/conclave (default build/conclave, built by scripts/build-static if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ -z "${CONCLAVE:-}" ]; then
  [ -x build/conclave ] || ./scripts/build-static >/dev/null
  CONCLAVE=$(pwd)/build/conclave
fi
command -v rauc >/dev/null || fail "rauc not installed: run scripts/bootstrap"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
conclave() { timeout 120 "$CONCLAVE" "$@"; }
rauc_() { timeout 120 rauc "$@"; }

# Keys: the development PKI twice (ours, and a stranger's).
./scripts/dev-keys --out "$work/keys" >/dev/null
./scripts/dev-keys --out "$work/other" >/dev/null
keys=$work/keys

# A "rootfs image": stored (random) and compressible parts, a tail for a fragment.
python3 - "$work/rootfs.img" <<'PYTHON'
import os, sys
data = os.urandom(200_000) + b"".join(b"conclave rootfs line %06d\n" % i for i in range(9000))
open(sys.argv[1], "wb").write(data)
PYTHON
image_sha=$(sha256sum < "$work/rootfs.img" | cut -d' ' -f1)
image_size=$(stat -c %s "$work/rootfs.img")

# 1. Ours → rauc info.
conclave update bundle --manifest-version 2.0.0 --compatible conclave-interop --image "$work/rootfs.img" \
  --image-name rootfs.img --cert "$keys/signer.pem" --key "$keys/signer.key" --keyring "$keys/keyring.pem" \
  --description "made by conclave" -o "$work/ours.raucb" >/dev/null || fail "conclave update bundle"
rauc_ info --keyring="$keys/keyring.pem" --output-format=shell "$work/ours.raucb" > "$work/ours.info" 2>"$work/ours.log" \
  || { cat "$work/ours.log"; fail "rauc info refused our bundle"; }
grep -q "^RAUC_MF_COMPATIBLE='conclave-interop'$" "$work/ours.info" || { cat "$work/ours.info"; fail "rauc: compatible"; }
grep -q "^RAUC_MF_VERSION='2.0.0'$" "$work/ours.info" || fail "rauc: version"
grep -q "^RAUC_IMAGE_DIGEST_0='$image_sha'$" "$work/ours.info" || { cat "$work/ours.info"; fail "rauc: image digest"; }
grep -q "^RAUC_IMAGE_SIZE_0='\?$image_size'\?$" "$work/ours.info" || fail "rauc: image size"
grep -q "Verified detached signature" "$work/ours.log" || { cat "$work/ours.log"; fail "rauc did not verify the signature"; }

# 2. rauc bundle → conclave update info. rauc 1.8 rewrites the manifest in place: a fresh copy.
mkdir "$work/content"
cp "$work/rootfs.img" "$work/content/rootfs.img"
printf '[update]\ncompatible=conclave-interop\nversion=2.1.0\n\n[image.rootfs]\nfilename=rootfs.img\n' > "$work/content/manifest.raucm"
rauc_ bundle --cert="$keys/signer.pem" --key="$keys/signer.key" "$work/content" "$work/rauc.raucb" >/dev/null 2>&1 \
  || fail "rauc bundle"
conclave update info --keyring "$keys/keyring.pem" "$work/rauc.raucb" > "$work/rauc.info" || fail "conclave refused rauc's bundle"
grep -q "^Version: *2.1.0$" "$work/rauc.info" || { cat "$work/rauc.info"; fail "conclave: version"; }
grep -q "$image_sha" "$work/rauc.info" || fail "conclave: image digest"
grep -q "Verified detached signature by '.*bundle signer" "$work/rauc.info" || fail "conclave: signer"

# 3. Tampered bundles and the wrong keyring: both tools refuse.
cp "$work/rauc.raucb" "$work/tampered.raucb"
printf '\x55' | dd of="$work/tampered.raucb" bs=1 seek=100000 conv=notrunc status=none
if rauc_ info --keyring="$keys/keyring.pem" "$work/tampered.raucb" >/dev/null 2>&1; then fail "rauc accepted a tampered bundle"; fi
if conclave update info --keyring "$keys/keyring.pem" "$work/tampered.raucb" > /dev/null 2>"$work/err"; then fail "conclave accepted a tampered bundle"; fi
grep -q "bad signature" "$work/err" || { cat "$work/err"; fail "tampered: no 'bad signature' reason"; }
for bundle in ours rauc; do
  if rauc_ info --keyring="$work/other/keyring.pem" "$work/$bundle.raucb" >/dev/null 2>&1; then fail "rauc accepted $bundle with another keyring"; fi
  if conclave update info --keyring "$work/other/keyring.pem" "$work/$bundle.raucb" >/dev/null 2>"$work/err"; then
    fail "conclave accepted $bundle with another keyring"
  fi
  grep -q "signer not trusted" "$work/err" || { cat "$work/err"; fail "$bundle: no 'signer not trusted' reason"; }
done
head -c 5000 /dev/urandom > "$work/garbage.raucb"
if conclave update info --keyring "$keys/keyring.pem" "$work/garbage.raucb" >/dev/null 2>&1; then fail "conclave accepted garbage"; fi

# 4. Install rauc's bundle into a file-backed slot B while "slot A" runs version 1.0.0.
dev=$work/device
mkdir -p "$dev/data"
truncate -s 4M "$dev/slotA" "$dev/slotB"
printf 'slot A: the running system\n' | dd of="$dev/slotA" conv=notrunc status=none
cat > "$dev/system.conf" <<CONF
[system]
compatible=conclave-interop
bootloader=custom
data-directory=$dev/data/update

[keyring]
path=$keys/keyring.pem

[slot.rootfs.0]
device=$dev/slotA
type=raw
bootname=A

[slot.rootfs.1]
device=$dev/slotB
type=raw
bootname=B
CONF
printf 'BOARD=interop\nVERSION=1.0.0\n' > "$dev/board"
printf 'BOOT_ORDER="A B"\nBOOT_A_LEFT=2\nBOOT_B_LEFT=3\n' > "$dev/data/bootstate"
echo A > "$dev/boot-slot"
device() { conclave update "$@" --system-conf "$dev/system.conf" --board-file "$dev/board" \
  --bootstate "$dev/data/bootstate" --boot-slot-file "$dev/boot-slot"; }
slots_before=$(sha256sum "$dev/slotA" "$dev/slotB")
slot_a_before=$(sha256sum < "$dev/slotA")
state_before=$(cat "$dev/data/bootstate")

refuse() {  # refuse BUNDLE REASON: install refused for REASON; slots and boot state unchanged
  if device install "$1" >/dev/null 2>"$work/err"; then fail "installed $1"; fi
  grep -q "$2" "$work/err" || { cat "$work/err"; fail "$1: refused without '$2'"; }
  [ "$(sha256sum "$dev/slotA" "$dev/slotB")" = "$slots_before" ] || fail "$1: a slot changed"
  [ "$(cat "$dev/data/bootstate")" = "$state_before" ] || fail "$1: the boot state changed"
}
refuse "$work/tampered.raucb" "bad signature"
refuse "$work/garbage.raucb" "size field out of range\|not a RAUC bundle\|truncated"
conclave update bundle --manifest-version 0.9.0 --compatible conclave-interop --image "$work/rootfs.img" \
  --cert "$keys/signer.pem" --key "$keys/signer.key" -o "$work/old.raucb" >/dev/null
refuse "$work/old.raucb" "downgrade refused"
conclave update bundle --manifest-version 5.0.0 --compatible conclave-room-system --image "$work/rootfs.img" \
  --cert "$keys/signer.pem" --key "$keys/signer.key" -o "$work/room.raucb" >/dev/null
refuse "$work/room.raucb" "wrong compatible"
conclave update bundle --manifest-version 5.0.0 --compatible conclave-interop --image "$work/rootfs.img" \
  --cert "$work/other/signer.pem" --key "$work/other/signer.key" -o "$work/stranger.raucb" >/dev/null
refuse "$work/stranger.raucb" "signer not trusted"
# --force-downgrade is for the console: without a terminal it is refused before anything happens.
if device install "$work/old.raucb" --force-downgrade < /dev/null >/dev/null 2>"$work/err"; then fail "forced a downgrade without a terminal"; fi
grep -q "interactive terminal" "$work/err" || { cat "$work/err"; fail "forced downgrade: no reason"; }
device status > "$work/status"
grep -q "state: failed" "$work/status" || { cat "$work/status"; fail "status after refusals"; }
grep -q "last result: refused: signer not trusted" "$work/status" || { cat "$work/status"; fail "status: last result"; }

device install "$work/rauc.raucb" > "$work/install" || fail "installing rauc's bundle"
grep -q "state: written" "$work/install" || { cat "$work/install"; fail "install did not end written"; }
cmp -n "$image_size" "$work/rootfs.img" "$dev/slotB" || fail "slot B does not hold the image"
[ "$(sha256sum < "$dev/slotA")" = "$slot_a_before" ] || fail "the active slot A was written"
[ "$(stat -c %s "$dev/slotB")" = $((4 * 1048576)) ] || fail "slot B was truncated or grown"
[ "$(cat "$dev/data/bootstate")" = "$(printf 'BOOT_ORDER="B A"\nBOOT_A_LEFT=2\nBOOT_B_LEFT=3')" ] \
  || { cat "$dev/data/bootstate"; fail "boot state not switched to B with 3 tries"; }
device status --json | grep -q '"phase":"written"' || fail "status --json"
# The selector's own parser reads what we wrote.
[ "$(BOOTSTATE_FILE="$dev/data/bootstate" sh rootfs/usr/libexec/conclave/bootstate get-primary)" = B ] \
  || fail "bootstate get-primary does not read B"
# --force-downgrade on a terminal (script(1) gives it a pseudo-terminal): the operator must type
# the bundle's version; a wrong answer changes nothing.
forced() {
  printf '%s\n' "$1" | timeout 120 script -qec "$CONCLAVE update install $work/old.raucb --force-downgrade \
    --system-conf $dev/system.conf --board-file $dev/board --bootstate $dev/data/bootstate --boot-slot-file $dev/boot-slot" /dev/null
}
state_written=$(cat "$dev/data/bootstate")
if forced 1.2.3 > "$work/forced" 2>&1; then cat "$work/forced"; fail "a mistyped confirmation forced the downgrade"; fi
grep -q "downgrade not confirmed" "$work/forced" || { cat "$work/forced"; fail "mistyped confirmation: no reason"; }
[ "$(cat "$dev/data/bootstate")" = "$state_written" ] || fail "a mistyped confirmation changed the boot state"
device status --json | grep -q '"version":"2.1.0"' || fail "a mistyped confirmation changed the update state"
forced 0.9.0 > "$work/forced" 2>&1 || { cat "$work/forced"; fail "typed confirmation: the downgrade was not installed"; }
grep -q "Type the version 0.9.0" "$work/forced" && grep -q "state: written" "$work/forced" \
  || { cat "$work/forced"; fail "forced downgrade output"; }
device status --json | grep -q '"version":"0.9.0"' || fail "forced downgrade not recorded"
echo "update-rauc-interop: ok (ours → rauc info, rauc bundle → conclave info + install, refusals by both)"
