import ConclaveRelay
import ConclaveWire
import FoundationEssentials

/// Meeting requests from the admin socket (`conclave meeting …`, root only), forwarded by the
/// supervisor: one JSON object in, one out (docs/daemon.md "Admin socket").
///
/// In: `{"op":"start","id":…,"settings":{name,passcode?,mode,limit,locked,guestsAllowed}}`,
/// `{"op":"edit","id":…,"edit":{…}}`, `{"op":"stop","id":…}`, `{"op":"kick","id":…,"leg":…}`,
/// `{"op":"list"}`, `{"op":"show","id":…}`.
/// Out: `{"ok":true,…}` or `{"ok":false,"code":…,"error":…}` with the codes of
/// docs/control-protocol.md.
public enum AdminRequests {
    struct Request: Decodable {
        var op: String
        var id: String?
        var settings: MeetingSettings?
        var edit: MeetingSettings.Edit?
        var leg: UInt32?
    }

    struct Reply: Encodable {
        var ok = true
        var created: Bool?
        var meeting: ControlPlane.MeetingSummary?
        var meetings: [ControlPlane.MeetingSummary]?
    }

    struct Failure: Encodable {
        var ok = false
        var code: String
        var error: String
    }

    /// The largest participant list one reply carries (a worker message is at most 64 KiB).
    static let participantsPerReply = 200

    public static func handle(_ json: String, plane: ControlPlane) -> String {
        let actor = "local"
        do {
            let request: Request
            do { request = try JSONDecoder().decode(Request.self, from: Data(json.utf8)) } catch {
                throw ControlRefusal.badMessage("not an admin request: \(error)")
            }
            func id() throws(ControlRefusal) -> String {
                guard let id = request.id else { throw .invalidSettings(field: "id", "missing") }
                return id
            }
            switch request.op {
            case "start":
                guard let settings = request.settings else { throw ControlRefusal.invalidSettings(field: "settings", "missing") }
                let (summary, created) = try plane.startMeeting(id: try id(), settings: settings, actor: actor)
                return JSONText.encode(Reply(created: created, meeting: summary))
            case "edit":
                guard let edit = request.edit else { throw ControlRefusal.invalidSettings(field: "edit", "missing") }
                return JSONText.encode(Reply(meeting: bounded(try plane.editMeeting(id: try id(), edit, actor: actor))))
            case "stop":
                return JSONText.encode(Reply(meeting: bounded(try plane.stopMeeting(id: try id(), actor: actor))))
            case "kick":
                guard let leg = request.leg else { throw ControlRefusal.invalidSettings(field: "leg", "missing") }
                try plane.kick(meeting: try id(), leg: leg, actor: actor)
                return JSONText.encode(Reply())
            case "list":
                return JSONText.encode(Reply(meetings: plane.meetingSummaries().prefix(participantsPerReply).map {
                    var summary = $0
                    summary.participants = []
                    return summary
                }))
            case "monitoring-rotate-secret":
                try plane.rotateMonitoringSecret()
                return JSONText.encode(Reply())
            case "show":
                let wanted = try id()
                guard let summary = plane.meetingSummaries().first(where: { $0.id == wanted }) else { throw ControlRefusal.unknownMeeting(wanted) }
                return JSONText.encode(Reply(meeting: bounded(summary)))
            default:
                throw ControlRefusal.badMessage("unknown op '\(request.op)'; expected start, edit, stop, kick, list, show or monitoring-rotate-secret")
            }
        } catch let refusal as ControlRefusal {
            return JSONText.encode(Failure(code: refusal.code, error: refusal.description))
        } catch {
            return JSONText.encode(Failure(code: "failed", error: "\(error)"))
        }
    }

    private static func bounded(_ summary: ControlPlane.MeetingSummary) -> ControlPlane.MeetingSummary {
        var summary = summary
        summary.participants = Array(summary.participants.prefix(participantsPerReply))
        return summary
    }
}
