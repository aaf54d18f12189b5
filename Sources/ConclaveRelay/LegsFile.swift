import ConclaveSRTP
import FoundationEssentials

/// The legs file: leg ids, tokens and keys for running the relay and the load generator
/// without a control server (docs/legs-file.md).
public struct LegsFile: Sendable, Equatable {
    public static let version = 1
    public var legs: [LegDescription]

    public init(legs: [LegDescription]) { self.legs = legs }

    /// Meetings in order of first appearance, each with its legs in file order.
    public var meetings: [(id: UInt32, legs: [LegDescription])] {
        var order: [UInt32] = []
        var byMeeting: [UInt32: [LegDescription]] = [:]
        for leg in legs {
            if byMeeting[leg.meeting] == nil { order.append(leg.meeting) }
            byMeeting[leg.meeting, default: []].append(leg)
        }
        return order.map { ($0, byMeeting[$0]!) }
    }

    // MARK: JSON

    private struct Document: Codable {
        var version: Int
        var legs: [Entry]
    }

    private struct Keys: Codable {
        var key: String
        var salt: String
    }

    private struct Entry: Codable {
        var leg: UInt32
        var meeting: UInt32
        var token: String
        var profile: String
        var clientToRelay: Keys
        var relayToClient: Keys
        var audioPayloadTypes: [UInt8]
        var videoPayloadTypes: [UInt8]
    }

    static let encapsulatedProfile = "encapsulated"

    public init(parsing data: Data) throws(RelayError) {
        let document: Document
        do { document = try JSONDecoder().decode(Document.self, from: data) } catch {
            throw .invalidLegsFile("not a legs document: \(error)")
        }
        guard document.version == Self.version else {
            throw .invalidLegsFile("version \(document.version) is not supported (expected \(Self.version))")
        }
        var seen = Set<UInt32>()
        var meetingModes: [UInt32: MediaMode] = [:]
        var legs: [LegDescription] = []
        for (index, entry) in document.legs.enumerated() {
            let place = "legs[\(index)]"
            guard seen.insert(entry.leg).inserted else { throw .invalidLegsFile("\(place): leg \(entry.leg) appears twice") }
            guard entry.token.count == 16, let token = UInt64(entry.token, radix: 16) else {
                throw .invalidLegsFile("\(place).token: expected 16 hex digits")
            }
            let protection: LegProtection
            if entry.profile == Self.encapsulatedProfile {
                protection = .encapsulated(
                    clientToRelay: try ScramblingKey(
                        key: try Self.hex(entry.clientToRelay.key, "\(place).clientToRelay.key"),
                        salt: try Self.hex(entry.clientToRelay.salt, "\(place).clientToRelay.salt")),
                    relayToClient: try ScramblingKey(
                        key: try Self.hex(entry.relayToClient.key, "\(place).relayToClient.key"),
                        salt: try Self.hex(entry.relayToClient.salt, "\(place).relayToClient.salt")))
            } else if let profile = SRTPProfile(rawValue: entry.profile) {
                protection = .srtp(
                    profile,
                    clientToRelay: try Self.srtpKeys(entry.clientToRelay, profile, "\(place).clientToRelay"),
                    relayToClient: try Self.srtpKeys(entry.relayToClient, profile, "\(place).relayToClient"))
            } else {
                let known = SRTPProfile.allCases.map(\.rawValue) + [Self.encapsulatedProfile]
                throw .invalidLegsFile("\(place).profile: '\(entry.profile)' is not one of \(known.joined(separator: ", "))")
            }
            if let mode = meetingModes[entry.meeting], mode != protection.mode {
                throw .invalidLegsFile("\(place): meeting \(entry.meeting) mixes srtp and encapsulated legs")
            }
            meetingModes[entry.meeting] = protection.mode
            for type in entry.audioPayloadTypes + entry.videoPayloadTypes where type > 127 {
                throw .invalidLegsFile("\(place): payload type \(type) is out of range 0…127")
            }
            legs.append(LegDescription(
                leg: entry.leg, token: token, meeting: entry.meeting, protection: protection,
                audioPayloadTypes: entry.audioPayloadTypes, videoPayloadTypes: entry.videoPayloadTypes))
        }
        self.legs = legs
    }

    public func encoded() -> Data {
        let entries = legs.map { leg -> Entry in
            let (profile, clientToRelay, relayToClient): (String, Keys, Keys) = switch leg.protection {
            case .srtp(let profile, let inbound, let outbound):
                (profile.rawValue, Keys(key: Self.hex(inbound.key), salt: Self.hex(inbound.salt)),
                 Keys(key: Self.hex(outbound.key), salt: Self.hex(outbound.salt)))
            case .encapsulated(let inbound, let outbound):
                (Self.encapsulatedProfile, Keys(key: Self.hex(inbound.key), salt: Self.hex(inbound.salt)),
                 Keys(key: Self.hex(outbound.key), salt: Self.hex(outbound.salt)))
            }
            let token = String(leg.token, radix: 16)
            return Entry(
                leg: leg.leg, meeting: leg.meeting, token: String(repeating: "0", count: 16 - token.count) + token,
                profile: profile, clientToRelay: clientToRelay, relayToClient: relayToClient,
                audioPayloadTypes: leg.audioPayloadTypes, videoPayloadTypes: leg.videoPayloadTypes)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try! encoder.encode(Document(version: Self.version, legs: entries))  // plain strings and numbers
    }

    /// Random keys and tokens for `meetings` × `participants` legs (for tests and benchmarks).
    public static func generate(meetings: Int, participants: Int, profile: String) throws(RelayError) -> LegsFile {
        var random = SystemRandomNumberGenerator()
        func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) } }
        var legs: [LegDescription] = []
        for meeting in 1...max(1, meetings) {
            for participant in 1...max(1, participants) {
                let protection: LegProtection
                if profile == encapsulatedProfile {
                    protection = .encapsulated(
                        clientToRelay: try ScramblingKey(key: bytes(16), salt: bytes(14)),
                        relayToClient: try ScramblingKey(key: bytes(16), salt: bytes(14)))
                } else if let srtp = SRTPProfile(rawValue: profile) {
                    do {
                        protection = .srtp(
                            srtp,
                            clientToRelay: try SRTPKeyMaterial(key: bytes(srtp.keyLength), salt: bytes(srtp.saltLength), profile: srtp),
                            relayToClient: try SRTPKeyMaterial(key: bytes(srtp.keyLength), salt: bytes(srtp.saltLength), profile: srtp))
                    } catch { throw .invalidLegsFile("\(error)") }
                } else {
                    throw .invalidLegsFile("unknown profile '\(profile)'")
                }
                legs.append(LegDescription(
                    leg: UInt32(meeting * 1000 + participant), token: UInt64.random(in: 1...UInt64.max, using: &random),
                    meeting: UInt32(meeting), protection: protection,
                    audioPayloadTypes: [111], videoPayloadTypes: [96]))
            }
        }
        return LegsFile(legs: legs)
    }

    // MARK: Hex

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    static func hex(_ text: String, _ field: String) throws(RelayError) -> [UInt8] {
        let characters = Array(text.utf8)
        guard characters.count % 2 == 0 else { throw .invalidLegsFile("\(field): odd number of hex digits") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 2)
        for index in stride(from: 0, to: characters.count, by: 2) {
            guard let high = hexValue(characters[index]), let low = hexValue(characters[index + 1]) else {
                throw .invalidLegsFile("\(field): not hexadecimal")
            }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func srtpKeys(_ keys: Keys, _ profile: SRTPProfile, _ field: String) throws(RelayError) -> SRTPKeyMaterial {
        do {
            return try SRTPKeyMaterial(key: try hex(keys.key, "\(field).key"), salt: try hex(keys.salt, "\(field).salt"), profile: profile)
        } catch let error as RelayError {
            throw error
        } catch {
            throw .invalidLegsFile("\(field): \(error)")
        }
    }
}
