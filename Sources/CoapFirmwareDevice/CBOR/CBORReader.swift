/// A bounded, allocation-free CBOR reader (RFC 8949) over a byte buffer,
/// for the device: it hands out offsets into the caller's bytes, never
/// copies. It refuses what the manifest profile never needs and what would
/// make reading unbounded: indefinite lengths, nesting deeper than
/// `maxDepth`, counts larger than the bytes left, invalid UTF-8 in text,
/// and the non-well-formed two-byte simple values below 32.
public struct CBORReader {
    public enum Failure: UInt8, Error, Sendable, Equatable {
        case truncated = 1, indefiniteLength, tooDeep, invalidUTF8, unsupported, trailingBytes, reservedHead

        public var description: StaticString {
            switch self {
            case .truncated: return "truncated CBOR"
            case .indefiniteLength: return "indefinite-length item"
            case .tooDeep: return "nested too deeply"
            case .invalidUTF8: return "text is not valid UTF-8"
            case .unsupported: return "malformed simple value"
            case .trailingBytes: return "bytes after the CBOR item"
            case .reservedHead: return "reserved additional information"
            }
        }
    }

    /// One item's head; strings carry their content's byte range.
    public enum Item: Equatable {
        case unsigned(UInt64)
        /// -1 - n
        case negative(UInt64)
        case bytes(Range<Int>)
        case text(Range<Int>)
        case array(count: Int)
        case map(count: Int)
        case tag(UInt64)
        case bool(Bool)
        case null
        /// A float or another simple value: never meaningful in a manifest,
        /// but skippable under an unknown key (forward compatibility).
        case other
    }

    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset: Int
    public let end: Int
    public static let maxDepth = 16

    public init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil) {
        self.bytes = bytes
        self.offset = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
    }

    public var isAtEnd: Bool { offset >= end }

    /// Reads the next item's head (and steps over a string's content).
    public mutating func next() -> Result<Item, Failure> {
        guard offset < end else { return .failure(.truncated) }
        let initial = bytes[offset]
        offset += 1
        let major = initial >> 5
        let info = initial & 0x1f
        var argument: UInt64
        switch info {
        case 0..<24: argument = UInt64(info)
        case 24, 25, 26, 27:
            let size = 1 << Int(info - 24)
            guard end - offset >= size else { return .failure(.truncated) }
            argument = 0
            for i in 0..<size { argument = argument << 8 | UInt64(bytes[offset + i]) }
            offset += size
        case 31: return .failure(.indefiniteLength)
        default: return .failure(.reservedHead)
        }
        switch major {
        case 0: return .success(.unsigned(argument))
        case 1: return .success(.negative(argument))
        case 2, 3:
            guard argument <= UInt64(end - offset) else { return .failure(.truncated) }
            let range = offset..<(offset + Int(argument))
            offset = range.upperBound
            if major == 3 {
                guard Self.isValidUTF8(UnsafeRawBufferPointer(rebasing: bytes[range])) else { return .failure(.invalidUTF8) }
                return .success(.text(range))
            }
            return .success(.bytes(range))
        case 4:
            // Every element takes at least one byte.
            guard argument <= UInt64(end - offset) else { return .failure(.truncated) }
            return .success(.array(count: Int(argument)))
        case 5:
            guard argument <= UInt64(end - offset) / 2 else { return .failure(.truncated) }
            return .success(.map(count: Int(argument)))
        case 6: return .success(.tag(argument))
        default:
            switch info {
            case 20: return .success(.bool(false))
            case 21: return .success(.bool(true))
            case 22: return .success(.null)
            case 24: return argument < 32 ? .failure(.unsupported) : .success(.other)  // RFC 8949 §3.3
            default: return .success(.other)
            }
        }
    }

    /// Skips one whole item (with its contents), iteratively: the pending
    /// count per level lives in a fixed array, so depth is bounded.
    public mutating func skip() -> Failure? {
        var pending = InlineArray<17, Int>(repeating: 0)
        var depth = 0
        pending[0] = 1
        while true {
            while depth >= 0 && pending[depth] == 0 { depth -= 1 }
            if depth < 0 { return nil }
            pending[depth] -= 1
            switch next() {
            case .failure(let f): return f
            case .success(let item):
                var children = 0
                switch item {
                case .array(let n): children = n
                case .map(let n): children = 2 * n
                case .tag:
                    // A tag's content is the next item at the same level: tags
                    // nest without depth (each costs a byte, so it is bounded).
                    pending[depth] += 1
                default: break
                }
                if children > 0 {
                    guard depth + 1 < Self.maxDepth else { return .tooDeep }
                    depth += 1
                    pending[depth] = children
                }
            }
        }
    }

    /// Strict UTF-8 (RFC 3629): no overlongs, no surrogates, at most U+10FFFF.
    static func isValidUTF8(_ s: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = s.count
        while i < n {
            let b0 = s[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xbf
            switch b0 {
            case 0xc2...0xdf: length = 2
            case 0xe0: length = 3; lower = 0xa0
            case 0xe1...0xec, 0xee, 0xef: length = 3
            case 0xed: length = 3; upper = 0x9f
            case 0xf0: length = 4; lower = 0x90
            case 0xf1...0xf3: length = 4
            case 0xf4: length = 4; upper = 0x8f
            default: return false
            }
            guard n - i >= length else { return false }
            let b1 = s[i + 1]
            guard b1 >= lower && b1 <= upper else { return false }
            for k in 2..<max(2, length) where (s[i + k] & 0xc0) != 0x80 { return false }
            i += length
        }
        return true
    }
}

extension CBORReader.Item {
    /// An integer item's value, if it fits Int64 (-2^63 included).
    public var int64: Int64? {
        switch self {
        case .unsigned(let n) where n <= UInt64(Int64.max): return Int64(n)
        case .negative(let n) where n <= UInt64(Int64.max): return -1 - Int64(n)
        default: return nil
        }
    }
}

/// Whether `a[range]` holds the same bytes as `b` (no allocation).
func bytesEqual(_ a: UnsafeRawBufferPointer, _ range: Range<Int>, _ b: UnsafeRawBufferPointer) -> Bool {
    guard range.count == b.count else { return false }
    for i in 0..<range.count where a[range.lowerBound + i] != b[i] { return false }
    return true
}

/// Whether `a[range]` spells `literal`.
func bytesEqual(_ a: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString) -> Bool {
    bytesEqual(a, range, UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
}
