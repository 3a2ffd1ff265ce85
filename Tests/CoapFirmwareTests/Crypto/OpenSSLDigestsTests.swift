import Testing
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice
import TestSupport

/// OpenSSL's engines plugged into the device's protocols: NIST values fed
/// in every split, and agreement with the pure-Swift engines the device
/// runs, on every length 0...300 and on 1 MiB.
@Suite struct OpenSSLDigestsTests {
    static func digest<H: HashEngine>(_: H.Type, _ bytes: [UInt8], _ ranges: [Range<Int>]) -> [UInt8] {
        var h = H()
        bytes.withUnsafeBytes { raw in for r in ranges { h.update(UnsafeRawBufferPointer(rebasing: raw[r])) } }
        var out = [UInt8](repeating: 0, count: H.digestLength)
        out.withUnsafeMutableBytes { h.finalize(into: $0) }
        return out
    }

    @Test(arguments: [
        (DigestAlgorithm.sha256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (.sha256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (.sha384, "abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        (.sha512, "abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
    ])
    func nistVectors(_ algorithm: DigestAlgorithm, _ message: String, _ expected: String) {
        let bytes = Array(message.utf8)
        for split in Chunks.all(count: bytes.count) {
            var set = DigestSet<OpenSSLDigests>(DigestAlgorithms(algorithm))
            bytes.withUnsafeBytes { raw in for r in split.ranges { set.update(UnsafeRawBufferPointer(rebasing: raw[r])) } }
            #expect(hexString(set.digest(algorithm)) == expected, "\(split)")
        }
    }

    @Test func agreesWithThePureSwiftEngines() {
        var rng = SeededGenerator(seed: 11)
        for length in Array(0...300) + [1 << 20] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let all = [0..<length]
            #expect(Self.digest(OpenSSLSHA256.self, bytes, all) == Self.digest(SHA256.self, bytes, all))
            #expect(Self.digest(OpenSSLDigests.SHA384.self, bytes, all) == Self.digest(SHA384.self, bytes, all))
            #expect(Self.digest(OpenSSLDigests.SHA512.self, bytes, all) == Self.digest(SHA512.self, bytes, all))
        }
    }
}
