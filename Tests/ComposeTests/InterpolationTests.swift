import Compose
import Foundation
import Testing

@Suite struct InterpolationTests {
    let mark = SourceMark(file: "compose.yaml", line: 3)

    @Test func forms() throws {
        var i = Interpolator(environment: ["A": "1", "E": ""])
        #expect(try i.interpolate("$A ${A} x$$y", at: mark) == "1 1 x$y")
        #expect(try i.interpolate("${E:-d} ${E-d} ${U-d} ${U:-d}", at: mark) == "d  d d")
        #expect(try i.interpolate("${A:+alt} ${E:+alt} ${E+alt} ${U+alt}", at: mark) == "alt  alt ")
        #expect(try i.interpolate("${U:-${A}-x}", at: mark) == "1-x")
        #expect(try i.interpolate("${MISSING}", at: mark) == "")
        #expect(i.warnings == ["MISSING"])
    }

    @Test func requiredAndInvalid() throws {
        var i = Interpolator(environment: ["E": ""])
        #expect(throws: ComposeError.self) { try i.interpolate("${U:?set U please}", at: mark) }
        do { _ = try i.interpolate("${E:?need E}", at: mark); Issue.record("no error") } catch {
            #expect("\(error)".contains("compose.yaml:3"))
            #expect("\(error)".contains("E is empty: need E"))
        }
        #expect((try? i.interpolate("${E?fine}", at: mark)) == "")
        for bad in ["${", "${}", "$", "a $-b", "${1A}", "${A:}"] {
            #expect(throws: ComposeError.self, "\(bad)") { try i.interpolate(bad, at: mark) }
        }
    }

    @Test func dotEnv() throws {
        let text = "# c\nexport A=1\nB = 'x $A'\nC=\"q\\n$A\"\nD=v # comment\nE=\n"
        let vars = try DotEnv.parse(text, file: ".env")
        #expect(vars.map { "\($0.0)=\($0.1)" } == ["A=1", "B=x $A", "C=q\n1", "D=v", "E="])
        #expect(throws: ComposeError.self) { try DotEnv.parse("1X=2\n", file: ".env") }
    }
}
