public import ConclaveCrypto
public import ConclaveSystem
public import SystemPackage
import Glibc

/// What the installer needs to know about the running system; the real values come from
/// `/etc/conclave/system.conf`, `/etc/conclave/board`, `/run/boot-slot` and the kernel's boot id.
public struct UpdateEnvironment: Sendable {
    public var configuration: SystemConfiguration
    public var bootState: BootStateStore
    public var store: UpdateStore
    /// The slot the selector booted (`/run/boot-slot`); nil when not booted through it.
    public var bootedSlot: String?
    public var bootID: String
    public var runningVersion: String?

    public init(
        configuration: SystemConfiguration, bootState: BootStateStore, store: UpdateStore, bootedSlot: String?,
        bootID: String, runningVersion: String?
    ) {
        self.configuration = configuration
        self.bootState = bootState
        self.store = store
        self.bootedSlot = bootedSlot
        self.bootID = bootID
        self.runningVersion = runningVersion
    }

    /// The appliance's own files.
    public static func system(
        configurationPath: String = SystemConfiguration.defaultPath, boardFile: String = SystemConfiguration.boardPath,
        bootStatePath: String = "/data/bootstate", bootedSlotFile: String = "/run/boot-slot"
    ) throws(UpdateError) -> UpdateEnvironment {
        let configuration = try SystemConfiguration.load(path: configurationPath)
        let booted = (try? readWholeFile(bootedSlotFile, limit: 16)).map { String(decoding: $0, as: UTF8.self).trimmingWhitespace() }
            .map { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 }
        return UpdateEnvironment(
            configuration: configuration, bootState: BootStateStore(path: FilePath(bootStatePath)),
            store: UpdateStore(directory: FilePath(configuration.dataDirectory)),
            bootedSlot: booted.flatMap { BootState.slots.contains($0) ? $0 : nil },
            bootID: currentBootID(), runningVersion: SystemConfiguration.runningVersion(boardFile: boardFile))
    }

    public static func currentBootID() -> String {
        (try? readWholeFile("/proc/sys/kernel/random/boot_id", limit: 64)).map {
            String(decoding: $0, as: UTF8.self).trimmingWhitespace().replacingNewlines()
        } ?? "unknown"
    }
}

extension String {
    func replacingNewlines() -> String { String(filter { $0 != "\n" }) }
}

/// Drives `UpdateStateMachine` with real I/O: verifies a bundle, streams its image into the
/// inactive slot, reads it back, switches the boot state; and, after a reboot, records the
/// outcome and marks the booted slot good.
public struct UpdateInstaller {
    public let environment: UpdateEnvironment
    public var faults: FaultInjection

    public init(environment: UpdateEnvironment, faults: FaultInjection = .fromEnvironment) {
        self.environment = environment
        self.faults = faults
    }

    /// The current state, with an interrupted install (no installer holds the lock) resolved.
    public func status() throws(UpdateError) -> UpdateState {
        do throws(UpdateError) {
            return try environment.store.withLock { () throws(UpdateError) -> UpdateState in
                var machine = UpdateStateMachine(state: try environment.store.load())
                try settle(&machine, try machine.handle(.recovered(bootedSlot: environment.bootedSlot, bootID: environment.bootID)))
                return machine.state
            }
        } catch .installInProgress {
            return try environment.store.load()  // an installer is running: its own state is current
        }
    }

    /// Installs the bundle at `path`. A refusal leaves the slots and the boot state untouched
    /// and is recorded as the last result. `allowDowngrade` is for the physical console only.
    public func install(
        bundle path: String, keyring: TrustStore, allowDowngrade: Bool = false, progress: (UInt64, UInt64) -> Void = { _, _ in }
    ) throws(UpdateError) -> UpdateState {
        let store = environment.store
        return try store.withLock { () throws(UpdateError) -> UpdateState in
            var machine = UpdateStateMachine(state: try store.load())
            try settle(&machine, try machine.handle(.recovered(bootedSlot: environment.bootedSlot, bootID: environment.bootID)))
            guard let booted = environment.bootedSlot else {
                throw .noInactiveSlot("the booted slot is unknown (no /run/boot-slot: not started by the slot selector)")
            }
            guard let active = environment.configuration.slot(booted),
                  let target = environment.configuration.slots.first(where: { $0.bootname != booted }) else {
                throw .noInactiveSlot("system.conf has no slot pair around the booted slot \(booted)")
            }
            _ = try machine.handle(.begin(source: path, runningSlot: booted, runningVersion: environment.runningVersion, bootID: environment.bootID))
            try store.save(machine.state, faults: faults)
            do throws(UpdateError) {
                let bundle = try BundleFile(path: path)
                _ = try machine.handle(.received)
                try store.save(machine.state, faults: faults)
                let policy = UpdatePolicy(
                    keyring: keyring, compatible: environment.configuration.compatible,
                    runningVersion: environment.runningVersion, allowDowngrade: allowDowngrade, slotClass: target.slotClass)
                let verified = try BundleVerifier.verify(bundle, policy: policy)
                _ = try machine.handle(.verified(version: verified.manifest.version, targetSlot: target.bootname, imageSize: verified.image.size))
                try store.save(machine.state, faults: faults)
                try write(verified, to: target, active: active, machine: &machine, progress: progress)
                _ = try machine.handle(.written)
                try store.save(machine.state, faults: faults)
                return machine.state
            } catch {
                try settle(&machine, try machine.handle(.failed(error)))
                throw error
            }
        }
    }

    /// After a reboot: records a rollback, or — on the new slot — the finished update; then
    /// gives the booted slot its tries back. Call only after the health checks passed.
    public func markGood() throws(UpdateError) -> UpdateState {
        guard let booted = environment.bootedSlot else {
            throw .noInactiveSlot("the booted slot is unknown (no /run/boot-slot): nothing to mark good")
        }
        return try environment.store.withLock { () throws(UpdateError) -> UpdateState in
            var machine = UpdateStateMachine(state: try environment.store.load())
            try settle(&machine, try machine.handle(.markedGood(bootedSlot: booted, bootID: environment.bootID)))
            var bootState = try environment.bootState.load()
            bootState.setState(booted, good: true)
            try environment.bootState.save(bootState)
            return machine.state
        }
    }

    /// Boot-time check before the health check: records "update to V failed, rolled back to U"
    /// when the new slot did not come up, so the console and the API can show it at once.
    public func reconcileAtBoot() throws(UpdateError) -> UpdateState { try status() }

    /// Marks the written slot as about to reboot (the caller then reboots).
    public func prepareReboot() throws(UpdateError) -> UpdateState {
        try environment.store.withLock { () throws(UpdateError) -> UpdateState in
            var machine = UpdateStateMachine(state: try environment.store.load())
            guard machine.state.phase == .written || machine.state.phase == .rebooting else {
                throw .installInProgress("\(machine.state.phase.rawValue): nothing written to reboot into")
            }
            _ = try machine.handle(.rebootRequested)
            try environment.store.save(machine.state, faults: faults)
            return machine.state
        }
    }

    /// Persists the state, then carries out a recovery action.
    private func settle(_ machine: inout UpdateStateMachine, _ action: UpdateStateMachine.Action) throws(UpdateError) {
        if case .markSlotBad(let slot) = action {
            var bootState = try environment.bootState.load()
            if bootState.isGood(slot) {
                bootState.setState(slot, good: false)
                try environment.bootState.save(bootState)
            }
        }
        try environment.store.save(machine.state, faults: faults)
    }

    private func write(
        _ verified: VerifiedBundle, to target: SystemConfiguration.Slot, active: SystemConfiguration.Slot,
        machine: inout UpdateStateMachine, progress: (UInt64, UInt64) -> Void
    ) throws(UpdateError) {
        guard target.bootname != active.bootname, canonical(target.device) != canonical(active.device) else {
            throw .noInactiveSlot("slot \(target.bootname) is the running slot's device \(active.device)")
        }
        // Deactivate first: from here until the boot state switch, a cut leaves the old slot booting.
        var bootState = try environment.bootState.load()
        bootState.setState(target.bootname, good: false)
        if bootState.primary == target.bootname { bootState.order = bootState.order.reversed() }
        try environment.bootState.save(bootState)

        let slot = try SlotDevice(path: target.device)
        defer { slot.close() }
        let size = verified.image.size
        guard size <= slot.capacity else { throw .slotTooSmall(image: size, slot: slot.capacity) }
        let hasher: SHA256Hasher
        do { hasher = try SHA256Hasher() } catch { throw .io("\(error)") }
        var written: UInt64 = 0
        var lastSaved: UInt64 = 0
        try verified.payload.read(verified.imageFile) { chunk throws(UpdateError) in
            try slot.write(chunk, at: written)
            hasher.update(chunk)
            written += UInt64(chunk.count)
            progress(written, size)
            if written - lastSaved >= 8 << 20 || written == size {  // the API's progress, every 8 MiB
                _ = try machine.handle(.progressed(written))
                try environment.store.save(machine.state, faults: .none)
                lastSaved = written
            }
            faults.reach("update-slot-chunk")
        }
        try slot.synchronize()
        let streamed: [UInt8]
        do { streamed = try hasher.finish() } catch { throw .io("\(error)") }
        // The bundle could have been replaced between the check and the write; the hash of what
        // was written must still be the signed one.
        guard streamed == verified.image.sha256 else { throw .imageHashMismatch(name: verified.image.filename) }
        try verified.bundle.checkUnchanged()
        guard try slot.readBackDigest(length: size) == verified.image.sha256 else {
            throw .readBackMismatch(slot: target.bootname)
        }
        bootState = try environment.bootState.load()
        bootState.setPrimary(target.bootname)
        try environment.bootState.save(bootState)
        faults.reach("update-boot-switched")
    }

    private func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// The inactive slot: a block device (a partition) or a regular file standing in for one.
/// Written in place (no create, no truncate): its size is the slot's capacity.
final class SlotDevice {
    let path: String
    private var descriptor: Int32
    let capacity: UInt64

    init(path: String) throws(UpdateError) {
        self.path = path
        descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw .noInactiveSlot("cannot open slot device \(path): \(String(cString: strerror(errno)))") }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFBLK || status.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(descriptor)
            throw .noInactiveSlot("\(path) is neither a block device nor a regular file")
        }
        let end = lseek(descriptor, 0, SEEK_END)  // a block device's size, too
        guard end >= 0 else {
            Glibc.close(descriptor)
            throw .io("lseek \(path): \(String(cString: strerror(errno)))")
        }
        capacity = UInt64(end)
    }

    func write(_ bytes: ArraySlice<UInt8>, at offset: UInt64) throws(UpdateError) {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done)) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { throw .io("writing \(path): \(String(cString: strerror(errno)))") }
            done += result
        }
    }

    func synchronize() throws(UpdateError) {
        guard fsync(descriptor) == 0 else { throw .io("fsync \(path): \(String(cString: strerror(errno)))") }
    }

    /// SHA-256 of the first `length` bytes as the device holds them: the page cache is dropped
    /// first (`posix_fadvise(DONTNEED)` after the fsync), so the read reaches the medium.
    func readBackDigest(length: UInt64) throws(UpdateError) -> [UInt8] {
        _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_DONTNEED)
        let hasher: SHA256Hasher
        do { hasher = try SHA256Hasher() } catch { throw .io("\(error)") }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < length {
            let want = Int(min(UInt64(buffer.count), length - offset))
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, want, off_t(offset)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw .io("reading back \(path): \(count < 0 ? String(cString: strerror(errno)) : "short read")") }
            hasher.update(buffer[..<count])
            offset += UInt64(count)
        }
        do { return try hasher.finish() } catch { throw .io("\(error)") }
    }

    func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    deinit { close() }
}
