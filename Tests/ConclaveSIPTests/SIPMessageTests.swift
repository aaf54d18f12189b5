import Testing
@testable import ConclaveSIP

/// Builds CRLF-terminated message text from lines (the last element is the body).
func sipText(_ lines: [String], body: String = "") -> [UInt8] {
    Array((lines.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
}

let inviteLines = [
    "INVITE sip:standup@conclave.example SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport",
    "Max-Forwards: 70",
    "To: <sip:standup@conclave.example>",
    "From: \"Room 4\" <sip:room4@example.org>;tag=1928301774",
    "Call-ID: a84b4c76e66710@192.0.2.10",
    "CSeq: 314159 INVITE",
    "Contact: <sip:room4@192.0.2.10:5060>",
    "Record-Route: <sip:proxy.example.org;lr>, <sip:edge.example.org;lr>",
    "Content-Type: application/sdp",
]

@Suite struct SIPMessageTests {
    @Test func parsesAnInviteWithItsHeaders() throws {
        let body = "v=0\r\n"
        let message = try SIPMessage(parsing: sipText(inviteLines + ["Content-Length: 5"], body: body + "trailing junk"))
        #expect(message.method == .invite)
        #expect(message.requestURI == "sip:standup@conclave.example")
        #expect(message.body == Array(body.utf8))
        #expect(message["call-id"] == "a84b4c76e66710@192.0.2.10")
        #expect(message.values("Record-Route") == ["<sip:proxy.example.org;lr>", "<sip:edge.example.org;lr>"])
        let via = try SIPVia(parsing: message.values("Via")[0])
        #expect(via.transport == "UDP")
        #expect(via.host == "192.0.2.10")
        #expect(via.port == 5060)
        #expect(via.branch == "z9hG4bK776asdhds")
        #expect(via.parameters.contains("rport"))
        let from = try SIPNameAddress(parsing: message["From"]!)
        #expect(from.displayName == "Room 4")
        #expect(from.uri == "sip:room4@example.org")
        #expect(from.parameter("tag") == "1928301774")
        let uri = try SIPURI(parsing: message.requestURI!)
        #expect(uri.user == "standup")
        #expect(uri.host == "conclave.example")
        #expect(SIPCSeq(parsing: message["CSeq"]!) == SIPCSeq(sequence: 314159, method: .invite))
    }

    @Test func compactFormsAndFoldingAreUnderstood() throws {
        let message = try SIPMessage(parsing: sipText([
            "OPTIONS sip:conclave.example SIP/2.0",
            "v: SIP/2.0/TCP client.example.org:5070",
            "  ;branch=z9hG4bKfolded",
            "f: <sip:a@example.org>;tag=x",
            "t: <sip:conclave.example>",
            "i: compact@example.org",
            "CSEQ: 1 OPTIONS",
            "l: 0",
        ]))
        #expect(message["Via"] == "SIP/2.0/TCP client.example.org:5070 ;branch=z9hG4bKfolded")
        #expect(try SIPVia(parsing: message["Via"]!).branch == "z9hG4bKfolded")
        #expect(message["Call-ID"] == "compact@example.org")
        #expect(message.headers.map(\.name) == ["Via", "From", "To", "Call-ID", "CSeq", "Content-Length"])
    }

    @Test func serializesWithCanonicalNamesAndContentLength() throws {
        var message = SIPMessage(
            startLine: .response(status: 200, reason: "OK"),
            headers: [SIPHeaderField("v", "SIP/2.0/UDP a.example;branch=z9hG4bK1"), SIPHeaderField("call-id", "x")],
            body: Array("hi".utf8))
        message.setHeader("cseq", "2 BYE")
        #expect(String(decoding: message.serialized(), as: UTF8.self)
            == "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 2\r\n\r\nhi")
        let reparsed = try SIPMessage(parsing: message.serialized())
        #expect(reparsed.body == Array("hi".utf8))
        #expect(reparsed.status == 200)
    }

    @Test func responseCopiesTheDialogHeadersAndAddsATag() throws {
        let invite = try SIPMessage(parsing: sipText(inviteLines))
        let ringing = SIPMessage.response(to: invite, status: 180, reason: "Ringing", toTag: "srv1")
        #expect(ringing["To"] == "<sip:standup@conclave.example>;tag=srv1")
        #expect(ringing.values("Record-Route").count == 2)
        #expect(ringing["CSeq"] == "314159 INVITE")
        let trying = SIPMessage.response(to: invite, status: 100, reason: "Trying", toTag: "srv1")
        #expect(trying["To"] == "<sip:standup@conclave.example>")
        #expect(trying["Record-Route"] == nil)
        let refused = SIPMessage.response(to: invite, status: 488, reason: "Not Acceptable Here", toTag: "srv1")
        #expect(refused["Record-Route"] == nil)
    }

    /// Each malformed input and the status a server answers it with.
    static let refusals: [(String, [UInt8], Int)] = [
        ("no blank line", Array("OPTIONS sip:a SIP/2.0\r\nVia: x\r\n".utf8), 400),
        ("two-part start line", sipText(["OPTIONS sip:a"]), 400),
        ("SIP/3.0 request", sipText(["OPTIONS sip:a@b SIP/3.0"]), 505),
        ("status 99", sipText(["SIP/2.0 099 Odd", "Content-Length: 0"]), 400),
        ("method with a slash", sipText(["OPT/IONS sip:a@b SIP/2.0"]), 400),
        ("URI without scheme", sipText(["OPTIONS nowhere SIP/2.0"]), 400),
        ("header without colon", sipText(["OPTIONS sip:a@b SIP/2.0", "Via SIP/2.0/UDP a"]), 400),
        ("folding first", sipText(["OPTIONS sip:a@b SIP/2.0", " folded"]), 400),
        ("missing Call-ID", sipText(inviteLines.filter { !$0.hasPrefix("Call-ID") }), 400),
        ("CSeq method mismatch", sipText(inviteLines.map { $0.hasPrefix("CSeq") ? "CSeq: 1 BYE" : $0 }), 400),
        ("CSeq not a number", sipText(inviteLines.map { $0.hasPrefix("CSeq") ? "CSeq: x INVITE" : $0 }), 400),
        ("Content-Length too big", sipText(inviteLines + ["Content-Length: 10"], body: "abc"), 400),
        ("Content-Length negative", sipText(inviteLines + ["Content-Length: -1"]), 400),
        ("Content-Length twice, differing", sipText(inviteLines + ["Content-Length: 0", "l: 1"], body: "a"), 400),
        ("Max-Forwards junk", sipText(inviteLines.map { $0.hasPrefix("Max-Forwards") ? "Max-Forwards: lots" : $0 }), 400),
        ("bad Via", sipText(inviteLines.map { $0.hasPrefix("Via") ? "Via: HTTP/1.1 x" : $0 }), 400),
        ("NUL in headers", sipText(inviteLines + ["Subject: a\u{0}b"]), 400),
        ("too many headers", sipText(inviteLines + Array(repeating: "Subject: x", count: 100)), 400),
        ("too large", sipText(inviteLines, body: String(repeating: "x", count: 70_000)), 513),
    ]

    @Test(arguments: 0..<refusals.count) func refusesMalformedMessagesWithTheRightStatus(index: Int) {
        let (name, bytes, status) = SIPMessageTests.refusals[index]
        #expect(throws: SIPParseError.self, "\(name)") { try SIPMessage(parsing: bytes) }
        do {
            _ = try SIPMessage(parsing: bytes)
        } catch {
            #expect(error.status == status, "\(name): \(error)")
        }
    }

    @Test func unknownMethodsParseSoTheServerCanAnswer501() throws {
        let message = try SIPMessage(parsing: sipText([
            "PUBLISH sip:a@b SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bKp", "From: <sip:x@y>;tag=1", "To: <sip:a@b>",
            "Call-ID: p", "CSeq: 1 PUBLISH",
        ]))
        #expect(message.method == SIPMethod(rawValue: "PUBLISH"))
        #expect(!SIPMethod.implemented.contains(message.method!))
    }

    @Test func framerCutsAStreamIntoMessages() throws {
        let first = sipText(inviteLines + ["Content-Length: 3"], body: "abc")
        let second = sipText(["SIP/2.0 200 OK", "Content-Length: 0"])
        var framer = SIPStreamFramer()
        let stream = Array("\r\n\r\n".utf8) + first + second
        framer.append(stream.prefix(50))
        #expect(try framer.nextMessage() == nil)
        framer.append(stream.dropFirst(50))
        #expect(try framer.nextMessage() == first)
        #expect(try framer.nextMessage() == second)
        #expect(try framer.nextMessage() == nil)
    }

    @Test func framerRefusesAStreamMessageWithoutContentLength() {
        var framer = SIPStreamFramer()
        framer.append(sipText(inviteLines))
        #expect(throws: SIPParseError.self) { try framer.nextMessage() }
        var huge = SIPStreamFramer(limits: SIPLimits(maximumMessageSize: 1000))
        huge.append(Array(repeating: UInt8(ascii: "a"), count: 1001))
        #expect(throws: SIPParseError(status: 513, "headers larger than 1000 bytes")) { try huge.nextMessage() }
    }

    @Test func urisWithIPv6PortsParametersAndEscapes() throws {
        let uri = try SIPURI(parsing: "sips:meet%20ing@[2001:db8::1]:5061;transport=tls?subject=x")
        #expect(uri.isSecure)
        #expect(uri.user == "meet ing")
        #expect(uri.host == "[2001:db8::1]")
        #expect(uri.port == 5061)
        #expect(uri.parameters["transport"] == "tls")
        #expect(throws: SIPParseError.self) { try SIPURI(parsing: "tel:+123") }
        #expect(throws: SIPParseError.self) { try SIPURI(parsing: "sip:a@host:99999") }
        #expect(throws: SIPParseError.self) { try SIPURI(parsing: "sip:a@ho st") }
    }

    @Test func listsSplitOutsideQuotesAndBrackets() {
        #expect(SIPMessage.splitList("\"a, b\" <sip:x@y;p=1,2>, <sip:z@w>") == ["\"a, b\" <sip:x@y;p=1,2>", "<sip:z@w>"])
    }
}
