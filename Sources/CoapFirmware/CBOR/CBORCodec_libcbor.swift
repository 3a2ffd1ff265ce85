internal import CCBOR
import CoapFirmwareCore

/// CBOR decoding and deterministic encoding over libcbor (RFC 8949).
///
/// Decoding uses libcbor's streaming decoder, not `cbor_load`: the stream
/// gives each item's header before any allocation, so a header claiming
/// 2^32 elements is refused against the bytes left instead of allocated,
/// and indefinite lengths are seen and refused.
public enum CBORCodec {
    /// Why bytes are not one acceptable CBOR item.
    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "invalid CBOR at byte \(offset): \(reason)" }
    }

    public static let maxDepth = 16

    /// Decodes exactly one definite-length item; trailing bytes are an error.
    public static func decode(_ bytes: [UInt8]) throws(Error) -> CBORValue {
        let (value, used) = try decodePrefix(bytes)
        guard used == bytes.count else {
            throw Error(offset: used, reason: "\(bytes.count - used) trailing bytes after the item")
        }
        return value
    }

    /// Decodes the first item and returns it with the number of bytes it used.
    public static func decodePrefix(_ bytes: [UInt8]) throws(Error) -> (CBORValue, Int) {
        let builder = Builder(total: bytes.count)
        let context = Unmanaged.passUnretained(builder).toOpaque()
        var offset = 0
        let result: Result<(CBORValue, Int), Error> = bytes.withUnsafeBufferPointer { buffer in
            while builder.finished == nil {
                guard builder.error == nil else { break }
                guard offset < buffer.count else {
                    return .failure(Error(offset: offset, reason: "truncated: input ends inside an item"))
                }
                builder.offset = offset
                builder.remaining = buffer.count - offset
                // libcbor 0.8's stream decoder refuses one-byte tag heads 6..20
                // (0xC6...0xD4: "unassigned" in RFC 7049's day), and COSE_Sign1
                // is tag 18 (0xD2). Those heads carry no argument bytes, so
                // handle them here and let libcbor do everything else.
                if (0xC6...0xD4).contains(buffer[offset]) {
                    builder.tag(UInt64(buffer[offset] - 0xC0))
                    offset += 1
                    continue
                }
                var callbacks = Builder.callbacks
                let r = cbor_stream_decode(buffer.baseAddress! + offset, buffer.count - offset, &callbacks, context)
                switch r.status {
                case CBOR_DECODER_FINISHED:
                    offset += r.read
                case CBOR_DECODER_NEDATA:
                    return .failure(Error(offset: offset, reason: "truncated: input ends inside an item"))
                default:
                    return .failure(Error(offset: offset, reason: "malformed item header"))
                }
            }
            if let error = builder.error { return .failure(error) }
            return .success((builder.finished!, offset))
        }
        return try result.get()
    }

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

    /// Builds a libcbor item (reference count 1) for a value.
    private static func build(_ value: CBORValue) -> UnsafeMutablePointer<cbor_item_t> {
        let item: UnsafeMutablePointer<cbor_item_t>?
        switch value {
        case .unsigned(let n):
            switch n {
            case 0...0xFF: item = cbor_build_uint8(UInt8(n))
            case 0...0xFFFF: item = cbor_build_uint16(UInt16(n))
            case 0...0xFFFF_FFFF: item = cbor_build_uint32(UInt32(n))
            default: item = cbor_build_uint64(n)
            }
        case .negative(let n):
            switch n {
            case 0...0xFF: item = cbor_build_negint8(UInt8(n))
            case 0...0xFFFF: item = cbor_build_negint16(UInt16(n))
            case 0...0xFFFF_FFFF: item = cbor_build_negint32(UInt32(n))
            default: item = cbor_build_negint64(n)
            }
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

/// Assembles `CBORValue`s from libcbor's streaming callbacks.
private final class Builder {
    private enum Frame {
        case array(expected: Int, items: [CBORValue])
        case map(expected: Int, keys: [CBORValue], values: [CBORValue])
        case tag(UInt64)
    }

    private var stack: [Frame] = []
    private let total: Int
    var offset = 0
    var remaining = 0
    var finished: CBORValue?
    var error: CBORCodec.Error?

    init(total: Int) { self.total = total }

    private func fail(_ reason: String) {
        if error == nil { error = CBORCodec.Error(offset: offset, reason: reason) }
    }

    private func emit(_ value: CBORValue) {
        guard error == nil else { return }
        var value = value
        while true {
            guard let top = stack.popLast() else {
                finished = value
                return
            }
            switch top {
            case .tag(let tag):
                value = .tagged(tag, value)
                continue
            case .array(let expected, var items):
                items.append(value)
                if items.count == expected {
                    value = .array(items)
                    continue
                }
                stack.append(.array(expected: expected, items: items))
            case .map(let expected, var keys, var values):
                if keys.count == values.count { keys.append(value) } else { values.append(value) }
                if values.count == expected {
                    value = .map(zip(keys, values).map { CBORMapEntry($0, $1) })
                    continue
                }
                stack.append(.map(expected: expected, keys: keys, values: values))
            }
            return
        }
    }

    private func open(_ frame: Frame) {
        guard error == nil else { return }
        guard stack.count < CBORCodec.maxDepth else { return fail("nesting deeper than \(CBORCodec.maxDepth)") }
        stack.append(frame)
    }

    /// Declared element counts are checked against the bytes left: each
    /// element takes at least one byte, so larger claims are lies.
    private func openCollection(count: Int, isMap: Bool) {
        let needed = isMap ? count.multipliedReportingOverflow(by: 2) : (partialValue: count, overflow: false)
        guard !needed.overflow, needed.partialValue < remaining else {
            return fail("declares \(count) \(isMap ? "pairs" : "elements"), more than the input holds")
        }
        if count == 0 {
            emit(isMap ? .map([]) : .array([]))
        } else if isMap {
            open(.map(expected: count, keys: [], values: []))
        } else {
            open(.array(expected: count, items: []))
        }
    }

    func tag(_ value: UInt64) { open(.tag(value)) }

    private static func me(_ context: UnsafeMutableRawPointer?) -> Builder {
        Unmanaged<Builder>.fromOpaque(context!).takeUnretainedValue()
    }

    static let callbacks: cbor_callbacks = {
        var c = cbor_empty_callbacks
        c.uint8 = { me($0).emit(.unsigned(UInt64($1))) }
        c.uint16 = { me($0).emit(.unsigned(UInt64($1))) }
        c.uint32 = { me($0).emit(.unsigned(UInt64($1))) }
        c.uint64 = { me($0).emit(.unsigned($1)) }
        c.negint8 = { me($0).emit(.negative(UInt64($1))) }
        c.negint16 = { me($0).emit(.negative(UInt64($1))) }
        c.negint32 = { me($0).emit(.negative(UInt64($1))) }
        c.negint64 = { me($0).emit(.negative($1)) }
        // libcbor's field names are swapped in 0.8's comments: `byte_string`
        // is the definite string with its data, `byte_string_start` the indefinite head.
        c.byte_string = { ctx, data, length in
            me(ctx).emit(.bytes(length == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: length))))
        }
        c.byte_string_start = { me($0).fail("indefinite-length byte string") }
        c.string = { ctx, data, length in
            let bytes = length == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: length))
            guard let text = String(validating: bytes, as: UTF8.self) else {
                return me(ctx).fail("text string is not valid UTF-8")
            }
            me(ctx).emit(.text(text))
        }
        c.string_start = { me($0).fail("indefinite-length text string") }
        c.array_start = { me($0).openCollection(count: $1, isMap: false) }
        c.indef_array_start = { me($0).fail("indefinite-length array") }
        c.map_start = { me($0).openCollection(count: $1, isMap: true) }
        c.indef_map_start = { me($0).fail("indefinite-length map") }
        c.tag = { me($0).tag($1) }
        c.float2 = { me($0).emit(.float(Double($1))) }
        c.float4 = { me($0).emit(.float(Double($1))) }
        c.float8 = { me($0).emit(.float($1)) }
        c.undefined = { me($0).emit(.undefined) }
        c.null = { me($0).emit(.null) }
        c.boolean = { me($0).emit(.bool($1)) }
        c.indef_break = { me($0).fail("unexpected break") }
        return c
    }()
}
