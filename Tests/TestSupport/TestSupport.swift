// What the Swift test targets share: where the vectors are, small loaders,
// and one way to feed bytes in pieces. Foundation only.
import Foundation

/// The repository root, found from this file's path (Tests/TestSupport/…).
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
public let vectorsDirectory = repositoryRoot.appendingPathComponent("Vectors")

/// A file of `Vectors/`, by its path relative to it.
public func readVector(_ relative: String) throws -> [UInt8] {
    Array(try Data(contentsOf: vectorsDirectory.appendingPathComponent(relative)))
}

/// A JSON index of `Vectors/` decoded.
public func loadIndex<T: Decodable>(_ relative: String, as: T.Type = T.self) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(contentsOf: vectorsDirectory.appendingPathComponent(relative)))
}

/// Bytes from hex text (spaces allowed); traps on anything else: test data only.
public func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8.filter { $0 != 0x20 })
    precondition(digits.count % 2 == 0, "odd hex")
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: preconditionFailure("not hex: \(c)")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

public func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// A fresh temporary folder, removed by the caller.
public func makeTemporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "coapfw-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The error `body` throws, if it is an `E`; nil when it succeeds or throws something else.
public func caught<E: Error>(_ type: E.Type, _ body: () throws -> Void) -> E? {
    do { try body() } catch let error as E { return error } catch { return nil }
    return nil
}

/// The ways a test feeds a stream in pieces, as a transfer would: whole,
/// byte by byte, at random split points (seeded, so a failure repeats),
/// and in blocks of every Block2 size, 16 to 1024 bytes (RFC 7959 §2.2).
public enum Chunks {
    public struct Split: CustomStringConvertible, Sendable {
        public let name: String
        public let ranges: [Range<Int>]
        public var description: String { name }
    }

    public static func all(count: Int, seed: UInt64 = 1) -> [Split] {
        var out = [Split(name: "whole", ranges: count == 0 ? [] : [0..<count]),
                   Split(name: "byte by byte", ranges: (0..<count).map { $0..<($0 + 1) })]
        var rng = SeededGenerator(seed: seed)
        for round in 0..<3 {
            var ranges: [Range<Int>] = []
            var start = 0
            while start < count {
                let n = Int.random(in: 1...max(1, min(count - start, 700)), using: &rng)
                ranges.append(start..<(start + n))
                start += n
            }
            out.append(Split(name: "random splits #\(round)", ranges: ranges))
        }
        for szx in 0...6 { out.append(blocks(count: count, size: 16 << szx)) }
        return out
    }

    /// Consecutive blocks of `size` bytes, the last one shorter.
    public static func blocks(count: Int, size: Int) -> Split {
        Split(name: "\(size)-byte blocks", ranges: stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) })
    }
}

/// A small deterministic generator (SplitMix64) for repeatable test data.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

/// One entry of `Vectors/manifests/index.json` (Vectors/generate.py: pycose, cbor2, cryptography).
public struct ManifestVector: Decodable, CustomStringConvertible, Sendable {
    public var name: String
    public var file: String
    public var format: String
    public var trust: String
    public var expect: String
    public var field: String?
    public var images: [String]
    public var description: String { name }

    public static func all() throws -> [ManifestVector] { try loadIndex("manifests/index.json") }
}

/// One case of `Vectors/device/index.json` (Vectors/device/generate.py: cbor2, pyhsslms).
public struct DeviceVector: Decodable, CustomStringConvertible, Sendable {
    public struct Device: Decodable, Sendable {
        public struct Installed: Decodable, Sendable {
            public var version: String
            public var timestamp: Int64
        }
        public var manufacturer: String
        public var model: String
        public var installed: Installed?
        public var slot: UInt64?
    }
    public var name: String
    public var file: String
    public var trust: String
    public var device: Device
    /// "accepted", or a SPEC §7 result name.
    public var expect: String
    public var images: [String]
    public var description: String { name }

    public static func all() throws -> [DeviceVector] { try loadIndex("device/index.json") }
}

/// One entry of `Vectors/lms/vectors.json` (Vectors/lms/generate.py: RFC 8554
/// Appendix F, pyhsslms signatures for every parameter set, crafted H15-H25
/// trees, and broken variants).
public struct HSSVector: Decodable, CustomStringConvertible, Sendable {
    public var name: String
    public var source: String
    public var levels: Int
    public var lms: [String]
    public var lmots: [String]
    public var `public`: String
    public var message: String
    public var signature: String
    public var valid: Bool
    public var why: String?
    public var description: String { name }

    public static func all(_ file: String = "lms/vectors.json") throws -> [HSSVector] { try loadIndex(file) }
}

/// CBOR built by hand for tests (RFC 8949 §3, shortest heads, keys in the
/// order given, duplicates kept): written apart from the product's
/// encoders so a bug there cannot hide in the test data.
public indirect enum TestCBOR: Sendable {
    case unsigned(UInt64)
    /// -1 - n
    case negative(UInt64)
    case bytes([UInt8])
    case text(String)
    case array([TestCBOR])
    case map([(TestCBOR, TestCBOR)])
    case tag(UInt64, TestCBOR)
    /// Bytes as they are (a float, a malformed item).
    case raw([UInt8])

    public static func int(_ v: Int64) -> TestCBOR { v >= 0 ? .unsigned(UInt64(v)) : .negative(UInt64(-(v + 1))) }

    public var encoded: [UInt8] {
        func head(_ major: UInt8, _ n: UInt64) -> [UInt8] {
            let m = major << 5
            switch n {
            case 0..<24: return [m | UInt8(n)]
            case 24...0xff: return [m | 24, UInt8(n)]
            case 0x100...0xffff: return [m | 25] + (0..<2).reversed().map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }
            case 0x1_0000...0xffff_ffff: return [m | 26] + (0..<4).reversed().map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }
            default: return [m | 27] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }
            }
        }
        switch self {
        case .unsigned(let n): return head(0, n)
        case .negative(let n): return head(1, n)
        case .bytes(let b): return head(2, UInt64(b.count)) + b
        case .text(let s): return head(3, UInt64(s.utf8.count)) + Array(s.utf8)
        case .array(let items): return head(4, UInt64(items.count)) + items.flatMap(\.encoded)
        case .map(let pairs): return head(5, UInt64(pairs.count)) + pairs.flatMap { $0.0.encoded + $0.1.encoded }
        case .tag(let t, let inner): return head(6, t) + inner.encoded
        case .raw(let b): return b
        }
    }

    /// The entries of a map, for editing.
    public var entries: [(TestCBOR, TestCBOR)] {
        if case .map(let pairs) = self { return pairs }
        return []
    }

    /// This map with the entries under integer `key` replaced by `value` (removed when nil).
    public func setting(_ key: Int64, _ value: TestCBOR?) -> TestCBOR {
        var pairs = entries.filter { if case .unsigned(let k) = $0.0, key >= 0 { return k != UInt64(key) }; return true }
        if let value { pairs.append((.int(key), value)) }
        return .map(pairs)
    }
}

/// The vectors' common single-image manifest (Vectors/README.md): example.com
/// c7960 1.2.3 of 2025-11-24T16:00:00Z, `1.2.3/firmware.bin`, 3000 bytes.
public func sampleManifestCBOR(digest: [UInt8] = [UInt8](repeating: 0xab, count: 32)) -> TestCBOR {
    .map([(.unsigned(1), .text("1.0")), (.unsigned(2), .tag(1, .unsigned(1_764_000_000))), (.unsigned(3), .text("example.com")),
          (.unsigned(4), .text("c7960")), (.unsigned(5), .text("1.2.3")), (.unsigned(6), .text("1.2.3/firmware.bin")),
          (.unsigned(7), .map([(.unsigned(1), .array([.map([(.unsigned(1), .int(-16)), (.unsigned(2), .bytes(digest))])]))])),
          (.unsigned(9), .unsigned(3000))])
}
