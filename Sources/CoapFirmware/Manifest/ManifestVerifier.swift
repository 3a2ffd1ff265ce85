import CoapFirmwareCore
import CoapFirmwareDevice

/// Checks a signed manifest (COSE_Sign1 or JWS) against trusted keys, then
/// reads its payload: the one place a `VerifiedManifest` comes from.
///
/// Authenticate first (SPEC §6): the envelope is parsed only far enough to
/// find the signed bytes; the payload is read for meaning only after the
/// signature holds.
public struct ManifestVerifier: Sendable {
    public let trustedKeys: [PublicKey]

    public init(trustedKeys: [PublicKey]) {
        precondition(!trustedKeys.isEmpty, "a verifier needs at least one trusted key")
        self.trustedKeys = trustedKeys
    }

    /// Verifies an envelope in either format (detected from its content).
    public func verify(_ envelope: [UInt8]) throws(ManifestError) -> VerifiedManifest {
        guard envelope.count <= Manifest.maxEncodedSize else {
            throw .badManifest(field: "manifest", reason: "\(envelope.count) bytes, more than the \(Manifest.maxEncodedSize)-byte limit")
        }
        let format = ManifestFormat.detect(envelope)
        switch format {
        case .cbor:
            let m = try COSESign1(decoding: envelope)
            return try accept(envelope, format: format, kid: m.kid, algorithm: m.algorithm, signature: m.signature,
                              signed: m.toBeSigned) { () throws(ManifestError) in try Manifest(cborPayload: m.payload) }
        case .json:
            let m = try JWSFlattened(decoding: envelope)
            return try accept(envelope, format: format, kid: m.kid, algorithm: m.algorithm, signature: m.signature,
                              signed: m.signingInput) { () throws(ManifestError) in try Manifest(jsonPayload: m.payload) }
        case .suit:
            // `detect` never says so: a SUIT envelope needs the device's identity (`SUITVerifier.release`).
            throw .badManifest(field: "manifest", reason: "a SUIT envelope, not a COSE_Sign1 or JWS manifest")
        }
    }

    /// The signature first; the payload is read only once it holds.
    private func accept(_ envelope: [UInt8], format: ManifestFormat, kid: [UInt8]?, algorithm: SignatureAlgorithm,
                        signature: [UInt8], signed: [UInt8], read: () throws(ManifestError) -> Manifest)
        throws(ManifestError) -> VerifiedManifest {
        let (key, algorithm) = try Self.pickKey(from: trustedKeys, kid: kid, algorithm: algorithm)
        guard key.verify(signature: signature, message: signed, algorithm: algorithm) else {
            throw .badSignature(field: nil, reason: "\(format == .cbor ? "COSE_Sign1" : "JWS") signature does not verify with key \(Hex.encode(key.kid))")
        }
        return VerifiedManifest(manifest: try read(), format: format, envelope: envelope, signerKid: key.kid, algorithm: algorithm)
    }

    /// Picks the trusted key the envelope names. The `kid` is unauthenticated,
    /// so it only selects: a wrong one fails, it never widens trust. The one
    /// rule for COSE, JWS and SUIT (`SUITVerifier`, which names the fields).
    static func pickKey(from trustedKeys: [PublicKey], kid: [UInt8]?, algorithm: SignatureAlgorithm,
                        kidField: String? = nil, algField: String? = nil) throws(ManifestError) -> (PublicKey, SignatureAlgorithm) {
        let candidates = kid.map { kid in trustedKeys.filter { $0.kid == kid } } ?? trustedKeys
        guard !candidates.isEmpty else {
            throw .badSignature(field: kidField, reason: "signed by key \(Hex.encode(kid ?? [])), which is not trusted (trusted: \(trustedKeys.map { Hex.encode($0.kid) }.joined(separator: ", ")))")
        }
        guard let key = candidates.first(where: { $0.algorithm == algorithm }) else {
            throw .badSignature(field: algField, reason: "algorithm \(algorithm) does not match the trusted key (\(candidates[0].algorithm))")
        }
        return (key, algorithm)
    }
}
