internal import COpenSSL

/// An error reported by OpenSSL, with the reasons drained from its per-thread error queue.
public struct OpenSSLError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let reasons: [String]

    /// Call this right after the failing call, on the same thread: the queue is per thread.
    static func drainQueue(after operation: String) -> OpenSSLError {
        var reasons: [String] = []
        var code = ERR_get_error()
        while code != 0 {
            reasons.append(ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)")
            code = ERR_get_error()
        }
        return OpenSSLError(operation: operation, reasons: reasons)
    }

    public var description: String {
        reasons.isEmpty ? "\(operation) failed" : "\(operation) failed: \(reasons.joined(separator: "; "))"
    }
}
