/// HSS/LMS hash-based signature verification (RFC 8554), COSE alg -46
/// (RFC 8778): LMS SHA-256 M32 H5..H25, LM-OTS SHA-256 N32 W1/W2/W4/W8,
/// HSS with 1..8 levels.
///
/// Works in place over the caller's bytes: no allocation, no copy of the
/// signature; its working memory is a few SHA-256 states and digests on
/// the stack, whatever the tree height. Generic over the SHA-256 engine so a
/// device uses `SHA256` and Linux plugs in OpenSSL's.

/// Why a signature was refused. Every case means "invalid"; the detail is
/// for logs and tests.
public enum HSSFailure: UInt8, Error, Sendable, Equatable {
    case truncated = 1
    case trailingBytes
    /// The public key's level count is outside 1..8 or differs from the signature's.
    case levelCount
    case unknownLMSType
    case unknownOTSType
    /// A signature's LMS or LM-OTS type differs from its public key's.
    case typeMismatch
    /// q is not below 2^h.
    case leafOutOfRange
    /// The computed root differs from the public key's.
    case mismatch

    public var description: StaticString {
        switch self {
        case .truncated: return "signature or public key too short"
        case .trailingBytes: return "bytes after the signature"
        case .levelCount: return "HSS level count out of range or different from the public key's"
        case .unknownLMSType: return "unknown LMS type"
        case .unknownOTSType: return "unknown LM-OTS type"
        case .typeMismatch: return "LMS or LM-OTS type differs from the public key's"
        case .leafOutOfRange: return "leaf index q out of range"
        case .mismatch: return "signature does not verify"
        }
    }
}

/// LMS parameter sets with SHA-256 and m = 32 (RFC 8554 §5.1, Table 2).
public struct LMSType: Sendable, Equatable {
    public let code: UInt32
    public let height: Int

    public init?(code: UInt32) {
        guard code >= 5 && code <= 9 else { return nil }
        self.code = code
        self.height = 5 * (Int(code) - 4)
    }

    public init?(height: Int) {
        guard height % 5 == 0, let t = LMSType(code: UInt32(height / 5 + 4)) else { return nil }
        self = t
    }

    /// Bytes of an LMS signature with this tree and `ots`.
    public func signatureLength(_ ots: LMOTSType) -> Int { 4 + ots.signatureLength + 4 + height * 32 }
}

/// LM-OTS parameter sets with SHA-256 and n = 32 (RFC 8554 §4.1, Table 1).
public struct LMOTSType: Sendable, Equatable {
    public let code: UInt32
    /// Winternitz parameter: bits per digit.
    public let w: Int
    /// Number of n-byte chains.
    public let p: Int
    /// Left shift of the checksum.
    let ls: Int

    public init?(code: UInt32) {
        switch code {
        case 1: (w, p, ls) = (1, 265, 7)
        case 2: (w, p, ls) = (2, 133, 6)
        case 3: (w, p, ls) = (4, 67, 4)
        case 4: (w, p, ls) = (8, 34, 0)
        default: return nil
        }
        self.code = code
    }

    public init?(w: Int) {
        switch w {
        case 1: self.init(code: 1)
        case 2: self.init(code: 2)
        case 4: self.init(code: 3)
        case 8: self.init(code: 4)
        default: return nil
        }
    }

    /// Bytes of an LM-OTS signature: type, C, p chains.
    public var signatureLength: Int { 4 + 32 + p * 32 }
}

/// Domain separators (RFC 8554 §3.3 / §4.3).
public enum LMSDomain {
    public static let pblc: UInt16 = 0x8080
    static let mesg: UInt16 = 0x8181
    public static let leaf: UInt16 = 0x8282
    static let intr: UInt16 = 0x8383
}

/// The hash steps of RFC 8554 that both the verifier (here) and the signer
/// (`LMSTree` in CoapFirmware) take, so they cannot disagree.
public enum LMSHash {
    /// `steps` Winternitz chain iterations of chain i at leaf q (§4.4):
    /// tmp = H(I ‖ u32(q) ‖ u16(i) ‖ u8(j) ‖ tmp) for j in steps.
    @inline(__always)
    public static func chain<H: SHA256Engine>(
        _: H.Type, identifier: UnsafeRawBufferPointer, leaf q: UInt32, chain i: Int, from start: Digest32, steps: Range<Int>
    ) -> Digest32 {
        var tmp = start
        for j in steps {
            var h = H()
            h.update(identifier)
            h.update(bigEndian32: q)
            h.update(bigEndian16: UInt16(i))
            h.update(byte: UInt8(j))
            tmp.withBytes { h.update($0) }
            tmp = h.finalizeDigest()
        }
        return tmp
    }

    /// The message digest Q = H(I ‖ u32(q) ‖ u16(D_MESG) ‖ C ‖ message)
    /// (Algorithm 3 step 4, Algorithm 4b step 3).
    public static func message<H: SHA256Engine>(
        _: H.Type, identifier: UnsafeRawBufferPointer, leaf q: UInt32, randomizer c: UnsafeRawBufferPointer,
        message feed: (inout H) -> Void
    ) -> Digest32 {
        hash(H.self, identifier, q, LMSDomain.mesg) { h in
            h.update(c)
            feed(&h)
        }
    }

    /// A leaf node: H(I ‖ u32(r) ‖ u16(D_LEAF) ‖ K) (§5.3).
    public static func leaf<H: SHA256Engine>(
        _: H.Type, identifier: UnsafeRawBufferPointer, node r: UInt32, otsPublicKey k: Digest32
    ) -> Digest32 {
        hash(H.self, identifier, r, LMSDomain.leaf) { h in k.withBytes { h.update($0) } }
    }

    /// An interior node: H(I ‖ u32(r) ‖ u16(D_INTR) ‖ left ‖ right) (§5.3).
    public static func interior<H: SHA256Engine>(
        _: H.Type, identifier: UnsafeRawBufferPointer, node r: UInt32, left: UnsafeRawBufferPointer, right: UnsafeRawBufferPointer
    ) -> Digest32 {
        hash(H.self, identifier, r, LMSDomain.intr) { h in
            h.update(left)
            h.update(right)
        }
    }

    /// H(I ‖ u32(r) ‖ u16(domain) ‖ what `rest` adds): the shape of every hash above.
    @inline(__always)
    static func hash<H: SHA256Engine>(_: H.Type, _ identifier: UnsafeRawBufferPointer, _ r: UInt32, _ domain: UInt16,
                                      _ rest: (inout H) -> Void) -> Digest32 {
        var h = H()
        h.update(identifier)
        h.update(bigEndian32: r)
        h.update(bigEndian16: domain)
        rest(&h)
        return h.finalizeDigest()
    }
}

/// Big-endian reads over a byte view, bounds-checked, no copies.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func u32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }

    /// The next `count` bytes, as a view into the same buffer.
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }
}

/// The Winternitz digit `i` of `s` (RFC 8554 §3.1.3), where `s` is Q ‖ Cksm(Q).
@inline(__always)
public func lmotsCoef(_ q: Digest32, _ checksum: UInt16, _ i: Int, _ w: Int) -> Int {
    let byteIndex = (i * w) >> 3
    let byte: UInt8
    if byteIndex < 32 {
        byte = q.withBytes { $0[byteIndex] }
    } else {
        byte = byteIndex == 32 ? UInt8(checksum >> 8) : UInt8(checksum & 0xff)
    }
    let shift = 8 - (w * (i % (8 / w)) + w)
    return Int((byte >> UInt8(shift)) & UInt8((1 << w) - 1))
}

/// Cksm(Q) (RFC 8554 §4.4), already shifted left by ls.
@inline(__always)
public func lmotsChecksum(_ q: Digest32, _ ots: LMOTSType) -> UInt16 {
    var sum = 0
    let digits = 256 / ots.w
    let maxDigit = (1 << ots.w) - 1
    for i in 0..<digits { sum += maxDigit - lmotsCoef(q, 0, i, ots.w) }
    return UInt16(truncatingIfNeeded: sum << ots.ls)
}

/// One LMS public key in RFC 8554 byte form (§5.3): type, otstype, I, T[1].
public struct LMSPublicKeyView {
    public let type: LMSType
    public let ots: LMOTSType
    public let identifier: UnsafeRawBufferPointer  // I, 16 bytes
    public let root: Digest32                        // T[1]
    /// The key's bytes, as they are signed by the level above.
    public let bytes: UnsafeRawBufferPointer

    public static let length = 4 + 4 + 16 + 32

    /// Reads one key at the cursor.
    static func read(_ cursor: inout ByteCursor) -> Result<LMSPublicKeyView, HSSFailure> {
        let start = cursor.offset
        guard let typeCode = cursor.u32(), let otsCode = cursor.u32(),
              let identifier = cursor.take(16), let root = cursor.take(32) else { return .failure(.truncated) }
        guard let type = LMSType(code: typeCode) else { return .failure(.unknownLMSType) }
        guard let ots = LMOTSType(code: otsCode) else { return .failure(.unknownOTSType) }
        let bytes = UnsafeRawBufferPointer(rebasing: cursor.bytes[start..<cursor.offset])
        return .success(LMSPublicKeyView(type: type, ots: ots, identifier: identifier, root: Digest32(root), bytes: bytes))
    }
}

enum LMS {
    /// Verifies the LMS signature at the cursor (RFC 8554 Algorithm 6a)
    /// over the message `feed` writes, consuming exactly the signature's bytes.
    static func verify<H: SHA256Engine>(
        _ engine: H.Type, key: LMSPublicKeyView, signature cursor: inout ByteCursor,
        message feed: (inout H) -> Void
    ) -> HSSFailure? {
        guard let q = cursor.u32(), let otsCode = cursor.u32() else { return .truncated }
        guard let ots = LMOTSType(code: otsCode) else { return .unknownOTSType }
        guard ots == key.ots else { return .typeMismatch }
        guard let c = cursor.take(32) else { return .truncated }
        let digest = LMSHash.message(H.self, identifier: key.identifier, leaf: q, randomizer: c, message: feed)
        return verify(engine, key: key, ots: ots, q: q, messageDigest: digest, signature: &cursor)
    }

    /// The rest of Algorithm 6a once Q is known; not generic in the
    /// message, so the device carries one copy of it.
    static func verify<H: SHA256Engine>(
        _: H.Type, key: LMSPublicKeyView, ots: LMOTSType, q: UInt32, messageDigest digest: Digest32,
        signature cursor: inout ByteCursor
    ) -> HSSFailure? {
        guard let y = cursor.take(ots.p * 32) else { return .truncated }
        guard let typeCode = cursor.u32() else { return .truncated }
        guard let type = LMSType(code: typeCode) else { return .unknownLMSType }
        guard type == key.type else { return .typeMismatch }
        guard let path = cursor.take(type.height * 32) else { return .truncated }
        guard UInt64(q) < (UInt64(1) << UInt64(type.height)) else { return .leafOutOfRange }

        let checksum = lmotsChecksum(digest, ots)
        let maxDigit = (1 << ots.w) - 1

        var kc = H()
        kc.update(key.identifier)
        kc.update(bigEndian32: q)
        kc.update(bigEndian16: LMSDomain.pblc)
        for i in 0..<ots.p {
            let a = lmotsCoef(digest, checksum, i, ots.w)
            let start = Digest32(UnsafeRawBufferPointer(rebasing: y[(i * 32)..<(i * 32 + 32)]))
            LMSHash.chain(H.self, identifier: key.identifier, leaf: q, chain: i, from: start, steps: a..<maxDigit)
                .withBytes { kc.update($0) }
        }

        // Algorithm 6a, step 4: climb from the leaf to the root.
        var nodeNumber = (UInt32(1) << UInt32(type.height)) + q
        var node = LMSHash.leaf(H.self, identifier: key.identifier, node: nodeNumber, otsPublicKey: kc.finalizeDigest())
        var level = 0
        while nodeNumber > 1 {
            let sibling = UnsafeRawBufferPointer(rebasing: path[(level * 32)..<(level * 32 + 32)])
            let current = node
            node = current.withBytes { mine in
                nodeNumber & 1 == 1
                    ? LMSHash.interior(H.self, identifier: key.identifier, node: nodeNumber / 2, left: sibling, right: mine)
                    : LMSHash.interior(H.self, identifier: key.identifier, node: nodeNumber / 2, left: mine, right: sibling)
            }
            nodeNumber /= 2
            level += 1
        }
        return node == key.root ? nil : .mismatch
    }
}

public enum HSS {
    public static let maxLevels = 8
    /// COSE algorithm identifier (RFC 8778).
    static let coseAlgorithm: Int64 = -46

    /// Reads an HSS public key (RFC 8554 §6.1: L, then the top LMS key),
    /// requiring exactly its bytes.
    public static func readPublicKey(_ bytes: UnsafeRawBufferPointer) -> Result<(levels: Int, top: LMSPublicKeyView), HSSFailure> {
        var cursor = ByteCursor(bytes)
        guard let levels = cursor.u32() else { return .failure(.truncated) }
        guard levels >= 1 && levels <= UInt32(maxLevels) else { return .failure(.levelCount) }
        switch LMSPublicKeyView.read(&cursor) {
        case .failure(let f): return .failure(f)
        case .success(let top):
            guard cursor.remaining == 0 else { return .failure(.trailingBytes) }
            return .success((Int(levels), top))
        }
    }

    /// Verifies an HSS signature (RFC 8554 Algorithm 8/6b) over the message
    /// `feed` writes. Returns nil when valid.
    public static func verify<H: SHA256Engine>(
        _ engine: H.Type, publicKey: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer,
        message feed: (inout H) -> Void
    ) -> HSSFailure? {
        let levels: Int
        var key: LMSPublicKeyView
        switch readPublicKey(publicKey) {
        case .failure(let f): return f
        case .success(let k): (levels, key) = (k.levels, k.top)
        }
        var cursor = ByteCursor(signature)
        guard let nspk = cursor.u32() else { return .truncated }
        guard UInt64(nspk) + 1 == UInt64(levels) else { return .levelCount }
        for _ in 0..<Int(nspk) {
            // The signed public key follows the signature that signs it, so
            // find its bytes first: skip over the LMS signature.
            var probe = cursor
            guard probe.u32() != nil, let otsCode = probe.u32() else { return .truncated }
            guard let ots = LMOTSType(code: otsCode) else { return .unknownOTSType }
            guard probe.take(32 + ots.p * 32) != nil, let typeCode = probe.u32() else { return .truncated }
            guard let type = LMSType(code: typeCode) else { return .unknownLMSType }
            guard probe.take(type.height * 32) != nil else { return .truncated }
            let next: LMSPublicKeyView
            switch LMSPublicKeyView.read(&probe) {
            case .failure(let f): return f
            case .success(let k): next = k
            }
            if let failure = LMS.verify(engine, key: key, signature: &cursor, message: { $0.update(next.bytes) }) {
                return failure
            }
            cursor = probe
            key = next
        }
        if let failure = LMS.verify(engine, key: key, signature: &cursor, message: feed) { return failure }
        return cursor.remaining == 0 ? nil : .trailingBytes
    }
}
