import Foundation
import Testing
import OCI
import ImageStore
@testable import Build

/// Builder behaviour that must match current BuildKit (issue #15), one minimal Dockerfile each.
@Suite(.serialized) struct FidelityTests {
    func build(_ ws: Workspace, _ text: String, _ configure: (inout BuildOptions) -> Void = { _ in }) throws -> String {
        var o = BuildOptions(contextDir: nil, dockerfileText: text)
        configure(&o)
        let r = try Builder(store: ws.store, options: o).build()
        return try ws.files(r.image)
    }

    /// RUN heredoc bodies reach the shell unchanged: the shell, not the builder, expands `$X`, `$#`, `$0`.
    @Test(.enabled(if: getuid() == 0)) func runHeredocBodyIsTheShellsToExpand() throws {
        let ws = try Workspace()
        let fs = try build(ws, #"""
        FROM busybox:test
        ARG X=outer
        RUN <<EOF
        X=inner; echo "[$X] [$#] [$0]" > /x
        for i in 1 2 3; do echo "n$i"; done > /loop.txt
        echo "a b c" | awk '{ print $2 }' > /awk.txt
        EOF
        RUN <<'EOF'
        Y=quoted; echo "$Y" > /y
        EOF
        RUN <<EOF
        #!/bin/sh
        set -- one two
        echo "script $# $1" > /shebang.txt
        EOF
        """#)
        #expect(ws.read(fs + "/x") == "[inner] [0] [/bin/sh]\n")
        #expect(ws.read(fs + "/loop.txt") == "n1\nn2\nn3\n")
        #expect(ws.read(fs + "/awk.txt") == "b\n")
        #expect(ws.read(fs + "/y") == "quoted\n")
        #expect(ws.read(fs + "/shebang.txt") == "script 2 one\n")
    }

    /// COPY heredocs with an unquoted delimiter expand variables and keep every quote as written.
    @Test func copyHeredocKeepsQuotes() throws {
        let ws = try Workspace()
        let fs = try build(ws, #"""
        FROM busybox:test
        ARG name=world
        COPY <<EOF /quotes.txt
        Don't panic, ${name}. It's fine
        Hello '${name}'!
        Say "${name}" and \$name
        EOF
        COPY <<'EOF' /raw.txt
        Hello '${name}'!
        EOF
        """#)
        #expect(ws.read(fs + "/quotes.txt") == "Don't panic, world. It's fine\nHello 'world'!\nSay \"world\" and $name\n")
        #expect(ws.read(fs + "/raw.txt") == "Hello '${name}'!\n")
    }
}
