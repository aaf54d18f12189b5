#!/usr/bin/env python3
"""Checks what apmon_listener.py recorded. Usage:

apmon_check.py datagrams DATAGRAMS.jsonl SINCE PASSWORD EXPECT.json
    every datagram received after SINCE decoded cleanly, carries the header with PASSWORD, one
    instance id, sequence numbers that go up by one (per listener), and the reports EXPECT.json
    describes: {"relay_node": "...", "meetings": {"m1": 2}, "users": [{...}], "privacy": "full"}
apmon_check.py absent FILE SINCE WORD…   no datagram after SINCE (or no line of a log) holds a WORD
apmon_check.py present FILE SINCE WORD…  every WORD is in some datagram after SINCE
apmon_check.py metrics URL_TEXT_FILE EXPECT.json   the exposition parses (prometheus_client)
"""
import json
import os
import re
import sys


def load(path, since):
    records = []
    with open(path) as source:
        for line in source:
            record = json.loads(line)
            if record["received"] >= since:
                records.append(record)
    return records


def fail(message):
    print(f"apmon_check: {message}", file=sys.stderr)
    sys.exit(1)


def latest(records):
    """The newest parameters of each (cluster, node), split parts merged."""
    merged = {}
    for record in records:
        key = (record["cluster"], record["node"])
        merged.setdefault(key, {})
        for name, kind, value in record["params"]:
            merged[key][name] = (kind, value)
    return merged


def check_datagrams(path, since, password, expect_path):
    expect = json.load(open(expect_path))
    every = load(path, 0)
    records = [r for r in every if r["received"] >= since]
    if not records:
        fail(f"no datagram in {path} since {since}")
    bad = [r for r in every if not r["ok"]]
    if bad:
        fail(f"{len(bad)} datagrams a receiver would drop, first: {bad[0]['error']} ({bad[0]['raw'][:80]}…)")
    for record in every:
        if record["version"] != "2.2.0_conclave" or record["password"] != password:
            fail(f"header v:{record['version']}p:{record['password']}")
        if record["size"] > 1440:
            fail(f"{record['size']}-byte datagram")
        if record["timestamp"] is not None:
            fail("a timestamp was sent although the clock is not known to be synchronised")
    # One instance id per daemon process (a restart would change it), 31 bits.
    instances = {r["instance_id"] for r in every}
    if len(instances) != 1 or not 0 <= next(iter(instances)) < 2**31:
        fail(f"instance ids {instances}")
    sequence = [r["seq"] for r in every]
    first_ok = sequence[0] == 1 or os.environ.get("APMON_RESUMED")
    if not first_ok or any(b != a + 1 for a, b in zip(sequence, sequence[1:])):
        fail(f"sequence numbers do not go 1, 2, 3…: {sequence[:20]}")
    merged = latest(records)
    relay = merged.get(("Conclave_Relay", expect["relay_node"]))
    if relay is None:
        fail(f"no Conclave_Relay/{expect['relay_node']} report; have {sorted(merged)}")
    types = {"participants": 2, "audio_channels": 2, "video_channels": 2, "meetings": 2, "legs": 2, "relay_connected": 2,
             "packets_in": 2, "packets_out": 2, "bytes_in": 2, "bytes_out": 2, "auth_failures": 2, "cpu_percent": 5,
             "memory_kb": 2, "certificate_days_left": 5}
    for name, kind in types.items():
        if name not in relay:
            fail(f"relay report lacks {name}: {relay}")
        if relay[name][0] != kind:
            fail(f"relay {name} has type {relay[name][0]}, expected {kind}")
    if relay["participants"][1] != sum(expect["meetings"].values()):
        fail(f"relay participants {relay['participants'][1]}, expected {sum(expect['meetings'].values())}")
    if relay["meetings"][1] != expect.get("meeting_count", len(expect["meetings"])):
        fail(f"relay meetings {relay['meetings'][1]}")
    if relay["relay_connected"][1] != 1 or relay["memory_kb"][1] <= 0 or relay["packets_in"][1] <= 0:
        fail(f"relay figures implausible: {relay}")
    if not 360 < relay["certificate_days_left"][1] < 3660:
        fail(f"certificate days left {relay['certificate_days_left'][1]}")
    for meeting, count in expect["meetings"].items():
        report = merged.get(("Conclave_Meetings", meeting))
        if report is None:
            fail(f"no Conclave_Meetings/{meeting}")
        if report["participants"] != (2, count):
            fail(f"meeting {meeting} participants {report['participants']}")
        if report["audio_channels"][0] != 2 or report["video_channels"][0] != 2:
            fail(f"meeting {meeting} channel types {report}")
    for user in expect["users"]:
        report = merged.get(("Conclave_Users", str(user["leg"])))
        if report is None:
            fail(f"no Conclave_Users/{user['leg']}")
        for name, value in [("os", user["os"]), ("client_name", "conclave-room"), ("client_version", user["client_version"]),
                            ("connection_type", "UDP"), ("srtp_profile", "AEAD_AES_128_GCM"), ("participant_kind", "guest")]:
            if report.get(name) != (0, value):
                fail(f"leg {user['leg']}: {name} = {report.get(name)}, expected {value!r}")
        if report.get("port", (None,))[0] != 2 or not 0 < report["port"][1] < 65536:
            fail(f"leg {user['leg']}: port {report.get('port')}")
        for name in ("loss_percent", "jitter_ms", "reported_loss_percent"):
            if report.get(name, (None,))[0] != 5:
                fail(f"leg {user['leg']}: {name} = {report.get(name)} (expected a float64)")
        for name in ("packets_lost", "packets_in", "packets_out"):
            if report.get(name, (None,))[0] != 2:
                fail(f"leg {user['leg']}: {name} = {report.get(name)} (expected an int32 counter)")
        if report["packets_in"][1] <= 0:
            fail(f"leg {user['leg']}: no packets in")
        personal = {"nickname": user["nickname"], "ip": user["ip"], "meeting_id": user["meeting"], "mac": user["mac"]}
        for name, raw in personal.items():
            got = report.get(name)
            if expect["privacy"] == "full":
                if got != (0, raw):
                    fail(f"leg {user['leg']}: {name} = {got}, expected {raw!r} (full)")
            elif expect["privacy"] == "pseudonymous":
                if got is None or got[0] != 0 or not re.fullmatch(r"[0-9a-f]{16}", got[1]):
                    fail(f"leg {user['leg']}: {name} = {got}, expected a 16-hex pseudonym")
            elif got is not None:
                fail(f"leg {user['leg']}: {name} = {got} sent in privacy mode off")
    print(f"apmon_check: {len(records)} datagrams since {since:.0f} check out ({len(merged)} reports, seq up to {sequence[-1]})")


def check_words(mode, path, since, words):
    blobs = []
    if path.endswith(".jsonl"):
        for record in load(path, since):
            blobs.append(bytes.fromhex(record["raw"]))
    else:
        blobs.append(open(path, "rb").read())
    for word in words:
        found = any(word.encode() in blob for blob in blobs)
        if mode == "absent" and found:
            fail(f"{word!r} found in {path}")
        if mode == "present" and not found:
            fail(f"{word!r} not found in {path}")
    print(f"apmon_check: {', '.join(words)} {mode} in {path} ({len(blobs)} items)")


def check_metrics(text_path, expect_path):
    from prometheus_client.parser import text_string_to_metric_families
    expect = json.load(open(expect_path))
    text = open(text_path).read()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name in expect["families"]:
        if name not in families:
            fail(f"metric family {name} missing; have {sorted(families)}")
    participants = families["conclave_participants"].samples[0].value
    if participants != expect["participants"]:
        fail(f"conclave_participants {participants}, expected {expect['participants']}")
    legs = {s.labels["leg"] for s in families["conclave_leg_loss_ratio"].samples}
    if legs != {str(leg) for leg in expect["legs"]}:
        fail(f"leg series {legs}, expected {expect['legs']}")
    buckets = [s for s in families["conclave_join_latency_seconds"].samples if s.name.endswith("_count")]
    if not buckets or buckets[0].value < expect["joins"]:
        fail(f"join latency count {buckets}")
    print(f"apmon_check: /metrics parses: {len(families)} families, {len(legs)} leg series")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "datagrams":
        check_datagrams(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif command in ("absent", "present"):
        check_words(command, sys.argv[2], float(sys.argv[3]), sys.argv[4:])
    elif command == "metrics":
        check_metrics(sys.argv[2], sys.argv[3])
    else:
        fail(f"unknown command {command}")
