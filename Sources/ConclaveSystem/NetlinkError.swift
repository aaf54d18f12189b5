internal import CNetlink

/// A failure reported by libnl, translated once from its negative error codes.
public struct NetlinkError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let code: Int32

    init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = code < 0 ? -code : code
    }

    public var description: String {
        "\(operation) failed: \(String(cString: nl_geterror(code)))"
    }
}
