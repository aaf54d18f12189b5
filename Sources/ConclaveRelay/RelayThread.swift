internal import CConclaveSocket
import ConclaveSRTP
import ConclaveWire
import Glibc
import Synchronization

/// Work handed to a relay thread from outside it. Every leg and meeting change goes through
/// here, so only the owning thread ever touches a leg or its SRTP contexts.
enum RelayCommand: @unchecked Sendable {
    case addMeeting(UInt32, MediaMode)
    case removeMeeting(UInt32)
    case addLeg(MediaLeg)
    case removeLeg(UInt32)
    case tcpFrame([UInt8], TCPMediaConnection)
    case tcpClosed(TCPMediaConnection)
    case snapshot(@Sendable ([LegSnapshot], RelayCounters, [UInt32]?) -> Void)
}

/// Relay-wide counts of datagrams that never reached a leg.
public struct RelayCounters: Sendable, Equatable, Codable {
    public var received: UInt64 = 0
    public var forwarded: UInt64 = 0
    public var malformed: UInt64 = 0
    public var unknownLeg: UInt64 = 0
    /// With residence measurement on: how long datagrams spent in the relay, from the kernel's
    /// receive timestamp to the return of the `sendmmsg` that forwarded them (microseconds).
    public var residenceSamples: UInt64?
    public var residenceP50Microseconds: Int?
    public var residenceP99Microseconds: Int?
    public var residenceP999Microseconds: Int?

    public init() {}

    static func + (left: RelayCounters, right: RelayCounters) -> RelayCounters {
        var sum = left
        sum.received += right.received
        sum.forwarded += right.forwarded
        sum.malformed += right.malformed
        sum.unknownLeg += right.unknownLeg
        return sum
    }
}

/// One forwarding thread: owns a UDP socket, the meetings sharded to it and all their legs.
/// Receives with `recvmmsg`, forwards hop by hop, sends with `sendmmsg`; preallocated, no
/// locks and no allocation per packet.
final class RelayThread: @unchecked Sendable {
    static let batchSize = 64
    static let bufferSize = 2048

    let index: Int
    let socket: Int32
    /// Microsecond buckets of residence time (last bucket: 10 ms or more), when measured.
    static let residenceBuckets = 10_001
    private let residence: UnsafeMutablePointer<UInt32>?
    private var legs: [UInt32: MediaLeg] = [:]
    private var meetings: [UInt32: Meeting] = [:]
    private var counters = RelayCounters()
    private let inbound = DatagramBatch(capacity: RelayThread.batchSize, bufferSize: RelayThread.bufferSize)
    private let outbound = DatagramBatch(capacity: RelayThread.batchSize * 4, bufferSize: RelayThread.bufferSize)
    private let scratch = UnsafeMutableRawPointer.allocate(byteCount: RelayThread.bufferSize, alignment: 16)
    private let tcpFrame = UnsafeMutableRawPointer.allocate(byteCount: RelayThread.bufferSize, alignment: 16)
    private let inbox = Mutex<[RelayCommand]>([])
    private let pending = Atomic<Int>(0)
    private let running = Atomic<Bool>(true)
    private let wakeup: Int32
    private var thread: pthread_t?

    init(index: Int, socket: Int32, measureResidence: Bool) throws(RelayError) {
        self.index = index
        self.socket = socket
        if measureResidence {
            guard conclave_enable_receive_timestamps(socket) == 0 else { throw .system("setsockopt(SO_TIMESTAMPNS)", errno) }
            residence = .allocate(capacity: Self.residenceBuckets)
            residence!.initialize(repeating: 0, count: Self.residenceBuckets)
        } else {
            residence = nil
        }
        wakeup = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeup >= 0 else { throw .system("eventfd", errno) }
    }

    deinit {
        residence?.deallocate()
        scratch.deallocate()
        tcpFrame.deallocate()
        close(wakeup)
    }

    // MARK: Control (any thread)

    func send(_ command: RelayCommand) {
        inbox.withLock { $0.append(command) }
        pending.add(1, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }

    func start() throws(RelayError) {
        let box = Unmanaged.passRetained(self)
        var handle = pthread_t()
        let status = pthread_create(&handle, nil, { context in
            let thread = Unmanaged<RelayThread>.fromOpaque(context!).takeRetainedValue()
            thread.run()
            return nil
        }, box.toOpaque())
        guard status == 0 else {
            box.release()
            throw .system("pthread_create", status)
        }
        thread = handle
    }

    /// Asks the thread to finish its current batch and stop, and waits for it.
    func stop() {
        running.store(false, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    // MARK: The thread

    private func run() {
        while running.load(ordering: .acquiring) {
            if pending.load(ordering: .acquiring) > 0 { drainInbox() }
            let received: Int
            do { received = try inbound.receive(from: socket, timestamps: residence != nil) } catch { received = 0 }
            if received > 0 {
                let now = monotonicSeconds()
                for slot in 0..<received {
                    guard let source = inbound.source(slot) else { continue }
                    handleFrame(inbound.buffer(slot), length: inbound.receivedLength(slot), from: .udp(source), now: now)
                }
                counters.received &+= UInt64(received)
                flushOutbound()
                if let residence { recordResidence(of: received, into: residence) }
                continue
            }
            waitForWork()
        }
        drainInbox()
    }

    private func waitForWork() {
        var descriptors = (
            pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0))
        _ = withUnsafeMutableBytes(of: &descriptors) { raw in
            poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, 200)
        }
        if descriptors.1.revents != 0 {
            var value: UInt64 = 0
            _ = read(wakeup, &value, 8)
        }
    }

    private func drainInbox() {
        let commands = inbox.withLock { commands in
            defer { commands.removeAll(keepingCapacity: true) }
            return commands
        }
        pending.subtract(commands.count, ordering: .releasing)
        for command in commands { apply(command) }
    }

    private func apply(_ command: RelayCommand) {
        switch command {
        case .addMeeting(let id, let mode):
            if meetings[id] == nil { meetings[id] = Meeting(id: id, mode: mode) }
        case .removeMeeting(let id):
            guard let meeting = meetings.removeValue(forKey: id) else { return }
            for leg in meeting.legs { legs[leg.id] = nil }
        case .addLeg(let leg):
            let meeting = meetings[leg.meetingID] ?? Meeting(id: leg.meetingID, mode: leg.mode)
            meetings[leg.meetingID] = meeting
            meeting.legs.append(leg)
            legs[leg.id] = leg
        case .removeLeg(let id):
            guard let leg = legs.removeValue(forKey: id) else { return }
            meetings[leg.meetingID]?.legs.removeAll { $0 === leg }
        case .tcpFrame(let frame, let connection):
            let length = min(frame.count, Self.bufferSize)
            frame.withUnsafeBytes { scratch.copyMemory(from: $0.baseAddress!, byteCount: length) }
            counters.received &+= 1
            handleFrame(scratch, length: length, from: .tcp(connection), now: monotonicSeconds())
            flushOutbound()
        case .tcpClosed(let connection):
            for leg in legs.values {
                if case .tcp(let latched) = leg.transport, latched === connection { leg.transport = .unlatched }
            }
        case .snapshot(let reply):
            reply(legs.values.map { $0.snapshot() }, counters, residence.map { Array(UnsafeBufferPointer(start: $0, count: Self.residenceBuckets)) })
        }
    }

    // MARK: The hot path

    /// One CMF frame in place at `frame`: authenticate, account, forward to the meeting.
    private func handleFrame(_ frame: UnsafeMutableRawPointer, length: Int, from source: LegTransport, now: Double) {
        let header: MediaFrameHeader
        do { header = try MediaFrameHeader(parsing: UnsafeRawBufferPointer(start: frame, count: length)) } catch {
            counters.malformed &+= 1
            return
        }
        guard let leg = legs[header.legID] else {
            counters.unknownLeg &+= 1
            return
        }
        // The token is compared in full; it is the only authentication of encapsulated frames.
        guard leg.token ^ header.token == 0 else {
            leg.statistics.authenticationFailures &+= 1
            return
        }
        let payload = frame + MediaFrameHeader.size
        var payloadLength = length - MediaFrameHeader.size
        if header.type == .keepalive {
            if isLatched(leg, to: source) || leg.mode == .encapsulated {
                latch(leg, to: source)
                if header.flags & MediaFrameHeader.flagEchoRequest != 0 { echo(frame, length: length, to: leg) }
            }
            return
        }
        switch leg.ciphers.unprotect(payload, length: payloadLength, type: header.type) {
        case .plain(let plainLength):
            payloadLength = plainLength
        case .replayed:
            leg.statistics.replays &+= 1
            return
        case .rejected:
            leg.statistics.authenticationFailures &+= 1
            return
        }
        latch(leg, to: source)
        leg.statistics.packetsIn &+= 1
        leg.statistics.bytesIn &+= UInt64(length)

        var dscp = MediaKind.video.dscp
        if header.type.isControl {
            observeRTCP(UnsafeRawBufferPointer(start: payload, count: payloadLength), from: leg, now: now)
        } else if let rtp = try? RTPHeaderView(UnsafeRawBufferPointer(start: payload, count: payloadLength)) {
            let kind = leg.kind(ofPayloadType: rtp.payloadType)
            dscp = kind.dscp
            leg.recordReception(rtp, kind: kind, now: now)
        }
        guard let meeting = meetings[leg.meetingID] else { return }
        forward(payload, length: payloadLength, type: header.type, from: leg, in: meeting, dscp: dscp)
    }

    private func forward(
        _ payload: UnsafeRawPointer, length: Int, type: MediaFrameType, from sender: MediaLeg, in meeting: Meeting,
        dscp: UInt8
    ) {
        let room = Self.bufferSize - MediaFrameHeader.size
        for receiver in meeting.legs where receiver !== sender {
            let destination: PeerAddress
            switch receiver.transport {
            case .unlatched:
                continue
            case .tcp(let connection):
                forwardOverTCP(payload, length: length, type: type, to: receiver, connection: connection)
                continue
            case .udp(let address):
                destination = address
            }
            if outbound.nextSlot() == nil { flushOutbound() }
            let frame = outbound.buffer(outbound.count)
            MediaFrameHeader(type: type, legID: receiver.id, token: receiver.token).write(to: frame)
            let body = frame + MediaFrameHeader.size
            body.copyMemory(from: payload, byteCount: length)
            guard let protectedLength = receiver.ciphers.protect(body, length: length, capacity: room, type: type) else {
                receiver.statistics.sendDrops &+= 1
                continue
            }
            outbound.commit(length: MediaFrameHeader.size + protectedLength, to: destination, dscp: dscp)
            receiver.statistics.packetsOut &+= 1
            receiver.statistics.bytesOut &+= UInt64(MediaFrameHeader.size + protectedLength)
        }
    }

    /// The TCP fallback path: builds the frame in its own buffer and hands a copy to the
    /// connection's event loop.
    private func forwardOverTCP(
        _ payload: UnsafeRawPointer, length: Int, type: MediaFrameType, to receiver: MediaLeg,
        connection: TCPMediaConnection
    ) {
        let frame = tcpFrame
        MediaFrameHeader(type: type, legID: receiver.id, token: receiver.token).write(to: frame)
        let body = frame + MediaFrameHeader.size
        body.copyMemory(from: payload, byteCount: length)
        let room = Self.bufferSize - MediaFrameHeader.size
        guard let protectedLength = receiver.ciphers.protect(body, length: length, capacity: room, type: type),
            connection.send(UnsafeRawBufferPointer(start: frame, count: MediaFrameHeader.size + protectedLength))
        else {
            receiver.statistics.sendDrops &+= 1
            return
        }
        receiver.statistics.packetsOut &+= 1
        receiver.statistics.bytesOut &+= UInt64(MediaFrameHeader.size + protectedLength)
    }

    private func echo(_ frame: UnsafeMutableRawPointer, length: Int, to leg: MediaLeg) {
        switch leg.transport {
        case .unlatched: return
        case .tcp(let connection): _ = connection.send(UnsafeRawBufferPointer(start: frame, count: length))
        case .udp(let address):
            if outbound.nextSlot() == nil { flushOutbound() }
            outbound.buffer(outbound.count).copyMemory(from: frame, byteCount: length)
            outbound.commit(length: length, to: address, dscp: MediaKind.audio.dscp)
        }
    }

    /// After the batch's `sendmmsg`: the time since the kernel received each of its datagrams.
    private func recordResidence(of received: Int, into histogram: UnsafeMutablePointer<UInt32>) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        for slot in 0..<received {
            let stamp = inbound.receiveTimestamp(slot)
            guard stamp > 0 else { continue }
            let microseconds = Int(max(0, nanoseconds - stamp) / 1000)
            histogram[min(microseconds, Self.residenceBuckets - 1)] &+= 1
        }
    }

    private func flushOutbound() {
        guard outbound.count > 0 else { return }
        let attempted = outbound.count
        let dropped = outbound.flush(to: socket)
        counters.forwarded &+= UInt64(attempted - dropped)
    }

    // MARK: Latching

    private func isLatched(_ leg: MediaLeg, to source: LegTransport) -> Bool {
        switch (leg.transport, source) {
        case (.udp(let latched), .udp(let address)): latched == address
        case (.tcp(let latched), .tcp(let connection)): latched === connection
        default: false
        }
    }

    /// Only called after the frame authenticated: an unauthenticated packet never moves a latch.
    private func latch(_ leg: MediaLeg, to source: LegTransport) {
        if !isLatched(leg, to: source) { leg.transport = source }
    }

    // MARK: RTCP

    /// Reads sender and receiver reports for RTT and reported loss (RFC 3550 §6.4).
    private func observeRTCP(_ packet: UnsafeRawBufferPointer, from leg: MediaLeg, now: Double) {
        guard let packets = try? RTCPPacket.parseCompound(packet) else { return }
        guard let meeting = meetings[leg.meetingID] else { return }
        for case .senderReport(let report) in packets {
            leg.lastSenderReport = (report.ssrc, report.compactNTPTimestamp, now)
        }
        for packet in packets {
            let blocks: [RTCPReportBlock] = switch packet {
            case .senderReport(let report): report.reportBlocks
            case .receiverReport(let report): report.reportBlocks
            case .other: []
            }
            for block in blocks {
                leg.statistics.reportedLossFraction = Double(block.fractionLost) / 256
                guard block.lastSenderReport != 0 else { continue }
                for sender in meeting.legs where sender !== leg {
                    guard let report = sender.lastSenderReport, report.ssrc == block.ssrc,
                        report.ntpMiddle == block.lastSenderReport
                    else { continue }
                // Relay got the SR at `arrival`, the receiver held it DLSR, the RR arrived `now`.
                    let delay = Double(block.delaySinceLastSenderReport) / 65536
                    leg.statistics.roundTripMilliseconds = max(0, now - report.arrival - delay) * 1000
                }
            }
        }
    }
}

/// Seconds on the monotonic clock.
@inline(__always) func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
