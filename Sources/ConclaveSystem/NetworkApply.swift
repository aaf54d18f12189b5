/// Carries out a plan in order. A device that refuses an ethtool setting as unsupported
/// (EOPNOTSUPP) leaves it unchanged: that becomes a note and the run goes on. Any other
/// failure is hard: what this run changed is undone in reverse order, and the error names
/// the setting.
public struct NetworkApplier {
    let system: NetworkSystem

    public init(system: NetworkSystem) { self.system = system }

    public struct Outcome: Sendable, Equatable {
        public var applied: [NetworkChange] = []
        public var notes: [NetworkNote] = []
    }

    public func apply(_ plan: NetworkPlan, progress: (NetworkChange) -> Void = { _ in }) throws(NetworkApplyError) -> Outcome {
        if let failure = plan.failures.first {
            throw NetworkApplyError(setting: failure.setting, wanted: "", reason: failure.message, rolledBack: [], rollbackFailures: [])
        }
        var outcome = Outcome(notes: plan.notes)
        for change in plan.changes {
            do {
                try perform(change.action)
                outcome.applied.append(change)
                progress(change)
            } catch let error as NetlinkError where error.isNotSupported && change.action.isEthtool {
                outcome.notes.append(NetworkNote(setting: change.setting, message: "not supported by this device (\(error.reason)); skipped"))
            } catch {
                // A multi-file write may have got half way: put back what it had written.
                if case .files = change.undo, case .files = change.action { try? perform(change.undo) }
                if case .queueFiles = change.action { try? perform(change.undo) }
                var failures: [String] = []
                for done in outcome.applied.reversed() {
                    do { try perform(done.undo) } catch { failures.append("\(done.setting): \(error)") }
                }
                throw NetworkApplyError(
                    setting: change.setting, wanted: change.new, reason: "\(error)",
                    rolledBack: outcome.applied.reversed().map(\.setting), rollbackFailures: failures)
            }
        }
        return outcome
    }

    func perform(_ action: NetworkAction) throws {
        switch action {
        case .link(let index, let attributes): try system.route.setLink(index: index, attributes)
        case .addAddress(let address, let index): try system.route.addAddress(address, linkIndex: index)
        case .removeAddress(let address, let index): try system.route.removeAddress(address, linkIndex: index)
        case .replaceRoute(let route): try system.route.replaceRoute(route)
        case .removeRoute(let route): try system.route.removeRoute(route)
        case .rootQdisc(let index, let kind): try system.route.setRootQdisc(linkIndex: index, kind: kind)
        case .rings(let link, let values): try system.ethtool.setRings(link: link, values)
        case .channels(let link, let values): try system.ethtool.setChannels(link: link, values)
        case .coalesce(let link, let values): try system.ethtool.setCoalesce(link: link, values)
        case .features(let link, let values): try system.ethtool.setFeatures(link: link, values)
        case .files(let writes):
            for write in writes {
                do { try system.files.write(write.path, write.value) } catch {
                    throw KernelFileError(path: write.path, value: write.value, reason: "\(error)")
                }
            }
        case .queueFiles(let link, let prefix, let file, let value):
            let directory = "/sys/class/net/\(link)/queues"
            for queue in system.files.list(directory) where queue.hasPrefix(prefix + "-") {
                let path = "\(directory)/\(queue)/\(file)"
                do { try system.files.write(path, value) } catch { throw KernelFileError(path: path, value: value, reason: "\(error)") }
            }
        case .hostname(let name): try system.host.setHostname(name)
        case .configurationFile(let path, let contents): try system.host.writeConfigurationFile(path, contents)
        }
    }
}

extension NetworkAction {
    var isEthtool: Bool {
        switch self {
        case .rings, .channels, .coalesce, .features: true
        default: false
        }
    }
}

public struct KernelFileError: Error, CustomStringConvertible {
    public let path: String
    public let value: String
    public let reason: String
    public var description: String { "writing \"\(value)\" to \(path): \(reason)" }
}

/// A hard failure of `net apply`, after the rollback.
public struct NetworkApplyError: Error, CustomStringConvertible {
    public let setting: String
    public let wanted: String
    public let reason: String
    public let rolledBack: [String]
    public let rollbackFailures: [String]

    public var description: String {
        var text = wanted.isEmpty ? "\(setting): \(reason)" : "\(setting) → \(wanted) failed: \(reason)"
        text += rolledBack.isEmpty ? "; nothing else had changed" : "; rolled back: \(rolledBack.joined(separator: ", "))"
        if !rollbackFailures.isEmpty { text += "; ROLLBACK FAILED for: \(rollbackFailures.joined(separator: "; "))" }
        return text
    }
}
