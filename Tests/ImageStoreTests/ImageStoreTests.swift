import Testing
@testable import ImageStore

// Tests of the ImageStore library live in this target.
