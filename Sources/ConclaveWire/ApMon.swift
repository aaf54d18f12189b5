/// The ApMon/MonALISA UDP datagram encoder (../shared/protocols/apmon.md): XDR, the "2.2"
/// header with instance id and sequence number, at most 1440 bytes, split with full headers.
/// The receiver drops a malformed datagram without a word, so every rule is enforced here.
public enum ApMon {
    public static let defaultPort: UInt16 = 8884
    /// The most UDP payload per datagram: no fragmentation on a 1500-byte MTU.
    public static let maximumDatagramSize = 1440
    /// `v:<version>p:<password>`; the tag after `_` must not contain `p:`.
    public static let version = "2.2.0_conclave"

    public enum Value: Equatable, Sendable {
        case string(String)
        case int32(Int32)
        /// Type code 3: not confirmed against a live service (apmon.md §5); prefer int32.
        case int64(Int64)
        case double(Double)
    }

    public struct Parameter: Equatable, Sendable {
        public let name: String
        public let value: Value

        public init(_ name: String, _ value: Value) {
            self.name = name
            self.value = value
        }
    }

    /// Per-destination sequence numbers: 1 first, then +1 modulo 2,000,000,000.
    public struct Sequence: Equatable, Sendable {
        public private(set) var next: Int32 = 1

        public init() {}

        init(next: Int32) { self.next = next }

        public mutating func take() -> Int32 {
            defer { next = next == 1_999_999_999 ? 0 : next + 1 }
            return next
        }
    }

    public struct Report: Equatable, Sendable {
        public var datagrams: [[UInt8]]
        /// Parameters left out because one alone does not fit a datagram (to be logged).
        public var dropped: [String]
    }

    /// Encodes one (cluster, node) report. Each datagram takes the next number of `sequence`.
    /// Refuses an empty or non-ASCII name, a password with whitespace, and an empty report.
    public static func encode(
        cluster: String, node: String, parameters: [Parameter], password: String, instanceID: Int32,
        timestamp: Int32? = nil, sequence: inout Sequence
    ) throws(WireError) -> Report {
        guard instanceID >= 0 else { throw .malformed("instance id must be non-negative") }
        guard password.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw .malformed("an ApMon password is printable ASCII without spaces")
        }
        if let timestamp, timestamp <= 0 { throw .malformed("timestamp must be positive seconds") }
        for (label, text) in [("cluster", cluster), ("node", node)] {
            guard !text.isEmpty, text.utf8.count <= 32767 else { throw .malformed("\(label) must be 1…32767 bytes") }
        }
        guard !node.hasPrefix("#acc_") else { throw .malformed("node names starting #acc_ are accounting records") }
        var head: [UInt8] = []
        appendString("v:\(version)p:\(password)", to: &head)
        let idsOffset = head.count
        head += [0, 0, 0, 0, 0, 0, 0, 0]  // instance id and seq, filled per datagram
        appendString(cluster, to: &head)
        appendString(node, to: &head)
        let tail = timestamp.map { value -> [UInt8] in var bytes: [UInt8] = []; appendInt32(value, to: &bytes); return bytes } ?? []
        let room = maximumDatagramSize - head.count - 4 - tail.count  // 4: n_params

        var encodedParameters: [[UInt8]] = []
        var dropped: [String] = []
        for parameter in parameters {
            guard !parameter.name.isEmpty, parameter.name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw .malformed("parameter names are non-empty printable ASCII, got '\(parameter.name)'")
            }
            var bytes: [UInt8] = []
            appendString(parameter.name, to: &bytes)
            switch parameter.value {
            case .string(let text):
                guard !text.isEmpty, text.utf8.count <= 32767 else { throw .malformed("string value of \(parameter.name) must be 1…32767 bytes") }
                appendInt32(0, to: &bytes)
                appendString(text, to: &bytes)
            case .int32(let value):
                appendInt32(2, to: &bytes)
                appendInt32(value, to: &bytes)
            case .int64(let value):
                appendInt32(3, to: &bytes)
                appendInt64(UInt64(bitPattern: value), to: &bytes)
            case .double(let value):
                appendInt32(5, to: &bytes)
                appendInt64(value.bitPattern, to: &bytes)
            }
            if bytes.count > room { dropped.append(parameter.name) } else { encodedParameters.append(bytes) }
        }
        guard !encodedParameters.isEmpty else {
            throw .malformed("an ApMon report needs at least one parameter that fits a datagram")
        }

        // Greedy packing in order: each part is a complete datagram with its own count and seq.
        var parts: [[[UInt8]]] = [[]]
        var used = 0
        for bytes in encodedParameters {
            if used + bytes.count > room {
                parts.append([])
                used = 0
            }
            parts[parts.count - 1].append(bytes)
            used += bytes.count
        }
        let datagrams = parts.map { part -> [UInt8] in
            var datagram = head
            withUnsafeBytes(of: instanceID.bigEndian) { datagram.replaceSubrange(idsOffset..<idsOffset + 4, with: $0) }
            withUnsafeBytes(of: sequence.take().bigEndian) { datagram.replaceSubrange(idsOffset + 4..<idsOffset + 8, with: $0) }
            appendInt32(Int32(part.count), to: &datagram)
            for bytes in part { datagram += bytes }
            return datagram + tail
        }
        return Report(datagrams: datagrams, dropped: dropped)
    }

    static func appendInt32(_ value: Int32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes += $0 }
    }

    static func appendInt64(_ value: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes += $0 }
    }

    /// XDR string: length, bytes, zero padding to a multiple of 4.
    static func appendString(_ text: String, to bytes: inout [UInt8]) {
        let utf8 = Array(text.utf8)
        appendInt32(Int32(utf8.count), to: &bytes)
        bytes += utf8
        bytes += [UInt8](repeating: 0, count: (4 - utf8.count % 4) % 4)
    }
}
