import FoundationEssentials
public import SystemPackage

/// The "network" section of `DIR/conclave.json`, written by the console (docs/network.md):
///
/// ```
/// "network": {"hostname": "relay1", "dns": ["192.0.2.53"], "search": ["example.org"], "ntp": ["192.0.2.123"],
///             "interfaces": {"eth0": {"dhcp": false, "addresses": ["192.0.2.10/24", "2001:db8::10/64"],
///                                     "gateway": "192.0.2.1", "gateway6": "2001:db8::1",
///                                     "routes": [{"to": "198.51.100.0/24", "via": "192.0.2.254"}]}}}
/// ```
/// An interface with `"dhcp": true` gets its address, route and DNS from udhcpc, whose hook calls
/// `conclave net dhcp-event`; `net apply` then only brings it up.
public struct NetworkConfiguration: Sendable, Equatable {
    public struct StaticRoute: Sendable, Equatable {
        public var destination: InterfaceAddress
        public var gateway: InterfaceAddress?
    }

    public struct Interface: Sendable, Equatable {
        public var dhcp = false
        public var isUp = true
        public var addresses: [InterfaceAddress] = []
        public var gateway: InterfaceAddress?
        public var gateway6: InterfaceAddress?
        public var routes: [StaticRoute] = []
        public init() {}
    }

    public var hostname: String?
    public var dns: [InterfaceAddress] = []
    public var search: [String] = []
    /// Kept for the time service (a later step); nothing here uses it yet.
    public var ntp: [String] = []
    public var interfaces: [String: Interface] = [:]

    public init() {}

    public static func isValidInterfaceName(_ name: String) -> Bool {
        // IFNAMSIZ - 1 bytes, no "/", no whitespace, not "." or "..".
        !name.isEmpty && name.utf8.count < 16 && name != "." && name != ".."
            && name.allSatisfy { !$0.isWhitespace && $0 != "/" && $0 != ":" }
    }

    /// RFC 1123 host name: labels of letters, digits and hyphens.
    public static func isValidHostname(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    public static func parse(_ value: JSONValue, source: String, field prefix: String = "network.") throws(ConfigurationFileError)
        -> NetworkConfiguration
    {
        let reader = JSONFieldReader(source: source)
        let object = try reader.object(value, field: String(prefix.dropLast()))
        try reader.refuseUnknown(object, known: ["hostname", "dns", "search", "ntp", "interfaces"], prefix: prefix)
        var configuration = NetworkConfiguration()
        if let hostname = try reader.string(object["hostname"], field: prefix + "hostname") {
            guard isValidHostname(hostname) else { throw .invalid(source, field: prefix + "hostname", "not a valid host name") }
            configuration.hostname = hostname
        }
        for (index, text) in try reader.strings(object["dns"], field: prefix + "dns").enumerated() {
            guard let address = InterfaceAddress(cidr: text), !text.contains("/") else {
                throw .invalid(source, field: "\(prefix)dns[\(index)]", "expected an IPv4 or IPv6 address, got \"\(text)\"")
            }
            configuration.dns.append(address)
        }
        configuration.search = try reader.strings(object["search"], field: prefix + "search")
        for (index, domain) in configuration.search.enumerated() where !isValidHostname(domain) {
            throw .invalid(source, field: "\(prefix)search[\(index)]", "not a domain name")
        }
        configuration.ntp = try reader.strings(object["ntp"], field: prefix + "ntp")
        if let interfaces = object["interfaces"] {
            for (name, value) in try reader.object(interfaces, field: prefix + "interfaces") {
                let field = prefix + "interfaces.\(name)."
                guard isValidInterfaceName(name) else { throw .invalid(source, field: String(field.dropLast()), "not an interface name") }
                configuration.interfaces[name] = try parseInterface(value, reader: reader, field: field)
            }
        }
        return configuration
    }

    private static func parseInterface(_ value: JSONValue, reader: JSONFieldReader, field prefix: String) throws(ConfigurationFileError)
        -> Interface
    {
        let object = try reader.object(value, field: String(prefix.dropLast()))
        try reader.refuseUnknown(object, known: ["dhcp", "up", "addresses", "gateway", "gateway6", "routes"], prefix: prefix)
        var interface = Interface()
        interface.dhcp = try reader.bool(object["dhcp"], field: prefix + "dhcp") ?? false
        interface.isUp = try reader.bool(object["up"], field: prefix + "up") ?? true
        for (index, text) in try reader.strings(object["addresses"], field: prefix + "addresses").enumerated() {
            guard text.contains("/"), let address = InterfaceAddress(cidr: text) else {
                throw .invalid(reader.source, field: "\(prefix)addresses[\(index)]", "expected ADDRESS/PREFIX, got \"\(text)\"")
            }
            interface.addresses.append(address)
        }
        if interface.dhcp && !interface.addresses.isEmpty {
            throw .invalid(reader.source, field: prefix + "addresses", "an interface with dhcp gets its IPv4 address from the lease")
        }
        interface.gateway = try gateway(object["gateway"], family: .ipv4, reader: reader, field: prefix + "gateway")
        interface.gateway6 = try gateway(object["gateway6"], family: .ipv6, reader: reader, field: prefix + "gateway6")
        if case .array(let routes)? = object["routes"] {
            for (index, route) in routes.enumerated() {
                let field = "\(prefix)routes[\(index)]"
                let fields = try reader.object(route, field: field)
                try reader.refuseUnknown(fields, known: ["to", "via"], prefix: field + ".")
                guard let to = try reader.string(fields["to"], field: field + ".to"), let destination = InterfaceAddress(cidr: to) else {
                    throw .invalid(reader.source, field: field + ".to", "expected a destination PREFIX/LENGTH")
                }
                let via = try gateway(fields["via"], family: destination.family, reader: reader, field: field + ".via")
                interface.routes.append(StaticRoute(destination: destination, gateway: via))
            }
        } else if object["routes"] != nil && object["routes"] != .null {
            throw .invalid(reader.source, field: prefix + "routes", "expected an array of {\"to\", \"via\"}")
        }
        return interface
    }

    private static func gateway(_ value: JSONValue?, family: InterfaceAddress.Family, reader: JSONFieldReader, field: String)
        throws(ConfigurationFileError) -> InterfaceAddress?
    {
        guard let text = try reader.string(value, field: field) else { return nil }
        guard !text.contains("/"), let address = InterfaceAddress(cidr: text), address.family == family else {
            throw .invalid(reader.source, field: field, "expected an \(family == .ipv4 ? "IPv4" : "IPv6") address, got \"\(text)\"")
        }
        return address
    }

    /// The "network" and "tuning" sections of `DIR/conclave.json`; both empty when the file or
    /// the section is missing. Read here rather than through `DaemonConfiguration` so that
    /// `net apply` at boot does not depend on the daemon's other keys.
    public static func load(stateDirectory: FilePath) throws(ConfigurationFileError) -> (network: NetworkConfiguration, tuning: TuningProfile) {
        let path = stateDirectory.appending("conclave.json")
        guard path.exists else { return (NetworkConfiguration(), TuningProfile()) }
        let bytes: [UInt8]
        do { bytes = try Files.read(path) } catch { throw .unreadable(path.string, "\(error)") }
        let object: [String: JSONValue]
        do { object = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes)) } catch {
            throw .invalid(path.string, field: "(document)", "not a JSON object")
        }
        let network = try object["network"].map { value throws(ConfigurationFileError) in try parse(value, source: path.string) }
        let tuning = try object["tuning"].map { value throws(ConfigurationFileError) in
            try TuningProfile.parse(value, source: path.string, field: "tuning.")
        }
        return (network ?? NetworkConfiguration(), tuning ?? TuningProfile())
    }
}
