// swift-tools-version:6.0
import PackageDescription

/// The three layers every tool may use: device rules, host model, C edges.
let libraries: [Target.Dependency] = ["CoapFirmwareDevice", "CoapFirmwareCore", "CoapFirmware"]
let executableDependencies: [Target.Dependency] = libraries + [
    "CoapFirmwareCLI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
    .product(name: "Logging", package: "swift-log"),
]

let package = Package(
    name: "coap-fw",
    products: [
        .library(name: "CoapFirmware", targets: ["CoapFirmware"]),
        .library(name: "CoapFirmwareCore", targets: ["CoapFirmwareCore"]),
        .library(name: "CoapFirmwareDevice", targets: ["CoapFirmwareDevice"]),
        .executable(name: "coap-fw-server", targets: ["coap-fw-server"]),
        .executable(name: "coap-fw-client", targets: ["coap-fw-client"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C libraries from Debian, one system-library target each.
        .systemLibrary(name: "CCoap", pkgConfig: "libcoap-3-openssl",
                       providers: [.apt(["libcoap3-dev"])]),
        .systemLibrary(name: "CCBOR", pkgConfig: "libcbor",
                       providers: [.apt(["libcbor-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // The few things that must be C (a signal handler); each says why in its header.
        .target(name: "CFirmwareShims"),

        // What a device accepts, and the only copy of those rules: pure Swift,
        // no Foundation, no C, no allocation (`make embedded` builds this folder).
        .target(name: "CoapFirmwareDevice"),
        // The host's model on top of the device rules: manifests, JSON, URIs,
        // the update engine. Pure Swift, no C.
        .target(name: "CoapFirmwareCore", dependencies: ["CoapFirmwareDevice"]),

        // The library: codecs over libcbor, crypto over OpenSSL, transport over libcoap.
        .target(
            name: "CoapFirmware",
            dependencies: [
                "CoapFirmwareDevice", "CoapFirmwareCore", "CCBOR", "CCrypto", "CCoap", "CFirmwareShims",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // What both executables share: exit codes, logging set-up, file arguments.
        .target(
            name: "CoapFirmwareCLI",
            dependencies: [
                "CoapFirmware", "CoapFirmwareCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "coap-fw-server", dependencies: executableDependencies),
        .executableTarget(name: "coap-fw-client", dependencies: executableDependencies),
        // Fuzz targets (issue #5): libFuzzer with `make fuzz`, corpus replay in `make test`.
        .executableTarget(name: "coap-fw-fuzz", dependencies: libraries),
        // Verification speed table for docs/benchmarks.md (`make bench`).
        .executableTarget(name: "coap-fw-bench", dependencies: libraries),

        // Tests mirror Sources: one test target per library, sharing vectors and chunk feeders.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CoapFirmwareDeviceTests", dependencies: ["CoapFirmwareDevice", "TestSupport"]),
        .testTarget(name: "CoapFirmwareCoreTests", dependencies: ["CoapFirmwareDevice", "CoapFirmwareCore", "TestSupport"]),
        .testTarget(name: "CoapFirmwareTests", dependencies: libraries + ["TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
