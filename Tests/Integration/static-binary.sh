#!/usr/bin/env bash
# build/conclave is fully static: `file` says so, and it runs --version in an empty root
# that holds nothing but the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/conclave ] || ./scripts/build-static >/dev/null
file build/conclave | grep -q "statically linked" || { echo "not statically linked: $(file build/conclave)"; exit 1; }

# The root holds the binary and a mount point for procfs: the Swift runtime reads
# /proc/self/exe and its arguments through /proc at start-up (the appliance mounts it in rcS).
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cp build/conclave "$root/conclave"
mkdir "$root/proc"
output=$(unshare --mount --pid --fork sh -c "mount -t proc proc '$root/proc' && chroot '$root' /conclave --version")
echo "$output"
for library in "OpenSSL 3." "libsrtp2 2." "libnl: 3." "libcap: 2." "cap_get_proc ok"; do
  grep -qF "$library" <<<"$output" || { echo "--version in an empty root lacks '$library'"; exit 1; }
done
[ "$(find "$root" | wc -l)" -eq 3 ] || { echo "the empty root gained files: $(find "$root")"; exit 1; }
