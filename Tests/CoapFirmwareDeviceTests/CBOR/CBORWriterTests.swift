import Testing
import TestSupport
@testable import CoapFirmwareDevice

func written(_ body: ((UnsafeRawBufferPointer) -> Void) -> Void) -> String {
    var out: [UInt8] = []
    body { out.append(contentsOf: $0) }
    return hexString(out)
}

@Suite struct CBORWriterTests {
    // RFC 8949 Appendix A: shortest-form heads.
    @Test(arguments: [(Int64(0), "00"), (23, "17"), (24, "1818"), (100, "1864"), (1000, "1903e8"), (1_000_000, "1a000f4240"),
                      (1_000_000_000_000, "1b000000e8d4a51000"), (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
                      (Int64.min, "3b7fffffffffffffff"), (Int64.max, "1b7fffffffffffffff")])
    func integers(_ value: Int64, _ expected: String) {
        #expect(written { CBORWriter.integer(value, into: $0) } == expected)
    }

    @Test func stringsAndSimpleValues() {
        #expect(written { sink in [UInt8]([1, 2, 3, 4]).withUnsafeBytes { CBORWriter.string(.bytes, $0, into: sink) } } == "4401020304")
        #expect(written { sink in Array("IETF".utf8).withUnsafeBytes { CBORWriter.string(.text, $0, into: sink) } } == "6449455446")
        #expect(written { CBORWriter.head(.array, 2, into: $0) } == "82")
        #expect(written { CBORWriter.head(.map, 24, into: $0) } == "b818")
        #expect(written { CBORWriter.head(.tag, 1, into: $0) } == "c1")
        #expect(written { CBORWriter.simple(20, into: $0) } + written { CBORWriter.simple(21, into: $0) } + written { CBORWriter.simple(22, into: $0) } == "f4f5f6")
        #expect(written { CBORWriter.float64(1.1, into: $0) } == "fb3ff199999999999a")
        #expect(written { CBORWriter.head(.unsigned, .max, into: $0) } == "1bffffffffffffffff")
    }

    /// What the writer writes, the reader reads back.
    @Test func readsBack() {
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<1000 {
            let value = Int64(bitPattern: rng.next()) >> Int64.random(in: 0...63, using: &rng)
            var out: [UInt8] = []
            CBORWriter.integer(value) { out.append(contentsOf: $0) }
            let item = out.withUnsafeBytes { raw -> CBORReader.Item? in
                var r = CBORReader(raw)
                guard case .success(let item) = r.next(), r.isAtEnd else { return nil }
                return item
            }
            #expect(item?.int64 == value)
        }
    }
}
