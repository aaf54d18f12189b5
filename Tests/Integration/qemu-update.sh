#!/usr/bin/env bash
# Signed updates on the QEMU board, through the serial console, bundles on a second virtio disk:
#   boot 1: version 1.0.0 on slot A installs 2.0.0 (`conclave update install … --reboot`);
#   boot 2: the selector starts slot B; `conclave boot`'s health check marks it good and the
#           update is reported done, B has its tries back; 3.0.0 — whose conclave exits at
#           start — is installed into slot A;
#   boots 3–5: slot A fails (the test powers it off before any health check could pass) until
#           its three tries are spent;
#   boot 6: the selector falls back to slot B, `conclave boot` and `conclave update status` report
#           "update to 3.0.0 failed, rolled back to 2.0.0"; 1.0.0 is refused as a downgrade;
#           an install of 3.0.0 is killed in the middle of the slot write and QEMU is killed
#           (a power cut) — each after the health check has marked slot B good;
#   boot 7: slot B boots again, the interrupted install is reported, slot A stays bad.
# The push over the command API (PUT /v1/update) is not built yet: installs run at the console.
# CONCLAVE=/path/to/static/conclave (default build/conclave via scripts/build-image).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
  [ -f "$work/qemu.pid" ] && kill -9 "$(cat "$work/qemu.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "${CONCLAVE:-}" ] && export CONCLAVE_BINARY=$CONCLAVE
board=qemu-x86_64

./scripts/dev-keys --out "$work/keys" >/dev/null
sign=(--cert "$work/keys/signer.pem" --key "$work/keys/signer.key" --keyring "$work/keys/keyring.pem")
mkdir "$work/bundles"
for version in 1.0.0 2.0.0; do
  ./scripts/make-bundle --board "$board" --version "$version" "${sign[@]}" --image-dir "$work/v$version" \
    --out "$work/bundles/conclave-$version.raucb" >/dev/null || fail "make-bundle $version"
done
tool=${CONCLAVE_BINARY:-build/conclave}
# 3.0.0: a correctly signed image whose /usr/bin/conclave is busybox (it exits: unknown applet).
CONCLAVE_BINARY=/bin/busybox ./scripts/build-image --board "$board" --version 3.0.0 --keyring "$work/keys/keyring.pem" \
  --out "$work/v3.0.0" >/dev/null || fail "build-image 3.0.0"
"$tool" update bundle --manifest-version 3.0.0 --compatible conclave-$board --image "$work/v3.0.0/rootfs.squashfs" \
  --image-name rootfs.img "${sign[@]}" -o "$work/bundles/conclave-3.0.0.raucb" >/dev/null || fail "bundle 3.0.0"
mke2fs -q -t ext4 -L bundles -d "$work/bundles" "$work/bundles.img" 192M || fail "mke2fs bundles"
image=$work/v1.0.0
cp --sparse=always "$image/disk.img" "$work/disk.img"
# ttyS0 runs `conclave console`: the test logs in as the console admin and opens its root shell.
console_login=0
if grep -q "^ttyS0::respawn:/usr/bin/conclave console" rootfs/etc/inittab; then
  source Tests/Integration/qemu-lib.bash
  seed_admin_password "$work/disk.img" "$image/partitions" "qemu-update admin"
  console_login=1
fi
# shellcheck source=/dev/null
. board/$board/qemu.conf

export QEMU_SYSTEM QEMU_ARGS QEMU_DISK_DEVICE QEMU_NIC_DEVICE WORK=$work IMAGE=$image CONSOLE_LOGIN=$console_login
timeout 900 python3 - <<'PYTHON'
import os, re, select, shlex, socket, subprocess, sys, time

work, image = os.environ["WORK"], os.environ["IMAGE"]
PROMPT = "conclave# "

class Console:
    """The guest's serial line over a unix socket: a minimal expect (stdlib only)."""
    def __init__(self, path):
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.buffer = ""

    def expect(self, pattern, timeout=60):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.buffer)
            if match:
                before = self.buffer[:match.start()]
                self.buffer = self.buffer[match.end():]
                return match, before
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out after %d s waiting for %r; last output:\n%s"
                                   % (timeout, pattern, self.buffer[-3000:]))
            ready, _, _ = select.select([self.sock], [], [], min(left, 1))
            if ready:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("console closed while waiting for %r; last output:\n%s" % (pattern, self.buffer[-3000:]))
                self.buffer += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data.decode("utf-8", "replace")).replace("\r", "")

    def send(self, line):
        self.sock.sendall((line + "\n").encode())

    counter = 0
    def run(self, command, timeout=30):
        """Runs command in the guest shell; returns (exit status, output)."""
        Console.counter += 1
        begin, tag = "__BEGIN%d__" % Console.counter, "__END%d__" % Console.counter
        # Markers printed by the guest, not the echoed command line (which the shell may wrap).
        self.send("echo %s; %s; echo %s$?" % (begin, command, tag))
        self.expect(r"(?m)^" + re.escape(begin) + r"\n", timeout)
        match, output = self.expect(re.escape(tag) + r"(\d+)\n", timeout)
        self.expect(re.escape(PROMPT), timeout)
        return int(match.group(1)), output

def check(condition, what, detail=""):
    if not condition:
        print("FAIL: %s\n%r" % (what, detail))
        logs = sorted((os.path.getmtime(os.path.join(work, name)), name) for name in os.listdir(work) if name.startswith("serial-"))
        if logs:
            print("--- " + logs[-1][1] + " (end)\n" + open(os.path.join(work, logs[-1][1]), errors="replace").read()[-3000:])
        sys.exit(1)
    print("ok: " + what)

def boot(number):
    sock = os.path.join(work, "ttyS0-%d.sock" % number)
    log = os.path.join(work, "serial-%d.log" % number)
    command = [os.environ["QEMU_SYSTEM"], *shlex.split(os.environ["QEMU_ARGS"]),
               "-kernel", image + "/kernel", "-initrd", image + "/initramfs.cpio.gz",
               "-append", open(image + "/cmdline").read().strip(),
               "-drive", "if=none,id=disk0,file=%s/disk.img,format=raw" % work,
               "-device", os.environ["QEMU_DISK_DEVICE"] + ",drive=disk0",
               "-drive", "if=none,id=disk1,file=%s/bundles.img,format=raw,readonly=on" % work,
               "-device", os.environ["QEMU_DISK_DEVICE"] + ",drive=disk1",
               "-netdev", "user,id=net0", "-device", os.environ["QEMU_NIC_DEVICE"] + ",netdev=net0",
               "-chardev", "socket,id=ser0,path=%s,server=on,wait=on,logfile=%s" % (sock, log),
               "-serial", "chardev:ser0", "-monitor", "none", "-no-reboot",
               "-pidfile", os.path.join(work, "qemu.pid")]
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(work, "qemu-%d.log" % number), "w"), stderr=subprocess.STDOUT)
    return qemu, Console(sock)

SELECTOR = r"ab-init: slot=(\S+) order='([^']*)' A_left=(\d+) B_left=(\d+)\n"

def shell_ready(console):
    """A root shell on ttyS0: through the console (log in, Diagnostics → Shell), or directly."""
    if os.environ["CONSOLE_LOGIN"] == "1":
        console.expect(r"1: log in  2: password recovery\n", 120)
        console.send("1")
        console.expect(r"Password: ", 10)
        console.send("qemu-update admin")
        console.expect(r"main menu", 20)
        console.send("10")
        console.expect(r"Shell \(root", 10)
        console.send("3")
    else:
        console.expect(r"BOOT-DONE[^\n]*\n", 120)
    console.send("export PS1='%s'" % PROMPT)
    console.expect(re.escape(PROMPT), 30)
    console.send("stty cols 4096 rows 50")  # busybox ash wraps at 80 columns otherwise
    console.expect(re.escape(PROMPT), 10)

def kill(qemu):
    if qemu.poll() is None:
        qemu.kill()
    qemu.wait()

BUNDLES = "/mnt/bundles"
def wait_for(console, command, wanted, timeout=150):
    """Polls a command until its output holds `wanted` (the health check runs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        rc, out = console.run(command)
        if wanted in out or time.monotonic() > deadline:
            return out
        time.sleep(2)

def mount_bundles(console):
    rc, out = console.run("mkdir -p %s && mount -t ext4 -o ro /dev/vdb %s && ls %s" % (BUNDLES, BUNDLES, BUNDLES))
    check(rc == 0 and "conclave-2.0.0.raucb" in out, "the bundles disk is mounted", out)

qemu = None
try:
    # Boot 1: 1.0.0 on slot A installs 2.0.0 and reboots.
    qemu, console = boot(1)
    match, _ = console.expect(SELECTOR, 90)
    check(match.group(1) == "A", "boot 1: slot A (%s)" % match.group(0).strip())
    shell_ready(console)
    rc, out = console.run("conclave update status")
    check(rc == 0 and "running version: 1.0.0, booted slot: A" in out, "boot 1: status shows 1.0.0 on slot A", out)
    out = wait_for(console, "cat /data/bootstate", "BOOT_A_LEFT=3")
    check("BOOT_A_LEFT=3" in out, "boot 1: the health check marked slot A good", out)
    mount_bundles(console)
    console.send("conclave update install %s/conclave-2.0.0.raucb --reboot" % BUNDLES)
    match, before = console.expect(r"rebooting\n|update not installed: [^\n]*\n", 300)
    check("state: written" in before and "target slot: B" in before and match.group(0) == "rebooting\n",
          "boot 1: 2.0.0 verified and written to slot B, reboot requested", before + match.group(0))
    qemu.wait(60)  # -no-reboot: the guest's reboot ends QEMU
    check(True, "boot 1: the guest rebooted")

    # Boot 2: slot B runs 2.0.0; mark-good reports the update; install 3.0.0 into A.
    qemu, console = boot(2)
    match, _ = console.expect(SELECTOR, 90)
    check(match.group(1) == "B" and match.group(2) == "B A" and match.group(4) == "2",
          "boot 2: the selector starts the new slot B first, spending one of its 3 tries (%s)" % match.group(0).strip())
    shell_ready(console)
    rc, out = console.run("grep VERSION= /etc/conclave/board")
    check("VERSION=2.0.0" in out, "boot 2: the running rootfs is 2.0.0", out)
    out = wait_for(console, "conclave update status", "last result: updated to 2.0.0 (slot B), marked good")
    check("state: idle" in out and "last result: updated to 2.0.0 (slot B), marked good" in out
          and re.search(r"slot B: \S+, good, 3 tries left \(booted, primary\)", out),
          "boot 2: the health check marked slot B good and the update is reported done", out)
    rc, out = console.run("conclave update mark-good && cat /data/bootstate")
    check(rc == 0 and "BOOT_B_LEFT=3" in out and "updated to 2.0.0" in out, "boot 2: mark-good again changes nothing", out)
    mount_bundles(console)
    rc, out = console.run("conclave update install %s/conclave-3.0.0.raucb 2>&1 && cat /data/bootstate" % BUNDLES, 300)
    check(rc == 0 and "state: written" in out and "BOOT_ORDER=\"A B\"" in out and "BOOT_A_LEFT=3" in out,
          "boot 2: 3.0.0 written to slot A, A first with 3 tries", out)
    console.send("reboot")
    qemu.wait(90)

    # Boots 3–5: 3.0.0's conclave exits at start, nothing marks slot A good.
    for number, left in ((3, "2"), (4, "1"), (5, "0")):
        qemu, console = boot(number)
        match, _ = console.expect(SELECTOR, 90)
        check(match.group(1) == "A" and match.group(3) == left,
              "boot %d: slot A tried again, %s tries left (%s)" % (number, left, match.group(0).strip()))
        console.expect(r"switch_root", 60)
        time.sleep(3)
        kill(qemu)

    # Boot 6: fallback to B; the rollback is reported; downgrade refused; power cut mid-write.
    qemu, console = boot(6)
    match, _ = console.expect(SELECTOR, 90)
    check(match.group(1) == "B" and match.group(3) == "0",
          "boot 6: slot A has no tries left, the selector falls back to slot B (%s)" % match.group(0).strip())
    match, _ = console.expect(r"boot: ROLLBACK: ([^\n]*)\n", 120)
    check(match.group(1) == "update to 3.0.0 failed, rolled back to 2.0.0", "boot 6: conclave boot reports the rollback on the console")
    if os.environ["CONSOLE_LOGIN"] == "1":
        console.expect(r"last update: +ROLLBACK: update to 3\.0\.0 failed, rolled back to 2\.0\.0\n", 120)
        check(True, "boot 6: the console's status screen shows the rollback")
    shell_ready(console)
    rc, out = console.run("conclave update status")
    check(rc == 0 and "ROLLBACK: update to 3.0.0 failed, rolled back to 2.0.0" in out and "state: failed" in out,
          "boot 6: status reports the rollback", out)
    rc, out = console.run("conclave update status --json")
    check('"rollback":"update to 3.0.0 failed, rolled back to 2.0.0"' in out, "boot 6: the rollback is in the JSON state", out)
    before = wait_for(console, "cat /data/bootstate", "BOOT_B_LEFT=3")
    check("BOOT_B_LEFT=3" in before, "boot 6: the health check marked slot B good", before)
    mount_bundles(console)
    rc, out = console.run("conclave update install %s/conclave-1.0.0.raucb 2>&1" % BUNDLES, 300)
    check(rc != 0 and "downgrade refused: bundle version 1.0.0 is older than the running 2.0.0" in out,
          "boot 6: 1.0.0 is refused as a downgrade", (rc, out))
    rc, after = console.run("cat /data/bootstate")
    check(after == before, "boot 6: the refused bundle left the boot state alone", before + after)
    rc, out = console.run("CONCLAVE_FAULT_POINT=update-slot-chunk conclave update install %s/conclave-3.0.0.raucb 2>&1" % BUNDLES, 300)
    check(rc == 137, "boot 6: the installer is killed in the middle of writing slot A (exit %d)" % rc, out)
    rc, out = console.run("cat /data/bootstate")
    check("BOOT_A_LEFT=0" in out and "BOOT_ORDER=\"B A\"" in out, "boot 6: slot A was set bad before the write began", out)
    kill(qemu)  # power cut

    # Boot 7: the old slot boots; the interrupted install is reported.
    qemu, console = boot(7)
    match, _ = console.expect(SELECTOR, 90)
    check(match.group(1) == "B", "boot 7: after the power cut mid-write, slot B boots (%s)" % match.group(0).strip())
    shell_ready(console)
    rc, out = console.run("conclave update status")
    check("state: failed" in out and "interrupted while writing slot A" in out and "slot A: /dev/disk/by-partlabel/slotA, bad" in out,
          "boot 7: status reports the interrupted install, slot A bad", out)
    kill(qemu)
except Exception as error:
    print("FAIL: %s: %s" % (type(error).__name__, error))
    for name in sorted(os.listdir(work)):
        if name.startswith("qemu-") and name.endswith(".log") and os.path.getsize(os.path.join(work, name)):
            print("--- " + name + "\n" + open(os.path.join(work, name)).read()[-2000:])
    sys.exit(1)
finally:
    if qemu is not None and qemu.poll() is None:
        qemu.kill()
        qemu.wait()
PYTHON
