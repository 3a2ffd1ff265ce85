internal import CCoap
import CoapFirmwareDevice

/// One response body that every request for it shares, served block by
/// block without per-session state. `/.well-known/core` is served from one
/// of these rather than from libcoap's copy per session (13.6 MB per 1000
/// sessions before; issue #13 item 5).
final class SharedBody {
    let bytes: UnsafeMutableRawBufferPointer
    /// The content's SHA-256 prefix.
    let etag: UInt64

    init(_ content: [UInt8]) {
        bytes = .allocate(byteCount: max(1, content.count), alignment: 8)
        bytes.copyBytes(from: content)
        count = content.count
        etag = content.withUnsafeBytes { MappedFile.contentETag($0.baseAddress, $0.count) }
    }

    let count: Int

    deinit { bytes.deallocate() }

    /// Answers `request` with the block it asks for (RFC 7959 §2.4), in
    /// blocks of at most 2^(maxSZX+4) bytes: a larger Block2 is answered
    /// with the block at the same offset in the smaller size, which a server
    /// may do and every client follows. Stateless: nothing is kept per
    /// session. False (with 4.02 set) for a block past the end.
    func respond(session: OpaquePointer, request: OpaquePointer, response: OpaquePointer,
                 contentFormat: UInt16, maxSZX: UInt8 = Block2.maxSZX) -> Bool {
        var block = coap_block_b_t()
        let asked = coap_get_block_b(session, request, coap_option_num_t(COAP_OPTION_BLOCK2), &block) == 1
        let szx = asked ? min(UInt8(block.szx), maxSZX) : maxSZX
        let offset = asked ? Int(block.num) << (Int(block.szx) + 4) : 0
        guard offset == 0 || offset < count else {
            coap_pdu_set_code(response, COAP_RESPONSE_CODE_BAD_OPTION)
            return false
        }
        let end = min(count, offset + Block2.size(szx: szx))
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT)
        var buffer = [UInt8](repeating: 0, count: 8)
        func add(_ number: Int32, _ value: UInt64) {
            let n = coap_encode_var_safe8(&buffer, buffer.count, value)
            coap_add_option(response, coap_option_num_t(number), Int(n), buffer)
        }
        // Ascending option numbers (RFC 7252 §3.1).
        add(COAP_OPTION_ETAG, etag & 0xFFFF_FFFF | 1)  // four bytes tell versions apart here
        add(COAP_OPTION_CONTENT_FORMAT, UInt64(contentFormat))
        if asked || end < count {
            let reply = Block2(number: UInt32(offset >> (Int(szx) + 4)), more: end < count, szx: szx)
            add(COAP_OPTION_BLOCK2, UInt64(reply.optionValue))
            var iterator = coap_opt_iterator_t()  // Size2 only when asked for (RFC 7959 §4)
            if offset == 0, coap_check_option(request, coap_option_num_t(COAP_OPTION_SIZE2), &iterator) != nil {
                add(COAP_OPTION_SIZE2, UInt64(count))
            }
        }
        if end > offset {
            coap_add_data(response, end - offset, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset)
        }
        return true
    }
}

