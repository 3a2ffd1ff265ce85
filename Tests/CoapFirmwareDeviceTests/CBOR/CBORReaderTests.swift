import Testing
@testable import CoapFirmwareDevice

/// The allocation-free CBOR reader the device uses.
@Suite struct CBORReaderTests {
    func items(_ bytes: [UInt8]) -> [CBORReader.Item]? {
        bytes.withUnsafeBytes { raw in
            var r = CBORReader(raw)
            var out: [CBORReader.Item] = []
            while !r.isAtEnd {
                guard case .success(let item) = r.next() else { return nil }
                out.append(item)
            }
            return out
        }
    }

    @Test func heads() {
        #expect(items([0x00, 0x17, 0x18, 0x18, 0x19, 0x01, 0x00, 0x1b, 0, 0, 0, 1, 0, 0, 0, 0]) == [.unsigned(0), .unsigned(23), .unsigned(24), .unsigned(256), .unsigned(1 << 32)])
        #expect(items([0x20, 0x38, 0x63]) == [.negative(0), .negative(99)])
        #expect(items([0x43, 1, 2, 3, 0x62, 0x68, 0x69]) == [.bytes(1..<4), .text(5..<7)])
        #expect(items([0x82, 0x01, 0x02, 0xa1, 0x01, 0x02, 0xd2, 0xf5, 0xf4, 0xf6]) == [.array(count: 2), .unsigned(1), .unsigned(2), .map(count: 1), .unsigned(1), .unsigned(2), .tag(18), .bool(true), .bool(false), .null])
    }

    @Test(arguments: [
        ([0x5f, 0x41, 0x00, 0xff], CBORReader.Failure.indefiniteLength),   // indefinite byte string
        ([0x9f, 0xff], .indefiniteLength),
        ([0x19, 0x01], .truncated),
        ([0x45, 0x01, 0x02], .truncated),                                  // 5 bytes claimed, 2 left
        ([0x9a, 0xff, 0xff, 0xff, 0xff], .truncated),                      // 2^32-1 elements, none there
        ([0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], .truncated),
        ([0x62, 0xc3, 0x28], .invalidUTF8),
        ([0x63, 0xed, 0xa0, 0x80], .invalidUTF8),                          // surrogate
        ([0x62, 0xc0, 0x80], .invalidUTF8),                                // overlong
        ([0xf8, 0x10], .unsupported),                                      // two-byte simple value below 32
        ([0x1c], .reservedHead),
    ] as [([UInt8], CBORReader.Failure)])
    func refuses(_ bytes: [UInt8], _ failure: CBORReader.Failure) {
        let result = bytes.withUnsafeBytes { raw -> CBORReader.Failure? in
            var r = CBORReader(raw)
            return r.skip()
        }
        #expect(result == failure)
    }

    @Test func depthIsBounded() {
        let deep = [UInt8](repeating: 0x81, count: 17) + [0x00]
        let ok = [UInt8](repeating: 0x81, count: 15) + [0x00]
        let a: CBORReader.Failure? = deep.withUnsafeBytes { raw in var r = CBORReader(raw); return r.skip() }
        let b: CBORReader.Failure? = ok.withUnsafeBytes { raw in var r = CBORReader(raw); return r.skip() }
        #expect(a == .tooDeep)
        #expect(b == nil)
    }

    @Test func validUTF8() {
        for s in ["", "abc", "é", "€", "𝄞", "日本語"] {
            #expect(Array(s.utf8).withUnsafeBytes { CBORReader.isValidUTF8($0) })
        }
    }
}

extension CBORReaderTests {
    /// -2^63 is an Int64 (the reader and the manifest rules once disagreed on it).
    @Test func int64Range() {
        #expect(CBORReader.Item.negative(UInt64(Int64.max)).int64 == Int64.min)
        #expect(CBORReader.Item.negative(UInt64(Int64.max) + 1).int64 == nil)
        #expect(CBORReader.Item.unsigned(UInt64(Int64.max)).int64 == Int64.max)
        #expect(CBORReader.Item.unsigned(UInt64(Int64.max) + 1).int64 == nil)
    }
}
