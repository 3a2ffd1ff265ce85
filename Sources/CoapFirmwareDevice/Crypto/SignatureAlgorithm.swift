/// A manifest signature algorithm (SPEC §3), by its COSE identifiers.
public enum SignatureAlgorithm: UInt8, Sendable, CaseIterable {
    /// ECDSA P-256 with SHA-256, signature raw r‖s (RFC 9053 §2.1).
    case es256
    /// EdDSA with Ed25519 (RFC 9053 §2.2).
    case eddsa
    /// HSS/LMS hash-based signatures (RFC 8554, COSE -46 by RFC 8778).
    case hssLms

    /// The identifier written when signing.
    public var coseID: Int64 {
        switch self {
        case .es256: return -7
        case .eddsa: return -8
        case .hssLms: return HSS.coseAlgorithm
        }
    }

    /// Reads a COSE `alg`, taking the fully specified ids of RFC 9864
    /// (ESP256 -9, Ed25519 -19) as the same algorithms.
    public init?(coseID: Int64) {
        switch coseID {
        case -7, -9: self = .es256
        case -8, -19: self = .eddsa
        case HSS.coseAlgorithm: self = .hssLms
        default: return nil
        }
    }

    /// The name written as JWS `alg` and shown to users (JOSE has no
    /// registered name for HSS-LMS; we write "HSS-LMS").
    public var name: StaticString {
        switch self {
        case .es256: return "ES256"
        case .eddsa: return "EdDSA"
        case .hssLms: return "HSS-LMS"
        }
    }
}

/// ES256 and EdDSA for devices that have them (a hardware engine, a C
/// library; OpenSSL on Linux); `HashBasedOnly` refuses both.
public protocol ClassicSignatureVerifier {
    /// ES256: `digest` is SHA-256 of the Sig_structure; raw r‖s signature.
    func verifyES256(publicKey: UnsafeRawBufferPointer, digest: Digest32, signature: UnsafeRawBufferPointer) -> Bool
    /// Ed25519 over the Sig_structure, which `message` streams to its sink.
    func verifyEd25519(publicKey: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer,
                       message: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Bool
}

/// A device that trusts HSS-LMS keys only.
public struct HashBasedOnly: ClassicSignatureVerifier {
    public init() {}
    public func verifyES256(publicKey: UnsafeRawBufferPointer, digest: Digest32, signature: UnsafeRawBufferPointer) -> Bool { false }
    public func verifyEd25519(publicKey: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer,
                              message: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Bool { false }
}

/// The device's trust anchor: one public key and its kid.
public struct TrustAnchor {
    public let algorithm: SignatureAlgorithm
    /// ES256: 64-byte x‖y; Ed25519: 32 bytes; HSS-LMS: RFC 8554 bytes.
    public let publicKey: UnsafeRawBufferPointer
    /// The first 8 bytes of SHA-256 over the SPKI (HSS-LMS: over the key bytes), SPEC §3.
    public let kid: UInt64

    public init(algorithm: SignatureAlgorithm, publicKey: UnsafeRawBufferPointer, kid: UInt64) {
        (self.algorithm, self.publicKey, self.kid) = (algorithm, publicKey, kid)
    }

    /// An HSS-LMS anchor, its kid computed over the key bytes with `engine`.
    public init<H: SHA256Engine>(hss publicKey: UnsafeRawBufferPointer, engine: H.Type) {
        var h = H()
        h.update(publicKey)
        self.init(algorithm: .hssLms, publicKey: publicKey, kid: UInt64(bigEndian: h.finalizeDigest().words.0))
    }
}
