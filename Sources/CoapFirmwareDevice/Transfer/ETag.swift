/// A CoAP ETag (RFC 7252 §5.10.6): 1 to 8 opaque bytes, held inline.
public struct ETag: Sendable, Hashable {
    public let length: UInt8
    public let value: UInt64

    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard (1...8).contains(bytes.count) else { return nil }
        length = UInt8(bytes.count)
        value = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Byte `i` (0 first) of the ETag as sent.
    public subscript(i: Int) -> UInt8 { UInt8(truncatingIfNeeded: value >> (8 * UInt64(Int(length) - 1 - i))) }
}
