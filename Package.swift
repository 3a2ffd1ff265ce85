// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "coap-fw",
    products: [
        .library(name: "CoapFirmware", targets: ["CoapFirmware"]),
        .library(name: "CoapFirmwareCore", targets: ["CoapFirmwareCore"]),
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

        // What a device must run, in pure Swift: no Foundation, no C.
        .target(name: "CoapFirmwareCore"),

        // The library: codecs over libcbor, crypto over OpenSSL, transport over libcoap.
        .target(
            name: "CoapFirmware",
            dependencies: [
                "CoapFirmwareCore", "CCBOR", "CCrypto", "CCoap",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // What both executables share: exit codes, logging set-up, file arguments.
        .target(
            name: "CoapFirmwareCLI",
            dependencies: [
                "CoapFirmware",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "coap-fw-server", dependencies: ["CoapFirmwareCLI"]),
        .executableTarget(name: "coap-fw-client", dependencies: ["CoapFirmwareCLI"]),
        // Fuzz targets (issue #5): libFuzzer with `make fuzz`, corpus replay in `make test`.
        .executableTarget(name: "coap-fw-fuzz", dependencies: ["CoapFirmware"]),
        // Verification speed table for docs/benchmarks.md (`make bench`).
        .executableTarget(name: "coap-fw-bench", dependencies: ["CoapFirmware"]),

        .testTarget(name: "CoapFirmwareCoreTests", dependencies: ["CoapFirmwareCore"]),
        .testTarget(
            name: "CoapFirmwareTests",
            dependencies: ["CoapFirmware"],
            resources: []
        ),
    ],
    swiftLanguageModes: [.v6]
)
