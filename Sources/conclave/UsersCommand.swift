import ArgumentParser
import ConclaveIdentity
import ConclaveSystem
import Glibc
import SystemPackage

/// `conclave users …`: local administration of registered users (as root, on the box).
struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Add, show, list, erase registered users and set their passwords; show the audit log.",
        subcommands: [
            UsersAddCommand.self, UsersShowCommand.self, UsersListCommand.self, UsersEraseCommand.self, UsersPasswdCommand.self,
            UsersAuditCommand.self,
        ])
}

/// `--state DIR`, shared by every `users` subcommand: the store is DIR/db/identity.sqlite.
struct IdentityStateOptions: ParsableArguments {
    @Option(help: "State directory; the identity store is DIR/db/identity.sqlite.") var state = "/data/conclave"

    /// Every change made from the command line is audited with this actor.
    static let actor = "local"

    /// Opens the store with the configured guest retention (conclave.json `guestRetentionDays`).
    func store() throws -> IdentityStore {
        let directory = FilePath(state)
        let configuration = try DaemonConfiguration.load(stateDirectory: directory)
        return try IdentityStore(directory: directory, guestRetention: configuration.guestRetention)
    }
}

/// `--password-file F`, or the terminal without echo.
struct PasswordOptions: ParsableArguments {
    @Option(help: "Read the password from the first line of this file instead of the terminal.") var passwordFile: String?

    /// The password; on a terminal it is asked twice (`confirm`) and must match.
    func read(confirm: Bool) throws -> String {
        if let passwordFile {
            var bytes = try Files.read(FilePath(passwordFile))
            if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) { bytes.removeSubrange(newline...) }
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard let password = String(validating: bytes, as: UTF8.self) else {
                throw UsersCommandError("\(passwordFile): the password is not UTF-8")
            }
            return password
        }
        let terminal = try PasswordTerminal()
        defer { terminal.close() }
        let password = try terminal.ask("Password: ")
        if confirm {
            try IdentityStore.checkPassword(password)  // say so before asking again
            guard try terminal.ask("Password again: ") == password else { throw UsersCommandError("the passwords differ; nothing changed") }
        }
        return password
    }
}

/// /dev/tty with echo off while a password is typed (`tcgetattr`/`tcsetattr`), restored after.
struct PasswordTerminal {
    let descriptor: Int32

    init() throws {
        descriptor = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard descriptor >= 0 else { throw UsersCommandError("no terminal to read the password from: use --password-file FILE") }
    }

    func close() { _ = Glibc.close(descriptor) }

    func ask(_ prompt: String) throws -> String {
        write(prompt)
        var saved = termios()
        guard tcgetattr(descriptor, &saved) == 0 else { throw UsersCommandError("tcgetattr: \(Errno(rawValue: errno))") }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        quiet.c_lflag |= tcflag_t(ICANON)
        guard tcsetattr(descriptor, TCSAFLUSH, &quiet) == 0 else { throw UsersCommandError("tcsetattr: \(Errno(rawValue: errno))") }
        defer {
            _ = tcsetattr(descriptor, TCSAFLUSH, &saved)
            write("\n")
        }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = Glibc.read(descriptor, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { break }
            if byte == UInt8(ascii: "\n") { break }
            line.append(byte)
            guard line.count <= IdentityStore.maximumPasswordBytes else { throw UsersCommandError("the password is too long") }
        }
        guard let password = String(validating: line, as: UTF8.self) else { throw UsersCommandError("the password is not UTF-8") }
        return password
    }

    private func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
    }
}

/// A refusal of the command line itself (no terminal, unreadable file): printed, exit status 1.
struct UsersCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
