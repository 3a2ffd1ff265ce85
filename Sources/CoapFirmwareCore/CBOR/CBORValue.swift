/// A decoded CBOR data item (RFC 8949 §3).
///
/// Maps keep their entries in wire order, duplicates included, so that a
/// strict reader can reject a duplicate key and name it (RFC 8949 §5.6).
/// This type holds no C and no Foundation: the device core reads it.
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

    /// The value as a signed 64-bit integer, if it is an integer that fits.
    public var int64: Int64? {
        switch self {
        case .unsigned(let n): return n <= UInt64(Int64.max) ? Int64(n) : nil
        case .negative(let n): return n <= UInt64(Int64.max) ? -1 - Int64(n) : nil
        default: return nil
        }
    }

    /// A short name of the major type, for error messages.
    public var typeName: String {
        switch self {
        case .unsigned: return "unsigned integer"
        case .negative: return "negative integer"
        case .bytes: return "byte string"
        case .text: return "text string"
        case .array: return "array"
        case .map: return "map"
        case .tagged(let tag, _): return "tag \(tag)"
        case .bool: return "boolean"
        case .null: return "null"
        case .undefined: return "undefined"
        case .float: return "float"
        }
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
