#if canImport(Glibc)
import Glibc
#endif
internal import CCrypto
import CoapFirmwareCore
import CoapFirmwareDevice

/// HSS/LMS signing (RFC 8554) with a stateful, file-backed private key.
///
/// Private key file (our format; RFC 8554 defines none), big-endian:
///
///     0   "CFWHSSK1"                      magic, 8 bytes
///     8   u32 L                           levels, 1...8
///     12  L × (u32 lmsType, u32 otsType)  per level, top first
///     ..  I (16) ‖ SEED (32)              the top tree's identifier and seed
///     ..  HSS public key (4 + 56)         cached: computing it costs a tree
///     end-8  u64 next                     the next unused signature index
///
/// Every private value is derived from the top SEED (RFC 8554 Appendix A,
/// and below for the lower levels), so the file never grows and holds one
/// counter. `reserve()` takes an exclusive `flock` on the file, reads the
/// counter, writes counter + 1 and fsyncs before the index is used: two
/// `publish` runs can never sign with the same leaf, and a crash after the
/// reservation only wastes it.
public final class HSSPrivateKey {
    static let magic: [UInt8] = Array("CFWHSSK1".utf8)

    public let path: String
    public let levels: [(type: LMSType, ots: LMOTSType)]
    let identifier: [UInt8]
    let seed: [UInt8]
    /// The RFC 8554 HSS public key bytes.
    let publicKeyBytes: [UInt8]
    /// The counter as read when the file was opened (reserve() rereads it).
    private(set) var nextIndex: UInt64

    /// Signatures the key can make in all: 2^(sum of heights).
    public var capacity: UInt64 { UInt64(1) << UInt64(levels.reduce(0) { $0 + $1.type.height }) }
    public var remaining: UInt64 { capacity > nextIndex ? capacity - nextIndex : 0 }

    static func fileLength(levels: Int) -> Int { 12 + 8 * levels + 48 + 4 + LMSPublicKeyView.length + 8 }

    /// Largest total tree height `generate` accepts for one level: a level
    /// costs 2^h one-time keys per signature; H25 would take days here.
    public static let maxGeneratedHeight = 15

    /// Makes a fresh key and writes it to `path` (0600, atomically).
    public static func generate(levels parameters: [(LMSType, LMOTSType)], path: String) throws(KeyError) -> HSSPrivateKey {
        guard (1...HSS.maxLevels).contains(parameters.count) else {
            throw .unsupported("HSS needs 1 to \(HSS.maxLevels) levels, not \(parameters.count)")
        }
        for (type, _) in parameters where type.height > maxGeneratedHeight {
            throw .unsupported("tree height \(type.height) is too large to generate here (at most \(maxGeneratedHeight)); use more levels of a smaller height")
        }
        let identifier = try randomBytes(16)
        let seed = try randomBytes(32)
        let top = LMSTree(type: parameters[0].0, ots: parameters[0].1, identifier: identifier, seed: seed)
        var publicKey = bigEndian(UInt32(parameters.count))
        publicKey += top.publicKey
        var file = magic + bigEndian(UInt32(parameters.count))
        for (type, ots) in parameters { file += bigEndian(type.code) + bigEndian(ots.code) }
        file += identifier + seed + publicKey + bigEndian(UInt64(0))
        do {
            try FileSystem.atomicWrite(path, file, mode: 0o600)
        } catch {
            throw .unreadable("\(path): \(error.description)")
        }
        return try HSSPrivateKey(path: path)
    }

    /// Whether `bytes` start like a key file of ours.
    static func looksLikeKey(_ bytes: [UInt8]) -> Bool { bytes.starts(with: magic) }

    /// Opens a key file (read only until `reserve()`).
    public init(path: String) throws(KeyError) {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(path, limit: 4096)
        } catch {
            throw .unreadable("\(path): \(error)")
        }
        guard bytes.starts(with: Self.magic), bytes.count >= 12 else {
            throw .unreadable("\(path): not an HSS-LMS private key (no CFWHSSK1 header)")
        }
        let count = Int(readBigEndian32(bytes, 8))
        guard (1...HSS.maxLevels).contains(count), bytes.count == Self.fileLength(levels: count) else {
            throw .unreadable("\(path): HSS-LMS private key of the wrong length or level count")
        }
        var levels: [(type: LMSType, ots: LMOTSType)] = []
        for level in 0..<count {
            guard let type = LMSType(code: readBigEndian32(bytes, 12 + 8 * level)),
                  let ots = LMOTSType(code: readBigEndian32(bytes, 16 + 8 * level)) else {
                throw .unreadable("\(path): unknown LMS or LM-OTS type at level \(level + 1)")
            }
            levels.append((type, ots))
        }
        var at = 12 + 8 * count
        identifier = Array(bytes[at..<(at + 16)]); at += 16
        seed = Array(bytes[at..<(at + 32)]); at += 32
        publicKeyBytes = Array(bytes[at..<(at + 4 + LMSPublicKeyView.length)]); at += 4 + LMSPublicKeyView.length
        nextIndex = readBigEndian64(bytes, at)
        self.levels = levels
        self.path = path
        guard readBigEndian32(publicKeyBytes, 0) == UInt32(count) else {
            throw .unreadable("\(path): the cached public key does not match the level count")
        }
    }

    /// Indices reserved ahead by `reserveAhead`, used by the next signatures.
    private var reserved: [UInt64] = []

    /// Reserves `count` consecutive indices in one locked step, so that a
    /// release needing two signatures (COSE and JWS) either gets both or
    /// none: two publishes racing for the last leaves cannot each take one.
    func reserveAhead(_ count: Int) throws(KeyError) {
        let first = try reserve(count: UInt64(count))
        reserved = (0..<UInt64(count)).map { first + $0 }
    }

    /// Reserves the next signature index: lock, read, write + 1, fsync,
    /// unlock. Throws `exhausted` when no index is left.
    func reserve() throws(KeyError) -> UInt64 {
        if !reserved.isEmpty { return reserved.removeFirst() }
        return try reserve(count: 1)
    }

    private func reserve(count: UInt64) throws(KeyError) -> UInt64 {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable("\(path): cannot open for update: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw .unreadable("\(path): cannot lock: \(String(cString: strerror(errno)))") }
        defer { flock(fd, LOCK_UN) }
        let offset = off_t(Self.fileLength(levels: levels.count) - 8)
        var counter = [UInt8](repeating: 0, count: 8)
        guard pread(fd, &counter, 8, offset) == 8 else { throw .unreadable("\(path): cannot read the signature counter") }
        let index = readBigEndian64(counter, 0)
        nextIndex = index
        guard index < capacity, capacity - index >= count else {
            throw .exhausted(path: path, capacity: capacity, remaining: index < capacity ? capacity - index : 0)
        }
        let next = bigEndian(index + count)
        guard pwrite(fd, next, 8, offset) == 8, fsync(fd) == 0 else {
            throw .unreadable("\(path): cannot record the signature counter: \(String(cString: strerror(errno)))")
        }
        nextIndex = index + count
        return index
    }

    /// Signs `message` with a freshly reserved leaf.
    public func sign(_ message: [UInt8]) throws(KeyError) -> [UInt8] {
        let index = try reserve()
        return try sign(message, index: index)
    }

    /// Signs with the given signature index (already reserved).
    func sign(_ message: [UInt8], index: UInt64) throws(KeyError) -> [UInt8] {
        // Leaf indices per level, top first: the index's bits, top level highest.
        var leaves: [UInt32] = []
        var shift = levels.reduce(0) { $0 + $1.type.height }
        for level in levels {
            shift -= level.type.height
            leaves.append(UInt32((index >> UInt64(shift)) & ((UInt64(1) << UInt64(level.type.height)) - 1)))
        }
        var trees: [LMSTree] = []
        var identifier = self.identifier, seed = self.seed
        for (level, parameters) in levels.enumerated() {
            let tree = LMSTree(type: parameters.type, ots: parameters.ots, identifier: identifier, seed: seed)
            trees.append(tree)
            (identifier, seed) = tree.childKey(leaf: leaves[level])
        }
        var signature = bigEndian(UInt32(levels.count - 1))
        for level in 0..<(levels.count - 1) {
            let child = trees[level + 1].publicKey
            signature += trees[level].sign(leaf: leaves[level], message: child, randomizer: trees[level].deterministicRandomizer(leaf: leaves[level]))
            signature += child
        }
        let last = levels.count - 1
        signature += trees[last].sign(leaf: leaves[last], message: message, randomizer: try Self.randomBytes(32))
        return signature
    }

    static func randomBytes(_ count: Int) throws(KeyError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else { throw .openssl("RAND_bytes failed") }
        return bytes
    }
}

/// One LMS tree (RFC 8554 §5) with every node computed, for signing.
struct LMSTree {
    typealias H = OpenSSLSHA256
    let type: LMSType
    let ots: LMOTSType
    let identifier: [UInt8]
    let seed: [UInt8]
    /// Node r (1 ..< 2^(h+1)) at bytes r*32 ..< r*32+32; node 1 is the root.
    let nodes: [UInt8]

    init(type: LMSType, ots: LMOTSType, identifier: [UInt8], seed: [UInt8]) {
        self.type = type
        self.ots = ots
        self.identifier = identifier
        self.seed = seed
        let leafCount = 1 << type.height
        var nodes = [UInt8](repeating: 0, count: 2 * leafCount * 32)
        identifier.withUnsafeBytes { id in
            nodes.withUnsafeMutableBytes { out in
                func store(_ d: Digest32, at r: Int) {
                    d.withBytes { UnsafeMutableRawBufferPointer(rebasing: out[(r * 32)..<(r * 32 + 32)]).copyMemory(from: $0) }
                }
                for q in 0..<leafCount {
                    let k = Self.otsPublicKey(type: type, ots: ots, identifier: identifier, seed: seed, leaf: UInt32(q))
                    store(LMSHash.leaf(H.self, identifier: id, node: UInt32(leafCount + q), otsPublicKey: k), at: leafCount + q)
                }
                var r = leafCount - 1
                while r >= 1 {
                    let children = UnsafeRawBufferPointer(out)
                    let node = LMSHash.interior(H.self, identifier: id, node: UInt32(r),
                                                left: UnsafeRawBufferPointer(rebasing: children[(2 * r * 32)..<(2 * r * 32 + 32)]),
                                                right: UnsafeRawBufferPointer(rebasing: children[(2 * r * 32 + 32)..<(2 * r * 32 + 64)]))
                    store(node, at: r)
                    r -= 1
                }
            }
        }
        self.nodes = nodes
    }

    /// type ‖ otstype ‖ I ‖ T[1]: the LMS public key (RFC 8554 §5.3).
    var publicKey: [UInt8] {
        bigEndian(type.code) + bigEndian(ots.code) + identifier + Array(nodes[32..<64])
    }

    /// x_q[i] = H(I ‖ u32(q) ‖ u16(i) ‖ u8(0xff) ‖ SEED) (RFC 8554 Appendix A).
    static func otsPrivate(identifier: [UInt8], seed: [UInt8], leaf: UInt32, chain: UInt16) -> Digest32 {
        derive(identifier: identifier, seed: seed, leaf: leaf, label: chain)
    }

    /// H(I ‖ u32(q) ‖ u16(label) ‖ u8(0xff) ‖ SEED). Labels below p are the
    /// one-time keys' chains (Appendix A); 0xfffd..0xffff, out of their
    /// range, derive a lower level's C, SEED and I (our convention).
    static func derive(identifier: [UInt8], seed: [UInt8], leaf: UInt32, label: UInt16) -> Digest32 {
        var h = H()
        h.update(identifier)
        h.update(bigEndian32: leaf)
        h.update(bigEndian16: label)
        h.update(byte: 0xff)
        h.update(seed)
        return h.finalizeDigest()
    }

    static func chain(identifier: [UInt8], leaf: UInt32, chain i: Int, from start: Digest32, steps: Range<Int>) -> Digest32 {
        identifier.withUnsafeBytes { LMSHash.chain(H.self, identifier: $0, leaf: leaf, chain: i, from: start, steps: steps) }
    }

    /// The LM-OTS public key K of leaf q (RFC 8554 Algorithm 1).
    static func otsPublicKey(type: LMSType, ots: LMOTSType, identifier: [UInt8], seed: [UInt8], leaf q: UInt32) -> Digest32 {
        var k = H()
        k.update(identifier)
        k.update(bigEndian32: q)
        k.update(bigEndian16: LMSDomain.pblc)
        let top = (1 << ots.w) - 1
        for i in 0..<ots.p {
            let x = otsPrivate(identifier: identifier, seed: seed, leaf: q, chain: UInt16(i))
            chain(identifier: identifier, leaf: q, chain: i, from: x, steps: 0..<top).withBytes { k.update($0) }
        }
        return k.finalizeDigest()
    }

    func deterministicRandomizer(leaf: UInt32) -> [UInt8] {
        Self.derive(identifier: identifier, seed: seed, leaf: leaf, label: 0xfffd).bytes
    }

    /// The SEED and I of the lower-level tree signed by `leaf`.
    func childKey(leaf: UInt32) -> (identifier: [UInt8], seed: [UInt8]) {
        let i = Self.derive(identifier: identifier, seed: seed, leaf: leaf, label: 0xffff).bytes
        let s = Self.derive(identifier: identifier, seed: seed, leaf: leaf, label: 0xfffe).bytes
        return (Array(i.prefix(16)), s)
    }

    /// An LMS signature (RFC 8554 Algorithms 3 and 5) of `message` by `leaf`.
    func sign(leaf q: UInt32, message: [UInt8], randomizer c: [UInt8]) -> [UInt8] {
        let digest = identifier.withUnsafeBytes { i in
            c.withUnsafeBytes { r in LMSHash.message(H.self, identifier: i, leaf: q, randomizer: r, message: { $0.update(message) }) }
        }
        let checksum = lmotsChecksum(digest, ots)
        var out = bigEndian(q) + bigEndian(ots.code) + c
        for i in 0..<ots.p {
            let a = lmotsCoef(digest, checksum, i, ots.w)
            let x = Self.otsPrivate(identifier: identifier, seed: seed, leaf: q, chain: UInt16(i))
            out += Self.chain(identifier: identifier, leaf: q, chain: i, from: x, steps: 0..<a).bytes
        }
        out += bigEndian(type.code)
        var node = (1 << type.height) + Int(q)
        for _ in 0..<type.height {
            let sibling = node ^ 1
            out += nodes[(sibling * 32)..<(sibling * 32 + 32)]
            node >>= 1
        }
        return out
    }
}

func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }
func bigEndian(_ v: UInt64) -> [UInt8] { bigEndian(UInt32(v >> 32)) + bigEndian(UInt32(v & 0xffff_ffff)) }
func readBigEndian32(_ b: [UInt8], _ at: Int) -> UInt32 {
    (UInt32(b[at]) << 24) | (UInt32(b[at + 1]) << 16) | (UInt32(b[at + 2]) << 8) | UInt32(b[at + 3])
}
func readBigEndian64(_ b: [UInt8], _ at: Int) -> UInt64 {
    (UInt64(readBigEndian32(b, at)) << 32) | UInt64(readBigEndian32(b, at + 4))
}

extension HSS {
    /// The signature length for a key with these per-level parameters.
    public static func signatureLength(levels: [(LMSType, LMOTSType)]) -> Int {
        var total = 4
        for (i, (type, ots)) in levels.enumerated() {
            total += type.signatureLength(ots)
            if i + 1 < levels.count { total += LMSPublicKeyView.length }
        }
        return total
    }
}

/// A key shape `keygen` refuses, naming the option at fault.
public struct HSSParameterError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension HSSPrivateKey {
    /// The parameters of a new key (`keygen --levels --height --w`, default
    /// one level of H10/W4), checked: a signature must leave room for the
    /// payload in a manifest of `Manifest.maxEncodedSize` even as a JWS
    /// (base64url: 4/3 of it), and signing must finish here in minutes.
    public static func parameters(levels: Int?, height: Int?, w: Int?) throws(HSSParameterError) -> [(LMSType, LMOTSType)] {
        let count = levels ?? 1
        guard (1...HSS.maxLevels).contains(count) else {
            throw HSSParameterError(message: "--levels \(count): expected 1 to \(HSS.maxLevels)")
        }
        let h = height ?? 10
        guard let type = LMSType(height: h), h <= maxGeneratedHeight else {
            throw HSSParameterError(message: "--height \(h): expected 5, 10 or 15 (signing rebuilds a level's tree: H15 takes a minute here, H20 half an hour; use more levels for more signatures)")
        }
        let winternitz = w ?? 4
        guard let ots = LMOTSType(w: winternitz) else {
            throw HSSParameterError(message: "--w \(winternitz): expected 1, 2, 4 or 8")
        }
        let parameters = Array(repeating: (type, ots), count: count)
        let signatureBytes = HSS.signatureLength(levels: parameters)
        let budget = (Manifest.maxEncodedSize - 2048) * 3 / 4
        guard signatureBytes <= budget else {
            throw HSSParameterError(message: "--levels \(count) --height \(h) --w \(winternitz): signatures of \(signatureBytes) bytes would not fit the \(Manifest.maxEncodedSize)-byte manifest limit (at most \(budget)); use a larger --w or fewer levels")
        }
        return parameters
    }
}
