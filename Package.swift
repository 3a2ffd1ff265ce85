// swift-tools-version:6.0
import PackageDescription

/// The three layers every tool may use: device rules, host model, C edges.
let libraries: [Target.Dependency] = ["CoapFirmwareDevice", "CoapFirmwareCore", "CoapFirmware"]
let executableDependencies: [Target.Dependency] = libraries + [
    "CoapFirmwareCLI", .product(name: "Logging", package: "swift-log"),
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
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C libraries from Debian (libcoap3-dev, libcbor-dev, libssl-dev), one
        // system-library target each. Their headers are in /usr/include and their
        // module maps name the libraries; no pkgConfig, whose -L/usr/lib/<triple>
        // would come first on the link line and keep `make release` from linking
        // the static archives it puts in .build/static-libs (issue #11).
        .systemLibrary(name: "CCoap"),
        .systemLibrary(name: "CCBOR"),
        .systemLibrary(name: "CCrypto"),
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

        // What both executables share: the command-line parser (no reflection, no
        // Foundation: issue #11), exit codes, logging set-up, file arguments.
        .target(
            name: "CoapFirmwareCLI",
            dependencies: ["CoapFirmware", "CoapFirmwareCore", .product(name: "Logging", package: "swift-log")]
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
        .testTarget(name: "CoapFirmwareCLITests", dependencies: ["CoapFirmwareCLI"]),
    ],
    swiftLanguageModes: [.v6]
)
