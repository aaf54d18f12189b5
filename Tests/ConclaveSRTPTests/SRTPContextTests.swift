import Testing
@testable import ConclaveSRTP

@Suite struct SRTPContextTests {
    static let rtp: [UInt8] = [
        0x80, 0x60, 0x12, 0x34,  // V=2, PT=96, sequence 0x1234
        0x00, 0x00, 0x10, 0x00,  // timestamp
        0xca, 0xfe, 0xba, 0xbe,  // SSRC
    ] + Array(repeating: 0xab, count: 160)

    static func keys(_ profile: SRTPProfile, seed: UInt8) throws -> SRTPKeyMaterial {
        try SRTPKeyMaterial(
            key: (0..<profile.keyLength).map { UInt8($0) &+ seed },
            salt: (0..<profile.saltLength).map { UInt8($0) &* 3 &+ seed },
            profile: profile)
    }

    @Test(arguments: SRTPProfile.allCases)
    func protectThenUnprotectRoundTrips(profile: SRTPProfile) throws {
        let keys = try Self.keys(profile, seed: 7)
        let sender = try SRTPContext(profile: profile, keys: keys, direction: .outbound)
        let receiver = try SRTPContext(profile: profile, keys: keys, direction: .inbound)
        var buffer = Self.rtp + Array(repeating: 0, count: 64)
        try buffer.withUnsafeMutableBytes { raw in
            let protected = try sender.protect(raw.baseAddress!, length: Self.rtp.count, capacity: raw.count)
            #expect(protected == Self.rtp.count + profile.rtpOverhead)
            #expect(Array(raw[12..<protected]) != Array(Self.rtp[12...]) + [UInt8](repeating: 0, count: profile.rtpOverhead))
            let plain = try receiver.unprotect(raw.baseAddress!, length: protected)
            #expect(plain == Self.rtp.count)
            #expect(Array(raw[0..<plain]) == Self.rtp)
        }
    }

    @Test(arguments: SRTPProfile.allCases)
    func rejectsAWrongKeyAndAReplay(profile: SRTPProfile) throws {
        let sender = try SRTPContext(profile: profile, keys: try Self.keys(profile, seed: 1), direction: .outbound)
        let receiver = try SRTPContext(profile: profile, keys: try Self.keys(profile, seed: 1), direction: .inbound)
        let stranger = try SRTPContext(profile: profile, keys: try Self.keys(profile, seed: 2), direction: .inbound)
        var buffer = Self.rtp + Array(repeating: 0, count: 64)
        let protectedLength = try buffer.withUnsafeMutableBytes { raw in
            try sender.protect(raw.baseAddress!, length: Self.rtp.count, capacity: raw.count)
        }
        let protected = Array(buffer[0..<protectedLength])

        var copy = protected
        #expect(throws: SRTPError.authenticationFailed) {
            try copy.withUnsafeMutableBytes { _ = try stranger.unprotect($0.baseAddress!, length: $0.count) }
        }
        copy = protected
        _ = try copy.withUnsafeMutableBytes { try receiver.unprotect($0.baseAddress!, length: $0.count) }
        copy = protected
        #expect(throws: SRTPError.replayed) {
            try copy.withUnsafeMutableBytes { _ = try receiver.unprotect($0.baseAddress!, length: $0.count) }
        }
    }

    @Test(arguments: SRTPProfile.allCases)
    func rtcpRoundTrips(profile: SRTPProfile) throws {
        let keys = try Self.keys(profile, seed: 9)
        let sender = try SRTPContext(profile: profile, keys: keys, direction: .outbound)
        let receiver = try SRTPContext(profile: profile, keys: keys, direction: .inbound)
        // An empty receiver report: V=2, RC=0, PT=201, length 1, SSRC.
        let rtcp: [UInt8] = [0x80, 201, 0x00, 0x01, 0xca, 0xfe, 0xba, 0xbe]
        var buffer = rtcp + Array(repeating: 0, count: 64)
        try buffer.withUnsafeMutableBytes { raw in
            let protected = try sender.protectRTCP(raw.baseAddress!, length: rtcp.count, capacity: raw.count)
            #expect(protected == rtcp.count + profile.rtcpOverhead)
            let plain = try receiver.unprotectRTCP(raw.baseAddress!, length: protected)
            #expect(Array(raw[0..<plain]) == rtcp)
        }
    }

    @Test func refusesKeysOfTheWrongLength() {
        #expect(throws: SRTPError.badKeyLength(expected: 12, got: 14)) {
            try SRTPKeyMaterial(key: Array(repeating: 1, count: 16), salt: Array(repeating: 1, count: 14), profile: .aeadAES128GCM)
        }
    }

    @Test func reportsLibsrtp2Version() {
        #expect(SRTPLibrary.version.hasPrefix("libsrtp2 2."))
    }
}
