internal import CSRTP

/// A failure reported by libsrtp2, translated once from `srtp_err_status_t`.
///
/// The per-packet outcomes the relay counts (authentication, replay) are their own cases;
/// the enum carries no payload that allocates, so throwing it on the hot path costs nothing.
public enum SRTPError: Error, Equatable, Sendable, CustomStringConvertible {
    case authenticationFailed
    case replayed
    case tooOld
    case badParameter
    case allocationFailed
    case packetTooLarge
    case badKeyLength(expected: Int, got: Int)
    case library(code: Int32)

    init(status: srtp_err_status_t) {
        switch status {
        case srtp_err_status_auth_fail: self = .authenticationFailed
        case srtp_err_status_replay_fail: self = .replayed
        case srtp_err_status_replay_old, srtp_err_status_pkt_idx_old: self = .tooOld
        case srtp_err_status_bad_param: self = .badParameter
        case srtp_err_status_alloc_fail: self = .allocationFailed
        default: self = .library(code: Int32(status.rawValue))
        }
    }

    public var description: String {
        switch self {
        case .authenticationFailed: "SRTP authentication failed"
        case .replayed: "SRTP replay detected"
        case .tooOld: "SRTP packet index too old"
        case .badParameter: "libsrtp2 rejected a parameter"
        case .allocationFailed: "libsrtp2 could not allocate memory"
        case .packetTooLarge: "packet does not fit its buffer with the SRTP trailer"
        case .badKeyLength(let expected, let got): "SRTP key material must be \(expected) bytes, got \(got)"
        case .library(let code): "libsrtp2 error \(code)"
        }
    }
}
