import FoundationEssentials

/// A NIC and kernel tuning profile (`board/<name>/tuning.json`, plus the "tuning" overrides of
/// `conclave.json`); docs/tuning.md explains every value the boards use.
///
/// ```
/// {"links": {"<ifname>|*": {"mtu": 1500, "txqueuelen": 2500, "qdisc": "fq",
///                           "rings": {"rx": 4096, "tx": "max"}, "coalesce": {"rx-usecs": 50, "adaptive-rx": true},
///                           "channels": {"combined": 4}, "features": {"gro": true, "rx-udp-gro-forwarding": true},
///                           "rps_cpus": "ff", "xps_cpus": "ff", "rps_flow_cnt": 4096}},
///  "sysctl": {"net.core.rmem_max": "33554432"}}
/// ```
/// "*" applies to every Ethernet-like link (one with a MAC address) but loopback; a named
/// link's settings override it key by key.
public struct TuningProfile: Sendable, Equatable {
    /// A ring size or queue count: a number, or "max" for the device's maximum (read first).
    public enum Count: Sendable, Equatable, CustomStringConvertible {
        case value(UInt32)
        case maximum

        public var description: String {
            switch self {
            case .value(let value): String(value)
            case .maximum: "max"
            }
        }
    }

    public struct LinkTuning: Sendable, Equatable {
        public var mtu: UInt32?
        public var txqueuelen: UInt32?
        /// Root qdisc kind: "fq", "fq_codel", … ("default" removes ours and lets the kernel choose).
        public var qdisc: String?
        public var rings: [String: Count] = [:]
        public var coalesce: [String: CoalesceValue] = [:]
        public var channels: [String: Count] = [:]
        /// By ethtool's short names ("gro", "tso") or the kernel's ("rx-udp-gro-forwarding").
        public var features: [String: Bool] = [:]
        public var rpsCPUs: String?
        public var xpsCPUs: String?
        /// Per receive queue `rps_flow_cnt` (receive flow steering; pairs with rps_sock_flow_entries).
        public var rpsFlowCount: UInt32?
        /// Keys the device must be able to do ("rings", "channels", "coalesce", "features",
        /// "rps_cpus", "xps_cpus", "rps_flow_cnt"): when it cannot, apply refuses the whole
        /// profile instead of skipping the setting with a note.
        public var required: Set<String> = []

        public init() {}

        /// `self` over `base`, key by key.
        public func merged(over base: LinkTuning) -> LinkTuning {
            var result = base
            result.mtu = mtu ?? base.mtu
            result.txqueuelen = txqueuelen ?? base.txqueuelen
            result.qdisc = qdisc ?? base.qdisc
            result.rings.merge(rings) { $1 }
            result.coalesce.merge(coalesce) { $1 }
            result.channels.merge(channels) { $1 }
            result.features.merge(features) { $1 }
            result.rpsCPUs = rpsCPUs ?? base.rpsCPUs
            result.xpsCPUs = xpsCPUs ?? base.xpsCPUs
            result.rpsFlowCount = rpsFlowCount ?? base.rpsFlowCount
            result.required = base.required.union(required)
            return result
        }
    }

    public var description: String?
    public var links: [String: LinkTuning] = [:]
    public var sysctl: [String: String] = [:]

    public init() {}

    /// What applies to one link: the named entry over "*". "*" never applies to loopback, nor
    /// to a link the caller says is not Ethernet-like (tunnels such as sit0 have no MAC address,
    /// and a 1500-byte MTU or a qdisc meant for the NICs is wrong for them).
    public func settings(forLink name: String, wildcardApplies: Bool = true) -> LinkTuning? {
        let wildcard = name == "lo" || !wildcardApplies ? nil : links["*"]
        switch (links[name], wildcard) {
        case (nil, nil): return nil
        case (let named?, nil): return named
        case (nil, let wildcard?): return wildcard
        case (let named?, let wildcard?): return named.merged(over: wildcard)
        }
    }

    /// `overrides` over `self`: per link and per key, then per sysctl.
    public func merged(with overrides: TuningProfile) -> TuningProfile {
        var result = self
        for (name, link) in overrides.links { result.links[name] = link.merged(over: links[name] ?? LinkTuning()) }
        result.sysctl.merge(overrides.sysctl) { $1 }
        return result
    }

    public static func load(_ path: String) throws -> TuningProfile {
        let bytes: [UInt8]
        do { bytes = try Files.read(.init(path)) } catch { throw ConfigurationFileError.unreadable(path, "\(error)") }
        return try parse(bytes, source: path)
    }

    public static func parse(_ bytes: [UInt8], source: String) throws(ConfigurationFileError) -> TuningProfile {
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) } catch {
            throw .invalid(source, field: "(document)", "not valid JSON")
        }
        return try parse(value, source: source, field: "")
    }

    /// `field` prefixes every error ("tuning." inside conclave.json).
    public static func parse(_ value: JSONValue, source: String, field prefix: String) throws(ConfigurationFileError) -> TuningProfile {
        let reader = JSONFieldReader(source: source)
        let object = try reader.object(value, field: prefix.isEmpty ? "(document)" : String(prefix.dropLast()))
        try reader.refuseUnknown(object, known: ["description", "links", "sysctl"], prefix: prefix)
        var profile = TuningProfile()
        profile.description = try reader.string(object["description"], field: prefix + "description")
        if let links = object["links"] {
            for (name, value) in try reader.object(links, field: prefix + "links") {
                guard name == "*" || NetworkConfiguration.isValidInterfaceName(name) else {
                    throw .invalid(source, field: prefix + "links.\(name)", "not an interface name or \"*\"")
                }
                profile.links[name] = try parseLink(value, reader: reader, field: prefix + "links.\(name).")
            }
        }
        if let sysctl = object["sysctl"] {
            for (name, value) in try reader.object(sysctl, field: prefix + "sysctl") {
                let field = prefix + "sysctl.\(name)"
                guard !name.isEmpty, !name.contains(".."), name.allSatisfy({ $0.isLetter || $0.isNumber || "._-/".contains($0) }) else {
                    throw .invalid(source, field: field, "not a sysctl name")
                }
                switch value {
                case .string(let text): profile.sysctl[name] = text
                case .number(let number) where number == number.rounded(): profile.sysctl[name] = String(Int64(number))
                default: throw .invalid(source, field: field, "expected a string (or an integer)")
                }
            }
        }
        return profile
    }

    static let linkKeys: Set<String> = [
        "mtu", "txqueuelen", "qdisc", "rings", "coalesce", "channels", "features", "rps_cpus", "xps_cpus", "rps_flow_cnt", "required",
    ]

    /// The settings a device may lack, which `required` can insist on.
    static let requirableKeys: Set<String> = ["rings", "coalesce", "channels", "features", "rps_cpus", "xps_cpus", "rps_flow_cnt"]

    private static func parseLink(_ value: JSONValue, reader: JSONFieldReader, field prefix: String) throws(ConfigurationFileError)
        -> LinkTuning
    {
        let object = try reader.object(value, field: String(prefix.dropLast()))
        try reader.refuseUnknown(object, known: linkKeys, prefix: prefix)
        var link = LinkTuning()
        // Only the type is checked here: the device decides what it can do, and says so at apply.
        link.mtu = try reader.integer(object["mtu"], field: prefix + "mtu", in: 0...Int(UInt32.max)).map(UInt32.init)
        link.txqueuelen = try reader.integer(object["txqueuelen"], field: prefix + "txqueuelen", in: 0...Int(UInt32.max)).map(UInt32.init)
        if let qdisc = try reader.string(object["qdisc"], field: prefix + "qdisc") {
            guard !qdisc.isEmpty, qdisc.count < 16, qdisc.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw .invalid(reader.source, field: prefix + "qdisc", "not a qdisc kind")
            }
            link.qdisc = qdisc
        }
        link.rings = try counts(object["rings"], names: EthtoolNetlink.ringNames, reader: reader, field: prefix + "rings")
        link.channels = try counts(object["channels"], names: EthtoolNetlink.channelNames, reader: reader, field: prefix + "channels")
        if let coalesce = object["coalesce"] {
            let fields = try reader.object(coalesce, field: prefix + "coalesce")
            try reader.refuseUnknown(fields, known: Set(EthtoolNetlink.coalesceParameters.map(\.name)), prefix: prefix + "coalesce.")
            for parameter in EthtoolNetlink.coalesceParameters {
                let field = prefix + "coalesce.\(parameter.name)"
                if parameter.isFlag {
                    if let flag = try reader.bool(fields[parameter.name], field: field) { link.coalesce[parameter.name] = .flag(flag) }
                } else if let count = try reader.integer(fields[parameter.name], field: field, in: 0...Int(UInt32.max)) {
                    link.coalesce[parameter.name] = .count(UInt32(count))
                }
            }
        }
        if let features = object["features"] {
            for (name, value) in try reader.object(features, field: prefix + "features") {
                guard let flag = try reader.bool(value, field: prefix + "features.\(name)") else { continue }
                link.features[name] = flag
            }
        }
        for (key, path) in [("rps_cpus", \LinkTuning.rpsCPUs), ("xps_cpus", \LinkTuning.xpsCPUs)] {
            guard let mask = try reader.string(object[key], field: prefix + key) else { continue }
            guard CPUMask.isValid(mask) else { throw .invalid(reader.source, field: prefix + key, "expected a hexadecimal CPU mask such as \"ff\"") }
            link[keyPath: path] = mask
        }
        link.rpsFlowCount = try reader.integer(object["rps_flow_cnt"], field: prefix + "rps_flow_cnt", in: 0...(1 << 30)).map(UInt32.init)
        for (index, key) in try reader.strings(object["required"], field: prefix + "required").enumerated() {
            guard requirableKeys.contains(key) else {
                throw .invalid(reader.source, field: "\(prefix)required[\(index)]", "expected one of \(requirableKeys.sorted().joined(separator: ", "))")
            }
            link.required.insert(key)
        }
        return link
    }

    private static func counts(_ value: JSONValue?, names: [String], reader: JSONFieldReader, field: String) throws(ConfigurationFileError)
        -> [String: Count]
    {
        guard let value else { return [:] }
        let fields = try reader.object(value, field: field)
        try reader.refuseUnknown(fields, known: Set(names), prefix: field + ".")
        var result: [String: Count] = [:]
        for (name, value) in fields {
            switch value {
            case .string("max"): result[name] = .maximum
            case .number(let number) where number == number.rounded() && number >= 0 && number <= Double(UInt32.max):
                result[name] = .value(UInt32(number))
            case .null: continue
            default: throw .invalid(reader.source, field: "\(field).\(name)", "expected a count or \"max\"")
            }
        }
        return result
    }
}

/// Typed access to JSON values for the network files, each error naming its field.
struct JSONFieldReader {
    let source: String

    func object(_ value: JSONValue, field: String) throws(ConfigurationFileError) -> [String: JSONValue] {
        guard case .object(let fields) = value else { throw .invalid(source, field: field, "expected an object") }
        return fields
    }

    func refuseUnknown(_ object: [String: JSONValue], known: Set<String>, prefix: String) throws(ConfigurationFileError) {
        for key in object.keys.sorted() where !known.contains(key) {
            throw .invalid(source, field: prefix + key, "unknown field (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    func string(_ value: JSONValue?, field: String) throws(ConfigurationFileError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw .invalid(source, field: field, "expected a string")
        }
    }

    func strings(_ value: JSONValue?, field: String) throws(ConfigurationFileError) -> [String] {
        switch value {
        case nil, .null?: return []
        case .array(let items)?:
            var result: [String] = []
            for (index, item) in items.enumerated() {
                guard case .string(let text) = item else { throw .invalid(source, field: "\(field)[\(index)]", "expected a string") }
                result.append(text)
            }
            return result
        default: throw .invalid(source, field: field, "expected an array of strings")
        }
    }

    func bool(_ value: JSONValue?, field: String) throws(ConfigurationFileError) -> Bool? {
        switch value {
        case nil, .null?: return nil
        case .bool(let flag)?: return flag
        default: throw .invalid(source, field: field, "expected true or false")
        }
    }

    func integer(_ value: JSONValue?, field: String, in range: ClosedRange<Int>) throws(ConfigurationFileError) -> Int? {
        switch value {
        case nil, .null?: return nil
        case .number(let number)?:
            guard number == number.rounded(), let integer = Int(exactly: number), range.contains(integer) else {
                throw .invalid(source, field: field, "expected an integer in \(range.lowerBound)…\(range.upperBound), got \(number)")
            }
            return integer
        default: throw .invalid(source, field: field, "expected an integer")
        }
    }
}
