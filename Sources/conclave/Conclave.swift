import ArgumentParser

@main
struct Conclave: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conclave",
        abstract: "Firmware userland of the Conclave secure conferencing appliance.",
        version: VersionReport.text(),
        subcommands: [
            SuperviseCommand.self, StatusCommand.self, RelayGroupCommand.self, LoadgenCommand.self, CertCommand.self, UsersCommand.self, TokenCommand.self,
            TLSCommand.self, MeetingCommand.self, CtlCommand.self, RoomCommand.self, WorkerCommand.self, NetCommand.self, UpdateCommand.self, ConsoleCommand.self, BootCommand.self, MonitoringCommand.self,
        ])
}
