import ArgumentParser
import CoapFirmware
import CoapFirmwareDevice

/// `--manufacturer` and `--model`: the product a release or a device is.
public struct ProductOptions: ParsableArguments {
    @Option(help: "Manufacturer name, e.g. example.com.")
    public var manufacturer: String

    @Option(help: "Device model, e.g. c7960.")
    public var model: String

    public init() {}

    /// Both names, or a usage error: each is one URI path segment (SPEC §4).
    public func checked() throws -> (manufacturer: String, model: String) {
        for (option, value) in [("--manufacturer", manufacturer), ("--model", model)] {
            guard !value.isEmpty, !value.contains("/"), value != ".", value != ".." else {
                throw CommandFailure.usage("\(option) \"\(value)\": expected a name, e.g. \(option == "--model" ? "c7960" : "example.com")")
            }
        }
        return (manufacturer, model)
    }
}

/// `--trust`: the public keys a device or a verifier trusts.
public struct TrustOptions: ParsableArguments {
    @Option(help: "Trusted public key (PEM SPKI, or RFC 8554 bytes for HSS-LMS); repeat to trust several.")
    public var trust: [String] = []

    public init() {}

    public func keys() throws -> [PublicKey] { try loadTrustedKeys(trust) }
}

/// How a client fetches: block size, patience, DTLS key.
public struct ClientTransportOptions: ParsableArguments {
    @Option(name: .customLong("block-size"), help: "Block2 size in bytes: 16, 32, 64, 128, 256, 512 or 1024.")
    public var blockSize = 1024

    @Option(help: "Seconds to wait without progress at one server before moving on.")
    public var timeout: Double = 30

    @Option(name: .customLong("psk-file"), help: ArgumentHelp("DTLS key for coaps:// ('identity:hexkey'; the first one is used).", valueName: "FILE"))
    public var pskFile: String?

    @Option(name: .customLong("window-bytes"), help: ArgumentHelp(
        "Block2 requests in flight at once, as payload bytes (congestion controlled, at least one block; 0: one block per round trip).",
        valueName: "BYTES"))
    public var windowBytes = 4096

    @Flag(name: .customLong("lock-step"), help: "One block per round trip (the same as --window-bytes 0).")
    public var lockStep = false

    public init() {}

    /// The window's byte budget (0: lock-step), or a usage error.
    public func checkedWindowBytes() throws -> Int {
        guard (0...1_048_576).contains(windowBytes) else {
            throw CommandFailure.usage("--window-bytes \(windowBytes): expected 0 to 1048576")
        }
        return lockStep ? 0 : windowBytes
    }

    /// The Block2 exponent of `--block-size`, or a usage error.
    public func szx() throws -> UInt8 {
        guard let szx = Block2.szx(forSize: blockSize) else {
            throw CommandFailure.usage("--block-size \(blockSize): expected 16, 32, 64, 128, 256, 512 or 1024")
        }
        return szx
    }

    /// `--timeout`, or a usage error.
    public func checkedTimeout() throws -> Double {
        guard timeout > 0 && timeout <= 86_400 else {
            throw CommandFailure.usage("--timeout \(timeout): expected more than 0 and at most 86400 seconds")
        }
        return timeout
    }

    /// The first key of `--psk-file` (a device has one identity).
    public func psk() throws -> PSK? { try pskFile.map(readPSKFile)?.first }
}

/// The shape of a new HSS-LMS key (`keygen --alg HSS-LMS`).
public struct HSSKeyOptions: ParsableArguments {
    @Option(help: "HSS-LMS: number of HSS levels, 1-8 (default 1).")
    public var levels: Int?

    @Option(help: "HSS-LMS: LMS tree height per level: 5, 10 or 15 (default 10).")
    public var height: Int?

    @Option(help: "HSS-LMS: Winternitz parameter: 1, 2, 4 or 8 (default 4).")
    public var w: Int?

    public init() {}

    public var isEmpty: Bool { levels == nil && height == nil && w == nil }
}

/// DTLS for `serve`: pre-shared keys and X.509.
public struct DTLSServerOptions: ParsableArguments {
    @Option(name: .customLong("psk-file"), help: ArgumentHelp("DTLS pre-shared keys, one 'identity:hexkey' per line.", valueName: "FILE"))
    public var pskFile: String?

    @Option(help: ArgumentHelp("DTLS server certificate (PEM).", valueName: "FILE"))
    public var cert: String?

    @Option(name: .customLong("cert-key"), help: ArgumentHelp("Private key of --cert (PEM).", valueName: "FILE"))
    public var certKey: String?

    @Option(help: ArgumentHelp("CA certificate (PEM) that client certificates must chain to.", valueName: "FILE"))
    public var ca: String?

    public init() {}
}
