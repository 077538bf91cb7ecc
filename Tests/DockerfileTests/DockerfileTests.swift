import Testing
@testable import Dockerfile

// Tests of the Dockerfile library live in this target.
