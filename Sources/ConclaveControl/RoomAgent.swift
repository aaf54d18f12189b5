import ConclaveCrypto
import ConclaveRelay
import Glibc
import Logging
import NIOCore
import NIOPosix

/// A room system's daemon role (`conclave supervise` with role `room`): stays in its meeting.
/// It joins, and whenever the session ends for any reason but a kick (the meeting is not
/// started yet, it ended, the network or the server went away) it joins again after a delay
/// that grows from 2 s to a minute and starts afresh after each successful join.
public enum RoomAgent {
    public static func run(options: RoomClient.Options, log: Logger) -> Never {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var delay = 2
        while true {
            let client = RoomClient(options: options, group: group) { event in
                switch event {
                case .joined(let joined): log.info("joined meeting \(options.meeting) as leg \(joined.leg) (\(joined.profile)), \(joined.participants.count) others")
                case .participantJoined(let participant): log.info("\(participant.name) joined (leg \(participant.leg))")
                case .participantLeft(let leg): log.info("leg \(leg) left")
                case .quality(let quality):
                    log.debug("quality: \(quality.transport), received \(quality.packetsReceived), lost \(quality.lost), jitter \(quality.jitterMilliseconds) ms")
                case .refused(let code, let message): log.warning("refused (\(code)): \(message)")
                case .ended(let reason): log.notice("meeting ended: \(reason)")
                case .kicked(let reason): log.notice("removed from the meeting: \(reason)")
                case .disconnected(let reason): log.warning("disconnected: \(reason)")
                case .connected, .meetingEdited: break
                }
            }
            let outcome: RoomClient.Outcome
            do { outcome = try client.run().flatMap { $0.1 }.wait() } catch {
                log.warning("cannot reach \(options.server):\(options.port): \(error)")
                outcome = .lost
            }
            if outcome == .kicked { delay = 60 } else if outcome == .ended || outcome == .left { delay = 2 }
            log.info("joining again in \(delay) s")
            sleep(UInt32(delay))
            delay = min(delay * 2, 60)
        }
    }
}
