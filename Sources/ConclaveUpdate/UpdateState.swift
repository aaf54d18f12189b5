/// The installer's persisted state: the phase and what the console, the API and monitoring
/// show about the last update. Stored as JSON in the update data directory, rewritten
/// atomically at every transition, so a power cut leaves one of the two states around it.
public struct UpdateState: Codable, Equatable, Sendable {
    public enum Phase: String, Codable, Sendable {
        case idle, receiving, verifying, writing, written, rebooting, failed
    }

    public var phase: Phase = .idle
    /// Where the bundle came from (a path, or "api").
    public var source: String?
    /// The bundle's version, once verified.
    public var version: String?
    /// The slot being (or last) written, and the slot that was running meanwhile.
    public var targetSlot: String?
    public var runningSlot: String?
    public var runningVersion: String?
    /// `/proc/sys/kernel/random/boot_id` of the boot that installed: a different one at the next
    /// start proves a reboot happened.
    public var bootID: String?
    /// Bytes of the image written so far, and its size.
    public var progress: UInt64?
    public var imageSize: UInt64?
    /// The outcome of the last attempt, in words ("updated to 1.2.0 (slot B)", a refusal …).
    public var lastResult: String?
    /// Set when a new slot failed to come up and the old one booted again.
    public var rollback: String?

    public init() {}
}

/// The installer as a pure value: each event moves the phase and returns what the caller must
/// do next. The caller persists `state` after every call, then acts (STYLE.md, "State machines
/// return actions"). idle → receiving → verifying → writing → written → rebooting, or → failed.
public struct UpdateStateMachine: Sendable {
    public enum Event: Sendable {
        case begin(source: String, runningSlot: String, runningVersion: String?, bootID: String)
        case received
        case verified(version: String, targetSlot: String, imageSize: UInt64)
        case progressed(UInt64)
        /// The image is written, read back, and the boot state switched to the new slot.
        case written
        case rebootRequested
        case failed(UpdateError)
        /// The state was opened with no installer running: after a crash, a power cut, or a boot.
        case recovered(bootedSlot: String?, bootID: String)
        /// The booted system passed its health check.
        case markedGood(bootedSlot: String, bootID: String)
    }

    public enum Action: Equatable, Sendable {
        case none
        case receive
        case verify
        /// Set the slot bad in the boot state, write the image into it, read back, set it primary.
        case write(slot: String)
        case reboot
        /// The slot may hold a partial image: make sure the selector never boots it.
        case markSlotBad(String)
    }

    public private(set) var state: UpdateState

    public init(state: UpdateState = UpdateState()) { self.state = state }

    public mutating func handle(_ event: Event) throws(UpdateError) -> Action {
        switch (state.phase, event) {
        case (.idle, .begin(let source, let slot, let version, let bootID)),
             (.failed, .begin(let source, let slot, let version, let bootID)),
             (.written, .begin(let source, let slot, let version, let bootID)):
            let previous = state
            state = UpdateState()
            state.phase = .receiving
            state.source = source
            state.runningSlot = slot
            state.runningVersion = version
            state.bootID = bootID
            state.rollback = previous.rollback
            state.lastResult = previous.lastResult
            return .receive
        case (_, .begin):
            throw .installInProgress(state.phase.rawValue)
        case (.receiving, .received):
            state.phase = .verifying
            return .verify
        case (.verifying, .verified(let version, let slot, let size)):
            state.phase = .writing
            state.version = version
            state.targetSlot = slot
            state.imageSize = size
            state.progress = 0
            return .write(slot: slot)
        case (.writing, .progressed(let bytes)):
            state.progress = bytes
            return .none
        case (.writing, .written):
            state.phase = .written
            state.progress = state.imageSize
            state.lastResult = "version \(state.version ?? "?") written to slot \(state.targetSlot ?? "?"); reboot to start it"
            return .none
        case (.written, .rebootRequested), (.rebooting, .rebootRequested):
            state.phase = .rebooting
            return .reboot
        case (.receiving, .failed(let error)), (.verifying, .failed(let error)):
            state.phase = .failed
            state.lastResult = "refused: \(error)"
            return .none
        case (.writing, .failed(let error)):
            state.phase = .failed
            state.lastResult = "install to slot \(state.targetSlot ?? "?") failed: \(error)"
            return state.targetSlot.map { .markSlotBad($0) } ?? .none
        case (_, .recovered(let booted, let bootID)):
            return recover(booted: booted, bootID: bootID)
        case (_, .markedGood(let booted, let bootID)):
            let action = recover(booted: booted, bootID: bootID)
            if state.phase == .rebooting, state.bootID != bootID, booted == state.targetSlot {
                state.phase = .idle
                state.lastResult = "updated to \(state.version ?? "?") (slot \(booted)), marked good"
                state.rollback = nil
            }
            return action
        default:
            preconditionFailure("update state machine: \(event) cannot happen in \(state.phase)")
        }
    }

    /// What a phase means when no installer is running.
    private mutating func recover(booted: String?, bootID: String) -> Action {
        let rebooted = state.bootID != nil && state.bootID != bootID
        switch state.phase {
        case .idle, .failed:
            return .none
        case .receiving, .verifying:
            let phase = state.phase.rawValue
            state.phase = .failed
            state.lastResult = "install interrupted while \(phase) (crash or power cut); nothing was written"
            return .none
        case .writing:
            // The boot state is switched only after a complete, read-back write: booting the
            // target proves the write finished and only the final state update was lost.
            if rebooted, let booted, booted == state.targetSlot {
                state.phase = .rebooting
                return .none
            }
            state.phase = .failed
            state.lastResult = "install interrupted while writing slot \(state.targetSlot ?? "?") (crash or power cut); "
                + "the slot is marked bad, slot \(state.runningSlot ?? "?") still boots"
            return state.targetSlot.map { .markSlotBad($0) } ?? .none
        case .written, .rebooting:
            guard rebooted, let booted else { return .none }
            if booted == state.targetSlot {
                state.phase = .rebooting  // up on the new slot, waiting for the health check
                return .none
            }
            let message = "update to \(state.version ?? "?") failed, rolled back to \(state.runningVersion ?? "the previous version")"
            state.phase = .failed
            state.rollback = message
            state.lastResult = message
            return state.targetSlot.map { .markSlotBad($0) } ?? .none
        }
    }
}
