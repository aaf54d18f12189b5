internal import COpenSSL
internal import CConclaveOpenSSLShims
import NIOConcurrencyHelpers

/// How a TLS endpoint is set up. TLS 1.2 and 1.3 only, ECDHE with AES-GCM or ChaCha20 for
/// 1.2, OpenSSL's default 1.3 suites, security level 2 (RSA ≥ 2048, no SHA-1).
public struct TLSConfiguration: Sendable {
    public enum Role: Sendable { case server, client }
    public enum MinimumVersion: Sendable { case tls12, tls13 }

    public var role: Role
    /// Our certificate first, then intermediates. Required for a server; for a client, only
    /// for mutual TLS.
    public var certificateChain: [X509Certificate]
    public var privateKey: PrivateKey?
    /// Anchors for the peer's chain. Client: the server's CAs (nil = the system's default
    /// paths). Server: when set, a client certificate is required and must chain to these.
    public var trustRoots: [X509Certificate]?
    /// Client only: verify the server (chain and, per connection, hostname). Only a
    /// diagnostic tool turns this off.
    public var verifyPeer: Bool
    /// ALPN identifiers, most preferred first ("http/1.1", "conclave/1").
    public var applicationProtocols: [String]
    public var minimumVersion: MinimumVersion

    public static func server(
        certificateChain: [X509Certificate], privateKey: PrivateKey, clientCertificateRoots: [X509Certificate]? = nil,
        applicationProtocols: [String] = []
    ) -> TLSConfiguration {
        TLSConfiguration(
            role: .server, certificateChain: certificateChain, privateKey: privateKey, trustRoots: clientCertificateRoots,
            verifyPeer: clientCertificateRoots != nil, applicationProtocols: applicationProtocols, minimumVersion: .tls12)
    }

    public static func client(
        trustRoots: [X509Certificate]?, certificateChain: [X509Certificate] = [], privateKey: PrivateKey? = nil,
        applicationProtocols: [String] = [], verifyPeer: Bool = true
    ) -> TLSConfiguration {
        TLSConfiguration(
            role: .client, certificateChain: certificateChain, privateKey: privateKey, trustRoots: trustRoots,
            verifyPeer: verifyPeer, applicationProtocols: applicationProtocols, minimumVersion: .tls12)
    }
}

/// An OpenSSL `SSL_CTX` built from a `TLSConfiguration`. Owns the pointer and frees it in
/// `deinit`; each connection holds its context strongly. Immutable once built, so it is
/// shared between event loops.
public final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    public let configuration: TLSConfiguration
    /// ALPN list in wire format (length-prefixed names), what the callbacks compare against.
    let applicationProtocolsWire: [UInt8]

    public init(configuration: TLSConfiguration) throws {
        self.configuration = configuration
        applicationProtocolsWire = configuration.applicationProtocols.flatMap { name -> [UInt8] in
            let bytes = Array(name.utf8)
            precondition(!bytes.isEmpty && bytes.count < 256, "ALPN identifier must be 1…255 bytes")
            return [UInt8(bytes.count)] + bytes
        }
        let method = configuration.role == .server ? TLS_server_method() : TLS_client_method()
        guard let context = SSL_CTX_new(method) else { throw OpenSSLError.drainQueue(after: "SSL_CTX_new") }
        pointer = context

        let minimum = configuration.minimumVersion == .tls13 ? TLS1_3_VERSION : TLS1_2_VERSION
        _ = SSL_CTX_set_options(context, conclave_ssl_default_options())
        SSL_CTX_set_security_level(context, 2)
        conclave_ssl_ctx_disable_session_cache(context)
        guard conclave_ssl_ctx_set_proto_versions(context, minimum, TLS1_3_VERSION) == 1,
            SSL_CTX_set_cipher_list(context, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL") == 1,
            conclave_ssl_ctx_set1_groups_list(context, "X25519:P-256:P-384") == 1,
            SSL_CTX_set_num_tickets(context, 0) == 1
        else { throw OpenSSLError.drainQueue(after: "configure SSL_CTX") }

        if let leaf = configuration.certificateChain.first {
            guard let key = configuration.privateKey else {
                throw OpenSSLError(operation: "configure TLS", reason: "a certificate needs its private key")
            }
            guard SSL_CTX_use_certificate(context, leaf.pointer) == 1 else {
                throw OpenSSLError.drainQueue(after: "SSL_CTX_use_certificate")
            }
            for intermediate in configuration.certificateChain.dropFirst() {
                guard conclave_ssl_ctx_add1_chain_cert(context, intermediate.pointer) == 1 else {
                    throw OpenSSLError.drainQueue(after: "SSL_CTX_add1_chain_cert")
                }
            }
            guard SSL_CTX_use_PrivateKey(context, key.pointer) == 1, SSL_CTX_check_private_key(context) == 1 else {
                throw OpenSSLError.drainQueue(after: "SSL_CTX_use_PrivateKey (key does not match the certificate?)")
            }
        } else if configuration.role == .server {
            throw OpenSSLError(operation: "configure TLS", reason: "a server needs a certificate")
        }

        switch configuration.role {
        case .client:
            if configuration.verifyPeer {
                SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
                if let roots = configuration.trustRoots {
                    try Self.addAnchors(roots, to: context)
                } else if SSL_CTX_set_default_verify_paths(context) != 1 {
                    throw OpenSSLError.drainQueue(after: "SSL_CTX_set_default_verify_paths")
                }
            } else {
                SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            }
            if !applicationProtocolsWire.isEmpty {
                // SSL_CTX_set_alpn_protos returns 0 on success.
                guard SSL_CTX_set_alpn_protos(context, applicationProtocolsWire, UInt32(applicationProtocolsWire.count)) == 0 else {
                    throw OpenSSLError.drainQueue(after: "SSL_CTX_set_alpn_protos")
                }
            }
        case .server:
            if let roots = configuration.trustRoots {
                SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
                try Self.addAnchors(roots, to: context)
                for root in roots { SSL_CTX_add_client_CA(context, root.pointer) }  // advertised in CertificateRequest
            } else {
                SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            }
            if !applicationProtocolsWire.isEmpty {
                SSL_CTX_set_alpn_select_cb(context, selectApplicationProtocol, Unmanaged.passUnretained(self).toOpaque())
            }
        }
    }

    deinit { SSL_CTX_free(pointer) }

    private static func addAnchors(_ anchors: [X509Certificate], to context: OpaquePointer) throws {
        guard let store = SSL_CTX_get_cert_store(context) else { throw OpenSSLError.drainQueue(after: "SSL_CTX_get_cert_store") }
        for anchor in anchors {
            guard X509_STORE_add_cert(store, anchor.pointer) == 1 else { throw OpenSSLError.drainQueue(after: "X509_STORE_add_cert") }
        }
    }

    /// The server's choice: our most preferred protocol the client also offers (RFC 7301 §3.2).
    fileprivate func select(from offered: UnsafeBufferPointer<UInt8>) -> (offset: Int, length: Int)? {
        var ours = 0
        while ours < applicationProtocolsWire.count {
            let length = Int(applicationProtocolsWire[ours])
            let name = applicationProtocolsWire[(ours + 1)..<(ours + 1 + length)]
            var theirs = 0
            while theirs < offered.count {
                let theirLength = Int(offered[theirs])
                guard theirs + 1 + theirLength <= offered.count else { break }
                if theirLength == length && offered[(theirs + 1)..<(theirs + 1 + theirLength)].elementsEqual(name) {
                    return (theirs + 1, theirLength)
                }
                theirs += 1 + theirLength
            }
            ours += 1 + length
        }
        return nil
    }
}

/// `SSL_CTX_set_alpn_select_cb`: `arg` is the unretained `TLSContext`, alive as long as its `SSL_CTX`.
private func selectApplicationProtocol(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let argument, let offered, let out, let outLength else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    let context = Unmanaged<TLSContext>.fromOpaque(argument).takeUnretainedValue()
    guard let (offset, length) = context.select(from: UnsafeBufferPointer(start: offered, count: Int(offeredLength))) else {
        return SSL_TLSEXT_ERR_ALERT_FATAL  // no_application_protocol
    }
    out.pointee = offered + offset  // points into the ClientHello, which outlives the handshake step
    outLength.pointee = UInt8(length)
    return SSL_TLSEXT_ERR_OK
}

/// The TLS context new connections use, replaceable at run time (a certificate renewal):
/// connections already established keep the context they started with.
public final class ReloadableTLSContext: Sendable {
    private let box: NIOLockedValueBox<TLSContext>

    public init(_ context: TLSContext) { box = NIOLockedValueBox(context) }

    public var current: TLSContext { box.withLockedValue { $0 } }

    public func replace(with context: TLSContext) { box.withLockedValue { $0 = context } }
}
