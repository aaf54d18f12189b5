/// Line editing over a raw terminal, as a pure value: bytes in, events and echo out. Works on
/// a dumb serial terminal: the only output is the typed characters, "\u{8} \u{8}" to rub one
/// out, and CR LF. Escape sequences (arrow and function keys) are swallowed, not inserted.
///
/// Keys: Enter (CR, LF or CR LF) ends the line; Backspace (DEL 0x7f or BS 0x08) deletes the
/// last character; Ctrl-U deletes the whole line; Ctrl-C cancels the current step; Ctrl-D on an
/// empty line logs out. A line is bounded: bytes beyond `maximumLength` ring the bell.
public struct LineEditor: Sendable {
    public enum Event: Equatable, Sendable {
        case line(String)
        case cancel
        case logout
    }

    public struct Output: Equatable, Sendable {
        public var events: [Event] = []
        /// What to write back to the terminal (echo, rub-outs, bell, CR LF).
        public var echo: [UInt8] = []
    }

    public var maximumLength: Int
    /// A secret is not echoed at all, not even as asterisks: its length stays unknown too.
    public var isSecret = false

    private var buffer: [UInt8] = []
    private var escape = EscapeState.none
    private var lastWasCarriageReturn = false

    private enum EscapeState { case none, started, controlSequence }

    public init(maximumLength: Int = 1024) { self.maximumLength = maximumLength }

    /// The text typed so far on the current line.
    public var pending: String { String(decoding: buffer, as: UTF8.self) }

    /// Forgets the partial line (a new prompt starts clean).
    public mutating func reset() {
        buffer.removeAll()
        escape = .none
    }

    public mutating func feed(_ bytes: some Sequence<UInt8>) -> Output {
        var output = Output()
        for byte in bytes { feed(byte, into: &output) }
        return output
    }

    private mutating func feed(_ byte: UInt8, into output: inout Output) {
        let afterCarriageReturn = lastWasCarriageReturn
        lastWasCarriageReturn = false
        switch escape {
        case .started:
            // ESC [ or ESC O start a sequence that ends at a byte in 0x40…0x7e; other: two bytes.
            escape = (byte == UInt8(ascii: "[") || byte == UInt8(ascii: "O")) ? .controlSequence : .none
            return
        case .controlSequence:
            if (0x40...0x7e).contains(byte) { escape = .none }
            return
        case .none: break
        }
        switch byte {
        case 0x0d:  // CR
            lastWasCarriageReturn = true
            finishLine(into: &output)
        case 0x0a:  // LF; after CR it is the second half of one Enter
            if !afterCarriageReturn { finishLine(into: &output) }
        case 0x7f, 0x08:  // DEL, BS
            guard !buffer.isEmpty else { return }
            // Remove a whole UTF-8 character: continuation bytes are 10xxxxxx.
            while let last = buffer.popLast(), last & 0xc0 == 0x80 {}
            if !isSecret { output.echo += [0x08, 0x20, 0x08] }
        case 0x15:  // Ctrl-U
            if !isSecret { output.echo += Array(repeating: [0x08, 0x20, 0x08], count: characterCount).flatMap { $0 } }
            buffer.removeAll()
        case 0x03:  // Ctrl-C
            buffer.removeAll()
            output.echo += Array("^C\r\n".utf8)
            output.events.append(.cancel)
        case 0x04:  // Ctrl-D: end of input on an empty line, as in a shell; ignored otherwise
            if buffer.isEmpty {
                output.echo += [0x0d, 0x0a]
                output.events.append(.logout)
            }
        case 0x1b:
            escape = .started
        case 0x09:  // Tab: a space, so pasted text keeps its columns apart
            insert(0x20, into: &output)
        case 0x00..<0x20:
            return  // other control characters mean nothing here
        default:
            insert(byte, into: &output)
        }
    }

    private var characterCount: Int { buffer.filter { $0 & 0xc0 != 0x80 }.count }

    private mutating func insert(_ byte: UInt8, into output: inout Output) {
        guard buffer.count < maximumLength else {
            output.echo.append(0x07)  // bell: the line is full
            return
        }
        buffer.append(byte)
        if !isSecret { output.echo.append(byte) }
    }

    private mutating func finishLine(into output: inout Output) {
        output.echo += [0x0d, 0x0a]
        output.events.append(.line(String(decoding: buffer, as: UTF8.self)))
        buffer.removeAll()
    }
}
