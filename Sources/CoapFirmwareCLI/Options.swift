import CoapFirmware
import CoapFirmwareDevice

/// `--manufacturer` and `--model`: the product a release or a device is.
public struct ProductOptions: Sendable {
    public static let options: [OptionSpec] = [
        .value("manufacturer", "NAME", "Manufacturer name, e.g. example.com.", required: true),
        .value("model", "NAME", "Device model, e.g. c7960.", required: true),
    ]

    public var manufacturer: String
    public var model: String

    public init(_ arguments: ParsedArguments) {
        (manufacturer, model) = (arguments.required("manufacturer"), arguments.required("model"))
    }

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
public struct TrustOptions: Sendable {
    public static let options: [OptionSpec] = [
        .repeated("trust", "FILE", "Trusted public key (PEM SPKI, or RFC 8554 bytes for HSS-LMS); repeat to trust several."),
    ]

    public var trust: [String]

    public init(_ arguments: ParsedArguments) { trust = arguments.strings("trust") }

    public func keys() throws -> [PublicKey] { try loadTrustedKeys(trust) }
}

/// How a client fetches: block size, patience, DTLS key.
public struct ClientTransportOptions: Sendable {
    public static let options: [OptionSpec] = [
        .value("block-size", "BYTES", "Block2 size in bytes: 16, 32, 64, 128, 256, 512 or 1024 (default 1024)."),
        .value("timeout", "SECONDS", "Seconds to wait without progress at one server before moving on (default 30)."),
        .value("psk-file", "FILE", "DTLS key for coaps:// ('identity:hexkey'; the first one is used)."),
        .value("window-bytes", "BYTES",
               "Block2 requests in flight at once, as payload bytes (congestion controlled, at least one block; 0: one block per round trip; default 4096)."),
        .flag("lock-step", "One block per round trip (the same as --window-bytes 0)."),
    ]

    public var blockSize: Int
    public var timeout: Double
    public var pskFile: String?
    public var windowBytes: Int
    public var lockStep: Bool

    public init(_ arguments: ParsedArguments) throws {
        blockSize = try arguments.int("block-size", default: 1024)
        timeout = try arguments.double("timeout", default: 30)
        pskFile = arguments.string("psk-file")
        windowBytes = try arguments.int("window-bytes", default: 4096)
        lockStep = arguments.flag("lock-step")
    }

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
public struct HSSKeyOptions: Sendable {
    public static let options: [OptionSpec] = [
        .value("levels", "N", "HSS-LMS: number of HSS levels, 1-8 (default 1)."),
        .value("height", "H", "HSS-LMS: LMS tree height per level: 5, 10 or 15 (default 10)."),
        .value("w", "W", "HSS-LMS: Winternitz parameter: 1, 2, 4 or 8 (default 4)."),
    ]

    public var levels: Int?
    public var height: Int?
    public var w: Int?

    public init(_ arguments: ParsedArguments) throws {
        (levels, height, w) = (try arguments.int("levels"), try arguments.int("height"), try arguments.int("w"))
    }

    public var isEmpty: Bool { levels == nil && height == nil && w == nil }
}

/// DTLS for `serve`: pre-shared keys and X.509.
public struct DTLSServerOptions: Sendable {
    public static let options: [OptionSpec] = [
        .value("psk-file", "FILE", "DTLS pre-shared keys, one 'identity:hexkey' per line."),
        .value("cert", "FILE", "DTLS server certificate (PEM)."),
        .value("cert-key", "FILE", "Private key of --cert (PEM)."),
        .value("ca", "FILE", "CA certificate (PEM) that client certificates must chain to."),
    ]

    public var pskFile: String?
    public var cert: String?
    public var certKey: String?
    public var ca: String?

    public init(_ arguments: ParsedArguments) {
        (pskFile, cert, certKey, ca) = (arguments.string("psk-file"), arguments.string("cert"), arguments.string("cert-key"),
                                        arguments.string("ca"))
    }
}
