import ConclaveRelay
import ConclaveSRTP
import Testing
@testable import ConclaveControl

@Suite struct MediaKeyDerivationTests {
    @Test func contextIsTheLegIdBigEndian() {
        #expect(MediaKeyDerivation.context(leg: 0x0102_0304) == [1, 2, 3, 4])
    }

    @Test func gcmSplitsKeySaltPerDirection() throws {
        let profile = MediaKeyDerivation.Profile.srtp(.aeadAES128GCM)
        #expect(MediaKeyDerivation.length(for: profile) == 56)  // 2 × (16 + 12)
        let bytes = (0..<56).map { UInt8($0) }
        let protection = try MediaKeyDerivation.protection(exporterOutput: bytes, profile: profile)
        #expect(protection == .srtp(
            .aeadAES128GCM,
            clientToRelay: try SRTPKeyMaterial(key: Array(0..<16), salt: Array(16..<28), profile: .aeadAES128GCM),
            relayToClient: try SRTPKeyMaterial(key: Array(28..<44), salt: Array(44..<56), profile: .aeadAES128GCM)))
    }

    @Test func sha1AndEncapsulatedUse14ByteSalts() throws {
        #expect(MediaKeyDerivation.length(for: .srtp(.aesCM128HMACSHA1_80)) == 60)
        #expect(MediaKeyDerivation.length(for: .encapsulated) == 60)
        let protection = try MediaKeyDerivation.protection(exporterOutput: (0..<60).map { UInt8($0) }, profile: .encapsulated)
        #expect(protection == .encapsulated(
            clientToRelay: try ScramblingKey(key: Array(0..<16), salt: Array(16..<30)),
            relayToClient: try ScramblingKey(key: Array(30..<46), salt: Array(46..<60))))
    }
}
