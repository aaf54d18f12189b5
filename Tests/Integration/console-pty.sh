#!/usr/bin/env bash
# Drives `conclave console --no-apply --state <tmp>` through a pseudo-terminal (pexpect), 80x24,
# TERM=dumb, as a person at a serial terminal would:
#   1. server, self-signed: the whole first-boot wizard with wrong answers on the way (bad
#      address, prefix 33, gateway outside the subnet, FQDN with a space, password mismatch);
#      each refusal names its reason and leaves the state directory byte-identical; then the
#      files: conclave.json, the certificate's SAN, the admin hash (0600), no temporary files;
#   2. the menus after login: a garbage certificate paste, Ctrl-C in the middle of a certificate
#      paste, a bad static address and an FQDN with a space leave the state byte-identical;
#      the security mode changes through conclave.json; Ctrl-D logs out;
#   3. five wrong passwords lock the console (1 min), a new console process is still locked;
#   4. server, CSR + pasted certificate signed by a test CA (openssl): a certificate for
#      another FQDN, one for another key and garbage are refused, the right one with its chain
#      is activated;
#   5. room system: the server's bundle is trusted only with its SHA-256 fingerprint;
#   6. an idle session logs out by itself;
# and no line of any screen is wider than 80 columns.
# CONCLAVE=/path/to/conclave picks the binary (default build/conclave).
set -euo pipefail
cd "$(dirname "$0")/../.."
conclave=$(realpath "${CONCLAVE:-build/conclave}")
[ -x "$conclave" ] || { echo "console-pty: no $conclave (run scripts/build-static or set CONCLAVE)" >&2; exit 1; }
python3 -c 'import pexpect' 2>/dev/null || { echo "console-pty: python3-pexpect missing (scripts/bootstrap)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A test CA, made with the openssl CLI (not with conclave's own code).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" \
  -subj "/CN=Console Test CA" -days 30 -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

export CONCLAVE_BIN=$conclave WORK=$work
timeout 300 python3 - <<'PYTHON'
import hashlib, json, os, re, stat, subprocess, sys, time
import pexpect

conclave, work = os.environ["CONCLAVE_BIN"], os.environ["WORK"]
PASSWORD = "correct horse battery"
transcripts = []

def fail(what, detail=""):
    print("FAIL: %s\n%s" % (what, detail))
    sys.exit(1)

def ok(what):
    print("ok: " + what)

def snapshot(directory):
    """Every file, link and directory under directory: mode and bytes (or link target)."""
    result = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                result[path] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                result[path] = ("dir", oct(info.st_mode))
            else:
                result[path] = (oct(info.st_mode), hashlib.sha256(open(path, "rb").read()).hexdigest())
    return result

class Console:
    def __init__(self, state, *extra):
        env = dict(os.environ, TERM="dumb")
        self.child = pexpect.spawn(conclave, ["console", "--no-apply", "--state", state,
                                              "--run-directory", os.path.join(state, "run-none"), *extra],
                                   env=env, dimensions=(24, 80), encoding="utf-8", codec_errors="replace", timeout=20)
        self.log = []
        self.child.logfile_read = self  # collects everything the console writes

    def write(self, text):
        self.log.append(text)

    def flush(self):
        pass

    def expect(self, pattern, timeout=20):
        try:
            self.child.expect(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            fail("waiting for %r" % pattern, "".join(self.log)[-3000:])
        return self.child.match

    def answer(self, prompt, text):
        self.expect(re.escape(prompt))
        self.child.send(text + "\r")

    def paste(self, text):
        for line in text.strip("\n").split("\n"):
            self.child.send(line + "\r")

    def refused(self, reason):
        """A refusal naming reason (long lines wrap at 80 columns: any run of spaces may break)."""
        self.expect(r"refused: .*?" + re.escape(reason).replace("\\ ", r"\s+"))

    def close(self):
        transcripts.append("".join(self.log))
        self.child.close(force=True)

def wizard_to_hostname(console, role="1", network=("1",)):
    console.answer("> ", "1")
    console.answer("New admin password: ", PASSWORD)
    console.answer("Again: ", PASSWORD)
    console.answer("Role [1]: ", role)
    console.answer("Network [1]: ", network[0])

def openssl(*arguments, data=None):
    return subprocess.run(["openssl", *arguments], input=data, capture_output=True, text=True, check=True).stdout

# ---- 1. server, self-signed, with wrong answers ----
state = os.path.join(work, "server")
os.makedirs(state)
console = Console(state)
console.expect(r"daemon: +not running")
console.expect(re.escape("Enter: refresh  1: first-boot setup"))
console.answer("> ", "1")
console.answer("New admin password: ", "short")
console.refused("at least 8 characters")
console.answer("New admin password: ", PASSWORD)
console.answer("Again: ", PASSWORD + "x")
console.refused("the two passwords differ")
console.answer("New admin password: ", PASSWORD)
if PASSWORD in "".join(console.log):
    fail("the password was echoed")
ok("wizard: password rules, mismatch, never echoed")
console.answer("Again: ", PASSWORD)
console.answer("Role [1]: ", "1")
console.answer("Network [1]: ", "2")
before = snapshot(state)
for bad, reason in [("192.0.2.10", "is not ADDRESS/PREFIX"), ("192.0.2.10/33", 'prefix "33" is out of range'),
                    ("999.0.2.10/24", "is not ADDRESS/PREFIX")]:
    console.answer("Address/prefix (e.g. 192.0.2.10/24): ", bad)
    console.refused(reason)
console.answer("Address/prefix (e.g. 192.0.2.10/24): ", "192.0.2.10/24")
console.answer("Gateway (empty: none): ", "198.51.100.1")
console.refused("is not in 192.0.2.10/24's subnet")
console.answer("Gateway (empty: none): ", "192.0.2.1")
console.answer("DNS servers, separated by spaces (empty: none): ", "192.0.2.53")
console.answer("Host name: ", "relay 1")
console.refused("is not a host name")
console.answer("Host name: ", "relay1")
console.answer("FQDN (clients connect to this name): ", "conclave .test")
console.refused("an FQDN has no spaces")
if snapshot(state) != before:
    fail("a refused wizard answer changed the state directory")
ok("wizard: bad address, prefix 33, gateway, host name, FQDN with a space refused with the reason; state unchanged")
console.answer("FQDN (clients connect to this name): ", "conclave.test")
console.answer("Certificate: ", "1")
console.answer("Security mode [1]: ", "1")
console.expect(r"FQDN: +conclave\.test")
console.answer("Apply? ", "1")
console.expect(r"done: log in with the new password")
console.answer("Press Enter to go on. ", "")
console.expect(r"FQDN: +conclave\.test")
console.expect(r"security mode: +secured")
console.expect(r"certificate: +CN=conclave\.test, 36[45] days left")

config = json.load(open(os.path.join(state, "conclave.json")))
expected = {"role": "server", "fqdn": "conclave.test", "securityMode": "secured"}
if any(config.get(key) != value for key, value in expected.items()):
    fail("conclave.json after the wizard", json.dumps(config, indent=1))
if config["network"] != {"hostname": "relay1", "dns": ["192.0.2.53"],
                         "interfaces": {"eth0": {"addresses": ["192.0.2.10/24"], "gateway": "192.0.2.1"}}}:
    fail("network section after the wizard", json.dumps(config["network"], indent=1))
san = openssl("x509", "-in", os.path.join(state, "pki/current/cert.pem"), "-noout", "-ext", "subjectAltName")
if "DNS:conclave.test" not in san:
    fail("the self-signed certificate's SAN", san)
secret = os.path.join(state, "console/admin-password")
if stat.S_IMODE(os.stat(secret).st_mode) != 0o600 or not open(secret).read().startswith("scrypt$"):
    fail("admin-password is not a 0600 scrypt record")
if stat.S_IMODE(os.stat(os.path.join(state, "pki/current/key.pem")).st_mode) != 0o600:
    fail("key.pem is not 0600")
if PASSWORD in open(secret).read():
    fail("the password is stored in clear")
leftovers = [path for path in snapshot(state) if os.path.basename(path).endswith(".new") or ".partial" in path]
if leftovers:
    fail("temporary files left", "\n".join(leftovers))
ok("wizard (server, self-signed): conclave.json, certificate for conclave.test, scrypt hash 0600, nothing temporary")

# ---- 2. menus after login: refusals and Ctrl-C change nothing ----
console.answer("> ", "1")
console.answer("Password: ", PASSWORD)
console.expect(r"main menu")
before = snapshot(state)
console.answer("> ", "4")
console.answer("> ", "3")
console.expect(re.escape("ending at -----END CERTIFICATE-----:"))
console.paste("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----")
console.expect(re.escape("then an empty line"))
console.child.send("\r")
console.refused("the certificate file is not a certificate")
console.answer("> ", "4")
console.answer("> ", "3")
console.expect(re.escape("ending at -----END CERTIFICATE-----:"))
half = open(os.path.join(state, "pki/current/cert.pem")).read().split("\n")[:4]
console.paste("\n".join(half))
time.sleep(0.3)
console.child.send("\x03")
console.expect(r"cancelled: nothing was imported")
console.answer("> ", "2")
console.answer("> ", "2")
console.answer("eth0: 1 DHCP, 2 static: ", "2")
console.answer("Address/prefix: ", "192.0.2.20/33")
console.refused('prefix "33" is out of range')
console.answer("> ", "3")
console.answer("New FQDN (empty: keep): ", "conclave .test")
console.refused("an FQDN has no spaces")
console.answer("> ", "4")
console.answer("> ", "1")
console.answer("FQDN [conclave.test]: ", "bad fqdn")
console.refused("an FQDN has no spaces")
if snapshot(state) != before:
    fail("a refused menu change or Ctrl-C changed the state directory")
ok("menus: garbage paste, Ctrl-C mid-paste, prefix 33, FQDN with a space: refused, state byte-identical")
console.answer("> ", "5")
console.answer("> ", "2")
console.expect(r"security mode: secured → mixed")
console.expect(r"--no-apply: the daemon was not asked to reload")
if json.load(open(os.path.join(state, "conclave.json")))["securityMode"] != "mixed":
    fail("security mode not written")
if json.load(open(os.path.join(state, "conclave.json")))["network"]["hostname"] != "relay1":
    fail("the security mode change lost other keys")
ok("menu 5: security mode written to conclave.json, other keys kept")
import sqlite3
database = sqlite3.connect("file:%s?mode=ro" % os.path.join(state, "db/identity.sqlite"), uri=True)
columns = [row[1] for row in database.execute("PRAGMA table_info(audit)")]
rows = [dict(zip(columns, row)) for row in database.execute("SELECT * FROM audit")]
database.close()
actions = [row["action"] for row in rows if row["actor"] == "console"]
if not {"first-boot", "cert-self-signed", "admin-password", "login", "security-mode"} <= set(actions):
    fail("audit log: console actions missing", "\n".join(map(str, rows)))
if not any(row["action"] == "security-mode" and "secured → mixed" in row["detail"] for row in rows):
    fail("audit log: no old → new for the security mode", "\n".join(map(str, rows)))
if any(PASSWORD in str(row) for row in rows):
    fail("audit log holds the password")
ok("audit log (identity store): actor console, old → new, no secret")
console.expect(r"main menu")
console.answer("> ", "6")
console.answer("> ", "1")
console.answer("Destination (host[:port], port 8884 by default): ", "monalisa.conclave.test:9000")
console.answer("Its ApMon password (empty: none; not shown): ", "apmon-secret")
console.expect(r"monitoring:\s+destinations\s+monalisa\.conclave\.test:9000,\s+every\s+30\s+s,\s+privacy\s+pseudonymous")
console.answer("> ", "6")
console.answer("> ", "3")
console.answer("> ", "3")
console.expect(r"privacy\s+off")
monitoring = json.load(open(os.path.join(state, "conclave.json"))).get("monitoring", {})
if monitoring.get("privacy") != "off" or monitoring.get("destinations") != ["monalisa.conclave.test:9000 apmon-secret"]:
    fail("menu 6: monitoring section", json.dumps(monitoring))
if "apmon-secret" in "".join(console.log):
    fail("the ApMon password was echoed")
ok("menu 6: an ApMon destination (password not echoed) and the privacy mode written to conclave.json")
before = snapshot(state)
console.answer("> ", "8")
console.answer("> ", "3")
console.answer("Server (FQDN[:PORT]): ", "bad host:443")
console.answer("Meeting: ", "weekly")
console.answer("Room nickname (shown to participants): ", "Room 1")
console.refused("is not HOST[:PORT]")
if snapshot(state) != before:
    fail("a refused room setting changed the state directory")
console.answer("> ", "8")
console.answer("> ", "3")
console.answer("Server (FQDN[:PORT]): ", "conclave.test:443")
console.answer("Meeting: ", "weekly")
console.answer("Room nickname (shown to participants): ", "Room 1")
console.expect(r"room joins conclave\.test:443, meeting weekly, as Room 1")
room = json.load(open(os.path.join(state, "conclave.json"))).get("room")
if room != {"server": "conclave.test:443", "meeting": "weekly", "nickname": "Room 1"}:
    fail("menu 8: room section", json.dumps(room))
ok("menu 8: a bad server is refused; the room's server, meeting and nickname are written")
console.expect(r"main menu")
console.child.send("\x04")
console.child.expect(pexpect.EOF)
console.close()
ok("Ctrl-D logs out")

# ---- 3. lockout ----
console = Console(state)
for attempt in range(5):
    console.answer("> ", "1")
    console.answer("Password: ", "wrong password %d" % attempt)
    console.expect(r"wrong password" + (r": locked for 1 min" if attempt == 4 else r"\r\n"))
console.answer("> ", "1")
console.expect(r"locked after repeated failures: try again in 1 min")
console.close()
console = Console(state)
console.answer("> ", "1")
console.expect(r"locked after repeated failures")
console.close()
throttle = json.load(open(os.path.join(state, "console/login-throttle.json")))
if throttle.get("locks") != 1 or stat.S_IMODE(os.stat(os.path.join(state, "console/login-throttle.json")).st_mode) != 0o600:
    fail("login-throttle.json", json.dumps(throttle))
ok("five wrong passwords lock the console for 1 min, also for the next console process")

# ---- 4. server, CSR + certificate signed by the test CA ----
state = os.path.join(work, "csr")
os.makedirs(state)
console = Console(state)
wizard_to_hostname(console)
console.answer("Host name: ", "relay2")
console.answer("FQDN (clients connect to this name): ", "conclave.test")
console.answer("Certificate: ", "2")
match = console.expect(r"(-----BEGIN CERTIFICATE REQUEST-----.*?-----END CERTIFICATE REQUEST-----)")
csr = match.group(1).replace("\r", "")
open(os.path.join(work, "wizard.csr"), "w").write(csr + "\n")
def sign(name, san, csr_path):
    extensions = os.path.join(work, name + ".ext")
    open(extensions, "w").write("subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n" % san)
    openssl("x509", "-req", "-in", csr_path, "-CA", os.path.join(work, "ca.pem"), "-CAkey", os.path.join(work, "ca.key"),
            "-CAcreateserial", "-days", "30", "-extfile", extensions, "-out", os.path.join(work, name + ".pem"))
    return open(os.path.join(work, name + ".pem")).read()
good = sign("good", "DNS:conclave.test", os.path.join(work, "wizard.csr"))
other_name = sign("other-name", "DNS:other.test", os.path.join(work, "wizard.csr"))
openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(work, "other.key"),
        "-subj", "/CN=conclave.test", "-out", os.path.join(work, "other.csr"))
other_key = sign("other-key", "DNS:conclave.test", os.path.join(work, "other.csr"))
ca = open(os.path.join(work, "ca.pem")).read()
console.expect(re.escape("ending at -----END CERTIFICATE-----:"))
before = snapshot(state)
console.paste(other_name)
console.refused("the appliance FQDN conclave.test is not in the certificate's SANs (DNS:other.test)")
console.paste(other_key)
console.refused("the private key does not match the certificate")
console.paste("garbage\n-----END CERTIFICATE-----")
console.refused("the pasted certificate is not a certificate")
if snapshot(state) != before:
    fail("a refused certificate changed the state directory")
ok("wizard (CSR): certificate for another FQDN, for another key, garbage: refused with the reason, state unchanged")
console.paste(good)
console.expect(re.escape("then an empty line."))
console.paste(ca)
console.child.send("\r")
console.answer("Security mode [1]: ", "")
console.answer("Apply? ", "1")
console.expect(r"done: log in with the new password")
console.close()
fingerprint = lambda pem: openssl("x509", "-noout", "-fingerprint", "-sha256", data=pem).split("=")[1].strip()
if fingerprint(open(os.path.join(state, "pki/current/cert.pem")).read()) != fingerprint(good):
    fail("the CA-signed certificate is not the active one")
if fingerprint(open(os.path.join(state, "pki/current/chain.pem")).read()) != fingerprint(ca):
    fail("the chain does not hold the CA")
if os.path.exists(os.path.join(state, "pki/pending")) and os.listdir(os.path.join(state, "pki/pending")):
    fail("the wizard left a pending request behind")
ok("wizard (CSR): the certificate the test CA signed is active with its chain")

# ---- 5. room system: trust by fingerprint ----
state = os.path.join(work, "room")
os.makedirs(state)
console = Console(state)
wizard_to_hostname(console, role="2")
console.answer("Host name: ", "room1")
console.answer("FQDN (clients connect to this name): ", "room1.conclave.test")
console.answer("Certificate: ", "1")
console.expect(re.escape("Paste it here, then an empty line:"))
console.paste(ca)
console.child.send("\r")
console.expect(re.escape("(colons optional):"))
console.answer("> ", "00:11:22")
console.refused("the fingerprint does not match")
console.expect(re.escape("(colons optional):"))
console.answer("> ", fingerprint(ca).replace(":", "").lower())  # 64 characters: the echo fits 80 columns
console.answer("Security mode [1]: ", "1")
console.expect(r"server trust:")
console.answer("Apply? ", "1")
console.expect(r"done: log in with the new password")
console.close()
trusted = os.path.join(state, "pki/trust", fingerprint(ca).replace(":", "").lower() + ".pem")
if not os.path.exists(trusted) or json.load(open(os.path.join(state, "conclave.json")))["role"] != "room":
    fail("room: trust anchor or role missing", "\n".join(snapshot(state)))
ok("wizard (room): DHCP, the server's CA trusted after its fingerprint was typed")

# ---- 6. idle timeout ----
console = Console(state, "--idle-timeout", "2")
console.answer("> ", "1")
console.answer("Password: ", PASSWORD)
console.expect(r"main menu")
console.expect(r"idle for too long: logged out", timeout=10)
console.child.expect(pexpect.EOF)
console.close()
ok("an idle session logs out")

# ---- every screen fits 80 columns ----
wide = []
for text in transcripts:
    for line in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "").split("\n"):
        if len(line) > 80:
            wide.append(line)
if wide:
    fail("lines wider than 80 columns", "\n".join(wide[:5]))
ok("no line wider than 80 columns in %d screens of output" % sum(t.count("\n") for t in transcripts))
PYTHON
echo "console-pty: all checks passed"
