import Testing
import TestSupport
@testable import CoapFirmwareDevice

/// `DeviceVerifier.check`, as the device runs it (pure-Swift SHA-256,
/// HSS-LMS only), on the independent vectors of Vectors/device: every
/// result a check can give, then the images of the accepted ones block by
/// block, each also with one flipped byte.
@Suite struct DeviceVerifierTests {
    @Test func everyResultIsCovered() throws {
        let expected = Set(try DeviceVector.all().map(\.expect))
        #expect(expected == ["accepted", "up-to-date", "bad-signature", "bad-manifest", "wrong-device", "rollback", "too-large"])
    }

    @Test(arguments: try DeviceVector.all())
    func check(_ v: DeviceVector) throws {
        let envelope = try readVector(v.file), trust = try readVector(v.trust)
        let installed = try v.device.installed.map { i in
            InstalledRelease(version: try #require(Array(i.version.utf8).withUnsafeBytes { FirmwareVersion(bytes: $0) }), timestamp: i.timestamp)
        }
        var view = ManifestView()
        let result = envelope.withUnsafeBytes { env in trust.withUnsafeBytes { key in
            Array(v.device.manufacturer.utf8).withUnsafeBytes { m in Array(v.device.model.utf8).withUnsafeBytes { x in
                DeviceVerifier.check(SHA256.self, classic: HashBasedOnly(), envelope: env,
                                     trust: TrustAnchor(hss: key, engine: SHA256.self),
                                     policy: DevicePolicy(manufacturer: m, model: x, installed: installed, slotSize: v.device.slot ?? .max),
                                     view: &view)
            } }
        } }
        #expect(result.map { "\($0.name)" } ?? "accepted" == v.expect)
        guard result == nil else { return }
        #expect(view.imageCount == v.images.count)
        for (index, path) in v.images.enumerated() {
            let image = try readVector(path)
            for split in Chunks.all(count: image.count).suffix(7) {  // every Block2 size
                #expect(feed(image, split: split, view: view, index: index, envelope: envelope) == .match, "\(path), \(split)")
            }
            var flipped = image
            flipped[image.count / 2] ^= 1
            #expect(feed(flipped, split: Chunks.blocks(count: image.count, size: 1024), view: view, index: index, envelope: envelope)
                    != .match, "a flipped byte of \(path)")
        }
    }

    func feed(_ image: [UInt8], split: Chunks.Split, view: ManifestView, index: Int, envelope: [UInt8])
        -> BlockDigestVerifier<SoftwareDigests>.Outcome {
        var verifier = BlockDigestVerifier<SoftwareDigests>(image: view.images[index])
        image.withUnsafeBytes { raw in
            for range in split.ranges { _ = verifier.update(offset: UInt64(range.lowerBound), block: UnsafeRawBufferPointer(rebasing: raw[range])) }
        }
        return envelope.withUnsafeBytes { verifier.finish(image: view.images[index], manifest: $0) }
    }

    /// The anchor's kid is SHA-256 over the RFC 8554 key bytes, first 8 bytes (SPEC §3).
    @Test func hssKid() throws {
        let trust = try readVector("device/hss-public.bin")
        let anchor = trust.withUnsafeBytes { TrustAnchor(hss: $0, engine: SHA256.self) }
        let expected = hex(digest(SHA256.self, trust)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(anchor.kid == expected && anchor.algorithm == .hssLms)
    }
}
