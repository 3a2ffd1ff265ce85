import Testing
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice
import TestSupport

/// The host's verifier (COSE and JWS, several trusted keys, OpenSSL) on the
/// independent vectors of Vectors/manifests; it reads every payload with
/// the device's rules.
@Suite struct ManifestVerifierTests {
    @Test func indexIsComplete() throws {
        let vectors = try ManifestVector.all()
        #expect(vectors.count >= 40)
        #expect(Set(vectors.map(\.format)) == ["cbor", "json"])
        #expect(Set(vectors.map(\.expect)) == ["ok", "bad-signature", "bad-manifest"])
    }

    @Test(arguments: try ManifestVector.all())
    func vector(_ v: ManifestVector) throws {
        let key = try PublicKey(pem: readVector(v.trust))
        let bytes = try readVector(v.file)
        #expect(ManifestFormat.detect(bytes).rawValue == v.format)
        let verifier = ManifestVerifier(trustedKeys: [key])
        if v.expect == "ok" {
            let verified = try verifier.verify(bytes)
            #expect(verified.signerKid == key.kid)
            #expect(verified.manifest.images.count == v.images.count)
            for (component, path) in zip(verified.manifest.images, v.images) {
                let image = try readVector(path)
                for split in Chunks.all(count: image.count) where split.name != "byte by byte" {
                    var checker = BlockDigestVerifier<OpenSSLDigests>(component: component)
                    image.withUnsafeBytes { raw in
                        for r in split.ranges { _ = checker.update(offset: UInt64(r.lowerBound), block: UnsafeRawBufferPointer(rebasing: raw[r])) }
                    }
                    try checker.finish(component: component)
                }
                try component.check(file: vectorsDirectory.appendingPathComponent(path).path)
            }
        } else {
            let error = caught(ManifestError.self) { _ = try verifier.verify(bytes) }
            #expect(error?.resultCode.description == v.expect, "\(String(describing: error))")
            #expect(error?.field == v.field, "\(String(describing: error))")
        }
    }

    /// Every byte of a valid envelope matters: flipping any one of them must
    /// not yield a manifest that verifies with different content.
    @Test(arguments: ["cose-es256-valid.cbor", "cose-eddsa-valid.cbor", "jws-eddsa-valid.json"])
    func singleByteCorruptionNeverVerifiesDifferently(_ file: String) throws {
        let original = try readVector("manifests/\(file)")
        let keys = [try PublicKey(pem: readVector("keys/es256-public.pem")), try PublicKey(pem: readVector("keys/ed25519-public.pem"))]
        let verifier = ManifestVerifier(trustedKeys: keys)
        let reference = try verifier.verify(original).manifest
        var accepted = 0
        for i in original.indices {
            var bytes = original
            bytes[i] ^= 0x01
            if let m = try? verifier.verify(bytes) {
                // Only unauthenticated framing (e.g. the kid's spelling) may change without effect.
                #expect(m.manifest == reference, "byte \(i) changed the manifest yet verified")
                accepted += 1
            }
        }
        #expect(accepted < original.count / 10)
    }

    @Test func picksTheKeyByKidAmongSeveral() throws {
        let es = try PublicKey(pem: readVector("keys/es256-public.pem"))
        let ed = try PublicKey(pem: readVector("keys/ed25519-public.pem"))
        let other = try PublicKey(pem: readVector("keys/other-es256-public.pem"))
        let verifier = ManifestVerifier(trustedKeys: [other, ed, es])
        #expect(try verifier.verify(readVector("manifests/cose-es256-valid.cbor")).signerKid == es.kid)
        #expect(try verifier.verify(readVector("manifests/jws-eddsa-valid.json")).signerKid == ed.kid)
        #expect(try verifier.verify(readVector("manifests/cose-wrong-key.cbor")).signerKid == other.kid)
    }
}
