internal import COpenSSL

/// An error reported by OpenSSL, with the reasons drained from its per-thread error queue.
public struct OpenSSLError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let reasons: [String]

    public init(operation: String, reasons: [String]) {
        self.operation = operation
        self.reasons = reasons
    }

    /// An error found by our own checks around an OpenSSL call (bad input, wrong size, …).
    public init(operation: String, reason: String) {
        self.init(operation: operation, reasons: [reason])
    }

    /// Call this right after the failing call, on the same thread: the queue is per thread.
    /// Empties the per-thread error queue without reporting it: for calls whose failure is an
    /// expected answer (end of a PEM bundle, a try of another format).
    static func clearQueue() { ERR_clear_error() }

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
