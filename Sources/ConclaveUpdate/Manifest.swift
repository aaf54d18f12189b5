/// `manifest.raucm` of a RAUC bundle (protocols/rauc-bundle.md §3), as far as Conclave uses it.
public struct Manifest: Sendable, Equatable {
    public struct Image: Sendable, Equatable {
        /// The slot class, from `[image.<class>]`.
        public let slotClass: String
        public let filename: String
        public let sha256: [UInt8]
        public let size: UInt64
    }

    public let compatible: String
    public let version: String
    public let description: String?
    public let build: String?
    /// `plain` when `[bundle]` is absent (rauc 1.8 leaves it out of plain bundles).
    public let format: String
    public let images: [Image]

    public static let filename = "manifest.raucm"

    public init(parsing bytes: [UInt8]) throws(UpdateError) {
        let file = try KeyFile(parsing: bytes)
        guard let compatible = file["update", "compatible"], !compatible.isEmpty else {
            throw .malformedManifest("[update] compatible is missing")
        }
        guard let version = file["update", "version"], !version.isEmpty else {
            throw .malformedManifest("[update] version is missing")
        }
        guard SemanticVersion(version) != nil else { throw .invalidVersion(version) }
        self.compatible = compatible
        self.version = version
        description = file["update", "description"]
        build = file["update", "build"]
        format = file["bundle", "format"] ?? "plain"
        if file.sections["hooks"] != nil { throw .malformedManifest("[hooks] is not supported (Conclave runs no bundle hooks)") }
        var images: [Image] = []
        for section in file.order where section.hasPrefix("image.") {
            let slotClass = String(section.dropFirst("image.".count))
            guard !slotClass.isEmpty, !slotClass.contains(".") else {
                throw .malformedManifest("[\(section)]: image sections are [image.<slot-class>]")
            }
            guard let filename = file[section, "filename"], !filename.isEmpty else {
                throw .malformedManifest("[\(section)] filename is missing")
            }
            guard !filename.contains("/"), filename != Manifest.filename else {
                throw .malformedManifest("[\(section)] filename '\(filename)' must name a file at the bundle's root")
            }
            guard let hex = file[section, "sha256"], let sha256 = Self.hexBytes(hex), sha256.count == 32 else {
                throw .malformedManifest("[\(section)] sha256 is missing or not 64 hex digits")
            }
            guard let text = file[section, "size"], let size = UInt64(text) else {
                throw .malformedManifest("[\(section)] size is missing or not a number")
            }
            if let hooks = file[section, "hooks"], !hooks.isEmpty {
                throw .malformedManifest("[\(section)] hooks are not supported")
            }
            images.append(Image(slotClass: slotClass, filename: filename, sha256: sha256, size: size))
        }
        guard !images.isEmpty else { throw .malformedManifest("no [image.<slot-class>] section") }
        self.images = images
    }

    /// The manifest Conclave's bundle tool writes: every key, `[bundle] format=plain` included.
    public static func text(compatible: String, version: String, description: String?, build: String?, image: Image) -> String {
        var lines = ["[update]", "compatible=\(compatible)", "version=\(version)"]
        if let description { lines.append("description=\(description)") }
        if let build { lines.append("build=\(build)") }
        lines += ["", "[bundle]", "format=plain", "", "[image.\(image.slotClass)]", "filename=\(image.filename)",
                  "sha256=\(hex(image.sha256))", "size=\(image.size)", ""]
        return lines.joined(separator: "\n")
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Lower-case hex of `bytes`.
public func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes { text += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]] }
    return String(decoding: text, as: UTF8.self)
}
