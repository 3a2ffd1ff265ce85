import Testing
import TestSupport
@testable import CoapFirmwareDevice

@Suite struct HSSVectorTests {
    @Test func coverage() throws {
        let vectors = try HSSVector.all()
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

    @Test(arguments: try HSSVector.all())
    func verify(_ v: HSSVector) {
        let pub = hex(v.public), sig = hex(v.signature), msg = hex(v.message)
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
        let v = try #require(try HSSVector.all().first { $0.name == "hss-l2-h5-w8" })
        let pub = hex(v.public), msg = hex(v.message)
        var sig = hex(v.signature)
        // Every 17th byte, and the last: each field of each level is hit (debug SHA-256 is slow).
        for i in Array(stride(from: 0, to: sig.count, by: 17)) + [sig.count - 1] {
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
        let h10w4 = LMSType(height: 10)!.signatureLength(LMOTSType(w: 4)!)
        #expect(4 + h10w4 == 2512)
    }
}

