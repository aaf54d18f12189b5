/// The UAS core and dialog layer (RFC 3261 §8.2, §12, §13.3, §15) for calls into meetings, as a
/// plain value: it takes requests the transaction layer passed up and returns actions. Admission
/// (meeting, passcode, leg on the relay) is the control plane's: the core asks with `.admit` and
/// is told the outcome with `admitted` or `refused`. No socket is read or written here.

public enum SIPTransport: String, Sendable, Hashable {
    case udp = "UDP", tcp = "TCP", tls = "TLS"

    public var isReliable: Bool { self != .udp }
}

/// One call as the core knows it, keyed by Call-ID and the caller's From tag.
public struct CallKey: Sendable, Hashable, CustomStringConvertible {
    public var callID: String
    public var remoteTag: String

    public var description: String { "\(callID)/\(remoteTag)" }
}

/// What the control plane needs to decide on a new call.
public struct CallRequest: Sendable, Hashable {
    public var key: CallKey
    public var meeting: String
    /// The From display name, else its URI user: a nickname, never trusted for identity.
    public var callerName: String
    public var transport: SIPTransport
    public var offer: SessionDescription
    public var decisions: [StreamDecision]
    /// The Authorization header, when the caller answered a challenge.
    public var authorization: String?
    /// The INVITE, for the challenge or refusal the control plane may ask for.
    public var invite: SIPMessage
}

public enum CallAction: Sendable, Hashable {
    /// Send `response` through the server transaction of `request`.
    case respond(to: SIPMessage, SIPMessage)
    /// Decide on a new call; answer with `admitted` or `refused`.
    case admit(CallRequest)
    /// The caller changed its media (re-INVITE: hold, resume, new address).
    case updateMedia(CallKey, [StreamDecision])
    /// The call is over (BYE, CANCEL before the answer, or no ACK): drop its leg if it has one.
    case release(CallKey, reason: String)
}

public struct CallCore: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Our Contact URI, e.g. `sip:198.51.100.1:5061;transport=tls`.
        public var contact: String
        public var origin: SDPOrigin
        public var connection: SDPConnection
        /// False in the `secured` system mode: TLS signalling and SDES-SRTP only.
        public var allowsPlainRTP: Bool
        public var allowsVideo: Bool
        public var userAgent: String

        public init(
            contact: String, origin: SDPOrigin, connection: SDPConnection, allowsPlainRTP: Bool, allowsVideo: Bool = true,
            userAgent: String = "Conclave"
        ) {
            self.contact = contact
            self.origin = origin
            self.connection = connection
            self.allowsPlainRTP = allowsPlainRTP
            self.allowsVideo = allowsVideo
            self.userAgent = userAgent
        }
    }

    private enum Phase: Sendable, Hashable {
        /// Waiting for the control plane's decision.
        case admitting
        /// 200 OK sent, ACK pending or received.
        case established
    }

    private struct Call: Sendable {
        var phase: Phase
        var localTag: String
        var invite: SIPMessage
        var offer: SessionDescription
        var decisions: [StreamDecision]
        var local: [Int: LocalStream]
        var sessionVersion: UInt64
        var remoteCSeq: UInt32
    }

    public var configuration: Configuration
    private var calls: [CallKey: Call] = [:]

    public init(configuration: Configuration) { self.configuration = configuration }

    public var callCount: Int { calls.count }

    private var policy: OfferAnswerPolicy {
        OfferAnswerPolicy(allowsPlainRTP: configuration.allowsPlainRTP, allowsVideo: configuration.allowsVideo)
    }

    /// A request from a server transaction (never a retransmission). `newTag` is a fresh random
    /// To tag, used if this request starts a dialog.
    public mutating func handle(_ request: SIPMessage, transport: SIPTransport, newTag: String) -> [CallAction] {
        guard let method = request.method else { return [] }
        // §8.2.2.1: a scheme we do not serve is 416, whatever the method.
        if method != .ack, case .failure(let error) = Result(catching: { () throws(SIPParseError) in try SIPURI(parsing: request.requestURI ?? "") }),
            error.status == 416
        {
            return [.respond(to: request, response(request, 416, "Unsupported URI Scheme"))]
        }
        // §8.2.2.3: we implement no extension, so any Require (outside ACK and CANCEL) is 420.
        let required = request.values("Require")
        if !required.isEmpty && method != .ack && method != .cancel {
            return [
                .respond(
                    to: request, response(request, 420, "Bad Extension", extra: [SIPHeaderField("Unsupported", required.joined(separator: ", "))]))
            ]
        }
        switch method {
        case .options:
            return [.respond(to: request, response(request, 200, "OK", extra: capabilityHeaders))]
        case .invite:
            return handleInvite(request, transport: transport, newTag: newTag)
        case .ack:
            return []  // the transaction layer stopped the 2xx retransmission; nothing more to do
        case .bye:
            guard let key = dialogKey(request), let call = calls[key], hasOurTag(request, call) else {
                return [.respond(to: request, response(request, 481, "Call/Transaction Does Not Exist"))]
            }
            calls[key] = nil
            return [.respond(to: request, response(request, 200, "OK")), .release(key, reason: "the caller hung up")]
        case .cancel:
            // §9.2: the CANCEL is answered 200 and the INVITE 487, if it has no final answer yet.
            guard let key = dialogKey(request), let call = calls[key],
                SIPCSeq(parsing: request["CSeq"] ?? "")?.sequence == call.remoteCSeq
            else {
                return [.respond(to: request, response(request, 481, "Call/Transaction Does Not Exist"))]
            }
            // Too late: the INVITE was answered; the CANCEL is acknowledged and changes nothing.
            guard call.phase == .admitting else { return [.respond(to: request, response(request, 200, "OK"))] }
            calls[key] = nil
            return [
                .respond(to: request, response(request, 200, "OK")),
                .respond(to: call.invite, response(call.invite, 487, "Request Terminated", toTag: call.localTag)),
                .release(key, reason: "the caller cancelled"),
            ]
        default:
            return [.respond(to: request, response(request, 501, "Not Implemented", extra: capabilityHeaders))]
        }
    }

    private mutating func handleInvite(_ invite: SIPMessage, transport: SIPTransport, newTag: String) -> [CallAction] {
        func refuse(_ status: Int, _ reason: String, warning: String? = nil) -> [CallAction] {
            let extra = warning.map { [SIPHeaderField("Warning", "399 conclave \"\(CallCore.quoted($0))\"")] } ?? []
            return [.respond(to: invite, response(invite, status, reason, toTag: newTag, extra: extra))]
        }
        guard let key = dialogKey(invite), let cseq = SIPCSeq(parsing: invite["CSeq"] ?? "") else {
            return refuse(400, "Bad Request", warning: "From has no tag")
        }
        let toTag = (try? SIPNameAddress(parsing: invite["To"] ?? ""))?.parameter("tag")
        if let toTag {
            // A re-INVITE (§14.2): same dialog, new offer.
            guard var call = calls[key], call.localTag == toTag, call.phase == .established else {
                return [.respond(to: invite, response(invite, 481, "Call/Transaction Does Not Exist"))]
            }
            guard cseq.sequence > call.remoteCSeq else { return [.respond(to: invite, response(invite, 500, "Server Internal Error"))] }
            call.remoteCSeq = cseq.sequence
            calls[key] = call
            guard let offer = try? sdpOffer(invite) else {
                return [.respond(to: invite, response(invite, 488, "Not Acceptable Here"))]
            }
            var decisions: [StreamDecision]
            do throws(OfferRefusal) {
                decisions = try OfferAnswer.negotiate(offer: offer, policy: policy)
            } catch {
                // §14.2: a refused re-INVITE leaves the session as it was.
                let warning = SIPHeaderField("Warning", "399 conclave \"\(CallCore.quoted(error.reason))\"")
                return [.respond(to: invite, response(invite, 488, "Not Acceptable Here", extra: [warning]))]
            }
            // Streams keep their relay ports (and our keys); a stream the first offer did not have is rejected.
            decisions = decisions.map { decision in
                guard case .accepted(let stream) = decision, call.local[stream.mediaIndex] == nil else { return decision }
                return .rejected(mediaIndex: stream.mediaIndex, reason: "streams cannot be added by a re-INVITE")
            }
            call.sessionVersion += 1
            call.offer = offer
            call.decisions = decisions
            calls[key] = call
            let answer = answerBody(offer: offer, decisions: decisions, local: call.local, version: call.sessionVersion)
            return [
                .updateMedia(key, decisions),
                .respond(to: invite, response(invite, 200, "OK", toTag: call.localTag, extra: dialogHeaders, sdp: answer)),
            ]
        }
        guard calls[key] == nil else {
            // §8.2.2.2 merged request: a second INVITE of a call we are already handling.
            return [.respond(to: invite, response(invite, 482, "Loop Detected"))]
        }
        guard let uri = try? SIPURI(parsing: invite.requestURI ?? ""), let meeting = uri.user, CallCore.isMeetingID(meeting) else {
            return refuse(404, "Not Found", warning: "the Request-URI user part must name a meeting (sip:<meeting-id>@host)")
        }
        if !configuration.allowsPlainRTP && transport != .tls {
            return refuse(488, "Not Acceptable Here", warning: "the system is in secured mode: call over TLS (sips:, port 5061) with SDES-SRTP")
        }
        if let type = invite["Content-Type"], type.split(separator: ";").first?.trimmingSIPWhitespace().lowercased() != "application/sdp" {
            return [
                .respond(
                    to: invite, response(invite, 415, "Unsupported Media Type", toTag: newTag, extra: [SIPHeaderField("Accept", "application/sdp")])
                )
            ]
        }
        guard !invite.body.isEmpty else {
            return refuse(488, "Not Acceptable Here", warning: "an INVITE without an SDP offer is not supported")
        }
        let offer: SessionDescription
        do throws(SDPError) {
            offer = try sdpOffer(invite)
        } catch {
            return refuse(400, "Bad Request", warning: "SDP: \(error.reason)")
        }
        let decisions: [StreamDecision]
        do throws(OfferRefusal) {
            decisions = try OfferAnswer.negotiate(offer: offer, policy: policy)
        } catch {
            return refuse(488, "Not Acceptable Here", warning: error.reason)
        }
        let from = try? SIPNameAddress(parsing: invite["From"] ?? "")
        let callerName = from?.displayName ?? from.flatMap { try? SIPURI(parsing: $0.uri) }?.user ?? "SIP caller"
        calls[key] = Call(
            phase: .admitting, localTag: newTag, invite: invite, offer: offer, decisions: decisions, local: [:], sessionVersion: configuration.origin.sessionVersion,
            remoteCSeq: cseq.sequence)
        return [
            .admit(
                CallRequest(
                    key: key, meeting: meeting, callerName: String(callerName.prefix(64)), transport: transport, offer: offer,
                    decisions: decisions, authorization: invite["Authorization"], invite: invite))
        ]
    }

    /// The control plane accepted the call and built its leg: answer 200 with our SDP.
    /// `local` has an entry for each accepted stream. Nil if the call was cancelled meanwhile
    /// (the caller must then drop the leg it built).
    public mutating func admitted(_ key: CallKey, local: [Int: LocalStream]) -> [CallAction]? {
        guard var call = calls[key], call.phase == .admitting else { return nil }
        call.phase = .established
        call.local = local
        calls[key] = call
        let answer = answerBody(offer: call.offer, decisions: call.decisions, local: local, version: call.sessionVersion)
        return [.respond(to: call.invite, response(call.invite, 200, "OK", toTag: call.localTag, extra: dialogHeaders, sdp: answer))]
    }

    /// The control plane refused the call (unknown meeting 404, locked or full 480/486, no
    /// guests 403, challenge 401 with `extraHeaders` holding WWW-Authenticate, …).
    public mutating func refused(_ key: CallKey, status: Int, reason: String, warning: String?, extraHeaders: [SIPHeaderField] = [])
        -> [CallAction]
    {
        precondition((300...699).contains(status), "a refusal is a final failure status")
        guard let call = calls[key], call.phase == .admitting else { return [] }
        calls[key] = nil
        var extra = extraHeaders
        if let warning { extra.append(SIPHeaderField("Warning", "399 conclave \"\(CallCore.quoted(warning))\"")) }
        return [.respond(to: call.invite, response(call.invite, status, reason, toTag: call.localTag, extra: extra))]
    }

    /// The transaction layer gave up on the ACK for our 2xx (Timer L): end the call with a BYE.
    /// The caller sends the BYE request (client transactions are not part of this layer yet).
    public mutating func ackTimedOut(_ key: CallKey) -> [CallAction] {
        guard calls.removeValue(forKey: key) != nil else { return [] }
        return [.release(key, reason: "no ACK for the answer")]
    }

    /// The meeting ended or the participant was kicked: forget the call (the BYE is the caller's).
    public mutating func forget(_ key: CallKey) { calls[key] = nil }

    // MARK: - Helpers

    private var capabilityHeaders: [SIPHeaderField] {
        [
            SIPHeaderField("Allow", SIPMethod.implemented.map(\.rawValue).joined(separator: ", ")),
            SIPHeaderField("Accept", "application/sdp"),
        ]
    }

    private var dialogHeaders: [SIPHeaderField] { [SIPHeaderField("Contact", "<\(configuration.contact)>")] + capabilityHeaders }

    private func response(
        _ request: SIPMessage, _ status: Int, _ reason: String, toTag: String? = nil, extra: [SIPHeaderField] = [], sdp: [UInt8]? = nil
    ) -> SIPMessage {
        var headers = extra + [SIPHeaderField("Server", configuration.userAgent)]
        if sdp != nil { headers.append(SIPHeaderField("Content-Type", "application/sdp")) }
        return SIPMessage.response(to: request, status: status, reason: reason, toTag: toTag, extraHeaders: headers, body: sdp ?? [])
    }

    private func dialogKey(_ request: SIPMessage) -> CallKey? {
        guard let callID = request["Call-ID"], let from = try? SIPNameAddress(parsing: request["From"] ?? ""),
            let tag = from.parameter("tag"), !tag.isEmpty
        else { return nil }
        return CallKey(callID: callID, remoteTag: tag)
    }

    private func hasOurTag(_ request: SIPMessage, _ call: Call) -> Bool {
        (try? SIPNameAddress(parsing: request["To"] ?? ""))?.parameter("tag") == call.localTag
    }

    private func sdpOffer(_ request: SIPMessage) throws(SDPError) -> SessionDescription {
        try SessionDescription(parsing: request.body)
    }

    private func answerBody(offer: SessionDescription, decisions: [StreamDecision], local: [Int: LocalStream], version: UInt64) -> [UInt8] {
        var origin = configuration.origin
        origin.sessionVersion = version
        return OfferAnswer.answer(offer: offer, decisions: decisions, local: local, origin: origin, connection: configuration.connection)
            .serialized()
    }

    /// Meeting ids as the control plane allows them: 1–64 of [A-Za-z0-9._-].
    static func isMeetingID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    /// A quoted-string body: no quotes, backslashes or control characters from a reason.
    static func quoted(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0 != "\"" && $0 != "\\" && $0.value >= 0x20 && $0.value != 0x7F }.prefix(200).map(Character.init))
    }
}
