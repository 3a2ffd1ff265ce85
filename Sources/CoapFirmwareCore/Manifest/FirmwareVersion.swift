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
        guard let v = Array(text.utf8).withUnsafeBytes({ FirmwareVersion(bytes: $0) }) else { return nil }
        self = v
    }

    public var description: String { "\(major).\(minor).\(revision)" }

    public static func < (a: FirmwareVersion, b: FirmwareVersion) -> Bool {
        (a.major, a.minor, a.revision) < (b.major, b.minor, b.revision)
    }
}
