/// The manifest's root keys (SPEC §2): the CBOR integer is the raw value.
/// Their JSON names live with the host's JSON spelling (`CoapFirmwareCore`).
public enum ManifestField: Int64, Sendable, CaseIterable {
    case manifestVersion = 1, timestamp, manufacturer, model, firmwareVersion, firmwareLocation,
         firmwareCryptoInfo, keyInfo, firmwareSize, components, critical
}

/// The members of one `components` entry (SPEC §2, key 10).
public enum ComponentKey: Int64, Sendable, CaseIterable {
    case name = 1, location, size, commitHash
}

/// The members of one digest entry: `{1: digestAlgo, 2: hash}`; and the one
/// member of `firmwareCryptoInfo`: `{1: commitHash}`.
public enum DigestKey: Int64, Sendable, CaseIterable {
    case digestAlgo = 1, hash
}

/// COSE_Key labels used in `key-info` (RFC 9052 §7, RFC 9053 §7).
public enum COSEKeyLabel: Int64, Sendable, CaseIterable {
    case y = -3, x = -2, crv = -1, kty = 1
}

/// A digest algorithm a manifest may list (SPEC §2), by its COSE id (RFC 9054 §2).
public enum DigestAlgorithm: Int64, Sendable, Hashable, CaseIterable {
    case sha256 = -16
    case sha384 = -43
    case sha512 = -44

    public var coseID: Int64 { rawValue }

    public init?(coseID: Int64) { self.init(rawValue: coseID) }

    public var digestLength: Int {
        switch self {
        case .sha256: return 32
        case .sha384: return 48
        case .sha512: return 64
        }
    }
}

/// The curve of a `key-info` key (COSE_Key EC2/P-256 or OKP/Ed25519).
public enum KeyInfoCurve: UInt8, Sendable {
    case p256, ed25519

    /// COSE kty and crv (RFC 9053 §7.1, §7.2).
    public var coseKeyType: Int64 { self == .p256 ? 2 : 1 }
    public var coseCurve: Int64 { self == .p256 ? 1 : 6 }

    public init?(coseKeyType kty: Int64, curve crv: Int64) {
        switch (kty, crv) {
        case (2, 1): self = .p256
        case (1, 6): self = .ed25519
        default: return nil
        }
    }
}
