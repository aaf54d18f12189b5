#!/usr/bin/env bash
# The appliance from first power-on, over its serial console only (issue 11's list):
#   boot 0 (fresh disk): QEMU start → the console's status screen (boot-to-console time,
#          printed as "boot-to-console: N s"); the first-boot wizard over the serial line
#          (static 10.0.2.15/24 for user-mode networking, FQDN conclave.test, self-signed,
#          secured); the console's diagnostics show both workers unprivileged; from the host,
#          the forwarded control port answers TLS for conclave.test with the new certificate;
#          reboot from the console menu (12);
#   boot 1: the status screen shows the FQDN, the certificate and the security mode; the admin
#          password still logs in (all on the data partition); a configuration change (menu 5)
#          is power-cut (QEMU killed) right after it is typed;
#   boot 2: a consistent state: conclave.json is one of the two versions, the daemon accepts it
#          and runs both workers, the admin still logs in.
# IMAGE=DIR boots a prebuilt image directory (default: build the qemu-x86_64 board into
# build/qemu-x86_64; with CONCLAVE_BINARY=… build-image packs that binary instead).
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c 'import pexpect' 2>/dev/null || { echo "qemu-console: python3-pexpect missing (scripts/bootstrap)" >&2; exit 1; }
if [ -z "${IMAGE:-}" ]; then
  ./scripts/build-image --board qemu-x86_64 >/dev/null
  IMAGE=build/qemu-x86_64
fi
work=$(mktemp -d)
cleanup() {
  [ -f "$work/qemu.pid" ] && kill -9 "$(cat "$work/qemu.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cp --sparse=always "$IMAGE/disk.img" "$work/disk.img"
# shellcheck source=/dev/null
. board/qemu-x86_64/qemu.conf

export QEMU_SYSTEM QEMU_ARGS QEMU_DISK_DEVICE QEMU_NIC_DEVICE WORK=$work IMAGE
timeout 420 python3 - <<'PYTHON'
import json, os, re, shlex, socket, subprocess, sys, time
import pexpect, pexpect.fdpexpect

work, image = os.environ["WORK"], os.environ["IMAGE"]
PASSWORD = "serial line admin"
PROMPT = "conclave# "

def check(condition, what, detail=""):
    if not condition:
        print("FAIL: %s\n%s" % (what, detail))
        sys.exit(1)
    print("ok: " + what)

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

CONTROL = free_port()

class Serial:
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
        self.child = pexpect.fdpexpect.fdspawn(self.sock.fileno(), timeout=60, encoding="utf-8", codec_errors="replace")

    def expect(self, pattern, timeout=60):
        self.child.expect(pattern, timeout=timeout)
        return self.child.match

    def answer(self, prompt, text, timeout=60):
        self.expect(re.escape(prompt), timeout)
        self.child.send(text + "\r")

    def shell(self, command, timeout=30):
        """In the console's root shell: (status, output) of one command."""
        Serial.counter += 1
        tag = "__END%d__" % Serial.counter
        self.child.send("%s; echo %s$?\r" % (command, tag))
        self.expect(re.escape(tag) + r"(\d+)\r?\n", timeout)
        rc, before = int(self.child.match.group(1)), self.child.before
        self.expect(re.escape(PROMPT), timeout)
        output = before[before.find("\n", before.find(tag + "$?")) + 1:]
        return rc, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).replace("\r", "")
    counter = 0

def boot(number):
    sock = os.path.join(work, "ttyS0-%d.sock" % number)
    command = [os.environ["QEMU_SYSTEM"], *shlex.split(os.environ["QEMU_ARGS"]),
               "-kernel", image + "/kernel", "-initrd", image + "/initramfs.cpio.gz",
               "-append", open(image + "/cmdline").read().strip(),
               "-drive", "if=none,id=disk0,file=%s/disk.img,format=raw" % work,
               "-device", os.environ["QEMU_DISK_DEVICE"] + ",drive=disk0",
               "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:%d-:443" % CONTROL,
               "-device", os.environ["QEMU_NIC_DEVICE"] + ",netdev=net0",
               "-chardev", "socket,id=ser0,path=%s,server=on,wait=on,logfile=%s/serial-%d.log" % (sock, work, number),
               "-serial", "chardev:ser0", "-monitor", "none", "-pidfile", os.path.join(work, "qemu.pid")]
    started = time.monotonic()
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(work, "qemu-%d.log" % number), "w"), stderr=subprocess.STDOUT)
    return qemu, Serial(sock), started

def login(serial):
    serial.answer("> ", "1")
    serial.answer("Password: ", PASSWORD)
    serial.expect(r"main menu")

def open_shell(serial):
    serial.answer("> ", "10")
    serial.answer("> ", "3")
    serial.expect(re.escape(PROMPT))
    serial.child.send("stty cols 4096 rows 50\r")
    serial.expect(re.escape(PROMPT))

def workers_unprivileged(serial, when):
    deadline = time.monotonic() + 90
    while True:
        rc, status = serial.shell("conclave status")
        relay = re.search(r"^relay: pid \d+, uid (\d+), CapEff (\w+), CapPrm (\w+), CapBnd (\w+), NoNewPrivs (\d)", status, re.M)
        control = re.search(r"^control: pid \d+, uid (\d+), CapEff (\w+), CapPrm (\w+), CapBnd (\w+), NoNewPrivs (\d)", status, re.M)
        if (relay and control) or time.monotonic() > deadline:
            break
        time.sleep(2)
    check(relay and relay.groups() == ("991", "0", "0", "0", "1") and control and control.groups() == ("990", "0", "0", "0", "1"),
          "%s: conclave supervise runs both workers under their own uids with no capabilities" % when, status)

qemu = None
try:
    # ---- boot 0: first power-on ----
    qemu, serial, started = boot(0)
    serial.expect(r"Enter: refresh  1: first-boot setup", 120)
    boot_to_console = time.monotonic() - started
    print("boot-to-console: %.1f s (QEMU start → first status screen)" % boot_to_console)
    serial.answer("> ", "1")
    serial.answer("New admin password: ", PASSWORD)
    serial.answer("Again: ", PASSWORD)
    serial.answer("Role [1]: ", "1")
    serial.answer("Network [1]: ", "2")
    serial.answer("Address/prefix (e.g. 192.0.2.10/24): ", "10.0.2.15/24")
    serial.answer("Gateway (empty: none): ", "10.0.2.2")
    serial.answer("DNS servers, separated by spaces (empty: none): ", "10.0.2.3")
    serial.answer("Host name: ", "relay1")
    serial.answer("FQDN (clients connect to this name): ", "conclave.test")
    serial.answer("Certificate: ", "1")
    serial.answer("Security mode [1]: ", "1")
    serial.answer("Apply? ", "1")
    serial.expect(r"done: log in with the new password", 60)
    check(True, "boot 0: first-boot wizard over the serial line (static address, conclave.test, self-signed, secured)")
    serial.answer("Press Enter to go on. ", "")
    serial.expect(r"FQDN: +conclave\.test")
    serial.expect(r"security mode: +secured")
    login(serial)
    open_shell(serial)
    workers_unprivileged(serial, "boot 0")
    rc, config = serial.shell("cat /data/conclave/conclave.json")
    check(rc == 0 and json.loads(config)["fqdn"] == "conclave.test", "boot 0: conclave.json on the data partition", config)
    rc, address = serial.shell("ip -4 -o addr show dev eth0")
    check("10.0.2.15/24" in address, "boot 0: the wizard's static address is on eth0", address)
    def tls_handshake():
        """openssl s_client's output; "" when the port takes the connection but no TLS answers."""
        try:
            return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % CONTROL, "-servername", "conclave.test"],
                                  input="", capture_output=True, text=True, timeout=10).stdout
        except subprocess.TimeoutExpired:
            return ""
    deadline = time.monotonic() + 30
    while True:
        tls = tls_handshake()
        if "subject=CN = conclave.test" in tls or time.monotonic() > deadline:
            break
        time.sleep(2)
    check("subject=CN = conclave.test" in tls,
          "boot 0: from the host, the forwarded control port answers TLS for conclave.test with the wizard's certificate",
          tls[-1500:] or "no TLS handshake on the control port")
    serial.child.send("exit\r")
    serial.expect(r"main menu")
    serial.answer("> ", "12")
    serial.answer("> ", "1")
    serial.answer("Type yes to reboot: ", "yes")

    # ---- boot 1: the same QEMU after the reboot ----
    rebooted = time.monotonic()
    serial.expect(r"ab-init: slot=(\S+)", 120)
    serial.expect(r"Enter: refresh  1: log in  2: password recovery", 120)
    print("reboot → console: %.1f s" % (time.monotonic() - rebooted))
    screen = serial.child.before
    check(re.search(r"FQDN: +conclave\.test", screen) and re.search(r"certificate: +CN=conclave\.test, 36\d days left", screen)
          and re.search(r"security mode: +secured", screen),
          "boot 1: after the reboot the status screen shows the FQDN, certificate and security mode", screen)
    login(serial)
    check(True, "boot 1: the admin password still logs in (kept on the data partition)")
    serial.answer("> ", "5")
    serial.answer("> ", "2")
    time.sleep(0.05)
    qemu.kill(); qemu.wait()
    print("boot 1: power cut right after the security mode change was typed")

    # ---- boot 2: consistent after the power cut ----
    qemu, serial, started = boot(2)
    serial.expect(r"Enter: refresh  1: log in  2: password recovery", 120)
    screen = serial.child.before
    mode = re.search(r"security mode: +(secured|mixed)", screen)
    check(mode and "configuration refused" not in screen,
          "boot 2: after the power cut the configuration reads (security mode %s)" % (mode.group(1) if mode else "?"), screen)
    login(serial)
    open_shell(serial)
    rc, config = serial.shell("cat /data/conclave/conclave.json")
    parsed = json.loads(config)
    check(parsed["securityMode"] in ("secured", "mixed") and parsed["fqdn"] == "conclave.test"
          and parsed["network"]["hostname"] == "relay1",
          "boot 2: conclave.json is whole (the old or the new version)", config)
    workers_unprivileged(serial, "boot 2")
    serial.child.send("poweroff\r")
    qemu.wait(60)
    check(qemu.returncode == 0, "boot 2: clean power-off")
except (pexpect.TIMEOUT, pexpect.EOF, TimeoutError) as error:
    print("FAIL: %s" % type(error).__name__)
    for name in sorted(os.listdir(work)):
        if name.startswith("serial-") or (name.startswith("qemu-") and name.endswith(".log")):
            text = open(os.path.join(work, name), errors="replace").read()
            print("--- %s (last 3000 characters)\n%s" % (name, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)[-3000:]))
    sys.exit(1)
finally:
    if qemu is not None and qemu.poll() is None:
        qemu.kill()
        qemu.wait()
PYTHON
echo "qemu-console: all checks passed"
