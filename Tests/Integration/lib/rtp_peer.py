#!/usr/bin/env python3
"""A room's codec pipeline stand-in: sends RTP packets carrying a plaintext marker to the room
agent's --rtp-in and records every packet the agent delivers on --rtp-out.

usage: rtp_peer.py NAME SEND_TO LISTEN_PORT COUNT RATE OUT_JSON [--start-file F]
Once listening it creates OUT_JSON.ready; sends COUNT packets at RATE per second (after
--start-file exists, if given), keeps listening two seconds more, then writes
{"sent": [hex…], "received": [hex…]} to OUT_JSON."""
import json, os, random, socket, struct, sys, time

name, send_to, listen_port, count, rate, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
start_file = sys.argv[8] if len(sys.argv) > 8 and sys.argv[7] == "--start-file" else None
host, port = send_to.rsplit(":", 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", listen_port))
sock.settimeout(0.01)
received, sent = [], []
open(out + ".ready", "w").close()
deadline = time.monotonic() + 60
while start_file and not os.path.exists(start_file) and time.monotonic() < deadline:
    time.sleep(0.05)
ssrc = random.getrandbits(32)
marker = ("CONCLAVE-MARKER-" + name).encode()
start = time.monotonic()
for i in range(count):
    # V=2, PT 96 (dynamic video; L16-style payload), sequence, timestamp, SSRC, marker + index + filler.
    payload = marker + struct.pack("!I", i) + bytes((i + k) % 256 for k in range(160))
    packet = struct.pack("!BBHII", 0x80, 96, i, i * 3000, ssrc) + payload
    sock.sendto(packet, (host, int(port)))
    sent.append(packet.hex())
    while time.monotonic() < start + (i + 1) / rate:
        try:
            received.append(sock.recv(4096).hex())
        except socket.timeout:
            pass
end = time.monotonic() + 2
while time.monotonic() < end:
    try:
        received.append(sock.recv(4096).hex())
    except socket.timeout:
        pass
with open(out, "w") as f:
    json.dump({"sent": sent, "received": received}, f)
