import ConclaveCrypto
import ConclaveSystem
import ConclaveWire
import Glibc
import SystemPackage
import Testing
@testable import ConclaveControl

/// A minimal XDR reader for the tests, written from apmon.md and not from the encoder.
private struct XDRReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func int32() -> Int32 {
        defer { offset += 4 }
        return Int32(bitPattern: bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) })
    }

    mutating func int64() -> Int64 {
        defer { offset += 8 }
        return Int64(bitPattern: bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) })
    }

    mutating func string() -> String {
        let length = Int(int32())
        let text = String(decoding: bytes[offset..<offset + length], as: UTF8.self)
        offset += (length + 3) / 4 * 4
        return text
    }

    /// header, instance id, seq, cluster, node, parameters (name, type, value as text).
    mutating func datagram() -> (header: String, instance: Int32, seq: Int32, cluster: String, node: String, parameters: [(String, Int32, String)]) {
        let header = string(), instance = int32(), seq = int32(), cluster = string(), node = string()
        var parameters: [(String, Int32, String)] = []
        for _ in 0..<int32() {
            let name = string()
            let type = int32()
            let value: String = switch type {
            case 0: string()
            case 2: String(int32())
            case 3: String(int64())
            case 5: String(Double(bitPattern: UInt64(bitPattern: int64())))
            default: "type \(type)"
            }
            parameters.append((name, type, value))
        }
        return (header, instance, seq, cluster, node, parameters)
    }
}

private func participant(leg: UInt32, name: String, address: String, mac: String?, meeting: String, lost: UInt64 = 0) -> MonitoringSnapshot.Participant {
    MonitoringSnapshot.Participant(
        info: ParticipantInfo(
            leg: leg, name: name, kind: .guest, email: nil, address: address, mac: mac, clientName: "conclave-room", clientVersion: "1.2.3",
            os: "Linux", transports: ["udp", "tcp"], profile: "AEAD_AES_128_GCM", joinedAt: 1_700_000_000),
        meetingID: meeting,
        stats: RelayMessage.LegStats(
            legID: leg, packetsIn: 1000, packetsOut: 2000, bytesIn: 100_000, bytesOut: 200_000, lost: lost, jitter: 450, transport: .udp,
            remotePort: 40000, reportedLoss: 26, roundTripMicroseconds: 12_500, audioPackets: 600, videoPackets: 400 - lost))
}

private func snapshot(legs: Int = 2) -> MonitoringSnapshot {
    var snapshot = MonitoringSnapshot(node: "conclave.test", time: 1_700_000_000)
    snapshot.participants = (0..<legs).map {
        participant(leg: UInt32(100 + $0), name: "Ada Lovelace \($0)", address: "10.77.0.\(11 + $0 % 200)", mac: "52:54:00:12:34:\(String(format2: $0))", meeting: "board", lost: UInt64($0 % 7))
    }
    snapshot.meetings = [.init(id: "board", participants: legs, audioChannels: legs, videoChannels: legs, startedAt: 1_700_000_000)]
    snapshot.relay.participants = legs
    snapshot.relay.cpuPercent = 12.5
    snapshot.relay.residentBytes = 50 << 20
    return snapshot
}

private extension String {
    init(format2 value: Int) {
        let digits = Array("0123456789abcdef")
        self = String([digits[(value / 16) % 16], digits[value % 16]])
    }
}

private let secret = [UInt8](repeating: 0x5a, count: 32)

@Suite struct PrivacyFilterTests {
    @Test func fullPassesOffDropsPseudonymousHashes() {
        #expect(PrivacyFilter(mode: .full, secret: []).personal("Ada", .nickname) == "Ada")
        #expect(PrivacyFilter(mode: .off, secret: []).personal("Ada", .nickname) == nil)
        #expect(PrivacyFilter(mode: .off, secret: []).logged("Ada", .nickname) == "-")
        let filter = PrivacyFilter(mode: .pseudonymous, secret: secret)
        let pseudonym = filter.personal("Ada", .nickname)!
        #expect(pseudonym.count == 16 && pseudonym.allSatisfy(\.isHexDigit))
        #expect(pseudonym != "Ada")
        #expect(filter.personal("Ada", .nickname) == pseudonym)  // stable: sessions can be correlated
        #expect(filter.personal("Ada", .address) != pseudonym)   // field-separated
        #expect(PrivacyFilter(mode: .pseudonymous, secret: [UInt8](repeating: 1, count: 32)).personal("Ada", .nickname) != pseudonym)
    }

    /// RFC 4231 test case 2 through the wrapper: HMAC-SHA256("Jefe", "what do ya want for nothing?").
    @Test func hmacMatchesRFC4231() throws {
        let tag = try HMAC.sha256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(tag.map { String(format2: Int($0)) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}

@Suite struct ApMonReportTests {
    @Test func clustersNodesAndTypes() throws {
        let reports = ApMonReports.reports(snapshot(), privacy: PrivacyFilter(mode: .full, secret: []))
        #expect(reports.map(\.cluster) == ["Conclave_Relay", "Conclave_Meetings", "Conclave_Users", "Conclave_Users"])
        #expect(reports.map(\.node) == ["conclave.test", "board", "100", "101"])
        let user = Dictionary(uniqueKeysWithValues: reports[2].parameters.map { ($0.name, $0.value) })
        #expect(user["os"] == .string("Linux"))
        #expect(user["connection_type"] == .string("UDP"))
        #expect(user["port"] == .int32(40000))
        #expect(user["srtp_profile"] == .string("AEAD_AES_128_GCM"))
        #expect(user["nickname"] == .string("Ada Lovelace 0"))
        #expect(user["ip"] == .string("10.77.0.11"))
        #expect(user["meeting_id"] == .string("board"))
        #expect(user["mac"] == .string("52:54:00:12:34:00"))
        #expect(user["jitter_ms"] == .double(5))
        #expect(user["rtt_ms"] == .double(12.5))
        #expect(user["packets_lost"] == .int32(0))
        #expect(user["loss_percent"] == .double(0))
        let relay = Dictionary(uniqueKeysWithValues: reports[0].parameters.map { ($0.name, $0.value) })
        #expect(relay["participants"] == .int32(2))
        #expect(relay["cpu_percent"] == .double(12.5))
        #expect(relay["memory_kb"] == .int32(51200))
        #expect(ApMonReports.counter(5) == .int32(5))
        #expect(ApMonReports.counter(UInt64(Int32.max) + 1) == .int64(Int64(Int32.max) + 1))
    }

    @Test(arguments: MonitoringConfiguration.Privacy.allCases)
    func personalBytesFollowThePrivacyMode(mode: MonitoringConfiguration.Privacy) throws {
        let reports = ApMonReports.reports(snapshot(), privacy: PrivacyFilter(mode: mode, secret: secret))
        var bytes: [UInt8] = []
        var sequence = ApMon.Sequence()
        for report in reports {
            bytes += try ApMon.encode(
                cluster: report.cluster, node: report.node, parameters: report.parameters, password: "", instanceID: 1, sequence: &sequence
            ).datagrams.joined()
        }
        bytes += Array(PrometheusText.render(snapshot(), privacy: PrivacyFilter(mode: mode, secret: secret), joinLatency: Histogram(bounds: [1])).utf8)
        for raw in ["Ada Lovelace 0", "10.77.0.12", "52:54:00:12:34:01"] {
            let found = bytes.indices.contains { bytes[$0...].starts(with: Array(raw.utf8)) }
            #expect(found == (mode == .full), "\(raw) in \(mode)")
        }
        let names = Set(reports.flatMap { $0.parameters.map(\.name) })
        #expect(names.contains("nickname") == (mode != .off))
        #expect(names.contains("os"))  // technical fields always go
    }

    /// 200 legs in one meeting: the meeting's report (two series per leg) splits into complete
    /// datagrams of at most 1440 bytes, each with the full header and its own sequence number.
    @Test func twoHundredLegsSplitWithFullHeaders() throws {
        let reports = ApMonReports.reports(snapshot(legs: 200), privacy: PrivacyFilter(mode: .pseudonymous, secret: secret))
        #expect(reports.count == 202)
        let meeting = reports[1]
        var sequence = ApMon.Sequence()
        let encoded = try ApMon.encode(
            cluster: meeting.cluster, node: meeting.node, parameters: meeting.parameters, password: "pw", instanceID: 0x7fff_0001,
            sequence: &sequence)
        #expect(encoded.datagrams.count > 5)
        #expect(encoded.dropped.isEmpty)
        var names: [String] = []
        for (index, datagram) in encoded.datagrams.enumerated() {
            #expect(datagram.count <= 1440)
            var reader = XDRReader(bytes: datagram)
            let decoded = reader.datagram()
            #expect(reader.offset == datagram.count)
            #expect(decoded.header == "v:2.2.0_conclavep:pw")
            #expect(decoded.instance == 0x7fff_0001)
            #expect(decoded.seq == Int32(index + 1))
            #expect(decoded.cluster == "Conclave_Meetings" && decoded.node == "board")
            names += decoded.parameters.map(\.0)
        }
        #expect(names.count == 3 + 400)
        #expect(names.contains("leg_299_jitter_ms"))
        #expect(Set(names).count == names.count)
    }
}

@Suite struct PrometheusTests {
    @Test func boundsLegSeriesAndEscapesLabels() {
        var big = snapshot(legs: 120)
        big.participants[3].info.name = "quote\" back\\slash\nline"
        let text = PrometheusText.render(big, privacy: PrivacyFilter(mode: .full, secret: []), joinLatency: {
            var histogram = Histogram(bounds: [0.1, 1])
            histogram.observe(0.05)
            histogram.observe(0.5)
            histogram.observe(3)
            return histogram
        }())
        let lossLines = text.split(separator: "\n").filter { $0.hasPrefix("conclave_leg_loss_ratio{") }
        #expect(lossLines.count == PrometheusText.legLimit)
        // The worst by loss come first: leg ids 100+i with i % 7 == 6 lose the most.
        #expect(lossLines.first?.contains("leg=\"106\"") == true)
        #expect(text.contains("nickname=\"quote\\\" back\\\\slash\\nline\"") || !lossLines.contains { $0.contains("leg=\"103\"") })
        #expect(text.contains("conclave_join_latency_seconds_bucket{le=\"0.1\"} 1\n"))
        #expect(text.contains("conclave_join_latency_seconds_bucket{le=\"1\"} 2\n"))
        #expect(text.contains("conclave_join_latency_seconds_bucket{le=\"+Inf\"} 3\n"))
        #expect(text.contains("conclave_join_latency_seconds_count 3\n"))
        #expect(text.contains("# TYPE conclave_participants gauge\nconclave_participants 120\n"))
        #expect(text.components(separatedBy: "# TYPE conclave_leg_loss_ratio").count == 2)  // one family header
    }

    @Test func readsProcStat() {
        let line = "4242 (conclave ) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 12345 123456789 2560 18446744073709551615"
        let usage = ProcessUsage(statLine: line, ticksPerSecond: 100, pageSize: 4096)
        #expect(usage == ProcessUsage(cpuSeconds: 4, residentBytes: 2560 * 4096))
        var meter = CPUMeter()
        #expect(meter.sample(pid: 1, usage: ProcessUsage(cpuSeconds: 1, residentBytes: 0), at: 10) == nil)
        #expect(meter.sample(pid: 1, usage: ProcessUsage(cpuSeconds: 1.5, residentBytes: 0), at: 12) == 25)
    }
}

@Suite struct MonitoringSecretTests {
    @Test func createdOnceKeptAcrossLoadsRotatedAndRefusedWhenOthersCanRead() throws {
        let directory = FilePath("/tmp/conclave-monitoring-secret-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try directory.makeDirectory(permissions: .ownerReadWriteExecute)
        defer { _ = try? FilePath(directory.string + "/" + MonitoringSecret.fileName).removeIfPresent(); rmdir(directory.string) }
        let first = try MonitoringSecret.loadOrCreate(databaseDirectory: directory)
        #expect(first.count == 32)
        #expect(try MonitoringSecret.loadOrCreate(databaseDirectory: directory) == first)  // stable across restarts
        var status = stat()
        stat(directory.appending(MonitoringSecret.fileName).string, &status)
        #expect(status.st_mode & 0o777 == 0o600)
        let rotated = try MonitoringSecret.rotate(databaseDirectory: directory)
        #expect(rotated != first)
        #expect(try MonitoringSecret.loadOrCreate(databaseDirectory: directory) == rotated)
        chmod(directory.appending(MonitoringSecret.fileName).string, 0o644)
        #expect(throws: MonitoringSecret.Failure.self) { try MonitoringSecret.loadOrCreate(databaseDirectory: directory) }
    }
}
