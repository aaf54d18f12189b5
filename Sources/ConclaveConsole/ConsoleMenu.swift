import ConclaveCrypto
import ConclavePKI
import ConclaveSystem
import FoundationEssentials
import Glibc
import SystemPackage

/// The menu after login. Numbers are stable (manuals and muscle memory): 9 (software update)
/// is missing until the update installer has a console item.
extension ConsoleSession {
    static let mainItems: [(number: Int, label: String)] = [
        (1, "Status"), (2, "Network"), (3, "FQDN"), (4, "Certificates"), (5, "Security mode"),
        (6, "Monitoring targets and privacy mode"), (7, "Tuning profile"), (8, "Role and meetings"), (10, "Diagnostics"), (11, "Change admin password"),
        (12, "Reboot / shut down"), (13, "Factory reset"),
    ]

    func mainMenu() throws {
        while true {
            reapChildren()
            say(TextLayout.menu(title: "Conclave \(environment.version) - main menu", items: Self.mainItems,
                                hint: "Number and Enter; Ctrl-D logs out."))
            guard let choice = try ask("> ")?.trimmedLine else { continue }
            do {
                switch choice {
                case "1":
                    say(StatusSnapshot.gather(stateDirectory: environment.stateDirectory, daemon: environment.daemon, version: environment.version, lastUpdate: environment.lastUpdate).lines)
                case "2": try networkMenu()
                case "3": try fqdnMenu()
                case "4": try certificateMenu()
                case "5": try securityModeMenu()
                case "6": try monitoringMenu()
                case "7": try tuningMenu()
                case "8": try roleMenu()
                case "10": try diagnosticsMenu()
                case "11":
                    if let password = try newPassword() { say(try actions.setAdminPassword(password, reason: "changed")) }
                case "12": try powerMenu()
                case "13": if try factoryResetMenu() { return }
                case "": continue
                default: say("no item \(choice)")
                }
            } catch let end as SessionEndError {
                throw end
            } catch {
                say("refused: \(FirstBootWizard.reason(error)); nothing changed")
            }
        }
    }

    /// A sub-menu choice; nil on Ctrl-C or an empty line (back).
    func choose(_ title: String, _ items: [(number: Int, label: String)]) throws -> String? {
        say(TextLayout.menu(title: title, items: items, hint: "Number and Enter; empty line or Ctrl-C: back."))
        guard let choice = try ask("> ")?.trimmedLine, !choice.isEmpty else { return nil }
        return choice
    }

    // MARK: 2 Network

    func networkMenu() throws {
        guard let choice = try choose("Network", [(1, "Show"), (2, "DHCP or static address"), (3, "DNS servers"), (4, "Host name"), (5, "Test: resolve a name"), (6, "Test: ping")]) else { return }
        var network = try environment.currentConfiguration().network
        let interface = environment.interface
        switch choice {
        case "1":
            let addresses = StatusSnapshot.addresses()
            say(TextLayout.table([
                ("configured", ConsoleActions.describe(network)),
                ("addresses now", addresses.isEmpty ? "none" : addresses.joined(separator: ", ")),
                ("resolv.conf", Self.resolvers().joined(separator: " ")),
            ]))
        case "2":
            guard let mode = try ask("\(interface): 1 DHCP, 2 static: ")?.trimmedLine else { return }
            var entry = network.interfaces[interface] ?? NetworkConfiguration.Interface()
            switch mode {
            case "1":
                entry = NetworkConfiguration.Interface()
                entry.dhcp = true
            case "2":
                guard let addressText = try ask("Address/prefix: ")?.trimmedLine else { return }
                let address = try FirstBootWizard.parseInterfaceAddress(addressText)
                guard let gatewayText = try ask("Gateway (empty: none): ")?.trimmedLine else { return }
                let gateway = gatewayText.isEmpty ? nil : try FirstBootWizard.parseGateway(gatewayText, for: address)
                entry = NetworkConfiguration.Interface()
                entry.addresses = [address]
                if address.family == .ipv4 { entry.gateway = gateway } else { entry.gateway6 = gateway }
            default:
                say("type 1 or 2")
                return
            }
            network.interfaces[interface] = entry
            say(try actions.setNetwork(network, what: "\(interface) addressing"))
        case "3":
            guard let text = try ask("DNS servers, separated by spaces (empty: none): ") else { return }
            network.dns = try FirstBootWizard.parseDNS(text.trimmedLine)
            say(try actions.setNetwork(network, what: "DNS"))
        case "4":
            guard let name = try ask("Host name: ")?.trimmedLine.lowercased() else { return }
            guard NetworkConfiguration.isValidHostname(name), !name.contains(".") else {
                say("refused: \"\(name)\" is not a host name: letters, digits and hyphens, no dots")
                return
            }
            network.hostname = name
            say(try actions.setNetwork(network, what: "host name"))
        case "5":
            guard let name = try ask("Name: ")?.trimmedLine, !name.isEmpty else { return }
            say(Self.resolve(name))
        case "6":
            guard let host = try ask("Host or address: ")?.trimmedLine, !host.isEmpty else { return }
            guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }), host.count <= 253 else {
                say("refused: not a host name or address")
                return
            }
            say(Self.runTool(["ping", "-c", "3", "-W", "2", host]))
        default: say("no item \(choice)")
        }
    }

    static func resolvers() -> [String] {
        guard let bytes = try? Files.read(FilePath("/etc/resolv.conf")) else { return ["(none)"] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("nameserver") }
            .map { String($0.dropFirst("nameserver".count)).trimmedLine }
    }

    /// `getaddrinfo`, the resolver every part of the binary uses.
    static func resolve(_ name: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, nil, &hints, &result)
        guard status == 0, let first = result else { return ["\(name): \(String(cString: gai_strerror(status)))"] }
        defer { freeaddrinfo(result) }
        var lines: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ai_next }
            var host = [CChar](repeating: 0, count: 64)
            if getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !lines.contains("\(name): \(text)") { lines.append("\(name): \(text)") }
            }
        }
        return lines
    }

    /// Runs a busybox tool with its output captured (bounded) and returns the lines.
    static func runTool(_ arguments: [String], limit: Int = 16 * 1024) -> [String] {
        let paths = ["/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/"].map { $0 + arguments[0] }
        guard let path = paths.first(where: { FilePath($0).exists }) else { return ["\(arguments[0]) is not installed here"] }
        var pipe: [Int32] = [-1, -1]
        guard Glibc.pipe(&pipe) == 0 else { return ["pipe: \(Errno(rawValue: errno))"] }
        for end in pipe { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }  // single-threaded: no spawn in between
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 2)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, nil, argv, environ)
        close(pipe[1])
        defer { close(pipe[0]) }
        guard status == 0 else { return ["\(arguments[0]): \(Errno(rawValue: status))"] }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(pipe[0], $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            if output.count < limit { output += chunk[..<min(count, limit - output.count)] }
        }
        var exitStatus: Int32 = 0
        _ = waitpid(pid, &exitStatus, 0)
        return String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    // MARK: 3 FQDN, 5 security mode, 8 role

    func fqdnMenu() throws {
        let current = try environment.currentConfiguration().fqdn
        say("FQDN now: \(current ?? "not set")")
        guard let name = try ask("New FQDN (empty: keep): ")?.trimmedLine, !name.isEmpty else { return }
        say(try actions.setFQDN(name))
    }

    func securityModeMenu() throws {
        let current = try environment.currentConfiguration().securityMode
        guard let choice = try choose("Security mode (now \(current))", [(1, "secured: every media leg is SRTP (recommended)"), (2, "mixed: each meeting chooses SRTP or encapsulated (not secure)")]) else { return }
        switch choice {
        case "1": say(try actions.setSecurityMode("secured"))
        case "2": say(try actions.setSecurityMode("mixed"))
        default: say("type 1 or 2")
        }
    }

    func roleMenu() throws {
        let current = try environment.currentConfiguration().role
        let room = try environment.currentConfiguration().room
        guard let choice = try choose("Role (now \(current == .server ? "server appliance" : "room system"))", [
            (1, "server appliance"), (2, "room system"),
            (3, "Room: server and meeting to join (now \(room.map { "\($0.server), \($0.meeting)" } ?? "none"))"),
        ]) else { return }
        switch choice {
        case "1": say(try actions.setRole(.server))
        case "2": say(try actions.setRole(.room))
        case "3":
            guard let server = try ask("Server (FQDN[:PORT]): ")?.trimmedLine,
                let meeting = try ask("Meeting: ")?.trimmedLine,
                let nickname = try ask("Room nickname (shown to participants): ")?.trimmedLine
            else { return }
            say(try actions.setRoomJoin(server: server, meeting: meeting, nickname: nickname))
        default: say("type 1, 2 or 3")
        }
    }

    // MARK: 4 Certificates

    func certificateMenu() throws {
        guard let choice = try choose("Certificates", [
            (1, "Request: generate a key and CSR"), (2, "Show the pending CSR"), (3, "Import the signed certificate (paste)"),
            (4, "Import a certificate from a file"), (5, "Import PKCS#12 from a file"), (6, "Self-signed (lab use)"),
            (7, "Show the active certificate"), (8, "Expiry"), (9, "Roll back to the previous certificate"),
            (10, "API client CA (paste)"), (11, "Export the room trust bundle"), (12, "Import a server's trust bundle (paste)"),
        ]) else { return }
        let store = environment.certificates
        let fqdn = try environment.currentConfiguration().fqdn
        switch choice {
        case "1":
            guard let name = try askFQDN(default: fqdn) else { return }
            let (request, _) = try actions.requestCSR(fqdn: name)
            say(["CSR (give it to your CA; then item 3):"] + TextLayout.wrap(request.pemEncoded.trimmedLine))
        case "2":
            guard let request = try store.pendingRequest() else { say("no pending CSR: item 1 makes one"); return }
            say(TextLayout.wrap(request.pemEncoded.trimmedLine))
        case "3":
            say("Paste the signed certificate, ending at -----END CERTIFICATE-----:")
            guard let certificate = try paste(secret: false, many: false) else { return }
            say("Paste the chain (intermediates and root), then an empty line; an empty line alone: none.")
            guard let chain = try paste(secret: false, many: true) else { return }
            say(try actions.importCertificate(certificate: Array(certificate.utf8), chain: chain.isEmpty ? nil : Array(chain.utf8), key: nil))
        case "4":
            guard let path = try ask("Certificate file (PEM, DER or PKCS#7): ")?.trimmedLine, !path.isEmpty else { return }
            guard let keyPath = try ask("Key file (empty: the pending key): ")?.trimmedLine else { return }
            let certificate = try CommandLineFiles.read(path)
            var key: [UInt8]?
            if !keyPath.isEmpty {
                guard !CommandLineFiles.isReadableByOthers(keyPath) else { throw CertificateStoreError.keyFileReadableByOthers(path: keyPath) }
                key = try CommandLineFiles.read(keyPath)
            }
            say(try actions.importCertificate(certificate: certificate, chain: nil, key: key))
        case "5":
            guard let path = try ask("PKCS#12 file: ")?.trimmedLine, !path.isEmpty else { return }
            guard let password = try ask("Its password (not shown): ", secret: true) else { return }
            say(try actions.importPKCS12(try CommandLineFiles.read(path), password: password))
        case "6":
            guard let name = try askFQDN(default: fqdn) else { return }
            say(try actions.selfSigned(fqdn: name))
        case "7":
            guard let active = try store.active() else { say("no active certificate"); return }
            say(CertificateSummary(certificate: active.certificate).text.split(separator: "\n").map(String.init))
        case "8":
            guard let active = try store.active() else { say("no active certificate"); return }
            let summary = CertificateSummary(certificate: active.certificate)
            say("\(summary.status): \(summary.daysLeft) days left (until \(summary.notAfter))")
        case "9":
            guard try ask("Roll back to the previous certificate? Type yes: ")?.trimmedLine == "yes" else { return }
            say(try actions.rollbackCertificate())
        case "10":
            say("Paste the CA certificates whose client certificates may call the API, then an empty line:")
            guard let bundle = try paste(secret: false, many: true), !bundle.isEmpty else { return }
            say(try actions.importAPICA(Array(bundle.utf8)))
        case "11":
            let anchors = try store.trustBundleForRoomSystems()
            for anchor in anchors {
                say(TextLayout.wrap("SHA-256 \(anchor.sha256FingerprintText)", indent: 8))
                say(TextLayout.wrap(anchor.pemEncoded.trimmedLine))
            }
            say("Paste this on the room system (its menu 4, item 12) and compare the fingerprint.")
        case "12":
            say("Paste the server's trust bundle, then an empty line:")
            guard let bundle = try paste(secret: false, many: true), !bundle.isEmpty else { return }
            let certificates = try FirstBootWizard.certificates(bundle, what: "the pasted bundle")
            for certificate in certificates {
                say(TextLayout.wrap("\(certificate.subject)\nSHA-256 \(certificate.sha256FingerprintText)", indent: 8))
            }
            say("Type the fingerprint the server's console shows (colons optional):")
            guard let typed = try ask("> ")?.uppercased().filter({ $0 != ":" && $0 != " " }),
                certificates.contains(where: { $0.sha256FingerprintText.filter { $0 != ":" } == typed }), !typed.isEmpty
            else {
                say("refused: the fingerprint does not match; nothing imported")
                return
            }
            say(try actions.importTrust(certificates))
        default: say("no item \(choice)")
        }
    }

    func askFQDN(default fqdn: String?) throws -> String? {
        guard let answer = try ask("FQDN [\(fqdn ?? "")]: ")?.trimmedLine else { return nil }
        if answer.isEmpty {
            guard let fqdn else { say("refused: no FQDN is set"); return nil }
            return fqdn
        }
        return try FirstBootWizard.parseFQDN(answer)
    }

    // MARK: 6 Monitoring

    func monitoringMenu() throws {
        var monitoring = try environment.currentConfiguration().monitoring
        say(TextLayout.table([("ApMon destinations", monitoring.destinations.isEmpty ? "none" : monitoring.destinations.enumerated().map { "\($0.offset + 1)) \($0.element)" }.joined(separator: " ")),
                              ("report interval", "\(monitoring.intervalSeconds) s"), ("privacy mode", monitoring.privacy.rawValue),
                              ("metrics listener", monitoring.metricsListenText ?? "none")]))
        guard let choice = try choose("Monitoring", [(1, "Add an ApMon destination"), (2, "Remove a destination"), (3, "Privacy mode"), (4, "Report interval")]) else { return }
        switch choice {
        case "1":
            guard monitoring.destinations.count < MonitoringConfiguration.maximumDestinations else {
                say("refused: at most \(MonitoringConfiguration.maximumDestinations) destinations")
                return
            }
            guard let target = try ask("Destination (host[:port], port 8884 by default): ")?.trimmedLine, !target.isEmpty,
                let password = try ask("Its ApMon password (empty: none; not shown): ", secret: true)?.trimmedLine
            else { return }
            guard !target.contains(" ") else { say("refused: \"\(target)\" is not host[:port]"); return }
            monitoring.destinations.append(try MonitoringConfiguration.Destination(parsing: password.isEmpty ? target : "\(target) \(password)"))
            say(try actions.setMonitoring(monitoring, what: "destination added"))
        case "2":
            guard !monitoring.destinations.isEmpty else { say("no destination to remove"); return }
            guard let text = try ask("Number of the destination to remove: ")?.trimmedLine else { return }
            guard let number = Int(text), (1...monitoring.destinations.count).contains(number) else {
                say("refused: type 1…\(monitoring.destinations.count)")
                return
            }
            monitoring.destinations.remove(at: number - 1)
            say(try actions.setMonitoring(monitoring, what: "destination removed"))
        case "3":
            guard let mode = try choose("Privacy mode of personal fields (nickname, IP, MAC) in monitoring", [
                (1, "full: as they are"), (2, "pseudonymous: keyed HMAC of each value (default)"), (3, "off: left out"),
            ]) else { return }
            guard let privacy = ["1": MonitoringConfiguration.Privacy.full, "2": .pseudonymous, "3": .off][mode] else { say("type 1, 2 or 3"); return }
            monitoring.privacy = privacy
            say(try actions.setMonitoring(monitoring, what: "privacy mode"))
        case "4":
            guard let text = try ask("Report interval in seconds (5…3600): ")?.trimmedLine else { return }
            guard let seconds = Int(text), (5...3600).contains(seconds) else { say("refused: the interval is 5…3600 seconds"); return }
            monitoring.intervalSeconds = seconds
            say(try actions.setMonitoring(monitoring, what: "report interval"))
        default: say("no item \(choice)")
        }
    }

    // MARK: 7 Tuning

    func tuningMenu() throws {
        guard let choice = try choose("Tuning profile (\(ApplianceNetwork.boardProfile) with the overrides in conclave.json)",
                                      [(1, "Show the profile"), (2, "Diff: what applying would change"), (3, "Apply")]) else { return }
        switch choice {
        case "1":
            let target = try environment.network.target()
            say(TextLayout.wrap(String(describing: target.tuning)))
        case "2":
            let plan = try environment.network.plan()
            let lines = plan.changes.map { "change \($0)" } + plan.notes.map { "note: \($0)" } + plan.failures.map { "cannot: \($0)" }
            say(lines.isEmpty ? ["nothing to change"] : lines)
        case "3":
            guard environment.appliesToHost else { say("--no-apply: the host's tuning is left alone"); return }
            let lines = try environment.network.apply()
            try? environment.audit("tuning-apply", lines.filter { $0.hasPrefix("changed") }.joined(separator: "; "), nil)
            say(lines)
        default: say("no item \(choice)")
        }
    }

    // MARK: 10 Diagnostics

    func diagnosticsMenu() throws {
        guard let choice = try choose("Diagnostics", [(1, "Daemon status (conclave status)"), (2, "Last log lines"), (3, "Shell (root; exit returns here)")]) else { return }
        switch choice {
        case "1":
            guard let report = environment.daemon.status() else { say("the daemon is not running"); return }
            say("supervisor pid \(report.supervisorPid), role \(report.role), up \(Int(report.uptimeSeconds)) s")
            for worker in report.workers {
                guard let pid = worker.pid, let process = worker.process else {
                    say("\(worker.role.rawValue): not running (restarts \(worker.restarts))")
                    continue
                }
                say("\(worker.role.rawValue): pid \(pid), uid \(process.uids.first ?? 0), CapEff \(String(process.capabilities["CapEff"] ?? 0, radix: 16)), "
                    + "NoNewPrivs \(process.noNewPrivileges ? 1 : 0), restarts \(worker.restarts)")
            }
        case "2":
            say(Array(Self.runTool(["logread"]).suffix(20)))
        case "3":
            try? environment.audit("shell", "root shell opened at the console", nil)
            say("root shell: type exit to return to the menu")
            _ = terminal.runInteractive("/bin/sh", arguments: ["-sh"])
        default: say("no item \(choice)")
        }
    }

    // MARK: 12 Power, 13 factory reset

    func powerMenu() throws {
        guard let choice = try choose("Power", [(1, "Reboot"), (2, "Shut down")]) else { return }
        guard choice == "1" || choice == "2" else { say("type 1 or 2"); return }
        guard try ask("Type yes to \(choice == "1" ? "reboot" : "shut down"): ")?.trimmedLine == "yes" else { return }
        try? environment.audit(choice == "1" ? "reboot" : "shutdown", "from the console", nil)
        guard environment.appliesToHost else { say("--no-apply: not rebooting the host"); return }
        // busybox init: SIGTERM reboots, SIGUSR2 powers off; both run rcK first.
        kill(1, choice == "1" ? SIGTERM : SIGUSR2)
        say(choice == "1" ? "rebooting …" : "shutting down …")
    }

    /// True when the reset happened (the session goes back to the status screen).
    func factoryResetMenu() throws -> Bool {
        say(["Factory reset removes the configuration, certificates, admin account and database.",
             "It is offered only here, at the physical console."])
        guard try ask("Type FACTORY RESET to go on: ")?.trimmedLine == "FACTORY RESET" else {
            say("not confirmed: nothing changed")
            return false
        }
        say(try actions.factoryReset())
        if environment.appliesToHost {
            say("rebooting …")
            kill(1, SIGTERM)
        }
        return true
    }
}
