internal import CConclaveSocket
import ConclaveSRTP
import ConclaveWire
import Glibc

/// One simulated participant of the load generator: its leg's client side.
final class Participant {
    let leg: LegDescription
    let relay: PeerAddress
    let isFirstOfMeeting: Bool
    let udpSocket: Int32
    private var tcpSocket: Int32 = -1
    var tcpDescriptor: Int32 { tcpSocket }
    private var tcpPending: [UInt8] = []
    private var sendOverTCP = false
    private let ciphers: LegCiphers
    private let audioSSRC: UInt32
    private let videoSSRC: UInt32
    private var audioSequence: UInt16 = 0
    private var videoSequence: UInt16 = 0
    private var audioSent: UInt64 = 0
    private var videoSent: UInt64 = 0
    private var serial: UInt32 = 0
    private(set) var sentMedia: UInt64 = 0
    private var octetsSent: UInt64 = 0
    private(set) var lastSentFrame: [UInt8]?
    /// Serials received from each other participant, as bit sets (duplicates are detected).
    private var receivedSerials: [UInt32: [UInt64]] = [:]
    /// The last SR seen from each SSRC: its compact NTP time and when it arrived here.
    private var senderReports: [UInt32: (compactNTP: UInt32, arrival: Double)] = [:]
    private let frame = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)

    init(_ leg: LegDescription, relay: PeerAddress, isFirstOfMeeting: Bool) throws {
        self.leg = leg
        self.relay = relay
        self.isFirstOfMeeting = isFirstOfMeeting
        ciphers = try LegCiphers(leg.protection, at: .participant)
        // Random SSRCs (RFC 3550 §8.1): a second run with the same keys is a new stream, not a replay.
        audioSSRC = UInt32.random(in: 1...UInt32.max)
        videoSSRC = audioSSRC ^ 0x5a5a_5a5a
        udpSocket = try Self.openUDPSocket()
    }

    deinit { frame.deallocate() }

    func close() {
        Glibc.close(udpSocket)
        if tcpSocket >= 0 { Glibc.close(tcpSocket) }
    }

    static func openUDPSocket() throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw RelayError.system("socket", errno) }
        var size: Int32 = 4 << 20
        setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, 4)
        setsockopt(socket, SOL_SOCKET, SO_SNDBUF, &size, 4)
        return socket
    }

    // MARK: Transport

    func useTCP(_ address: PeerAddress?) throws {
        guard let address else { throw RelayError.invalidAddress("no TCP relay address given") }
        if tcpSocket < 0 {
            let socket = Glibc.socket(Int32(address.family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard socket >= 0 else { throw RelayError.system("socket", errno) }
            var storage = sockaddr_in6()
            let length = withUnsafeMutableBytes(of: &storage) { address.write(to: $0.baseAddress!) }
            let connected = withUnsafeBytes(of: &storage) {
                connect(socket, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
            }
            guard connected == 0 else {
                let code = errno
                Glibc.close(socket)
                throw RelayError.system("connect \(address)", code)
            }
            var on: Int32 = 1
            setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &on, 4)
            tcpSocket = socket
        }
        sendOverTCP = true
    }

    func useUDP() { sendOverTCP = false }

    /// Sends one frame on the current transport.
    private func transmit(_ frame: UnsafeRawPointer, length: Int) {
        if sendOverTCP {
            var prefix = UInt16(length).bigEndian
            _ = send(tcpSocket, &prefix, 2, Int32(MSG_NOSIGNAL))
            _ = send(tcpSocket, frame, length, Int32(MSG_NOSIGNAL))
            return
        }
        var storage = sockaddr_in6()
        let addressLength = withUnsafeMutableBytes(of: &storage) { relay.write(to: $0.baseAddress!) }
        _ = withUnsafeBytes(of: &storage) {
            sendto(udpSocket, frame, length, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), addressLength)
        }
    }

    func sendRaw(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { transmit($0.baseAddress!, length: $0.count) }
    }

    /// Reads what the TCP connection has and calls `body` per complete frame.
    func receiveTCP(_ body: (UnsafeMutableRawPointer, Int) -> Void) -> Int {
        guard tcpSocket >= 0 else { return 0 }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(tcpSocket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard count > 0 else { return 0 }
        tcpPending += chunk[0..<count]
        var frames = 0
        var offset = 0
        while tcpPending.count - offset >= 2 {
            let length = Int(tcpPending[offset]) << 8 | Int(tcpPending[offset + 1])
            guard tcpPending.count - offset - 2 >= length, length <= 2048 else { break }
            tcpPending.withUnsafeBytes { frame.copyMemory(from: $0.baseAddress! + offset + 2, byteCount: length) }
            body(frame, length)
            offset += 2 + length
            frames += 1
        }
        tcpPending.removeFirst(offset)
        return frames
    }

    // MARK: Sending

    /// Sends the audio and video packets due by `elapsed`; returns how many (at most a batch).
    func sendDue(elapsed: Double, audioRate: Double, videoRate: Double, size: Int, batch: DatagramBatch) throws -> Int {
        let audioDue = max(0, Int64(elapsed * audioRate) - Int64(audioSent))
        let videoDue = max(0, Int64(elapsed * videoRate) - Int64(videoSent))
        var budget = min(Int(audioDue + videoDue), batch.capacity)
        var sent = 0
        var audioLeft = Int(audioDue)
        while budget > 0 {
            let isAudio = audioLeft > 0
            if isAudio { audioLeft -= 1 }
            let slot = sendOverTCP ? nil : batch.nextSlot()
            let buffer = slot.map { batch.buffer($0) } ?? frame
            let length = buildMedia(into: buffer, isAudio: isAudio, size: size)
            if slot != nil {
                batch.commit(length: length, to: relay, dscp: isAudio ? 46 : 34)
            } else {
                transmit(buffer, length: length)
            }
            if isAudio { audioSent += 1 } else { videoSent += 1 }
            if lastSentFrame == nil || serial % 256 == 0 {
                lastSentFrame = Array(UnsafeRawBufferPointer(start: buffer, count: length))
            }
            budget -= 1
            sent += 1
        }
        _ = batch.flush(to: udpSocket)
        return sent
    }

    /// Writes a CMF frame carrying one protected RTP packet; returns its length.
    private func buildMedia(into buffer: UnsafeMutableRawPointer, isAudio: Bool, size: Int) -> Int {
        let type = ciphers.frameType(isControl: false)
        MediaFrameHeader(type: type, legID: leg.leg, token: leg.token).write(to: buffer)
        let rtp = buffer + MediaFrameHeader.size
        let sequence: UInt16
        if isAudio { audioSequence &+= 1; sequence = audioSequence } else { videoSequence &+= 1; sequence = videoSequence }
        serial &+= 1
        let now = monotonicSeconds()
        rtp.storeBytes(of: 0x80, as: UInt8.self)  // V=2
        rtp.storeBytes(of: isAudio ? leg.audioPayloadTypes.first ?? 111 : leg.videoPayloadTypes.first ?? 96, toByteOffset: 1, as: UInt8.self)
        rtp.storeBytes(of: sequence.bigEndian, toByteOffset: 2, as: UInt16.self)
        rtp.storeBytes(of: UInt32(truncatingIfNeeded: Int64(now * (isAudio ? 48_000 : 90_000))).bigEndian, toByteOffset: 4, as: UInt32.self)
        rtp.storeBytes(of: (isAudio ? audioSSRC : videoSSRC).bigEndian, toByteOffset: 8, as: UInt32.self)
        let body = rtp + RTPHeaderView.fixedHeaderSize
        LoadGenerator.plaintextMarker.withUnsafeBytes { body.copyMemory(from: $0.baseAddress!, byteCount: 16) }
        body.storeBytes(of: leg.leg.bigEndian, toByteOffset: 16, as: UInt32.self)
        body.storeBytes(of: serial.bigEndian, toByteOffset: 20, as: UInt32.self)
        body.storeBytes(of: UInt64(now * 1e9).bigEndian, toByteOffset: 24, as: UInt64.self)
        let filled = RTPHeaderView.fixedHeaderSize + LoadGenerator.payloadHeaderSize
        (body + LoadGenerator.payloadHeaderSize).initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: serial), count: size - filled)
        let protectedLength = protect(rtp, length: size, type: type)
        sentMedia += 1
        octetsSent += UInt64(size)
        return MediaFrameHeader.size + protectedLength
    }

    private func protect(_ packet: UnsafeMutableRawPointer, length: Int, type: MediaFrameType) -> Int {
        // A fresh sequence number per packet and room for the trailer: refusal would be a bug.
        guard let protectedLength = ciphers.protect(packet, length: length, capacity: 2048 - MediaFrameHeader.size, type: type) else {
            preconditionFailure("a participant's own packet did not protect")
        }
        return protectedLength
    }

    /// An RTCP compound packet: SR (or RR during warm-up) with a report block per SR received.
    func sendControl(senderReport: Bool, now: Double) throws {
        let blocks = senderReports.map { ssrc, report in
            RTCPReportBlock(
                ssrc: ssrc, fractionLost: 0, cumulativeLost: 0, extendedHighestSequenceNumber: 0, jitter: 0,
                lastSenderReport: report.compactNTP,
                delaySinceLastSenderReport: UInt32(clamping: Int64((now - report.arrival) * 65536)))
        }
        let ntp = UInt64(now * 65536) << 16  // a monotonic stand-in for NTP time: only differences matter
        let packet = senderReport
            ? RTCPSenderReport(
                ssrc: audioSSRC, ntpTimestamp: ntp, rtpTimestamp: UInt32(truncatingIfNeeded: Int64(now * 48_000)),
                packetCount: UInt32(truncatingIfNeeded: sentMedia), octetCount: UInt32(truncatingIfNeeded: octetsSent),
                reportBlocks: Array(blocks.prefix(31))).encoded()
            : RTCPReceiverReport(ssrc: audioSSRC, reportBlocks: Array(blocks.prefix(31))).encoded()
        let type = ciphers.frameType(isControl: true)
        MediaFrameHeader(type: type, legID: leg.leg, token: leg.token).write(to: frame)
        packet.withUnsafeBytes { (frame + MediaFrameHeader.size).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let length = protect(frame + MediaFrameHeader.size, length: packet.count, type: type)
        transmit(frame, length: MediaFrameHeader.size + length)
    }

    // MARK: Receiving

    /// Unprotects in place; nil if the packet does not authenticate (or is a keepalive).
    func unprotect(_ payload: UnsafeMutableRawPointer, length: Int, type: MediaFrameType) -> Int? {
        guard case .plain(let plainLength) = ciphers.unprotect(payload, length: length, type: type) else { return nil }
        return plainLength
    }

    func observeControl(_ packet: UnsafeRawBufferPointer, now: Double) {
        guard let packets = try? RTCPPacket.parseCompound(packet) else { return }
        for case .senderReport(let report) in packets {
            senderReports[report.ssrc] = (report.compactNTPTimestamp, now)
        }
    }

    /// Records `serial` from `sender`; false if it was already received (a duplicate).
    func markReceived(sender: UInt32, serial: UInt32) -> Bool {
        let word = Int(serial / 64)
        let bit = UInt64(1) << UInt64(serial % 64)
        var words = receivedSerials[sender] ?? []
        receivedSerials[sender] = nil  // keep the array uniquely referenced while it grows
        if words.count <= word { words += [UInt64](repeating: 0, count: max(word + 1 - words.count, 1024)) }
        let fresh = words[word] & bit == 0
        words[word] |= bit
        receivedSerials[sender] = words
        return fresh
    }
}

extension PeerAddress {
    func withPort(_ port: UInt16) -> PeerAddress {
        var copy = self
        copy.portNetworkOrder = port.bigEndian
        return copy
    }
}
