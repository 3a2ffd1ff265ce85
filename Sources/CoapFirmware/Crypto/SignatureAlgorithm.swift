import CoapFirmwareDevice

/// The JOSE and command-line spellings of the device's signature algorithms (SPEC §3).
extension SignatureAlgorithm: CustomStringConvertible {
    /// The JWS `alg` written when signing, and the name users see.
    public var joseName: String { "\(name)" }
    public var description: String { joseName }

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
