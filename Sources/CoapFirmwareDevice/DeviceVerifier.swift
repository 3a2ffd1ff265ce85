/// What a device runs to accept a release (SPEC §6), with no allocation:
/// the COSE_Sign1 envelope, the signature under its one trust anchor
/// (HSS-LMS built in, ES256/EdDSA through a `ClassicSignatureVerifier`),
/// the manifest rules of `ManifestView`, then `DevicePolicy`.
public enum DeviceVerifier {
    /// Checks an envelope in the draft's order: signature, manifest,
    /// identity, freshness, size. Returns nil when the release is accepted
    /// (download it), else the result that ends this run (`upToDate` or a
    /// refusal). On nil or `upToDate`, `view` holds the manifest with its
    /// ranges pointing into `envelope` (`policy.evaluate(view, in: envelope)`
    /// says which rule decided).
    public static func check<H: SHA256Engine, V: ClassicSignatureVerifier>(
        _ engine: H.Type, classic: V, envelope: UnsafeRawBufferPointer, trust: TrustAnchor,
        policy: DevicePolicy, view: inout ManifestView
    ) -> ResultCode? {
        guard case .success(let cose) = COSESign1View.parse(envelope) else { return .badManifest }
        guard verifySignature(engine, classic: classic, cose: cose, envelope: envelope, trust: trust) else { return .badSignature }
        if view.read(envelope, range: cose.payload) != nil { return .badManifest }
        return policy.evaluate(view, in: envelope).result
    }

    /// The signature step alone: the kid (when given) must name the anchor,
    /// the algorithm must be the anchor's, and the signature must hold over
    /// the Sig_structure.
    @inline(__always)
    package static func verifySignature<H: SHA256Engine, V: ClassicSignatureVerifier>(
        _: H.Type, classic: V, cose: COSESign1View, envelope: UnsafeRawBufferPointer, trust: TrustAnchor
    ) -> Bool {
        if let kid = cose.kid {
            guard kid.count == 8 else { return false }
            var value: UInt64 = 0
            for i in kid { value = value << 8 | UInt64(envelope[i]) }
            guard value == trust.kid else { return false }
        }
        guard SignatureAlgorithm(coseID: cose.algorithm) == trust.algorithm else { return false }
        let signature = UnsafeRawBufferPointer(rebasing: envelope[cose.signature])
        switch trust.algorithm {
        case .hssLms:
            return HSS.verify(H.self, publicKey: trust.publicKey, signature: signature, message: { h in
                cose.writeToBeSigned(envelope) { h.update($0) }
            }) == nil
        case .es256:
            var h = H()
            cose.writeToBeSigned(envelope) { h.update($0) }
            return classic.verifyES256(publicKey: trust.publicKey, digest: h.finalizeDigest(), signature: signature)
        case .eddsa:
            return classic.verifyEd25519(publicKey: trust.publicKey, signature: signature, message: { sink in
                cose.writeToBeSigned(envelope, into: sink)
            })
        }
    }
}
