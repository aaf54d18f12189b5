import ConclaveCrypto
import ConclaveSystem

/// The privacy mode applied to every personal value that leaves the control worker: ApMon
/// datagrams, Prometheus labels and log lines (docs/monitoring.md "Privacy").
///
/// - `full`: the value as it is;
/// - `pseudonymous`: the first 8 bytes of HMAC-SHA256(secret, field ‖ 0x00 ‖ value) as 16 hex
///   digits. The same value in the same field always gives the same pseudonym (so one user's
///   sessions can be correlated) until the secret is rotated; the field name in the input keeps
///   an address and a nickname that happen to be equal from matching;
/// - `off`: nothing.
public struct PrivacyFilter: Sendable {
    public enum Field: String, Sendable, CaseIterable {
        case nickname, address, mac, meeting, email
    }

    public let mode: MonitoringConfiguration.Privacy
    private let secret: [UInt8]

    public static let pseudonymBytes = 8

    /// `secret` is the per-installation key (`MonitoringSecret`); it must not be empty unless
    /// the mode never uses it.
    public init(mode: MonitoringConfiguration.Privacy, secret: [UInt8]) {
        precondition(mode != .pseudonymous || secret.count >= 16, "a pseudonymous filter needs a secret")
        self.mode = mode
        self.secret = secret
    }

    /// What may leave the box for `value`; nil: nothing.
    public func personal(_ value: String, _ field: Field) -> String? {
        switch mode {
        case .full: return value
        case .off: return nil
        case .pseudonymous: return pseudonym(value, field)
        }
    }

    /// For log lines: the pseudonym, the value in `full`, or "-" when the mode is `off`.
    public func logged(_ value: String, _ field: Field) -> String { personal(value, field) ?? "-" }

    func pseudonym(_ value: String, _ field: Field) -> String {
        let message = Array(field.rawValue.utf8) + [0] + Array(value.utf8)
        // HMAC cannot fail with a valid key; if OpenSSL does, send nothing rather than the value.
        guard let tag = try? HMAC.sha256(key: secret, message: message) else { return "unavailable" }
        return tag.prefix(Self.pseudonymBytes).map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
        }.joined()
    }
}
