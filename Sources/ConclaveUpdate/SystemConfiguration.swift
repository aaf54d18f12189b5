/// The update side of `/etc/conclave/system.conf` (RAUC's `system.conf` shape, written by
/// scripts/build-image) and the running version from `/etc/conclave/board`.
public struct SystemConfiguration: Sendable, Equatable {
    public struct Slot: Sendable, Equatable {
        public let bootname: String
        public let device: String
        public let slotClass: String
    }

    public var compatible: String
    public var keyringPath: String
    public var dataDirectory: String
    public var slots: [Slot]

    public static let defaultPath = "/etc/conclave/system.conf"
    public static let boardPath = "/etc/conclave/board"

    public init(compatible: String, keyringPath: String, dataDirectory: String, slots: [Slot]) {
        self.compatible = compatible
        self.keyringPath = keyringPath
        self.dataDirectory = dataDirectory
        self.slots = slots
    }

    public init(parsing bytes: [UInt8]) throws(UpdateError) {
        let file: KeyFile
        do { file = try KeyFile(parsing: bytes) } catch { throw .configuration("system.conf: \(error)") }
        guard let compatible = file["system", "compatible"], !compatible.isEmpty else {
            throw .configuration("system.conf: [system] compatible is missing")
        }
        self.compatible = compatible
        keyringPath = file["keyring", "path"] ?? "/etc/conclave/keyring.pem"
        dataDirectory = file["system", "data-directory"] ?? "/data/conclave/update"
        var slots: [Slot] = []
        for section in file.order where section.hasPrefix("slot.") {
            let parts = section.split(separator: ".")
            guard parts.count == 3, let device = file[section, "device"], let bootname = file[section, "bootname"],
                  BootState.slots.contains(bootname) else {
                throw .configuration("system.conf: [\(section)] needs device= and bootname=A|B")
            }
            slots.append(Slot(bootname: bootname, device: device, slotClass: String(parts[1])))
        }
        guard Set(slots.map(\.bootname)) == Set(BootState.slots), slots.count == 2 else {
            throw .configuration("system.conf: exactly two slots with bootnames A and B are needed")
        }
        self.slots = slots
    }

    public static func load(path: String = defaultPath) throws(UpdateError) -> SystemConfiguration {
        try SystemConfiguration(parsing: readWholeFile(path, limit: 65_536))
    }

    public func slot(_ bootname: String) -> Slot? { slots.first { $0.bootname == bootname } }

    /// `VERSION=` of the board file, nil when absent.
    public static func runningVersion(boardFile path: String = boardPath) -> String? {
        guard let bytes = try? readWholeFile(path, limit: 65_536) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VERSION=") {
            var value = line.dropFirst("VERSION=".count)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }
}
