import Testing
import TestSupport
@testable import CoapFirmwareDevice

/// The one COSE_Sign1 reader (device and host): the vectors' envelopes,
/// hand-made header faults, and the Sig_structure it streams.
@Suite struct COSESign1ViewTests {
    func parse(_ bytes: [UInt8]) -> Result<COSESign1View, COSESign1View.Failure> {
        bytes.withUnsafeBytes { COSESign1View.parse($0) }
    }

    func envelope(protected: TestCBOR, unprotected: TestCBOR = .map([]), tag: UInt64 = 18) -> [UInt8] {
        TestCBOR.tag(tag, .array([.bytes(protected.encoded), unprotected, .bytes([0xa0]), .bytes([1, 2, 3])])).encoded
    }

    @Test(arguments: try ManifestVector.all().filter { $0.format == "cbor" })
    func vectors(_ v: ManifestVector) throws {
        switch parse(try readVector(v.file)) {
        case .success(let view):
            #expect(v.field?.hasPrefix("COSE_Sign1") != true, "\(v.name) should not parse")
            if v.expect == "ok" { #expect(view.kid?.count == 8 && [-7, -8, -9, -19].contains(view.algorithm)) }
        case .failure(let f):
            #expect(v.expect != "ok", "\(v.name) refused: \(f.part)")
        }
    }

    @Test func headerRules() {
        let kid = TestCBOR.map([(.unsigned(4), .bytes([1, 2, 3, 4, 5, 6, 7, 8]))])
        guard case .success(let ok) = parse(envelope(protected: .map([(.unsigned(1), .int(-7))]), unprotected: kid)) else {
            Issue.record("a plain envelope must parse"); return
        }
        #expect(ok.algorithm == -7 && ok.kid?.count == 8)
        #expect(parse(envelope(protected: .map([]))).failure?.part == .alg, "no alg")
        #expect(parse(envelope(protected: .map([(.unsigned(1), .text("ES256"))]))).failure?.part == .alg)
        #expect(parse(envelope(protected: .map([(.unsigned(1), .int(-7)), (.unsigned(2), .array([.unsigned(99)]))]))).failure?.part == .crit)
        #expect(parse(envelope(protected: .map([(.unsigned(1), .int(-7)), (.unsigned(1), .int(-8))]))).failure?.part == .envelope, "repeated label")
        #expect(parse(envelope(protected: .map([(.unsigned(1), .int(-7))]), unprotected: .map([(.unsigned(4), .text("k"))]))).failure?.part == .kid)
        #expect(parse(envelope(protected: .map([(.unsigned(1), .int(-7))]), tag: 98)).failure?.part == .envelope)
        #expect(parse(envelope(protected: .map([(.unsigned(1), .int(-7))])) + [0]).failure?.cbor == .trailingBytes)
    }

    /// Sig_structure = ["Signature1", protected, h'', payload] (RFC 9052 §4.4).
    @Test func toBeSigned() {
        let protected: [UInt8] = [0xa1, 0x01, 0x26], payload: [UInt8] = Array(repeating: 0x55, count: 30)
        var out: [UInt8] = []
        protected.withUnsafeBytes { p in payload.withUnsafeBytes { m in
            COSESign1View.writeToBeSigned(protectedHeader: p, payload: m) { out.append(contentsOf: $0) }
        } }
        let expected = TestCBOR.array([.text("Signature1"), .bytes(protected), .bytes([]), .bytes(payload)]).encoded
        #expect(out == expected)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
