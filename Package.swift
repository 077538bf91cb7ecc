// swift-tools-version: 6.0
// dockbuild — a daemonless OCI image toolkit. Module map: ../shared/DESIGN.md.
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "dockbuild",
    platforms: [.macOS(.v15)],  // Synchronization.Mutex
    products: [
        .executable(name: "dockbuild", targets: ["dockbuild"]),
        .executable(name: "dockbuild-runc", targets: ["dockbuild-runc"]),
        .library(name: "OCI", targets: ["OCI"]),
        .library(name: "Archive", targets: ["Archive"]),
        .library(name: "ImageStore", targets: ["ImageStore"]),
        .library(name: "Dockerfile", targets: ["Dockerfile"]),
        .library(name: "Registry", targets: ["Registry"]),
        .library(name: "RegistryServer", targets: ["RegistryServer"]),
        .library(name: "Runtime", targets: ["Runtime"]),
        .library(name: "Build", targets: ["Build"]),
        .library(name: "Containers", targets: ["Containers"]),
        .library(name: "Compose", targets: ["Compose"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // Metrics of `registry serve`: swift-prometheus 2 needs only swift-metrics and swift-atomics (no SwiftNIO).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian's -dev packages, each behind a modulemap and a shim.h.
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CIsal", path: "Sources/CIsal", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "CArchive", path: "Sources/CArchive", linkerSettings: [.linkedLibrary("dl")]),
        // libcurl's headers at build time; the library itself is dlopen'd on first use (see ccurl.h).
        .target(name: "CCurl", path: "Sources/CCurl", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CXCrypt", path: "Sources/CXCrypt", providers: [.apt(["libcrypt-dev"])]),
        .systemLibrary(name: "CTLS", path: "Sources/CTLS", pkgConfig: "libssl", providers: [.apt(["libssl-dev"])]),
        // The runtime's pre-thread namespace work (runc's nsexec role).
        .target(name: "CRuntime", path: "Sources/CRuntime"),

        // Internal (no product): atomic writes, mkdirs, removeTree, file locks, Locked — used by every module that does I/O.
        .target(name: "SystemSupport", swiftSettings: strict),
        .target(name: "OCI", dependencies: ["CCrypto", "SystemSupport"], swiftSettings: strict),
        .target(name: "Dockerfile", swiftSettings: strict),
        .target(name: "Archive", dependencies: ["OCI", "CZlib", "CIsal", "CZstd", "CArchive"], swiftSettings: strict),
        .target(name: "ImageStore", dependencies: ["OCI", "Archive", "CArchive", "SystemSupport"], swiftSettings: strict),
        .target(name: "Registry", dependencies: ["OCI", "ImageStore", "CCurl", "SystemSupport", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "RegistryServer", dependencies: ["OCI", "Registry", "CCrypto", "CXCrypt", "CTLS", "CCurl", "SystemSupport", .product(name: "Yams", package: "Yams"),
                                                 .product(name: "Logging", package: "swift-log"),
                                                 .product(name: "Atomics", package: "swift-atomics"),
                                                 .product(name: "CoreMetrics", package: "swift-metrics"),
                                                 .product(name: "Prometheus", package: "swift-prometheus")],
                swiftSettings: strict),
        .target(name: "Runtime", dependencies: ["CRuntime", "CSeccomp", "SystemSupport", .product(name: "Yams", package: "Yams"),
                                          .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        .target(name: "Build", dependencies: ["OCI", "Archive", "ImageStore", "Dockerfile", "Registry", "Runtime", "SystemSupport"], swiftSettings: strict),
        .target(name: "Containers", dependencies: ["OCI", "Archive", "ImageStore", "Registry", "Runtime", "SystemSupport"], swiftSettings: strict),
        // `dockbuild compose`: compose files -> projects of containers, over Containers.
        .target(name: "Compose", dependencies: ["Containers", "Build", "ImageStore", "OCI", "SystemSupport", .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),
        // runc's command line over the Runtime library, shared by `dockbuild runtime` and dockbuild-runc.
        .target(name: "RuntimeCLI", dependencies: ["Runtime", "SystemSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                             .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .executableTarget(
            name: "dockbuild",
            dependencies: [
                "OCI", "Archive", "ImageStore", "Dockerfile", "Registry", "RegistryServer",
                "Runtime", "RuntimeCLI", "Build", "Containers", "Compose", "CRuntime", "SystemSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // The runtime verbs alone (the RuntimeCLI library, as `dockbuild runtime`), a lean runc-compatible binary.
        .executableTarget(
            name: "dockbuild-runc",
            dependencies: ["RuntimeCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),

        .testTarget(name: "SystemSupportTests", dependencies: ["SystemSupport"], swiftSettings: strict),
        .testTarget(name: "OCITests", dependencies: ["OCI"], swiftSettings: strict),
        .testTarget(name: "DockerfileTests", dependencies: ["Dockerfile"], resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "OCI", "ImageStore"], swiftSettings: strict),
        .testTarget(name: "ImageStoreTests", dependencies: ["ImageStore", "Archive", "OCI", "SystemSupport"], swiftSettings: strict),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "RegistryServer", "ImageStore", "Archive", "OCI"], swiftSettings: strict),
        .testTarget(name: "RegistryServerTests", dependencies: ["RegistryServer", "Registry", "OCI"], swiftSettings: strict),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "CRuntime", "SystemSupport"], swiftSettings: strict),
        .testTarget(name: "BuildTests", dependencies: ["Build", "Dockerfile", "ImageStore", "OCI", "RegistryServer"], swiftSettings: strict),
        .testTarget(name: "ContainersTests", dependencies: ["Containers", "ImageStore", "Archive", "OCI"], swiftSettings: strict),
        .testTarget(name: "ComposeTests", dependencies: ["Compose"], swiftSettings: strict),
        // Attacks as tests (issue #14): each drives the real CLI and asserts the attack fails.
        .testTarget(name: "SecurityTests", dependencies: ["OCI", "Archive", "ImageStore", "Dockerfile"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
