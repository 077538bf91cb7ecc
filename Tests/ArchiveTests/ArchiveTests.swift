import Testing
@testable import Archive

// Tests of the Archive library live in this target.
