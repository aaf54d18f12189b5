import ConclaveSRTP
import ConclaveWire
import Glibc

/// Acts as N participants in M meetings against a relay: sends real SRTP (or scrambled RTP)
/// in CMF frames, receives what the relay forwards, decrypts and checks every packet, and
/// measures one-way latency (it owns both ends, so it timestamps each packet).
public final class LoadGenerator {
    public struct Configuration: Sendable {
        public var relay: PeerAddress
        /// The relay's thread count: meeting `m` is served on `relay.port + m % relayThreads`.
        public var relayThreads = 1
        public var tcpRelay: PeerAddress?
        public var meetings = 1
        public var participants = 2
        public var audioPacketsPerSecond = 50.0
        public var videoPacketsPerSecond = 600.0
        /// RTP packet size (header + payload) before protection.
        public var packetSize = 1200
        public var duration = 5.0
        /// Every leg uses TCP from the start.
        public var tcpOnly = false
        /// The first participant of each meeting moves to TCP at this time, and back to UDP at
        /// `switchToUDP` if set.
        public var switchToTCP: Double?
        public var switchToUDP: Double?
        /// Sends a forged packet, a replay and a hijack attempt from a new address, and checks
        /// that none is forwarded and the victim keeps receiving.
        public var attack = false
        /// Counts what arrives without decrypting it: for benchmarks, where the generator's own
        /// CPU must go to offering load. Loss is still counted; latency and integrity are not.
        public var verify = true
        /// Seconds between RTCP sender reports of each participant (0: only the warm-up RR).
        public var rtcpInterval = 1.0

        public init(relay: PeerAddress) { self.relay = relay }
    }

    public struct Report: Codable, Sendable {
        public var participants = 0
        public var sent: UInt64 = 0
        public var received: UInt64 = 0
        public var expected: UInt64 = 0
        public var lost: UInt64 = 0
        public var duplicated: UInt64 = 0
        public var authFailures: UInt64 = 0
        public var corrupted: UInt64 = 0
        public var receivedOverTCP: UInt64 = 0
        public var rtcpReceived: UInt64 = 0
        public var sentPerSecond = 0.0
        public var receivedPerSecond = 0.0
        public var latencyMilliseconds = Latency()
        public var attack: Attack?

        public struct Latency: Codable, Sendable {
            public var p50 = 0.0
            public var p99 = 0.0
            public var p999 = 0.0
            public var max = 0.0
        }

        public struct Attack: Codable, Sendable {
            public var victimLeg: UInt32 = 0
            public var forgedSent = 0
            public var replaysSent = 0
            public var hijacksSent = 0
            /// Datagrams the attacker's socket got back: must stay 0 (the latch did not move).
            public var attackerReceived = 0
        }
    }

    /// The marker every generated payload starts with; it must never be visible on the wire.
    public static let plaintextMarker: [UInt8] = Array("CONCLAVE-PLAIN!!".utf8)
    static let payloadHeaderSize = 16 + 4 + 4 + 8  // marker, sender leg, serial, send time

    private let configuration: Configuration
    private let participants: [Participant]
    private let batch = DatagramBatch(capacity: 64, bufferSize: 2048)
    private var histogram = [UInt32](repeating: 0, count: 100_001)  // microseconds, last = overflow
    private var report = Report()

    public init(legs: LegsFile, configuration: Configuration) throws {
        self.configuration = configuration
        precondition(configuration.packetSize >= RTPHeaderView.fixedHeaderSize + Self.payloadHeaderSize)
        let meetings = legs.meetings.prefix(configuration.meetings)
        guard meetings.count == configuration.meetings else {
            throw RelayError.invalidLegsFile("it has \(legs.meetings.count) meetings, \(configuration.meetings) asked for")
        }
        var participants: [Participant] = []
        for meeting in meetings {
            guard meeting.legs.count >= configuration.participants else {
                throw RelayError.invalidLegsFile("meeting \(meeting.id) has \(meeting.legs.count) legs, \(configuration.participants) asked for")
            }
            var relay = configuration.relay
            relay = relay.withPort(relay.port + UInt16(Int(meeting.id) % configuration.relayThreads))
            for (index, leg) in meeting.legs.prefix(configuration.participants).enumerated() {
                participants.append(try Participant(leg, relay: relay, isFirstOfMeeting: index == 0))
            }
        }
        self.participants = participants
        report.participants = participants.count
    }

    deinit {
        for participant in participants { participant.close() }
    }

    public func run() throws -> Report {
        if configuration.tcpOnly {
            for participant in participants { try participant.useTCP(configuration.tcpRelay) }
        }
        // Warm-up: one RTCP packet per leg latches it at the relay; it is not counted.
        for participant in participants { try participant.sendControl(senderReport: false, now: monotonicSeconds()) }
        receive(until: monotonicSeconds() + 0.3, counting: false)

        let start = monotonicSeconds()
        var lastControl = start
        var attacker: Int32?
        var switchedToTCP = false, switchedToUDP = false
        var nextTick = start + Self.tick
        while true {
            let now = monotonicSeconds()
            let elapsed = now - start
            if elapsed >= configuration.duration { break }
            if let at = configuration.switchToTCP, !switchedToTCP, elapsed >= at {
                switchedToTCP = true
                for participant in participants where participant.isFirstOfMeeting { try participant.useTCP(configuration.tcpRelay) }
            }
            if let at = configuration.switchToUDP, !switchedToUDP, elapsed >= at {
                switchedToUDP = true
                for participant in participants where participant.isFirstOfMeeting { participant.useUDP() }
            }
            if configuration.attack, attacker == nil, elapsed >= min(0.2, configuration.duration / 4) {
                attacker = try attack()
            }
            var sent = 0
            for participant in participants {
                sent += try participant.sendDue(
                    elapsed: elapsed, audioRate: configuration.audioPacketsPerSecond,
                    videoRate: configuration.videoPacketsPerSecond, size: configuration.packetSize, batch: batch)
            }
            if configuration.rtcpInterval > 0 && now - lastControl >= configuration.rtcpInterval {
                lastControl = now
                for participant in participants { try participant.sendControl(senderReport: true, now: now) }
            }
            // Packets are paced in 1 ms ticks; until the next one, receive. A generator that is
            // behind (sent a full batch) only takes what is already queued.
            let afterSending = monotonicSeconds()
            if nextTick <= afterSending { nextTick = afterSending + Self.tick }
            receiveReady(timeout: sent >= batch.capacity ? 0 : nextTick - afterSending, counting: true)
        }
        let sendingTime = monotonicSeconds() - start
        receive(until: monotonicSeconds() + 0.5, counting: true)
        if let attacker {
            report.attack?.attackerReceived = drain(attacker)
            Glibc.close(attacker)
        }
        return finish(sendingTime: sendingTime)
    }

    static let tick = 0.001

    // MARK: Receiving

    private func receive(until deadline: Double, counting: Bool) {
        while true {
            let left = deadline - monotonicSeconds()
            if left <= 0 { return }
            receiveReady(timeout: min(left, 0.05), counting: counting)
        }
    }

    /// Waits up to `timeout` seconds for any participant's socket to be readable (one `poll`
    /// over all of them), then drains every readable socket.
    private func receiveReady(timeout: Double, counting: Bool) {
        var descriptors = pollDescriptors()
        let ready = poll(&descriptors, nfds_t(descriptors.count), Int32((timeout * 1000).rounded(.up)))
        guard ready > 0 else { return }
        for (index, participant) in participants.enumerated() where descriptors[2 * index].revents != 0 {
            while true {
                let count = (try? batch.receive(from: participant.udpSocket)) ?? 0
                let now = monotonicSeconds()
                if !configuration.verify {
                    if counting { report.received += UInt64(count) }
                } else {
                    for slot in 0..<count {
                        handle(batch.buffer(slot), length: batch.receivedLength(slot), at: participant, now: now, counting: counting)
                    }
                }
                if count < batch.capacity { break }
            }
        }
        for (index, participant) in participants.enumerated() where descriptors[2 * index + 1].revents != 0 {
            let now = monotonicSeconds()
            _ = participant.receiveTCP { frame, length in
                handle(frame, length: length, at: participant, now: now, counting: counting)
                if counting { report.receivedOverTCP += 1 }
            }
        }
    }

    /// Two entries per participant: its UDP socket and its TCP connection (-1, ignored, if none).
    private func pollDescriptors() -> [pollfd] {
        participants.flatMap { participant in
            [pollfd(fd: participant.udpSocket, events: Int16(POLLIN), revents: 0),
             pollfd(fd: participant.tcpDescriptor, events: Int16(POLLIN), revents: 0)]
        }
    }

    private func handle(_ frame: UnsafeMutableRawPointer, length: Int, at participant: Participant, now: Double, counting: Bool) {
        guard let header = try? MediaFrameHeader(parsing: UnsafeRawBufferPointer(start: frame, count: length)),
            header.legID == participant.leg.leg, header.token == participant.leg.token
        else {
            if counting { report.corrupted += 1 }
            return
        }
        let payload = frame + MediaFrameHeader.size
        guard let plainLength = participant.unprotect(payload, length: length - MediaFrameHeader.size, type: header.type) else {
            if counting && header.type != .keepalive { report.authFailures += 1 }
            return
        }
        if header.type.isControl {
            if counting { report.rtcpReceived += 1 }
            participant.observeControl(UnsafeRawBufferPointer(start: payload, count: plainLength), now: now)
            return
        }
        guard counting else { return }
        guard let rtp = try? RTPHeaderView(UnsafeRawBufferPointer(start: payload, count: plainLength)),
            rtp.payloadLength >= Self.payloadHeaderSize
        else {
            report.corrupted += 1
            return
        }
        let body = payload + rtp.headerLength
        let marker = UnsafeRawBufferPointer(start: body, count: 16)
        guard marker.elementsEqual(Self.plaintextMarker) else {
            report.corrupted += 1
            return
        }
        let sender = UInt32(bigEndian: body.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        let serial = UInt32(bigEndian: body.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        let sentAt = UInt64(bigEndian: body.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        guard participant.markReceived(sender: sender, serial: serial) else {
            report.duplicated += 1
            return
        }
        report.received += 1
        let latency = Int((now * 1e9 - Double(sentAt)) / 1000)
        histogram[max(0, min(latency, histogram.count - 1))] += 1
    }

    private func drain(_ socket: Int32) -> Int {
        var received = 0
        while (try? batch.receive(from: socket)).map({ $0 > 0 }) == true { received += 1 }
        return received
    }

    // MARK: Attacks

    /// Forged tag and replay from the victim's own address, then a forged and a replayed
    /// packet from a new address. Returns the attacker's socket (checked for traffic at the end).
    private func attack() throws -> Int32 {
        guard let victim = participants.first, let captured = victim.lastSentFrame, victim.leg.protection.mode == .srtp else {
            throw RelayError.invalidLegsFile("the attack needs an SRTP participant that has sent")
        }
        var attack = Report.Attack()
        attack.victimLeg = victim.leg.leg
        // A sequence number the relay has not seen (so the replay check passes) and a broken tag.
        var forged = captured
        forged[MediaFrameHeader.size + 2] ^= 0x40
        forged[forged.count - 1] ^= 0x55
        victim.sendRaw(forged)
        attack.forgedSent += 1
        victim.sendRaw(captured)
        attack.replaysSent += 1

        let attacker = try Participant.openUDPSocket()
        for datagram in [forged, captured] {
            _ = datagram.withUnsafeBytes { bytes in
                var address = sockaddr_in6()
                let length = withUnsafeMutableBytes(of: &address) { victim.relay.write(to: $0.baseAddress!) }
                return withUnsafeBytes(of: &address) {
                    sendto(attacker, bytes.baseAddress, bytes.count, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
                }
            }
            attack.hijacksSent += 1
        }
        report.attack = attack
        return attacker
    }

    // MARK: Report

    private func finish(sendingTime: Double) -> Report {
        var report = self.report
        report.sent = participants.reduce(0) { $0 + $1.sentMedia }
        for participant in participants {
            let others = participants.filter { $0.leg.meeting == participant.leg.meeting && $0 !== participant }
            report.expected += others.reduce(0) { $0 + $1.sentMedia }
        }
        report.lost = report.expected > report.received ? report.expected - report.received : 0
        report.sentPerSecond = Double(report.sent) / sendingTime
        report.receivedPerSecond = Double(report.received) / sendingTime
        let total = histogram.reduce(0) { $0 + UInt64($1) }
        func percentile(_ fraction: Double) -> Double {
            guard total > 0 else { return 0 }
            let rank = UInt64((Double(total) * fraction).rounded(.up))
            var seen: UInt64 = 0
            for (microseconds, count) in histogram.enumerated() {
                seen += UInt64(count)
                if seen >= rank { return Double(microseconds) / 1000 }
            }
            return Double(histogram.count - 1) / 1000
        }
        report.latencyMilliseconds = .init(
            p50: percentile(0.5), p99: percentile(0.99), p999: percentile(0.999), max: percentile(1))
        return report
    }
}
