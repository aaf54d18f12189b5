#!/usr/bin/env python3
"""An ApMon (MonALISA XDR/UDP) test receiver, written from ../shared/protocols/apmon.md alone.

Usage: apmon_listener.py HOST PORT OUT.jsonl [--seconds N]

Every datagram is decoded strictly (as the service's monXDRUDP module reads it, plus the rules a
Conclave sender promises) and appended to OUT.jsonl as one JSON object:
  {"source": [ip, port], "size": n, "raw": hex, "ok": true, "version": ..., "password": ...,
   "instance_id": i, "seq": s, "cluster": c, "node": n, "params": [[name, type, value], ...],
   "timestamp": t or null}
or {"ok": false, "error": reason, "raw": hex, ...} for a datagram the receiver would drop.
"""
import json
import socket
import struct
import sys
import time


class Malformed(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.data = data
        self.offset = 0

    def left(self):
        return len(self.data) - self.offset

    def take(self, count):
        if count > self.left():
            raise Malformed(f"truncated: need {count} bytes at {self.offset}, {self.left()} left")
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def int32(self):
        return struct.unpack(">i", self.take(4))[0]

    def int64(self):
        return struct.unpack(">q", self.take(8))[0]

    def float32(self):
        return struct.unpack(">f", self.take(4))[0]

    def float64(self):
        return struct.unpack(">d", self.take(8))[0]

    def string(self, what):
        length = self.int32()
        if length < 0 or length > 32767:
            raise Malformed(f"{what}: string length {length} out of range")
        raw = self.take(length)
        padding = (4 - length % 4) % 4
        pad = self.take(padding)
        if pad != b"\0" * padding:
            raise Malformed(f"{what}: non-zero padding {pad.hex()}")
        return raw


def version_tuple(text):
    # Cut at the first '_' or '-', then major.minor.maint.
    for separator in "_-":
        text = text.split(separator, 1)[0]
    parts = [int(p) for p in text.split(".") if p.isdigit()]
    return tuple(parts + [0] * (3 - len(parts)))


def decode(data):
    if len(data) > 1440:
        raise Malformed(f"{len(data)} bytes exceeds 1440")
    if len(data) % 4:
        raise Malformed(f"{len(data)} bytes is not a multiple of 4")
    reader = Reader(data)
    header = reader.string("header").decode("ascii").strip()
    if not header.startswith("v:") or "p:" not in header:
        raise Malformed(f"header {header!r} lacks v:/p: (would be taken as a cluster name)")
    version, password = header[2:].split("p:", 1)
    password = password.strip()
    result = {"version": version, "password": password}
    if version_tuple(version) < (2, 2, 0):
        raise Malformed(f"version {version} is below 2.2: no instance id/seq")
    result["instance_id"] = reader.int32()
    result["seq"] = reader.int32()
    result["cluster"] = reader.string("cluster").decode("ascii")
    result["node"] = reader.string("node").decode("ascii")
    count = reader.int32()
    if count < 1:
        raise Malformed(f"n_params {count}")
    params = []
    for index in range(count):
        name = reader.string(f"param {index} name")
        if not name:
            raise Malformed(f"param {index}: empty name ends parsing")
        name = name.decode("ascii")
        if not all(0x21 <= ord(c) < 0x7f for c in name):
            raise Malformed(f"param name {name!r} is not printable ASCII")
        kind = reader.int32()
        if kind == 0:
            value = reader.string(f"{name} value").decode("utf-8")
            if not value.strip():
                raise Malformed(f"{name}: empty string value")
        elif kind == 2:
            value = reader.int32()
        elif kind == 3:
            value = reader.int64()
        elif kind == 4:
            value = reader.float32()
        elif kind == 5:
            value = reader.float64()
        else:
            raise Malformed(f"{name}: type {kind} discards the datagram")
        params.append([name, kind, value])
    result["params"] = params
    if reader.left() == 4:
        result["timestamp"] = reader.int32()
    elif reader.left() == 0:
        result["timestamp"] = None
    else:
        raise Malformed(f"{reader.left()} bytes after the last parameter")
    return result


def main():
    host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 600
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_DGRAM)
    listener.bind((host, port))
    listener.settimeout(0.5)
    deadline = time.time() + seconds
    with open(out, "a") as sink:
        print("listening", flush=True)
        while time.time() < deadline:
            try:
                data, source = listener.recvfrom(65535)
            except socket.timeout:
                continue
            record = {"source": list(source[:2]), "size": len(data), "raw": data.hex(), "received": time.time()}
            try:
                record.update(decode(data))
                record["ok"] = True
            except (Malformed, UnicodeDecodeError, struct.error) as error:
                record["ok"] = False
                record["error"] = str(error)
            sink.write(json.dumps(record) + "\n")
            sink.flush()


if __name__ == "__main__":
    main()
