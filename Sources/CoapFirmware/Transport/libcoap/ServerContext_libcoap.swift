internal import CCoap
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// One libcoap server context with its endpoints and DTLS set-up, and the
/// buffers libcoap keeps pointers to (PSKs, certificate paths), which live
/// exactly as long as the context. One thread owns it: libcoap 4.3.1 is
/// not thread-safe.
final class ServerContext {
    let pointer: OpaquePointer
    private(set) var endpoints: [EndpointSpec] = []
    private var psks: [PSKBuffers] = []
    private var pkiStrings: [UnsafeMutablePointer<CChar>] = []
    private let logger: Logger

    /// `owner` is handed to libcoap's callbacks (`coap_set_app_data`).
    init(configuration: ServerConfiguration, logger: Logger, owner: UnsafeMutableRawPointer) throws(ServerError) {
        self.logger = logger
        coap_startup()
        routeCoapLogsToStderr()
        coap_set_log_level(logger.logLevel <= .debug ? LOG_INFO : LOG_WARNING)
        guard let context = coap_new_context(nil) else { throw ServerError("libcoap: cannot create a context") }
        pointer = context
        coap_set_app_data(context, owner)
        // libcoap does block-wise transfer (RFC 7959); no SINGLE_BODY: bodies are ours, mapped.
        coap_context_set_block_mode(context, UInt8(COAP_BLOCK_USE_LIBCOAP))
        coap_context_set_max_idle_sessions(context, UInt32(max(1, configuration.maxSessions)))
        coap_context_set_session_timeout(context, UInt32(max(1, configuration.idleTimeout)))
        // On failure deinit frees the context.
        try setUpDTLS(configuration, owner: owner)
        try setUpEndpoints(configuration)
    }

    deinit {
        coap_free_context(pointer)
        for s in pkiStrings { free(s) }
    }

    private func setUpEndpoints(_ configuration: ServerConfiguration) throws(ServerError) {
        var specs = configuration.listen
        if configuration.usesDTLS { specs += configuration.listenSecure }
        guard !specs.isEmpty else { throw ServerError("no endpoint to listen on (plain CoAP is off and no DTLS is configured)", isUsage: true) }
        var addresses: [(EndpointSpec, coap_address_t)] = []
        for spec in specs {
            if spec.secure && !configuration.usesDTLS {
                throw ServerError("--listen \(spec): coaps needs --psk-file or --cert", isUsage: true)
            }
            guard let address = spec.resolve() else { throw ServerError("--listen \(spec): cannot resolve the address", isUsage: true) }
            // Every port is checked before any is bound: our own dual-stack
            // [::] socket would otherwise hold the port of 0.0.0.0.
            let probe = UDPPort.probe(address)
            guard probe == 0 else {
                let why = probe == EADDRINUSE ? "port \(spec.port) is already in use" : String(cString: strerror(probe))
                throw ServerError("\(spec.secure ? "--listen-dtls" : "--listen") \(spec): cannot bind: \(why)", isUsage: probe == EADDRNOTAVAIL)
            }
            addresses.append((spec, address))
        }
        for (spec, var address) in addresses {
            guard coap_new_endpoint(pointer, &address, spec.secure ? COAP_PROTO_DTLS : COAP_PROTO_UDP) != nil else {
                throw ServerError("--listen \(spec): cannot bind (\(String(cString: strerror(errno))))", isUsage: false)
            }
            endpoints.append(spec)
        }
        UDPPort.keepExclusive(Set(endpoints.map(\.port)))
    }

    private func setUpDTLS(_ configuration: ServerConfiguration, owner: UnsafeMutableRawPointer) throws(ServerError) {
        guard configuration.usesDTLS else { return }
        guard coap_dtls_is_supported() != 0 else { throw ServerError("this libcoap build has no DTLS") }
        if !configuration.psk.isEmpty {
            psks = configuration.psk.map(PSKBuffers.init)
            var setup = coap_dtls_spsk_t()
            setup.version = UInt8(COAP_DTLS_SPSK_SETUP_VERSION)
            setup.validate_id_call_back = pskLookup
            setup.id_call_back_arg = Unmanaged.passUnretained(self).toOpaque()
            setup.psk_info.key = psks[0].key
            guard coap_context_set_psk2(pointer, &setup) == 1 else { throw ServerError("libcoap: cannot set up PSK") }
        }
        if let cert = configuration.certificateFile {
            guard let key = configuration.privateKeyFile else { throw ServerError("--cert needs --cert-key", isUsage: true) }
            var setup = coap_dtls_pki_t()
            setup.version = UInt8(COAP_DTLS_PKI_SETUP_VERSION)
            setup.pki_key.key_type = COAP_PKI_KEY_PEM
            setup.pki_key.key.pem.public_cert = keep(cert)
            setup.pki_key.key.pem.private_key = keep(key)
            if let ca = configuration.caFile {
                setup.pki_key.key.pem.ca_file = keep(ca)
                setup.verify_peer_cert = 1
                setup.check_common_ca = 1
            }
            guard coap_context_set_pki(pointer, &setup) == 1 else {
                throw ServerError("--cert \(cert) / --cert-key \(key): libcoap could not load them", isUsage: true)
            }
        }
    }

    /// A C copy of `text` that lives as long as the context.
    private func keep(_ text: String) -> UnsafePointer<CChar> {
        let copy = strdup(text)!
        pkiStrings.append(copy)
        return UnsafePointer(copy)
    }

    /// The key for a PSK identity (kept in `psks`), or nil to refuse the handshake.
    fileprivate func pskKey(identity: UnsafeRawBufferPointer) -> UnsafePointer<coap_bin_const_t>? {
        for entry in psks where entry.hasIdentity(identity) { return entry.keyPointer }
        logger.warning("DTLS: unknown PSK identity \(String(decoding: identity, as: UTF8.self))")
        return nil
    }

    /// Runs libcoap's I/O for up to `milliseconds`; false when it failed.
    func process(milliseconds: UInt32) -> Bool { coap_io_process(pointer, milliseconds) >= 0 }
}

private let pskLookup: coap_dtls_id_callback_t = { identity, _, arg in
    guard let identity, let arg else { return nil }
    let context = Unmanaged<ServerContext>.fromOpaque(arg).takeUnretainedValue()
    return context.pskKey(identity: UnsafeRawBufferPointer(start: identity.pointee.s, count: identity.pointee.length))
}
