import Testing
import Foundation
@testable import CoapFirmwareCore

/// One entry of Vectors/lms/vectors.json (Vectors/lms/generate.py: RFC 8554
/// Appendix F, pyhsslms signatures for every parameter set, crafted H15-H25
/// trees, and broken variants).
struct HSSVector: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var source: String
    var levels: Int
    var lms: [String]
    var lmots: [String]
    var `public`: String
    var message: String
    var signature: String
    var valid: Bool
    var why: String?
    var testDescription: String { name }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Vectors/lms")

    static func load(_ file: String = "vectors.json") throws -> [HSSVector] {
        try JSONDecoder().decode([HSSVector].self, from: Data(contentsOf: directory.appendingPathComponent(file)))
    }

    static func bytes(_ hex: String) -> [UInt8] { Hex.decodeLowercase(hex) ?? [] }
}

@Suite struct HSSVectorTests {
    @Test func coverage() throws {
        let vectors = try HSSVector.load()
        let names = Set(vectors.map(\.name))
        #expect(names.contains("rfc8554-test-case-1") && names.contains("rfc8554-test-case-2"))
        // Every single-level parameter set, valid.
        for h in [5, 10, 15, 20, 25] {
            for w in [1, 2, 4, 8] {
                #expect(vectors.contains { $0.valid && $0.levels == 1 && $0.lms == ["LMS_SHA256_M32_H\(h)"] && $0.lmots == ["LMOTS_SHA256_N32_W\(w)"] },
                        "H\(h)/W\(w) missing")
            }
        }
        #expect(Set(vectors.filter(\.valid).map(\.levels)) == Set(1...8))
        let refusals = Set(vectors.filter { !$0.valid }.compactMap(\.why))
        for why in ["wrong-leaf", "wrong-level-count", "truncated", "q-out-of-range", "message-changed", "bit-flip", "trailing-bytes", "wrong-type"] {
            #expect(refusals.contains(why), "no \(why) vector")
        }
    }

    @Test(arguments: try HSSVector.load())
    func verify(_ v: HSSVector) {
        let pub = HSSVector.bytes(v.public), sig = HSSVector.bytes(v.signature), msg = HSSVector.bytes(v.message)
        let failure = pub.withUnsafeBytes { p in
            sig.withUnsafeBytes { s in
                msg.withUnsafeBytes { m in HSS.verify(SHA256.self, publicKey: p, signature: s, message: { $0.update(m) }) }
            }
        }
        if v.valid {
            #expect(failure == nil, "\(v.name): \(failure.map { "\($0)" } ?? "")")
        } else {
            #expect(failure != nil, "\(v.name) (\(v.why ?? "")) must be refused")
        }
    }

    /// Every single-byte change of a valid two-level signature is refused.
    @Test func everyByteMatters() throws {
        let v = try #require(try HSSVector.load().first { $0.name == "hss-l2-h5-w8" })
        let pub = HSSVector.bytes(v.public), msg = HSSVector.bytes(v.message)
        var sig = HSSVector.bytes(v.signature)
        for i in stride(from: 0, to: sig.count, by: 7) {
            sig[i] ^= 0x01
            let failure = pub.withUnsafeBytes { p in
                sig.withUnsafeBytes { s in msg.withUnsafeBytes { m in HSS.verify(SHA256.self, publicKey: p, signature: s, message: { $0.update(m) }) } }
            }
            #expect(failure != nil, "flipping byte \(i) went unnoticed")
            sig[i] ^= 0x01
        }
    }

    @Test func parameterTables() {
        // RFC 8554 Table 1 (p, ls) and Table 2 (h), and the signature sizes of §4.5/§5.4.
        #expect(LMOTSType(w: 1)?.p == 265 && LMOTSType(w: 2)?.p == 133 && LMOTSType(w: 4)?.p == 67 && LMOTSType(w: 8)?.p == 34)
        #expect(LMSType(code: 6)?.height == 10 && LMSType(code: 9)?.height == 25 && LMSType(code: 10) == nil && LMSType(code: 4) == nil)
        let h10w4 = HSS.signatureLength(levels: [(LMSType(height: 10)!, LMOTSType(w: 4)!)])
        #expect(h10w4 == 2512)
    }
}

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
