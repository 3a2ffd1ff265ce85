import Testing
import Foundation
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice
import TestSupport

@Suite struct PublisherTests {
    @Test func publishesBothFormatsThatVerify() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(image).write(to: URL(fileURLWithPath: "\(dir)/fw.bin"))
        let key = try PrivateKey.generate(.es256)
        let publisher = ReleasePublisher(repository: "\(dir)/repo", key: key)
        var options = ReleasePublisher.Options(
            manufacturer: "example.com", model: "c7960", version: FirmwareVersion("1.0.0")!,
            images: [ReleaseImage(name: "fw.bin", path: "\(dir)/fw.bin")], isSplit: false, timestamp: 1_750_000_000)
        options.digests = [.sha256, .sha384]
        let result = try publisher.publish(options)
        #expect(result.manifest.firmwareLocation == "1.0.0/fw.bin")
        #expect(result.manifest.firmwareSize == 10_000)

        let verifier = ManifestVerifier(trustedKeys: [key.publicKey])
        let layout = RepositoryLayout(root: "\(dir)/repo")
        for format in [ManifestFormat.cbor, .json] {
            let bytes = try FileSystem.read(layout.manifestPath(manufacturer: "example.com", model: "c7960", format: format))
            let verified = try verifier.verify(bytes)
            #expect(verified.format == format)
            #expect(verified.manifest == result.manifest)
        }
        // Without --suit, no SUIT envelope.
        #expect(!FileSystem.exists(layout.manifestPath(manufacturer: "example.com", model: "c7960", format: .suit)))
        let copied = try FileSystem.read("\(layout.modelDirectory(manufacturer: "example.com", model: "c7960"))/1.0.0/fw.bin")
        #expect(copied == image)

        // The same version again is refused, and so is an older one.
        #expect(throws: PublishError.self) { try publisher.publish(options) }
        options.version = FirmwareVersion("0.9.0")!
        #expect(throws: PublishError.self) { try publisher.publish(options) }
        // A newer one goes through; the old version folder stays.
        options.version = FirmwareVersion("1.1.0")!
        options.timestamp += 1
        _ = try publisher.publish(options)
        #expect(FileSystem.isDirectory("\(layout.modelDirectory(manufacturer: "example.com", model: "c7960"))/1.0.0"))
        #expect(publisher.currentRelease(manufacturer: "example.com", model: "c7960")?.firmwareVersion == FirmwareVersion("1.1.0"))
    }

    @Test func deterministicPayload() throws {
        // The same release signs the same payload bytes (Ed25519 is deterministic too).
        let key = try PrivateKey.generate(.eddsa)
        var m = Manifest(timestamp: 1, manufacturer: "m", model: "x", firmwareVersion: FirmwareVersion("1.0.0")!)
        m.components = [Component(name: "b", location: "1.0.0/b", size: 3, digests: [ImageDigest(algorithm: .sha256, value: [UInt8](repeating: 1, count: 32))])]
        let signer = ManifestSigner(key: key)
        #expect(try signer.signCOSE(m) == signer.signCOSE(m))
        #expect(try signer.signJWS(m) == signer.signJWS(m))
    }

    @Test func refusesUnsafeNames() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let publisher = ReleasePublisher(repository: dir, key: try PrivateKey.generate(.eddsa))
        for (manufacturer, model) in [("..", "x"), ("a/b", "x"), ("m", ""), ("m", "x y")] {
            let options = ReleasePublisher.Options(manufacturer: manufacturer, model: model, version: FirmwareVersion("1.0.0")!,
                                                   images: [ReleaseImage(name: "a", path: "/dev/null")], isSplit: false, timestamp: 0)
            #expect(throws: PublishError.self) { try publisher.publish(options) }
        }
        #expect(!FileSystem.exists("\(dir)/.well-known"))
    }
}
