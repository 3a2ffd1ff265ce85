/// SHA-256 and SHA-512 (FIPS 180-4) in pure Swift, for builds without
/// OpenSSL (the microcontroller build of this core). No allocation: the
/// state and the pending block live inline, output goes to the caller's
/// buffer. On Linux the library plugs OpenSSL in through `SHA256Engine`.

/// A streaming hash: `init()`, `update` per chunk, `finalize(into:)` once.
/// Implementations: `SHA256`, `SHA384`, `SHA512` here; OpenSSL's on Linux.
public protocol HashEngine {
    /// Bytes of the digest.
    static var digestLength: Int { get }
    init()
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    /// Writes the digest to `out` (at least `digestLength` bytes); the
    /// engine must not be used afterwards.
    mutating func finalize(into out: UnsafeMutableRawBufferPointer)
}

/// SHA-256, the one primitive HSS/LMS needs.
public protocol SHA256Engine: HashEngine {}

extension SHA256Engine {
    public static var digestLength: Int { 32 }

    @inline(__always)
    public mutating func update(byte: UInt8) {
        withUnsafeBytes(of: byte) { update($0) }
    }

    @inline(__always)
    public mutating func update(bigEndian16 value: UInt16) {
        withUnsafeBytes(of: value.bigEndian) { update($0) }
    }

    @inline(__always)
    public mutating func update(bigEndian32 value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { update($0) }
    }
}

/// The three engines a manifest's digests need, as one type parameter:
/// `SoftwareDigests` on the device, OpenSSL's on Linux.
public protocol DigestEngines {
    associatedtype SHA256: SHA256Engine
    associatedtype SHA384: HashEngine
    associatedtype SHA512: HashEngine
}

/// The pure-Swift engines of this file.
public enum SoftwareDigests: DigestEngines {
    public typealias SHA256 = CoapFirmwareDevice.SHA256
    public typealias SHA384 = CoapFirmwareDevice.SHA384
    public typealias SHA512 = CoapFirmwareDevice.SHA512
}

/// 32 bytes held inline (a digest, an LMS node), usable without allocation.
public struct Digest32: Equatable, Sendable {
    public var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public init() {}

    public init(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= 32)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<32])) }
    }

    @inline(__always)
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: words) { body($0) }
    }

    @inline(__always)
    mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        withUnsafeMutableBytes(of: &words) { body($0) }
    }

    public static func == (a: Digest32, b: Digest32) -> Bool {
        // Constant time: every word is compared whatever the first difference.
        ((a.words.0 ^ b.words.0) | (a.words.1 ^ b.words.1) | (a.words.2 ^ b.words.2) | (a.words.3 ^ b.words.3)) == 0
    }
}

extension SHA256Engine {
    /// Finishes into an inline 32-byte value.
    @inline(__always)
    public mutating func finalizeDigest() -> Digest32 {
        var d = Digest32()
        d.withMutableBytes { finalize(into: $0) }
        return d
    }
}

/// The 64 SHA-256 round constants (a constant array: statically initialised,
/// in flash on the embedded build).
private let sha256K: [UInt32] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]

/// SHA-256 (FIPS 180-4 §6.2).
public struct SHA256: SHA256Engine, Sendable {
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
    /// The pending partial block (64 bytes).
    private var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var pending = 0
    private var length: UInt64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var source = bytes.baseAddress else { return }
        var remaining = bytes.count
        length &+= UInt64(remaining)
        if pending > 0 {
            let take = min(64 - pending, remaining)
            let at = pending
            withUnsafeMutableBytes(of: &block) { $0.baseAddress!.advanced(by: at).copyMemory(from: source, byteCount: take) }
            pending += take
            source += take
            remaining -= take
            guard pending == 64 else { return }
            var copy = block
            withUnsafeBytes(of: &copy) { compress($0.baseAddress!) }
            pending = 0
        }
        while remaining >= 64 {
            compress(source)
            source += 64
            remaining -= 64
        }
        if remaining > 0 {
            withUnsafeMutableBytes(of: &block) { $0.baseAddress!.copyMemory(from: source, byteCount: remaining) }
            pending = remaining
        }
    }

    public mutating func finalize(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= 32)
        let bits = length &* 8
        var pad: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0x80, 0, 0, 0, 0, 0, 0, 0, 0)
        let padLength = pending < 56 ? 56 - pending : 120 - pending
        withUnsafeBytes(of: &pad) { update(UnsafeRawBufferPointer(rebasing: $0[0..<padLength])) }
        withUnsafeBytes(of: bits.bigEndian) { update($0) }
        let words = [h.0, h.1, h.2, h.3, h.4, h.5, h.6, h.7] as InlineArray<8, UInt32>
        for i in 0..<8 { out.storeBytes(of: words[i].bigEndian, toByteOffset: i * 4, as: UInt32.self) }
    }

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 &- n)) }

    private mutating func compress(_ p: UnsafeRawPointer) {
        var w = InlineArray<16, UInt32>(repeating: 0)
        for i in 0..<16 { w[i] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
        var a = h.0, b = h.1, c = h.2, d = h.3, e = h.4, f = h.5, g = h.6, hh = h.7
        for t in 0..<64 {
            let wt: UInt32
            if t < 16 {
                wt = w[t]
            } else {
                let w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15]
                let s0 = Self.rotr(w15, 7) ^ Self.rotr(w15, 18) ^ (w15 >> 3)
                let s1 = Self.rotr(w2, 17) ^ Self.rotr(w2, 19) ^ (w2 >> 10)
                wt = w[t & 15] &+ s0 &+ w[(t - 7) & 15] &+ s1
                w[t & 15] = wt
            }
            let S1 = Self.rotr(e, 6) ^ Self.rotr(e, 11) ^ Self.rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = hh &+ S1 &+ ch &+ sha256K[t] &+ wt
            let S0 = Self.rotr(a, 2) ^ Self.rotr(a, 13) ^ Self.rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = S0 &+ maj
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        h.0 &+= a; h.1 &+= b; h.2 &+= c; h.3 &+= d; h.4 &+= e; h.5 &+= f; h.6 &+= g; h.7 &+= hh
    }
}

/// SHA-512 (FIPS 180-4 §6.4) and SHA-384 (§6.5: other initial values,
/// the digest cut to 48 bytes): one engine, two parameter sets.
public struct SHA512Family<Parameters: SHA512Parameters>: HashEngine, Sendable {
    public static var digestLength: Int { Parameters.digestLength }
    var state = SHA512State(iv: Parameters.initialValues)
    public init() {}
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { state.update(bytes) }
    public mutating func finalize(into out: UnsafeMutableRawBufferPointer) { state.finalize(into: out, length: Parameters.digestLength) }
}

public protocol SHA512Parameters: Sendable {
    static var digestLength: Int { get }
    static var initialValues: InlineArray<8, UInt64> { get }
}

public enum SHA512Values: SHA512Parameters {
    public static var digestLength: Int { 64 }
    public static var initialValues: InlineArray<8, UInt64> { [0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b,
        0xa54ff53a5f1d36f1, 0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179] }
}

public enum SHA384Values: SHA512Parameters {
    public static var digestLength: Int { 48 }
    public static var initialValues: InlineArray<8, UInt64> { [0xcbbb9d5dc1059ed8, 0x629a292a367cd507, 0x9159015a3070dd17,
        0x152fecd8f70e5939, 0x67332667ffc00b31, 0x8eb44a8768581511, 0xdb0c2e0d64f98fa7, 0x47b5481dbefa4fa4] }
}

public typealias SHA512 = SHA512Family<SHA512Values>
public typealias SHA384 = SHA512Family<SHA384Values>

/// The SHA-512 compression and padding both share.
struct SHA512State: Sendable {
    private var h: InlineArray<8, UInt64>
    private var block = InlineArray<128, UInt8>(repeating: 0)
    private var pending = 0
    private var length: UInt64 = 0

    init(iv: InlineArray<8, UInt64>) { h = iv }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var source = bytes.baseAddress else { return }
        var remaining = bytes.count
        length &+= UInt64(remaining)
        while remaining > 0 {
            if pending == 0 && remaining >= 128 {
                compress(source)
                source += 128
                remaining -= 128
                continue
            }
            let take = min(128 - pending, remaining)
            for i in 0..<take { block[pending + i] = source.load(fromByteOffset: i, as: UInt8.self) }
            pending += take
            source += take
            remaining -= take
            if pending == 128 {
                var copy = block
                withUnsafeBytes(of: &copy) { compress($0.baseAddress!) }
                pending = 0
            }
        }
    }

    /// Writes the first `outputLength` bytes of the digest to `out`.
    mutating func finalize(into out: UnsafeMutableRawBufferPointer, length outputLength: Int) {
        precondition(out.count >= outputLength)
        let bits = length &* 8
        var pad = InlineArray<128, UInt8>(repeating: 0)
        pad[0] = 0x80
        let padLength = pending < 112 ? 112 - pending : 240 - pending
        var first = padLength
        withUnsafeBytes(of: &pad) { raw in
            // padLength may exceed one 128-byte pad buffer only by its zeros.
            update(UnsafeRawBufferPointer(rebasing: raw[0..<min(first, 128)]))
        }
        first -= min(first, 128)
        if first > 0 {
            var zeros = InlineArray<128, UInt8>(repeating: 0)
            withUnsafeBytes(of: &zeros) { update(UnsafeRawBufferPointer(rebasing: $0[0..<first])) }
        }
        withUnsafeBytes(of: UInt64(0)) { update($0) }  // high 64 bits of the 128-bit length
        withUnsafeBytes(of: bits.bigEndian) { update($0) }
        for i in 0..<(outputLength / 8) { out.storeBytes(of: h[i].bigEndian, toByteOffset: i * 8, as: UInt64.self) }
    }

    @inline(__always)
    private static func rotr(_ x: UInt64, _ n: UInt64) -> UInt64 { (x >> n) | (x << (64 &- n)) }

    private mutating func compress(_ p: UnsafeRawPointer) {
        var w = InlineArray<16, UInt64>(repeating: 0)
        for i in 0..<16 { w[i] = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
        var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
        for t in 0..<80 {
            let wt: UInt64
            if t < 16 {
                wt = w[t]
            } else {
                let w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15]
                let s0 = Self.rotr(w15, 1) ^ Self.rotr(w15, 8) ^ (w15 >> 7)
                let s1 = Self.rotr(w2, 19) ^ Self.rotr(w2, 61) ^ (w2 >> 6)
                wt = w[t & 15] &+ s0 &+ w[(t - 7) & 15] &+ s1
                w[t & 15] = wt
            }
            let S1 = Self.rotr(e, 14) ^ Self.rotr(e, 18) ^ Self.rotr(e, 41)
            let ch = (e & f) ^ (~e & g)
            let t1 = hh &+ S1 &+ ch &+ sha512K[t] &+ wt
            let S0 = Self.rotr(a, 28) ^ Self.rotr(a, 34) ^ Self.rotr(a, 39)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = S0 &+ maj
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
    }
}

/// The 80 SHA-512 round constants.
private let sha512K: [UInt64] = [
    0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc, 0x3956c25bf348b538,
    0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118, 0xd807aa98a3030242, 0x12835b0145706fbe,
    0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2, 0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235,
    0xc19bf174cf692694, 0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
    0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5, 0x983e5152ee66dfab,
    0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4, 0xc6e00bf33da88fc2, 0xd5a79147930aa725,
    0x06ca6351e003826f, 0x142929670a0e6e70, 0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df, 0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
    0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30, 0xd192e819d6ef5218,
    0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8, 0x19a4c116b8d2d0c8, 0x1e376c085141ab53,
    0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8, 0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3, 0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
    0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b, 0xca273eceea26619c,
    0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178, 0x06f067aa72176fba, 0x0a637dc5a2c898a6,
    0x113f9804bef90dae, 0x1b710b35131c471b, 0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c, 0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
]
