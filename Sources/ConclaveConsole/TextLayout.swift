/// Text for an 80×24 dumb terminal: no cursor addressing, no line longer than `width`.
public enum TextLayout {
    public static let width = 80

    /// Breaks `text` into lines of at most `width` characters, at spaces where it can and
    /// hard elsewhere (a fingerprint or a PEM line). Existing newlines are kept; a wrapped
    /// line is continued with `indent` spaces.
    public static func wrap(_ text: String, width: Int = TextLayout.width, indent: Int = 0) -> [String] {
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var rest = Substring(paragraph)
            var first = true
            while true {
                let prefix = first ? "" : String(repeating: " ", count: indent)
                let room = width - prefix.count
                if rest.count <= room {
                    lines.append(prefix + rest)
                    break
                }
                let limit = rest.index(rest.startIndex, offsetBy: room)
                var cut = rest[..<limit].lastIndex(of: " ") ?? limit
                if cut == rest.startIndex { cut = limit }
                lines.append(prefix + rest[..<cut])
                rest = rest[cut...].drop { $0 == " " }
                first = false
                if rest.isEmpty { break }
            }
        }
        return lines
    }

    /// A numbered menu: title, one line per item ("  4  Certificates"), then a hint line.
    public static func menu(title: String, items: [(number: Int, label: String)], hint: String) -> [String] {
        var lines = wrap(title)
        lines.append(String(repeating: "-", count: min(width, max(title.count, 20))))
        for item in items {
            let number = item.number < 10 ? " \(item.number)" : "\(item.number)"
            lines += wrap(" \(number)  \(item.label)", indent: 6)
        }
        lines += wrap(hint)
        return lines
    }

    /// "label: value" rows with the labels padded to one column.
    public static func table(_ rows: [(String, String)]) -> [String] {
        let column = min(24, rows.map(\.0.count).max() ?? 0)
        return rows.flatMap { label, value in
            wrap(label + ":" + String(repeating: " ", count: max(1, column - label.count + 1)) + value, indent: column + 2)
        }
    }
}
