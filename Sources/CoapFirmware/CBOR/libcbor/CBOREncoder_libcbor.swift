internal import CCBOR
import CoapFirmwareCore

/// Deterministic CBOR encoding over libcbor (RFC 8949 §4.2.1): the
/// manifests and COSE envelopes we sign. Nothing is decoded here: every
/// CBOR read goes through the device's `CBORReader`.
public enum CBOREncoder {
    /// Encodes deterministically (RFC 8949 §4.2.1): shortest heads, definite
    /// lengths, map keys sorted by their encoded bytes.
    public static func encode(_ value: CBORValue) -> [UInt8] {
        let item = build(value)
        defer { var it: UnsafeMutablePointer<cbor_item_t>? = item; cbor_decref(&it) }
        return serialize(item)
    }

    private static func serialize(_ item: UnsafeMutablePointer<cbor_item_t>) -> [UInt8] {
        var buffer: UnsafeMutablePointer<UInt8>?
        var capacity = 0
        let length = cbor_serialize_alloc(item, &buffer, &capacity)
        guard let buffer, length > 0 else { fatalError("libcbor could not allocate the encoding buffer") }
        defer { free(buffer) }
        return Array(UnsafeBufferPointer(start: buffer, count: length))
    }

    /// An integer item of the narrowest width that holds `n` (shortest head).
    private static func integer(_ n: UInt64, negative: Bool) -> UnsafeMutablePointer<cbor_item_t>? {
        let item: UnsafeMutablePointer<cbor_item_t>?
        switch n {
        case 0...0xFF: item = cbor_new_int8(); cbor_set_uint8(item, UInt8(n))
        case 0...0xFFFF: item = cbor_new_int16(); cbor_set_uint16(item, UInt16(n))
        case 0...0xFFFF_FFFF: item = cbor_new_int32(); cbor_set_uint32(item, UInt32(n))
        default: item = cbor_new_int64(); cbor_set_uint64(item, n)
        }
        if negative { cbor_mark_negint(item) } else { cbor_mark_uint(item) }
        return item
    }

    /// Builds a libcbor item (reference count 1) for a value.
    private static func build(_ value: CBORValue) -> UnsafeMutablePointer<cbor_item_t> {
        let item: UnsafeMutablePointer<cbor_item_t>?
        switch value {
        case .unsigned(let n): item = integer(n, negative: false)
        case .negative(let n): item = integer(n, negative: true)
        case .bytes(let b):
            item = b.withUnsafeBufferPointer { cbor_build_bytestring($0.baseAddress ?? UnsafePointer(bitPattern: 1), b.count) }
        case .text(let s):
            var s = s
            item = s.withUTF8 { p in
                p.withMemoryRebound(to: CChar.self) { cbor_build_stringn($0.baseAddress ?? UnsafePointer(bitPattern: 1), p.count) }
            }
        case .array(let elements):
            item = cbor_new_definite_array(elements.count)
            for element in elements {
                guard cbor_array_push(item, cbor_move(build(element))) else { fatalError("libcbor array push failed") }
            }
        case .map(let entries):
            // Sort by the keys' deterministic encodings (RFC 8949 §4.2.1).
            let sorted = entries.map { (encode($0.key), $0) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
            item = cbor_new_definite_map(entries.count)
            for (_, entry) in sorted {
                let pair = cbor_pair(key: cbor_move(build(entry.key)), value: cbor_move(build(entry.value)))
                guard cbor_map_add(item, pair) else { fatalError("libcbor map add failed") }
            }
        case .tagged(let tag, let inner):
            item = cbor_build_tag(tag, cbor_move(build(inner)))
        case .bool(let b): item = cbor_build_bool(b)
        case .null: item = cbor_new_null()
        case .undefined: item = cbor_new_undef()
        case .float(let d): item = cbor_build_float8(d)
        }
        guard let item else { fatalError("libcbor could not allocate an item") }
        return item
    }
}
