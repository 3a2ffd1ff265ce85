/// A Block2 option (RFC 7959 §2.2): block number, more flag and size
/// exponent, and the only place that turns them into bytes and offsets.
public struct Block2: Sendable, Equatable {
    public var number: UInt32
    public var more: Bool
    /// Size exponent: the block holds 16 << szx bytes (0...6; 7 is reserved).
    public var szx: UInt8

    public init(number: UInt32, more: Bool = false, szx: UInt8) {
        precondition(szx <= Self.maxSZX, "SZX 7 is reserved (RFC 7959 §2.2)")
        (self.number, self.more, self.szx) = (number, more, szx)
    }

    /// Decodes an option value: NUM << 4 | M << 3 | SZX; nil for SZX 7.
    public init?(optionValue v: UInt32) {
        guard v & 7 != 7 else { return nil }
        self.init(number: v >> 4, more: v & 8 != 0, szx: UInt8(v & 7))
    }

    public var optionValue: UInt32 { number << 4 | (more ? 8 : 0) | UInt32(szx) }

    public static let maxSZX: UInt8 = 6

    /// Bytes in a block of this exponent.
    public static func size(szx: UInt8) -> Int { 16 << Int(szx) }

    /// The exponent for a block size, nil unless a power of two in 16...1024.
    public static func szx(forSize size: Int) -> UInt8? {
        for e in 0...maxSZX where Self.size(szx: e) == size { return e }
        return nil
    }

    public var size: Int { Self.size(szx: szx) }

    /// Where the block starts in the body; nil if that overflows 64 bits.
    public var offset: UInt64? {
        let (start, overflow) = UInt64(number).multipliedReportingOverflow(by: UInt64(size))
        return overflow ? nil : start
    }

    /// Whether `offset` starts a block of exponent `szx`.
    public static func isAligned(_ offset: UInt64, szx: UInt8) -> Bool { offset % UInt64(size(szx: szx)) == 0 }

    /// The block that starts at `offset` (which must be aligned).
    public static func starting(at offset: UInt64, szx: UInt8) -> Block2 {
        precondition(isAligned(offset, szx: szx), "a block offset must be aligned")
        return Block2(number: UInt32(truncatingIfNeeded: offset / UInt64(size(szx: szx))), szx: szx)
    }
}
