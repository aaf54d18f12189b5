/// RFC 3264 offer/answer for a relay that forwards and never transcodes: each offered stream is
/// accepted with the offered payload formats we can forward (in the offer's order and numbering),
/// or rejected with port 0. Two steps so the caller can allocate relay ports and draw keys only
/// for accepted streams: `negotiate` decides, `answer` writes the SDP.

/// A payload format as the offer describes it (`a=rtpmap` / `a=fmtp`, or a static type).
public struct PayloadFormat: Sendable, Hashable {
    public var payloadType: UInt8
    public var encoding: String
    public var clockRate: Int
    public var channels: Int?
    public var parameters: String?

    public init(payloadType: UInt8, encoding: String, clockRate: Int, channels: Int? = nil, parameters: String? = nil) {
        self.payloadType = payloadType
        self.encoding = encoding
        self.clockRate = clockRate
        self.channels = channels
        self.parameters = parameters
    }
}

public enum MediaSecurity: Sendable, Hashable {
    case plainRTP
    /// SDES-SRTP with the offerer's key; our key goes into the answer with the same tag and suite.
    case sdes(remote: SDESCrypto)
}

public struct AcceptedStream: Sendable, Hashable {
    public var mediaIndex: Int
    public var kind: String  // audio or video
    public var formats: [PayloadFormat]
    public var security: MediaSecurity
    /// Where the peer receives RTP: the latching address in plain mode.
    public var remoteAddress: String
    public var remotePort: Int
    /// Where the peer receives RTCP: its RTP port under rtcp-mux, else `a=rtcp` or RTP + 1.
    public var remoteRTCPPort: Int
    public var rtcpMux: Bool
    /// Our direction in the answer; sendonly/inactive from the peer is hold (RFC 3264 §8.4).
    public var direction: SDPDirection
    /// The peer holds with the RFC 2543 `c=0.0.0.0` form, or with sendonly/inactive.
    public var isOnHold: Bool
}

public enum StreamDecision: Sendable, Hashable {
    case accepted(AcceptedStream)
    case rejected(mediaIndex: Int, reason: String)
}

public struct OfferAnswerPolicy: Sendable, Hashable {
    /// False in the `secured` system mode: only RTP/SAVP with SDES is accepted.
    public var allowsPlainRTP: Bool
    public var allowsVideo: Bool

    public init(allowsPlainRTP: Bool, allowsVideo: Bool = true) {
        self.allowsPlainRTP = allowsPlainRTP
        self.allowsVideo = allowsVideo
    }
}

/// Not one stream could be accepted: answer 488 Not Acceptable Here with `reason` in a Warning.
public struct OfferRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Our side of an accepted stream, filled in by the caller once the relay port exists.
public struct LocalStream: Sendable, Hashable {
    public var port: Int
    /// Our master key || salt for SDES streams (random, `suite.keyMaterialLength` bytes); nil for plain.
    public var keyMaterial: [UInt8]?

    public init(port: Int, keyMaterial: [UInt8]? = nil) {
        self.port = port
        self.keyMaterial = keyMaterial
    }
}

public enum OfferAnswer {
    /// Codecs we forward, by lowercase encoding name and clock rate (RFC 3551, RFC 7587, RFC 4733,
    /// RFC 6184, RFC 7741).
    static let audioEncodings: Set<String> = ["opus/48000", "pcmu/8000", "pcma/8000", "telephone-event/8000", "telephone-event/48000"]
    static let videoEncodings: Set<String> = ["h264/90000", "vp8/90000"]
    /// RFC 3551 static types we accept without an rtpmap.
    static let staticFormats: [UInt8: PayloadFormat] = [
        0: PayloadFormat(payloadType: 0, encoding: "PCMU", clockRate: 8000),
        8: PayloadFormat(payloadType: 8, encoding: "PCMA", clockRate: 8000),
    ]

    public static func negotiate(offer: SessionDescription, policy: OfferAnswerPolicy) throws(OfferRefusal) -> [StreamDecision] {
        guard !offer.media.isEmpty else { throw OfferRefusal("the offer has no media streams") }
        let sessionDirection = offer.attributes.lazy.compactMap { SDPDirection(rawValue: $0.name) }.first
        var decisions: [StreamDecision] = []
        for (index, media) in offer.media.enumerated() {
            decisions.append(decide(index: index, media: media, offer: offer, sessionDirection: sessionDirection, policy: policy))
        }
        let accepted = decisions.contains { if case .accepted = $0 { true } else { false } }
        guard accepted else {
            let reasons = decisions.compactMap { decision -> String? in
                if case .rejected(let index, let reason) = decision { return "stream \(index): \(reason)" }
                return nil
            }
            throw OfferRefusal(reasons.joined(separator: "; "))
        }
        return decisions
    }

    static func decide(
        index: Int, media: SDPMedia, offer: SessionDescription, sessionDirection: SDPDirection?, policy: OfferAnswerPolicy
    ) -> StreamDecision {
        func reject(_ reason: String) -> StreamDecision { .rejected(mediaIndex: index, reason: reason) }
        guard media.port != 0 else { return reject("the offerer disabled it") }
        guard media.portCount == nil || media.portCount == 1 else { return reject("layered streams are not supported") }
        let supported: Set<String>
        switch media.type {
        case "audio": supported = audioEncodings
        case "video":
            guard policy.allowsVideo else { return reject("video is not accepted") }
            supported = videoEncodings
        default: return reject("\(media.type) streams are not supported")
        }
        let security: MediaSecurity
        switch media.transport.uppercased() {
        case "RTP/AVP", "RTP/AVPF":
            guard policy.allowsPlainRTP else {
                return reject("the system is in secured mode: plain RTP is refused, offer RTP/SAVP with SDES a=crypto over TLS")
            }
            security = .plainRTP
        case "RTP/SAVP", "RTP/SAVPF":
            var refusals: [String] = []
            var chosen: SDESCrypto?
            for value in media.attributes(named: "crypto") {
                do throws(SDESCrypto.Refusal) {
                    chosen = try SDESCrypto(parsing: value)
                    break
                } catch {
                    switch error {
                    case .malformed(let why), .unsupportedParameter(let why): refusals.append(why)
                    case .unsupportedSuite(let suite): refusals.append("suite \(suite) is not supported")
                    }
                }
            }
            guard let chosen else {
                let why = refusals.isEmpty ? "no a=crypto line" : refusals.joined(separator: ", ")
                return reject("no usable SDES key (\(why)); supported: AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM")
            }
            security = .sdes(remote: chosen)
        default:
            return reject("transport \(media.transport) is not supported (RTP/AVP or RTP/SAVP with SDES)")
        }
        var formats: [PayloadFormat] = []
        for format in media.formats {
            guard format.count <= 3, let payloadType = UInt8(format), payloadType < 128 else { continue }
            guard var described = payloadFormat(payloadType, in: media) else { continue }
            guard supported.contains("\(described.encoding.lowercased())/\(described.clockRate)") else { continue }
            described.parameters = media.attributes(named: "fmtp").first { $0.hasPrefix("\(payloadType) ") }
                .map { String($0.dropFirst("\(payloadType) ".count)) }
            formats.append(described)
        }
        guard formats.contains(where: { !$0.encoding.lowercased().hasPrefix("telephone-event") }) else {
            let offered = media.formats.joined(separator: " ")
            return reject("no offered payload format can be forwarded (offered \(offered); audio: opus, PCMU, PCMA; video: H264, VP8)")
        }
        guard let connection = offer.connection(for: media) else { return reject("no connection address") }
        let direction = media.direction == .sendrecv ? (sessionDirection ?? .sendrecv) : media.direction
        let heldByAddress = connection.address == "0.0.0.0" || connection.address == "::"
        let rtcpMux = media.hasAttribute("rtcp-mux")
        var rtcpPort = media.port + 1
        if rtcpMux {
            rtcpPort = media.port
        } else if let rtcp = media.attributes(named: "rtcp").first,
            let port = Int(rtcp.split(separator: " ").first ?? ""), (1...65535).contains(port)
        {
            rtcpPort = port
        }
        return .accepted(
            AcceptedStream(
                mediaIndex: index, kind: media.type, formats: formats, security: security, remoteAddress: connection.address,
                remotePort: media.port, remoteRTCPPort: min(rtcpPort, 65535), rtcpMux: rtcpMux,
                direction: heldByAddress ? .inactive : direction.answered,
                isOnHold: heldByAddress || direction == .sendonly || direction == .inactive))
    }

    /// `a=rtpmap:<pt> <encoding>/<rate>[/<channels>]` for `payloadType`, or its static definition.
    static func payloadFormat(_ payloadType: UInt8, in media: SDPMedia) -> PayloadFormat? {
        let prefix = "\(payloadType) "
        guard let rtpmap = media.attributes(named: "rtpmap").first(where: { $0.hasPrefix(prefix) }) else {
            return staticFormats[payloadType]
        }
        let parts = rtpmap.dropFirst(prefix.count).trimmingSIPWhitespace().split(separator: "/")
        guard parts.count == 2 || parts.count == 3, !parts[0].isEmpty, let rate = Int(parts[1]), rate > 0 else { return nil }
        var channels: Int?
        if parts.count == 3 {
            guard let count = Int(parts[2]), count > 0, count <= 255 else { return nil }
            channels = count
        }
        return PayloadFormat(payloadType: payloadType, encoding: String(parts[0]), clockRate: rate, channels: channels)
    }

    /// The answer: one m= line per offered one, in order (§6). `local[i]` is our side of
    /// accepted stream `i` (`decisions[i]` accepted); rejected streams get port 0.
    public static func answer(
        offer: SessionDescription, decisions: [StreamDecision], local: [Int: LocalStream], origin: SDPOrigin,
        connection: SDPConnection
    ) -> SessionDescription {
        var media: [SDPMedia] = []
        for (index, offered) in offer.media.enumerated() {
            guard case .accepted(let stream) = decisions.first(where: { decision in
                switch decision {
                case .accepted(let stream): stream.mediaIndex == index
                case .rejected(let rejected, _): rejected == index
                }
            }), let ours = local[index] else {
                // §6: a rejected stream keeps its type, transport and at least one format.
                media.append(SDPMedia(type: offered.type, port: 0, transport: offered.transport, formats: [offered.formats.first ?? "0"]))
                continue
            }
            var attributes: [SDPAttribute] = []
            for format in stream.formats {
                let channels = format.channels.map { "/\($0)" } ?? ""
                attributes.append(SDPAttribute("rtpmap", "\(format.payloadType) \(format.encoding)/\(format.clockRate)\(channels)"))
                if let parameters = format.parameters { attributes.append(SDPAttribute("fmtp", "\(format.payloadType) \(parameters)")) }
            }
            if case .sdes(let remote) = stream.security {
                precondition(ours.keyMaterial?.count == remote.suite.keyMaterialLength, "an SDES stream needs our key")
                let crypto = SDESCrypto(tag: remote.tag, suite: remote.suite, keyMaterial: ours.keyMaterial!)
                attributes.append(SDPAttribute("crypto", crypto.attributeValue))
            }
            if stream.rtcpMux {
                attributes.append(SDPAttribute("rtcp-mux"))
            } else {
                // RFC 3605: RTCP to the same port; the relay tells RTCP from RTP by payload type (RFC 5761 §4).
                attributes.append(SDPAttribute("rtcp", "\(ours.port)"))
            }
            attributes.append(SDPAttribute(stream.direction.rawValue))
            media.append(
                SDPMedia(
                    type: offered.type, port: ours.port, transport: offered.transport,
                    formats: stream.formats.map { String($0.payloadType) }, attributes: attributes))
        }
        return SessionDescription(origin: origin, connection: connection, media: media)
    }
}
