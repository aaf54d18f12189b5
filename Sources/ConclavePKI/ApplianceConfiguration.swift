public import FoundationEssentials
public import SystemPackage
import ConclaveSystem

public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case malformed(path: String, reason: String)
    case fqdnAlreadySet(current: String, requested: String)
    case invalidFQDN(String)

    public var description: String {
        switch self {
        case .malformed(let path, let reason): "\(path) is not valid JSON: \(reason)"
        case .fqdnAlreadySet(let current, let requested):
            "the appliance FQDN is already \(current); pass --replace-fqdn to change it to \(requested)"
        case .invalidFQDN(let name): "\(name) is not a valid FQDN"
        }
    }
}

/// The appliance FQDN in `DIR/conclave.json` (key "fqdn").
public struct ApplianceConfiguration: Sendable {
    public let path: FilePath

    public init(stateDirectory: FilePath) { path = stateDirectory.appending("conclave.json") }

    private func load() throws -> [String: JSONValue] {
        guard path.exists else { return [:] }
        let bytes = try Files.read(path)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        do {
            return try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
        } catch {
            throw ConfigurationError.malformed(path: path.string, reason: "\(error)")
        }
    }

    public func fqdn() throws -> String? {
        if case .string(let name) = try load()["fqdn"] { return name }
        return nil
    }

    /// Sets the FQDN when none is set; refuses a different one unless `replace`.
    public func adoptFQDN(_ name: String, replace: Bool) throws {
        let lowered = name.lowercased()
        guard Self.isValidFQDN(lowered) else { throw ConfigurationError.invalidFQDN(name) }
        var object = try load()
        if case .string(let current) = object["fqdn"] {
            if current == lowered { return }
            if !replace { throw ConfigurationError.fqdnAlreadySet(current: current, requested: lowered) }
        }
        object["fqdn"] = .string(lowered)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(object)
        try path.removingLastComponent().makeDirectory(permissions: FilePermissions(rawValue: 0o755))
        try Files.writeAtomically(Array(data) + [0x0A], to: path, permissions: FilePermissions(rawValue: 0o644))
    }

    /// Letters, digits and hyphens in dot-separated labels of at most 63 bytes.
    public static func isValidFQDN(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { $0 == 0x2D || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) || (0x41...0x5A).contains($0) }
        }
    }
}
