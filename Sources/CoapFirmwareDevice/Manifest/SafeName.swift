/// The file-name rules of SPEC §6, on bytes: what a component may be called
/// and what the last segment of a single image's location must be.
public enum SafeName {
    /// 1-64 of letters, digits, '.', '_', '-', and not "." or "..": one
    /// file name on any device file system.
    public static func isSafe(_ s: UnsafeRawBufferPointer) -> Bool {
        guard (1...64).contains(s.count) else { return false }
        if s.count <= 2 && s.allSatisfy({ $0 == 0x2e }) { return false }
        return s.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d
        }
    }

    /// A safe name that can also name an image in a release folder: not one
    /// of the names the device keeps its own records under (SPEC §6), so an
    /// image can never overwrite the record of what was verified.
    public static func isImageName(_ s: UnsafeRawBufferPointer) -> Bool {
        guard isSafe(s) else { return false }
        let reserved: (StaticString, StaticString, StaticString, StaticString) =
            ("release.json", "manifest.cbor", "manifest.json", "manifest.suit")
        return !bytesEqual(s, 0..<s.count, reserved.0) && !bytesEqual(s, 0..<s.count, reserved.1)
            && !bytesEqual(s, 0..<s.count, reserved.2) && !bytesEqual(s, 0..<s.count, reserved.3)
    }

    /// The part of a URI reference after the last '/', before any '?' or '#'.
    public static func lastSegment(_ s: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var end = s.count
        for i in 0..<s.count where s[i] == 0x3f || s[i] == 0x23 { end = i; break }
        var start = 0
        for i in 0..<end where s[i] == 0x2f { start = i + 1 }
        return UnsafeRawBufferPointer(rebasing: s[start..<end])
    }
}
