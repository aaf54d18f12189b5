internal import COpenSSL
internal import CConclaveOpenSSLShims

/// Facts about an established TLS connection.
public struct TLSSessionInfo: Sendable, CustomStringConvertible {
    /// "TLSv1.3" or "TLSv1.2".
    public let version: String
    /// OpenSSL's cipher suite name ("TLS_AES_256_GCM_SHA384").
    public let cipher: String
    public let applicationProtocol: String?
    /// The SNI name the client sent (server side) or asked for (client side).
    public let serverName: String?
    /// The peer's certificate, verified against the trust roots when verification is on.
    public let peerCertificate: X509Certificate?

    public var description: String {
        "\(version) \(cipher)" + (applicationProtocol.map { " ALPN \($0)" } ?? "")
            + (peerCertificate.map { " peer \($0.subject)" } ?? "")
    }
}

/// Conditions the TLS layer reports that are not OpenSSL failures.
public enum TLSError: Error, Equatable, Sendable {
    case handshakeTimeout
    /// The transport closed without a close_notify: the data may be truncated.
    case uncleanShutdown
    case closedDuringHandshake
    case connectionNotEstablished
}

/// One TLS connection over a pair of memory BIOs (`SSL` with `SSL_set_bio`). It does no I/O:
/// the caller feeds it bytes from the network and takes out the bytes to send. Owns the
/// `SSL` (which owns both BIOs) and holds its `TLSContext`.
public final class TLSConnection {
    public enum Step: Equatable {
        case complete
        /// Needs more bytes from the peer ("want read"); not an error.
        case incomplete
        case failed(OpenSSLError)

        public static func == (lhs: Step, rhs: Step) -> Bool {
            switch (lhs, rhs) {
            case (.complete, .complete), (.incomplete, .incomplete): true
            case (.failed(let l), .failed(let r)): l.reasons == r.reasons && l.operation == r.operation
            default: false
            }
        }
    }

    public enum ReadResult {
        case data([UInt8])
        case incomplete
        /// The peer sent close_notify.
        case closed
        case failed(OpenSSLError)
    }

    let ssl: OpaquePointer
    private let inbound: OpaquePointer  // network → SSL
    private let outbound: OpaquePointer  // SSL → network
    public let context: TLSContext

    /// - Parameter serverHostname: client only: sent as SNI and, when the context verifies,
    ///   required to match the server certificate (RFC 6125; IP addresses match IP SANs).
    public init(context: TLSContext, serverHostname: String? = nil) throws {
        self.context = context
        guard let ssl = SSL_new(context.pointer) else { throw OpenSSLError.drainQueue(after: "SSL_new") }
        self.ssl = ssl
        guard let inbound = BIO_new(BIO_s_mem()), let outbound = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw OpenSSLError.drainQueue(after: "BIO_new")
        }
        // An empty memory BIO answers "retry", which SSL reports as want-read.
        conclave_ssl_bio_set_mem_eof_return(inbound, -1)
        conclave_ssl_bio_set_mem_eof_return(outbound, -1)
        SSL_set_bio(ssl, inbound, outbound)
        self.inbound = inbound
        self.outbound = outbound

        switch context.configuration.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverHostname {
                let isAddress = IPAddress.bytes(of: serverHostname) != nil
                // SNI carries DNS names only (RFC 6066 §3).
                if !isAddress { guard conclave_ssl_set_tlsext_host_name(ssl, serverHostname) == 1 else { throw OpenSSLError.drainQueue(after: "SSL_set_tlsext_host_name") } }
                if context.configuration.verifyPeer, let parameters = SSL_get0_param(ssl) {
                    let set = isAddress
                        ? X509_VERIFY_PARAM_set1_ip_asc(parameters, serverHostname)
                        : X509_VERIFY_PARAM_set1_host(parameters, serverHostname, serverHostname.utf8.count)
                    guard set == 1 else { throw OpenSSLError.drainQueue(after: "X509_VERIFY_PARAM_set1_host") }
                    X509_VERIFY_PARAM_set_hostflags(parameters, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
                }
            }
        }
    }

    deinit { SSL_free(ssl) }

    /// Bytes received from the peer.
    public func receive(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let written = BIO_write(inbound, base, Int32(bytes.count))
        precondition(written == Int32(bytes.count), "BIO_write to a memory BIO failed")
    }

    public func receive(_ bytes: [UInt8]) { bytes.withUnsafeBytes { receive($0) } }

    /// Bytes to send to the peer, all of them (empty when none).
    public func takeOutbound() -> [UInt8] {
        let pending = Int(BIO_ctrl_pending(outbound))
        guard pending > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = bytes.withUnsafeMutableBytes { BIO_read(outbound, $0.baseAddress, Int32(pending)) }
        precondition(read == Int32(pending), "BIO_read from a memory BIO failed")
        return bytes
    }

    public var hasOutbound: Bool { BIO_ctrl_pending(outbound) > 0 }

    public var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }

    /// Advances the handshake with what has been received (`SSL_do_handshake`).
    public func handshake() -> Step {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .incomplete
        default:
            return .failed(failure(after: "TLS handshake"))
        }
    }

    /// Decrypts what has been received (`SSL_read_ex`), up to `maximum` bytes per call.
    public func read(maximum: Int = 16_384) -> ReadResult {
        var bytes = [UInt8](repeating: 0, count: maximum)
        var count = 0
        let result = bytes.withUnsafeMutableBytes { SSL_read_ex(ssl, $0.baseAddress, maximum, &count) }
        if result == 1 {
            bytes.removeSubrange(count...)
            return .data(bytes)
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .incomplete
        case SSL_ERROR_ZERO_RETURN: return .closed
        default: return .failed(failure(after: "SSL_read"))
        }
    }

    /// Encrypts `bytes` (`SSL_write_ex`); the records wait in `takeOutbound()`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var written = 0
        // A memory BIO never fills, so a write after the handshake completes in one call.
        guard SSL_write_ex(ssl, base, bytes.count, &written) == 1, written == bytes.count else {
            throw failure(after: "SSL_write")
        }
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Queues our close_notify (`SSL_shutdown`). Returns true once the peer's close_notify
    /// has also been seen.
    @discardableResult
    public func shutdown() -> Bool {
        let result = SSL_shutdown(ssl)
        OpenSSLError.clearQueue()
        return result == 1
    }

    public var sentShutdown: Bool { SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN != 0 }
    public var receivedShutdown: Bool { SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN != 0 }

    /// Keying material from the TLS exporter (RFC 5705; RFC 8446 §7.5), e.g. label
    /// "EXPORTER-conclave-media" with the leg id as context. `context: nil` is "no context",
    /// which differs from an empty context in TLS 1.2 (and is what `openssl s_client
    /// -keymatexport` uses).
    public func exportKeyingMaterial(label: String, context: [UInt8]? = nil, length: Int) throws -> [UInt8] {
        guard isHandshakeComplete else {
            throw OpenSSLError(operation: "SSL_export_keying_material", reason: "the handshake has not completed")
        }
        var output = [UInt8](repeating: 0, count: length)
        let labelBytes = Array(label.utf8)
        let ok = output.withUnsafeMutableBufferPointer { out in
            labelBytes.withUnsafeBufferPointer { labelBuffer in
                labelBuffer.withMemoryRebound(to: CChar.self) { labelChars in
                    withNonNullBytes(context ?? []) { contextBytes, contextCount in
                        SSL_export_keying_material(
                            ssl, out.baseAddress, length, labelChars.baseAddress, labelChars.count,
                            contextBytes, contextCount, context == nil ? 0 : 1)
                    }
                }
            }
        }
        guard ok == 1 else { throw OpenSSLError.drainQueue(after: "SSL_export_keying_material") }
        return output
    }

    public var sessionInfo: TLSSessionInfo {
        var alpn: UnsafePointer<UInt8>? = nil
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        let applicationProtocol = alpn.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) }
        let peer = SSL_get1_peer_certificate(ssl).map { X509Certificate(takingOwnership: $0) }
        return TLSSessionInfo(
            version: String(cString: SSL_get_version(ssl)),
            cipher: SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "",
            applicationProtocol: applicationProtocol,
            serverName: SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) },
            peerCertificate: peer)
    }

    /// The error queue, plus the certificate verification result when that is what failed.
    private func failure(after operation: String) -> OpenSSLError {
        let queued = OpenSSLError.drainQueue(after: operation)
        let verification = SSL_get_verify_result(ssl)
        guard verification != X509_V_OK else { return queued }
        let reason = "certificate verify failed: " + String(cString: X509_verify_cert_error_string(verification))
        return OpenSSLError(operation: operation, reasons: [reason] + queued.reasons.filter { $0 != "certificate verify failed" })
    }
}

/// Hooks for tests that need a peer OpenSSL would not otherwise let us configure.
package enum TLSTestHooks {
    /// Makes this one connection offer TLS 1.2 at most (`SSL_set_max_proto_version`), as an
    /// older peer would.
    package static func capAtTLS12(_ connection: TLSConnection) throws {
        guard SSL_ctrl(connection.ssl, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(TLS1_2_VERSION), nil) == 1 else {
            throw OpenSSLError.drainQueue(after: "SSL_set_max_proto_version")
        }
    }
}
