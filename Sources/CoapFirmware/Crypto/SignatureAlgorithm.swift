import CoapFirmwareCore

/// A signature algorithm for manifests (SPEC §3), with its COSE and JOSE names.
public enum SignatureAlgorithm: String, Sendable, CaseIterable {
    /// ECDSA P-256 with SHA-256, signature raw r‖s (RFC 9053 §2.1, RFC 7518 §3.4).
    case es256 = "ES256"
    /// EdDSA with Ed25519 (RFC 9053 §2.2, RFC 8037).
    case eddsa = "EdDSA"
    /// HSS/LMS hash-based signatures (RFC 8554, COSE -46 by RFC 8778). JOSE
    /// has no registered name; we write and read "HSS-LMS".
    case hssLms = "HSS-LMS"

    /// The identifier written when signing.
    public var coseID: Int64 {
        switch self {
        case .es256: return -7
        case .eddsa: return -8
        case .hssLms: return HSS.coseAlgorithm
        }
    }

    /// The JWS `alg` written when signing.
    public var joseName: String { rawValue }

    /// Reads a COSE `alg`, accepting the fully specified ids of RFC 9864
    /// (ESP256 -9, Ed25519 -19) as the same algorithms.
    public init?(coseID: Int64) {
        switch coseID {
        case -7, -9: self = .es256
        case -8, -19: self = .eddsa
        case HSS.coseAlgorithm: self = .hssLms
        default: return nil
        }
    }

    /// Reads a JWS `alg`, accepting "ESP256" and "Ed25519" (RFC 9864).
    public init?(joseName: String) {
        switch joseName {
        case "ES256", "ESP256": self = .es256
        case "EdDSA", "Ed25519": self = .eddsa
        case "HSS-LMS": self = .hssLms
        default: return nil
        }
    }

    /// Parses the `--alg` spelling of `keygen` (case-insensitive).
    public init?(argument: String) {
        switch argument.lowercased() {
        case "es256", "esp256", "p-256", "p256": self = .es256
        case "eddsa", "ed25519": self = .eddsa
        case "hss-lms", "hss", "lms", "hsslms": self = .hssLms
        default: return nil
        }
    }
}
