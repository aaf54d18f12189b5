import Testing
@testable import ConclaveRelay

@Suite struct ScramblerTests {
    static let key = try! ScramblingKey(key: Array(0..<16), salt: Array(100..<114))
    static let rtp: [UInt8] = [0x80, 96, 0x00, 0x07, 0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe] + Array(repeating: 0x41, count: 100)

    @Test func masksThePayloadKeepsTheHeaderAndInverts() throws {
        let scrambler = try Scrambler(key: Self.key)
        var packet = Self.rtp
        let ok = packet.withUnsafeMutableBytes { scrambler.apply($0.baseAddress!, length: $0.count, isControl: false) }
        #expect(ok)
        #expect(Array(packet[0..<12]) == Array(Self.rtp[0..<12]))
        #expect(Array(packet[12...]) != Array(Self.rtp[12...]))
        _ = packet.withUnsafeMutableBytes { scrambler.apply($0.baseAddress!, length: $0.count, isControl: false) }
        #expect(packet == Self.rtp)
    }

    @Test func eachSequenceNumberGetsItsOwnKeystream() throws {
        let scrambler = try Scrambler(key: Self.key)
        var first = Self.rtp
        var second = Self.rtp
        second[3] = 0x08
        _ = first.withUnsafeMutableBytes { scrambler.apply($0.baseAddress!, length: $0.count, isControl: false) }
        _ = second.withUnsafeMutableBytes { scrambler.apply($0.baseAddress!, length: $0.count, isControl: false) }
        #expect(Array(first[12...]) != Array(second[12...]))
    }

    @Test func refusesPacketsShorterThanTheirHeaderAndBadKeys() throws {
        let scrambler = try Scrambler(key: Self.key)
        var short = [UInt8](repeating: 0, count: 11)
        #expect(!short.withUnsafeMutableBytes { scrambler.apply($0.baseAddress!, length: $0.count, isControl: false) })
        #expect(throws: RelayError.self) { try ScramblingKey(key: Array(0..<16), salt: Array(0..<12)) }
    }
}
