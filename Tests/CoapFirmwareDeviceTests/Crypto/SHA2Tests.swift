import Testing
import TestSupport
@testable import CoapFirmwareDevice

/// The digest of `bytes` fed to a fresh `H` in the pieces of `split`.
func digest<H: HashEngine>(_: H.Type, _ bytes: [UInt8], _ split: Chunks.Split? = nil) -> String {
    var h = H()
    bytes.withUnsafeBytes { raw in
        for range in split?.ranges ?? [0..<bytes.count] { h.update(UnsafeRawBufferPointer(rebasing: raw[range])) }
    }
    var out = [UInt8](repeating: 0, count: H.digestLength)
    out.withUnsafeMutableBytes { h.finalize(into: $0) }
    return hexString(out)
}

/// The pure-Swift SHA-2 (the microcontroller build's digests): FIPS 180-4
/// example values, the million-'a' test, and every way of feeding the input.
@Suite struct SHA2Tests {
    static let abc448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
    static let abc896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"

    @Test(arguments: [
        (DigestAlgorithm.sha256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (.sha256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (.sha256, abc448, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (.sha256, abc896, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        (.sha384, "", "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"),
        (.sha384, "abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        (.sha384, abc896, "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039"),
        (.sha512, "", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
        (.sha512, "abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        (.sha512, abc896, "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"),
    ])
    func fips180Examples(_ algorithm: DigestAlgorithm, _ message: String, _ expected: String) {
        let bytes = Array(message.utf8)
        for split in Chunks.all(count: bytes.count) {
            let got: String
            switch algorithm {
            case .sha256: got = digest(SHA256.self, bytes, split)
            case .sha384: got = digest(SHA384.self, bytes, split)
            case .sha512: got = digest(SHA512.self, bytes, split)
            }
            #expect(got == expected, "\(split)")
        }
    }

    @Test func millionA() {
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        let blocks = Chunks.blocks(count: bytes.count, size: 1000)
        #expect(digest(SHA256.self, bytes, blocks) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(digest(SHA512.self, bytes, blocks) == "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b")
    }

    /// Lengths around the 55/56/64 (SHA-256) and 111/112/128 (SHA-512)
    /// padding edges: whole and byte by byte agree.
    @Test func paddingBoundaries() {
        for length in [54, 55, 56, 57, 63, 64, 65, 110, 111, 112, 113, 127, 128, 129, 255, 256] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let splits = Chunks.all(count: length).prefix(2)
            #expect(Set(splits.map { digest(SHA256.self, bytes, $0) }).count == 1)
            #expect(Set(splits.map { digest(SHA512.self, bytes, $0) }).count == 1)
        }
    }
}
