#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import Logging

/// What `coap-fw-client update` was asked to do (SPEC §7).
public struct UpdateOptions: Sendable {
    public var trustedKeys: [PublicKey]
    public var manufacturer: String
    public var model: String
    public var stateDirectory: String
    public var domain: String?
    public var origin: CoapURI?
    public var format: ManifestFormat = .cbor
    public var blockSize = 1024
    /// Host name → address (and optional port), like curl's --resolve.
    public var resolve: [String: (address: String, port: UInt16?)] = [:]
    public var slotSize: UInt64?
    /// Longest wait without progress at one server, in seconds.
    public var timeout: Double = 30
    public var psk: (identity: [UInt8], key: [UInt8])?
    /// Requests per CoAP session before a fresh one (new port, new Message-ID space).
    public var requestsPerSession = 30_000
    /// How long one exchange may wait, libcoap's retransmissions included,
    /// before it is dropped and the request sent afresh (until `timeout`).
    /// RFC 7252's exponential back-off alone needs 2+4+8+16 s for four lost
    /// tries; on a lossy link a fresh exchange every few seconds keeps a
    /// moving transfer inside `--timeout` while staying one request at a time.
    public var exchangeTimeout: Double = 6
    /// RFC 7252 §4.8 transmission parameters: ACK_TIMEOUT (s) and MAX_RETRANSMIT.
    public var ackTimeout: Double = 2
    public var maxRetransmit = 4

    public init(trustedKeys: [PublicKey], manufacturer: String, model: String, stateDirectory: String) {
        self.trustedKeys = trustedKeys
        self.manufacturer = manufacturer
        self.model = model
        self.stateDirectory = stateDirectory
    }

    /// The local server's manifest URI (SPEC §4 discovery step 1).
    public func localManifestURI(domain: String) -> CoapURI {
        CoapURI(secure: false, host: "_firmware.\(domain)", path: RepositoryLayout.modelSegments(manufacturer: manufacturer, model: model) + [format.fileName])
    }

    /// The origin's manifest URI: the standard path when `--origin` names only a server.
    public func originManifestURI() -> CoapURI? {
        guard var origin else { return nil }
        if origin.path.isEmpty || origin.path == [""] {
            origin.path = RepositoryLayout.modelSegments(manufacturer: manufacturer, model: model) + [format.fileName]
        }
        return origin
    }
}

/// One server tried, and how it went.
public struct AttemptReport: Sendable {
    public var uri: String
    public var result: ResultCode
    public var reason: String?
    public var bytes: UInt64
}

/// The outcome of an update run (`--json` prints it, SPEC §7).
public struct UpdateReport: Sendable {
    public var result: ResultCode
    public var reason: String?
    public var source: String?
    public var version: String?
    public var bytesTransferred: UInt64
    public var attempts: [AttemptReport]

    public var json: JSONValue {
        .object([
            ("result", .string(result.rawValue)),
            ("source", source.map { .string($0) } ?? .null),
            ("version", version.map { .string($0) } ?? .null),
            ("bytesTransferred", .number(String(bytesTransferred))),
            ("attempts", .array(attempts.map { a in
                .object([("uri", .string(a.uri)), ("result", .string(a.result.rawValue)),
                         ("reason", a.reason.map { .string($0) } ?? .null), ("bytes", .number(String(a.bytes)))])
            })),
            ("reason", reason.map { .string($0) } ?? .null),
        ])
    }
}

/// Progress of the image download, for a terminal progress bar.
public struct Progress: Sendable {
    public var component: String
    public var done: UInt64
    public var total: UInt64
}

/// Drives `UpdateEngine` with real I/O: discovery, CoAP requests through
/// libcoap, the staging slot, digests, the atomic install (SPEC §4-§6).
public final class Updater {
    public let options: UpdateOptions
    private let logger: Logger
    private let progress: ((Progress) -> Void)?
    private var bytesTransferred: UInt64 = 0

    public init(options: UpdateOptions, logger: Logger, progress: ((Progress) -> Void)? = nil) {
        self.options = options
        self.logger = logger
        self.progress = progress
    }

    /// The domain from /etc/resolv.conf: its `domain` line, else the first `search` entry.
    public static func resolvConfDomain(path: String = "/etc/resolv.conf") -> String? {
        guard let bytes = try? FileSystem.read(path, limit: 1 << 20) else { return nil }
        var search: String?
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2 else { continue }
            if words[0] == "domain" { return String(words[1]) }
            if words[0] == "search", search == nil { search = String(words[1]) }
        }
        return search
    }

    /// Runs discovery and the update; throws only when the state folder is unusable.
    public func run() throws(FileSystemError) -> UpdateReport {
        let state = try DeviceState(root: options.stateDirectory)
        try state.lock()
        state.cleanUp()
        let installed: DeviceState.Record?
        do {
            installed = try state.installed()
        } catch {
            throw FileSystemError(path: state.installedDirectory, reason: error.description)
        }

        var candidates: [CoapURI] = []
        if let domain = options.domain ?? Self.resolvConfDomain() {
            candidates.append(options.localManifestURI(domain: domain))
        } else {
            logger.info("no local domain (--domain or /etc/resolv.conf): skipping local discovery")
        }
        if let origin = options.originManifestURI() { candidates.append(origin) }

        var attempts: [AttemptReport] = []
        var lastAnswered: AttemptReport?
        for uri in candidates {
            let before = bytesTransferred
            let (attempt, answered) = attemptServer(uri, state: state, installed: installed)
            attempts.append(AttemptReport(uri: attempt.uri, result: attempt.result, reason: attempt.reason, bytes: bytesTransferred - before))
            if attempt.result == .updated || attempt.result == .upToDate {
                let now = (try? state.installed()) ?? nil
                return UpdateReport(result: attempt.result, reason: nil, source: uri.description,
                                    version: now?.version.description, bytesTransferred: bytesTransferred, attempts: attempts)
            }
            logger.warning("\(uri): \(attempt.result.rawValue): \(attempt.reason ?? "")")
            if answered { lastAnswered = attempt }
        }
        return UpdateReport(result: lastAnswered?.result ?? .noServer,
                            reason: lastAnswered?.reason ?? (candidates.isEmpty ? "no server configured" : "no server answered"),
                            source: nil, version: installed?.version.description,
                            bytesTransferred: bytesTransferred, attempts: attempts)
    }

    /// Resolves a URI's host through `--resolve` first, then the system resolver.
    private func address(for uri: CoapURI) -> Resolved? {
        if let mapped = options.resolve[uri.host] {
            return Resolved.resolve(host: mapped.address, port: mapped.port ?? uri.port)
        }
        return Resolved.resolve(host: uri.host, port: uri.port)
    }

    /// One server: fetch and verify its manifest, download, install. Returns
    /// the outcome and whether the server answered at all.
    private func attemptServer(_ manifestURI: CoapURI, state: DeviceState, installed: DeviceState.Record?)
        -> (AttemptReport, Bool) {
        logger.info("trying \(manifestURI)")
        let szx = UInt8(BlockSize.szx(for: options.blockSize) ?? 6)
        let client: CoapClient
        do {
            client = try CoapClient(logger: logger, psk: options.psk)
        } catch {
            return (AttemptReport(uri: manifestURI.description, result: .noServer, reason: error.description, bytes: 0), false)
        }
        client.requestsPerSession = options.requestsPerSession
        client.ackTimeout = options.ackTimeout
        client.maxRetransmit = options.maxRetransmit
        let transfer = Transfer(updater: self, client: client, state: state, szx: szx)
        let policy = DevicePolicy(manufacturer: options.manufacturer, model: options.model,
                                  installed: installed?.release, slotSize: options.slotSize)
        var engine = UpdateEngine(policy: policy, szx: szx)
        var queue = engine.start()
        while !queue.isEmpty {
            let action = queue.removeFirst()
            switch action {
            case .fetchManifest:
                queue += transfer.fetchManifest(manifestURI, engine: &engine)
            case .fetchBlock(let component, let number, let szx):
                queue += transfer.fetchBlock(component: component, number: number, szx: szx, engine: &engine)
            case .store(let component, let offset):
                transfer.store(component: component, offset: offset)
            case .discard(let component):
                transfer.discard(component: component)
            case .checkDigests(let component):
                queue += transfer.checkDigests(component: component, engine: &engine)
            case .install:
                queue += transfer.install(engine: &engine)
            case .finish(let outcome):
                transfer.close()
                let result = outcome.result == .transferFailed && !transfer.answered ? .noServer : outcome.result
                return (AttemptReport(uri: manifestURI.description, result: result, reason: outcome.reason, bytes: 0), transfer.answered)
            }
        }
        return (AttemptReport(uri: manifestURI.description, result: .transferFailed, reason: "engine stopped", bytes: 0), transfer.answered)
    }

    fileprivate func count(_ bytes: Int) { bytesTransferred += UInt64(bytes) }
    fileprivate func report(_ p: Progress) { progress?(p) }
    fileprivate var log: Logger { logger }
}

/// The I/O of one attempt: requests, staging files, digests, resume records.
private final class Transfer {
    unowned let updater: Updater
    let client: CoapClient
    let state: DeviceState
    let szx: UInt8
    var answered = false
    var verified: VerifiedManifest?
    var manifestID = ""
    var imageURIs: [CoapURI] = []
    var verifiers: [ImageVerifier] = []
    var files: [Int32] = []
    var digests: [[UInt8]] = []
    var lastSave = monotonicMilliseconds()
    var unsavedBytes = 0
    var lastETag: ETag?
    /// Set when the staging slot could not be written; ends the attempt.
    var storageFailure: String?

    init(updater: Updater, client: CoapClient, state: DeviceState, szx: UInt8) {
        self.updater = updater
        self.client = client
        self.state = state
        self.szx = szx
    }

    var timeout: Double { updater.options.timeout }

    /// One request, retried while the server makes no progress for less than
    /// the time-out (libcoap retransmits each one per RFC 7252 §4.2).
    func request(_ uri: CoapURI, accept: UInt16? = nil, block2: (number: UInt32, szx: UInt8)?) -> Result<CoapResponse, TransportError> {
        guard let address = resolveAddress(uri) else { return .failure(.unreachable("cannot resolve \(uri.host)")) }
        let deadline = monotonicMilliseconds() + Int64(timeout * 1000)
        while true {
            let left = Double(deadline - monotonicMilliseconds()) / 1000
            if left <= 0 { return .failure(.timeout(seconds: timeout)) }
            do {
                let response = try client.get(uri, address: address, accept: accept, block2: block2,
                                              timeout: min(left, updater.options.exchangeTimeout))
                answered = true
                return .success(response)
            } catch .timeout {
                continue
            } catch {
                // An RST or ICMP error: the server is not there; no point waiting.
                return .failure(error)
            }
        }
    }

    private var addresses: [String: Resolved] = [:]

    private func resolveAddress(_ uri: CoapURI) -> Resolved? {
        let key = "\(uri.host)|\(uri.port)"
        if let known = addresses[key] { return known }
        let mapped = updater.options.resolve[uri.host]
        let found = mapped.map { Resolved.resolve(host: $0.address, port: $0.port ?? uri.port) } ?? Resolved.resolve(host: uri.host, port: uri.port)
        addresses[key] = found
        return found
    }

    func fetchManifest(_ uri: CoapURI, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        var body: [UInt8] = []
        var etag: ETag?
        var number: UInt32 = 0
        while true {
            switch request(uri, block2: (number, szx)) {
            case .failure(let error):
                return engine.transportFailed("\(uri): \(error)")
            case .success(let response):
                guard response.isSuccess else {
                    return engine.transportFailed("\(uri): CoAP \(response.codeText)")
                }
                if number > 0, response.etag != etag {
                    return engine.transportFailed("\(uri): ETag changed while fetching the manifest")
                }
                etag = response.etag
                let block = response.block2 ?? (0, false, szx)
                guard block.number == number else {
                    return engine.transportFailed("\(uri): manifest block \(block.number) when \(number) was asked for")
                }
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: client.payload[0..<response.payloadCount]))
                if body.count > Manifest.maxEncodedSize {
                    return engine.manifestFailed(.badManifest, "\(uri): manifest: more than \(Manifest.maxEncodedSize) bytes")
                }
                if !block.more { return verify(body, from: uri, engine: &engine) }
                number += 1
            }
        }
    }

    private func verify(_ envelope: [UInt8], from uri: CoapURI, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        let verified: VerifiedManifest
        do {
            verified = try ManifestVerifier(trustedKeys: updater.options.trustedKeys).verify(envelope)
        } catch {
            return engine.manifestFailed(error.resultCode, "\(uri): \(error.description)")
        }
        let manifest = verified.manifest
        var uris: [CoapURI] = []
        for image in manifest.images {
            guard let resolved = uri.resolving(image.location) else {
                return engine.manifestFailed(.badManifest, "\(uri): image location \"\(image.location)\" is not a coap or coaps URI reference")
            }
            uris.append(resolved)
        }
        self.verified = verified
        imageURIs = uris
        manifestID = Hex.encode(DigestHasher.hash(.sha256, CBORCodec.encode(manifest.cborValue)))
        updater.log.info("\(uri): manifest \(manifest.manufacturer)/\(manifest.model) \(manifest.firmwareVersion) verified (kid \(Hex.encode(verified.signerKid)))")
        do {
            try openStaging(manifest)
        } catch {
            return engine.manifestFailed(.transferFailed, "staging slot: \(error)")
        }
        return engine.manifestVerified(manifest, resume: resumePoint(manifest))
    }

    private func openStaging(_ manifest: Manifest) throws(FileSystemError) {
        for image in manifest.images {
            let path = state.stagingPath(image.name)
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw .errno(path, "cannot open") }
            files.append(fd)
            verifiers.append(ImageVerifier(image))
        }
        digests = Array(repeating: [], count: manifest.images.count)
    }

    /// Continues a download of this same manifest: re-hashes every staged
    /// byte before the resume point (SPEC §6) and refuses a resume whose
    /// completed components no longer match their digests.
    private func resumePoint(_ manifest: Manifest) -> UpdateEngine.ResumePoint? {
        // The block size may differ from the interrupted run's, as long as the offset is a block boundary.
        guard let record = state.loadResume(), record.manifestID == manifestID, record.offset % UInt64(16 << Int(szx)) == 0,
              record.component < manifest.images.count, record.offset <= manifest.images[record.component].size
        else {
            for fd in files { ftruncate(fd, 0) }
            state.clearResume()
            return nil
        }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        for index in 0...record.component {
            let limit = index == record.component ? record.offset : manifest.images[index].size
            var done: UInt64 = 0
            while done < limit {
                let want = Int(min(UInt64(chunk.count), limit - done))
                let n = chunk.withUnsafeMutableBytes { pread(files[index], $0.baseAddress, want, off_t(done)) }
                guard n == want else {
                    updater.log.warning("staged \(manifest.images[index].name) is shorter than its resume record; starting over")
                    for fd in files { ftruncate(fd, 0) }
                    verifiers = manifest.images.map { ImageVerifier($0) }
                    state.clearResume()
                    return nil
                }
                chunk.withUnsafeBytes { verifiers[index].update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                done += UInt64(n)
            }
            if index < record.component {
                do {
                    digests[index] = try verifiers[index].finish()
                } catch {
                    updater.log.warning("staged \(manifest.images[index].name) no longer matches: \(error); starting over")
                    for fd in files { ftruncate(fd, 0) }
                    verifiers = manifest.images.map { ImageVerifier($0) }
                    state.clearResume()
                    return nil
                }
            }
        }
        ftruncate(files[record.component], off_t(record.offset))
        updater.log.info("resuming \(manifest.images[record.component].name) at byte \(record.offset)")
        return UpdateEngine.ResumePoint(component: record.component, offset: record.offset, etag: record.etag)
    }

    func fetchBlock(component: Int, number: UInt32, szx: UInt8, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        if let storageFailure { return engine.transportFailed("staging slot: \(storageFailure)") }
        let uri = imageURIs[component]
        switch request(uri, block2: (number, szx)) {
        case .failure(let error):
            return engine.transportFailed("\(uri): block \(number): \(error)")
        case .success(let response):
            guard response.isSuccess else { return engine.transportFailed("\(uri): block \(number): CoAP \(response.codeText)") }
            // No Block2 in the answer: the whole body came in one response (RFC 7959 §2.4).
            let block = response.block2 ?? (0, false, szx)
            lastETag = response.etag
            return engine.blockReceived(BlockReceiver.Block(
                number: block.number, more: block.more, szx: block.szx, etag: response.etag,
                size2: response.size2, payloadCount: response.payloadCount))
        }
    }

    func store(component: Int, offset: UInt64) {
        guard let verified else { return }
        let length = lastPayloadCount
        var written = 0
        while written < length {
            let n = pwrite(files[component], client.payload.baseAddress! + written, length - written, off_t(offset) + off_t(written))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                // A full or failing slot is reported as such, not later as a digest mismatch.
                storageFailure = "\(state.stagingPath(verified.manifest.images[component].name)): write failed: \(String(cString: strerror(errno)))"
                return
            }
            written += n
        }
        verifiers[component].update(bufferPointer: UnsafeRawBufferPointer(rebasing: client.payload[0..<length]))
        updater.count(length)
        unsavedBytes += length
        let image = verified.manifest.images[component]
        let end = offset + UInt64(length)
        updater.report(Progress(component: image.name, done: end, total: image.size))
        // A resume point at most every 256 KiB or second: each costs an fsync.
        let now = monotonicMilliseconds()
        if end < image.size, unsavedBytes >= 256 * 1024 || now - lastSave >= 1000 {
            let record = DeviceState.ResumeRecord(manifestID: manifestID, component: component, offset: end,
                                                  blockSize: 16 << Int(szx), etag: lastETag)
            if end % UInt64(16 << Int(szx)) == 0 {
                try? state.saveResume(record, stagedFile: state.stagingPath(image.name))
                lastSave = now
                unsavedBytes = 0
            }
        }
    }

    var lastPayloadCount: Int { client.lastPayloadCount }

    func discard(component: Int) {
        guard let verified, component < files.count else { return }
        ftruncate(files[component], 0)
        verifiers[component] = ImageVerifier(verified.manifest.images[component])
        state.clearResume()
    }

    func checkDigests(component: Int, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        if let storageFailure { return engine.transportFailed("staging slot: \(storageFailure)") }
        do {
            digests[component] = try verifiers[component].finish()
            return engine.digestsChecked(matching: true)
        } catch {
            return engine.digestsChecked(matching: false, reason: "\(imageURIs[component]): \(error.description)")
        }
    }

    func install(engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        guard let verified else { return engine.installFinished(error: "no manifest") }
        close()
        do {
            let record = try state.install(verified, sha256: digests)
            updater.log.notice("installed \(record.manufacturer)/\(record.model) \(record.version)")
            return engine.installFinished(error: nil)
        } catch {
            return engine.installFinished(error: error.description)
        }
    }

    func close() {
        for fd in files where fd >= 0 { Glibc.close(fd) }
        files = files.map { _ in -1 }
    }
}
