import ConclaveIdentity
import SystemPackage

/// Where the console's audit records go: the identity store's audit log
/// (DIR/db/identity.sqlite), actor "console", the action, old → new, never a secret.
struct ConsoleAuditLog: Sendable {
    let stateDirectory: FilePath

    @Sendable func record(action: String, detail: String, subject: String?) throws {
        try IdentityStore(directory: stateDirectory).audit(actor: "console", action: action, detail: detail, subject: subject)
    }
}
