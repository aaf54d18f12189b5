internal import COpenSSL
public import FoundationEssentials
import Glibc

/// CMS (RFC 5652) detached signatures, as RAUC bundles carry them: the signature covers bytes
/// stored elsewhere, and the signer must chain to a keyring.
public enum CMS {
    /// Verifies a detached CMS SignedData (`CMS_verify` with `CMS_BINARY`) over `content`
    /// against the anchors in `keyring`; returns the signer certificates. `signature` is DER
    /// or PEM. The signer's EKU is not restricted (`X509_PURPOSE_ANY`), as in RAUC.
    public static func verifyDetached(
        signature: [UInt8], content: [UInt8], keyring: TrustStore, at time: Date? = nil
    ) throws -> [X509Certificate] {
        let bio = MemoryBIO(content)
        return try withExtendedLifetime(bio) {
            try verifyDetached(signature: signature, contentBIO: bio.pointer, keyring: keyring, at: time)
        }
    }

    /// Like `verifyDetached(signature:content:…)`, streaming the content from a file (an update
    /// image is far larger than memory should hold).
    public static func verifyDetached(
        signature: [UInt8], contentFile path: String, keyring: TrustStore, at time: Date? = nil
    ) throws -> [X509Certificate] {
        guard let file = BIO_new_file(path, "rb") else { throw OpenSSLError.drainQueue(after: "BIO_new_file(\(path))") }
        defer { BIO_free(file) }
        return try verifyDetached(signature: signature, contentBIO: file, keyring: keyring, at: time)
    }

    private static func verifyDetached(
        signature: [UInt8], contentBIO: OpaquePointer, keyring: TrustStore, at time: Date?
    ) throws -> [X509Certificate] {
        let cms = try parse(signature)
        defer { CMS_ContentInfo_free(cms) }
        guard CMS_is_detached(cms) == 1 else {
            throw OpenSSLError(operation: "CMS verify", reason: "the signature is not detached")
        }
        // Verification parameters live in the store; a copy keeps the shared keyring untouched.
        guard let store = X509_STORE_new() else { throw OpenSSLError.drainQueue(after: "X509_STORE_new") }
        defer { X509_STORE_free(store) }
        for anchor in keyring.anchors { X509_STORE_add_cert(store, anchor.pointer) }
        X509_STORE_set_purpose(store, X509_PURPOSE_ANY)
        if let time, let parameters = X509_STORE_get0_param(store) {
            X509_VERIFY_PARAM_set_time(parameters, time_t(time.timeIntervalSince1970))
        }
        guard CMS_verify(cms, nil, store, contentBIO, nil, UInt32(CMS_BINARY)) == 1 else {
            throw OpenSSLError.drainQueue(after: "CMS_verify")
        }
        guard let signers = CMS_get0_signers(cms) else { return [] }
        defer { OPENSSL_sk_free(signers) }
        return X509Stack.borrowedCertificates(signers)
    }

    private static func parse(_ signature: [UInt8]) throws -> OpaquePointer {
        if String.isPEM(signature) {
            let bio = MemoryBIO(signature)
            defer { withExtendedLifetime(bio) {} }  // keeps the C object alive for every call below
            guard let cms = PEM_read_bio_CMS(bio.pointer, nil, nil, nil) else {
                throw OpenSSLError.drainQueue(after: "PEM_read_bio_CMS")
            }
            return cms
        }
        guard let cms = decodeDER(signature, { d2i_CMS_ContentInfo(nil, $0, $1) }) else {
            throw OpenSSLError(operation: "CMS verify", reason: "not a DER or PEM CMS structure")
        }
        return cms
    }

    /// Makes a detached CMS SignedData over `content` (`CMS_sign` with `CMS_DETACHED | CMS_BINARY`),
    /// DER. For building signed bundles and tests.
    public static func signDetached(
        content: [UInt8], signer: X509Certificate, key: PrivateKey, chain: [X509Certificate] = []
    ) throws -> [UInt8] {
        let stack = try X509Stack(chain)
        defer { withExtendedLifetime(stack) {} }  // keeps the C object alive for every call below
        let data = MemoryBIO(content)
        defer { withExtendedLifetime(data) {} }  // keeps the C object alive for every call below
        let signed = withExtendedLifetime(data) {
            CMS_sign(signer.pointer, key.pointer, stack.pointer, data.pointer, UInt32(CMS_DETACHED | CMS_BINARY))
        }
        guard let cms = signed else {
            throw OpenSSLError.drainQueue(after: "CMS_sign")
        }
        defer { CMS_ContentInfo_free(cms) }
        return try encodeDER("i2d_CMS_ContentInfo") { i2d_CMS_ContentInfo(cms, $0) }
    }
}

/// Why a detached CMS signature was refused, sorted so that callers can name the reason.
public struct CMSVerificationFailure: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Not a CMS SignedData, or not detached.
        case malformed
        /// The signer does not chain to an anchor of the keyring (or a certificate is expired).
        case untrustedSigner
        /// The signer chains, but its key usage or extended key usage does not allow signing.
        case unsuitableSigner
        /// The signature does not match the content (tampered content or signature).
        case contentMismatch
    }

    public let kind: Kind
    public let detail: String

    public var description: String { detail }
}

extension CMS {
    /// Verifies a detached CMS SignedData over bytes `range` of the open file `descriptor`,
    /// streamed (`pread`, nothing held in memory), against the anchors in `keyring`, with the
    /// signer chain checked for `purpose` at `time`. Returns the signer certificates; throws a
    /// `CMSVerificationFailure` that says which check failed.
    public static func verifyDetached(
        signature: [UInt8], fileDescriptor descriptor: Int32, range: Range<UInt64>, keyring: TrustStore,
        purpose: CertificatePurpose, at time: Date? = nil
    ) throws -> [X509Certificate] {
        OpenSSLError.clearQueue()
        guard let cms = decodeDER(signature, { d2i_CMS_ContentInfo(nil, $0, $1) }) else {
            throw CMSVerificationFailure(kind: .malformed, detail: "the signature is not a DER CMS structure")
        }
        defer { CMS_ContentInfo_free(cms) }
        guard OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed else {
            throw CMSVerificationFailure(kind: .malformed, detail: "the CMS structure is not SignedData")
        }
        guard CMS_is_detached(cms) == 1 else {
            throw CMSVerificationFailure(kind: .malformed, detail: "the CMS signature is not detached")
        }
        guard let store = X509_STORE_new() else { throw OpenSSLError.drainQueue(after: "X509_STORE_new") }
        defer { X509_STORE_free(store) }
        for anchor in keyring.anchors { X509_STORE_add_cert(store, anchor.pointer) }
        X509_STORE_set_purpose(store, purpose.openSSLPurpose)
        if let time, let parameters = X509_STORE_get0_param(store) {
            X509_VERIFY_PARAM_set_time(parameters, time_t(time.timeIntervalSince1970))
        }
        let content = try FileRangeBIO(descriptor: descriptor, range: range)
        let verified = withExtendedLifetime(content) {
            CMS_verify(cms, nil, store, content.pointer, nil, UInt32(CMS_BINARY))
        }
        guard verified == 1 else {
            if let readError = content.readError {
                OpenSSLError.clearQueue()
                throw CMSVerificationFailure(kind: .malformed, detail: "reading the signed bytes failed: \(readError)")
            }
            throw Self.classifyFailure()
        }
        guard let signers = CMS_get0_signers(cms) else { return [] }
        defer { OPENSSL_sk_free(signers) }
        return X509Stack.borrowedCertificates(signers)
    }

    /// Like `signDetached(content:…)`, streaming the content from a file (`BIO_new_file`).
    public static func signDetached(
        contentFile path: String, signer: X509Certificate, key: PrivateKey, chain: [X509Certificate] = []
    ) throws -> [UInt8] {
        let stack = try X509Stack(chain)
        defer { withExtendedLifetime(stack) {} }  // keeps the C object alive for every call below
        guard let file = BIO_new_file(path, "rb") else { throw OpenSSLError.drainQueue(after: "BIO_new_file(\(path))") }
        defer { BIO_free(file) }
        guard let cms = CMS_sign(signer.pointer, key.pointer, stack.pointer, file, UInt32(CMS_DETACHED | CMS_BINARY)) else {
            throw OpenSSLError.drainQueue(after: "CMS_sign")
        }
        defer { CMS_ContentInfo_free(cms) }
        return try encodeDER("i2d_CMS_ContentInfo") { i2d_CMS_ContentInfo(cms, $0) }
    }

    /// Sorts the error queue after a failed `CMS_verify`: the CMS reason code says which step
    /// failed; for the certificate step, the attached text carries `X509_verify_cert`'s reason.
    private static func classifyFailure() -> CMSVerificationFailure {
        var kind = CMSVerificationFailure.Kind.malformed
        var details: [String] = []
        var data: UnsafePointer<CChar>? = nil
        var flags: Int32 = 0
        var code = ERR_get_error_all(nil, nil, nil, &data, &flags)
        while code != 0 {
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)"
            let text = (flags & ERR_TXT_STRING) != 0 ? data.map { String(cString: $0) } : nil
            details.append(text.map { "\(reason) (\($0))" } ?? reason)
            if ERR_GET_LIB(code) == ERR_LIB_CMS {
                switch ERR_GET_REASON(code) {
                case CMS_R_CERTIFICATE_VERIFY_ERROR:
                    let purpose = String(cString: X509_verify_cert_error_string(Int(X509_V_ERR_INVALID_PURPOSE)))
                    kind = (text?.contains(purpose) ?? false) ? .unsuitableSigner : .untrustedSigner
                case CMS_R_CONTENT_VERIFY_ERROR, CMS_R_VERIFICATION_FAILURE:
                    if kind == .malformed { kind = .contentMismatch }
                case CMS_R_SIGNER_CERTIFICATE_NOT_FOUND:
                    kind = .untrustedSigner
                default: break
                }
            }
            data = nil
            flags = 0
            code = ERR_get_error_all(nil, nil, nil, &data, &flags)
        }
        return CMSVerificationFailure(kind: kind, detail: details.isEmpty ? "CMS_verify failed" : details.joined(separator: "; "))
    }
}

/// A read-only BIO over bytes `range` of an open file, read with `pread`: what a CMS signature
/// covers when it sits inside a larger file (a RAUC bundle signs everything before itself).
/// Owns the BIO and its state; does not own the descriptor.
final class FileRangeBIO {
    private struct State {
        var descriptor: Int32
        var position: UInt64
        var end: UInt64
        var errorNumber: Int32
    }

    let pointer: OpaquePointer
    private let state: UnsafeMutablePointer<State>

    /// One method for every instance (`BIO_meth_new`), never freed.
    nonisolated(unsafe) private static let method: OpaquePointer? = {
        guard let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "conclave file range") else {
            return nil
        }
        BIO_meth_set_read_ex(method) { bio, buffer, size, readBytes in
            guard let bio, let buffer, let readBytes, let raw = BIO_get_data(bio) else { return 0 }
            let state = raw.assumingMemoryBound(to: State.self)
            readBytes.pointee = 0
            let left = state.pointee.end - state.pointee.position
            guard left > 0, size > 0 else { return 0 }
            let wanted = Int(min(UInt64(size), left))
            while true {
                let count = pread(state.pointee.descriptor, buffer, wanted, off_t(state.pointee.position))
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    state.pointee.errorNumber = count < 0 ? errno : EIO  // EIO: the file is shorter than the range
                    return 0
                }
                state.pointee.position += UInt64(count)
                readBytes.pointee = count
                return 1
            }
        }
        BIO_meth_set_ctrl(method) { bio, command, _, _ in
            switch command {
            case BIO_CTRL_FLUSH: return 1
            case BIO_CTRL_EOF:
                guard let bio, let raw = BIO_get_data(bio) else { return 1 }
                let state = raw.assumingMemoryBound(to: State.self)
                return state.pointee.position >= state.pointee.end ? 1 : 0
            default: return 0
            }
        }
        return method
    }()

    init(descriptor: Int32, range: Range<UInt64>) throws {
        guard let method = Self.method, let bio = BIO_new(method) else { throw OpenSSLError.drainQueue(after: "BIO_new(file range)") }
        pointer = bio
        state = .allocate(capacity: 1)
        state.initialize(to: State(descriptor: descriptor, position: range.lowerBound, end: range.upperBound, errorNumber: 0))
        BIO_set_data(bio, state)
        BIO_set_init(bio, 1)
    }

    /// The `errno` of a failed or short read, if one happened.
    var readError: String? {
        let number = state.pointee.errorNumber
        return number == 0 ? nil : String(cString: strerror(number))
    }

    deinit {
        BIO_free(pointer)
        state.deinitialize(count: 1)
        state.deallocate()
    }
}
