internal import CCap
import Glibc
import SystemPackage

/// A libcap capability state (`cap_t`). Owns it and frees it with `cap_free`.
final class CapabilityState {
    private let pointer: cap_t

    /// The calling thread's capabilities (`cap_get_proc`).
    init() throws(Errno) {
        guard let state = cap_get_proc() else { throw Errno(rawValue: errno) }
        pointer = state
    }

    deinit { cap_free(UnsafeMutableRawPointer(pointer)) }

    /// The text form libcap prints, e.g. `=ep` for full root or `=` for none (`cap_to_text`).
    func text() throws(Errno) -> String {
        guard let text = cap_to_text(pointer, nil) else { throw Errno(rawValue: errno) }
        defer { cap_free(UnsafeMutableRawPointer(text)) }
        return String(cString: text)
    }
}

/// Process capabilities, read and changed through libcap.
public enum Capabilities {
    /// The calling thread's capability sets in libcap's text form.
    public static func currentText() throws(Errno) -> String { try CapabilityState().text() }

    /// The release of the libcap headers this binary was built with (libcap has no run-time
    /// version call) and the number of capabilities the running kernel knows (`cap_max_bits`).
    public static var libraryDescription: String {
        "\(LIBCAP_MAJOR).\(LIBCAP_MINOR), kernel knows \(cap_max_bits()) capabilities"
    }
}
