// Checks on every outside input the store keeps: a refused input throws before anything is written.

extension IdentityStore {
    /// Trimmed and lowercased; `local@domain`, local part 1…64 characters without spaces,
    /// quotes or angle brackets, domain of LDH labels (RFC 1035), 254 characters at most.
    public static func normalisedEmail(_ email: String) throws(IdentityError) -> String {
        let normalised = String(email.trimmingWhitespace()).lowercased()
        guard !normalised.isEmpty else { throw .invalidEmail(email, reason: "empty") }
        guard normalised.utf8.count <= 254 else { throw .invalidEmail(email, reason: "longer than 254 characters") }
        let parts = normalised.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .invalidEmail(email, reason: "expected exactly one @") }
        let local = parts[0], domain = parts[1]
        guard (1...64).contains(local.utf8.count) else { throw .invalidEmail(email, reason: "the part before @ must be 1 to 64 characters") }
        let forbidden: Set<Character> = [" ", "\"", "<", ">", "(", ")", ",", ";", ":", "\\", "[", "]", "@"]
        guard local.allSatisfy({ $0.isASCII && !forbidden.contains($0) && !($0.asciiValue! < 0x21 || $0.asciiValue! == 0x7F) })
        else { throw .invalidEmail(email, reason: "the part before @ has a character that is not allowed") }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard !domain.isEmpty, labels.allSatisfy({ label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }) else { throw .invalidEmail(email, reason: "the domain must be dot-separated letters, digits and hyphens") }
        return normalised
    }

    static func validatedDisplayName(_ name: String) throws(IdentityError) -> String {
        let trimmed = String(name.trimmingWhitespace())
        guard !trimmed.isEmpty else { throw .invalidDisplayName(reason: "empty") }
        guard trimmed.count <= 100 else { throw .invalidDisplayName(reason: "longer than 100 characters") }
        guard !trimmed.unicodeScalars.contains(where: \.isControl) else { throw .invalidDisplayName(reason: "contains a control character") }
        return trimmed
    }

    /// At least `minimumPasswordLength` characters, at most `maximumPasswordBytes` bytes, no NUL.
    public static func checkPassword(_ password: String) throws(IdentityError) {
        guard password.count >= minimumPasswordLength else {
            throw .weakPassword(reason: "at least \(minimumPasswordLength) characters are required, got \(password.count)")
        }
        guard password.utf8.count <= maximumPasswordBytes else { throw .weakPassword(reason: "longer than \(maximumPasswordBytes) bytes") }
        guard !password.utf8.contains(0) else { throw .weakPassword(reason: "contains a NUL character") }
    }

    static func validatedText(_ text: String, field: String, maximum: Int, allowEmpty: Bool = false) throws(IdentityError) -> String {
        guard allowEmpty || !text.isEmpty else { throw .invalidField(field, reason: "empty") }
        guard text.count <= maximum else { throw .invalidField(field, reason: "longer than \(maximum) characters") }
        guard !text.unicodeScalars.contains(where: \.isControl) else { throw .invalidField(field, reason: "contains a control character") }
        return text
    }

    /// Six hexadecimal pairs separated by ':' or '-', stored lowercase with ':'.
    static func validatedMAC(_ mac: String) throws(IdentityError) -> String {
        let pairs = mac.split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "-" })
        guard pairs.count == 6, pairs.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else {
            throw .invalidField("MAC", reason: "expected six hexadecimal pairs like 52:54:00:12:34:56, got \"\(mac)\"")
        }
        return pairs.joined(separator: ":").lowercased()
    }
}

extension Unicode.Scalar {
    var isControl: Bool { properties.generalCategory == .control || value == 0x2028 || value == 0x2029 }
}

extension StringProtocol {
    func trimmingWhitespace() -> SubSequence {
        let start = firstIndex(where: { !$0.isWhitespace }) ?? endIndex
        let end = lastIndex(where: { !$0.isWhitespace }).map { index(after: $0) } ?? start
        return self[start..<end]
    }
}
