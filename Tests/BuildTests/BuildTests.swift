import Testing
@testable import Build

// Tests of the Build library live in this target.
