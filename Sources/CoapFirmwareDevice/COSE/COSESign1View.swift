/// A COSE_Sign1 envelope (RFC 9052 §4.2) as SPEC §3 profiles it, read in
/// place: tag 18, [protected bstr, unprotected map, payload bstr,
/// signature bstr], `alg` (label 1) in the protected header, `kid` (4) in
/// either. Ranges point into the caller's buffer. Both the device and the
/// Linux verifier parse envelopes with this one reader.
public struct COSESign1View {
    public static let tag: UInt64 = 18

    /// Which part a refusal is about; `alg` and `crit` are signature
    /// refusals (bad-signature), the others malformed envelopes (bad-manifest).
    public enum Part: UInt8, Sendable {
        case envelope, protectedHeader, unprotectedHeader, payload, signature, kid, alg, crit

        /// The field name errors carry (as the Linux verifier reports them).
        public var fieldName: StaticString {
            switch self {
            case .envelope: return "COSE_Sign1"
            case .protectedHeader: return "COSE_Sign1.protected"
            case .unprotectedHeader: return "COSE_Sign1.unprotected"
            case .payload: return "COSE_Sign1.payload"
            case .signature: return "COSE_Sign1.signature"
            case .kid: return "COSE_Sign1.kid"
            case .alg: return "alg"
            case .crit: return "crit"
            }
        }

        public var isSignatureError: Bool { self == .alg || self == .crit }
    }

    public struct Failure: Error, Sendable, Equatable {
        public let part: Part
        public let reason: StaticString
        /// Set for a CBOR-level fault.
        public let cbor: CBORReader.Failure?

        init(_ part: Part, _ reason: StaticString, cbor: CBORReader.Failure? = nil) {
            self.part = part
            self.reason = reason
            self.cbor = cbor
        }

        public static func == (a: Failure, b: Failure) -> Bool { a.part == b.part && a.cbor == b.cbor }
    }

    public let protectedHeader: Range<Int>
    public let payload: Range<Int>
    public let signature: Range<Int>
    public let kid: Range<Int>?
    /// The COSE algorithm id (the caller decides whether it supports it).
    public let algorithm: Int64

    /// Parses the envelope that fills `bytes` (or `range` of it). With
    /// `detachedPayload` the payload field must be nil and the payload is
    /// those bytes of the buffer (RFC 9052 §2: SUIT signs its digest so).
    public static func parse(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil,
                             detachedPayload: Range<Int>? = nil) -> Result<COSESign1View, Failure> {
        var r = CBORReader(bytes, range: range)
        func item(_ part: Part) -> Result<CBORReader.Item, Failure> {
            r.next().mapError { Failure(part, $0.description, cbor: $0) }
        }
        // Check the whole envelope is well-formed first, as one item.
        var whole = CBORReader(bytes, range: range)
        if let f = whole.skip() { return .failure(Failure(.envelope, f.description, cbor: f)) }
        guard whole.isAtEnd else { return .failure(Failure(.envelope, CBORReader.Failure.trailingBytes.description, cbor: .trailingBytes)) }

        guard case .success(.tag(tag)) = item(.envelope) else {
            return .failure(Failure(.envelope, "expected CBOR tag 18 (COSE_Sign1)"))
        }
        guard case .success(.array(4)) = item(.envelope) else {
            return .failure(Failure(.envelope, "expected an array of 4 elements"))
        }
        guard case .success(.bytes(let protectedHeader)) = item(.protectedHeader) else {
            return .failure(Failure(.protectedHeader, "expected a byte string"))
        }
        let unprotectedStart = r.offset
        guard case .success(.map(let unprotectedCount)) = item(.unprotectedHeader) else {
            return .failure(Failure(.unprotectedHeader, "expected a map"))
        }
        for _ in 0..<(2 * unprotectedCount) {
            if let f = r.skip() { return .failure(Failure(.unprotectedHeader, f.description, cbor: f)) }
        }
        let unprotected = unprotectedStart..<r.offset
        let payload: Range<Int>
        if let detachedPayload {
            guard case .success(.null) = item(.payload) else {
                return .failure(Failure(.payload, "expected a detached payload (nil)"))
            }
            payload = detachedPayload
        } else {
            guard case .success(.bytes(let attached)) = item(.payload) else {
                return .failure(Failure(.payload, "expected an attached payload byte string"))
            }
            payload = attached
        }
        guard case .success(.bytes(let signature)) = item(.signature) else {
            return .failure(Failure(.signature, "expected a byte string"))
        }

        // Header labels: 1 alg, 2 crit, 4 kid (RFC 9052 §3.1).
        var algorithm: Int64?
        var kid: Range<Int>?
        if !protectedHeader.isEmpty {
            var h = CBORReader(bytes, range: protectedHeader)
            var check = h
            guard check.skip() == nil, check.isAtEnd, case .success(.map(let count)) = h.next() else {
                return .failure(Failure(.protectedHeader, "not a CBOR map"))
            }
            switch scanHeader(&h, count: count, bytes: bytes) {
            case .failure(let f): return .failure(f)
            case .success(let found):
                if found.crit { return .failure(Failure(.crit, "critical header parameters are not supported")) }
                algorithm = found.alg
                guard !found.algNotInteger else { return .failure(Failure(.alg, "unsupported algorithm")) }
                kid = found.kid
                if found.kidNotBytes { return .failure(Failure(.kid, "expected a byte string")) }
            }
        }
        guard let algorithm else { return .failure(Failure(.alg, "no alg in the protected header")) }
        var u = CBORReader(bytes, range: unprotected)
        guard case .success(.map(let count)) = u.next() else { return .failure(Failure(.unprotectedHeader, "expected a map")) }
        switch scanHeader(&u, count: count, bytes: bytes) {
        case .failure(let f): return .failure(f)
        case .success(let found):
            if found.kidNotBytes { return .failure(Failure(.kid, "expected a byte string")) }
            if kid == nil { kid = found.kid }
        }
        return .success(COSESign1View(protectedHeader: protectedHeader, payload: payload, signature: signature,
                                      kid: kid, algorithm: algorithm))
    }

    struct HeaderScan {
        var alg: Int64?
        var algNotInteger = false
        var kid: Range<Int>?
        var kidNotBytes = false
        var crit = false
    }

    /// Reads a header map's labels 1, 2 and 4; refuses a repeated label.
    static func scanHeader(_ r: inout CBORReader, count: Int, bytes: UnsafeRawBufferPointer) -> Result<HeaderScan, Failure> {
        var found = HeaderScan()
        var seen: UInt8 = 0
        for _ in 0..<count {
            guard case .success(let key) = r.next() else { return .failure(Failure(.envelope, "bad header label")) }
            var label: Int64?
            switch key {
            case .unsigned(let n) where n <= 64: label = Int64(n)
            case .unsigned, .negative: label = nil
            case .text: label = nil
            default: return .failure(Failure(.envelope, "header labels must be integers or text"))
            }
            let valueStart = r.offset
            if let label, label == 1 || label == 2 || label == 4 {
                let bit = UInt8(1) << UInt8(label)
                guard seen & bit == 0 else { return .failure(Failure(.envelope, "a header label is repeated")) }
                seen |= bit
                var v = r
                switch (label, v.next()) {
                case (1, .success(.unsigned(let n))) where n <= UInt64(Int64.max): found.alg = Int64(n)
                case (1, .success(.negative(let n))) where n < UInt64(Int64.max): found.alg = -1 - Int64(n)
                case (1, _): found.alg = 0; found.algNotInteger = true
                case (2, _): found.crit = true
                case (4, .success(.bytes(let range))): found.kid = range
                case (4, _): found.kidNotBytes = true
                default: break
                }
            }
            r = CBORReader(bytes, range: valueStart..<r.end)
            if let f = r.skip() { return .failure(Failure(.envelope, f.description, cbor: f)) }
        }
        return .success(found)
    }

    /// Streams Sig_structure = ["Signature1", protected, h'', payload]
    /// (RFC 9052 §4.4) in deterministic CBOR, without building it.
    public func writeToBeSigned(_ bytes: UnsafeRawBufferPointer, into sink: (UnsafeRawBufferPointer) -> Void) {
        Self.writeToBeSigned(protectedHeader: UnsafeRawBufferPointer(rebasing: bytes[protectedHeader]),
                             payload: UnsafeRawBufferPointer(rebasing: bytes[payload]), into: sink)
    }

    public static func writeToBeSigned(protectedHeader: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                                       into sink: (UnsafeRawBufferPointer) -> Void) {
        let context: StaticString = "Signature1"
        CBORWriter.head(.array, 4, into: sink)
        CBORWriter.string(.text, UnsafeRawBufferPointer(start: context.utf8Start, count: context.utf8CodeUnitCount), into: sink)
        CBORWriter.string(.bytes, protectedHeader, into: sink)
        CBORWriter.head(.bytes, 0, into: sink)  // external_aad: empty
        CBORWriter.string(.bytes, payload, into: sink)
    }
}
