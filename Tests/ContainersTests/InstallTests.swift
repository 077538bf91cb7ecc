import Foundation
import Testing

/// `make install` (issue #17): the binaries, bash/zsh/fish completions and man pages generated
/// from the command definitions, staged under DESTDIR from the debug build (`install-files`
/// installs an existing build; `install` builds the release first).
@Suite struct InstallTests {
    static let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test(.enabled(if: Shell.which("make") != nil && Shell.which("python3") != nil
                   && FileManager.default.isExecutableFile(atPath: pkg + "/.build/debug/dockbuild")))
    func installAndUninstall() throws {
        let dest = FileManager.default.temporaryDirectory.appendingPathComponent("dbinst-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dest) }
        let make = try Shell.run(["make", "-C", Self.pkg, "install-files", "BUILD=.build/debug", "DESTDIR=\(dest)", "PREFIX=/usr"])
        try #require(make.0 == 0, "\(make)")
        let usr = dest + "/usr"
        func read(_ p: String) -> String { (try? String(contentsOfFile: usr + p, encoding: .utf8)) ?? "" }
        #expect(FileManager.default.isExecutableFile(atPath: usr + "/bin/dockbuild"))
        #expect(FileManager.default.isExecutableFile(atPath: usr + "/bin/dockbuild-runc"))
        #expect(try Shell.run([usr + "/bin/dockbuild", "--version"]).0 == 0)
        // completions for the three shells, from the same command tree
        let bash = try Shell.run(["bash", "-c", "source \(usr)/share/bash-completion/completions/dockbuild && complete -p dockbuild"])
        #expect(bash.0 == 0 && bash.1.contains("-F _dockbuild dockbuild"), "\(bash)")
        #expect(read("/share/zsh/site-functions/_dockbuild").hasPrefix("#compdef dockbuild"))
        #expect(read("/share/fish/vendor_completions.d/dockbuild.fish").contains("complete -c 'dockbuild'"))
        // a page per command, and every subcommand named on its parent's page
        let man = usr + "/share/man/man1"
        let pages = try FileManager.default.contentsOfDirectory(atPath: man)
        for p in ["dockbuild.1", "dockbuild-build.1", "dockbuild-run.1", "dockbuild-container-run.1", "dockbuild-volume-create.1", "dockbuild-logs.1"] {
            #expect(pages.contains(p), "\(p) missing")
        }
        let top = read("/share/man/man1/dockbuild.1")
        #expect(top.hasPrefix(".TH \"DOCKBUILD\" \"1\"") && top.contains(".SH COMMANDS") && top.contains("\\fBbuild\\fR"))
        let logs = read("/share/man/man1/dockbuild-logs.1")
        #expect(logs.contains("\\fB--since\\fR \\fIsince\\fR") && logs.contains("\\fB-f\\fR, \\fB--follow\\fR"), "\(logs)")
        // the boot unit for restart policies, pointing at the installed binary
        let unit = read("/lib/systemd/system/dockbuild-start.service")
        #expect(unit.contains("ExecStart=/usr/bin/dockbuild start --all") && unit.contains("WantedBy=multi-user.target"), "\(unit)")
        // the registry's unit: reload is SIGHUP, the stop waits longer than a drain
        let registry = read("/lib/systemd/system/dockbuild-registry.service")
        #expect(registry.contains("ExecStart=/usr/bin/dockbuild registry serve --config /etc/dockbuild/registry.yml")
            && registry.contains("ExecReload=/bin/kill -HUP $MAINPID"), "\(registry)")
        if Shell.which("systemd-analyze") != nil {
            for name in ["dockbuild-start.service", "dockbuild-registry.service"] {
                let v = try Shell.run(["systemd-analyze", "verify", "--man=no", usr + "/lib/systemd/system/" + name])
                // (staged under DESTDIR, the binary is not at the path the unit names yet)
                let complaints = v.2.split(separator: "\n").filter { $0.contains(name + ":") && !$0.contains("is not executable") }
                #expect(complaints.isEmpty, "\(v.2)")
            }
        }
        if Shell.which("groff") != nil {
            // roff that groff reads without a warning
            let g = try Shell.run(["sh", "-c", "groff -man -Tutf8 -ww -z \(man)/*.1"])
            #expect(g.0 == 0 && g.2.isEmpty, "\(g.2)")
        }
        let un = try Shell.run(["make", "-C", Self.pkg, "uninstall", "DESTDIR=\(dest)", "PREFIX=/usr"])
        #expect(un.0 == 0)
        let left = try Shell.run(["find", dest, "-type", "f"])
        #expect(left.1.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "left behind: \(left.1)")
    }
}
