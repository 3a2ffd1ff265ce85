internal import CCoap
#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice
import Logging

/// One libcoap client session, released with this object.
final class ClientSession {
    let pointer: OpaquePointer
    let key: String
    var requests = 0

    init(_ pointer: OpaquePointer, key: String) { (self.pointer, self.key) = (pointer, key) }

    deinit { coap_session_release(pointer) }
}

/// A blocking CoAP client over libcoap for one thread (libcoap 4.3.1 is not
/// thread-safe: this object owns its context): one request at a time,
/// confirmable, with libcoap's RFC 7252 retransmission. Block2 is asked for
/// explicitly per request so the caller sees and checks every block
/// (RFC 7959 §2.4); libcoap never holds a body.
///
/// Message IDs are 16 bits: a long download could reuse one inside
/// EXCHANGE_LIFETIME (247 s) and a deduplicating server would replay a
/// stale response, so the client moves to a fresh session (a new local
/// port, new MID space) every `requestsPerSession` requests.
final class CoapClient {
    static let bufferCapacity = 1024

    private let context: OpaquePointer
    private let logger: Logger
    private var session: ClientSession?
    var requestsPerSession = 30_000
    /// RFC 7252 §4.8 ACK_TIMEOUT in seconds (default 2) and MAX_RETRANSMIT (default 4).
    var ackTimeout: Double = 2
    var maxRetransmit = 4
    private(set) var sessionsOpened = 0
    private(set) var requestsSent = 0

    private var awaitedToken: [UInt8] = []
    private var received: CoapResponse?
    private var failure: TransportError?
    /// The one block buffer: the last response's payload (`payloadCount` bytes of it).
    let payload: UnsafeMutableRawBufferPointer
    private let psk: PSKBuffers?

    init(logger: Logger, psk: PSK? = nil) throws(TransportError) {
        self.logger = logger
        coap_startup()
        routeCoapLogsToStderr()
        coap_set_log_level(logger.logLevel <= .trace ? LOG_DEBUG : LOG_EMERG)
        guard let context = coap_new_context(nil) else { throw .failed("libcoap: cannot create a context") }
        self.context = context
        payload = .allocate(byteCount: Self.bufferCapacity, alignment: 8)
        self.psk = psk.map(PSKBuffers.init)
        coap_set_app_data(context, Unmanaged.passUnretained(self).toOpaque())
        coap_register_response_handler(context, clientResponseHandler)
        coap_register_nack_handler(context, clientNackHandler)
    }

    deinit {
        session = nil
        coap_free_context(context)
        payload.deallocate()
    }

    /// The last response's payload.
    func payload(_ response: CoapResponse) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: payload[0..<response.payloadCount])
    }

    /// Drops the current session (the next request opens a new one).
    func closeSession() { session = nil }

    /// Sends a GET and waits up to `timeout` seconds for its response. A
    /// 4.01 carrying Echo (RFC 9175 §2.3: the server wants proof that we
    /// receive at this address) is answered once by repeating the request
    /// with the value; the time-out covers both.
    func get(_ uri: CoapURI, address: Resolved, accept: UInt16? = nil,
                    block2: Block2? = nil, timeout: Double) throws(TransportError) -> CoapResponse {
        let deadline = monotonicMilliseconds() + Int64(timeout * 1000)
        let first = try send(uri, address: address, accept: accept, block2: block2, echo: nil, deadline: deadline, timeout: timeout)
        guard first.codeClass == 4, first.codeDetail == 1, let echo = first.echo else { return first }
        logger.debug("\(uri): the server asks for Echo; repeating the request with it")
        return try send(uri, address: address, accept: accept, block2: block2, echo: echo, deadline: deadline, timeout: timeout)
    }

    private func send(_ uri: CoapURI, address: Resolved, accept: UInt16?, block2: Block2?, echo: [UInt8]?,
                      deadline: Int64, timeout: Double) throws(TransportError) -> CoapResponse {
        let session = try sessionFor(uri: uri, address: address).pointer
        guard let pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, session) else {
            throw .failed("libcoap: cannot allocate a PDU")
        }
        var tokenLength = 0
        var token = [UInt8](repeating: 0, count: 8)
        coap_session_new_token(session, &tokenLength, &token)
        awaitedToken = Array(token.prefix(tokenLength))
        coap_add_token(pdu, tokenLength, token)
        // Options in ascending number order (RFC 7252 §3.1).
        func add(_ number: Int32, _ bytes: [UInt8]) { coap_add_option(pdu, coap_option_num_t(number), bytes.count, bytes) }
        func add(_ number: Int32, uint value: UInt32) {
            var buffer = [UInt8](repeating: 0, count: 4)
            let n = coap_encode_var_safe(&buffer, buffer.count, value)
            add(number, Array(buffer.prefix(Int(n))))
        }
        if !uri.hostIsIPLiteral { add(COAP_OPTION_URI_HOST, Array(uri.host.utf8)) }
        for segment in uri.path { add(COAP_OPTION_URI_PATH, Array(segment.utf8)) }
        for item in uri.query { add(COAP_OPTION_URI_QUERY, Array(item.utf8)) }
        if let accept { add(COAP_OPTION_ACCEPT, uint: UInt32(accept)) }
        if let block2 { add(COAP_OPTION_BLOCK2, uint: block2.optionValue) }
        if let echo { add(COAP_OPTION_ECHO, echo) }
        received = nil
        failure = nil
        requestsSent += 1
        self.session?.requests += 1
        guard coap_send(session, pdu) != COAP_INVALID_MID else { throw .failed("libcoap could not send to \(uri)") }

        while received == nil && failure == nil {
            let left = deadline - monotonicMilliseconds()
            if left <= 0 {
                awaitedToken = []
                // A stuck exchange must not leave retransmissions behind on a session we reuse.
                closeSession()
                throw .timeout(seconds: timeout)
            }
            if coap_io_process(context, UInt32(min(left, 1000))) < 0 { throw .failed("libcoap I/O failed") }
        }
        awaitedToken = []
        if let failure {
            closeSession()
            throw failure
        }
        return received!
    }

    private func sessionFor(uri: CoapURI, address: Resolved) throws(TransportError) -> ClientSession {
        let key = "\(uri.secure)|\(address.description)"
        if let session, session.key == key, session.requests < requestsPerSession { return session }
        closeSession()
        var server = address.address
        let created: OpaquePointer?
        if uri.secure {
            guard let psk else { throw .unreachable("\(uri): coaps needs --psk-file") }
            var setup = coap_dtls_cpsk_t()
            setup.version = UInt8(COAP_DTLS_CPSK_SETUP_VERSION)
            setup.psk_info.identity = psk.identity
            setup.psk_info.key = psk.key
            created = coap_new_client_session_psk2(context, nil, &server, COAP_PROTO_DTLS, &setup)
        } else {
            created = coap_new_client_session(context, nil, &server, COAP_PROTO_UDP)
        }
        guard let created else { throw .unreachable("cannot open a session to \(address)") }
        // Random initial token: a new session may get the old one's local
        // port back, and late answers to the old one must not match ours.
        var generator = SystemRandomNumberGenerator()
        let seed = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        coap_session_init_token(created, seed.count, seed)
        if ackTimeout != 2 {
            // libcoap ignores values whose whole part is 0.
            let clamped = min(max(ackTimeout, 1), 60)
            let whole = UInt16(clamped.rounded(.down))
            let millis = UInt16((clamped - Double(whole)) * 1000)
            coap_session_set_ack_timeout(created, coap_fixed_point_t(integer_part: whole, fractional_part: millis))
        }
        if maxRetransmit != 4 { coap_session_set_max_retransmit(created, UInt16(max(0, min(maxRetransmit, 20)))) }
        let opened = ClientSession(created, key: key)
        session = opened
        sessionsOpened += 1
        logger.debug("new CoAP session to \(address) (\(sessionsOpened) so far)")
        return opened
    }

    fileprivate func deliver(_ pdu: OpaquePointer) {
        let token = coap_pdu_get_token(pdu)
        guard !awaitedToken.isEmpty, token.length == awaitedToken.count,
              Array(UnsafeBufferPointer(start: token.s, count: token.length)) == awaitedToken
        else { return }  // a late answer to an earlier request
        var response = CoapResponse(code: UInt8(truncatingIfNeeded: coap_pdu_get_code(pdu).rawValue))
        var iterator = coap_opt_iterator_t()
        func option(_ number: Int32) -> (value: UnsafePointer<UInt8>?, length: Int)? {
            guard let o = coap_check_option(pdu, coap_option_num_t(number), &iterator) else { return nil }
            return (coap_opt_value(o), Int(coap_opt_length(o)))
        }
        if let o = option(COAP_OPTION_CONTENT_FORMAT) {
            response.contentFormat = UInt16(truncatingIfNeeded: coap_decode_var_bytes(o.value, o.length))
        }
        if let o = option(COAP_OPTION_ETAG), o.length > 0, let value = o.value {
            response.etag = ETag(UnsafeBufferPointer(start: value, count: o.length))
        }
        if let o = option(COAP_OPTION_BLOCK2) {
            response.block2 = Block2(optionValue: coap_decode_var_bytes(o.value, o.length))
        }
        if let o = option(COAP_OPTION_SIZE2) {
            response.size2 = coap_decode_var_bytes8(o.value, o.length)
        }
        if let o = option(COAP_OPTION_ECHO), let value = o.value, (1...40).contains(o.length) {
            response.echo = Array(UnsafeBufferPointer(start: value, count: o.length))
        }
        var length = 0
        var data: UnsafePointer<UInt8>?
        if coap_get_data(pdu, &length, &data) != 0, let data, length > 0 {
            guard length <= payload.count else {
                failure = .oversized(length)
                return
            }
            payload.copyMemory(from: UnsafeRawBufferPointer(start: data, count: length))
            response.payloadCount = length
        }
        received = response
    }

    fileprivate func nack(_ reason: coap_nack_reason_t) {
        guard !awaitedToken.isEmpty else { return }
        switch reason {
        case COAP_NACK_TOO_MANY_RETRIES: failure = .timeout(seconds: 0)
        case COAP_NACK_RST: failure = .failed("the server reset the exchange (RST)")
        case COAP_NACK_TLS_FAILED: failure = .failed("DTLS handshake failed")
        case COAP_NACK_ICMP_ISSUE: failure = .failed("ICMP: port or host unreachable")
        default: failure = .failed("message not deliverable")
        }
    }
}

private func client(of session: OpaquePointer?) -> CoapClient? {
    guard let session, let context = coap_session_get_context(session), let data = coap_get_app_data(context) else { return nil }
    return Unmanaged<CoapClient>.fromOpaque(data).takeUnretainedValue()
}

private let clientResponseHandler: coap_response_handler_t = { session, _, received, _ in
    if let received { client(of: session)?.deliver(received) }
    return COAP_RESPONSE_OK
}

private let clientNackHandler: coap_nack_handler_t = { session, _, reason, _ in
    client(of: session)?.nack(reason)
}
