public import SystemPackage
import ConclaveSystem

/// The A/B boot state (`/data/bootstate`): RAUC's U-Boot names, in the format that the slot
/// selector (scripts/image/init-ab) and `usr/libexec/conclave/bootstate` read and write:
///
///     BOOT_ORDER="A B"
///     BOOT_A_LEFT=3
///     BOOT_B_LEFT=3
///
/// Parsed, never sourced, as they do: a missing key takes its default, a counter that is not a
/// number counts as 0, an order other than "A B"/"B A" becomes "A B".
public struct BootState: Equatable, Sendable {
    public static let tries = 3
    public static let slots = ["A", "B"]

    public var order: [String]
    public var triesLeft: [String: Int]

    public init(order: [String] = ["A", "B"], triesLeft: [String: Int] = ["A": BootState.tries, "B": BootState.tries]) {
        self.order = order
        self.triesLeft = triesLeft
    }

    public init(parsing text: String) {
        var order = "A B"
        var counters = ["A": "\(Self.tries)", "B": "\(Self.tries)"]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals]
            var value = Substring(line[line.index(after: equals)...])
            if value.hasPrefix("\"") { value = value.dropFirst() }
            if value.hasSuffix("\"") { value = value.dropLast() }
            switch key {
            case "BOOT_ORDER": order = String(value)
            case "BOOT_A_LEFT": counters["A"] = String(value)
            case "BOOT_B_LEFT": counters["B"] = String(value)
            default: continue
            }
        }
        self.order = order == "B A" ? ["B", "A"] : ["A", "B"]
        triesLeft = counters.mapValues { text in
            !text.isEmpty && text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ? Int(text) ?? 0 : 0
        }
    }

    public var text: String {
        "BOOT_ORDER=\"\(order.joined(separator: " "))\"\nBOOT_A_LEFT=\(triesLeft["A"] ?? 0)\nBOOT_B_LEFT=\(triesLeft["B"] ?? 0)\n"
    }

    public var primary: String { order[0] }

    public func isGood(_ slot: String) -> Bool { (triesLeft[slot] ?? 0) > 0 }

    /// RAUC `set-primary`: first in the order, with full tries.
    public mutating func setPrimary(_ slot: String) {
        order = [slot] + order.filter { $0 != slot }
        triesLeft[slot] = Self.tries
    }

    /// RAUC `set-state good|bad`.
    public mutating func setState(_ slot: String, good: Bool) { triesLeft[slot] = good ? Self.tries : 0 }
}

/// Where the boot state lives. Real: a file on the data partition. Tests: the same, in a temp directory.
public struct BootStateStore: Sendable {
    public let path: FilePath

    public init(path: FilePath) { self.path = path }

    public func load() throws(UpdateError) -> BootState {
        guard path.exists else { return BootState() }
        return BootState(parsing: String(decoding: try readWholeFile(path.string, limit: 4096), as: UTF8.self))
    }

    /// Temp, fsync, rename, fsync(dir), as the selector does: the old or the new state survives a cut.
    public func save(_ state: BootState) throws(UpdateError) {
        do {
            try Files.writeAtomically(Array(state.text.utf8), to: path, permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw .io("writing \(path): \(error)")
        }
    }
}
