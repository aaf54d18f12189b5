# Helpers for the QEMU image tests (sourced).

# seed_admin_password DISK PARTITIONS PASSWORD: writes the console admin account
# (conclave/console/admin-password, the scrypt record `conclave console` writes, 0600) into the
# data partition of DISK, so that a test can log in at the console without the first-boot
# wizard. The hash is computed with Python's hashlib (OpenSSL), not with conclave's code.
seed_admin_password() {
  local disk=$1 partitions=$2 password=$3 offset bytes scratch
  read -r _ offset bytes < <(grep "^data " "$partitions")
  scratch=$(mktemp -d)
  dd if="$disk" of="$scratch/data.img" bs=1M skip="$offset" count="$bytes" iflag=skip_bytes,count_bytes status=none
  PASSWORD=$password python3 -c '
import hashlib, os
salt = os.urandom(16)
digest = hashlib.scrypt(os.environ["PASSWORD"].encode(), salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
print("scrypt$32768$8$1$%s$%s" % (salt.hex(), digest.hex()))' > "$scratch/admin-password"
  debugfs -w -f - "$scratch/data.img" >/dev/null 2>"$scratch/debugfs.err" <<DEBUGFS
mkdir conclave/console
sif conclave/console mode 040700
write $scratch/admin-password conclave/console/admin-password
sif conclave/console/admin-password mode 0100600
sif conclave/console/admin-password uid 0
sif conclave/console/admin-password gid 0
DEBUGFS
  debugfs -R "cat conclave/console/admin-password" "$scratch/data.img" 2>/dev/null | grep -q '^scrypt\$' \
    || { cat "$scratch/debugfs.err" >&2; rm -rf "$scratch"; echo "seed_admin_password: debugfs failed" >&2; return 1; }
  dd if="$scratch/data.img" of="$disk" bs=1M seek="$offset" oflag=seek_bytes conv=notrunc status=none
  rm -rf "$scratch"
}
