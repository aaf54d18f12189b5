public import ConclaveCrypto
import ConclavePKI
public import ConclaveSystem
public import FoundationEssentials

/// How the console reads an answer.
public enum InputKind: Equatable, Sendable {
    case line
    /// Not echoed.
    case secret
    /// Pasted PEM: lines up to the first `-----END …-----` (bounded); `secret` is not echoed.
    case paste(secret: Bool)
    /// Pasted PEM blocks, each up to its END line, until an empty line.
    case pasteMany
}

public struct Prompt: Equatable, Sendable {
    /// Lines shown before the question (explanations, choices, the CSR).
    public var text: [String]
    public var question: String
    public var kind: InputKind

    public init(text: [String] = [], question: String, kind: InputKind = .line) {
        self.text = text
        self.question = question
        self.kind = kind
    }
}

/// What the wizard decided, applied by `ConsoleActions.applyFirstBoot` once confirmed.
public struct FirstBootPlan: @unchecked Sendable {
    public enum NetworkChoice: Equatable, Sendable {
        case dhcp
        case manual(address: InterfaceAddress, gateway: InterfaceAddress?, dns: [InterfaceAddress])
    }

    public enum CertificateChoice {
        case selfSigned
        /// A key made here (CSR path) or pasted, with the certificate and chain that passed validation.
        case signed(certificate: X509Certificate, chain: [X509Certificate], key: PrivateKey)
    }

    public var password = ""
    public var role = DaemonConfiguration.Role.server
    public var interface = "eth0"
    public var network = NetworkChoice.dhcp
    public var hostname = ""
    public var fqdn = ""
    public var certificate = CertificateChoice.selfSigned
    /// Room: the server's anchors, confirmed by fingerprint.
    public var trust: [X509Certificate] = []
    public var securityMode = "secured"

    public init() {}

    /// The summary shown before applying; never the password.
    public var summary: [(String, String)] {
        var rows: [(String, String)] = [("admin password", "set (not shown)"), ("role", role == .server ? "server appliance" : "room system")]
        switch network {
        case .dhcp: rows.append(("network", "\(interface): DHCP"))
        case .manual(let address, let gateway, let dns):
            rows.append(("network", "\(interface): \(address.cidr), gateway \(gateway?.address ?? "none")"))
            rows.append(("DNS", dns.isEmpty ? "none" : dns.map(\.address).joined(separator: " ")))
        }
        rows.append(("host name", hostname))
        rows.append(("FQDN", fqdn))
        switch certificate {
        case .selfSigned: rows.append(("certificate", "self-signed for \(fqdn) (lab use)"))
        case .signed(let certificate, _, _): rows.append(("certificate", "\(certificate.subject), issued by \(certificate.issuer)"))
        }
        if role == .room {
            rows.append(("server trust", trust.map { String($0.sha256FingerprintText.prefix(23)) + "…" }.joined(separator: ", ")))
        }
        rows.append(("security mode", securityMode))
        return rows
    }
}

/// The first-boot wizard as a plain value: each answer goes in, the next prompt (or a
/// refusal with its one-line reason, or the finished plan) comes out. Every step validates
/// on entry; "<" (or Ctrl-C, which the session turns into `back()`) returns to the step before.
/// Nothing is written until the plan is applied.
public struct FirstBootWizard {
    public enum Step: Equatable, Sendable {
        case password, passwordConfirm, role, networkMode, address, gateway, dns, hostname, fqdn
        case certificateChoice, signedCertificate, chain, pastedKey, pastedCertificate, trustBundle, trustFingerprint
        case securityMode, summary
    }

    public enum Action {
        case ask(Prompt)
        case refused(String, Prompt)
        case finished(FirstBootPlan)
        /// Back from the first step: leave the wizard.
        case leave
    }

    public private(set) var step = Step.password
    public private(set) var plan = FirstBootPlan()
    private var history: [Step] = []
    private var newPassword = ""
    private var pendingKey: PrivateKey?
    private var pendingRequest: CertificateSigningRequest?
    private var pastedKey: PrivateKey?
    private var signedCertificate: X509Certificate?
    private var candidateTrust: [X509Certificate] = []
    let storedAnchors: [X509Certificate]
    let now: () -> Date

    public init(defaultRole: DaemonConfiguration.Role, interface: String = "eth0", storedAnchors: [X509Certificate] = [], now: @escaping () -> Date = Date.init) {
        plan.role = defaultRole
        plan.interface = interface
        self.storedAnchors = storedAnchors
        self.now = now
    }

    public func prompt() -> Prompt { prompt(for: step) }

    public mutating func back() -> Action {
        guard let previous = history.popLast() else { return .leave }
        step = previous
        return .ask(prompt(for: step))
    }

    public mutating func handle(_ rawInput: String) -> Action {
        let input = step == .password || step == .passwordConfirm ? rawInput : rawInput.trimmedLine
        if input == "<" && step != .password && step != .passwordConfirm { return back() }
        do {
            if let next = try accept(input) {
                if next == step { return .ask(prompt(for: step)) }
                history.append(step)
                step = next
                return .ask(prompt(for: next))
            }
            return .finished(plan)
        } catch {
            return .refused(Self.reason(error), prompt(for: step))
        }
    }

    static func reason(_ error: Error) -> String {
        if let error = error as? OpenSSLError { return error.reasons.first ?? error.description }
        return "\(error)"
    }

    // MARK: Steps

    /// Validates one answer and returns the next step (nil: the plan is complete).
    private mutating func accept(_ input: String) throws -> Step? {
        switch step {
        case .password:
            guard input.count >= AdminAccount.minimumLength else { throw AdminAccountError.tooShort(minimum: AdminAccount.minimumLength) }
            guard input.count <= AdminAccount.maximumLength else { throw AdminAccountError.tooLong(maximum: AdminAccount.maximumLength) }
            newPassword = input
            return .passwordConfirm
        case .passwordConfirm:
            guard input == newPassword else {
                // Both are asked again: a mistyped first entry is as likely as a mistyped second.
                newPassword = ""
                history.removeAll()
                step = .password
                throw AdminAccountError.mismatch
            }
            plan.password = input
            return .role
        case .role:
            switch input {
            case "1": plan.role = .server
            case "2": plan.role = .room
            case "": break
            default: throw WizardRefusal("type 1 (server appliance) or 2 (room system)")
            }
            return .networkMode
        case .networkMode:
            switch input {
            case "1", "": plan.network = .dhcp; return .hostname
            case "2": return .address
            default: throw WizardRefusal("type 1 (DHCP) or 2 (static address)")
            }
        case .address:
            let address = try Self.parseInterfaceAddress(input)
            plan.network = .manual(address: address, gateway: nil, dns: [])
            return .gateway
        case .gateway:
            guard case .manual(let address, _, let dns) = plan.network else { return .hostname }
            let gateway = input.isEmpty ? nil : try Self.parseGateway(input, for: address)
            plan.network = .manual(address: address, gateway: gateway, dns: dns)
            return .dns
        case .dns:
            guard case .manual(let address, let gateway, _) = plan.network else { return .hostname }
            plan.network = .manual(address: address, gateway: gateway, dns: try Self.parseDNS(input))
            return .hostname
        case .hostname:
            let name = input.lowercased()
            guard NetworkConfiguration.isValidHostname(name), !name.contains(".") else {
                throw WizardRefusal("\"\(input)\" is not a host name: letters, digits and hyphens, no dots, at most 63")
            }
            guard name != newPassword.lowercased() else { throw AdminAccountError.sameAsHostname }
            plan.hostname = name
            return .fqdn
        case .fqdn:
            plan.fqdn = try Self.parseFQDN(input)
            guard plan.password.lowercased() != plan.fqdn else { throw AdminAccountError.sameAsHostname }
            return .certificateChoice
        case .certificateChoice:
            switch input {
            case "1":
                plan.certificate = .selfSigned
                return plan.role == .room ? .trustBundle : .securityMode
            case "2":
                let key = try PrivateKey.generate(.ecP256)
                pendingRequest = try CertificateSigningRequest(commonName: plan.fqdn, subjectAlternativeNames: [.dns(plan.fqdn)], key: key)
                pendingKey = key
                pastedKey = nil
                return .signedCertificate
            case "3":
                return .pastedKey
            default: throw WizardRefusal("type 1, 2 or 3")
            }
        case .signedCertificate, .pastedCertificate:
            let certificates = try Self.certificates(input, what: "the pasted certificate")
            guard let key = step == .signedCertificate ? pendingKey : pastedKey else { throw WizardRefusal("no key: go back and choose again") }
            let leaf = certificates.first { $0.matches(key) } ?? certificates[0]
            // Checked now with what is known; checked again with the chain on the next step.
            guard leaf.matches(key) else { throw CertificateRefusal.keyMismatch }
            guard leaf.matches(hostname: plan.fqdn) else {
                throw CertificateRefusal.fqdnNotInSubjectAlternativeNames(fqdn: plan.fqdn, names: leaf.subjectAlternativeNames.map(\.description))
            }
            signedCertificate = leaf
            let extra = certificates.filter { $0 != leaf }
            if !extra.isEmpty, (try? validator.validate(certificate: leaf, chain: extra, key: key)) != nil {
                plan.certificate = .signed(certificate: leaf, chain: extra, key: key)
                return plan.role == .room ? .trustBundle : .securityMode
            }
            return .chain
        case .chain:
            guard let leaf = signedCertificate, let key = pastedKey ?? pendingKey else { throw WizardRefusal("no certificate: go back") }
            let chain = input.isEmpty ? [] : try Self.certificates(input, what: "the pasted chain")
            let built = try validator.validate(certificate: leaf, chain: chain, key: key)
            plan.certificate = .signed(certificate: leaf, chain: Array(built.dropFirst()), key: key)
            return plan.role == .room ? .trustBundle : .securityMode
        case .pastedKey:
            do { pastedKey = try PrivateKey(encoded: Array(input.utf8)) } catch {
                throw WizardRefusal("the pasted text is not a private key (PEM, unencrypted)")
            }
            pendingKey = nil
            return .pastedCertificate
        case .trustBundle:
            candidateTrust = try Self.certificates(input, what: "the pasted bundle")
            return .trustFingerprint
        case .trustFingerprint:
            let typed = input.uppercased().filter { $0 != ":" && $0 != " " }
            guard !typed.isEmpty, candidateTrust.contains(where: { $0.sha256FingerprintText.filter { $0 != ":" } == typed }) else {
                throw WizardRefusal("the fingerprint does not match the pasted certificate; nothing imported")
            }
            plan.trust = candidateTrust
            return .securityMode
        case .securityMode:
            switch input {
            case "1", "": plan.securityMode = "secured"
            case "2": plan.securityMode = "mixed"
            default: throw WizardRefusal("type 1 (secured) or 2 (mixed)")
            }
            return .summary
        case .summary:
            switch input {
            case "1", "yes": return nil
            default: throw WizardRefusal("type 1 to apply, or < to go back")
            }
        }
    }

    private var validator: CertificateValidator {
        CertificateValidator(fqdn: plan.fqdn, now: now(), storedAnchors: storedAnchors)
    }

    // MARK: Prompts

    private func prompt(for step: Step) -> Prompt {
        switch step {
        case .password:
            return Prompt(
                text: ["First boot: set up this appliance. Type < to go back a step, Ctrl-C to cancel it.",
                       "Step 1: the console admin password (at least \(AdminAccount.minimumLength) characters, not the host name)."],
                question: "New admin password: ", kind: .secret)
        case .passwordConfirm: return Prompt(question: "Again: ", kind: .secret)
        case .role:
            return Prompt(
                text: ["Step 2: role.", " 1  server appliance (media relay, control server, API)", " 2  room system (joins meetings on a server)"],
                question: "Role [\(plan.role == .server ? 1 : 2)]: ")
        case .networkMode:
            return Prompt(text: ["Step 3: network on \(plan.interface).", " 1  DHCP", " 2  static address"], question: "Network [1]: ")
        case .address: return Prompt(question: "Address/prefix (e.g. 192.0.2.10/24): ")
        case .gateway: return Prompt(question: "Gateway (empty: none): ")
        case .dns: return Prompt(question: "DNS servers, separated by spaces (empty: none): ")
        case .hostname: return Prompt(text: ["Step 4: names."], question: "Host name: ")
        case .fqdn: return Prompt(question: "FQDN (clients connect to this name): ")
        case .certificateChoice:
            return Prompt(
                text: ["Step 5: the certificate for \(plan.fqdn).",
                       " 1  self-signed (lab use; clients must be told to trust it)",
                       " 2  generate a key and CSR here, then paste the certificate the CA signs",
                       " 3  paste a private key and its certificate"],
                question: "Certificate: ")
        case .signedCertificate:
            let csr = pendingRequest?.pemEncoded ?? ""
            return Prompt(
                text: ["Give this CSR to your CA (the key stays on the appliance):"] + TextLayout.wrap(csr.trimmedLine)
                    + ["Paste the signed certificate (PEM), ending at -----END CERTIFICATE-----:"],
                question: "", kind: .paste(secret: false))
        case .chain:
            return Prompt(
                text: ["Paste the CA chain (intermediates and root, PEM), then an empty line.",
                       "An empty line alone: no chain (the root must already be trusted)."],
                question: "", kind: .pasteMany)
        case .pastedKey:
            return Prompt(text: ["Paste the private key (PEM, not shown), ending at its -----END … KEY----- line:"], question: "", kind: .paste(secret: true))
        case .pastedCertificate:
            return Prompt(text: ["Paste its certificate (PEM), ending at -----END CERTIFICATE-----:"], question: "", kind: .paste(secret: false))
        case .trustBundle:
            return Prompt(
                text: ["Step 6: trust for the server this room system joins.",
                       "Export its trust bundle on the server (menu 4, item 11).",
                       "Paste it here, then an empty line:"],
                question: "", kind: .pasteMany)
        case .trustFingerprint:
            return Prompt(
                text: ["Pasted:"] + candidateTrust.flatMap { certificate in
                    TextLayout.wrap("  \(certificate.subject)") + TextLayout.wrap("  SHA-256 \(certificate.sha256FingerprintText)", indent: 9)
                } + ["Compare with the fingerprint the server's console shows, and type it to confirm",
                     "(colons optional):"],
                question: "> ")
        case .securityMode:
            return Prompt(
                text: ["Step \(plan.role == .room ? 7 : 6): security mode.",
                       " 1  secured: every media leg is SRTP (recommended)",
                       " 2  mixed: each meeting chooses SRTP or encapsulated (scrambled, not secure)"],
                question: "Security mode [1]: ")
        case .summary:
            return Prompt(
                text: ["Summary:"] + TextLayout.table(plan.summary) + [" 1  apply", " <  go back"],
                question: "Apply? ")
        }
    }

    // MARK: Validation (also used by the menus)

    public static func parseInterfaceAddress(_ input: String) throws -> InterfaceAddress {
        let parts = input.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = InterfaceAddress(cidr: String(parts[0])) else {
            throw WizardRefusal("\"\(input)\" is not ADDRESS/PREFIX (e.g. 192.0.2.10/24)")
        }
        let maximum = address.family == .ipv4 ? 32 : 128
        guard let prefix = Int(parts[1]), (1...maximum).contains(prefix) else {
            throw WizardRefusal("prefix \"\(parts[1])\" is out of range: 1…\(maximum) for \(address.family == .ipv4 ? "IPv4" : "IPv6")")
        }
        return InterfaceAddress(cidr: input)!
    }

    public static func parseGateway(_ input: String, for address: InterfaceAddress) throws -> InterfaceAddress {
        guard !input.contains("/"), let gateway = InterfaceAddress(cidr: input) else {
            throw WizardRefusal("\"\(input)\" is not an IP address")
        }
        guard gateway.family == address.family else {
            throw WizardRefusal("the gateway must be \(address.family == .ipv4 ? "IPv4" : "IPv6") like the address")
        }
        guard InterfaceAddress.sameSubnet(gateway, address) else {
            throw WizardRefusal("gateway \(gateway.address) is not in \(address.cidr)'s subnet")
        }
        guard gateway.address != address.address else { throw WizardRefusal("the gateway cannot be the appliance's own address") }
        return gateway
    }

    public static func parseDNS(_ input: String) throws -> [InterfaceAddress] {
        let words = input.split { $0 == " " || $0 == "," }.map(String.init)
        guard words.count <= 3 else { throw WizardRefusal("at most 3 DNS servers") }
        return try words.map { word in
            guard !word.contains("/"), let address = InterfaceAddress(cidr: word) else {
                throw WizardRefusal("\"\(word)\" is not an IP address")
            }
            return address
        }
    }

    public static func parseFQDN(_ input: String) throws -> String {
        let name = input.lowercased()
        guard !name.contains(" ") else { throw WizardRefusal("an FQDN has no spaces") }
        guard ApplianceConfiguration.isValidFQDN(name), name.contains("."), !name.hasSuffix(".") else {
            throw WizardRefusal("\"\(input)\" is not an FQDN: dot-separated labels of letters, digits and hyphens")
        }
        return name
    }

    /// PEM (or DER/PKCS#7) certificates in pasted text.
    public static func certificates(_ input: String, what: String) throws -> [X509Certificate] {
        guard let certificates = try? CertificateFile.certificates(from: Array(input.utf8)), !certificates.isEmpty else {
            throw CertificateRefusal.notACertificate(what: what)
        }
        return certificates
    }
}

/// A one-line reason an answer is refused.
public struct WizardRefusal: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension InterfaceAddress {
    /// Whether both addresses share `rhs`'s prefix.
    static func sameSubnet(_ lhs: InterfaceAddress, _ rhs: InterfaceAddress) -> Bool {
        let left = lhs.bytes, right = rhs.bytes
        var bits = rhs.prefixLength
        for index in 0..<left.count {
            guard bits > 0 else { return true }
            let mask: UInt8 = bits >= 8 ? 0xff : UInt8(0xff << (8 - bits) & 0xff)
            if left[index] & mask != right[index] & mask { return false }
            bits -= 8
        }
        return true
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and line ends.
    var trimmedLine: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
