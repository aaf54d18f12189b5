internal import CNetlink

/// A failure reported by libnl or by the kernel through netlink, translated once: libnl's
/// negative error codes, or a kernel errno (converted to libnl's code) with the kernel's
/// extended-ack message when it sent one.
public struct NetlinkError: Error, CustomStringConvertible, Sendable, Equatable {
    public let operation: String
    /// libnl's error code (`NLE_…`), positive.
    public let code: Int32
    /// The kernel's explanation (`NLMSGERR_ATTR_MSG`), e.g. "requested ring size exceeds maximum".
    public let kernelMessage: String?

    init(_ operation: String, code: Int32, kernelMessage: String? = nil) {
        self.operation = operation
        self.code = code < 0 ? -code : code
        self.kernelMessage = kernelMessage
    }

    /// From a kernel `nlmsgerr.error` (a negative errno).
    init(_ operation: String, errno: Int32, kernelMessage: String? = nil) {
        self.init(operation, code: nl_syserr2nlerr(errno < 0 ? -errno : errno), kernelMessage: kernelMessage)
    }

    /// The device (its driver) does not implement this operation or parameter: EOPNOTSUPP.
    public var isNotSupported: Bool { code == NLE_OPNOTSUPP }

    public var reason: String {
        String(cString: nl_geterror(code)) + (kernelMessage.map { " (\($0))" } ?? "")
    }

    public var description: String { "\(operation) failed: \(reason)" }
}
