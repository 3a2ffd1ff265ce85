/// A CBOR data item to encode (RFC 8949 §3): the host builds what it signs
/// as values of this type and libcbor encodes them deterministically
/// (`CBOREncoder`). Nothing is decoded into it: every read is the device's
/// `CBORReader`.
public indirect enum CBORValue: Sendable, Equatable {
    /// Major type 0.
    case unsigned(UInt64)
    /// Major type 1: the value is `-1 - n`.
    case negative(UInt64)
    /// Major type 2, definite length only.
    case bytes([UInt8])
    /// Major type 3, definite length only.
    case text(String)
    /// Major type 4.
    case array([CBORValue])
    /// Major type 5, entries in wire order.
    case map([CBORMapEntry])
    /// Major type 6.
    case tagged(UInt64, CBORValue)
    /// Major type 7: false, true.
    case bool(Bool)
    /// Major type 7: null.
    case null
    /// Major type 7: undefined.
    case undefined
    /// Major type 7: floating point (any width).
    case float(Double)

    /// An integer as major type 0 or 1, whichever the sign asks for.
    public static func int(_ value: Int64) -> CBORValue {
        value >= 0 ? .unsigned(UInt64(value)) : .negative(UInt64(-(value + 1)))
    }
}

/// One key/value pair of a CBOR map.
public struct CBORMapEntry: Sendable, Equatable {
    public var key: CBORValue
    public var value: CBORValue

    public init(_ key: CBORValue, _ value: CBORValue) {
        self.key = key
        self.value = value
    }
}
