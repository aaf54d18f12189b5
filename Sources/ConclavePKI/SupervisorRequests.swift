public import ConclaveCrypto
public import ConclaveSystem
import FoundationEssentials
public import SystemPackage

/// What the supervisor (root) does for the control worker's command API: the changes the worker
/// may not write itself (`conclave.json` is root's, `pki/` is root's 0700). One JSON object in
/// (`supervisorRequest`), one out (`supervisorReply`); each request carries an `id` the reply
/// echoes. Every input is checked here again, whatever the worker checked: a refused request
/// writes nothing. See docs/api.md "Changes the control worker cannot write".
///
/// - `{"id":1,"op":"status"}` → `{"id":1,"ok":true,"supervisor":{…},"boot":{…}}`
/// - `{"id":2,"op":"set-security-mode","mode":"secured"}` → `{"id":2,"ok":true}`, then a reload
/// - `{"id":3,"op":"set-sso-key","pem":"-----BEGIN PUBLIC KEY-----…"}` → `{"id":3,"ok":true}`, then a reload
/// - `{"id":4,"op":"set-monitoring","monitoring":{…}}` (the whole section) → `{"id":4,"ok":true}`, then a reload
public struct SupervisorRequests: Sendable {
    public let stateDirectory: FilePath
    /// Facts about the boot (booted slot, boot order), as JSON values; read by the caller, which
    /// knows where the boot state lives.
    public let bootFacts: @Sendable () -> [String: JSONValue]

    public init(stateDirectory: FilePath, bootFacts: @escaping @Sendable () -> [String: JSONValue]) {
        self.stateDirectory = stateDirectory
        self.bootFacts = bootFacts
    }

    /// The largest SSO key accepted (a PEM public key or certificate is a few KiB).
    public static let maximumKeyBytes = 16_384

    public func handle(_ json: String, status: () -> String) -> (reply: String, reload: Bool) {
        guard let request = try? JSONDecoder().decode([String: JSONValue].self, from: Data(json.utf8)) else {
            return (Self.encode(["ok": .bool(false), "code": .string("bad-message"), "error": .string("not a JSON object")]), false)
        }
        let id = request["id"] ?? .null
        func failure(_ code: String, _ error: String, field: String? = nil) -> (reply: String, reload: Bool) {
            var reply: [String: JSONValue] = ["id": id, "ok": .bool(false), "code": .string(code), "error": .string(error)]
            if let field { reply["field"] = .string(field) }
            return (Self.encode(reply), false)
        }
        let success: [String: JSONValue] = ["id": id, "ok": .bool(true)]
        switch request["op"] {
        case .string("status")?:
            var reply = success
            reply["supervisor"] = (try? JSONDecoder().decode(JSONValue.self, from: Data(status().utf8))) ?? .null
            reply["boot"] = .object(bootFacts())
            return (Self.encode(reply), false)
        case .string("set-security-mode")?:
            guard case .string(let mode)? = request["mode"], ["secured", "mixed"].contains(mode) else {
                return failure("invalid-settings", "expected \"secured\" or \"mixed\"", field: "mode")
            }
            do {
                try ConfigurationDocument(stateDirectory: stateDirectory).update { $0["securityMode"] = .string(mode) }
            } catch {
                return failure("service-unavailable", "conclave.json not written: \(error)")
            }
            return (Self.encode(success), true)
        case .string("set-sso-key")?:
            guard case .string(let pem)? = request["pem"] else { return failure("invalid-settings", "expected a PEM text", field: "pem") }
            let bytes = Array(pem.utf8)
            if let reason = Self.refusal(ofSSOKey: bytes) { return failure("invalid-settings", reason, field: "pem") }
            do {
                let configuration = try DaemonConfiguration.load(stateDirectory: stateDirectory)
                let path = configuration.ssoKeyPath(stateDirectory: stateDirectory)
                try path.removingLastComponent().makeDirectory(permissions: FilePermissions(rawValue: 0o700))
                try Files.writeAtomically(bytes, to: path, permissions: FilePermissions(rawValue: 0o644))
            } catch {
                return failure("service-unavailable", "the key was not written: \(error)")
            }
            return (Self.encode(success), true)
        case .string("set-monitoring")?:
            guard case .object(let section)? = request["monitoring"] else {
                return failure("invalid-settings", "expected an object", field: "monitoring")
            }
            do {
                try ConfigurationDocument(stateDirectory: stateDirectory).update { $0["monitoring"] = .object(section) }
            } catch ConfigurationFileError.invalid(_, let field, let reason) {
                // The reader names "monitoring.<field>"; the API's body is the section itself.
                let name = field.hasPrefix("monitoring.") ? String(field.dropFirst("monitoring.".count)) : field
                return failure("invalid-settings", reason, field: name)
            } catch {
                return failure("service-unavailable", "conclave.json not written: \(error)")
            }
            return (Self.encode(success), true)
        default:
            return failure("bad-message", "unknown op; expected status, set-security-mode, set-sso-key or set-monitoring")
        }
    }

    /// Why `pem` cannot verify join tokens, or nil when it can (an ES256 or Ed25519 public key,
    /// as "PUBLIC KEY" or in a certificate).
    public static func refusal(ofSSOKey pem: [UInt8]) -> String? {
        guard !pem.isEmpty, pem.count <= maximumKeyBytes else { return "1 to \(maximumKeyBytes) bytes of PEM" }
        guard !pem.contains(0) else { return "contains a NUL byte" }
        let key: PublicKey
        do { key = try PublicKey(pemEncoded: pem) } catch { return "not a PEM public key or certificate: \(error)" }
        guard SignatureAlgorithm(key: key.keyDescription) != nil else {
            return "join tokens are signed with ES256 (P-256) or EdDSA (Ed25519) keys; this is \(key.keyDescription)"
        }
        return nil
    }

    static func encode(_ object: [String: JSONValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(object), as: UTF8.self)) ?? #"{"ok":false}"#
    }
}
