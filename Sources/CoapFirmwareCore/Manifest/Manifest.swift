import CoapFirmwareDevice

/// The firmware manifest (SPEC §2) as the host holds it: what a release is,
/// for which device, and the digests its images must match. It is read
/// only through the device's rules (`ManifestView`, see Manifest+Reading),
/// in either wire form, and written by Manifest+Writing.
///
/// A `Manifest` is only data. Nothing acts on one before its signature holds:
/// the signature verifier in `CoapFirmware` wraps it in a `VerifiedManifest`.
public struct Manifest: Sendable, Equatable {
    /// Envelopes larger than this are refused unread (SPEC §2, issue #2).
    public static let maxEncodedSize = 16 * 1024

    public var manifestVersion: String
    /// Creation time, seconds since the Unix epoch.
    public var timestamp: Int64
    public var manufacturer: String
    public var model: String
    public var firmwareVersion: FirmwareVersion
    /// The single image (absent for a split image).
    public var firmwareLocation: String?
    public var firmwareDigests: [ImageDigest]?
    public var firmwareSize: UInt64?
    /// The manufacturer's newest public key (key rollover), if announced.
    public var keyInfo: KeyInfo?
    /// A split image, installed in order.
    public var components: [Component]?
    /// Keys a device must understand to accept this manifest, in the JSON spelling.
    public var critical: [String]?

    public init(
        manifestVersion: String = "1.0", timestamp: Int64, manufacturer: String, model: String,
        firmwareVersion: FirmwareVersion, firmwareLocation: String? = nil,
        firmwareDigests: [ImageDigest]? = nil, firmwareSize: UInt64? = nil,
        keyInfo: KeyInfo? = nil, components: [Component]? = nil, critical: [String]? = nil
    ) {
        (self.manifestVersion, self.timestamp, self.manufacturer, self.model) = (manifestVersion, timestamp, manufacturer, model)
        (self.firmwareVersion, self.firmwareLocation, self.firmwareDigests) = (firmwareVersion, firmwareLocation, firmwareDigests)
        (self.firmwareSize, self.keyInfo, self.components, self.critical) = (firmwareSize, keyInfo, components, critical)
    }

    /// The images to fetch and install, in order. A single image is one
    /// component named after the last segment of its location (SPEC §6).
    public var images: [Component] {
        if let components { return components }
        guard let location = firmwareLocation, let digests = firmwareDigests, let size = firmwareSize else { return [] }
        return [Component(name: Manifest.lastSegment(of: location), location: location, size: size, digests: digests)]
    }

    /// Sum of image sizes, or nil if it overflows 64 bits.
    public var totalImageSize: UInt64? {
        var total: UInt64 = 0
        for image in images {
            let (sum, overflow) = total.addingReportingOverflow(image.size)
            if overflow { return nil }
            total = sum
        }
        return total
    }

    /// The last path segment of a URI reference, without query or fragment.
    public static func lastSegment(of location: String) -> String {
        Array(location.utf8).withUnsafeBytes { String(decoding: SafeName.lastSegment($0), as: UTF8.self) }
    }

    /// Names that are safe as one file name on any device file system:
    /// letters, digits, `.`, `_`, `-`; not `.` or `..`; 1 to 64 bytes.
    public static func isSafeName(_ name: String) -> Bool {
        Array(name.utf8).withUnsafeBytes { SafeName.isSafe($0) }
    }

    /// A safe name that is not one of the device's record names (release.json, manifest.*).
    public static func isImageName(_ name: String) -> Bool {
        Array(name.utf8).withUnsafeBytes { SafeName.isImageName($0) }
    }
}

/// One image of a release: where to fetch it, its size and its digests.
public struct Component: Sendable, Equatable {
    public var name: String
    public var location: String
    public var size: UInt64
    public var digests: [ImageDigest]

    public init(name: String, location: String, size: UInt64, digests: [ImageDigest]) {
        self.name = name
        self.location = location
        self.size = size
        self.digests = digests
    }
}

/// A closed set of values with JSON names (SPEC §2).
public protocol JSONNamed: CaseIterable {
    var jsonName: String { get }
}

extension JSONNamed {
    public init?(jsonName: String) {
        guard let found = Self.allCases.first(where: { $0.jsonName == jsonName }) else { return nil }
        self = found
    }
}

extension DigestAlgorithm: JSONNamed {
    /// The JSON manifest's name.
    public var jsonName: String {
        switch self {
        case .sha256: return "sha256"
        case .sha384: return "sha384"
        case .sha512: return "sha512"
        }
    }
}

/// One `{digestAlgo, hash}` entry of a `commitHash` list.
public struct ImageDigest: Sendable, Equatable {
    public var algorithm: DigestAlgorithm
    public var value: [UInt8]

    public init(algorithm: DigestAlgorithm, value: [UInt8]) { (self.algorithm, self.value) = (algorithm, value) }
}

/// A public key announced in `key-info` (COSE_Key in CBOR, JWK in JSON).
public struct KeyInfo: Sendable, Equatable {
    public var curve: KeyInfoCurve
    public var x: [UInt8]
    /// The y coordinate (P-256 only).
    public var y: [UInt8]?

    public init(curve: KeyInfoCurve, x: [UInt8], y: [UInt8]? = nil) {
        (self.curve, self.x, self.y) = (curve, x, y)
    }
}

extension KeyInfoCurve {
    /// The JWK `kty` and `crv` (RFC 7518 §6.2, RFC 8037 §2).
    var jwkKeyType: String { self == .p256 ? "EC" : "OKP" }
    var jwkCurve: String { self == .p256 ? "P-256" : "Ed25519" }
}

extension ComponentKey: JSONNamed {
    public var jsonName: String {
        switch self {
        case .name: return "name"
        case .location: return "location"
        case .size: return "size"
        case .commitHash: return "commitHash"
        }
    }
}

extension DigestKey: JSONNamed {
    public var jsonName: String { self == .digestAlgo ? "digestAlgo" : "hash" }
}

extension ManifestField: JSONNamed {
    /// The JSON manifest's name (SPEC §2).
    public var jsonName: String {
        switch self {
        case .manifestVersion: return "manifestVersion"
        case .timestamp: return "timestamp"
        case .manufacturer: return "manufacturer"
        case .model: return "model"
        case .firmwareVersion: return "firmwareVersion"
        case .firmwareLocation: return "firmwareLocation"
        case .firmwareCryptoInfo: return "firmwareCryptoInfo"
        case .keyInfo: return "key-info"
        case .firmwareSize: return "firmwareSize"
        case .components: return "components"
        case .critical: return "critical"
        }
    }
}
