/// Writes CBOR data item heads (RFC 8949 §3) in their shortest form to a
/// sink, with no allocation. The device streams COSE's Sig_structure with
/// it; the host spells JSON manifests as CBOR with it (the manifests we sign
/// are encoded by libcbor, see docs/design.md).
public enum CBORWriter {
    /// The major types (RFC 8949 §3.1).
    public enum Major: UInt8, Sendable {
        case unsigned = 0, negative, bytes, text, array, map, tag, simple
    }

    /// One head: the major type and its argument (a value, a length or a count).
    public static func head(_ major: Major, _ argument: UInt64, into sink: (UnsafeRawBufferPointer) -> Void) {
        var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        let type = major.rawValue << 5
        let width: Int
        switch argument {
        case 0..<24: width = 0
        case 24...0xff: width = 1
        case 0x100...0xffff: width = 2
        case 0x1_0000...0xffff_ffff: width = 4
        default: width = 8
        }
        withUnsafeMutableBytes(of: &bytes) { out in
            switch width {
            case 0: out[0] = type | UInt8(argument)
            case 1: out[0] = type | 24
            case 2: out[0] = type | 25
            case 4: out[0] = type | 26
            default: out[0] = type | 27
            }
            for i in 0..<width { out[1 + i] = UInt8(truncatingIfNeeded: argument >> UInt64(8 * (width - 1 - i))) }
            sink(UnsafeRawBufferPointer(rebasing: out[0..<(1 + width)]))
        }
    }

    /// An integer as major type 0 or 1, whichever its sign asks for.
    public static func integer(_ value: Int64, into sink: (UnsafeRawBufferPointer) -> Void) {
        if value >= 0 {
            head(.unsigned, UInt64(value), into: sink)
        } else {
            head(.negative, UInt64(-(value + 1)), into: sink)
        }
    }

    /// A byte or text string: its head, then its bytes.
    public static func string(_ major: Major, _ bytes: UnsafeRawBufferPointer, into sink: (UnsafeRawBufferPointer) -> Void) {
        head(major, UInt64(bytes.count), into: sink)
        sink(bytes)
    }

    /// A simple value (RFC 8949 §3.3): 20 false, 21 true, 22 null.
    public static func simple(_ value: UInt8, into sink: (UnsafeRawBufferPointer) -> Void) {
        head(.simple, UInt64(value), into: sink)
    }

    /// A double-precision float (major type 7, additional information 27).
    public static func float64(_ value: Double, into sink: (UnsafeRawBufferPointer) -> Void) {
        var bytes: (UInt8, UInt64) = (0xfb, value.bitPattern.bigEndian)
        withUnsafeBytes(of: &bytes.0) { sink($0) }
        withUnsafeBytes(of: &bytes.1) { sink($0) }
    }
}
