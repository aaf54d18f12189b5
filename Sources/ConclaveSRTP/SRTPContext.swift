internal import CSRTP

/// Facts about the libsrtp2 library linked into this binary.
public enum SRTPLibrary {
    /// The version string libsrtp2 reports at run time (`srtp_get_version_string`).
    public static var version: String {
        initialize()
        return String(cString: srtp_get_version_string())
    }

    private static let initialized: Bool = srtp_init() == srtp_err_status_ok

    /// `srtp_init` once per process, before the first context.
    static func initialize() {
        precondition(initialized, "srtp_init failed")
    }
}

/// One libsrtp2 session (`srtp_t`) for one direction of one leg.
///
/// An inbound context unprotects what a participant sends; an outbound context protects what
/// the relay sends to that participant. Each accepts any SSRC (wildcard policy), keeps a
/// replay window per SSRC, and works in place on a caller's preallocated buffer. A context is
/// used by one thread at a time: libsrtp2 sessions are not thread-safe. It is a class so a leg
/// can hold it optionally and hand it from the thread that made it to the relay thread that
/// owns the leg; `deinit` is the one place the session is freed.
public final class SRTPContext: @unchecked Sendable {
    public enum Direction: Sendable { case inbound, outbound }

    public let profile: SRTPProfile
    private let session: srtp_t

    /// Replay window in packets; video bursts reorder more than the library's default 128.
    public static let replayWindow = 1024

    public init(profile: SRTPProfile, keys: SRTPKeyMaterial, direction: Direction) throws(SRTPError) {
        SRTPLibrary.initialize()
        var policy = srtp_policy_t()
        switch profile {
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        case .aesCM128HMACSHA1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        }
        policy.ssrc.type = direction == .inbound ? ssrc_any_inbound : ssrc_any_outbound
        policy.window_size = UInt(Self.replayWindow)
        policy.allow_repeat_tx = 0
        var keyAndSalt = keys.key + keys.salt
        var created: srtp_t?
        let status = keyAndSalt.withUnsafeMutableBufferPointer { buffer in
            policy.key = buffer.baseAddress
            return srtp_create(&created, &policy)
        }
        for index in keyAndSalt.indices { keyAndSalt[index] = 0 }  // the library holds its own copy
        guard status == srtp_err_status_ok, let created else { throw SRTPError(status: status) }
        self.profile = profile
        self.session = created
    }

    deinit { srtp_dealloc(session) }

    /// Protects the RTP packet of `length` bytes at `packet` in place; returns the new length.
    /// `capacity` is the room the buffer has; it must fit `length + profile.rtpOverhead`.
    public func protect(_ packet: UnsafeMutableRawPointer, length: Int, capacity: Int) throws(SRTPError) -> Int {
        guard length + profile.rtpOverhead <= capacity else { throw .packetTooLarge }
        var newLength = Int32(length)
        let status = srtp_protect(session, packet, &newLength)
        guard status == srtp_err_status_ok else { throw SRTPError(status: status) }
        return Int(newLength)
    }

    /// Authenticates, replay-checks and decrypts the SRTP packet in place; returns the RTP length.
    public func unprotect(_ packet: UnsafeMutableRawPointer, length: Int) throws(SRTPError) -> Int {
        var newLength = Int32(length)
        let status = srtp_unprotect(session, packet, &newLength)
        guard status == srtp_err_status_ok else { throw SRTPError(status: status) }
        return Int(newLength)
    }

    /// Protects an RTCP compound packet in place; returns the new length.
    public func protectRTCP(_ packet: UnsafeMutableRawPointer, length: Int, capacity: Int) throws(SRTPError) -> Int {
        guard length + profile.rtcpOverhead <= capacity else { throw .packetTooLarge }
        var newLength = Int32(length)
        let status = srtp_protect_rtcp(session, packet, &newLength)
        guard status == srtp_err_status_ok else { throw SRTPError(status: status) }
        return Int(newLength)
    }

    /// Authenticates and decrypts an SRTCP packet in place; returns the RTCP length.
    public func unprotectRTCP(_ packet: UnsafeMutableRawPointer, length: Int) throws(SRTPError) -> Int {
        var newLength = Int32(length)
        let status = srtp_unprotect_rtcp(session, packet, &newLength)
        guard status == srtp_err_status_ok else { throw SRTPError(status: status) }
        return Int(newLength)
    }
}
