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
    /// The ACK_TIMEOUT set on the session, in milliseconds (libcoap's default: 2 s).
    private var ackTimeout: Int64 = 2000

    init(_ pointer: OpaquePointer, key: String) { (self.pointer, self.key) = (pointer, key) }

    /// Sets ACK_TIMEOUT for the requests sent from now on (libcoap reads it
    /// when a confirmable message is first sent). 1 to 60 s: libcoap
    /// ignores values whose whole part is 0.
    func setAckTimeout(milliseconds: Int64) {
        let clamped = min(max(milliseconds, 1000), 60_000)
        guard clamped != ackTimeout else { return }
        ackTimeout = clamped
        coap_session_set_ack_timeout(pointer, coap_fixed_point_t(integer_part: UInt16(clamped / 1000),
                                                                 fractional_part: UInt16(clamped % 1000)))
    }

    deinit { coap_session_release(pointer) }
}

/// One request to send.
struct CoapRequest: Sendable, Equatable {
    var uri: CoapURI
    var accept: UInt16?
    var block2: Block2?
    /// RFC 9175 Echo value to repeat (the answer to a 4.01 challenge).
    var echo: [UInt8]?
    /// A POST's body and its Content-Format (nil: a GET).
    var payload: [UInt8]? = nil
    var contentFormat: UInt16? = nil
    /// RFC 7641: 0 registers an observation; its notifications complete the
    /// same id again and again until `forget(id:)`.
    var observe: UInt32? = nil
    /// The token to send (a re-registration keeps its observation's, RFC 7641
    /// §3.3.1); nil: a new one.
    var token: [UInt8]? = nil
}

/// A CoAP client over libcoap for one thread (libcoap 4.3.1 is not
/// thread-safe: this object owns its context). Requests are confirmable,
/// with libcoap's RFC 7252 retransmission; several may be in flight, each
/// with its own token, up to `maxInFlight` (libcoap's NSTART for the
/// session). Block2 is asked for explicitly per request so the caller sees
/// and checks every block (RFC 7959 §2.4); libcoap never holds a body: each
/// response's payload is copied into the buffer its request was submitted
/// with, and the response is queued in `completions`.
///
/// Message IDs are 16 bits: a long download could reuse one inside
/// EXCHANGE_LIFETIME (247 s) and a deduplicating server would replay a
/// stale response, so the client moves to a fresh session (a new local
/// port, new MID space) after `requestsPerSession` requests; the caller
/// lets the requests in flight finish first (`sessionExhausted`).
final class CoapClient {
    private let context: OpaquePointer
    private let logger: Logger
    private var session: ClientSession?
    var requestsPerSession = 30_000
    /// RFC 7252 §4.8 ACK_TIMEOUT in seconds (default 2) and MAX_RETRANSMIT (default 4).
    var ackTimeout: Double = 2
    var maxRetransmit = 4
    /// The most confirmable requests libcoap sends before one is answered (NSTART).
    var maxInFlight = 1
    private(set) var sessionsOpened = 0
    private(set) var requestsSent = 0

    /// What happened to a submitted request.
    struct Completion {
        var id: Int
        var result: Result<CoapResponse, TransportError>
    }
    private(set) var completions: [Completion] = []
    private struct Pending {
        var id: Int
        var buffer: UnsafeMutableRawBufferPointer
        /// An observation: stays pending after an answer (its notifications follow).
        var observing = false
        /// The Message ID it went out with: a NACK of an earlier message under
        /// the same token (a re-registration keeps its token) is not this one's.
        var mid: coap_mid_t = COAP_INVALID_MID
    }
    /// Requests in flight by token (at most 8 bytes, as a number).
    private var pending: [UInt64: Pending] = [:]
    private var tokenOf: [Int: UInt64] = [:]
    private let psk: PSKBuffers?

    init(logger: Logger, psk: PSK? = nil) throws(TransportError) {
        self.logger = logger
        coap_startup()
        routeCoapLogsToStderr()
        coap_set_log_level(logger.logLevel <= .trace ? LOG_DEBUG : LOG_EMERG)
        guard let context = coap_new_context(nil) else { throw .failed("libcoap: cannot create a context") }
        self.context = context
        self.psk = psk.map(PSKBuffers.init)
        coap_set_app_data(context, Unmanaged.passUnretained(self).toOpaque())
        coap_register_response_handler(context, clientResponseHandler)
        coap_register_nack_handler(context, clientNackHandler)
    }

    deinit {
        session = nil
        coap_free_context(context)
    }

    /// Drops the current session (the next request opens a new one) and
    /// forgets every request in flight; libcoap stops retransmitting them.
    func closeSession() {
        // Forget first: cancelling reports each queued request to the nack handler.
        pending.removeAll()
        tokenOf.removeAll()
        if let session { coap_session_disconnected(session.pointer, COAP_NACK_NOT_DELIVERABLE) }
        session = nil
    }

    /// Whether the session has carried its share of requests: let the ones in flight finish, then submit.
    var sessionExhausted: Bool { (session?.requests ?? 0) >= requestsPerSession }

    /// Requests in flight.
    var inFlight: Int { pending.count }

    /// Which server a request goes to: one session per key (scheme and address).
    static func sessionKey(uri: CoapURI, address: Resolved) -> String { "\(uri.secure)|\(address.description)" }

    /// Sends `request` to `address`; its response lands in `buffer` (which
    /// must stay valid until it completes or is forgotten) and in
    /// `completions` under `id`. `timeout` is the ACK_TIMEOUT for this
    /// request's first retransmission, in milliseconds (nil: `ackTimeout`).
    @discardableResult
    func submit(_ request: CoapRequest, address: Resolved, id: Int, into buffer: UnsafeMutableRawBufferPointer,
                timeout: Int64? = nil) throws(TransportError) -> [UInt8] {
        let uri = request.uri
        let opened = try sessionFor(uri: uri, address: address)
        let session = opened.pointer
        if let timeout { opened.setAckTimeout(milliseconds: timeout) }
        let method = request.payload == nil ? COAP_REQUEST_CODE_GET : COAP_REQUEST_CODE_POST
        guard let pdu = coap_new_pdu(COAP_MESSAGE_CON, method, session) else {
            throw .failed("libcoap: cannot allocate a PDU")
        }
        var tokenLength = 0
        var token = [UInt8](repeating: 0, count: 8)
        if let given = request.token, (1...8).contains(given.count) {
            token = given + [UInt8](repeating: 0, count: 8 - given.count)
            tokenLength = given.count
        } else {
            coap_session_new_token(session, &tokenLength, &token)
        }
        coap_add_token(pdu, tokenLength, token)
        // Options in ascending number order (RFC 7252 §3.1).
        func add(_ number: Int32, _ bytes: [UInt8]) { coap_add_option(pdu, coap_option_num_t(number), bytes.count, bytes) }
        func add(_ number: Int32, uint value: UInt32) {
            var buffer = [UInt8](repeating: 0, count: 4)
            let n = coap_encode_var_safe(&buffer, buffer.count, value)
            add(number, Array(buffer.prefix(Int(n))))
        }
        if !uri.hostIsIPLiteral { add(COAP_OPTION_URI_HOST, Array(uri.host.utf8)) }
        if let observe = request.observe { add(COAP_OPTION_OBSERVE, uint: observe) }
        for segment in uri.path { add(COAP_OPTION_URI_PATH, Array(segment.utf8)) }
        if let format = request.contentFormat { add(COAP_OPTION_CONTENT_FORMAT, uint: UInt32(format)) }
        for item in uri.query { add(COAP_OPTION_URI_QUERY, Array(item.utf8)) }
        if let accept = request.accept { add(COAP_OPTION_ACCEPT, uint: UInt32(accept)) }
        if let block2 = request.block2 { add(COAP_OPTION_BLOCK2, uint: block2.optionValue) }
        if let echo = request.echo { add(COAP_OPTION_ECHO, echo) }
        if let payload = request.payload, !payload.isEmpty { coap_add_data(pdu, payload.count, payload) }
        let key = Self.key(token.prefix(tokenLength))
        forget(id: id)
        pending[key] = Pending(id: id, buffer: buffer, observing: request.observe == 0)
        tokenOf[id] = key
        requestsSent += 1
        opened.requests += 1
        let mid = coap_send(session, pdu)
        guard mid != COAP_INVALID_MID else {
            forget(id: id)
            throw .failed("libcoap could not send to \(uri)")
        }
        pending[key]?.mid = mid
        return Array(token.prefix(tokenLength))
    }

    /// Stops waiting for a request: its answer, if one comes, is ignored.
    func forget(id: Int) {
        if let key = tokenOf.removeValue(forKey: id) { pending[key] = nil }
    }

    /// Runs libcoap's I/O until something completes or `milliseconds` pass.
    func process(milliseconds: Int64) throws(TransportError) {
        guard completions.isEmpty else { return }
        if coap_io_process(context, UInt32(max(1, min(milliseconds, 1000)))) < 0 { throw .failed("libcoap I/O failed") }
    }

    /// Reads what has already arrived, without waiting (libcoap reads one
    /// datagram per socket and call): until a call brings nothing new.
    func drain(limit: Int) throws(TransportError) {
        for _ in 0..<max(1, limit) {
            let before = completions.count
            if coap_io_process(context, UInt32.max) < 0 { throw .failed("libcoap I/O failed") }  // COAP_IO_NO_WAIT
            if completions.count == before { return }
        }
    }

    /// The completions so far, oldest first; clears them.
    func takeCompletions() -> [Completion] {
        defer { completions.removeAll(keepingCapacity: true) }
        return completions
    }

    private static func key<C: Collection>(_ token: C) -> UInt64 where C.Element == UInt8 {
        // The length goes in too: tokens 00 and 00 00 differ.
        token.reduce(UInt64(token.count)) { $0 &* 257 &+ UInt64($1) }
    }

private func sessionFor(uri: CoapURI, address: Resolved) throws(TransportError) -> ClientSession {
        let key = Self.sessionKey(uri: uri, address: address)
        if let session, session.key == key {
            if session.requests < requestsPerSession { return session }
            // Rotation: libcoap keeps the old session while requests on it
            // are unanswered, and their answers still reach `deliver` (tokens
            // are random per session), so nothing in flight is lost.
            self.session = nil
        } else {
            closeSession()
        }
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
        if maxRetransmit != 4 { coap_session_set_max_retransmit(created, UInt16(max(0, min(maxRetransmit, 20)))) }
        if maxInFlight > 1 { coap_session_set_nstart(created, UInt16(min(maxInFlight, Int(UInt16.max)))) }
        let opened = ClientSession(created, key: key)
        opened.setAckTimeout(milliseconds: Int64((ackTimeout * 1000).rounded()))
        session = opened
        sessionsOpened += 1
        logger.debug("new CoAP session to \(address) (\(sessionsOpened) so far)")
        return opened
    }

    /// Takes a response; false when nothing waits for its token (a late
    /// answer, or a notification of an observation given up: libcoap then
    /// answers a confirmable one with RST, which ends it, RFC 7641 §3.6).
    fileprivate func deliver(_ pdu: OpaquePointer) -> Bool {
        let token = coap_pdu_get_token(pdu)
        let key = Self.key(UnsafeBufferPointer(start: token.s, count: token.length))
        guard let request = pending[key] else { return false }
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
        if let o = option(COAP_OPTION_OBSERVE) { response.observe = coap_decode_var_bytes(o.value, o.length) }
        if let o = option(COAP_OPTION_MAXAGE) { response.maxAge = coap_decode_var_bytes(o.value, o.length) }
        // An observation stays while the server keeps sending notifications (2.xx with Observe).
        if !(request.observing && response.observe != nil && response.isSuccess) {
            pending[key] = nil
            tokenOf[request.id] = nil
        }
        var length = 0
        var data: UnsafePointer<UInt8>?
        if coap_get_data(pdu, &length, &data) != 0, let data, length > 0 {
            guard length <= request.buffer.count else {
                completions.append(Completion(id: request.id, result: .failure(.oversized(length))))
                return true
            }
            request.buffer.copyMemory(from: UnsafeRawBufferPointer(start: data, count: length))
            response.payloadCount = length
        }
        completions.append(Completion(id: request.id, result: .success(response)))
        return true
    }

    fileprivate func nack(_ sent: OpaquePointer?, _ reason: coap_nack_reason_t) {
        let failure: TransportError
        switch reason {
        case COAP_NACK_TOO_MANY_RETRIES: failure = .timeout(seconds: 0)
        case COAP_NACK_RST: failure = .failed("the server reset the exchange (RST)")
        case COAP_NACK_TLS_FAILED: failure = .failed("DTLS handshake failed")
        case COAP_NACK_ICMP_ISSUE: failure = .failed("ICMP: port or host unreachable")
        default: failure = .failed("message not deliverable")
        }
        // libcoap names the message each time (a session-wide failure such as
        // ICMP or DTLS is reported once per queued message); one forgotten
        // or answered already is none of ours.
        guard let sent else { return }
        let token = coap_pdu_get_token(sent)
        let key = Self.key(UnsafeBufferPointer(start: token.s, count: token.length))
        guard let request = pending[key], request.mid == COAP_INVALID_MID || request.mid == coap_pdu_get_mid(sent)
        else { return }
        pending[key] = nil
        tokenOf[request.id] = nil
        completions.append(Completion(id: request.id, result: .failure(failure)))
    }
}

private func client(of session: OpaquePointer?) -> CoapClient? {
    guard let session, let context = coap_session_get_context(session), let data = coap_get_app_data(context) else { return nil }
    return Unmanaged<CoapClient>.fromOpaque(data).takeUnretainedValue()
}

private let clientResponseHandler: coap_response_handler_t = { session, _, received, _ in
    guard let received, let client = client(of: session) else { return COAP_RESPONSE_OK }
    // A notification nobody waits for gets RST (so the server drops that
    // observer); other unexpected answers are acknowledged as before.
    var iterator = coap_opt_iterator_t()
    if !client.deliver(received), coap_check_option(received, coap_option_num_t(COAP_OPTION_OBSERVE), &iterator) != nil {
        return COAP_RESPONSE_FAIL
    }
    return COAP_RESPONSE_OK
}

private let clientNackHandler: coap_nack_handler_t = { session, sent, reason, _ in
    client(of: session)?.nack(sent, reason)
}
