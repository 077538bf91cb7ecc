import Archive
import Foundation
import OCI
import ImageStore
import Dockerfile
#if canImport(Glibc)
import Glibc
#endif

/// One source of a COPY/ADD after wildcard expansion.
struct CopySource {
    var abs: String        // host path
    var rel: String        // path relative to the source root (context or stage), "" for the root
    var ctxRel: String?    // for .dockerignore checks of children (context sources)
    var isHeredoc = false
    var isURL = false
    var realRel: String? = nil   // where `rel` leads once its symlinks are followed inside the root
    /// A context directory opened inside the context: copied through descriptors (`FS.copyTreeAt`).
    var dirFD: Int32? = nil
}

/// A COPY or ADD, its words expanded (heredoc bodies not yet).
struct CopySpec {
    var isAdd: Bool
    var sources: [String]
    var contents: [SourceContent]
    var rawDestination: String
    var destination: String
    var from: String?
    var chown: String?
    var chmod: String?
    var link: Bool
    var parents: Bool
    var excludes: [String]
    var checksum: String?
    var unpack: Bool
    var keepGitDir: Bool
    var line: Int
}

extension Builder {
    func copyStep(_ ins: CopySpec, _ st: inout StageState) throws -> Bool {
        let isAdd = ins.isAdd
        let kw = isAdd ? "ADD" : "COPY"
        let cc = st.config.config ?? ContainerConfig()
        var dest = ins.destination
        if !dest.hasPrefix("/") {
            let wd = cc.workingDir ?? "/"
            dest = (wd.hasSuffix("/") ? wd : wd + "/") + dest
        }
        let destSlash = dest.hasSuffix("/") || dest.hasSuffix("/.")
        let imageDest = "/" + cleanPath(dest)
        let srcWords = ins.sources
        let link = ins.link
        let parents = ins.parents
        let excludes: DockerIgnore
        do { excludes = try DockerIgnore(patterns: ins.excludes, fileName: "--exclude") } catch {
            throw err(ins.line, "\(error)")
        }
        let chmodSpec = ins.chmod
        let mode: mode_t? = try chmodSpec.map {
            guard let m = mode_t($0, radix: 8), m <= 0o7777 else { throw err(ins.line, "--chmod=\($0): use an octal mode like 0755") }
            return m
        }
        let chownSpec = ins.chown
        if ins.keepGitDir { throw err(ins.line, "ADD of git repositories is not supported") }
        let unpack = isAdd && ins.unpack

        // Sources: the context, another stage, or an image.
        var fromState: StageState?
        var fromRoot: (path: String, mounted: Bool)?
        defer { if let r = fromRoot { if r.mounted { RunMountStaging.unmount(r.path) } else { FS.removeTree(r.path) } } }
        if let from = ins.from {
            fromState = try sourceState(from, line: ins.line)
        }
        let work = try cache.tempDir("copysrc")
        defer { FS.removeTree(work) }
        var hasher = Digest.Hasher()
        var keyParts = [link ? "link" : st.key, kw, imageDest + (destSlash ? "/" : ""), "parents=\(parents)",
                        "exclude=\(ins.excludes.joined(separator: ","))", "chmod=\(chmodSpec ?? "")",
                        "chown=\(chownSpec ?? "")", "unpack=\(unpack)"]
        var sources = try copySources(ins, kw: kw, fromState: fromState, fromRoot: &fromRoot, work: work, hasher: &hasher, st)
        if let fromState { keyParts.append("from=" + fromState.key) }
        for s in sources where !s.isHeredoc && !s.isURL {
            hasher.update(Data("src\u{0}\(s.rel)\u{0}\(s.realRel ?? "")\u{0}".utf8))
            if fromState == nil {
                try FS.hashTree(s.abs, into: &hasher, skip: { r in self.skip(s, r, excludes) }, descend: { r in self.descend(s, r) }, withOwner: false,
                                digests: contextDigests)
            } else if !excludes.patterns.isEmpty {
                try FS.hashTree(s.abs, into: &hasher, skip: { r in excludes.matches(r) }, withOwner: true)
            }
        }
        keyParts.append(hasher.finalize().encoded)
        let key = stepKey(keyParts)
        let shown = (srcWords + ins.contents.map { "<<" + $0.path } + [ins.destination]).joined(separator: " ")   // expanded, as BuildKit
        let by = "\(kw) \(shown) # buildkit"
        if hit(key, &st, createdBy: by) { return true }

        // Miss: stage the files as they will appear in the image, then write the layer.
        let v = link ? LayerView(dirs: []) : try view(st)
        let owner: (UInt32, UInt32)? = try chownSpec.map {
            do { let ids = try v.resolveUser($0, chownRule: true); return (ids.uid, ids.gid) } catch {
                throw err(ins.line, "--chown=\($0): \(error)")
            }
        }
        // The destination is reached through the image's symlinks (`COPY f /link/` writes into the
        // link's target), resolved inside the image so no link points the staging outside it.
        let destPath = link ? imageDest : {
            let parent = v.imagePath((imageDest as NSString).deletingLastPathComponent)
            let full = parent == "/" ? "/" + (imageDest as NSString).lastPathComponent : parent + "/" + (imageDest as NSString).lastPathComponent
            return imageDest == "/" ? "/" : (destSlash || v.isDirectory(full, followFinal: true) ? v.imagePath(full) : full)
        }()
        // BuildKit counts the words (and heredocs) for its trailing-slash rule; a wildcard that
        // matches one file copies to a file, several make the destination a directory.
        let words = srcWords.count + ins.contents.count
        let destIsDir = destSlash || words > 1 || sources.count > 1 || v.isDirectory(destPath)
        if words > 1 && !destSlash && !v.isDirectory(destPath) {
            throw err(ins.line, "when using \(kw) with more than one source file, the destination must be a directory and end with a /")
        }
        // Context sources are opened inside the context and copied through descriptors, never
        // from path strings a concurrent change could redirect (a source that is a symlink was
        // followed inside the context: its target is copied).
        var opened: [Int32] = []
        defer { for fd in opened { close(fd) } }
        for i in sources.indices where sources[i].ctxRel != nil && !sources[i].isHeredoc && !sources[i].isURL {
            let rel = sources[i].realRel ?? sources[i].rel
            if let (fd, isDir) = try openContextSource(rel, line: ins.line, kw: kw) {
                opened.append(fd)
                sources[i].abs = "/proc/self/fd/\(fd)"
                if isDir { sources[i].dirFD = fd }
            } else {
                sources[i].abs = try contextCopyView(rel, into: "\(work)/ctx-\(i)", line: ins.line, kw: kw)
            }
        }
        let staging = try cache.tempDir("copy")
        let stagedDest = staging + (destPath == "/" ? "" : destPath)
        let ctxOwner: (UInt32, UInt32)? = owner ?? (fromState == nil ? (0, 0) : nil)
        do {
            try place(sources, at: stagedDest, destIsDir: destIsDir, destSlash: destSlash, parents: parents, unpack: unpack,
                      mode: mode, owner: owner, contextOwner: ctxOwner, excludes: excludes, line: ins.line)
            // (only where the owner differs: a chown clears the setuid and setgid bits)
            if let owner, let dst = FS.info(stagedDest), !v.isDirectory(destPath), dst.st_uid != owner.0 || dst.st_gid != owner.1 {
                lchown(stagedDest, owner.0, owner.1)
            }
            if !link { copyAncestorMetadata(staging: staging, path: destPath == "/" ? "/" : destPath + "/x", view: v) }
        } catch {
            FS.removeTree(staging)
            throw error
        }
        try commit(dir: staging, fromUpper: false, key: key, &st, createdBy: by)
        return false
    }

    /// Puts each source where COPY/ADD's rules say under the staged destination: a directory's
    /// contents into it (or under its path with --parents), a file into a directory destination
    /// or as the destination itself, a local archive extracted (ADD).
    func place(_ sources: [CopySource], at stagedDest: String, destIsDir: Bool, destSlash: Bool, parents: Bool, unpack: Bool,
               mode: mode_t?, owner: (UInt32, UInt32)?, contextOwner ctxOwner: (UInt32, UInt32)?, excludes: DockerIgnore, line: Int) throws {
        for s in sources {
            // (a context source is a descriptor's /proc/self/fd path: what it names, not the link)
            let viaFD = s.abs.hasPrefix("/proc/self/fd/")
            guard let sst = viaFD ? FS.follow(s.abs) : FS.info(s.abs) else { continue }
            var target: String
            if FS.isDir(sst) {
                target = parents && !s.rel.isEmpty ? stagedDest + "/" + s.rel : stagedDest
            } else if destIsDir {
                target = stagedDest + "/" + (parents ? s.rel : (s.rel as NSString).lastPathComponent)
            } else {
                target = stagedDest
            }
            try FS.mkdirs((target as NSString).deletingLastPathComponent)
            if unpack && !s.isURL && FS.isReg(sst), isArchive(s.abs) {
                let dir = destIsDir || destSlash ? stagedDest : target
                try FS.mkdirs(dir)
                try extract(s.abs, into: dir, line: line)
                continue
            }
            let fileMode: mode_t? = mode ?? (s.isURL ? 0o600 : nil)
            if let dirFD = s.dirFD {
                try FS.copyTreeAt(dirFD, to: target, skip: { r in self.skip(s, r, excludes) }, descend: { r in self.descend(s, r) },
                                  owner: ctxOwner, keepOwner: true, mode: fileMode)
            } else if viaFD {
                guard FS.isReg(sst) else { throw err(line, "\(s.rel) changed in the build context while it was read") }
                try FS.copyFile(s.abs, target, st: sst, owner: ctxOwner ?? (sst.st_uid, sst.st_gid), mode: fileMode)
            } else {
                try FS.copyTree(s.abs, target, skip: { r in self.skip(s, r, excludes) }, descend: { r in self.descend(s, r) },
                                owner: s.isHeredoc ? (owner ?? (0, 0)) : ctxOwner, keepOwner: true, mode: fileMode)
            }
            if FS.isDir(sst) {
                // The destination directory is made fresh, as BuildKit's copy does: root-owned
                // 0755 (or --chown's owner), never the source directory's mode and owner (one
                // that exists in the image keeps its own: copyAncestorMetadata below).
                chmod(target, 0o755)
                let o = owner ?? (0, 0)
                lchown(target, o.0, o.1)
            }
        }
    }

    /// COPY/ADD's sources, matched and resolved inside their root (the context, a stage or an
    /// image, a downloaded URL, a heredoc), each hashed into `hasher` for the step's cache key.
    func copySources(_ ins: CopySpec, kw: String, fromState: StageState?, fromRoot: inout (path: String, mounted: Bool)?,
                     work: String, hasher: inout Digest.Hasher, _ st: StageState) throws -> [CopySource] {
        let isAdd = ins.isAdd
        let srcWords = ins.sources
        let checksum = ins.checksum
        var sources: [CopySource] = []
        for (i, word) in srcWords.enumerated() {
            if isAdd, word.hasPrefix("http://") || word.hasPrefix("https://") {
                let file = try download(word, checksum: checksum, into: "\(work)/url-\(i)", line: ins.line)
                sources.append(CopySource(abs: file, rel: (file as NSString).lastPathComponent, ctxRel: nil, isURL: true))
                hasher.update(Data("url\u{0}\(word)\u{0}\(try ImageStore.hashFile(file))".utf8))
                continue
            }
            if let fromState {
                let root: String
                if let fromRoot { root = fromRoot.path } else {
                    let mounted = try mountedRoot(fromState)
                    fromRoot = mounted
                    root = mounted.path
                }
                for rel in try globMatches(root: root, pattern: word, skip: { _ in false }, line: ins.line, kw: kw) {
                    let (abs, real) = try sourcePath(root: root, rel: rel, line: ins.line, kw: kw)
                    sources.append(CopySource(abs: abs, rel: rel, ctxRel: nil, realRel: real))
                }
            } else {
                guard let ctx = options.contextDir else {
                    throw err(ins.line, "\(kw) \(word): this build has no context (Dockerfile from stdin); give a context directory")
                }
                for rel in try globMatches(root: ctx, pattern: word, skip: { self.ignore.matches($0) }, line: ins.line, kw: kw) {
                    let (abs, real) = try sourcePath(root: ctx, rel: rel, line: ins.line, kw: kw)
                    if real != rel, ignore.matches(real) {
                        throw err(ins.line, "\(kw) \(rel): it is a symlink to \(real), which .dockerignore excludes")
                    }
                    sources.append(CopySource(abs: abs, rel: rel, ctxRel: real, realRel: real))
                }
            }
        }
        // Heredoc sources come after the paths, as BuildKit copies them.
        for (i, h) in ins.contents.enumerated() {
            let body = heredocBody(h.data, expand: h.expand, st)
            let p = "\(work)/heredoc-\(i)"
            // The heredoc's name comes from the Dockerfile: cleaned (no `..` above the staging
            // dir), it can only name a file under it, never a host path.
            let name = cleanPath(h.path)
            guard !name.isEmpty else { throw err(ins.line, "\(kw) <<\(h.path): a heredoc needs a file name") }
            try FS.mkdirs(((p + "/" + name) as NSString).deletingLastPathComponent)
            let fd = open(p + "/" + name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw FS.sys("create", "the heredoc file \(name)") }
            let data = Data(body.utf8)
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == data.count else { throw FS.sys("write", "the heredoc file \(name)") }
            sources.append(CopySource(abs: p + "/" + name, rel: name, ctxRel: nil, isHeredoc: true))
            hasher.update(Data("heredoc\u{0}\(name)\u{0}\(body)".utf8))
        }
        return sources
    }

    /// Whether a walk must enter `rel`, an excluded directory of source `s`, because a
    /// .dockerignore exception may re-include something below it.
    func descend(_ s: CopySource, _ rel: String) -> Bool {
        guard let c = s.ctxRel else { return false }
        return ignore.mayIncludeBelow(c.isEmpty ? rel : c + "/" + rel)
    }

    /// The context's `rel` (a directory or a regular file) opened inside the context for
    /// reading, and whether it is a directory; nil for any other kind (a device node, a FIFO),
    /// which `contextCopyView` recreates.
    func openContextSource(_ rel: String, line: Int, kw: String) throws -> (Int32, Bool)? {
        guard let ctx = options.contextDir else { throw err(line, "\(kw) \(rel): this build has no context") }
        let pathFD: Int32
        do { pathFD = try InRootPath.openPath(rel, in: ctx, followFinal: false) } catch {
            throw err(line, "\(kw) failed: \(rel) changed in the build context while it was read: \(error)")
        }
        defer { close(pathFD) }
        var st = StatBuf()
        guard fstat(pathFD, &st) == 0 else { throw FS.sys("stat", "the context's \(rel)") }
        let isDir = FS.isDir(st)
        guard isDir || FS.isReg(st) else { return nil }
        let fd = isDir ? openat(pathFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                       : open("/proc/self/fd/\(pathFD)", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { throw FS.sys("open", "the context's \(rel)") }
        return (fd, isDir)
    }

    /// A private copy of the context's `rel` at `view` for COPY/ADD: opened inside the context
    /// (a final symlink itself), then rebuilt from descriptors (`FS.linkTree`: hard links, files
    /// `.dockerignore` excludes left out), so nothing can swap a component for a symlink to a
    /// host path between the match and the copy.
    func contextCopyView(_ rel: String, into view: String, line: Int, kw: String) throws -> String {
        guard let ctx = options.contextDir else { throw err(line, "\(kw) \(rel): this build has no context") }
        let fd: Int32
        do { fd = try InRootPath.openPath(rel, in: ctx, followFinal: false) } catch {
            throw err(line, "\(kw) failed: \(rel) changed in the build context while it was read: \(error)")
        }
        defer { close(fd) }
        var st = StatBuf()
        guard fstat(fd, &st) == 0 else { throw FS.sys("stat", "the context's \(rel)") }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            let dir = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dir >= 0 else { throw FS.sys("open", "the context's \(rel)") }
            defer { close(dir) }
            let ignore = self.ignore
            try FS.linkTree(dir, to: view, rel: rel, keepEmpty: true, exceptions: ignore.hasExceptions, devices: true) { ignore.matches($0) }
        case S_IFREG:
            if linkat(fd, "", AT_FDCWD, view, atEmptyPath) != 0 {
                try FS.copyFile("/proc/self/fd/\(fd)", view, st: st)
                lchown(view, st.st_uid, st.st_gid)
            }
        case S_IFLNK:
            guard let target = FS.readLinkAt(fd, "") else { throw FS.sys("read link", "the context's \(rel)") }
            if symlink(target, view) != 0 { throw FS.sys("create link", view) }
            lchown(view, st.st_uid, st.st_gid)
            FS.setTimes(view, st)
        default:
            if mknod(view, st.st_mode, st.st_rdev) != 0 { throw FS.sys("create node", view) }
        }
        return view
    }

    func skip(_ s: CopySource, _ rel: String, _ excludes: DockerIgnore) -> Bool {
        if let c = s.ctxRel, ignore.matches(c.isEmpty ? rel : c + "/" + rel) { return true }
        if excludes.matches(rel) { return true }
        if let c = s.ctxRel, !c.isEmpty, excludes.matches(c + "/" + rel) { return true }
        return false
    }

    /// Expands a source pattern under `root` (wildcards per path component); a plain path must exist.
    func globMatches(root: String, pattern: String, skip: (String) -> Bool, line: Int, kw: String) throws -> [String] {
        // Every look under `root` goes through symlinks as if `root` were `/`: a context
        // symlink to `/etc` never lets a COPY read the host's /etc.
        func host(_ rel: String, followFinal: Bool = false) throws -> String {
            do { return try InRootPath.resolve(rel, in: root, followFinal: followFinal) } catch {
                throw err(line, "\(kw) \(pattern): \(error)")
            }
        }
        let clean = cleanPath(pattern)
        if !DockerIgnore.containsWildcards(clean) {
            if !clean.isEmpty, try skip(clean) || !FS.exists(host(clean)) {
                throw err(line, "\(kw) failed: \(pattern) not found in the build context (or excluded by .dockerignore); check the path, it is relative to the context")
            }
            return [clean]
        }
        var current = [""]
        for comp in clean.split(separator: "/").map(String.init) {
            var next: [String] = []
            for base in current {
                let dir = try host(base, followFinal: true)
                if DockerIgnore.containsWildcards(comp) {
                    let matches: [String]
                    do { matches = try FS.list(dir).filter { try DockerIgnore.globMatch(comp, $0) } } catch {
                        throw err(line, "\(kw) \(pattern): \(error)")
                    }
                    for n in matches {
                        let r = base.isEmpty ? n : base + "/" + n
                        if !skip(r) { next.append(r) }
                    }
                } else {
                    let r = base.isEmpty ? comp : base + "/" + comp
                    if !skip(r), FS.exists(try host(r)) { next.append(r) }
                }
            }
            current = next
        }
        // BuildKit allows a wildcard that matches nothing (`COPY foo nomatch* /`).
        return current.sorted()
    }

    /// The host path of a matched source and where it leads relative to `root`: a source that is
    /// a symlink is followed (BuildKit copies its target's content), always inside `root`.
    func sourcePath(root: String, rel: String, line: Int, kw: String) throws -> (abs: String, real: String) {
        do {
            let abs = try InRootPath.resolve(rel, in: root, followFinal: true)
            let real = abs == root ? "" : String(abs.dropFirst(root.count + 1))
            return (abs, real)
        } catch {
            throw err(line, "\(kw) \(rel): \(error)")
        }
    }

    func isArchive(_ path: String) -> Bool {
        guard let fh = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? fh.close() }
        let head = [UInt8]((try? fh.read(upToCount: 512)) ?? Data())
        func starts(_ m: [UInt8]) -> Bool { head.count >= m.count && Array(head.prefix(m.count)) == m }
        if starts([0x1f, 0x8b]) || starts([0x42, 0x5a, 0x68]) || starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) || starts([0x28, 0xb5, 0x2f, 0xfd]) {
            return true
        }
        return head.count >= 262 && Array(head[257..<262]) == Array("ustar".utf8)
    }

    /// Extracts a local archive for ADD (tar; gzip, bzip2, xz or zstd) with Archive's applier, so
    /// no entry, `..`, absolute name or symlink in it can write outside `dir`.
    func extract(_ file: String, into dir: String, line: Int) throws {
        do {
            try LayerApplier.apply(layer: file, to: dir, options: .init(whiteouts: .literal))
        } catch {
            throw err(line, "ADD: cannot extract \((file as NSString).lastPathComponent): \(error)")
        }
    }

    /// ADD of a URL: fetched with curl, verified against `--checksum` when given.
    func download(_ url: String, checksum: String?, into dir: String, line: Int) throws -> String {
        try FS.mkdirs(dir)
        // The last path segment names the file, as in BuildKit. It comes percent-decoded, so it
        // may hold `/` or be `..` (`..%2F..%2Fetc%2Fx` wrote a host file): only a plain name is kept.
        var name = URL(string: url)?.lastPathComponent ?? "download"
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.contains("\u{0}") { name = "download" }
        let out = dir + "/" + name
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["curl", "-fsSL", "--retry", "2", "-o", out, url]
        let errPipe = Pipe()
        p.standardError = errPipe
        try p.run()
        let msg = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw err(line, "ADD \(url): download failed: \(msg.trimmingCharacters(in: .whitespacesAndNewlines))") }
        if let checksum {
            let expected = try Digest(parsing: checksum)
            let got = try ImageStore.hashFile(out, algorithm: expected.algorithm)
            if got != expected { throw err(line, "ADD \(url): checksum mismatch: expected \(expected), got \(got)") }
        }
        return out
    }
}
