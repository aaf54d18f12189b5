/// SDES (RFC 4568): `a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:length]`.

public enum SRTPSuite: String, Sendable, Hashable, CaseIterable {
    /// RFC 4568 §6.2.1: 128-bit AES counter mode key, 112-bit salt, 80-bit HMAC-SHA1 tag.
    case aesCM128HMACSHA1_80 = "AES_CM_128_HMAC_SHA1_80"
    /// RFC 7714 §14.2: AES-128-GCM, 96-bit salt.
    case aeadAES128GCM = "AEAD_AES_128_GCM"

    public var keyLength: Int { 16 }

    public var saltLength: Int {
        switch self {
        case .aesCM128HMACSHA1_80: 14
        case .aeadAES128GCM: 12
        }
    }

    /// Master key followed by master salt, as the inline key carries them.
    public var keyMaterialLength: Int { keyLength + saltLength }
}

public struct SDESCrypto: Sendable, Hashable, CustomStringConvertible {
    public var tag: UInt32
    public var suite: SRTPSuite
    /// Master key || master salt (`suite.keyMaterialLength` bytes).
    public var keyMaterial: [UInt8]

    public init(tag: UInt32, suite: SRTPSuite, keyMaterial: [UInt8]) {
        precondition(keyMaterial.count == suite.keyMaterialLength, "key material length must match the suite")
        self.tag = tag
        self.suite = suite
        self.keyMaterial = keyMaterial
    }

    /// Why one a=crypto line was not usable: the next one is tried; the reasons explain a 488.
    public enum Refusal: Error, Sendable, Hashable {
        case malformed(String)
        case unsupportedSuite(String)
        case unsupportedParameter(String)
    }

    /// Parses one `a=crypto` value. Key lifetimes at or above 2^31 packets are accepted (we rekey
    /// per call); MKIs, several keys and session parameters (RFC 4568 §6.3) are refused.
    public init(parsing value: String) throws(Refusal) {
        let fields = value.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3 else { throw .malformed("a=crypto needs a tag, a suite and key parameters") }
        guard fields[0].count <= 9, fields[0].allSatisfy({ $0.isASCII && $0.isNumber }), let tag = UInt32(fields[0]) else {
            throw .malformed("a=crypto tag is not a number")
        }
        guard let suite = SRTPSuite(rawValue: String(fields[1])) else { throw .unsupportedSuite(String(fields[1])) }
        guard fields.count == 3 else { throw .unsupportedParameter("session parameters \(fields[3...].joined(separator: " "))") }
        let keyParameters = fields[2].split(separator: ";")
        guard keyParameters.count == 1 else { throw .unsupportedParameter("more than one master key") }
        guard keyParameters[0].hasPrefix("inline:") else { throw .malformed("key method is not inline") }
        let inline = keyParameters[0].dropFirst("inline:".count).split(separator: "|", omittingEmptySubsequences: false)
        guard let keyMaterial = Base64.decode(inline[0]), keyMaterial.count == suite.keyMaterialLength else {
            throw .malformed("inline key is not \(suite.keyMaterialLength) bytes of base64")
        }
        for extra in inline.dropFirst() {
            if extra.contains(":") { throw .unsupportedParameter("MKI") }
            guard let lifetime = SDESCrypto.lifetime(extra) else { throw .malformed("malformed key lifetime") }
            guard lifetime >= 1 << 31 else { throw .unsupportedParameter("key lifetime below 2^31") }
        }
        self.tag = tag
        self.suite = suite
        self.keyMaterial = keyMaterial
    }

    /// `2^31` or a decimal number of packets.
    static func lifetime(_ text: Substring) -> UInt64? {
        if text.hasPrefix("2^"), let exponent = UInt64(text.dropFirst(2)), exponent < 64 { return 1 << exponent }
        guard text.count <= 19, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(text)
    }

    /// The attribute value; never logged (it carries the key).
    public var attributeValue: String { "\(tag) \(suite.rawValue) inline:\(Base64.encode(keyMaterial))" }

    /// Redacted: a description must not leak the key into a log.
    public var description: String { "crypto \(tag) \(suite.rawValue) (key redacted)" }
}

/// RFC 4648 base64 with padding, strict (no whitespace, padding only at the end).
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(0) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for position in 0..<4 {
                output.append(
                    position <= chunk.count ? alphabet[Int(value >> (18 - 6 * UInt32(position)) & 0x3F)] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        for start in stride(from: 0, to: characters.count, by: 4) {
            var value: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let character = characters[start + offset]
                let sextet: UInt32
                if character == UInt8(ascii: "=") {
                    guard start + 4 == characters.count, offset >= 2 else { return nil }
                    padding += 1
                    sextet = 0
                } else {
                    guard padding == 0, let position = alphabet.firstIndex(of: character) else { return nil }
                    sextet = UInt32(position)
                }
                value = value << 6 | sextet
            }
            output.append(UInt8(value >> 16 & 0xFF))
            if padding < 2 { output.append(UInt8(value >> 8 & 0xFF)) }
            if padding < 1 { output.append(UInt8(value & 0xFF)) }
        }
        return output
    }
}
