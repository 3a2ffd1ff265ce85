import Testing
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice
import TestSupport

@Suite struct SignatureTests {
    // RFC 8032 §7.1, TEST 1-3.
    @Test(arguments: [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ])
    func ed25519RFC8032(_ secret: String, _ publicKey: String, _ message: String, _ signature: String) throws {
        let key = try ed25519PrivateKey(seed: hex(secret))
        #expect(key.publicKey.keyInfo?.x == hex(publicKey))
        #expect(try key.sign(hex(message)) == hex(signature))
        let verifier = try PublicKey(keyInfo: KeyInfo(curve: .ed25519, x: hex(publicKey)))
        #expect(verifier.verify(signature: hex(signature), message: hex(message), algorithm: .eddsa))
        var bad = hex(signature)
        bad[10] ^= 0x01
        #expect(!verifier.verify(signature: bad, message: hex(message), algorithm: .eddsa))
        #expect(!verifier.verify(signature: hex(signature), message: hex(message) + [0], algorithm: .eddsa))
        #expect(!verifier.verify(signature: hex(signature), message: hex(message), algorithm: .es256))
    }

    /// P-256 group order n (SEC 2 §2.4.2).
    let order = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")

    // Wycheproof-style edge cases for ECDSA P-256 with raw r‖s signatures.
    @Test func ecdsaEdgeCases() throws {
        let key = try PrivateKey.generate(.es256)
        let message = Array("coap-fw".utf8)
        let signature = try key.sign(message)
        let pub = key.publicKey
        #expect(signature.count == 64)
        #expect(pub.verify(signature: signature, message: message, algorithm: .es256))
        let r = Array(signature.prefix(32)), s = Array(signature.suffix(32))
        let zero = [UInt8](repeating: 0, count: 32)
        let cases: [(String, [UInt8])] = [
            ("r = 0", zero + s), ("s = 0", r + zero), ("r = s = 0", zero + zero),
            ("r = n", order + s), ("s = n", r + order), ("r = n + r'", r + s + [0]),
            ("truncated", Array(signature.dropLast())), ("empty", []), ("all ones", [UInt8](repeating: 0xFF, count: 64)),
            ("DER instead of raw", [0x30, 0x44, 0x02, 0x20] + r + [0x02, 0x20] + s),
            ("swapped r and s", s + r),
        ]
        for (name, bad) in cases {
            #expect(!pub.verify(signature: bad, message: message, algorithm: .es256), "\(name) must not verify")
        }
        #expect(!pub.verify(signature: signature, message: message + [0], algorithm: .es256))
        #expect(!pub.verify(signature: signature, message: message, algorithm: .eddsa))
    }

    @Test func keysRoundTripThroughPEMAndKeyInfo() throws {
        for algorithm in [SignatureAlgorithm.es256, .eddsa] {
            let key = try PrivateKey.generate(algorithm)
            let reread = try PrivateKey(pem: key.pkcs8PEM())
            #expect(reread.publicKey.spkiDER == key.publicKey.spkiDER)
            let pub = try PublicKey(pem: key.publicKey.pem())
            #expect(pub.kid == Array(OpenSSLSHA256.hash(pub.spkiDER).prefix(8)))
            #expect(try PublicKey(keyInfo: #require(pub.keyInfo)).spkiDER == pub.spkiDER)
        }
    }

    @Test func refusesOtherKeyKinds() throws {
        // A P-384 public key (SPKI) is well-formed but not one of ours.
        let p384 = """
            -----BEGIN PUBLIC KEY-----
            MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE6FBN4mAIlF0rSMhr5jvcpy7NnUcHAghN
            A5Mh/JUfToN4JfaOvtLzKgcD/lanI1IbJ97L3ytrmLW3AsU5a8uDqaBWHNxihjpi
            Y+tIaONOchZkVTceqkjhZGHd04yBr7YY
            -----END PUBLIC KEY-----
            """
        #expect(throws: KeyError.unsupported("EC curve secp384r1 (only P-256 is supported)")) { try PublicKey(pem: Array(p384.utf8)) }
        #expect(throws: KeyError.self) { try PublicKey(pem: Array("not a key".utf8)) }
        #expect(throws: KeyError.self) { try PrivateKey(pem: []) }
    }
}
