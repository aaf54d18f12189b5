public import ConclaveCrypto
public import FoundationEssentials
public import SystemPackage
import ConclaveSystem

/// The certificate in use: key, certificate and the chain as built (anchor last).
public struct ActiveCertificate: Sendable {
    public let certificate: X509Certificate
    /// Intermediates and anchor, as validation built them; excludes the leaf.
    public let chain: [X509Certificate]
    public let key: PrivateKey
    /// The set directory `current` points at.
    public let directory: FilePath

    /// What a TLS server sends after its certificate: the chain without self-signed roots.
    public var intermediates: [X509Certificate] { chain.filter { !$0.isSelfIssued } }

    /// The anchor room systems need to verify this server.
    public var anchor: X509Certificate { chain.last ?? certificate }
}

public enum CertificateStoreError: Error, CustomStringConvertible, Equatable {
    case noActiveCertificate
    case nothingToRollBackTo
    case notACA(subject: String)
    case noAPICA
    case keyFileReadableByOthers(path: String)

    public var description: String {
        switch self {
        case .noActiveCertificate: "no active certificate: run 'conclave cert self-signed' or import one"
        case .nothingToRollBackTo: "no previous certificate to roll back to"
        case .notACA(let subject): "\(subject) is not a CA certificate (basicConstraints CA:TRUE is required)"
        case .noAPICA: "no API client CA configured: run 'conclave cert api-ca import FILE'"
        case .keyFileReadableByOthers(let path): "\(path) is readable by group or others; chmod 600 it first"
        }
    }
}

/// The appliance's certificate store under `DIR/pki`:
///
/// ```
/// pki/sets/<id>/{key.pem,cert.pem,chain.pem}   complete, immutable certificate sets
/// pki/current  -> sets/<id>                   the set in use (a symlink, switched by rename)
/// pki/previous -> sets/<id>                   the set before it, for rollback
/// pki/pending/{key.pem,csr.pem}               a generated key and CSR waiting for the CA
/// pki/trust/<sha256>.pem                      anchors a room system verifies its server with
/// pki/api-ca.pem                              CAs whose clients may call the command API
/// ```
///
/// A set is written completely (each file temp → fsync → rename, then the directory fsynced)
/// under a temporary name and renamed into `sets/` before any link points at it; `previous`
/// and then `current` are switched by renaming a new symlink over the old one. A power cut at
/// any point leaves `current` on the old set or on the new one, never a mix. Unreferenced
/// sets are removed by the next change.
public struct CertificateStore: Sendable {
    public let stateDirectory: FilePath
    public let pki: FilePath
    let faults: FaultInjection

    public init(stateDirectory: FilePath, faults: FaultInjection = .fromEnvironment) {
        self.stateDirectory = stateDirectory
        pki = stateDirectory.appending("pki")
        self.faults = faults
    }

    public var configuration: ApplianceConfiguration { ApplianceConfiguration(stateDirectory: stateDirectory) }
    var sets: FilePath { pki.appending("sets") }
    var current: FilePath { pki.appending("current") }
    var previous: FilePath { pki.appending("previous") }
    var pending: FilePath { pki.appending("pending") }
    var trust: FilePath { pki.appending("trust") }
    public var apiCAPath: FilePath { pki.appending("api-ca.pem") }

    private func prepare() throws {
        try stateDirectory.makeDirectory(permissions: FilePermissions(rawValue: 0o755))
        try pki.makeDirectory(permissions: FilePermissions(rawValue: 0o700))
        try sets.makeDirectory(permissions: FilePermissions(rawValue: 0o700))
    }

    // MARK: Step 1: key and CSR

    /// Generates a key and a CSR for `fqdn` (always the first SAN) plus `extraNames`, into
    /// `pending/`, replacing any earlier pending request. Sets the FQDN when none is set.
    public func createRequest(
        fqdn: String, extraNames: [SubjectAlternativeName] = [], algorithm: KeyAlgorithm = .ecP256, replaceFQDN: Bool = false
    ) throws -> CertificateSigningRequest {
        try configuration.adoptFQDN(fqdn, replace: replaceFQDN)
        let name = fqdn.lowercased()
        var names: [SubjectAlternativeName] = [.dns(name)]
        for extra in extraNames where !names.contains(extra) { names.append(extra) }
        let key = try PrivateKey.generate(algorithm)
        let request = try CertificateSigningRequest(commonName: name, subjectAlternativeNames: names, key: key)
        try prepare()
        try pending.makeDirectory(permissions: FilePermissions(rawValue: 0o700))
        // The CSR last: a CSR on disk always has its key beside it.
        try Files.writeAtomically(Array(key.pemEncoded.utf8), to: pending.appending("key.pem"), permissions: .ownerReadWrite, faults: faults)
        try Files.writeAtomically(Array(request.pemEncoded.utf8), to: pending.appending("csr.pem"), permissions: FilePermissions(rawValue: 0o644), faults: faults)
        return request
    }

    public func pendingRequest() throws -> CertificateSigningRequest? {
        let path = pending.appending("csr.pem")
        guard path.exists else { return nil }
        return try CertificateSigningRequest(encoded: Files.read(path))
    }

    // MARK: Steps 2 and 3: validate, activate

    /// Imports a certificate (PEM, DER or PKCS#7; a file may carry the chain too), an optional
    /// chain file and a key (default: the pending key). Validates, then activates.
    /// `fqdn` is adopted only if none is configured yet and the import succeeds.
    @discardableResult
    public func importCertificate(
        certificate certificateBytes: [UInt8], chain chainBytes: [UInt8]? = nil, key keyBytes: [UInt8]? = nil,
        fqdn: String? = nil, now: Date = Date()
    ) throws -> ActiveCertificate {
        let certificates: [X509Certificate]
        do { certificates = try CertificateFile.certificates(from: certificateBytes) } catch {
            throw CertificateRefusal.notACertificate(what: "the certificate file")
        }
        var chain: [X509Certificate] = []
        if let chainBytes {
            do { chain = try CertificateFile.certificates(from: chainBytes) } catch {
                throw CertificateRefusal.notACertificate(what: "the chain file")
            }
        }
        let usesPendingKey = keyBytes == nil
        let key: PrivateKey
        if let keyBytes {
            do { key = try PrivateKey(encoded: keyBytes) } catch {
                throw CertificateRefusal.unreadable(what: "the key file", reason: Self.reason(error))
            }
        } else {
            let path = pending.appending("key.pem")
            guard path.exists else { throw CertificateRefusal.noPendingKey }
            do { key = try PrivateKey(encoded: Files.read(path)) } catch {
                throw CertificateRefusal.unreadable(what: path.string, reason: Self.reason(error))
            }
        }
        let leaf = certificates.first { $0.matches(key) } ?? certificates[0]
        let others = certificates.filter { $0 != leaf } + chain
        let active = try activate(certificate: leaf, chain: others, key: key, fqdn: fqdn, now: now)
        if usesPendingKey { try pending.removeFlatDirectory() }
        return active
    }

    /// Imports a PKCS#12 file (key, certificate, chain).
    @discardableResult
    public func importPKCS12(_ bytes: [UInt8], password: String, fqdn: String? = nil, now: Date = Date()) throws -> ActiveCertificate {
        let contents: CertificateFile.PKCS12Contents
        do { contents = try CertificateFile.pkcs12(bytes, password: password) } catch {
            throw CertificateRefusal.unreadable(what: "the PKCS#12 file", reason: Self.reason(error))
        }
        return try activate(certificate: contents.certificate, chain: contents.chain, key: contents.key, fqdn: fqdn, now: now)
    }

    /// A self-signed certificate for first boot or the lab, activated at once.
    @discardableResult
    public func installSelfSigned(
        fqdn: String, days: Int = 365, extraNames: [SubjectAlternativeName] = [], algorithm: KeyAlgorithm = .ecP256,
        replaceFQDN: Bool = false
    ) throws -> ActiveCertificate {
        try configuration.adoptFQDN(fqdn, replace: replaceFQDN)
        let name = fqdn.lowercased()
        var names: [SubjectAlternativeName] = [.dns(name)]
        for extra in extraNames where !names.contains(extra) { names.append(extra) }
        let key = try PrivateKey.generate(algorithm)
        let certificate = try CertificateBuilder.selfSigned(
            commonName: name, subjectAlternativeNames: names, key: key, usage: .server, options: .init(validForDays: days))
        return try activate(certificate: certificate, chain: [], key: key, fqdn: nil, now: Date())
    }

    /// Validates (nothing is written on refusal) and makes the certificate current.
    @discardableResult
    public func activate(
        certificate: X509Certificate, chain: [X509Certificate], key: PrivateKey, fqdn: String? = nil, now: Date = Date()
    ) throws -> ActiveCertificate {
        let configured = try configuration.fqdn()
        guard let name = configured ?? fqdn?.lowercased() else { throw CertificateRefusal.noFQDNConfigured }
        let validator = CertificateValidator(fqdn: name, now: now, storedAnchors: try trustAnchors())
        let built = try validator.validate(certificate: certificate, chain: chain, key: key)
        if configured == nil, let fqdn { try configuration.adoptFQDN(fqdn, replace: false) }

        try prepare()
        try removeUnreferencedSets()
        let setName = Self.newSetName(now: Date())
        let partial = sets.appending(".\(setName).partial")
        try partial.makeDirectory(permissions: .ownerReadWriteExecute)
        try Files.writeAtomically(Array(key.pemEncoded.utf8), to: partial.appending("key.pem"), permissions: .ownerReadWrite, faults: faults)
        try Files.writeAtomically(Array(certificate.pemEncoded.utf8), to: partial.appending("cert.pem"), permissions: FilePermissions(rawValue: 0o644), faults: faults)
        try Files.writeAtomically(Array(CertificateFile.pem(Array(built.dropFirst())).utf8), to: partial.appending("chain.pem"), permissions: FilePermissions(rawValue: 0o644), faults: faults)
        faults.reach("set-files-written")
        try partial.rename(to: sets.appending(setName))
        try sets.synchronizeDirectory()
        faults.reach("set-ready")

        if let old = try current.symbolicLinkTarget() {
            try switchLink(previous, to: old)
            faults.reach("previous-switched")
        }
        try switchLink(current, to: "sets/\(setName)")
        faults.reach("current-switched")
        try removeUnreferencedSets()
        guard let active = try active() else { throw CertificateStoreError.noActiveCertificate }
        return active
    }

    // MARK: Reading, rollback

    public func active() throws -> ActiveCertificate? {
        guard let target = try current.symbolicLinkTarget() else { return nil }
        return try readSet(pki.appending(target))
    }

    public func previousCertificate() throws -> ActiveCertificate? {
        guard let target = try previous.symbolicLinkTarget() else { return nil }
        return try readSet(pki.appending(target))
    }

    private func readSet(_ directory: FilePath) throws -> ActiveCertificate {
        let certificate = try X509Certificate.certificates(pemEncoded: Files.read(directory.appending("cert.pem")))
        guard let leaf = certificate.first else { throw CertificateRefusal.notACertificate(what: directory.appending("cert.pem").string) }
        let chainPath = directory.appending("chain.pem")
        let chain = chainPath.exists ? try X509Certificate.certificates(pemEncoded: Files.read(chainPath)) : []
        let key = try PrivateKey(encoded: Files.read(directory.appending("key.pem")))
        return ActiveCertificate(certificate: leaf, chain: chain, key: key, directory: directory)
    }

    /// Makes the previous set current again (and the current one previous). The certificate
    /// is not re-validated: it was valid when it was in use, and rollback must work offline.
    @discardableResult
    public func rollback() throws -> ActiveCertificate {
        guard let back = try previous.symbolicLinkTarget(), pki.appending(back).exists else {
            throw CertificateStoreError.nothingToRollBackTo
        }
        guard let now = try current.symbolicLinkTarget() else { throw CertificateStoreError.noActiveCertificate }
        try switchLink(current, to: back)  // first: a crash after it has already rolled back
        faults.reach("rollback-current-switched")
        try switchLink(previous, to: now)
        guard let active = try active() else { throw CertificateStoreError.noActiveCertificate }
        return active
    }

    // MARK: Trust anchors and the API client CA

    /// Anchors in `trust/`.
    public func trustAnchors() throws -> [X509Certificate] {
        try trust.directoryEntries().filter { $0.hasSuffix(".pem") }.flatMap { name in
            try X509Certificate.certificates(pemEncoded: Files.read(trust.appending(name)))
        }
    }

    /// Adds each certificate of a bundle (PEM, DER or PKCS#7) to `trust/`, named by fingerprint.
    @discardableResult
    public func importTrust(_ bytes: [UInt8]) throws -> [X509Certificate] {
        let certificates: [X509Certificate]
        do { certificates = try CertificateFile.certificates(from: bytes) } catch {
            throw CertificateRefusal.notACertificate(what: "the trust bundle")
        }
        try prepare()
        try trust.makeDirectory(permissions: FilePermissions(rawValue: 0o755))
        for certificate in certificates {
            let name = certificate.sha256Fingerprint.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            try Files.writeAtomically(Array(certificate.pemEncoded.utf8), to: trust.appending("\(name).pem"), permissions: FilePermissions(rawValue: 0o644), faults: faults)
        }
        return certificates
    }

    /// What room systems import to verify this server: the anchor of the active chain.
    public func trustBundleForRoomSystems() throws -> [X509Certificate] {
        guard let active = try active() else { throw CertificateStoreError.noActiveCertificate }
        return [active.anchor]
    }

    /// Replaces `api-ca.pem` with the CA certificates in `bytes`.
    @discardableResult
    public func importAPICA(_ bytes: [UInt8]) throws -> [X509Certificate] {
        let certificates: [X509Certificate]
        do { certificates = try CertificateFile.certificates(from: bytes) } catch {
            throw CertificateRefusal.notACertificate(what: "the API CA file")
        }
        for certificate in certificates where !certificate.isCertificateAuthority {
            throw CertificateStoreError.notACA(subject: certificate.subject)
        }
        try prepare()
        try Files.writeAtomically(Array(CertificateFile.pem(certificates).utf8), to: apiCAPath, permissions: FilePermissions(rawValue: 0o644), faults: faults)
        return certificates
    }

    public func apiCA() throws -> [X509Certificate] {
        guard apiCAPath.exists else { return [] }
        return try X509Certificate.certificates(pemEncoded: Files.read(apiCAPath))
    }

    // MARK: Internals

    private func switchLink(_ link: FilePath, to target: String) throws {
        let temporary = pki.appending(".\(link.lastComponent!).new")
        try temporary.removeIfPresent()
        try temporary.makeSymbolicLink(to: target)
        try temporary.rename(to: link)
        try pki.synchronizeDirectory()
    }

    /// Removes sets neither link names, partial sets and stray temporary links.
    private func removeUnreferencedSets() throws {
        let referenced = Set([try current.symbolicLinkTarget(), try previous.symbolicLinkTarget()].compactMap { $0 })
        for name in try sets.directoryEntries() where !referenced.contains("sets/\(name)") {
            try sets.appending(name).removeFlatDirectory()
        }
        try pki.appending(".current.new").removeIfPresent()
        try pki.appending(".previous.new").removeIfPresent()
    }

    private static func newSetName(now: Date) -> String {
        let stamp = Timestamp.text(now).filter { $0 != "-" && $0 != ":" }
        let suffix = SecureRandom.bytes(count: 4).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        return "\(stamp)-\(suffix)"
    }

    static func reason(_ error: Error) -> String {
        if let error = error as? OpenSSLError { return error.reasons.first ?? error.description }
        return "\(error)"
    }
}
