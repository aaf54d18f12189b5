#!/usr/bin/env bash
# Boots the qemu-x86_64 image headless (TCG, user-mode networking, forwards on 127.0.0.1) with its
# serial console on a unix socket, and checks through the console (logged in as the console
# admin, seeded into the data partition, then its root shell, menu 10 → 3):
#   boot 0: the slot selector picks slot A and spends a try (A_left=2); QEMU is killed (a power
#           cut) once rcS is done, before the health check;
#   boot 1: slot A again with one try fewer (A_left=1), init runs rcS and
#           `conclave supervise`, `conclave status` shows both workers under their own uids
#           with no capabilities, the health check marks slot A good again (A_left=3), rcS
#           applied the board's tuning profile (sysctl, eth0 qdisc, virtio-net rings);
#           then slot A is marked bad and the guest powers off cleanly;
#   boot 2: the selector falls back to slot B; a file written to /data in boot 1 is there, one
#           written to / (tmpfs overlay) is not; then the state file is damaged (B's counter
#           is shell code);
#   boot 3: the garbage counts as 0 and runs nothing: no slot left → the rescue shell.
# Also: the data partition is clean after the clean power-offs (e2fsck -fn).
# Bounded: every wait has a timeout, the whole driver runs under `timeout`, QEMU is killed
# on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
# IMAGE=DIR boots a prebuilt image directory instead of building build/qemu-x86_64.
if [ -n "${IMAGE:-}" ]; then
  image=$IMAGE
else
  ./scripts/build-image --board qemu-x86_64 >/dev/null
  image=build/qemu-x86_64
fi
work=$(mktemp -d)
cleanup() {
  [ -f "$work/qemu.pid" ] && kill -9 "$(cat "$work/qemu.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cp --sparse=always "$image/disk.img" "$work/disk.img"
# ttyS0 runs `conclave console`: the test logs in as the console admin and opens its root shell.
source "$(dirname "$0")/qemu-lib.bash"
seed_admin_password "$work/disk.img" "$image/partitions" "qemu-boot admin"
# The command API refuses connections without a client CA: one is pasted at the console.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/api-ca.key" -out "$work/api-ca.pem" \
  -subj "/CN=qemu-boot API client CA" -days 2 -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
# shellcheck source=/dev/null
. board/qemu-x86_64/qemu.conf

export QEMU_SYSTEM QEMU_ARGS QEMU_DISK_DEVICE QEMU_NIC_DEVICE WORK=$work IMAGE=$image
timeout 300 python3 - <<'PYTHON'
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
        self.transcript = ""

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
                                   % (timeout, pattern, self.buffer[-2000:]))
            ready, _, _ = select.select([self.sock], [], [], min(left, 1))
            if ready:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("console closed while waiting for %r; last output:\n%s" % (pattern, self.buffer[-2000:]))
                text = data.decode("utf-8", "replace")
                self.transcript += text
                self.buffer += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")

    def send(self, line):
        self.sock.sendall((line + "\n").encode())

    counter = 0
    def run(self, command, timeout=30):
        """Runs command in the guest shell; returns (exit status, output)."""
        Console.counter += 1
        tag = "__END%d__" % Console.counter
        self.send("%s; echo %s$?" % (command, tag))  # the echo shows '$?' literally
        match, before = self.expect(re.escape(tag) + r"(\d+)\n", timeout)
        self.expect(re.escape(PROMPT), timeout)
        output = before[before.find("\n", before.find(tag + "$?")) + 1:]
        return int(match.group(1)), output

def check(condition, what, detail=""):
    if not condition:
        print("FAIL: %s\n%s" % (what, detail))
        sys.exit(1)
    print("ok: " + what)

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

# Host loopback ports forwarded (user-mode networking) to the guest's control and API ports,
# and to a port nothing listens on, to tell "the guest accepted" from "slirp accepted".
FORWARDS = {443: free_port(), 8443: free_port(), 9: free_port()}

def guest_port_open(host_port):
    """slirp accepts on the host at once; a closed guest port then closes the connection."""
    with socket.create_connection(("127.0.0.1", host_port), 5) as connection:
        connection.settimeout(3)
        try:
            return connection.recv(1) != b""
        except socket.timeout:
            return True  # still connected: the guest's listener took it
        except ConnectionResetError:
            return False

def boot(number):
    sock = os.path.join(work, "ttyS0-%d.sock" % number)
    log = os.path.join(work, "serial-%d.log" % number)
    command = [os.environ["QEMU_SYSTEM"], *shlex.split(os.environ["QEMU_ARGS"]),
               "-kernel", image + "/kernel", "-initrd", image + "/initramfs.cpio.gz",
               "-append", open(image + "/cmdline").read().strip(),
               "-drive", "if=none,id=disk0,file=%s/disk.img,format=raw" % work,
               "-device", os.environ["QEMU_DISK_DEVICE"] + ",drive=disk0",
               "-netdev", "user,id=net0" + "".join(",hostfwd=tcp:127.0.0.1:%d-:%d" % (host, guest)
                                                  for guest, host in FORWARDS.items()), "-device", os.environ["QEMU_NIC_DEVICE"] + ",netdev=net0",
               "-chardev", "socket,id=ser0,path=%s,server=on,wait=on,logfile=%s" % (sock, log),
               "-serial", "chardev:ser0", "-monitor", "none", "-no-reboot",
               "-pidfile", os.path.join(work, "qemu.pid")]
    started = time.monotonic()
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(work, "qemu-%d.log" % number), "w"), stderr=subprocess.STDOUT)
    return qemu, Console(sock), started

def shell_ready(console):
    """ttyS0 runs the console: log in, Diagnostics (10) → Shell (3)."""
    console.expect(r"1: log in  2: password recovery\n", 60)
    console.send("1")
    console.expect(r"Password: ", 10)
    console.send("qemu-boot admin")
    console.expect(r"main menu", 20)
    console.send("10")
    console.expect(r"Shell \(root", 10)
    console.send("3")
    console.expect(re.escape(PROMPT), 30)
    console.send("stty cols 4096 rows 50")  # busybox ash wraps at 80 columns otherwise
    console.expect(re.escape(PROMPT), 10)

def wait_for_state(console, wanted, timeout=90):
    """The health check runs in the background: poll the boot state (its console line may
    arrive in the middle of another command's output)."""
    deadline = time.monotonic() + timeout
    while True:
        rc, state = console.run("cat /data/bootstate")
        if wanted in state or time.monotonic() > deadline:
            return state
        time.sleep(1)

def power_off(qemu, console):
    console.send("poweroff")
    try:
        console.expect(r"rcK: conclave stopped\n", 30)
        qemu.wait(30)
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()

qemu = None
try:
    # Boot 0: power cut (QEMU killed) after init started, before the health check passed.
    qemu, console, started = boot(0)
    match, _ = console.expect(r"ab-init: slot=(\S+) order='([^']*)' A_left=(\d+) B_left=(\d+)\n", 90)
    check(match.group(1) == "A" and match.group(3) == "2" and match.group(4) == "3",
          "boot 0: the slot selector picked slot A and spent one try (%s)" % match.group(0).strip())
    console.expect(r"BOOT-DONE uptime=([0-9.]+) slot=(\S+)\n", 60)
    qemu.kill(); qemu.wait()
    print("boot 0: power cut %.1f s after QEMU start, before slot A was marked good" % (time.monotonic() - started))

    # Boot 1: slot A again, one try fewer; the data partition's journal recovers.
    qemu, console, started = boot(1)
    match, _ = console.expect(r"ab-init: slot=(\S+) order='([^']*)' A_left=(\d+) B_left=(\d+)\n", 90)
    check(match.group(1) == "A" and match.group(3) == "1" and match.group(4) == "3",
          "boot 1: after the power cut slot A is chosen again with one try fewer (%s)" % match.group(0).strip())
    match, _ = console.expect(r"BOOT-DONE uptime=([0-9.]+) slot=(\S+)\n", 60)
    check(match.group(2) == "A", "boot 1: rcS ran on slot A (guest uptime %s s)" % match.group(1))
    shell_ready(console)
    print("boot to console shell: %.1f s from QEMU start" % (time.monotonic() - started))
    status = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rc, status = console.run("conclave status")
        if rc == 0 and re.search(r"^relay: pid", status, re.M) and re.search(r"^control: pid", status, re.M):
            break
        time.sleep(1)
    print("daemon up: %.1f s from QEMU start" % (time.monotonic() - started))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # slirp forwards to the address its DHCP server hands out
        rc, address = console.run("ip -4 -o addr show dev eth0")
        if "10.0.2.15/" in address:
            break
        time.sleep(1)
    # The control server refuses connections until a certificate is active: leave the shell and
    # self-sign one at the console (menu 4, item 6), which asks the daemon to reload.
    console.send("exit")
    console.expect(r"main menu", 20)
    console.send("4")
    console.expect(r"Self-signed \(lab use\)", 10)
    console.send("6")
    console.expect(r"FQDN \[[^\]]*\]: ", 10)
    console.send("conclave.test")
    match, out = console.expect(r"the daemon reloaded\n|refused: [^\n]*\n", 60)
    check("reloaded" in match.group(0), "boot 1: a self-signed certificate from the console menu, daemon reloaded", out + match.group(0))
    console.expect(r"main menu", 20)
    console.send("4")
    console.expect(r"API client CA \(paste\)", 10)
    console.send("10")
    console.expect(r"then an\s+empty line:", 10)
    for line in open(os.path.join(work, "api-ca.pem")).read().strip().split("\n") + [""]:
        console.send(line)
    match, out = console.expect(r"API client CA: 1 certificate\(s\)\n|refused: [^\n]*\n", 30)
    check("API client CA" in match.group(0), "boot 1: an API client CA pasted at the console (menu 4, item 10)", out + match.group(0))
    console.expect(r"main menu", 20)
    console.send("10")
    console.expect(r"Shell \(root", 10)
    console.send("3")
    console.expect(re.escape(PROMPT), 30)
    console.send("stty cols 4096 rows 50")
    console.expect(re.escape(PROMPT), 10)
    deadline = time.monotonic() + 30
    while not (guest_port_open(FORWARDS[443]) and guest_port_open(FORWARDS[8443])) and time.monotonic() < deadline:  # reload is asynchronous
        time.sleep(1)
    check(not guest_port_open(FORWARDS[9]), "boot 1: a forwarded port nothing listens on is closed (the probe works)")
    check(guest_port_open(FORWARDS[443]) and guest_port_open(FORWARDS[8443]),
          "boot 1: the daemon's control (443) and API (8443) ports answer from the host through user-mode forwards")
    relay = re.search(r"^relay: pid \d+, uid (\d+), CapEff (\w+), CapPrm (\w+), CapBnd (\w+), NoNewPrivs (\d)", status, re.M)
    control = re.search(r"^control: pid \d+, uid (\d+), CapEff (\w+), CapPrm (\w+), CapBnd (\w+), NoNewPrivs (\d)", status, re.M)
    check(relay and relay.groups() == ("991", "0", "0", "0", "1"),
          "boot 1: init started conclave supervise; relay worker uid 991 (conclave-media), no capabilities", status)
    check(control and control.groups() == ("990", "0", "0", "0", "1"),
          "boot 1: control worker uid 990 (conclave), no capabilities", status)
    state = wait_for_state(console, "BOOT_A_LEFT=3")
    check("BOOT_A_LEFT=3" in state, "boot 1: health check marked slot A good (tries back to 3)", state)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # rcS runs conclave net apply in the background
        rc, rmem = console.run("cat /proc/sys/net/core/rmem_max")
        if rmem.strip() == "8388608":
            break
        time.sleep(1)
    rc, show = console.run("conclave net show")
    check(rmem.strip() == "8388608" and re.search(r"^2: eth0 .* qdisc fq ", show, re.M)
          and re.search(r"rings: rx 256/256 max, tx 256/256 max", show),
          "boot 1: the board's tuning profile is applied (rmem_max 8388608, eth0 qdisc fq, rings at max)",
          rmem + show)
    rc, mounts = console.run("cat /proc/mounts")
    check(re.search(r"^overlay / overlay ", mounts, re.M) and re.search(r"^\S+ /data ext4 rw", mounts, re.M)
          and re.search(r"^\S+ /run/rootfs.ro squashfs ro", mounts, re.M),
          "boot 1: / is a tmpfs overlay over the slot's squashfs, /data the ext4 data partition", mounts)
    rc, out = console.run("echo kept > /data/conclave/test-marker && echo lost > /etc/test-marker")
    check(rc == 0, "boot 1: wrote a file on /data and one on the (overlay) root")
    rc, out = console.run("/usr/libexec/conclave/bootstate set-state A bad && cat /data/bootstate")
    check(rc == 0 and "BOOT_A_LEFT=0" in out, "boot 1: slot A marked bad", out)
    power_off(qemu, console)
    check(qemu.returncode == 0, "boot 1: clean power-off (daemon stopped by rcK)")

    # Boot 2: fallback to slot B.
    qemu, console, started = boot(2)
    match, _ = console.expect(r"ab-init: slot=(\S+) order='([^']*)' A_left=(\d+) B_left=(\d+)\n", 90)
    check(match.group(1) == "B" and match.group(3) == "0" and match.group(4) == "2",
          "boot 2: slot A has no tries left, the selector fell back to slot B (%s)" % match.group(0).strip())
    match, _ = console.expect(r"BOOT-DONE uptime=([0-9.]+) slot=(\S+)\n", 60)
    check(match.group(2) == "B", "boot 2: rcS ran on slot B")
    shell_ready(console)
    rc, out = console.run("cat /data/conclave/test-marker; ls /etc/test-marker")
    check(out.startswith("kept\n") and "No such file" in out,
          "boot 2: the data partition kept its file across the power-off, the root overlay did not", out)
    state = wait_for_state(console, "BOOT_B_LEFT=3")
    check("BOOT_B_LEFT=3" in state, "boot 2: health check marked slot B good", state)
    # A damaged state file: the selector must neither stop (it is PID 1) nor run what is in it.
    rc, out = console.run("printf 'BOOT_ORDER=\"A B\"\\nBOOT_A_LEFT=0\\nBOOT_B_LEFT=$(reboot) (\\n' > /data/bootstate"
                          " && cat /data/bootstate")
    check(rc == 0 and "BOOT_B_LEFT=$(reboot) (" in out, "boot 2: boot state damaged: slot B's counter is garbage", out)
    power_off(qemu, console)
    check(qemu.returncode == 0, "boot 2: clean power-off")
    fsck = subprocess.run(["bash", "-c", 'read -r _ offset bytes < <(grep "^data " "$IMAGE/partitions") && '
                           'dd if="$WORK/disk.img" of="$WORK/data.img" bs=1M skip="$offset" count="$bytes" '
                           'iflag=skip_bytes,count_bytes status=none && e2fsck -fn "$WORK/data.img"'],
                          capture_output=True, text=True)
    check(fsck.returncode == 0, "boot 2: the data partition is clean after two boots and power-offs",
          fsck.stdout + fsck.stderr)

    # Boot 3: nothing bootable → rescue shell.
    qemu, console, started = boot(3)
    match, _ = console.expect(r"ab-init: RESCUE: (.*)\n", 90)
    check("no bootable slot" in match.group(1) and "B=0" in match.group(1),
          "boot 3: a garbage counter counts as 0, no slot left → rescue shell (%s)" % match.group(1))
    console.send("echo rescue-$((6*7))")
    console.expect(r"rescue-42\n", 20)
    check(True, "boot 3: the rescue shell answers on the console")
    qemu.kill(); qemu.wait()
except Exception as error:  # a timeout, the console closing, QEMU not starting …
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
