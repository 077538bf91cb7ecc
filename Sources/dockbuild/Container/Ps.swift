import ArgumentParser
import Containers
import Dockerfile
import Foundation

/// `ps`: list containers, docker's columns; `--format` is a Go template (see OutputFormat) or json.
struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.", aliases: ["ls"])
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Show all containers (default shows running).") var all = false
    @Flag(name: .shortAndLong, help: "Only ids.") var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Do not truncate output.") var noTrunc = false
    @Option(name: .long, help: "Format: table, json, or a template like '{{.ID}} {{.Names}} {{.Status}}'.") var format: String?
    @Option(name: .shortAndLong, help: ArgumentHelp("Filter output (repeatable): id=, name= (regular expressions), label=KEY[=VALUE], status=created|running|paused|exited|dead, exited=CODE, ancestor=IMAGE, before=CONTAINER, since=CONTAINER, volume=, network=, publish=PORT[/PROTO], expose=PORT[/PROTO], health=starting|healthy|unhealthy|none.", valueName: "filter"))
    var filter: [String] = []
    @Option(name: [.customShort("n"), .customLong("last")], help: "Show the n most recently created containers (all states).") var last: Int = -1
    @Flag(name: [.customShort("l"), .customLong("latest")], help: "Show the most recently created container (all states).") var latest = false
    @Flag(name: .shortAndLong, help: "Display total file sizes (written by the container, and with its image: virtual).") var size = false

    func run() throws {
        try ContainerCLI.guarded {
            let m = try ContainerCLI.manager(global)
            let filters = try ContainerFilter(filter)
            let limit = latest ? 1 : last
            let everything = all || filters.listsStopped || limit > 0
            let (stored, unreadable) = m.store.listWithDamaged()
            var list = try filters.apply(stored, images: filters.terms["ancestor"] == nil ? nil : m.images())
                .filter { everything || $0.isRunning }
            if limit > 0 { list = Array(list.prefix(limit)) }
            // containers whose record is damaged are listed too (with -a), so `rm -f` can be aimed
            let damaged = all && filters.isEmpty && limit <= 0 ? unreadable : []
            if quiet {
                for id in list.map(\.id) + damaged { ContainerCLI.out(noTrunc ? id : String(id.prefix(12))) }
                return
            }
            defer {
                for id in damaged {
                    FileHandle.standardError.write(Data("dockbuild: container \(id.prefix(12)) has a damaged record (config.json): remove it with `dockbuild rm -f \(id.prefix(12))`\n".utf8))
                }
            }
            let rows = list.map { c in
                var r = PsRow(c, noTrunc: noTrunc)
                if size || format.map({ $0.contains(".Size") || $0 == "json" }) == true {
                    let (rw, virtual) = m.size(c)
                    r.fields["Size"] = "\(ImageCLI.humanSize(rw)) (virtual \(ImageCLI.humanSize(virtual)))"
                }
                return r
            }
            if let out = try OutputFormat.list(format, rows: rows.map(\.value), headers: PsRow.headers,
                                               typeName: "*formatter.ContainerContext") {
                if !out.isEmpty { ContainerCLI.out(out) }
                return
            }
            let cols = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"] + (size ? ["Size"] : [])
            let titles = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"] + (size ? ["SIZE"] : [])
            let table = [titles] + rows.map { r in cols.map { r.fields[$0] ?? "" } }
            ContainerCLI.out(ImageCLI.table(table))
        }
    }
}

struct PsRow {
    var fields: [String: String]
    /// What `--format` sees: docker's fields, in docker's (sorted) JSON order.
    var value: TemplateValue { .object(fields.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }) }

    static let headers = ["ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
                          "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "State": "STATE",
                          "Networks": "NETWORKS", "Mounts": "MOUNTS", "Labels": "LABELS", "Size": "SIZE",
                          "LocalVolumes": "LOCAL VOLUMES"]

    init(_ c: Container, noTrunc: Bool) {
        let s = c.state
        let now = Date()
        var status: String
        switch s.status {
        case .created: status = "Created"
        case .running where s.restarting == true:
            // docker's words between two runs of a restart policy
            let end = Time.parsePublic(s.finishedAt).map { max(0, now.timeIntervalSince($0)) } ?? 0
            status = "Restarting (\(s.exitCode)) \(Time.humanPublic(end)) ago"
        case .running:
            let since = Time.parsePublic(s.startedAt).map { now.timeIntervalSince($0) } ?? 0
            status = "Up \(Time.humanPublic(since))" + (c.isPaused ? " (Paused)" : c.healthSuffix)
        case .dead:
            // docker's word for a container it lost track of (here: its monitor is gone)
            status = "Dead"
        case .exited:
            // a time only when one was recorded (never "739955 days ago" for year 1)
            if let end = Time.parsePublic(s.finishedAt), end.timeIntervalSince1970 > 0 {
                status = "Exited (\(s.exitCode)) \(Time.humanPublic(max(0, now.timeIntervalSince(end)))) ago"
            } else {
                status = "Exited (\(s.exitCode))"
            }
        }
        let created = Time.parsePublic(c.record.created).map { now.timeIntervalSince($0) } ?? 0
        // docker's: arguments with a space single-quoted, cut to 20 characters, then Go-quoted
        let argv = c.record.argv
        var cmd = (argv.first.map { [$0] } ?? []).joined() + argv.dropFirst().map { $0.contains(" ") ? " '\($0)'" : " \($0)" }.joined()
        if !noTrunc && cmd.count > 20 { cmd = String(cmd.prefix(19)) + "…" }
        let ports = s.ports.map(\.display).joined(separator: ", ")
        fields = ["ID": noTrunc ? c.id : String(c.id.prefix(12)), "Image": c.record.image, "Command": GoString.quote(cmd),
                  "CreatedAt": OutputFormat.goTime(Time.parsePublic(c.record.created)), "RunningFor": "\(Time.humanPublic(created)) ago",
                  "Status": status, "Ports": ports, "Names": c.name, "State": c.isPaused ? "paused" : s.restarting == true && s.status == .running ? "restarting" : s.status.rawValue,
                  "Networks": c.record.network, "Mounts": c.record.mounts.map(\.destination).joined(separator: ","),
                  "Labels": c.record.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                  "Size": "0B", "LocalVolumes": String(c.record.mounts.filter { $0.type == .volume }.count)]
    }

}
