import Testing
import Foundation
import CoapFirmware
import CoapFirmwareCore

@Suite struct CBORCodecTests {
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
    func encodesShortestForm(_ value: CBORValue, _ hex: String) throws {
        #expect(Hex.encode(CBORCodec.encode(value)) == hex)
        #expect(try CBORCodec.decode(hexBytes(hex)) == value)
    }

    @Test func sortsMapKeysByEncodedBytes() {
        // RFC 8949 §4.2.1: bytewise lexicographic order of the encoded keys.
        let value = CBORValue.map([
            CBORMapEntry(.text("aa"), .null), CBORMapEntry(.int(-1), .null), CBORMapEntry(.int(100), .null),
            CBORMapEntry(.int(10), .null), CBORMapEntry(.text("b"), .null),
        ])
        #expect(Hex.encode(CBORCodec.encode(value)) == "a5" + "0af6" + "1864f6" + "20f6" + "6162f6" + "626161f6")
    }

    @Test func decodesNonShortestButEquivalent() throws {
        #expect(try CBORCodec.decode(hexBytes("1800")) == .unsigned(0))
    }

    @Test(arguments: [
        ("", "truncated"), ("18", "truncated"), ("82 01", "more than the input holds"), ("83 01 02 18", "truncated"), ("01 02", "trailing"),
        ("9f 01 ff", "indefinite-length array"), ("bf 01 02 ff", "indefinite-length map"),
        ("5f 41 00 ff", "indefinite-length byte string"), ("7f 61 61 ff", "indefinite-length text string"),
        ("9b 00 00 00 01 00 00 00 00", "more than the input holds"), ("ba ff ff ff ff 00", "more than the input holds"),
        ("62 c3 28", "UTF-8"), ("ff", "break"), ("1c", "header"),
    ])
    func rejects(_ hex: String, _ reason: String) {
        let bytes = hexBytes(hex.replacingOccurrences(of: " ", with: ""))
        let error = caught(CBORCodec.Error.self) { _ = try CBORCodec.decode(bytes) }
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func rejectsDeepNesting() {
        #expect(throws: CBORCodec.Error.self) { try CBORCodec.decode([UInt8](repeating: 0x81, count: 40) + [0x00]) }
        #expect(throws: Never.self) { try CBORCodec.decode([UInt8](repeating: 0x81, count: 10) + [0x00]) }
    }

    @Test func keepsDuplicateKeysInOrder() throws {
        #expect(try CBORCodec.decode(hexBytes("a2 01 02 01 03".replacingOccurrences(of: " ", with: "")))
            == .map([CBORMapEntry(.unsigned(1), .unsigned(2)), CBORMapEntry(.unsigned(1), .unsigned(3))]))
    }

    @Test func roundTripsAManifest() throws {
        let value = CBORValue.map([
            CBORMapEntry(.int(2), .tagged(1, .unsigned(1_764_000_000))),
            CBORMapEntry(.int(7), .map([CBORMapEntry(.int(1), .array([.map([CBORMapEntry(.int(1), .int(-16)), CBORMapEntry(.int(2), .bytes([UInt8](repeating: 9, count: 32)))])]))])),
        ])
        let bytes = CBORCodec.encode(value)
        #expect(try CBORCodec.decode(bytes) == value)
        #expect(CBORCodec.encode(try CBORCodec.decode(bytes)) == bytes)
    }
}
