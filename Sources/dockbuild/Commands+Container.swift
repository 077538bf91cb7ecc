import ArgumentParser

/// Commands of this area, in the order `dockbuild --help` lists them.
enum ContainerCommands {
    static let all: [any ParsableCommand.Type] = [
        RunCommand.self, CreateCommand.self, PsCommand.self, StartCommand.self, StopCommand.self, RestartCommand.self,
        KillCommand.self, RmCommand.self, LogsCommand.self, ExecCommand.self, AttachCommand.self, WaitCommand.self,
        TopCommand.self, PortCommand.self, CpCommand.self, CommitCommand.self, StatsCommand.self, UpdateCommand.self,
        RenameCommand.self, PauseCommand.self, UnpauseCommand.self, DiffCommand.self, ExportCommand.self,
        ContainerGroup.self, VolumeGroup.self, NetworkGroup.self, ContainerMonitorCommand.self,
    ]
}
