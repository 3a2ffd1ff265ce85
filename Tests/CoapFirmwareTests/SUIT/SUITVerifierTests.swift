import Foundation
import Testing
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice
import TestSupport

/// SUIT envelopes (issue #14) against the independent vectors of
/// Vectors/suit (Python: cbor2-free reader, `cryptography`): the
/// specification's examples 0-5 and ours, each with its exact result.
@Suite struct SUITVerifierTests {
    struct Index: Decodable {
        struct Device: Decodable {
            let manufacturer: String
            let model: String
            let vendor_id: String
            let class_id: String
            let current_sequence: UInt64
        }
        struct Vector: Decodable, CustomStringConvertible {
            let name: String
            let file: String
            let key: String
            let images: [String: String]?
            let device: Bool
            let expect: String
            var description: String { name }
        }
        let device: Device
        let vectors: [Vector]
    }

    static func index() throws -> Index { try loadIndex("suit/index.json") }

    @Test func identityIsUUID5AsTheGeneratorComputesIt() throws {
        let d = try Self.index().device
        let (vendor, klass) = UUID5.suitIdentity(manufacturer: d.manufacturer, model: d.model)
        #expect(hexString(vendor) == d.vendor_id)
        #expect(hexString(klass) == d.class_id)
        // RFC 9562 Appendix B's own example: UUID5(DNS, "www.example.com").
        #expect(hexString(UUID5.make(namespace: UUID5.dnsNamespace, name: Array("www.example.com".utf8)))
                == "2ed6657de927568b95e12665a8aea6a2")
    }

    @Test func indexCoversEveryResult() throws {
        let vectors = try Self.index().vectors
        #expect(vectors.filter { $0.name.hasPrefix("spec-") }.count >= 6)
        #expect(Set(vectors.map(\.expect)) == ["ok", "bad-signature", "bad-manifest", "digest-mismatch", "wrong-device", "rollback"])
    }

    @Test(arguments: try SUITVerifierTests.index().vectors)
    func vector(_ v: Index.Vector) throws {
        let index = try Self.index()
        let key = try PublicKey(pem: readVector("suit/\(v.key)"))
        let bytes = try readVector("suit/\(v.file)")
        #expect(bytes.withUnsafeBytes { SUITEnvelopeView.looksLikeEnvelope($0) } || v.expect == "bad-manifest")
        let ids = v.device ? UUID5.suitIdentity(manufacturer: index.device.manufacturer, model: index.device.model) : nil
        let images = (v.images ?? [:]).sorted { $0.key < $1.key }.map { vectorsDirectory.appendingPathComponent("suit/\($0.value)").path }
        var result = "ok"
        do {
            let release = try SUITVerifier(trustedKeys: [key]).verify(bytes, run: v.device || !images.isEmpty,
                                                                       vendorID: ids?.vendorID, classID: ids?.classID)
            #expect(release.signerKid == key.kid)
            if v.device, let fresh = SUITManifestView.freshness(sequence: release.sequenceNumber, installed: index.device.current_sequence) {
                result = fresh.description
            }
            for (i, path) in images.enumerated() {
                do {
                    try release.components[i].check(file: path, index: i)
                } catch .mismatch(let error) {
                    throw error
                } catch .unreadable(let error) {
                    Issue.record("\(error)")
                }
            }
            if v.name == "ok" {
                #expect(release.version == "1.0.0")
                #expect(release.components.count == 1 && release.components[0].fetch && release.components[0].imageMatch)
                #expect(release.components[0].uri == "coap://[::1]/.well-known/firmware/example.com/c7960/1.0.0/fw-a.bin")
                #expect(release.components[0].size == 5000)
            }
        } catch let error as ManifestError {
            result = error.resultCode.description
        }
        #expect(result == v.expect)
    }

    /// The specification's examples verify but install nothing here: their
    /// image digests are sample patterns (image-match fails as
    /// digest-mismatch), and example 4 copies between components, which this
    /// updater refuses, naming the parameter.
    @Test(arguments: [0, 1, 2, 3, 4, 5])
    func specExamplesInstallNothing(_ n: Int) throws {
        let key = try PublicKey(pem: readVector("suit/spec/public.pem"))
        let bytes = try readVector("suit/spec/example\(n).cbor")
        let release = try SUITVerifier(trustedKeys: [key]).verify(bytes, run: false)
        #expect(release.sequenceNumber == UInt64(n))
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/image.bin"
        #expect(FileManager.default.createFile(atPath: image, contents: Data(repeating: 0xA5, count: 34768)))
        do {
            let run = try SUITVerifier(trustedKeys: [key]).verify(bytes)
            #expect(n != 4)
            #expect(run.components[0].imageMatch)
            let error = caught(ImageFileError.self) { try run.components[0].check(file: image, index: 0) }
            guard case .mismatch(let mismatch)? = error else {
                Issue.record("example \(n): the sample image matched")
                return
            }
            #expect(mismatch.resultCode == .digestMismatch)
        } catch {
            #expect(n == 4)
            #expect(error.resultCode == .badManifest && error.field?.contains("source-component") == true, "\(error)")
        }
    }

    /// Every single-bit flip of the positive envelope is refused or verifies
    /// to the same release (only unauthenticated framing may change nothing).
    @Test func noBitFlipVerifiesDifferently() throws {
        let key = try PublicKey(pem: readVector("suit/spec/public.pem"))
        let original = try readVector("suit/ours/ok.cbor")
        let verifier = SUITVerifier(trustedKeys: [key])
        let reference = try verifier.verify(original)
        for i in original.indices {
            var bytes = original
            bytes[i] ^= 0x01
            guard let r = try? verifier.verify(bytes) else { continue }
            #expect(r.sequenceNumber == reference.sequenceNumber && r.components.map(\.sha256) == reference.components.map(\.sha256)
                    && r.components.map(\.uri) == reference.components.map(\.uri), "byte \(i)")
        }
    }
}
