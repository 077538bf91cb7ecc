import Testing
@testable import RegistryServer

// Tests of the RegistryServer library live in this target.
