import ConclaveSIP

/// Parses an SDP body, negotiates it under both security modes, writes the answer, and checks that
/// the offer and the answer both survive a serialize-and-parse round trip unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzSessionDescription(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let offer = try? SessionDescription(parsing: bytes) else { return 0 }
    guard let again = try? SessionDescription(parsing: offer.serialized()), again == offer else {
        fatalError("an SDP that parsed changed in a round trip")
    }
    let origin = SDPOrigin(username: "conclave", sessionID: "1", sessionVersion: 1, addressType: "IP4", address: "192.0.2.1")
    let connection = SDPConnection(addressType: "IP4", address: "192.0.2.1")
    for policy in [OfferAnswerPolicy(allowsPlainRTP: true), OfferAnswerPolicy(allowsPlainRTP: false)] {
        guard let decisions = try? OfferAnswer.negotiate(offer: offer, policy: policy) else { continue }
        var local: [Int: LocalStream] = [:]
        for decision in decisions {
            guard case .accepted(let stream) = decision else { continue }
            var key: [UInt8]?
            if case .sdes(let remote) = stream.security { key = Array(repeating: 0x42, count: remote.suite.keyMaterialLength) }
            local[stream.mediaIndex] = LocalStream(port: 40_000 + stream.mediaIndex * 2, keyMaterial: key)
        }
        let answer = OfferAnswer.answer(offer: offer, decisions: decisions, local: local, origin: origin, connection: connection)
        guard let parsedAnswer = try? SessionDescription(parsing: answer.serialized()), parsedAnswer == answer else {
            fatalError("our answer did not parse back to itself")
        }
    }
    return 0
}
