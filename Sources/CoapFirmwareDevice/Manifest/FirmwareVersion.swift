/// A firmware version `major.minor.revision` (SPEC §2), compared numerically.
///
/// Each part is decimal digits without a sign or leading zero (so each
/// version has one spelling, which also names its repository folder), at
/// most 9 digits.
public struct FirmwareVersion: Sendable, Hashable, Comparable {
    public var major: UInt32
    public var minor: UInt32
    public var revision: UInt32

    public init(major: UInt32, minor: UInt32, revision: UInt32) {
        (self.major, self.minor, self.revision) = (major, minor, revision)
    }

    /// Parses `A.B.C` (the one parser; the host's `init?(_: String)` calls it).
    public init?(bytes s: UnsafeRawBufferPointer) {
        var parts = InlineArray<3, UInt32>(repeating: 0)
        var part = 0, digits = 0, value: UInt32 = 0, leadingZero = false
        for i in 0...s.count {
            if i == s.count || s[i] == 0x2e {
                guard digits > 0, part < 3 else { return nil }
                parts[part] = value
                part += 1
                digits = 0; value = 0; leadingZero = false
                continue
            }
            let c = s[i]
            guard c >= 0x30 && c <= 0x39, digits < 9, !leadingZero else { return nil }
            if digits == 0 && c == 0x30 { leadingZero = true }
            value = value * 10 + UInt32(c - 0x30)
            digits += 1
        }
        guard part == 3 else { return nil }
        self.init(major: parts[0], minor: parts[1], revision: parts[2])
    }

    public static func < (a: FirmwareVersion, b: FirmwareVersion) -> Bool {
        (a.major, a.minor, a.revision) < (b.major, b.minor, b.revision)
    }
}
