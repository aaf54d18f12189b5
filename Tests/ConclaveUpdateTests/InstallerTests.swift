import ConclaveCrypto
import ConclaveSystem
import SystemPackage
import Testing
@testable import ConclaveUpdate

@Suite struct UpdateStateMachineTests {
    @Test func walksAnInstallToTheReboot() throws {
        var machine = UpdateStateMachine()
        #expect(try machine.handle(.begin(source: "/mnt/u.raucb", runningSlot: "A", runningVersion: "1.0.0", bootID: "boot-1")) == .receive)
        #expect(machine.state.phase == .receiving)
        #expect(try machine.handle(.received) == .verify)
        #expect(try machine.handle(.verified(version: "2.0.0", targetSlot: "B", imageSize: 10)) == .write(slot: "B"))
        #expect(machine.state.phase == .writing)
        #expect(try machine.handle(.progressed(5)) == UpdateStateMachine.Action.none)
        #expect(machine.state.progress == 5)
        #expect(try machine.handle(.written) == UpdateStateMachine.Action.none)
        #expect(machine.state.phase == .written)
        #expect(try machine.handle(.rebootRequested) == .reboot)
        #expect(machine.state.phase == .rebooting)
        // The new slot is up; the health check passes.
        #expect(try machine.handle(.markedGood(bootedSlot: "B", bootID: "boot-2")) == UpdateStateMachine.Action.none)
        #expect(machine.state.phase == .idle)
        #expect(machine.state.lastResult == "updated to 2.0.0 (slot B), marked good")
    }

    @Test func refusesASecondInstallWhileOneRuns() throws {
        var machine = UpdateStateMachine()
        _ = try machine.handle(.begin(source: "a", runningSlot: "A", runningVersion: nil, bootID: "1"))
        #expect(throws: UpdateError.installInProgress("receiving")) {
            try machine.handle(.begin(source: "b", runningSlot: "A", runningVersion: nil, bootID: "1"))
        }
    }

    @Test func aRefusalFailsWithItsReasonAndAFailedWriteMarksTheSlotBad() throws {
        var machine = UpdateStateMachine()
        _ = try machine.handle(.begin(source: "a", runningSlot: "A", runningVersion: "1.0.0", bootID: "1"))
        _ = try machine.handle(.received)
        #expect(try machine.handle(.failed(.incompatible(bundle: "x", device: "y"))) == UpdateStateMachine.Action.none)
        #expect(machine.state.phase == .failed)
        #expect(machine.state.lastResult == "refused: wrong compatible: bundle is for 'x', this device is 'y'")
        _ = try machine.handle(.begin(source: "a", runningSlot: "A", runningVersion: "1.0.0", bootID: "1"))
        _ = try machine.handle(.received)
        _ = try machine.handle(.verified(version: "2.0.0", targetSlot: "B", imageSize: 1))
        #expect(try machine.handle(.failed(.readBackMismatch(slot: "B"))) == .markSlotBad("B"))
    }

    /// A crash or power cut in each phase, seen by the next process to open the state (the same
    /// boot) or by the next boot (booted slot given).
    @Test(arguments: [
        // phase, same boot?, booted slot → phase after, action, result contains
        (UpdateState.Phase.receiving, true, "A", UpdateState.Phase.failed, UpdateStateMachine.Action.none, "interrupted while receiving" as String?),
        (.verifying, false, "A", .failed, .none, "interrupted while verifying"),
        (.writing, true, "A", .failed, .markSlotBad("B"), "interrupted while writing slot B"),
        (.writing, false, "A", .failed, .markSlotBad("B"), "slot A still boots"),
        (.writing, false, "B", .rebooting, .none, nil),  // the switch happened, only the last save was lost
        (.written, true, "A", .written, .none, "written to slot B"),
        (.written, false, "B", .rebooting, .none, "written to slot B"),
        (.written, false, "A", .failed, .markSlotBad("B"), "update to 2.0.0 failed, rolled back to 1.0.0"),
        (.rebooting, false, "A", .failed, .markSlotBad("B"), "update to 2.0.0 failed, rolled back to 1.0.0"),
        (.rebooting, false, "B", .rebooting, .none, "written to slot B"),
    ])
    func recoversFromAnInterruption(
        phase: UpdateState.Phase, sameBoot: Bool, booted: String, expected: UpdateState.Phase,
        action: UpdateStateMachine.Action, result: String?
    ) throws {
        var machine = try machine(in: phase)
        let reopened = UpdateStateMachine(state: machine.state)  // what the next process loads
        machine = reopened
        #expect(try machine.handle(.recovered(bootedSlot: booted, bootID: sameBoot ? "boot-1" : "boot-2")) == action)
        #expect(machine.state.phase == expected)
        if let result { #expect(machine.state.lastResult?.contains(result) == true, "\(machine.state.lastResult ?? "nil")") }
        if expected == .failed && (phase == .written || phase == .rebooting) {
            #expect(machine.state.rollback == "update to 2.0.0 failed, rolled back to 1.0.0")
        }
    }

    /// A state machine driven to `phase` by the events an install sends.
    private func machine(in phase: UpdateState.Phase) throws -> UpdateStateMachine {
        var machine = UpdateStateMachine()
        let steps: [UpdateStateMachine.Event] = [
            .begin(source: "b", runningSlot: "A", runningVersion: "1.0.0", bootID: "boot-1"), .received,
            .verified(version: "2.0.0", targetSlot: "B", imageSize: 4), .written, .rebootRequested,
        ]
        let order: [UpdateState.Phase] = [.receiving, .verifying, .writing, .written, .rebooting]
        for step in steps.prefix(order.firstIndex(of: phase)! + 1) { _ = try machine.handle(step) }
        #expect(machine.state.phase == phase)
        return machine
    }
}

/// The installer on files: slots are temp files standing in for partitions.
@Suite struct UpdateInstallerTests {
    let scratch = ScratchDirectory()
    let slotSize = 1 << 20

    func environment(booted: String? = "A", bootID: String = "boot-1", running: String? = "1.0.0") throws -> UpdateEnvironment {
        let configuration = SystemConfiguration(
            compatible: "conclave-test-board", keyringPath: Fixture.path("ca.pem"), dataDirectory: scratch.file("update"),
            slots: [
                .init(bootname: "A", device: scratch.file("slotA"), slotClass: "rootfs"),
                .init(bootname: "B", device: scratch.file("slotB"), slotClass: "rootfs"),
            ])
        return UpdateEnvironment(
            configuration: configuration, bootState: BootStateStore(path: FilePath(scratch.file("bootstate"))),
            store: UpdateStore(directory: FilePath(scratch.file("update"))), bootedSlot: booted, bootID: bootID,
            runningVersion: running)
    }

    init() throws {
        try scratch.makeSlot("slotA", size: slotSize)
        try scratch.makeSlot("slotB", size: slotSize)
        try scratch.write("bootstate", text: BootState().text)
    }

    @Test func installsARealRaucBundleIntoTheInactiveSlotAndSwitches() throws {
        let installer = UpdateInstaller(environment: try environment(), faults: .none)
        let slotABefore = try scratch.read("slotA")
        let state = try installer.install(bundle: Fixture.path("rauc-2.0.0.raucb"), keyring: Fixture.keyring())
        #expect(state.phase == .written)
        #expect(state.targetSlot == "B")
        #expect(state.version == "2.0.0")
        #expect(try scratch.read("slotA") == slotABefore)  // the active slot is never written
        let slotB = try scratch.read("slotB")
        #expect(slotB.count == slotSize)  // written in place, not truncated
        #expect(hex(try Digest.sha256(slotB.prefix(Int(Fixture.imageSize)))) == Fixture.imageSHA256)
        #expect(slotB[Int(Fixture.imageSize)...].allSatisfy { $0 == 0xEE })
        #expect(try scratch.read("bootstate") == Array("BOOT_ORDER=\"B A\"\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n".utf8))
        #expect(try installer.environment.store.load() == state)

        // Reboot into B; the health check passes.
        let rebooted = UpdateInstaller(environment: try environment(booted: "B", bootID: "boot-2", running: "2.0.0"), faults: .none)
        var boot = try rebooted.environment.bootState.load()
        boot.triesLeft["B"] = 2  // the selector spent a try
        try rebooted.environment.bootState.save(boot)
        #expect(try rebooted.reconcileAtBoot().phase == .rebooting)
        let good = try rebooted.markGood()
        #expect(good.phase == .idle)
        #expect(good.lastResult == "updated to 2.0.0 (slot B), marked good")
        #expect(try rebooted.environment.bootState.load() == BootState(order: ["B", "A"], triesLeft: ["A": 3, "B": 3]))
    }

    @Test func aNewSlotThatNeverComesUpIsReportedAsARollback() throws {
        let installer = UpdateInstaller(environment: try environment(), faults: .none)
        _ = try installer.install(bundle: Fixture.path("rauc-2.0.0.raucb"), keyring: Fixture.keyring())
        _ = try installer.prepareReboot()
        // B failed three times; the selector fell back to A.
        try scratch.write("bootstate", text: "BOOT_ORDER=\"B A\"\nBOOT_A_LEFT=2\nBOOT_B_LEFT=0\n")
        let back = UpdateInstaller(environment: try environment(booted: "A", bootID: "boot-5"), faults: .none)
        let state = try back.reconcileAtBoot()
        #expect(state.phase == .failed)
        #expect(state.rollback == "update to 2.0.0 failed, rolled back to 1.0.0")
        let good = try back.markGood()
        #expect(good.rollback == "update to 2.0.0 failed, rolled back to 1.0.0")  // still shown after the health check
        #expect(try back.environment.bootState.load() == BootState(order: ["B", "A"], triesLeft: ["A": 3, "B": 0]))
    }

    @Test func aRefusedBundleChangesNoSlotAndNoBootState() throws {
        var bytes = try Fixture.bytes("rauc-2.0.0.raucb")
        bytes[30_000] ^= 0x10
        try scratch.write("bad.raucb", bytes)
        let slotB = try scratch.read("slotB")
        let bootState = try scratch.read("bootstate")
        let installer = UpdateInstaller(environment: try environment(), faults: .none)
        #expect(throws: UpdateError.self) { try installer.install(bundle: scratch.file("bad.raucb"), keyring: Fixture.keyring()) }
        #expect(try scratch.read("slotB") == slotB)
        #expect(try scratch.read("bootstate") == bootState)
        let state = try installer.status()
        #expect(state.phase == .failed)
        #expect(state.lastResult?.hasPrefix("refused: bad signature") == true, "\(state.lastResult ?? "")")

        // A downgrade too: refused, nothing changed, the reason is recorded.
        let newer = UpdateInstaller(environment: try environment(running: "3.0.0"), faults: .none)
        #expect(throws: UpdateError.downgrade(bundle: "2.0.0", running: "3.0.0")) {
            try newer.install(bundle: Fixture.path("rauc-2.0.0.raucb"), keyring: Fixture.keyring())
        }
        #expect(try scratch.read("slotB") == slotB)
        #expect(try scratch.read("bootstate") == bootState)
        // Forced (the console's typed confirmation): installed.
        #expect(try newer.install(bundle: Fixture.path("rauc-2.0.0.raucb"), keyring: Fixture.keyring(), allowDowngrade: true).phase == .written)
    }

    @Test func aSlotTooSmallFailsAndLeavesTheOldSlotBooting() throws {
        try scratch.makeSlot("slotB", size: 100_000)
        let installer = UpdateInstaller(environment: try environment(), faults: .none)
        #expect(throws: UpdateError.slotTooSmall(image: Fixture.imageSize, slot: 100_000)) {
            try installer.install(bundle: Fixture.path("rauc-2.0.0.raucb"), keyring: Fixture.keyring())
        }
        #expect(try installer.environment.bootState.load() == BootState(order: ["A", "B"], triesLeft: ["A": 3, "B": 0]))
        #expect(try installer.status().phase == .failed)
    }

    @Test func aCrashDuringTheWriteIsRecoveredByTheNextOpen() throws {
        // What a power cut mid-write leaves: state "writing", B marked bad before the write began.
        let installer = UpdateInstaller(environment: try environment(), faults: .none)
        var machine = UpdateStateMachine()
        _ = try machine.handle(.begin(source: "x", runningSlot: "A", runningVersion: "1.0.0", bootID: "boot-1"))
        _ = try machine.handle(.received)
        _ = try machine.handle(.verified(version: "2.0.0", targetSlot: "B", imageSize: 5))
        try installer.environment.store.save(machine.state, faults: .none)
        try scratch.write("bootstate", text: "BOOT_ORDER=\"A B\"\nBOOT_A_LEFT=3\nBOOT_B_LEFT=0\n")

        let afterBoot = UpdateInstaller(environment: try environment(booted: "A", bootID: "boot-2"), faults: .none)
        let state = try afterBoot.status()
        #expect(state.phase == .failed)
        #expect(state.lastResult?.contains("interrupted while writing slot B") == true)
        #expect(try afterBoot.environment.bootState.load().triesLeft == ["A": 3, "B": 0])
        // And the next install goes through.
        #expect(try afterBoot.install(bundle: Fixture.path("rauc-2.0.0.raucb"), keyring: Fixture.keyring()).phase == .written)
    }

    @Test func refusesToInstallWithoutKnowingTheBootedSlot() throws {
        let installer = UpdateInstaller(environment: try environment(booted: nil), faults: .none)
        #expect(throws: UpdateError.self) { try installer.install(bundle: Fixture.path("rauc-2.0.0.raucb"), keyring: Fixture.keyring()) }
        #expect(try scratch.read("bootstate") == Array(BootState().text.utf8))
    }

    @Test func readsSystemConf() throws {
        let configuration = try SystemConfiguration(parsing: Array("""
            [system]
            compatible=conclave-qemu-x86_64
            bootloader=custom
            data-directory=/data/conclave/update

            [handlers]
            bootloader-custom-backend=/usr/libexec/conclave/bootstate

            [keyring]
            path=/etc/conclave/keyring.pem

            [slot.rootfs.0]
            device=/dev/disk/by-partlabel/slotA
            type=raw
            bootname=A

            [slot.rootfs.1]
            device=/dev/disk/by-partlabel/slotB
            type=raw
            bootname=B
            """.utf8))
        #expect(configuration.compatible == "conclave-qemu-x86_64")
        #expect(configuration.keyringPath == "/etc/conclave/keyring.pem")
        #expect(configuration.slot("B") == .init(bootname: "B", device: "/dev/disk/by-partlabel/slotB", slotClass: "rootfs"))
        #expect(throws: UpdateError.self) { try SystemConfiguration(parsing: Array("[system]\ncompatible=x\n".utf8)) }
    }
}
