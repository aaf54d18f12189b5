import ConclaveSRTP
import FoundationEssentials
import Testing
@testable import ConclaveRelay

@Suite struct LegsFileTests {
    static func document(_ legs: String) -> Data { Data("{\"version\": 1, \"legs\": [\(legs)]}".utf8) }

    static func leg(
        id: Int = 1, meeting: Int = 1, token: String = "00112233445566ff", profile: String = "AEAD_AES_128_GCM",
        key: String = String(repeating: "ab", count: 16), salt: String = String(repeating: "cd", count: 12)
    ) -> String {
        """
        {"leg": \(id), "meeting": \(meeting), "token": "\(token)", "profile": "\(profile)",
         "clientToRelay": {"key": "\(key)", "salt": "\(salt)"}, "relayToClient": {"key": "\(key)", "salt": "\(salt)"},
         "audioPayloadTypes": [111], "videoPayloadTypes": [96]}
        """
    }

    @Test func parsesAnSRTPLeg() throws {
        let file = try LegsFile(parsing: Self.document(Self.leg()))
        let leg = try #require(file.legs.first)
        #expect(leg.leg == 1 && leg.meeting == 1 && leg.token == 0x0011_2233_4455_66ff)
        guard case .srtp(let profile, let inbound, _) = leg.protection else { Issue.record("not SRTP"); return }
        #expect(profile == .aeadAES128GCM)
        #expect(inbound.key == [UInt8](repeating: 0xab, count: 16))
        #expect(inbound.salt == [UInt8](repeating: 0xcd, count: 12))
    }

    @Test func generatedFilesRoundTrip() throws {
        for profile in ["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "encapsulated"] {
            let file = try LegsFile.generate(meetings: 2, participants: 3, profile: profile)
            #expect(file.legs.count == 6)
            #expect(file.meetings.map(\.id) == [1, 2])
            #expect(try LegsFile(parsing: file.encoded()) == file)
        }
    }

    @Test(arguments: [
        (leg(token: "123"), "legs[0].token: expected 16 hex digits"),
        (leg(profile: "NULL"), "legs[0].profile: 'NULL' is not one of"),
        (leg(key: "zz" + String(repeating: "ab", count: 15)), "legs[0].clientToRelay.key: not hexadecimal"),
        (leg(salt: String(repeating: "cd", count: 14)), "SRTP key material must be 12 bytes, got 14"),
        (leg() + "," + leg(), "leg 1 appears twice"),
        (leg() + "," + leg(id: 2, profile: "encapsulated", salt: String(repeating: "cd", count: 14)),
         "meeting 1 mixes srtp and encapsulated legs"),
    ])
    func refusesBadInputNamingTheField(legs: String, reason: String) {
        do {
            _ = try LegsFile(parsing: Self.document(legs))
            Issue.record("accepted: \(legs)")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    @Test func refusesOtherVersionsAndNonJSON() {
        #expect(throws: RelayError.self) { try LegsFile(parsing: Data("{\"version\": 2, \"legs\": []}".utf8)) }
        #expect(throws: RelayError.self) { try LegsFile(parsing: Data("legs".utf8)) }
    }
}
