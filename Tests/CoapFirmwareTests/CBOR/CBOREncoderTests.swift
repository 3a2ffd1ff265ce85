import Testing
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice
import TestSupport

/// libcbor's job: the deterministic encoding of what we sign. What it
/// writes is read back by the device's reader, the only CBOR decoder.
@Suite struct CBOREncoderTests {
    // RFC 8949 Appendix A examples (shortest-form heads).
    @Test(arguments: [
        (CBORValue.unsigned(0), "00"), (.unsigned(23), "17"), (.unsigned(24), "1818"), (.unsigned(100), "1864"),
        (.unsigned(1000), "1903e8"), (.unsigned(1_000_000), "1a000f4240"),
        (.unsigned(1_000_000_000_000), "1b000000e8d4a51000"), (.unsigned(.max), "1bffffffffffffffff"),
        (.negative(0), "20"), (.negative(9), "29"), (.negative(99), "3863"), (.negative(999), "3903e7"),
        (.bytes([1, 2, 3, 4]), "4401020304"), (.text("IETF"), "6449455446"), (.text("ü"), "62c3bc"),
        (.array([.unsigned(1), .array([.unsigned(2), .unsigned(3)])]), "8201820203"),
        (.tagged(1, .unsigned(1_363_896_240)), "c11a514b67b0"), (.tagged(18, .array([])), "d280"),
        (.bool(false), "f4"), (.bool(true), "f5"), (.null, "f6"), (.bytes([]), "40"), (.text(""), "60"),
    ])
    func encodesShortestForm(_ value: CBORValue, _ expected: String) {
        let bytes = CBOREncoder.encode(value)
        #expect(hexString(bytes) == expected)
        let wellFormed: Bool = bytes.withUnsafeBytes { raw in
            var r = CBORReader(raw)
            return r.skip() == nil && r.isAtEnd
        }
        #expect(wellFormed)
    }

    @Test func sortsMapKeysByEncodedBytes() {
        // RFC 8949 §4.2.1: bytewise lexicographic order of the encoded keys.
        let value = CBORValue.map([
            CBORMapEntry(.text("aa"), .null), CBORMapEntry(.int(-1), .null), CBORMapEntry(.int(100), .null),
            CBORMapEntry(.int(10), .null), CBORMapEntry(.text("b"), .null),
        ])
        #expect(hexString(CBOREncoder.encode(value)) == "a5" + "0af6" + "1864f6" + "20f6" + "6162f6" + "626161f6")
    }

    /// A manifest goes through libcbor and back through the device's rules unchanged.
    @Test func manifestRoundTrip() throws {
        var m = Manifest(timestamp: 1_764_000_000, manufacturer: "example.com", model: "c7960", firmwareVersion: FirmwareVersion("1.2.3")!)
        m.keyInfo = KeyInfo(curve: .p256, x: [UInt8](repeating: 7, count: 32), y: [UInt8](repeating: 8, count: 32))
        m.critical = ["firmwareVersion"]
        m.components = [
            Component(name: "boot", location: "1.2.3/boot.bin", size: 10, digests: [ImageDigest(algorithm: .sha256, value: [UInt8](repeating: 1, count: 32))]),
            Component(name: "app", location: "coap://example.com/app.bin", size: .max - 10,
                      digests: [ImageDigest(algorithm: .sha512, value: [UInt8](repeating: 2, count: 64))]),
        ]
        #expect(try Manifest(cborPayload: CBOREncoder.encode(m.cborValue)) == m)
        #expect(CBOREncoder.encode(m.cborValue) == CBOREncoder.encode(try Manifest(cborPayload: CBOREncoder.encode(m.cborValue)).cborValue))
    }
}
