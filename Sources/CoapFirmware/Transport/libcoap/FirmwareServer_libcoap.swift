internal import CCoap
#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice
import Logging

/// Serves a firmware repository over CoAP with libcoap (RFC 7252, block-wise
/// RFC 7959, Observe RFC 7641, link format RFC 6690): the resource glue
/// between `RepositoryCatalog` / `RepositoryRouter` and libcoap.
///
/// One thread owns the libcoap context (libcoap 4.3.1 is not thread-safe);
/// callbacks find this object through `coap_set_app_data`. Bodies are
/// memory-mapped files shared by all transfers; libcoap sends the blocks.
/// The ETag is the content's SHA-256 prefix, so when libcoap drops and
/// rebuilds a long transfer's body (about 93 s after it starts) the
/// rebuilt body carries the same ETag and the client carries on.
public final class FirmwareServer {
    public let configuration: ServerConfiguration
    let logger: Logger
    private var context: ServerContext!
    private let root: String
    private let router = RepositoryRouter()
    private var files: [String: MappedFile] = [:]
    private var fileUse: [String: Int64] = [:]
    /// What the last scan found, and the libcoap resource registered for each path.
    private var catalog = RepositoryCatalog()
    private var registered: [String: OpaquePointer] = [:]
    private var scanned = false
    private var wellKnownCore = SharedBody([])
    private var reportedZeroFill: UInt = 0
    private var observers: ObserverLimits
    private let transfers = TransferRegistry()
    private var echoGate: EchoGate
    private var stopRequested = false
    private lazy var reportLimiter = ReportLimiter(limit: max(1, configuration.reportsPerMinute))
    /// Where a mirror passes the reports it stores on (the origin), per product.
    public var reportForwarder: ReportForwarder?
    public var forwardedProducts: Set<String> = []
    /// Old release folders a mirror in this process wants gone (see `Mirror.PruneRequests`).
    public var pruneRequests: Mirror.PruneRequests?
    private var reportLog: ReportLog { ReportLog(root: root, maxFileBytes: configuration.reportLogBytes) }

    public var endpoints: [EndpointSpec] { context.endpoints }

    public init(configuration: ServerConfiguration, logger: Logger) throws(ServerError) {
        self.configuration = configuration
        self.logger = logger
        observers = ObserverLimits(perAddress: max(1, configuration.maxObserversPerAddress), total: max(1, configuration.maxObservers))
        var generator = SystemRandomNumberGenerator()
        echoGate = EchoGate(secret: (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) },
                            trustSeconds: Int64(max(1, configuration.echoTrustSeconds)))
        guard let real = realpath(configuration.repository, nil) else {
            throw ServerError("--repo \(configuration.repository): \(String(cString: strerror(errno)))", isUsage: true)
        }
        root = String(cString: real)
        free(real)
        guard FileSystem.isDirectory(root) else { throw ServerError("--repo \(configuration.repository): not a directory", isUsage: true) }
        context = try ServerContext(configuration: configuration, logger: logger, owner: Unmanaged.passUnretained(self).toOpaque())
        coap_register_event_handler(context.pointer, serverEventHandler)
        // Paths not registered by the scan (nothing there, or just published) go to the
        // unknown resource; its GET handler routes them like the rest.
        let unknown = coap_resource_unknown_init2(nil, 0)
        coap_register_request_handler(unknown, COAP_REQUEST_GET, handleGet)
        // Devices' reports (issue #12): .../<m>/<model>/report is never a file, so it reaches this resource.
        coap_register_request_handler(unknown, COAP_REQUEST_POST, handlePost)
        coap_add_resource(context.pointer, unknown)
        // Our own /.well-known/core: libcoap's builds the body anew, and keeps
        // a copy per session, for every request.
        if let core = coap_resource_init(newStrConst(".well-known/core"), Int32(COAP_RESOURCE_FLAGS_RELEASE_URI)) {
            coap_register_request_handler(core, COAP_REQUEST_GET, handleWellKnownCore)
            coap_add_resource(context.pointer, core)
        }
        rescan()
    }

    // libcoap calls back while its context is freed (session events, body
    // releases): by then this object is gone, so its callbacks must find nothing.
    deinit { if let context { coap_set_app_data(context.pointer, nil) } }

    /// Runs until `stop()` or `shouldStop()` says so.
    public func run(shouldStop: () -> Bool = { false }) {
        var lastScan = monotonicMilliseconds()
        while !stopRequested && !shouldStop() {
            if !context.process(milliseconds: configuration.rescanMilliseconds) {
                logger.error("libcoap I/O processing failed; stopping")
                break
            }
            let now = monotonicMilliseconds()
            if now - lastScan >= Int64(configuration.rescanMilliseconds) {
                lastScan = now
                rescan()
            }
        }
        logger.info("shutting down")
    }

    public func stop() { stopRequested = true }

    // MARK: Repository scanning and Observe

    /// Reconciles the registered resources with the disk: every manifest and
    /// image the catalog finds is a resource, so libcoap answers other
    /// methods with 4.05 and `/.well-known/core` lists only what is there;
    /// files that went away lose their resource. Observers of a model's
    /// manifests are notified when those files change (RFC 7641 §3.2).
    func rescan() {
        let now = RepositoryCatalog.scan(root: root)
        for (path, resource) in registered where now.resources[path] == nil {
            coap_delete_resource(context.pointer, resource)
            registered[path] = nil
            logger.debug("no longer serving /\(path)")
        }
        for (path, attributes) in now.resources.sorted(by: { $0.key < $1.key }) where registered[path] == nil {
            registered[path] = register(path: path, attributes)
            // Hash new images now (in the background), so that their first
            // clients, and clients resuming after a restart, get the content ETag.
            if !attributes.observable, path.hasPrefix(RepositoryCatalog.prefixes[0]), let real = insideRoot("\(root)/\(path)"),
               let identity = FileIdentity.of(real), identity.size > MappedFile.hashInlineLimit {
                ContentETags.shared.hashInBackground(real, identity: identity)
            }
        }
        if scanned {
            for model in now.changedModels(since: catalog) {
                logger.info("new manifest for \(model); notifying observers")
                for path in now.manifestResources(of: model) {
                    if let resource = registered[path] { coap_resource_notify_observers(resource, nil) }
                }
            }
        }
        if now.resources != catalog.resources || !scanned { wellKnownCore = SharedBody(now.linkFormat) }
        catalog = now
        scanned = true
        endTransfersOfFilesChangedInPlace()
        pruneUnusedReleases()
        // Forget mappings nobody asked for in a while; transfers keep their own references.
        let time = monotonicMilliseconds()
        for (path, used) in fileUse where time - used > 300_000 {
            files[path] = nil
            fileUse[path] = nil
        }
    }

    /// Removes the release folders a mirror handed over once no transfer of
    /// this server reads a file in them (under either path spelling).
    private func pruneUnusedReleases() {
        guard let pruneRequests else { return }
        var busy: [String] = []
        for key in pruneRequests.take() {
            let parts = key.split(separator: "/").map(String.init)
            guard parts.count == 3, parts.allSatisfy(RepositoryRouter.isPlainSegment) else { continue }
            if transfers.live.values.contains(where: { $0.path.contains("/\(key)/") }) {
                busy.append(key)
                continue
            }
            logger.info("pruning /\(RepositoryCatalog.prefixes[0])/\(key): two releases old, no transfer reads it")
            try? FileSystem.removeTree("\(root)/.well-known/firmware/\(key)")
        }
        if !busy.isEmpty { pruneRequests.add(busy) }
    }

    /// A new libcoap resource for `path`; `replacing` is deleted only once
    /// the new one exists, so the new one has another address. libcoap's
    /// leftover block state still holds the old address (it only compares
    /// it): a resource made later at that address could match it for a
    /// block past 0 on that one session until the state expires, and be
    /// answered from the old body under the old ETag, which the client's
    /// ETag check and digests refuse.
    private func register(path: String, _ attributes: RepositoryCatalog.Resource, replacing old: OpaquePointer? = nil) -> OpaquePointer? {
        let observable = attributes.observable
        let flags = Int32(COAP_RESOURCE_FLAGS_RELEASE_URI | (observable ? COAP_RESOURCE_FLAGS_NOTIFY_CON : 0))
        guard let resource = coap_resource_init(newStrConst(path), flags) else { return nil }
        coap_register_request_handler(resource, COAP_REQUEST_GET, handleGet)
        let release = Int32(COAP_ATTR_FLAGS_RELEASE_NAME | COAP_ATTR_FLAGS_RELEASE_VALUE)
        if observable {
            coap_resource_set_get_observable(resource, 1)
            coap_add_attr(resource, newStrConst("rt"), newStrConst("\"firmware.manifest\""), release)
        } else {
            coap_add_attr(resource, newStrConst("rt"), newStrConst("\"firmware.image\""), release)
        }
        coap_add_attr(resource, newStrConst("ct"), newStrConst(attributes.contentFormat), release)
        if let old { coap_delete_resource(context.pointer, old) }
        coap_add_resource(context.pointer, resource)
        return resource
    }

    // MARK: Requests

    fileprivate func serve(resource: OpaquePointer?, session: OpaquePointer?, request: OpaquePointer?,
                           query: UnsafePointer<coap_string_t>?, response: OpaquePointer?) {
        guard let request, let response, let session else { return }
        // An observer passed the gate when it registered; libcoap calls us
        // again with the registration for each notification, which must not
        // become a 4.01. Its other requests pass the gate like anyone's.
        if configuration.echo == .all,
           !(observers.contains(session: UInt(bitPattern: session)) && Self.isObserveRegistration(request)),
           challenged(session, request, response) { return }
        guard let segments = uriPath(request) else {
            coap_pdu_set_code(response, COAP_RESPONSE_CODE_NOT_FOUND)
            return
        }
        var accept: UInt16?
        var iterator = coap_opt_iterator_t()
        if let option = coap_check_option(request, coap_option_num_t(COAP_OPTION_ACCEPT), &iterator) {
            accept = UInt16(truncatingIfNeeded: coap_decode_var_bytes(coap_opt_value(option), Int(coap_opt_length(option))))
        }
        let peer = describeAddress(coap_session_get_addr_remote(session))
        let path = "/" + segments.joined(separator: "/")
        switch router.route(segments: segments, accept: accept) {
        case .notFound:
            logger.debug("\(peer) GET \(path): 4.04")
            coap_pdu_set_code(response, COAP_RESPONSE_CODE_NOT_FOUND)
        case .notAcceptable:
            logger.debug("\(peer) GET \(path): 4.06 (Accept \(accept.map(String.init) ?? "-"))")
            coap_pdu_set_code(response, COAP_RESPONSE_CODE_NOT_ACCEPTABLE)
        case .file(let relative, let contentFormat, let kind):
            guard let file = mappedFile("\(root)/\(relative)") else {
                logger.debug("\(peer) GET \(path): 4.04 (no file)")
                coap_pdu_set_code(response, COAP_RESPONSE_CODE_NOT_FOUND)
                return
            }
            var block = coap_block_b_t()
            let asked = coap_get_block_b(session, request, coap_option_num_t(COAP_OPTION_BLOCK2), &block) == 1
            // SZX 7 is reserved over UDP (RFC 7959 §2.2, BERT is RFC 8323 for TCP).
            let blockSize = Block2.size(szx: asked ? min(UInt8(block.szx), Block2.maxSZX) : Block2.maxSZX)
            let record = TransferRecord(logger: logger, file: file, peer: peer, path: path, blockSize: blockSize,
                                        firstBlock: Int(block.num), registry: transfers)
            let maxAge: Int32 = kind == .image ? -1 : Int32(configuration.manifestMaxAge)
            coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT)
            // libcoap adds ETag (and Size2) only to a body that starts at block 0
            // and spans blocks. A body that fits one block, and a transfer that
            // reaches us mid-body (a fresh client session, a resume, libcoap's
            // state dropped after ~93 s), get them here, encoded as libcoap
            // encodes them (no leading zero bytes), so the ETag never changes.
            var buffer = [UInt8](repeating: 0, count: 8)
            let etag = file.etag
            let spansBlocks = file.count > blockSize
            if block.num > 0 || !spansBlocks {
                let n = coap_encode_var_safe8(&buffer, buffer.count, etag)
                coap_add_option(response, coap_option_num_t(COAP_OPTION_ETAG), Int(n), buffer)
            }
            if block.num > 0 {
                let n = coap_encode_var_safe8(&buffer, buffer.count, UInt64(file.count))
                coap_add_option(response, coap_option_num_t(COAP_OPTION_SIZE2), Int(n), buffer)
            }
            let data = file.base?.assumingMemoryBound(to: UInt8.self) ?? emptyBody
            let ok = coap_add_data_large_response(
                resource, session, request, response, query, contentFormat, maxAge, etag,
                file.count, data, releaseTransfer, Unmanaged.passRetained(record).toOpaque())
            if ok != 1 {
                // libcoap sets 4.00 itself for a block past the end; keep a client error as it is.
                if UInt32(coap_pdu_get_code(response).rawValue) >> 5 != 4 {
                    logger.warning("\(peer) GET \(path): libcoap refused the response body")
                    coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR)
                }
            } else if case .manifest = kind {
                observed(by: session, request: request)
            }
        }
    }

    /// `POST /.well-known/firmware/<m>/<model>/report` (issue #12): 4.04 for a
    /// product this server does not serve, 4.29 past a few per peer address a
    /// minute, 4.15 unless Content-Format 60, 4.13 past 256 bytes, 4.00 for
    /// what is not a report; 2.04 once it is appended to the product's log.
    fileprivate func receiveReport(session: OpaquePointer?, request: OpaquePointer?, response: OpaquePointer?) {
        guard let session, let request, let response else { return }
        let peer = describeAddress(coap_session_get_addr_remote(session))
        func answer(_ code: coap_pdu_code_t, _ why: String) {
            coap_pdu_set_code(response, code)
            let text = Array(why.utf8.prefix(120))
            if !text.isEmpty { coap_add_data(response, text.count, text) }
            logger.info("\(peer) POST report: \(why.isEmpty ? "stored" : why)")
        }
        guard let segments = uriPath(request), segments.count == 5, segments[0] == ".well-known", segments[1] == "firmware",
              segments[4] == "report", RepositoryRouter.isPlainSegment(segments[2]), RepositoryRouter.isPlainSegment(segments[3])
        else { return answer(COAP_RESPONSE_CODE_NOT_FOUND, "") }
        let product = "\(segments[2])/\(segments[3])"
        // The catalog is at most one rescan old; a release published since is on the disk already.
        let onDisk = ManifestFormat.allCases.contains { FileSystem.isRegularFile("\(root)/.well-known/firmware/\(product)/\($0.fileName)") }
        guard catalog.manifests[product] != nil || onDisk else { return answer(COAP_RESPONSE_CODE_NOT_FOUND, "no such product: \(product)") }
        let now = Int64(time(nil))
        let limited = reportLimiter.allow(describeHost(coap_session_get_addr_remote(session)), now: now)
        guard limited.allowed else {
            // RFC 8516: Max-Age says when this peer may report again.
            var maxAge = [UInt8](repeating: 0, count: 4)
            let n = coap_encode_var_safe(&maxAge, maxAge.count, UInt32(limited.retryAfter))
            coap_add_option(response, coap_option_num_t(COAP_OPTION_MAXAGE), Int(n), maxAge)
            return answer(COAP_RESPONSE_CODE_TOO_MANY_REQUESTS, "too many reports")
        }
        var iterator = coap_opt_iterator_t()
        let format = coap_check_option(request, coap_option_num_t(COAP_OPTION_CONTENT_FORMAT), &iterator).map {
            coap_decode_var_bytes(coap_opt_value($0), Int(coap_opt_length($0)))
        }
        guard format == 60 else { return answer(COAP_RESPONSE_CODE_UNSUPPORTED_CONTENT_FORMAT, "expected Content-Format 60 (application/cbor)") }
        var length = 0, offset = 0, total = 0
        var data: UnsafePointer<UInt8>?
        _ = coap_get_data_large(request, &length, &data, &offset, &total)
        guard total <= FleetReport.maxBytes, length <= FleetReport.maxBytes else {
            var size1 = [UInt8](repeating: 0, count: 4)
            let n = coap_encode_var_safe(&size1, size1.count, UInt32(FleetReport.maxBytes))
            coap_add_option(response, coap_option_num_t(COAP_OPTION_SIZE1), Int(n), size1)
            return answer(COAP_RESPONSE_CODE_REQUEST_TOO_LARGE, "at most \(FleetReport.maxBytes) bytes")
        }
        let body = data.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
        let report: FleetReport
        switch FleetReport.parse(body) {
        case .success(let parsed): report = parsed
        case .failure(let error): return answer(COAP_RESPONSE_CODE_BAD_REQUEST, error.description)
        }
        var identity: String?
        if let psk = coap_session_get_psk_identity(session), let s = psk.pointee.s {
            let bytes = UnsafeBufferPointer(start: s, count: psk.pointee.length)
            identity = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F } ? String(decoding: bytes, as: UTF8.self) : Hex.encode(bytes)
        }
        do {
            try reportLog.append(report, product: product, peer: peer, identity: identity, time: now)
            answer(COAP_RESPONSE_CODE_CHANGED, "")
            if forwardedProducts.contains(product) { reportForwarder?.enqueue(product: product, body: body) }
        } catch {
            logger.warning("cannot store a report: \(error.description)")
            answer(COAP_RESPONSE_CODE_INTERNAL_ERROR, "cannot store the report")
        }
    }

    fileprivate func serveWellKnownCore(resource: OpaquePointer?, session: OpaquePointer?, request: OpaquePointer?,
                                        query: UnsafePointer<coap_string_t>?, response: OpaquePointer?) {
        guard let session, let request, let response else { return }
        if configuration.echo == .all, challenged(session, request, response) { return }
        // In 64-byte blocks: a 23-byte request gets about 80 bytes back (3.4×, RFC 9175 §2.4
        // asks for 3) instead of the whole list (29× for one model, more with each model).
        _ = wellKnownCore.respond(session: session, request: request, response: response,
                                  contentFormat: CoapContentFormat.linkFormat, maxSZX: 2)
    }

    /// Answers 4.01 with an Echo value (RFC 9175 §2.4) when the peer's
    /// address is not verified and the request does not echo its value.
    private func challenged(_ session: OpaquePointer, _ request: OpaquePointer, _ response: OpaquePointer) -> Bool {
        // A DTLS handshake (with its cookie exchange) has verified the address already.
        guard coap_session_get_proto(session) == COAP_PROTO_UDP else { return false }
        var iterator = coap_opt_iterator_t()
        let echo = coap_check_option(request, coap_option_num_t(COAP_OPTION_ECHO), &iterator).map { o in
            Array(UnsafeBufferPointer(start: coap_opt_value(o), count: Int(coap_opt_length(o))))
        }
        let address = describeHost(coap_session_get_addr_remote(session))
        guard case .challenge(let value) = echoGate.check(address: address, echo: echo, now: Int64(time(nil))) else { return false }
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_UNAUTHORIZED)
        coap_add_option(response, coap_option_num_t(COAP_OPTION_ECHO), value.count, value)
        return true
    }

    /// The request carries Observe 0 (a registration, RFC 7641 §2).
    private static func isObserveRegistration(_ request: OpaquePointer) -> Bool {
        var iterator = coap_opt_iterator_t()
        guard let option = coap_check_option(request, coap_option_num_t(COAP_OPTION_OBSERVE), &iterator) else { return false }
        return coap_decode_var_bytes(coap_opt_value(option), Int(coap_opt_length(option))) == 0
    }

    /// The request's Uri-Path segments (RFC 7252 §5.10.1), nil if one is not UTF-8.
    private func uriPath(_ request: OpaquePointer) -> [String]? {
        var filter = coap_opt_filter_t()
        coap_option_filter_clear(&filter)
        coap_option_filter_set(&filter, coap_option_num_t(COAP_OPTION_URI_PATH))
        var iterator = coap_opt_iterator_t()
        guard coap_option_iterator_init(request, &iterator, &filter) != nil else { return [] }
        var segments: [String] = []
        while let option = coap_option_next(&iterator) {
            let bytes = UnsafeBufferPointer(start: coap_opt_value(option), count: Int(coap_opt_length(option)))
            guard let segment = String(validating: bytes, as: UTF8.self) else { return nil }
            segments.append(segment)
        }
        return segments
    }

    /// A file written over in place (`cp new.bin` onto a served image) no
    /// longer holds the bytes its transfers began with, and what was cut
    /// off reads as zeros (the SIGBUS guard). Those transfers are ended:
    /// libcoap answers later blocks of a body from its own transfer state,
    /// found by the resource's address, so the resource is replaced by a
    /// new one; the next request reaches our handler and gets the new
    /// bytes under a new ETag (or 4.00 past their end), and the client
    /// starts that image again.
    private func endTransfersOfFilesChangedInPlace() {
        let zeroFilled = MappedFile.zeroFilledPages
        if zeroFilled > reportedZeroFill {
            logger.warning("a served file shrank while being served: \(zeroFilled - reportedZeroFill) page(s) read as zeros")
            reportedZeroFill = zeroFilled
        }
        var changed: [ObjectIdentifier: Bool] = [:]
        var paths: Set<String> = []
        for entry in transfers.live.values {
            let id = ObjectIdentifier(entry.file)
            if changed[id] == nil { changed[id] = !transfers.ended.contains(id) && entry.file.changedInPlace }
            if changed[id] == true { paths.insert(String(entry.path.dropFirst())) }
        }
        // Once per mapping: libcoap may hold the old bodies a while longer.
        transfers.ended = transfers.ended.union(changed.filter(\.value).keys)
            .intersection(transfers.live.values.map { ObjectIdentifier($0.file) })
        for path in paths.sorted() {
            // Images only: replacing a manifest would drop its observers (a
            // manifest changed in place fails its signature at the client anyway).
            guard let old = registered[path], let attributes = catalog.resources[path], !attributes.observable else { continue }
            logger.warning("/\(path) changed in place while being served; ending its transfers")
            registered[path] = register(path: path, attributes, replacing: old)
        }
    }

    /// `path` with symlinks resolved, if that is inside the repository.
    private func insideRoot(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        let resolved = String(cString: real)
        free(real)
        guard resolved.hasPrefix(root == "/" ? "/" : root + "/") else {
            logger.warning("refusing \(path): resolves outside the repository (\(resolved))")
            return nil
        }
        return resolved
    }

    /// The mapping of a file inside the repository, refreshed when the file
    /// changes; nil for anything that is not a regular file inside the root
    /// once symlinks are resolved.
    private func mappedFile(_ path: String) -> MappedFile? {
        guard let resolved = insideRoot(path) else { return nil }
        fileUse[resolved] = monotonicMilliseconds()
        guard let identity = FileIdentity.of(resolved) else { return nil }
        if let cached = files[resolved], cached.identity == identity { return cached }
        guard let file = MappedFile(path: resolved) else { return nil }
        files[resolved] = file
        return file
    }

    /// libcoap added an observer for this request before calling us (and
    /// drops it again if we answer with an error): count it, and drop the
    /// observers of the sessions it evicts, which makes them idle and
    /// recyclable. Without this, one source registering from many ports
    /// holds every session (issue #13 item 1).
    private func observed(by session: OpaquePointer, request: OpaquePointer) {
        guard Self.isObserveRegistration(request) else { return }
        // DTLS peers are authenticated and cannot be spoofed from many
        // ports; plain registrations must never evict (and so disconnect) them.
        guard coap_session_get_proto(session) == COAP_PROTO_UDP else { return }
        let address = describeHost(coap_session_get_addr_remote(session))
        for evicted in observers.register(session: UInt(bitPattern: session), address: address) {
            guard let other = OpaquePointer(bitPattern: evicted) else { continue }
            logger.debug("observers: \(address) or the total is over its bound; dropping the oldest observer")
            coap_session_disconnected(other, COAP_NACK_NOT_DELIVERABLE)
        }
    }

    fileprivate func sessionEvent(_ session: OpaquePointer?, _ event: coap_event_t) {
        if event == COAP_EVENT_SERVER_SESSION_DEL, let session { observers.remove(session: UInt(bitPattern: session)) }
    }
}

/// One body handed to libcoap: keeps the mapping alive and logs when released.
final class TransferRecord {
    // The logger and the registry, not the server: libcoap also releases
    // bodies while the server is being torn down (coap_free_context in deinit).
    let logger: Logger
    let file: MappedFile
    let peer: String
    let path: String
    let blockSize: Int
    let firstBlock: Int
    let started = monotonicMilliseconds()
    private weak var registry: TransferRegistry?

    init(logger: Logger, file: MappedFile, peer: String, path: String, blockSize: Int, firstBlock: Int,
         registry: TransferRegistry) {
        (self.logger, self.file, self.peer) = (logger, file, peer)
        (self.path, self.blockSize, self.firstBlock) = (path, blockSize, firstBlock)
        self.registry = registry
        registry.live[ObjectIdentifier(self)] = (file, path)
    }

    /// libcoap released the body.
    func released() { registry?.live[ObjectIdentifier(self)] = nil }
}

/// The bodies libcoap holds now: which file, under which request path.
final class TransferRegistry {
    var live: [ObjectIdentifier: (file: MappedFile, path: String)] = [:]
    /// Files changed in place whose transfers were ended already.
    var ended: Set<ObjectIdentifier> = []
}

// Never written after initialization: a one-byte placeholder for empty bodies.
nonisolated(unsafe) private let emptyBody: UnsafePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    p.initialize(to: 0)
    return UnsafePointer(p)
}()

private func server(of session: OpaquePointer?) -> FirmwareServer? {
    guard let session, let context = coap_session_get_context(session), let data = coap_get_app_data(context) else { return nil }
    return Unmanaged<FirmwareServer>.fromOpaque(data).takeUnretainedValue()
}

private let handleWellKnownCore: coap_method_handler_t = { resource, session, request, query, response in
    server(of: session)?.serveWellKnownCore(resource: resource, session: session, request: request, query: query, response: response)
}

private let handlePost: coap_method_handler_t = { _, session, request, _, response in
    server(of: session)?.receiveReport(session: session, request: request, response: response)
}

private let handleGet: coap_method_handler_t = { resource, session, request, query, response in
    server(of: session)?.serve(resource: resource, session: session, request: request, query: query, response: response)
}

private let releaseTransfer: coap_release_large_data_t = { _, pointer in
    guard let pointer else { return }
    let record = Unmanaged<TransferRecord>.fromOpaque(pointer).takeRetainedValue()
    record.released()
    let elapsed = Double(monotonicMilliseconds() - record.started) / 1000
    // libcoap releases a body when its block-transfer state ends (the last
    // block sent and the state timed out, or the session went away); the
    // time is from the request that created the body to that release.
    record.logger.info(
        "transfer \(record.peer) \(record.path): \(record.file.count) bytes, block \(record.blockSize), from block \(record.firstBlock), body held \(elapsed) s, etag \(String(record.file.etag, radix: 16))")
}

private let serverEventHandler: coap_event_handler_t = { session, event in
    server(of: session)?.sessionEvent(session, event)
    return 0
}

/// A libcoap-owned copy of a string (freed by libcoap with the RELEASE flags).
private func newStrConst(_ text: String) -> UnsafeMutablePointer<coap_str_const_t> {
    let bytes = Array(text.utf8)
    return coap_new_str_const(bytes, bytes.count)
}
