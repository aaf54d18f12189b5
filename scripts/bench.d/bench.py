#!/usr/bin/env python3
"""Side-by-side benchmark of `conclave relay` and the C reference forwarder.

Run by scripts/bench inside a network namespace of its own. Every figure the report gives is
measured in this run; the forwarder under test is pinned to core 1, the load on core 0.
"""
import argparse, json, os, re, signal, statistics, subprocess, sys, tempfile, time

CORE_RELAY, CORE_LOAD = "1", "0"
PROFILES = [("encapsulated", "encapsulated"), ("SRTP AEAD_AES_128_GCM", "gcm"), ("SRTP AES_CM_128_HMAC_SHA1_80", "sha1")]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.binary = os.path.abspath(args.binary)
        self.references = {}
        for size in (1200, 160):
            source = open(args.reference).read().replace("#define SZ 1200", f"#define SZ {size}")
            path = f"{work}/limit-forwarder-{size}.c"
            open(path, "w").write(source)
            subprocess.run(["gcc", "-O2", "-o", path[:-2], path, "-lcrypto"], check=True)
            self.references[size] = path[:-2]

    # -- the C reference ------------------------------------------------------------------
    def reference(self, size, fan, crypto):
        """Forwarded (output) packets per second and per CPU-second of the reference relay."""
        program, seconds = self.references[size], self.args.seconds
        sink = subprocess.Popen(["taskset", "-c", CORE_LOAD, program, "sink"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.2)
        relay = subprocess.Popen(["taskset", "-c", CORE_RELAY, program, "relay", str(seconds), str(fan), str(crypto)],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(0.2)
        subprocess.run(["taskset", "-c", CORE_LOAD, program, "gen", str(seconds)], stdout=subprocess.DEVNULL, check=True)
        _, _, usage = os.wait4(relay.pid, 0)
        output = relay.stdout.read()
        sink.wait(timeout=10)
        out_pps = float(re.search(r"out (\d+) pps", output).group(1))
        cpu = usage.ru_utime + usage.ru_stime
        return {"pps": out_pps, "per_cpu": out_pps * seconds / cpu}

    # -- conclave -------------------------------------------------------------------------
    def legs(self, profile, meetings, participants):
        path = f"{self.work}/legs-{profile}-{meetings}x{participants}.json"
        if not os.path.exists(path):
            with open(path, "w") as out:
                subprocess.run([self.binary, "loadgen", "make-legs", "--meetings", str(meetings),
                                "--participants", str(participants), "--profile", profile], stdout=out, check=True)
        return path

    def start_relay(self, legs, binary=None, env=None, extra=()):
        relay = subprocess.Popen(["taskset", "-c", CORE_RELAY, binary or self.binary, "relay", "standalone", "--legs", legs,
                                  "--listen", "127.0.0.1", "--port", "41000", "--threads", "1", "--duration", "120", *extra],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        time.sleep(0.8)
        return relay

    def stats(self, relay):
        relay.send_signal(signal.SIGUSR1)
        return json.loads(relay.stdout.readline())

    def stop_relay(self, relay):
        relay.send_signal(signal.SIGTERM)
        final = json.loads(relay.stdout.read().strip().splitlines()[-1])
        _, _, usage = os.wait4(relay.pid, 0)
        return final, usage.ru_utime + usage.ru_stime

    def loadgen(self, legs, meetings, participants, size, pps, seconds, verify=False, extra=()):
        command = ["taskset", "-c", CORE_LOAD, self.binary, "loadgen", "--legs", legs, "--relay", "127.0.0.1:41000",
                   "--meetings", str(meetings), "--participants", str(participants), "--audio-pps", "0",
                   "--video-pps", str(pps), "--size", str(size), "--duration", str(seconds), "--json"]
        if not verify:
            command.append("--no-verify")
        command += extra
        return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)

    def shape(self, fan):
        """Meetings of fan+1 participants; enough legs that batching is realistic."""
        participants = fan + 1
        return max(2, 40 // participants), participants

    def conclave(self, profile, size, fan, per_participant_pps=1_000_000):
        meetings, participants = self.shape(fan)
        legs = self.legs(profile, meetings, participants)
        relay = self.start_relay(legs)
        before = self.stats(relay)["counters"]["forwarded"]
        cpu_before = cpu_seconds(relay.pid)
        report = self.loadgen(legs, meetings, participants, size, per_participant_pps, self.args.seconds)
        time.sleep(0.3)
        cpu = cpu_seconds(relay.pid) - cpu_before
        after = self.stats(relay)
        forwarded = after["counters"]["forwarded"] - before
        self.stop_relay(relay)
        return {"pps": forwarded / self.args.seconds, "per_cpu": forwarded / cpu, "offered": report["sentPerSecond"],
                "legs": after["legs"]}

    # -- the experiments ------------------------------------------------------------------
    def throughput(self):
        rows = []
        for size in (1200, 160):
            for fan in (1, 4):
                for name, profile in PROFILES:
                    ratios, ours_runs, ref_runs, plain_runs = [], [], [], []
                    for _ in range(self.args.repeat):  # paired: reference and ours back to back
                        reference = self.reference(size, fan, 1)
                        plain = self.reference(size, fan, 0)
                        ours = self.conclave(profile, size, fan)
                        ratios.append(ours["per_cpu"] / reference["per_cpu"])
                        ours_runs.append(ours); ref_runs.append(reference); plain_runs.append(plain)
                    median = lambda runs, key: statistics.median(run[key] for run in runs)
                    row = {"size": size, "fan": fan, "profile": name,
                           "ours_pps": median(ours_runs, "pps"), "ours_per_cpu": median(ours_runs, "per_cpu"),
                           "ref_pps": median(ref_runs, "pps"), "ref_per_cpu": median(ref_runs, "per_cpu"),
                           "plain_per_cpu": median(plain_runs, "per_cpu"),
                           "ratio": statistics.median(ratios),
                           "ratio_plain": median(ours_runs, "per_cpu") / median(plain_runs, "per_cpu")}
                    rows.append(row)
                    print(f"  {size:5} B fan {fan} {name:30} ours {row['ours_pps']:9.0f} pps {row['ours_per_cpu']:9.0f}/cpu-s"
                          f"  ref {row['ref_per_cpu']:9.0f}/cpu-s  ratio {row['ratio']:.2f}", flush=True)
        return rows

    def latency_and_loss(self, saturation_in_pps):
        """p99 at 50 % of saturation and loss at 80 %, with every packet decrypted and checked."""
        meetings, participants = self.shape(1)
        legs = self.legs("gcm", meetings, participants)
        results = {}
        for load in (0.5, 0.8):
            per_participant = saturation_in_pps * load / (meetings * participants)
            relay = self.start_relay(legs, extra=("--measure-residence",))
            report = self.loadgen(legs, meetings, participants, 1200, per_participant, self.args.seconds, verify=True)
            final, _ = self.stop_relay(relay)
            report["residence"] = {key: final["counters"].get(key) for key in
                                   ("residenceP50Microseconds", "residenceP99Microseconds", "residenceP999Microseconds")}
            results[load] = report
            print(f"  load {load:.0%}: offered {report['sentPerSecond']:.0f} pps, lost {report['lost']}, "
                  f"p50 {report['latencyMilliseconds']['p50']} ms, p99 {report['latencyMilliseconds']['p99']} ms, "
                  f"relay residence {report['residence']}", flush=True)
        return results

    def memory(self):
        rows = []
        for legs_count in (10, 100, 1000):
            meetings = legs_count // 2
            legs = self.legs("gcm", meetings, 2)
            relay = self.start_relay(legs)
            # A little traffic on every leg, so each SRTP stream exists as it would in a call.
            self.loadgen(legs, meetings, 2, 200, 20, 1.5, verify=True)
            rss = int(re.search(r"VmRSS:\s+(\d+) kB", open(f"/proc/{relay.pid}/status").read()).group(1))
            self.stop_relay(relay)
            rows.append((legs_count, rss))
            print(f"  {legs_count:5} legs: RSS {rss} KiB", flush=True)
        per_leg = (rows[-1][1] - rows[0][1]) / (rows[-1][0] - rows[0][0])
        return rows, per_leg

    def allocations(self, dynamic_binary, counter):
        """Allocations in load windows of equal length at a low and at the full rate. Each run
        uses new random SSRCs, so libsrtp2 creates its per-SSRC streams on their first packet
        in every window alike; what differs between the windows is the packet count only."""
        meetings, participants = self.shape(4)
        legs = self.legs("gcm", meetings, participants)
        count_file = f"{self.work}/mallocs"
        env = dict(os.environ, LD_PRELOAD=counter, MALLOC_COUNT_FILE=count_file)
        relay = self.start_relay(legs, binary=dynamic_binary, env=env)
        read = lambda: int(open(count_file).read())
        windows = []
        for name, rate in (("warm-up", 10), ("low rate", 10), ("full rate", 1_000_000)):
            packets_before, mallocs_before = self.stats(relay)["counters"]["forwarded"], read()
            # RTP only: RTCP compound packets are parsed into arrays (about 1 % of real traffic).
            self.loadgen(legs, meetings, participants, 1200, rate, self.args.seconds, extra=("--rtcp-interval", "0"))
            time.sleep(0.3)
            mallocs_after = read()
            packets_after = self.stats(relay)["counters"]["forwarded"]
            windows.append((name, packets_after - packets_before, mallocs_after - mallocs_before))
            print(f"  {name}: {windows[-1][2]} allocations while forwarding {windows[-1][1]} packets", flush=True)
        self.stop_relay(relay)
        return windows[1:]

    def overload(self, saturation_in_pps):
        """Twice the saturation rate for 10 s from the C flood generator (real SRTP-GCM, the
        Swift load generator cannot offer that much from one core), then 50 % with every packet
        checked: the relay must forward at its saturation rate, spread the drops over the legs
        and recover at once."""
        meetings, participants = self.shape(1)
        legs = self.legs("gcm", meetings, participants)
        lines = f"{self.work}/flood-legs.txt"
        with open(lines, "w") as out:
            for leg in json.load(open(legs))["legs"]:
                out.write(f"{leg['leg']} {leg['token']} {leg['clientToRelay']['key']} {leg['clientToRelay']['salt']}\n")
        relay = self.start_relay(legs)
        before = self.stats(relay)
        flood = subprocess.run(["taskset", "-c", CORE_LOAD, self.args.flood, "127.0.0.1", "41000", str(2 * saturation_in_pps),
                                "10", "1200", lines], capture_output=True, text=True, check=True)
        report = json.loads(flood.stdout)
        during = self.stats(relay)
        recovery = self.loadgen(legs, meetings, participants, 1200, saturation_in_pps * 0.5 / (meetings * participants), 3, verify=True)
        self.stop_relay(relay)
        forwarded = during["counters"]["forwarded"] - before["counters"]["forwarded"]
        per_leg = [leg["statistics"]["packetsOut"] for leg in during["legs"]]
        result = {"offered": report["sentPerSecond"], "forwarded_pps": forwarded / report["seconds"], "saturation": saturation_in_pps,
                  "min_leg": min(per_leg), "max_leg": max(per_leg), "recovery_lost": recovery["lost"],
                  "recovery_received": recovery["received"], "recovery_expected": recovery["expected"]}
        print(f"  overload: {result}", flush=True)
        return result


def load_average():
    return float(open("/proc/loadavg").read().split()[0])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--dynamic-binary", required=True)
    parser.add_argument("--malloc-counter", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--flood", required=True, help="the C overload generator (flood.c)")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", required=True, help="JSON results")
    parser.add_argument("--markdown", required=True, help="docs/PERFORMANCE.md")
    parser.add_argument("--saturation", type=float, help="skip the throughput rows; use this GCM 1200 B rate (debugging)")
    args = parser.parse_args()
    work = tempfile.mkdtemp()
    bench = Bench(args, work)
    loads = [load_average()]
    if args.saturation:
        rows, saturation = [], args.saturation
    else:
        print("throughput (forwarded packets per CPU-second of the forwarder):", flush=True)
        rows = bench.throughput()
        # Saturation: what the relay forwards with a whole core (its packets per CPU-second).
        saturation = next(r for r in rows if r["size"] == 1200 and r["fan"] == 1 and "GCM" in r["profile"])["ours_per_cpu"]
    loads.append(load_average())
    print("latency and loss below saturation:", flush=True)
    latency = bench.latency_and_loss(saturation)
    loads.append(load_average())
    print("memory:", flush=True)
    memory, per_leg = bench.memory()
    print("allocations:", flush=True)
    windows = bench.allocations(args.dynamic_binary, args.malloc_counter)
    print("overload:", flush=True)
    overload = bench.overload(saturation)
    loads.append(load_average())
    args.loads = loads
    json.dump({"rows": rows, "latency": {str(k): v for k, v in latency.items()}, "memory": memory, "per_leg_kib": per_leg,
               "allocations": windows, "overload": overload,
               "seconds": args.seconds, "repeat": args.repeat}, open(args.output, "w"), indent=1)
    if rows:
        render(args, rows, latency, memory, per_leg, windows, overload)


def render(args, rows, latency, memory, per_leg, windows, overload):
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    lines = [
        "# Performance",
        "",
        "Produced by `./scripts/bench` (it writes this file), on "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({cpu}), loopback inside a network namespace of the",
        "benchmark's own. The forwarder under test is pinned to core 1; the load generator (and the reference's",
        "generator and sink) to core 0. Each row pairs the C reference forwarder",
        "(`../shared/bench/limit-forwarder.c`, compiled with the row's packet size) and `conclave relay standalone`",
        f"back to back, {args.repeat} times, {args.seconds:g} s each; figures are medians. One-minute load average",
        f"of the machine (2 cores) at the start, after the throughput rows, after the latency runs and at the end:",
        f"{', '.join(f'{load:.1f}' for load in args.loads)} — above about 2, other work shared the cores.",
        "",
        "The load generator cannot always saturate the relay from one core (it encrypts every packet it",
        "offers), so the comparable figure is **forwarded packets per CPU-second of the forwarder**",
        "(`utime + stime` from `/proc/<pid>/stat`), as in `../shared/notes/udp-hot-path.md`. The relay decrypts",
        "each packet once and re-encrypts it per receiver; the reference (`crypto 1`) encrypts once per output",
        "with AES-128-GCM. `vs plain` compares with the reference doing no crypto at all.",
        "",
        "## Throughput",
        "",
        "| packet | fan-out | mode | relay pkt/s | relay pkt/CPU-s | reference (GCM) pkt/CPU-s | ratio | vs plain |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} B | {r['fan']} | {r['profile']} | {r['ours_pps']:,.0f} | {r['ours_per_cpu']:,.0f} | "
                     f"{r['ref_per_cpu']:,.0f} | **{r['ratio']:.2f}** | {r['ratio_plain']:.2f} |")
    worst = min(rows, key=lambda r: r["ratio"])
    lines += ["", f"Lowest ratio to the reference: {worst['ratio']:.2f} ({worst['size']} B, fan-out {worst['fan']}, {worst['profile']}).", ""]
    half, most = latency[0.5], latency[0.8]
    lines += [
        "## Latency and loss below saturation",
        "",
        "Saturation is the relay's forwarded packets per CPU-second (SRTP-GCM, 1200 B, fan-out 1 row).",
        "SRTP-GCM, 1200 B, 2-party meetings; every packet decrypted and checked by the load generator, which",
        "stamps each packet and so measures one-way latency (generator → relay → generator, all on loopback: an",
        "upper bound of the latency the relay adds).",
        "",
        "The relay also stamps each datagram as the kernel receives it (`SO_TIMESTAMPNS`) and, after the",
        "`sendmmsg` that forwards it, records how long it stayed: the latency the relay adds, socket queue",
        "included (`relay standalone --measure-residence`).",
        "",
        "| offered load | offered pkt/s | received / expected | lost | end to end p50 / p99 / p99.9 ms | relay residence p50 / p99 / p99.9 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, report in (("50 % of saturation", half), ("80 % of saturation", most)):
        l, r = report["latencyMilliseconds"], report["residence"]
        residence = " / ".join("–" if r[key] is None else f"{r[key] / 1000:.3f}"
                               for key in ("residenceP50Microseconds", "residenceP99Microseconds", "residenceP999Microseconds"))
        lines.append(f"| {name} | {report['sentPerSecond']:,.0f} | {report['received']:,} / {report['expected']:,} | "
                     f"{report['lost']} | {l['p50']} / {l['p99']} / {l['p999']} | {residence} |")
    lines += ["", "## Memory per leg", "", "Resident set of the relay process after every leg carried traffic "
              "(SRTP-GCM, 2-party meetings).", "", "| legs | VmRSS KiB |", "|---:|---:|"]
    lines += [f"| {count} | {rss:,} |" for count, rss in memory]
    lines += ["", f"Slope from 10 to 1000 legs: **{per_leg:.1f} KiB per leg**.", ""]
    (_, low_packets, low_mallocs), (_, high_packets, high_mallocs) = windows
    per_packet = max(0, high_mallocs - low_mallocs) / max(high_packets - low_packets, 1)
    lines += ["## Allocations on the hot path", "",
              "A dynamically linked release build of the same code runs under an `LD_PRELOAD` counter of",
              "`malloc`/`calloc`/`realloc` (`scripts/bench.d/malloc-counter.c`). After a warm-up run, two load runs of",
              f"equal length ({args.seconds:g} s; SRTP-GCM, 1200 B, 5-party meetings; RTP only — RTCP compound packets,",
              "about 1 % of real traffic, are parsed into arrays and do allocate) at 10 packets/s per participant",
              "and at the full rate. Each run uses new random SSRCs, so libsrtp2 creates its per-SSRC streams",
              "(a few allocations each) on their first packet in both alike. The statistics snapshots that",
              "delimit a window are outside it.", "",
              "| window | packets forwarded | allocations |", "|---|---:|---:|",
              f"| low rate | {low_packets:,} | {low_mallocs:,} |", f"| full rate | {high_packets:,} | {high_mallocs:,} |", "",
              f"Allocations per forwarded packet (growth from the low-rate to the full-rate window, per extra",
              f"packet forwarded): **{per_packet:.6f}**. The count does not grow with the packets: what remains is",
              "per stream (new SSRCs) and per run, not per packet.", ""]
    o = overload
    lines += ["## Overload", "",
              "SRTP-GCM, 1200 B, 2-party meetings: `scripts/bench.d/flood.c` (libsrtp2 in C, sendmmsg, on the other",
              "core) offers twice the saturation rate for 10 s, then the load generator offers 50 % of saturation for",
              "3 s with every packet checked. Saturation is the relay's forwarded packets per CPU-second in the",
              "throughput table (what it forwards with a whole core).", "",
              f"- offered {o['offered']:,.0f} pkt/s ({o['offered'] / o['saturation']:.2f} × saturation of {o['saturation']:,.0f}), "
              f"forwarded {o['forwarded_pps']:,.0f} pkt/s during the overload;",
              f"- per leg, packets forwarded ranged {o['min_leg']:,} … {o['max_leg']:,} (no stream was stopped);",
              f"- recovery at 50 %: {o['recovery_received']:,} of {o['recovery_expected']:,} received, {o['recovery_lost']} lost.",
              ""]
    lines += ["## Reading these figures", "",
              "- The machine is shared: other builds may run during a benchmark, so absolute rates move from run to",
              "  run; the ratios pair the two forwarders back to back on the same core and are steadier.",
              "- The end-to-end latency goes through the load generator, which encrypts every packet it offers and",
              "  decrypts every packet it receives on the other core; the residence column is the relay's own share.",
              "- UDP GSO is not used: it batches segments to one destination, and a relay's fan-out goes to distinct",
              "  receivers (`../shared/notes/udp-hot-path.md`).",
              ""]
    # Sections measured by other tools (the image's boot time) are kept as they are.
    kept = ""
    if os.path.exists(args.markdown):
        previous = open(args.markdown).read()
        marker = previous.find("\n## Boot to console")
        if marker >= 0:
            kept = previous[marker:]
    open(args.markdown, "w").write("\n".join(lines).rstrip("\n") + "\n" + kept)


if __name__ == "__main__":
    main()
