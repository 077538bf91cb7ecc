import ArgumentParser
import Containers
import Foundation
import SystemSupport
import ImageStore
import OCI

/// `events`: what the commands recorded in the store's event log (there is no daemon to
/// watch): container, image and volume events in docker's shape. Without `--until` it follows
/// the log until interrupted; without `--since` it shows only events from now on, as docker.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Show the store's events (containers, images, volumes) as docker events does.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Show events since a time (RFC 3339, a Unix time) or a duration before now (e.g. 10m).") var since: String?
    @Option(help: "Stream events until a time (RFC 3339, a Unix time) or a duration before now.") var until: String?
    @Option(name: .shortAndLong, help: ArgumentHelp("Filter (repeatable): container=, image=, event=, label=KEY[=VALUE], type=container|image|volume, volume=.", valueName: "filter"))
    var filter: [String] = []
    @Option(help: "Format each event with a Go template ('{{.Action}} {{.Actor.ID}}'), or json.") var format: String?

    func run() throws {
        try ContainerCLI.guarded {
            let now = Date()
            let from = try since.map { try LogReader.parseTime($0, flag: "since", now: now) } ?? now
            let to = try until.map { try LogReader.parseTime($0, flag: "until", now: now) }
            let filters = try EventFilter(filter)
            let template = try format.map { try OutputFormat.parse($0 == "json" ? "{{json .}}" : $0, typeName: "events.Message") }
            let log = try ImageStore(root: global.resolvedRoot).events
            let fromNs = Int64(from.timeIntervalSince1970 * 1e9), toNs = to.map { Int64($0.timeIntervalSince1970 * 1e9) }
            func show(_ e: StoreEvent) throws {
                guard e.timeNano >= fromNs, toNs.map({ e.timeNano <= $0 }) ?? true, filters.matches(e) else { return }
                if let template {
                    let data = try JSONSerialization.data(withJSONObject: e.document, options: [.sortedKeys])
                    ContainerCLI.out(try template.render(TemplateValue(try JSONDecoder().decode(JSONValue.self, from: data))))
                } else {
                    ContainerCLI.out(Self.text(e))
                }
            }
            // what the log holds, then (without --until, or an --until still ahead) what is appended
            var offset = log.size
            for e in log.all() { try show(e) }
            while toNs.map({ Int64(Date().timeIntervalSince1970 * 1e9) < $0 }) ?? true {
                usleep(100_000)
                let (new, next) = log.read(from: offset)
                offset = next
                for e in new { try show(e) }
            }
        }
    }

    /// docker's line: `TIME TYPE ACTION ID (k=v, ...)`, the time in RFC 3339 with nanoseconds.
    static func text(_ e: StoreEvent) -> String {
        let stamp = UTCTime.format(seconds: Int(e.timeNano / 1_000_000_000), nanoseconds: Int(e.timeNano % 1_000_000_000), .nanos)
        let attrs = e.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        return "\(stamp) \(e.type) \(e.action) \(e.id)" + (attrs.isEmpty ? "" : " (\(attrs))")
    }
}
