import CoapFirmwareDevice

/// The two signed envelope formats (SPEC §3).
public enum ManifestFormat: String, Sendable, CaseIterable {
    /// COSE_Sign1 over the CBOR manifest; CoAP Content-Format 18.
    case cbor
    /// Flattened JWS JSON serialization over the JSON manifest; Content-Format 50.
    case json
    /// A SUIT envelope (draft-ietf-suit-manifest-33, issue #14); Content-Format
    /// 65000 until IANA assigns one (`CoapContentFormat.suitEnvelope`).
    case suit

    /// The file name in a repository (SPEC §4).
    public var fileName: String { "manifest.\(rawValue)" }

    /// The CoAP Content-Format number (RFC 7252 §12.3, RFC 9052 §9.1).
    public var contentFormat: UInt16 {
        switch self {
        case .cbor: return 18
        case .json: return 50
        case .suit: return 65000
        }
    }

    /// Guesses the format from the first significant byte: JSON text starts
    /// with `{`, a COSE_Sign1 with tag 18 (0xD2) or an array head.
    public static func detect(_ bytes: [UInt8]) -> ManifestFormat {
        let first = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        return first == UInt8(ascii: "{") ? .json : .cbor
    }
}

/// A manifest whose signature held under a trusted key.
///
/// Only `ManifestVerifier` (in `CoapFirmware`) makes one: the initializer
/// is `package`. The update engine and the installer take nothing else, so
/// an unverified manifest cannot reach the code that acts on it.
public struct VerifiedManifest: Sendable {
    public let manifest: Manifest
    public let format: ManifestFormat
    /// The signed envelope exactly as received, for the state folder.
    public let envelope: [UInt8]
    /// The `kid` of the trusted key that verified it.
    public let signerKid: [UInt8]
    public let algorithm: SignatureAlgorithm

    package init(manifest: Manifest, format: ManifestFormat, envelope: [UInt8], signerKid: [UInt8], algorithm: SignatureAlgorithm) {
        (self.manifest, self.format, self.envelope) = (manifest, format, envelope)
        (self.signerKid, self.algorithm) = (signerKid, algorithm)
    }
}
