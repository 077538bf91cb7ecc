import Testing
@testable import Containers

// Tests of the Containers library live in this target.
