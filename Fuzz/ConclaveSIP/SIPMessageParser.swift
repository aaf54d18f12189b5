import ConclaveSIP

/// Parses a datagram as a SIP message, reads every typed header view a server reads, hands a
/// request to the call core (admitting any call it asks about) and the bytes to the server engine
/// (whose answers must parse), and checks
/// that what parsed serializes to bytes that parse back to the same message. The same bytes are
/// fed to the stream framer in two chunks.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzSIPMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let message = try? SIPMessage(parsing: bytes) {
        for via in message.values("Via") { _ = try? SIPVia(parsing: via) }
        for name in ["From", "To", "Contact", "Record-Route"] {
            for value in message.values(name) { _ = try? SIPNameAddress(parsing: value) }
        }
        if let uri = message.requestURI { _ = try? SIPURI(parsing: uri) }
        if let authorization = message["Authorization"] { _ = try? DigestCredentials(parsing: authorization) }
        _ = ServerTransactionKey(request: message)
        if message.method != nil {
            // The call core must answer anything that parsed, without trapping, in both modes.
            let origin = SDPOrigin(username: "c", sessionID: "1", sessionVersion: 1, addressType: "IP4", address: "192.0.2.1")
            let connection = SDPConnection(addressType: "IP4", address: "192.0.2.1")
            for allowsPlainRTP in [true, false] {
                var core = CallCore(
                    configuration: .init(contact: "sip:192.0.2.1", origin: origin, connection: connection, allowsPlainRTP: allowsPlainRTP))
                for action in core.handle(message, transport: .tls, newTag: "t") {
                    guard case .admit(let call) = action else { continue }
                    var local: [Int: LocalStream] = [:]
                    for case .accepted(let stream) in call.decisions {
                        var key: [UInt8]?
                        if case .sdes(let remote) = stream.security { key = Array(repeating: 1, count: remote.suite.keyMaterialLength) }
                        local[stream.mediaIndex] = LocalStream(port: 40_000, keyMaterial: key)
                    }
                    _ = core.admitted(call.key, local: local)
                    _ = core.handle(message, transport: .tls, newTag: "u")
                }
            }
        }
        let generous = SIPLimits(maximumMessageSize: 1 << 20, maximumHeaderCount: 1000, maximumHeaderLength: 1 << 20)
        guard let again = try? SIPMessage(parsing: message.serialized(), limits: generous) else {
            fatalError("a parsed message did not parse again after serializing")
        }
        precondition(again.startLine == message.startLine, "start line changed in a round trip")
        precondition(again.body == message.body, "body changed in a round trip")
        precondition(
            again.headers.filter { $0.name != "Content-Length" } == message.headers.filter { $0.name != "Content-Length" },
            "headers changed in a round trip")
    }
    // The server engine answers or drops anything, including what the parser refused.
    let origin = SDPOrigin(username: "c", sessionID: "1", sessionVersion: 1, addressType: "IP4", address: "192.0.2.1")
    var engine = SIPServerEngine(
        core: CallCore(
            configuration: .init(
                contact: "sip:192.0.2.1", origin: origin, connection: SDPConnection(addressType: "IP4", address: "192.0.2.1"),
                allowsPlainRTP: true)))
    let peer = SIPPeer(transport: .udp, address: "192.0.2.9", port: 5060)
    let now = ContinuousClock.now
    for output in engine.receive(bytes, from: peer, now: now, newTag: "t") + engine.receive(bytes, from: peer, now: now, newTag: "u") {
        if case .send(let answer, _) = output {
            precondition((try? SIPMessage(parsing: answer)) != nil, "the server sent something it cannot parse")
        }
    }
    _ = engine.tick(now: now + .seconds(100))
    var framer = SIPStreamFramer()
    framer.append(bytes.prefix(size / 2))
    _ = try? framer.nextMessage()
    framer.append(bytes.dropFirst(size / 2))
    while let frame = try? framer.nextMessage() { _ = try? SIPMessage(parsing: frame) }
    return 0
}
