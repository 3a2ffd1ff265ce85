import Testing
import CoapFirmwareDevice
@testable import CoapFirmwareCore

@Suite struct EncodingTests {
    // RFC 4648 §10 test vectors, in the URL-safe alphabet without padding.
    @Test(arguments: [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
                      ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")])
    func base64urlRFC4648(_ plain: String, _ encoded: String) {
        #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
        #expect(Base64URL.decode(encoded) == Array(plain.utf8))
    }

    @Test func base64urlAlphabetAndStrictness() {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("+/8") == nil)      // standard alphabet refused
        #expect(Base64URL.decode("Zg==") == nil)     // padding refused
        #expect(Base64URL.decode("Zh") == nil)       // non-zero trailing bits refused
        #expect(Base64URL.decode("Z") == nil)        // impossible length
    }

    @Test func hex() {
        #expect(Hex.encode([0x00, 0xAB, 0xFF]) == "00abff")
        #expect(Hex.decodeLowercase("00abff") == [0x00, 0xAB, 0xFF])
        #expect(Hex.decodeLowercase("00ABFF") == nil)
        #expect(Hex.decode("00ABff") == [0x00, 0xAB, 0xFF])
        #expect(Hex.decodeLowercase("abc") == nil)
        #expect(Hex.decodeLowercase("zz") == nil)
    }

    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)), ("2025-11-24T16:00:00Z", 1_764_000_000),
        ("2025-11-24T17:00:00+01:00", 1_764_000_000), ("2025-11-24T15:30:00-00:30", 1_764_000_000),
        ("2025-11-24t16:00:00.999z", 1_764_000_000), ("2000-02-29T00:00:00Z", 951_782_400),
        ("1969-12-31T23:59:59Z", -1), ("2106-02-07T06:28:16Z", 4_294_967_296),
    ])
    func rfc3339Parse(_ text: String, _ seconds: Int64) {
        #expect(RFC3339.parse(text) == seconds)
    }

    @Test(arguments: ["2025-02-29T00:00:00Z", "2025-13-01T00:00:00Z", "2025-11-24T24:00:00Z", "2025-11-24T16:00:00",
                      "2025-11-24 16:00Z", "yesterday", "2025-11-24T16:00:00+0100", "2025-11-24T16:00:00.Z", ""])
    func rfc3339Rejects(_ text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func rfc3339FormatRoundTrips() {
        for seconds: Int64 in [0, 1, 951_782_400, 1_764_000_000, 4_102_444_799, -86_401] {
            #expect(RFC3339.parse(RFC3339.format(seconds)) == seconds)
        }
        #expect(RFC3339.format(1_764_000_000) == "2025-11-24T16:00:00Z")
    }
}

@Suite struct FirmwareVersionTests {
    @Test func parsesAndComparesNumerically() throws {
        let v = try #require(FirmwareVersion("1.10.0"))
        #expect(v == FirmwareVersion(major: 1, minor: 10, revision: 0))
        #expect(try #require(FirmwareVersion("1.9.99")) < v)
        #expect(try #require(FirmwareVersion("2.0.0")) > v)
        #expect(try #require(FirmwareVersion("1.10.1")) > v)
        #expect(v.description == "1.10.0")
        #expect(FirmwareVersion("0.0.0") != nil)
        #expect(FirmwareVersion("999999999.0.0") != nil)
    }

    @Test(arguments: ["1.2", "1.2.3.4", "01.2.3", "1.2.-3", "1..3", "a.b.c", "1.2.3 ", "+1.2.3", "1000000000.0.0", "", "1.2.3-rc1"])
    func rejects(_ text: String) {
        #expect(FirmwareVersion(text) == nil)
    }
}
