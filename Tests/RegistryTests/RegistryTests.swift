import Testing
@testable import Registry

// Tests of the Registry library live in this target.
