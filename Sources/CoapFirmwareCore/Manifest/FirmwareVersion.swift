/// A firmware version `major.minor.revision` (SPEC §2), compared numerically.
///
/// Each part is decimal digits without a sign or leading zero (so each
/// version has one spelling, which also names its repository folder), at
/// most 9 digits.
public struct FirmwareVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32
    public var revision: UInt32

    public init(major: UInt32, minor: UInt32, revision: UInt32) {
        self.major = major
        self.minor = minor
        self.revision = revision
    }

    /// Parses `A.B.C`; nil for anything else.
    public init?(_ text: String) {
        var parts: [UInt32] = []
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            let utf8 = part.utf8
            guard !utf8.isEmpty, utf8.count <= 9,
                  utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  utf8.count == 1 || utf8.first != 0x30,
                  let value = UInt32(part)
            else { return nil }
            parts.append(value)
        }
        guard parts.count == 3 else { return nil }
        self.init(major: parts[0], minor: parts[1], revision: parts[2])
    }

    public var description: String { "\(major).\(minor).\(revision)" }

    public static func < (a: FirmwareVersion, b: FirmwareVersion) -> Bool {
        (a.major, a.minor, a.revision) < (b.major, b.minor, b.revision)
    }
}
