public import SystemPackage
import ConclaveSystem
import FoundationEssentials
import Glibc

/// The update data directory: `state.json` (the `UpdateState`, rewritten atomically at every
/// transition) and `lock` (held with `flock` by the one process installing or marking good).
public struct UpdateStore: Sendable {
    public let directory: FilePath

    public init(directory: FilePath) { self.directory = directory }

    var statePath: FilePath { directory.appending("state.json") }

    public func load() throws(UpdateError) -> UpdateState {
        guard statePath.exists else { return UpdateState() }
        let bytes = try readWholeFile(statePath.string, limit: 1 << 16)
        do {
            return try JSONDecoder().decode(UpdateState.self, from: Data(bytes))
        } catch {
            // Written atomically, so this is damage, not a torn write: start over, and say so.
            var state = UpdateState()
            state.phase = .failed
            state.lastResult = "the update state file was unreadable and has been reset"
            return state
        }
    }

    public func save(_ state: UpdateState, faults: FaultInjection = .fromEnvironment) throws(UpdateError) {
        do {
            try directory.makeDirectory(permissions: [.ownerReadWriteExecute, .groupRead, .groupExecute, .otherRead, .otherExecute])
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try Files.writeAtomically(Array(try encoder.encode(state)) + [0x0A], to: statePath, permissions: [.ownerReadWrite, .groupRead, .otherRead], faults: faults)
        } catch {
            throw .io("writing \(statePath): \(error)")
        }
        faults.reach("update-\(state.phase.rawValue)")
    }

    /// Runs `body` holding the store's lock (`flock(LOCK_EX | LOCK_NB)`); another holder → refused.
    public func withLock<Result>(_ body: () throws(UpdateError) -> Result) throws(UpdateError) -> Result {
        do {
            try directory.makeDirectory(permissions: [.ownerReadWriteExecute, .groupRead, .groupExecute, .otherRead, .otherExecute])
        } catch { throw .io("creating \(directory): \(error)") }
        let lockPath = directory.appending("lock").string
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let phase = (try? load().phase.rawValue) ?? "unknown"
            throw .installInProgress(phase)
        }
        return try body()
    }
}
