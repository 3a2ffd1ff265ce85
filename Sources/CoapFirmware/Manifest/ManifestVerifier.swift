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
        switch ManifestFormat.detect(envelope) {
        case .cbor:
            let message = try COSESign1(decoding: envelope)
            let (key, algorithm) = try pickKey(kid: message.kid, algorithm: message.algorithm)
            guard key.verify(signature: message.signature, message: message.toBeSigned, algorithm: algorithm) else {
                throw .badSignature(field: nil, reason: "COSE_Sign1 signature does not verify with key \(Hex.encode(key.kid))")
            }
            return VerifiedManifest(manifest: try Manifest(cborPayload: message.payload), format: .cbor, envelope: envelope,
                                    signerKid: key.kid, algorithm: algorithm)
        case .json:
            let message = try JWSFlattened(decoding: envelope)
            let (key, algorithm) = try pickKey(kid: message.kid, algorithm: message.algorithm)
            guard key.verify(signature: message.signature, message: message.signingInput, algorithm: algorithm) else {
                throw .badSignature(field: nil, reason: "JWS signature does not verify with key \(Hex.encode(key.kid))")
            }
            return VerifiedManifest(manifest: try Manifest(jsonPayload: message.payload), format: .json, envelope: envelope,
                                    signerKid: key.kid, algorithm: algorithm)
        }
    }

    /// Picks the trusted key the envelope names. The `kid` is unauthenticated,
    /// so it only selects: a wrong one fails, it never widens trust.
    private func pickKey(kid: [UInt8]?, algorithm: SignatureAlgorithm) throws(ManifestError) -> (PublicKey, SignatureAlgorithm) {
        let candidates = kid.map { kid in trustedKeys.filter { $0.kid == kid } } ?? trustedKeys
        guard !candidates.isEmpty else {
            throw .badSignature(field: nil, reason: "signed by key \(Hex.encode(kid ?? [])), which is not trusted (trusted: \(trustedKeys.map { Hex.encode($0.kid) }.joined(separator: ", ")))")
        }
        guard let key = candidates.first(where: { $0.algorithm == algorithm }) else {
            throw .badSignature(field: nil, reason: "algorithm \(algorithm) does not match the trusted key (\(candidates[0].algorithm))")
        }
        return (key, algorithm)
    }
}
