import Foundation
import Testing
@testable import Runtime
import SystemSupport

/// The value syntaxes runc's flags take: Go durations (`events --interval`) and sizes with
/// units (`update --memory 50M`), shared with the container flags.
@Suite struct RuncUpdateEventsTests {
    @Test func goDurationsAndSizes() throws {
        #expect(GoDuration.seconds("5s") == 5)
        #expect(GoDuration.seconds("100ms") == 0.1)
        #expect(GoDuration.seconds("1m30s") == 90)
        #expect(GoDuration.seconds("1.5h") == 5400)
        #expect(GoDuration.seconds("300us") == 0.0003)
        #expect(GoDuration.seconds("0") == 0)
        for bad in ["", "5", "s", "1x", "1..5s", "-", "ms"] { #expect(GoDuration.seconds(bad) == nil, "\(bad)") }
        #expect(try ByteSize.parse("50M") == 50 << 20)
        #expect(try ByteSize.parse("1.5g") == 3 << 29)
        #expect(try ByteSize.parse("-1", unlimited: true) == -1)
        #expect(throws: ByteSize.Failure.negative) { try ByteSize.parse("-5") }
        #expect(throws: ByteSize.Failure.tooLarge) { try ByteSize.parse("99999999999p") }
        #expect(throws: ByteSize.Failure.notASize) { try ByteSize.parse("lots") }
    }
}
