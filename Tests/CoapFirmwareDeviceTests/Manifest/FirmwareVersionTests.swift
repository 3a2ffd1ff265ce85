import Testing
@testable import CoapFirmwareDevice

func bytesOf<R>(_ text: String, _ body: (UnsafeRawBufferPointer) -> R) -> R { Array(text.utf8).withUnsafeBytes(body) }

@Suite struct FirmwareVersionTests {
    @Test(arguments: [("1.2.3", FirmwareVersion(major: 1, minor: 2, revision: 3)), ("0.0.0", .init(major: 0, minor: 0, revision: 0)),
                      ("999999999.1.10", .init(major: 999_999_999, minor: 1, revision: 10))])
    func parses(_ text: String, _ version: FirmwareVersion) {
        #expect(bytesOf(text) { FirmwareVersion(bytes: $0) } == version)
    }

    @Test(arguments: ["", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1..3", "a.b.c", "-1.2.3", "+1.2.3", "1.2.3 ", "1000000000.0.0", "1.2.3\u{0}"])
    func refuses(_ text: String) {
        #expect(bytesOf(text) { FirmwareVersion(bytes: $0) } == nil)
    }

    @Test func comparesNumerically() {
        let v = { (a: UInt32, b: UInt32, c: UInt32) in FirmwareVersion(major: a, minor: b, revision: c) }
        #expect(v(1, 10, 0) > v(1, 9, 9))
        #expect(v(2, 0, 0) > v(1, 99, 99))
        #expect(v(1, 2, 3) == v(1, 2, 3))
    }
}

@Suite struct SafeNameTests {
    @Test(arguments: ["fw.bin", "a", "A-Z_0.9", String(repeating: "x", count: 64), "...", ".hidden"])
    func safe(_ name: String) { #expect(bytesOf(name) { SafeName.isSafe($0) }) }

    @Test(arguments: ["", ".", "..", "a/b", "a b", "é", String(repeating: "x", count: 65), "a\u{0}"])
    func unsafe(_ name: String) { #expect(!bytesOf(name) { SafeName.isSafe($0) }) }

    @Test(arguments: [("coap://h/a/b/fw-1.bin?x=1#f", "fw-1.bin"), ("1.2.3/firmware.bin", "firmware.bin"), ("fw", "fw"),
                      ("a/", ""), ("a?b/c", "a"), ("#x", "")])
    func lastSegment(_ location: String, _ segment: String) {
        #expect(bytesOf(location) { String(decoding: SafeName.lastSegment($0), as: UTF8.self) } == segment)
    }
}
