import Glibc

/// Why the relay refused a request or could not start.
public enum RelayError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidAddress(String)
    case system(String, Int32)
    case duplicateLeg(UInt32)
    case unknownLeg(UInt32)
    case unknownMeeting(UInt32)
    case modeMismatch(leg: UInt32, meeting: UInt32)
    case refusedBySecurityMode(leg: UInt32)
    case invalidLegsFile(String)

    public var description: String {
        switch self {
        case .invalidAddress(let text): "invalid address '\(text)': expected IPv4:PORT or [IPv6]:PORT"
        case .system(let call, let code): "\(call): \(String(cString: strerror(code)))"
        case .duplicateLeg(let leg): "leg \(leg) already exists"
        case .unknownLeg(let leg): "no leg \(leg)"
        case .unknownMeeting(let meeting): "no meeting \(meeting)"
        case .modeMismatch(let leg, let meeting):
            "leg \(leg) does not match the mode of meeting \(meeting) (srtp and encapsulated legs cannot share a meeting)"
        case .refusedBySecurityMode(let leg):
            "leg \(leg) refused: the system security mode is 'secured', which allows SRTP legs only"
        case .invalidLegsFile(let reason): "invalid legs file: \(reason)"
        }
    }
}
