import Testing
import TestSupport
@testable import CoapFirmwareDevice

/// The device's per-block digest check on the vectors' images: every
/// listed algorithm at once, fed in every way the feeder knows.
@Suite struct BlockDigestVerifierTests {
    static let image = (try? readVector("images/firmware.bin")) ?? []
    /// firmware.bin's digests, by coreutils' sha256sum, sha384sum and sha512sum.
    static let imageDigests: [(DigestAlgorithm, [UInt8])] = [
        (.sha256, hex("f541874101876255b4baf3a739778d04cb9cba25ffa38b30bc1fb8b0701f2a45")),
        (.sha384, hex("8cbb1224fee33a18888371ed0366eb9a4e98f02d9e1cea2248f1d02fe59a3a6ec7460e7fdaee0f8c834c09f1a858a40f")),
        (.sha512, hex("0a4028b91c43c49a178493c4b78b2c66e9fb1dd891a4db769d601abfd739a5a1aba5f6c23c6fcf48a381617764213c96f1d16d86501953669c6cd1a651e4d110")),
    ]

    static func verifier(_ algorithms: DigestAlgorithms, size: Int) -> BlockDigestVerifier<SoftwareDigests> {
        BlockDigestVerifier(size: UInt64(size), algorithms: algorithms)
    }

    /// Digests of `bytes` per algorithm, computed whole by the engines themselves.
    static func reference(_ bytes: [UInt8]) -> [(DigestAlgorithm, [UInt8])] {
        [(DigestAlgorithm.sha256, hex(digest(SHA256.self, bytes))), (.sha384, hex(digest(SHA384.self, bytes))),
         (.sha512, hex(digest(SHA512.self, bytes)))]
    }

    static func finish(_ v: BlockDigestVerifier<SoftwareDigests>, _ expected: [(DigestAlgorithm, [UInt8])]) -> BlockDigestVerifier<SoftwareDigests>.Outcome {
        v.finish { check in
            for (algorithm, value) in expected { guard value.withUnsafeBytes({ check(algorithm, $0) }) else { return } }
        }
    }

    @Test func matchesInEverySplit() throws {
        let bytes = Self.image
        #expect(bytes.count == 3000)
        let expected = Self.imageDigests
        for split in Chunks.all(count: bytes.count) {
            var v = Self.verifier([.sha256, .sha384, .sha512], size: bytes.count)
            for range in split.ranges {
                let ok = bytes.withUnsafeBytes { v.update(offset: UInt64(range.lowerBound), block: UnsafeRawBufferPointer(rebasing: $0[range])) }
                #expect(ok)
            }
            #expect(Self.finish(v, expected) == .match, "\(split)")
        }
    }

    @Test func refusesGapsOverlapsAndExtraBytes() {
        let bytes = [UInt8](repeating: 7, count: 100)
        var v = Self.verifier(.sha256, size: 100)
        let accepted: [Bool] = bytes.withUnsafeBytes { raw in
            [(0, 0..<50), (60, 60..<70), (40, 40..<70), (50, 50..<100), (100, 0..<1)].map { offset, range in
                v.update(offset: UInt64(offset), block: UnsafeRawBufferPointer(rebasing: raw[range]))
            }
        }
        // A gap, an overlap and bytes past the signed size are refused.
        #expect(accepted == [true, false, false, true, false])
        #expect(Self.finish(v, [(.sha256, hex(digest(SHA256.self, bytes)))]) == .match)
    }

    @Test func namesWhatDiffers() {
        let bytes = (0..<5000).map { UInt8($0 % 251) }
        var expected = Self.reference(bytes)
        var full = Self.verifier([.sha256, .sha384, .sha512], size: bytes.count)
        bytes.withUnsafeBytes { _ = full.update(offset: 0, block: $0) }
        #expect(Self.finish(full, expected) == .match)
        expected[1].1[0] ^= 0xff
        #expect(Self.finish(full, expected) == .mismatch(.sha384), "one digest right, another wrong: still a mismatch")
        var short = Self.verifier(.sha256, size: bytes.count)
        bytes.dropLast().withUnsafeBytes { _ = short.update(offset: 0, block: $0) }
        #expect(Self.finish(short, [expected[0]]) == .wrongSize(received: 4999))
        var flipped = bytes
        flipped[4999] ^= 1
        var bad = Self.verifier(.sha256, size: bytes.count)
        flipped.withUnsafeBytes { _ = bad.update(offset: 0, block: $0) }
        #expect(Self.finish(bad, [expected[0]]) == .mismatch(.sha256))
    }
}
