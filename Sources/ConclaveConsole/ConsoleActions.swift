public import ConclaveCrypto
public import ConclavePKI
public import ConclaveSystem
import FoundationEssentials
public import SystemPackage

/// Records one change in the audit log: who (always "console"), what, old → new, never a secret.
public typealias AuditRecorder = @Sendable (_ action: String, _ detail: String, _ subject: String?) throws -> Void

/// Where the console keeps and applies things.
public struct ConsoleEnvironment: Sendable {
    public var stateDirectory: FilePath
    /// False with `--no-apply`: state is written, the host's network and power are left alone.
    public var appliesToHost: Bool
    public var daemon: DaemonLink
    public var network: ApplianceNetwork
    public var audit: AuditRecorder
    public var version: String
    /// The board's role (`/etc/conclave/board`), the wizard's default.
    public var boardRole: DaemonConfiguration.Role
    public var interface = "eth0"
    /// The update installer's last result (and a rollback), for the status screen.
    public var lastUpdate: @Sendable () -> String? = { nil }

    public init(
        stateDirectory: FilePath, appliesToHost: Bool, runDirectory: String, version: String,
        boardRole: DaemonConfiguration.Role, audit: @escaping AuditRecorder
    ) {
        self.stateDirectory = stateDirectory
        self.appliesToHost = appliesToHost
        daemon = DaemonLink(runDirectory: runDirectory)
        network = ApplianceNetwork(stateDirectory: stateDirectory)
        self.audit = audit
        self.version = version
        self.boardRole = boardRole
    }

    public var certificates: CertificateStore { CertificateStore(stateDirectory: stateDirectory) }
    public var configuration: ConfigurationDocument { ConfigurationDocument(stateDirectory: stateDirectory) }
    public var admin: AdminAccount { AdminAccount(stateDirectory: stateDirectory) }

    public func currentConfiguration() throws -> DaemonConfiguration {
        try DaemonConfiguration.load(stateDirectory: stateDirectory)
    }
}

/// Every change the console makes, each through the library the command line uses
/// (`CertificateStore` as `conclave cert`, `ConfigurationDocument` + `DaemonConfiguration` for
/// conclave.json, `ApplianceNetwork` as `conclave net apply`), audited, then applied. Each
/// returns the lines to show.
public struct ConsoleActions: Sendable {
    public let environment: ConsoleEnvironment

    public init(environment: ConsoleEnvironment) { self.environment = environment }

    // MARK: conclave.json

    public func setSecurityMode(_ mode: String) throws -> [String] {
        let old = try environment.currentConfiguration().securityMode
        try environment.configuration.update { $0["securityMode"] = .string(mode) }
        try audit("security-mode", "\(old) → \(mode)")
        return ["security mode: \(old) → \(mode)"] + reloadDaemon()
    }

    public func setRole(_ role: DaemonConfiguration.Role) throws -> [String] {
        let old = try environment.currentConfiguration().role
        try environment.configuration.update { $0["role"] = .string(role.rawValue) }
        try audit("role", "\(old.rawValue) → \(role.rawValue)")
        return ["role: \(old.rawValue) → \(role.rawValue)"] + reloadDaemon()
    }

    /// What a room system joins (`"room"` in conclave.json, read by `conclave supervise` as
    /// `conclave room join` takes it): the server, the meeting and the room's nickname. Other
    /// keys of the section (RTP ports, TCP) are kept; the nickname replaces any other identity.
    public func setRoomJoin(server: String, meeting: String, nickname: String) throws -> [String] {
        let server = try Self.parseServer(server)
        guard !meeting.isEmpty, meeting.count <= 128, meeting.allSatisfy({ !$0.isNewline && $0.asciiValue.map { $0 >= 0x20 } ?? true }) else {
            throw WizardRefusal("the meeting must be 1…128 printable characters")
        }
        guard !nickname.isEmpty, nickname.count <= 64 else { throw WizardRefusal("the nickname must be 1…64 characters") }
        let old = try environment.currentConfiguration().room
        try environment.configuration.update { document in
            var room: [String: JSONValue] = [:]
            if case .object(let existing)? = document["room"] { room = existing }
            for key in ["email", "passwordFile", "tokenFile"] { room[key] = nil }
            room["server"] = .string(server)
            room["meeting"] = .string(meeting)
            room["nickname"] = .string(nickname)
            document["room"] = .object(room)
        }
        let before = old.map { "\($0.server) meeting \($0.meeting)" } ?? "none"
        try audit("room-join", "\(before) → \(server) meeting \(meeting) as \(nickname)")
        return ["room joins \(server), meeting \(meeting), as \(nickname)"] + reloadDaemon()
    }

    /// FQDN[:PORT] or an IP address (IPv6 in brackets with a port).
    static func parseServer(_ text: String) throws -> String {
        var host = text.lowercased()
        var port: Substring?
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let rest = host[host.index(after: close)...]
            if rest.hasPrefix(":") { port = rest.dropFirst() } else if !rest.isEmpty { throw WizardRefusal("\"\(text)\" is not HOST[:PORT]") }
            host = String(host[host.index(after: host.startIndex)..<close])
            guard InterfaceAddress(cidr: host)?.family == .ipv6, !host.contains("/") else { throw WizardRefusal("\"\(text)\" is not HOST[:PORT]") }
        } else {
            if let colon = host.lastIndex(of: ":") {
                port = host[host.index(after: colon)...]
                host = String(host[..<colon])
            }
            let isAddress = InterfaceAddress(cidr: host) != nil && !host.contains("/")
            guard isAddress || ApplianceConfiguration.isValidFQDN(host), !host.contains(" ") else {
                throw WizardRefusal("\"\(text)\" is not HOST[:PORT] (an FQDN or an address)")
            }
        }
        if let port, UInt16(port).map({ $0 == 0 }) ?? true { throw WizardRefusal("port \"\(port)\" is not 1…65535") }
        return text.lowercased()
    }

    /// The "monitoring" section (docs/monitoring.md), validated whole by the daemon's reader;
    /// the audit names destinations without their passwords.
    public func setMonitoring(_ monitoring: MonitoringConfiguration, what: String) throws -> [String] {
        let old = try environment.currentConfiguration().monitoring
        try environment.configuration.update { $0["monitoring"] = monitoring.jsonValue }
        try audit("monitoring", "\(what): \(Self.describe(old)) → \(Self.describe(monitoring))")
        return ["monitoring: \(Self.describe(monitoring))"] + reloadDaemon()
    }

    static func describe(_ monitoring: MonitoringConfiguration) -> String {
        let destinations = monitoring.destinations.map(\.description).joined(separator: " ")
        return "destinations \(destinations.isEmpty ? "none" : destinations), every \(monitoring.intervalSeconds) s, privacy \(monitoring.privacy.rawValue)"
    }

    /// The FQDN through the same code as `conclave cert … --replace-fqdn`.
    public func setFQDN(_ name: String) throws -> [String] {
        let fqdn = try FirstBootWizard.parseFQDN(name)
        let old = try environment.currentConfiguration().fqdn
        try environment.certificates.configuration.adoptFQDN(fqdn, replace: true)
        try audit("fqdn", "\(old ?? "none") → \(fqdn)")
        var lines = ["FQDN: \(old ?? "none") → \(fqdn)"]
        if let active = try environment.certificates.active(), !active.certificate.matches(hostname: fqdn) {
            lines.append("warning: the active certificate does not cover \(fqdn); request or self-sign one (menu 4)")
        }
        return lines + reloadDaemon()
    }

    /// Replaces the "network" section with `network` (validated whole), then applies it.
    public func setNetwork(_ network: NetworkConfiguration, what: String) throws -> [String] {
        let old = try environment.currentConfiguration().network
        try environment.configuration.update { $0["network"] = network.jsonValue }
        try audit("network", "\(what): \(Self.describe(old)) → \(Self.describe(network))")
        return ["network saved: \(Self.describe(network))"] + applyNetwork()
    }

    static func describe(_ network: NetworkConfiguration) -> String {
        var parts: [String] = []
        if let hostname = network.hostname { parts.append("hostname \(hostname)") }
        for (name, interface) in network.interfaces.sorted(by: { $0.key < $1.key }) {
            if interface.dhcp { parts.append("\(name) dhcp") } else {
                parts.append("\(name) \(interface.addresses.map(\.cidr).joined(separator: ","))"
                    + (interface.gateway.map { " via \($0.address)" } ?? ""))
            }
        }
        if !network.dns.isEmpty { parts.append("dns \(network.dns.map(\.address).joined(separator: ","))") }
        return parts.isEmpty ? "(none)" : parts.joined(separator: ", ")
    }

    // MARK: Applying

    /// `net apply` and the DHCP clients, unless `--no-apply`.
    public func applyNetwork() -> [String] {
        guard environment.appliesToHost else { return ["--no-apply: the host's network was not changed"] }
        var lines: [String]
        do { lines = try environment.network.apply() } catch { lines = ["network apply failed: \(error)"] }
        let hostname = try? environment.currentConfiguration().network.hostname
        do { lines += try environment.network.reconcileDHCPClients(hostname: hostname ?? nil) } catch {
            lines.append("DHCP client: \(error)")
        }
        return lines
    }

    /// Tells the daemon to reload; says so when it is not running.
    public func reloadDaemon() -> [String] {
        guard environment.appliesToHost else { return ["--no-apply: the daemon was not asked to reload"] }
        return environment.daemon.reload()
            ? ["the daemon reloaded"]
            : ["the daemon is not running: the change takes effect when it starts"]
    }

    func audit(_ action: String, _ detail: String, subject: String? = nil) throws {
        try environment.audit(action, detail, subject)
    }

    // MARK: Certificates (CertificateStore, as `conclave cert`)

    public func requestCSR(fqdn: String) throws -> (CertificateSigningRequest, [String]) {
        let request = try environment.certificates.createRequest(fqdn: fqdn, replaceFQDN: true)
        try audit("cert-request", "CSR for \(fqdn) (key in pki/pending)")
        return (request, [])
    }

    public func importCertificate(certificate: [UInt8], chain: [UInt8]?, key: [UInt8]?) throws -> [String] {
        let old = try environment.certificates.active().map { $0.certificate.subject } ?? "none"
        let active = try environment.certificates.importCertificate(certificate: certificate, chain: chain, key: key)
        try audit("cert-import", "\(old) → \(active.certificate.subject) (\(active.certificate.sha256FingerprintText.prefix(23))…)")
        return ["active: \(active.certificate.subject)"] + reloadDaemon()
    }

    public func importPKCS12(_ bytes: [UInt8], password: String) throws -> [String] {
        let old = try environment.certificates.active().map { $0.certificate.subject } ?? "none"
        let active = try environment.certificates.importPKCS12(bytes, password: password)
        try audit("cert-import-p12", "\(old) → \(active.certificate.subject)")
        return ["active: \(active.certificate.subject)"] + reloadDaemon()
    }

    public func selfSigned(fqdn: String) throws -> [String] {
        let old = try environment.certificates.active().map { $0.certificate.subject } ?? "none"
        let active = try environment.certificates.installSelfSigned(fqdn: fqdn, replaceFQDN: true)
        try audit("cert-self-signed", "\(old) → \(active.certificate.subject)")
        return ["active: self-signed \(active.certificate.subject)"] + reloadDaemon()
    }

    public func rollbackCertificate() throws -> [String] {
        let old = try environment.certificates.active().map { $0.certificate.subject } ?? "none"
        let active = try environment.certificates.rollback()
        try audit("cert-rollback", "\(old) → \(active.certificate.subject)")
        return ["active again: \(active.certificate.subject)"] + reloadDaemon()
    }

    public func importAPICA(_ bytes: [UInt8]) throws -> [String] {
        let certificates = try environment.certificates.importAPICA(bytes)
        try audit("api-ca", "now \(certificates.map(\.subject).joined(separator: "; "))")
        return ["API client CA: \(certificates.count) certificate(s)"] + reloadDaemon()
    }

    public func importTrust(_ certificates: [X509Certificate]) throws -> [String] {
        let bytes = Array(CertificateFile.pem(certificates).utf8)
        let imported = try environment.certificates.importTrust(bytes)
        try audit("trust-import", imported.map { "\($0.subject) \($0.sha256FingerprintText)" }.joined(separator: "; "))
        return imported.map { "trusted: \($0.subject)" } + reloadDaemon()
    }

    // MARK: Admin account

    public func setAdminPassword(_ password: String, reason: String) throws -> [String] {
        try environment.admin.setPassword(password)
        try audit("admin-password", reason)
        return ["admin password \(reason)"]
    }

    // MARK: First boot

    /// Applies the wizard's plan. Order matters for a power cut: configuration, trust and
    /// certificate first, the admin password last, so that an interrupted first boot shows
    /// the wizard again instead of a half-configured box behind a password.
    public func applyFirstBoot(_ plan: FirstBootPlan) throws -> [String] {
        var lines: [String] = []
        try environment.certificates.configuration.adoptFQDN(plan.fqdn, replace: true)
        var network = (try? environment.currentConfiguration().network) ?? NetworkConfiguration()
        network.hostname = plan.hostname
        var interface = NetworkConfiguration.Interface()
        switch plan.network {
        case .dhcp: interface.dhcp = true
        case .manual(let address, let gateway, let dns):
            interface.addresses = [address]
            if address.family == .ipv4 { interface.gateway = gateway } else { interface.gateway6 = gateway }
            network.dns = dns
        }
        network.interfaces[plan.interface] = interface
        let old = try environment.currentConfiguration()
        try environment.configuration.update { document in
            document["role"] = .string(plan.role.rawValue)
            document["securityMode"] = .string(plan.securityMode)
            document["network"] = network.jsonValue
        }
        try audit("first-boot", "role \(old.role.rawValue) → \(plan.role.rawValue), fqdn \(old.fqdn ?? "none") → \(plan.fqdn), "
            + "security mode \(old.securityMode) → \(plan.securityMode), network \(Self.describe(old.network)) → \(Self.describe(network))")
        lines.append("configuration saved")
        if !plan.trust.isEmpty { lines += try importTrust(plan.trust).filter { !$0.hasPrefix("the daemon") && !$0.hasPrefix("--no-apply") } }
        switch plan.certificate {
        case .selfSigned:
            let active = try environment.certificates.installSelfSigned(fqdn: plan.fqdn, replaceFQDN: true)
            try audit("cert-self-signed", "none → \(active.certificate.subject)")
            lines.append("certificate: self-signed \(active.certificate.subject)")
        case .signed(let certificate, let chain, let key):
            let active = try environment.certificates.activate(certificate: certificate, chain: chain, key: key, fqdn: plan.fqdn)
            try audit("cert-import", "none → \(active.certificate.subject)")
            lines.append("certificate: \(active.certificate.subject)")
        }
        lines += try setAdminPassword(plan.password, reason: "set at first boot")
        lines += applyNetwork()
        lines += reloadDaemon()
        return lines
    }

    // MARK: Factory reset

    /// Removes configuration, certificates, the admin account and the database; keeps the
    /// boot state (it belongs to the slots, not to the configuration).
    public func factoryReset() throws -> [String] {
        try audit("factory-reset", "configuration, certificates, admin account and database removed")
        let state = environment.stateDirectory
        try state.appending("conclave.json").removeIfPresent()
        try Self.removeTree(state.appending("pki"))
        try Self.removeTree(state.appending("console"))
        try Self.removeTree(state.appending("db"))
        try state.synchronizeDirectory()
        return ["factory reset done: the first-boot wizard runs next"]
    }

    /// Removes a directory tree (files, links and directories only).
    static func removeTree(_ path: FilePath) throws {
        guard path.exists else { return }
        if (try? path.symbolicLinkTarget()) ?? nil != nil {
            try path.removeIfPresent()
            return
        }
        let entries = (try? path.directoryEntries()) ?? []
        if entries.isEmpty, path.permissions == nil { return }
        for name in entries {
            let child = path.appending(name)
            if (try? child.symbolicLinkTarget()) ?? nil == nil, (try? child.directoryEntries()) != nil, Self.isDirectory(child) {
                try removeTree(child)
            } else {
                try child.removeIfPresent()
            }
        }
        try path.removeFlatDirectory()
    }

    static func isDirectory(_ path: FilePath) -> Bool {
        (try? FileDescriptor.open(path, .readOnly, options: .directory))
            .map { descriptor in try? descriptor.close(); return true } ?? false
    }
}
