import Foundation

/// `extends` (Compose Specification, "Extends"): a service starts from another service of the
/// same file or of another file, its own keys merged over the base's with the rules of several
/// files (`Merge.service`). A base from another file has its relative paths (`build`,
/// `env_file`, bind mounts) made absolute against that file's directory first, so they keep
/// naming what they named there.
enum Extends {
    /// `services` with every `extends` resolved. `read` parses and interpolates another file
    /// (an absolute path); `baseDir` is where a file read from stdin lives.
    static func resolve(_ services: YNode, baseDir: String, read: (String) throws -> YNode) throws -> YNode {
        guard case let .map(pairs, m) = services else { return services }
        var otherFiles: [String: YNode] = [:]

        func dir(of mark: SourceMark) -> String {
            mark.file == "-" || !mark.file.hasPrefix("/") ? baseDir : (mark.file as NSString).deletingLastPathComponent
        }

        /// Service `name` of the `services` mapping `all` (of file `file`) with its extends resolved.
        func resolved(_ name: String, in all: YNode, file: String, chain: [String]) throws -> YNode {
            guard let node = all[name] else {
                throw ComposeError.invalidFile("\(chain.last.map { "\($0): " } ?? "")extends: service \"\(name)\" is not defined in \(file); name a service of that file")
            }
            guard let ext = node["extends"] else { return node }
            let me = "\(file) service \"\(name)\""
            guard !chain.contains(me) else {
                throw ComposeError.invalidFile("\(ext.mark): extends: a cycle (\((chain + [me]).joined(separator: " -> "))): remove one of them")
            }
            var baseName = "", baseFile: String?
            switch ext {
            case let .scalar(s, _): baseName = s
            case let .map(fields, _):
                for (k, f) in fields {
                    guard case let .scalar(v, _) = f else { throw ComposeError.invalidFile("\(f.mark): extends.\(k): expected a string") }
                    switch k {
                    case "service": baseName = v
                    case "file": baseFile = v
                    default: throw ComposeError.invalidFile("\(f.mark): extends: unknown key \"\(k)\" (service, file)")
                    }
                }
            default: throw ComposeError.invalidFile("\(ext.mark): extends: expected a service name or {service, file}")
            }
            guard !baseName.isEmpty else { throw ComposeError.invalidFile("\(ext.mark): extends: give the service to extend (service: NAME)") }
            var base: YNode
            if let f = baseFile {
                let here = dir(of: ext.mark)
                let path = ((f.hasPrefix("/") ? f : "\(here)/\(f)") as NSString).standardizingPath
                let tree: YNode
                if let t = otherFiles[path] { tree = t } else {
                    guard FileManager.default.fileExists(atPath: path) else {
                        throw ComposeError.invalidFile("\(ext.mark): extends: file \(f) does not exist (\(path))")
                    }
                    tree = try read(path)
                    otherFiles[path] = tree
                }
                guard let theirs = tree["services"] else {
                    throw ComposeError.invalidFile("\(ext.mark): extends: \(path) has no services")
                }
                base = rebase(try resolved(baseName, in: theirs, file: path, chain: chain + [me]),
                              dir: (path as NSString).deletingLastPathComponent)
            } else {
                base = try resolved(baseName, in: all, file: file, chain: chain + [me])
            }
            guard case let .map(own, om) = node else { return node }
            base = Merge.service(base, .map(own.filter { $0.key != "extends" }, om))
            return base
        }

        let file = pairs.first.map { $0.value.mark.file } ?? "compose file"
        return .map(try pairs.map { ($0.key, try resolved($0.key, in: services, file: file, chain: [])) }, m)
    }

    /// `service` with its relative paths made absolute against `dir`.
    static func rebase(_ service: YNode, dir: String) -> YNode {
        func abs(_ p: String) -> String {
            p.hasPrefix("/") || p.contains("://") || p.hasPrefix("~") ? p : ("\(dir)/\(p)" as NSString).standardizingPath
        }
        func relative(_ p: String) -> Bool { p == "." || p == ".." || p.hasPrefix("./") || p.hasPrefix("../") }
        guard case .map(var pairs, let m) = service else { return service }
        for i in pairs.indices {
            switch (pairs[i].key, pairs[i].value) {
            case let ("build", .scalar(s, sm)): pairs[i].value = .scalar(abs(s), sm)
            case let ("build", .map(fields, bm)):
                pairs[i].value = .map(fields.map { k, v in
                    if k == "context", case let .scalar(s, sm) = v { return (k, .scalar(abs(s), sm)) }
                    return (k, v)
                }, bm)
            case let ("env_file", .scalar(s, sm)): pairs[i].value = .scalar(abs(s), sm)
            case let ("env_file", .seq(items, sm)):
                pairs[i].value = .seq(items.map { it in
                    if case let .scalar(s, im) = it { return .scalar(abs(s), im) }
                    if case let .map(fields, im) = it {
                        return .map(fields.map { k, v in
                            if k == "path", case let .scalar(s, pm) = v { return (k, .scalar(abs(s), pm)) }
                            return (k, v)
                        }, im)
                    }
                    return it
                }, sm)
            case let ("volumes", .seq(items, sm)):
                pairs[i].value = .seq(items.map { it in
                    if case let .scalar(s, im) = it, relative(s) || s.hasPrefix(".:") || s.hasPrefix("..:") {
                        let parts = s.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                        return .scalar(abs(String(parts[0])) + (parts.count > 1 ? ":" + parts[1] : ""), im)
                    }
                    if case let .map(fields, im) = it {
                        return .map(fields.map { k, v in
                            if k == "source", case let .scalar(s, pm) = v, relative(s) { return (k, .scalar(abs(s), pm)) }
                            return (k, v)
                        }, im)
                    }
                    return it
                }, sm)
            default: break
            }
        }
        return .map(pairs, m)
    }
}
