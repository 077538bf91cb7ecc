import Testing
@testable import Runtime

// Tests of the Runtime library live in this target.
