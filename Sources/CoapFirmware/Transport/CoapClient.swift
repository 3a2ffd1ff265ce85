internal import CCoap
#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import Logging

/// One CoAP response as the update driver needs it. The payload sits in the
/// client's block buffer (`CoapClient.payload`) until the next request.
public struct CoapResponse: Sendable, Equatable {
    /// Response code as class.detail, e.g. 2.05 → (2, 5).
    public var codeClass: UInt8
    public var codeDetail: UInt8
    public var contentFormat: UInt16?
    public var etag: ETag?
    /// Block2 (number, more, szx) if present (RFC 7959 §2.2).
    public var block2: (number: UInt32, more: Bool, szx: UInt8)?
    public var size2: UInt64?
    public var payloadCount: Int

    public var isSuccess: Bool { codeClass == 2 }
    public var codeText: String { "\(codeClass).\(codeDetail < 10 ? "0" : "")\(codeDetail)" }

    public static func == (a: CoapResponse, b: CoapResponse) -> Bool {
        a.codeClass == b.codeClass && a.codeDetail == b.codeDetail && a.contentFormat == b.contentFormat && a.etag == b.etag
            && a.block2?.number == b.block2?.number && a.block2?.more == b.block2?.more && a.block2?.szx == b.block2?.szx
            && a.size2 == b.size2 && a.payloadCount == b.payloadCount
    }
}

/// Why a request got no usable response.
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name did not resolve or no session could be made.
    case unreachable(String)
    /// Nothing came back within the time-out (retransmissions included).
    case timeout(seconds: Double)
    /// The peer reset the exchange, ICMP said unreachable, or DTLS failed.
    case failed(String)
    /// The response was larger than the block buffer.
    case oversized(Int)

    public var description: String {
        switch self {
        case .unreachable(let why): return "unreachable: \(why)"
        case .timeout(let s): return "no response within \(s) s"
        case .failed(let why): return why
        case .oversized(let n): return "response payload of \(n) bytes exceeds the block buffer"
        }
    }
}

/// A blocking CoAP client over libcoap for one thread: one request at a
/// time, confirmable, with libcoap's RFC 7252 retransmission; Block2 is
/// asked for explicitly per request so the update engine sees and checks
/// every block (RFC 7959 §2.4), and libcoap never holds a body.
///
/// Message IDs are 16 bits: a long download could reuse one inside
/// EXCHANGE_LIFETIME (247 s) and a deduplicating server would replay a
/// stale response, so the client moves to a fresh session (a new local
/// port, new MID space) every `requestsPerSession` requests.
public final class CoapClient {
    public static let bufferCapacity = 1024

    private let context: OpaquePointer
    private let logger: Logger
    private var session: OpaquePointer?
    private var sessionKey: String?
    private var requestsOnSession = 0
    public var requestsPerSession = 30_000
    /// RFC 7252 §4.8 ACK_TIMEOUT in seconds (default 2) and MAX_RETRANSMIT (default 4).
    public var ackTimeout: Double = 2
    public var maxRetransmit = 4
    public private(set) var sessionsOpened = 0
    public private(set) var requestsSent = 0

    private var awaitedToken: [UInt8] = []
    private var received: CoapResponse?
    private var failure: TransportError?
    /// How many bytes of `payload` the last response filled.
    public private(set) var lastPayloadCount = 0
    /// The one block buffer: the last response's payload.
    public let payload: UnsafeMutableRawBufferPointer

    private var pskIdentity: UnsafeMutablePointer<UInt8>?
    private var pskKey: UnsafeMutablePointer<UInt8>?
    private var pskLengths = (0, 0)

    public init(logger: Logger, psk: (identity: [UInt8], key: [UInt8])? = nil) throws(TransportError) {
        self.logger = logger
        coap_startup()
        routeCoapLogsToStderr()
        coap_set_log_level(logger.logLevel <= .trace ? LOG_DEBUG : LOG_EMERG)
        guard let context = coap_new_context(nil) else { throw .failed("libcoap: cannot create a context") }
        self.context = context
        payload = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferCapacity, alignment: 8)
        if let psk {
            pskIdentity = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, psk.identity.count))
            pskIdentity!.initialize(from: psk.identity, count: psk.identity.count)
            pskKey = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, psk.key.count))
            pskKey!.initialize(from: psk.key, count: psk.key.count)
            pskLengths = (psk.identity.count, psk.key.count)
        }
        coap_set_app_data(context, Unmanaged.passUnretained(self).toOpaque())
        coap_register_response_handler(context, clientResponseHandler)
        coap_register_nack_handler(context, clientNackHandler)
    }

    deinit {
        if let session { coap_session_release(session) }
        coap_free_context(context)
        payload.deallocate()
        pskIdentity?.deallocate()
        pskKey?.deallocate()
    }

    /// Drops the current session (the next request opens a new one).
    public func closeSession() {
        if let session { coap_session_release(session) }
        session = nil
        sessionKey = nil
    }

    /// Sends a GET and waits up to `timeout` seconds for its response.
    public func get(_ uri: CoapURI, address: Resolved, accept: UInt16? = nil,
                    block2: (number: UInt32, szx: UInt8)? = nil, timeout: Double) throws(TransportError) -> CoapResponse {
        let session = try sessionFor(uri: uri, address: address)
        guard let pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, session) else {
            throw .failed("libcoap: cannot allocate a PDU")
        }
        var tokenLength = 0
        var token = [UInt8](repeating: 0, count: 8)
        coap_session_new_token(session, &tokenLength, &token)
        awaitedToken = Array(token.prefix(tokenLength))
        coap_add_token(pdu, tokenLength, token)
        // Options in ascending number order (RFC 7252 §3.1).
        if !uri.hostIsIPLiteral {
            let host = Array(uri.host.utf8)
            coap_add_option(pdu, coap_option_num_t(COAP_OPTION_URI_HOST), host.count, host)
        }
        for segment in uri.path {
            let bytes = Array(segment.utf8)
            coap_add_option(pdu, coap_option_num_t(COAP_OPTION_URI_PATH), bytes.count, bytes)
        }
        for item in uri.query {
            let bytes = Array(item.utf8)
            coap_add_option(pdu, coap_option_num_t(COAP_OPTION_URI_QUERY), bytes.count, bytes)
        }
        var buffer = [UInt8](repeating: 0, count: 8)
        if let accept {
            let n = coap_encode_var_safe(&buffer, buffer.count, UInt32(accept))
            coap_add_option(pdu, coap_option_num_t(COAP_OPTION_ACCEPT), Int(n), buffer)
        }
        if let block2 {
            let value = block2.number << 4 | UInt32(block2.szx & 7)
            let n = coap_encode_var_safe(&buffer, buffer.count, value)
            coap_add_option(pdu, coap_option_num_t(COAP_OPTION_BLOCK2), Int(n), buffer)
        }
        received = nil
        failure = nil
        requestsSent += 1
        requestsOnSession += 1
        guard coap_send(session, pdu) != COAP_INVALID_MID else { throw .failed("libcoap could not send to \(uri)") }

        let deadline = monotonicMilliseconds() + Int64(timeout * 1000)
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

    private func sessionFor(uri: CoapURI, address: Resolved) throws(TransportError) -> OpaquePointer {
        let key = "\(uri.secure)|\(address.description)"
        if let session, sessionKey == key, requestsOnSession < requestsPerSession { return session }
        closeSession()
        var server = address.address
        let created: OpaquePointer?
        if uri.secure {
            guard let pskIdentity, let pskKey else { throw .unreachable("\(uri): coaps needs --psk-file") }
            var setup = coap_dtls_cpsk_t()
            setup.version = UInt8(COAP_DTLS_CPSK_SETUP_VERSION)
            setup.psk_info.identity = coap_bin_const_t(length: pskLengths.0, s: UnsafePointer(pskIdentity))
            setup.psk_info.key = coap_bin_const_t(length: pskLengths.1, s: UnsafePointer(pskKey))
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
        session = created
        sessionKey = key
        requestsOnSession = 0
        sessionsOpened += 1
        logger.debug("new CoAP session to \(address) (\(sessionsOpened) so far)")
        return created
    }

    fileprivate func deliver(_ pdu: OpaquePointer) {
        let token = coap_pdu_get_token(pdu)
        guard !awaitedToken.isEmpty, token.length == awaitedToken.count,
              Array(UnsafeBufferPointer(start: token.s, count: token.length)) == awaitedToken
        else { return }  // a late answer to an earlier request
        let code = UInt32(coap_pdu_get_code(pdu).rawValue)
        var response = CoapResponse(codeClass: UInt8(code >> 5), codeDetail: UInt8(code & 0x1F), contentFormat: nil,
                                    etag: nil, block2: nil, size2: nil, payloadCount: 0)
        var iterator = coap_opt_iterator_t()
        if let o = coap_check_option(pdu, coap_option_num_t(COAP_OPTION_CONTENT_FORMAT), &iterator) {
            response.contentFormat = UInt16(truncatingIfNeeded: coap_decode_var_bytes(coap_opt_value(o), Int(coap_opt_length(o))))
        }
        if let o = coap_check_option(pdu, coap_option_num_t(COAP_OPTION_ETAG), &iterator) {
            let etagLength = Int(coap_opt_length(o))
            response.etag = etagLength == 0 ? nil : ETag(UnsafeBufferPointer(start: coap_opt_value(o)!, count: etagLength))
        }
        if let o = coap_check_option(pdu, coap_option_num_t(COAP_OPTION_BLOCK2), &iterator) {
            let v = coap_decode_var_bytes(coap_opt_value(o), Int(coap_opt_length(o)))
            response.block2 = (UInt32(v >> 4), v & 0x8 != 0, UInt8(v & 0x7))
        }
        if let o = coap_check_option(pdu, coap_option_num_t(COAP_OPTION_SIZE2), &iterator) {
            response.size2 = coap_decode_var_bytes8(coap_opt_value(o), Int(coap_opt_length(o)))
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
        lastPayloadCount = response.payloadCount
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

/// A resolved server address.
public struct Resolved: CustomStringConvertible {
    var address: coap_address_t
    public var description: String {
        var copy = address
        return withUnsafePointer(to: &copy) { describeAddress($0) }
    }

    /// Resolves `host` (a name or literal) and `port`.
    public static func resolve(host: String, port: UInt16) -> Resolved? {
        guard let address = EndpointSpec(host: host, port: port, secure: false).resolve(passive: false) else { return nil }
        return Resolved(address: address)
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
