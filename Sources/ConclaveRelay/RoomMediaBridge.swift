internal import CConclaveSocket
import ConclaveSystem
import ConclaveWire
import Glibc
import Synchronization

/// The media side of a room system (`conclave room join`): the room's codec pipeline sends
/// plain RTP/RTCP to `rtpIn` on loopback and receives the meeting's media on `rtpOut`; towards
/// the relay every packet travels protected in a CMF frame of the room's leg. UDP first; when
/// the relay does not answer a probe, the bridge moves to the TCP fallback (RFC 4571 framing)
/// and keeps probing UDP, moving back when it answers.
public final class RoomMediaBridge: Sendable {
    public struct Configuration: Sendable {
        public var leg: LegDescription
        public var relayUDP: PeerAddress
        public var relayTCP: PeerAddress?
        /// Where the room's pipeline sends its RTP (bound here).
        public var rtpIn: PeerAddress
        /// Where the meeting's media is delivered, as plain RTP.
        public var rtpOut: PeerAddress
        /// Start on TCP rather than UDP.
        public var preferTCP: Bool

        public init(leg: LegDescription, relayUDP: PeerAddress, relayTCP: PeerAddress?, rtpIn: PeerAddress, rtpOut: PeerAddress, preferTCP: Bool) {
            self.leg = leg
            self.relayUDP = relayUDP
            self.relayTCP = relayTCP
            self.rtpIn = rtpIn
            self.rtpOut = rtpOut
            self.preferTCP = preferTCP
        }
    }

    /// What the room sees of its leg, for `--json-events`.
    public struct Quality: Sendable, Equatable {
        public var transport = "udp"
        public var packetsSent: UInt64 = 0
        public var packetsReceived: UInt64 = 0
        /// Expected minus received over every stream received (RFC 3550 §6.4.1).
        public var lost: Int64 = 0
        public var lossPercent: Double = 0
        /// Interarrival jitter of the worst stream received (RFC 3550 §6.4.1), milliseconds.
        public var jitterMilliseconds: Double = 0
        /// Round trip to the relay, from the last answered probe.
        public var rttMilliseconds: Double?
        public var authenticationFailures: UInt64 = 0
    }

    fileprivate let state: Mutex<Quality>
    fileprivate let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(true)
    private let configuration: Configuration

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        state = Mutex(Quality(transport: configuration.preferTCP ? "tcp" : "udp"))
    }

    public var quality: Quality { state.withLock { $0 } }

    /// Opens the sockets and starts the bridge's thread; throws if a socket cannot be opened.
    public func start() throws {
        let worker = try Worker(configuration, owner: self)
        finished.store(false, ordering: .releasing)
        try startDetachedThread {
            worker.run()
            self.finished.store(true, ordering: .releasing)
        }
    }

    /// Stops the thread and waits (at most a second) for it to close its sockets.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        for _ in 0..<100 where !finished.load(ordering: .acquiring) { usleep(10_000) }
    }
}

/// The bridge's thread and everything it owns.
private final class Worker: @unchecked Sendable {
    private let configuration: RoomMediaBridge.Configuration
    private let owner: RoomMediaBridge
    private let ciphers: LegCiphers
    private let local: Int32
    private let udp: Int32
    private var tcp: Int32 = -1
    private var tcpPending: [UInt8] = []
    private var overTCP: Bool
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
    private var streams: [UInt32: StreamReception] = [:]
    private var lastUDPAnswer = 0.0
    private var lastProbe = 0.0
    private let startedAt = monotonicSeconds()
    private var sent: UInt64 = 0
    private var received: UInt64 = 0
    private var authenticationFailures: UInt64 = 0
    private var rtt: Double?

    init(_ configuration: RoomMediaBridge.Configuration, owner: RoomMediaBridge) throws {
        self.configuration = configuration
        self.owner = owner
        ciphers = try LegCiphers(configuration.leg.protection, at: .participant)
        overTCP = configuration.preferTCP
        local = try Self.udpSocket(bound: configuration.rtpIn)
        udp = try Self.udpSocket(bound: nil, family: configuration.relayUDP.family)
        if overTCP { try connectTCP() }
    }

    deinit {
        close(local)
        close(udp)
        if tcp >= 0 { close(tcp) }
        buffer.deallocate()
    }

    func run() {
        // An authenticated RTCP packet first, so the relay latches the leg before any media.
        sendHello()
        while !owner.stopping.load(ordering: .acquiring) {
            var descriptors = [pollfd(fd: local, events: Int16(POLLIN), revents: 0), pollfd(fd: udp, events: Int16(POLLIN), revents: 0)]
            if tcp >= 0 { descriptors.append(pollfd(fd: tcp, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&descriptors, nfds_t(descriptors.count), 100)
            if descriptors[0].revents != 0 { forwardLocal() }
            if descriptors[1].revents != 0 { receiveUDP() }
            if descriptors.count > 2, descriptors[2].revents != 0 { receiveTCP() }
            maintainTransport(now: monotonicSeconds())
            publish()
        }
    }

    // MARK: Room → relay

    private func forwardLocal() {
        while true {
            let payload = buffer + MediaFrameHeader.size
            let count = recv(local, payload, 2048, Int32(MSG_DONTWAIT))
            guard count > 0 else { return }
            guard count >= RTPHeaderView.fixedHeaderSize, payload.load(as: UInt8.self) >> 6 == 2 else { continue }  // not RTP/RTCP
            // RFC 5761 §4: payload types 64–95 (with the marker bit: 192–223) are RTCP.
            let isControl = (72...79).contains(payload.load(fromByteOffset: 1, as: UInt8.self) & 0x7f)
            let type = ciphers.frameType(isControl: isControl)
            guard let protectedLength = ciphers.protect(payload, length: count, capacity: 4096 - MediaFrameHeader.size, type: type) else { continue }
            MediaFrameHeader(type: type, legID: configuration.leg.leg, token: configuration.leg.token).write(to: buffer)
            transmit(length: MediaFrameHeader.size + protectedLength, overTCP: overTCP)
            sent &+= 1
        }
    }

    private func sendHello(overTCP viaTCP: Bool? = nil) {
        // An empty receiver report (RFC 3550 §6.4.2) from an SSRC of the leg's own.
        let payload = buffer + MediaFrameHeader.size
        let report: [UInt8] = [0x80, 201, 0, 1] + withUnsafeBytes(of: configuration.leg.leg.bigEndian, Array.init)
        report.withUnsafeBytes { payload.copyMemory(from: $0.baseAddress!, byteCount: report.count) }
        let type = ciphers.frameType(isControl: true)
        guard let length = ciphers.protect(payload, length: report.count, capacity: 4096 - MediaFrameHeader.size, type: type) else { return }
        MediaFrameHeader(type: type, legID: configuration.leg.leg, token: configuration.leg.token).write(to: buffer)
        transmit(length: MediaFrameHeader.size + length, overTCP: viaTCP ?? overTCP)
    }

    /// A keepalive with the echo flag: the relay answers on the transport it has latched.
    private func sendProbe(overTCP viaTCP: Bool, now: Double) {
        MediaFrameHeader(type: .keepalive, flags: MediaFrameHeader.flagEchoRequest, legID: configuration.leg.leg, token: configuration.leg.token)
            .write(to: buffer)
        buffer.storeBytes(of: now.bitPattern.bigEndian, toByteOffset: MediaFrameHeader.size, as: UInt64.self)
        transmit(length: MediaFrameHeader.size + 8, overTCP: viaTCP)
        lastProbe = now
    }

    private func transmit(length: Int, overTCP viaTCP: Bool) {
        if viaTCP, tcp >= 0 {
            var prefix = UInt16(length).bigEndian
            _ = send(tcp, &prefix, 2, Int32(MSG_NOSIGNAL))
            _ = send(tcp, buffer, length, Int32(MSG_NOSIGNAL))
            return
        }
        var storage = sockaddr_in6()
        let addressLength = withUnsafeMutableBytes(of: &storage) { configuration.relayUDP.write(to: $0.baseAddress!) }
        _ = withUnsafeBytes(of: &storage) { sendto(udp, buffer, length, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), addressLength) }
    }

    // MARK: Relay → room

    private func receiveUDP() {
        while true {
            let count = recv(udp, buffer, 4096, Int32(MSG_DONTWAIT))
            guard count > 0 else { return }
            deliver(length: count, viaUDP: true)
        }
    }

    private func receiveTCP() {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(tcp, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard count != 0 else {
            // The relay closed the fallback: back to UDP, which the probe keeps checking.
            close(tcp)
            tcp = -1
            overTCP = false
            return
        }
        guard count > 0 else { return }
        tcpPending += chunk[0..<count]
        var offset = 0
        while tcpPending.count - offset >= 2 {
            let length = Int(tcpPending[offset]) << 8 | Int(tcpPending[offset + 1])
            guard length <= 4096 else {  // a broken stream: start again
                tcpPending = []
                return
            }
            guard tcpPending.count - offset - 2 >= length else { break }
            tcpPending.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + offset + 2, byteCount: length) }
            deliver(length: length, viaUDP: false)
            offset += 2 + length
        }
        tcpPending.removeFirst(offset)
    }

    private func deliver(length: Int, viaUDP: Bool) {
        guard let header = try? MediaFrameHeader(parsing: UnsafeRawBufferPointer(start: buffer, count: length)),
            header.legID == configuration.leg.leg, header.token == configuration.leg.token
        else { return }
        let now = monotonicSeconds()
        if header.type == .keepalive {
            if viaUDP { lastUDPAnswer = now }
            if length >= MediaFrameHeader.size + 8 {
                let sentAt = Double(bitPattern: UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: MediaFrameHeader.size, as: UInt64.self)))
                if sentAt <= now, now - sentAt < 10 { rtt = (now - sentAt) * 1000 }
            }
            return
        }
        let payload = buffer + MediaFrameHeader.size
        guard case .plain(let plainLength) = ciphers.unprotect(payload, length: length - MediaFrameHeader.size, type: header.type) else {
            authenticationFailures &+= 1
            return
        }
        if viaUDP { lastUDPAnswer = now }
        received &+= 1
        if !header.type.isControl, plainLength >= RTPHeaderView.fixedHeaderSize {
            observe(UnsafeRawBufferPointer(start: payload, count: plainLength), now: now)
        }
        var storage = sockaddr_in6()
        let addressLength = withUnsafeMutableBytes(of: &storage) { configuration.rtpOut.write(to: $0.baseAddress!) }
        _ = withUnsafeBytes(of: &storage) { sendto(local, payload, plainLength, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), addressLength) }
    }

    private func observe(_ packet: UnsafeRawBufferPointer, now: Double) {
        let payloadType = packet[1] & 0x7f
        let sequence = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let timestamp = UInt32(packet[4]) << 24 | UInt32(packet[5]) << 16 | UInt32(packet[6]) << 8 | UInt32(packet[7])
        let ssrc = UInt32(packet[8]) << 24 | UInt32(packet[9]) << 16 | UInt32(packet[10]) << 8 | UInt32(packet[11])
        let clockRate = configuration.leg.videoPayloadTypes.contains(payloadType) ? 90_000.0 : 48_000.0
        streams[ssrc, default: StreamReception(ssrc: ssrc, sequence: sequence, clockRate: clockRate)]
            .record(sequence: sequence, timestamp: timestamp, arrival: Int64(now * clockRate))
    }

    // MARK: Transport

    private func maintainTransport(now: Double) {
        if overTCP {
            // Keep trying UDP: an authenticated packet over UDP (which moves the relay's latch
            // there if it arrives), then a probe; an answer over UDP brings the leg back to it.
            if now - lastUDPAnswer < 1.5 {
                overTCP = false
            } else if now - lastProbe >= 5 {
                sendHello(overTCP: false)
                sendProbe(overTCP: false, now: now)
            }
            return
        }
        guard now - lastProbe >= 1 else { return }
        let silent = now - max(lastUDPAnswer, startedAt)
        if silent > 3, configuration.relayTCP != nil, (try? connectTCP()) != nil {
            overTCP = true
            sendHello()
            return
        }
        sendProbe(overTCP: false, now: now)
    }

    private func connectTCP() throws {
        if tcp >= 0 { return }
        guard let address = configuration.relayTCP else { throw RelayError.invalidAddress("no TCP fallback port") }
        let socket = try Self.socket(SOCK_STREAM, family: address.family, address: address, "connect", connect)
        var on: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &on, 4)
        tcp = socket
    }

    private static func udpSocket(bound address: PeerAddress?, family: sa_family_t = sa_family_t(AF_INET)) throws -> Int32 {
        try socket(SOCK_DGRAM, family: address?.family ?? family, address: address, "bind", bind)
    }

    /// A new socket, with `operation` (bind or connect) applied to `address` if one is given.
    private static func socket(
        _ type: __socket_type, family: sa_family_t, address: PeerAddress?, _ name: String,
        _ operation: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) throws -> Int32 {
        let socket = Glibc.socket(Int32(family), Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw RelayError.system("socket", errno) }
        guard let address else { return socket }
        var storage = sockaddr_in6()
        let length = withUnsafeMutableBytes(of: &storage) { address.write(to: $0.baseAddress!) }
        guard withUnsafeBytes(of: &storage, { operation(socket, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }) == 0 else {
            let code = errno
            close(socket)
            throw RelayError.system("\(name) \(address)", code)
        }
        return socket
    }

    private func publish() {
        var lost: UInt64 = 0, expected: UInt64 = 0, jitter = 0.0
        for stream in streams.values {
            lost += stream.lost
            expected += stream.expected
            jitter = max(jitter, stream.jitterSeconds * 1000)
        }
        let snapshot = RoomMediaBridge.Quality(
            transport: overTCP ? "tcp" : "udp", packetsSent: sent, packetsReceived: received, lost: Int64(lost),
            lossPercent: expected > 0 ? Double(lost) * 100 / Double(expected) : 0, jitterMilliseconds: jitter, rttMilliseconds: rtt,
            authenticationFailures: authenticationFailures)
        owner.state.withLock { $0 = snapshot }
    }
}
