import FoundationEssentials
public import SystemPackage

/// Changes to `DIR/conclave.json` made by the console: the document is read as JSON (so keys
/// other modules own are kept), changed, checked whole by `DaemonConfiguration.parse` (the
/// same reader the daemon and `conclave net` use), and only then written atomically. A change
/// the reader refuses writes nothing.
public struct ConfigurationDocument: Sendable {
    public let path: FilePath

    public init(stateDirectory: FilePath) { path = stateDirectory.appending("conclave.json") }

    /// The top-level object; empty when the file is missing or blank.
    public func object() throws -> [String: JSONValue] {
        guard path.exists else { return [:] }
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch { throw ConfigurationFileError.unreadable(path.string, "\(error)") }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        do { return try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes)) } catch {
            throw ConfigurationFileError.invalid(path.string, field: "(document)", "not a JSON object")
        }
    }

    /// Applies `change` to the document, validates the result and writes it. Returns the
    /// configuration as the daemon will read it. Nothing is written if `change` throws or the
    /// result is refused.
    @discardableResult
    public func update(_ change: (inout [String: JSONValue]) throws -> Void) throws -> DaemonConfiguration {
        var document = try object()
        try change(&document)
        if document["version"] == nil { document["version"] = .number(Double(DaemonConfiguration.schemaVersion)) }
        let bytes = try Self.encode(document)
        let configuration = try DaemonConfiguration.parse(bytes, source: path.string)
        try path.removingLastComponent().makeDirectory(permissions: FilePermissions(rawValue: 0o755))
        try Files.writeAtomically(bytes, to: path, permissions: FilePermissions(rawValue: 0o644))
        return configuration
    }

    /// Sorted keys, pretty-printed, newline at the end: diffs and `cat` stay readable.
    public static func encode(_ document: [String: JSONValue]) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(document)) + [0x0A]
    }
}

extension NetworkConfiguration {
    /// The "network" section as `parse` reads it back (`parse(jsonValue) == self`).
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [:]
        if let hostname { object["hostname"] = .string(hostname) }
        if !dns.isEmpty { object["dns"] = .array(dns.map { .string($0.address) }) }
        if !search.isEmpty { object["search"] = .array(search.map { .string($0) }) }
        if !ntp.isEmpty { object["ntp"] = .array(ntp.map { .string($0) }) }
        if !interfaces.isEmpty {
            object["interfaces"] = .object(interfaces.mapValues { $0.jsonValue })
        }
        return .object(object)
    }
}

extension NetworkConfiguration.Interface {
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [:]
        if dhcp { object["dhcp"] = .bool(true) }
        if !isUp { object["up"] = .bool(false) }
        if !addresses.isEmpty { object["addresses"] = .array(addresses.map { .string($0.cidr) }) }
        if let gateway { object["gateway"] = .string(gateway.address) }
        if let gateway6 { object["gateway6"] = .string(gateway6.address) }
        if !routes.isEmpty {
            object["routes"] = .array(routes.map { route in
                var fields: [String: JSONValue] = ["to": .string(route.destination.cidr)]
                if let via = route.gateway { fields["via"] = .string(via.address) }
                return .object(fields)
            })
        }
        return .object(object)
    }
}
