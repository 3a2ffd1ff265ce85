/// Reading helpers shared by the manifest rules: one map walk that refuses
/// repeated keys, and typed reads of one item.
enum MapScan {
    /// Walks a map's `count` entries at `r`: refuses a repeated key (by its
    /// encoded bytes, RFC 8949 §5.6), and hands `store` the value range of
    /// each integer key in `keys`. Other keys are skipped (SPEC §2: unknown
    /// keys are ignored).
    static func entries(_ b: UnsafeRawBufferPointer, _ r: inout CBORReader, count: Int, path: FieldPath,
                        keys: ClosedRange<Int64>, store: (Int64, Range<Int>) -> Void) -> ManifestView.Failure? {
        let firstKey = r.offset
        for _ in 0..<count {
            let keyStart = r.offset
            var k = r
            if let f = r.skip() { return fail(path, f.description) }
            let keyRange = keyStart..<r.offset
            var scan = CBORReader(b, range: firstKey..<keyStart)
            while !scan.isAtEnd {
                let earlier = scan.offset
                _ = scan.skip()
                let earlierRange = earlier..<scan.offset
                _ = scan.skip()  // its value
                if bytesEqual(b, earlierRange, UnsafeRawBufferPointer(rebasing: b[keyRange])) {
                    var p = path
                    if case .success(let item) = k.next(), let key = item.int64, keys.contains(key) {
                        p.setKey(key)
                    } else {
                        p.setUnknownKey(first(b, keyRange).int64Value)
                        p.unknownKeyRange = keyRange
                    }
                    return fail(p, "map key given twice")
                }
            }
            let valueStart = r.offset
            if let f = r.skip() { return fail(path, f.description) }
            if case .success(let item) = k.next(), let key = item.int64, keys.contains(key) {
                store(key, valueStart..<r.offset)
            }
        }
        return nil
    }

    // Out of line: a refusal is built at dozens of sites, and flash is the budget.
    @inline(never)
    static func fail(_ path: FieldPath, _ reason: StaticString) -> ManifestView.Failure {
        ManifestView.Failure(path: path, reason: reason)
    }

    @inline(never)
    static func fail(_ field: ManifestField, _ reason: StaticString) -> ManifestView.Failure {
        ManifestView.Failure(path: FieldPath(field: field), reason: reason)
    }

    static func first(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Result<CBORReader.Item, CBORReader.Failure> {
        var r = CBORReader(b, range: range)
        return r.next()
    }

    /// The content range of a text string item.
    static func text(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int>? {
        if case .success(.text(let t)) = first(b, range) { return t }
        return nil
    }

    static func unsigned(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64? {
        if case .success(.unsigned(let n)) = first(b, range) { return n }
        return nil
    }

    struct Why: Error { let reason: StaticString }

    /// A URI reference: non-empty text without spaces or control characters
    /// (RFC 3986 §2), and without a fragment, which a CoAP request cannot
    /// carry (RFC 7252 §6.4 step 7).
    static func location(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Result<Range<Int>, Why> {
        guard let t = text(b, range) else { return .failure(Why(reason: "expected text string")) }
        guard !t.isEmpty else { return .failure(Why(reason: "must not be empty")) }
        for i in t where b[i] <= 0x20 || b[i] == 0x7f { return .failure(Why(reason: "not a URI reference")) }
        for i in t where b[i] == 0x23 { return .failure(Why(reason: "a fragment cannot be requested over CoAP")) }
        return .success(t)
    }
}

extension Result where Success == CBORReader.Item {
    var int64Value: Int64? {
        if case .success(let item) = self { return item.int64 }
        return nil
    }
}
