/// The INI subset RAUC's manifests and `system.conf` use (GLib key files): `[section]`
/// headers, `key=value` lines, `#` comments. A duplicate section or key is refused, since two
/// readers could pick different ones.
public struct KeyFile: Sendable, Equatable {
    public private(set) var sections: [String: [String: String]] = [:]
    /// Section names in file order.
    public private(set) var order: [String] = []

    public init(parsing bytes: [UInt8], limit: Int = 65_536) throws(UpdateError) {
        guard bytes.count <= limit else { throw .malformedManifest("\(bytes.count) bytes (limit \(limit))") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformedManifest("not UTF-8 text") }
        var current: String?
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else { throw .malformedManifest("line \(number + 1): bad section header") }
                let name = String(line.dropFirst().dropLast())
                guard sections[name] == nil else { throw .malformedManifest("line \(number + 1): section [\(name)] twice") }
                sections[name] = [:]
                order.append(name)
                current = name
                continue
            }
            guard let current else { throw .malformedManifest("line \(number + 1): key outside a section") }
            guard let equals = line.firstIndex(of: "=") else { throw .malformedManifest("line \(number + 1): no '='") }
            let key = String(line[..<equals]).trimmingWhitespace()
            let value = String(line[line.index(after: equals)...]).trimmingWhitespace()
            guard !key.isEmpty else { throw .malformedManifest("line \(number + 1): empty key") }
            guard sections[current]?[key] == nil else { throw .malformedManifest("line \(number + 1): key '\(key)' twice in [\(current)]") }
            sections[current]?[key] = value
        }
    }

    public subscript(section: String, key: String) -> String? { sections[section]?[key] }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
