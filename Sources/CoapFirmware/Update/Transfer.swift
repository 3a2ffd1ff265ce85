#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice
import Logging

/// The I/O of one attempt at one server, performing `UpdateEngine`'s
/// actions: requests, staging files, digests, resume records, the install.
final class Transfer {
    let requester: Requester
    let state: DeviceState
    let szx: UInt8
    let trustedKeys: [PublicKey]
    /// The device's product (a SUIT envelope's identity conditions are checked
    /// against it) and the format asked for: a SUIT body is read only when
    /// SUIT was asked for, and a COSE or JWS one never then, so a server
    /// cannot pick the reader whose rules it likes.
    let options: UpdateOptions
    let logger: Logger
    /// Progress, and image bytes received since the last call.
    let progress: (Progress, UInt64) -> Void

    var verified: VerifiedManifest?
    var manifestID = ""
    /// The ETag of the manifest fetched (the body's, as the block rules held it).
    private(set) var manifestETag: ETag?
    var imageURIs: [CoapURI] = []
    var verifiers: [BlockDigestVerifier<OpenSSLDigests>] = []
    var files: [Int32] = []
    /// The block just received; its payload is the window's until the next request.
    private var received: Requester.Delivery?
    var lastSave = monotonicMilliseconds()
    var unsavedBytes = 0
    /// Set when the staging slot could not be written; ends the attempt.
    var storageFailure: String?

    init(requester: Requester, state: DeviceState, szx: UInt8, trustedKeys: [PublicKey],
         options: UpdateOptions, logger: Logger, progress: @escaping (Progress, UInt64) -> Void) {
        (self.requester, self.state, self.szx, self.trustedKeys) = (requester, state, szx, trustedKeys)
        self.options = options
        (self.logger, self.progress) = (logger, progress)
    }

    var images: [Component] { verified?.manifest.images ?? [] }

    func perform(_ action: UpdateEngine.Action, manifestURI: CoapURI, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        switch action {
        case .fetchManifest: return fetchManifest(manifestURI, engine: &engine)
        case .prepareStaging: return prepareStaging(engine: &engine)
        case .fetchBlock(let component, let block): return fetchBlock(component: component, block: block, engine: &engine)
        case .store(let component, let offset): store(component: component, offset: offset)
        case .discard(let component): discard(component: component)
        case .checkDigests(let component): return checkDigests(component: component, engine: &engine)
        case .install: return install(engine: &engine)
        case .finish: break
        }
        return []
    }

    func fetchManifest(_ uri: CoapURI, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        var body: [UInt8] = []
        let limit = UInt64(Manifest.maxEncodedSize)
        switch requester.fetchBody(uri, szx: szx, limit: limit, sink: { offset, bytes in
            if offset == 0 { body.removeAll(keepingCapacity: true) }  // a fresh start
            body.append(contentsOf: bytes)
            return nil
        }) {
        case .failure(.blocks(.tooLong)):
            return engine.manifestFailed(.badManifest, "\(uri): manifest: more than \(limit) bytes")
        case .failure(let error):
            return engine.transportFailed("\(uri): manifest: \(error)")
        case .success(let fetched):
            manifestETag = fetched.etag
            return verify(body, from: uri, engine: &engine)
        }
    }

    private func verify(_ envelope: [UInt8], from uri: CoapURI, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        let verified: VerifiedManifest
        do {
            verified = try options.verify(envelope, suit: options.format == .suit, trustedKeys: trustedKeys)
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
        manifestID = Hex.encode(OpenSSLSHA256.hash(CBOREncoder.encode(manifest.cborValue)))
        logger.info("\(uri): manifest \(manifest.manufacturer)/\(manifest.model) \(manifest.firmwareVersion) verified (kid \(Hex.encode(verified.signerKid)))")
        return engine.manifestVerified(verified)
    }

    /// The manifest passed every rule: open the slot, find the resume point.
    func prepareStaging(engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        guard let manifest = verified?.manifest else { return engine.transportFailed("no manifest") }
        do {
            try openStaging(manifest)
        } catch {
            return engine.transportFailed("staging slot: \(error)")
        }
        return engine.stagingPrepared(resume: resumePoint(manifest))
    }

    /// Opens each component's staging file: an earlier partial download if
    /// it is a regular file of ours, else a new file. Never through a link
    /// planted in the folder (O_NOFOLLOW, O_EXCL).
    private func openStaging(_ manifest: Manifest) throws(FileSystemError) {
        for image in manifest.images {
            let path = state.stagingPath(image.name)
            if let fd = FileSystem.openRegularFile(path) {
                files.append(fd)
            } else {
                files.append(try FileSystem.createExclusive(path, flags: O_RDWR, mode: 0o600))
            }
        }
        verifiers = manifest.images.map { BlockDigestVerifier(component: $0) }
    }

    /// Starts every component afresh: empty staging files, fresh digests, no record.
    private func startOver() {
        for fd in files { ftruncate(fd, 0) }
        verifiers = images.map { BlockDigestVerifier(component: $0) }
        state.clearResume()
    }

    /// Continues a download of this same manifest: re-hashes every staged
    /// byte before the resume point (SPEC §6) and refuses a resume whose
    /// completed components no longer match their digests.
    private func resumePoint(_ manifest: Manifest) -> UpdateEngine.ResumePoint? {
        let images = manifest.images
        // The block size may differ from the interrupted run's, as long as the offset is a block boundary.
        guard let record = state.loadResume(), record.manifestID == manifestID, Block2.isAligned(record.offset, szx: szx),
              record.component < images.count, record.offset <= images[record.component].size
        else {
            startOver()
            return nil
        }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        for index in 0...record.component {
            let limit = index == record.component ? record.offset : images[index].size
            var done: UInt64 = 0
            while done < limit {
                let want = Int(min(UInt64(chunk.count), limit - done))
                let n = chunk.withUnsafeMutableBytes { pread(files[index], $0.baseAddress, want, off_t(done)) }
                guard n == want else {
                    logger.warning("staged \(images[index].name) is shorter than its resume record; starting over")
                    startOver()
                    return nil
                }
                _ = chunk.withUnsafeBytes { verifiers[index].update(offset: done, block: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                done += UInt64(n)
            }
            if index < record.component {
                do {
                    try verifiers[index].finish(component: images[index])
                } catch {
                    logger.warning("staged \(images[index].name) no longer matches: \(error); starting over")
                    startOver()
                    return nil
                }
            }
        }
        ftruncate(files[record.component], off_t(record.offset))
        logger.info("resuming \(images[record.component].name) at byte \(record.offset)")
        return UpdateEngine.ResumePoint(component: record.component, offset: record.offset, etag: record.etag)
    }

    func fetchBlock(component: Int, block: Block2, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        if let storageFailure { return engine.transportFailed("staging slot: \(storageFailure)") }
        let uri = imageURIs[component]
        received = nil
        switch requester.fetchBlock(uri, block, bodySize: images[component].size) {
        case .failure(let error):
            return engine.transportFailed("\(uri): block \(block.number): \(error)")
        case .success(let delivery):
            let response = delivery.response
            guard response.isSuccess else { return engine.transportFailed("\(uri): block \(block.number): CoAP \(response.codeText)") }
            received = delivery
            return engine.blockReceived(response.block(asked: block.szx))
        }
    }

    func store(component: Int, offset: UInt64) {
        guard let delivery = received else { return }
        received = nil
        let response = delivery.response, payload = delivery.payload
        var written = 0
        while written < payload.count {
            let n = pwrite(files[component], payload.baseAddress! + written, payload.count - written, off_t(offset) + off_t(written))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                // A full or failing slot is reported as such, not later as a digest mismatch.
                storageFailure = "\(state.stagingPath(images[component].name)): write failed: \(String(cString: strerror(errno)))"
                return
            }
            written += n
        }
        _ = verifiers[component].update(offset: offset, block: payload)
        unsavedBytes += payload.count
        let image = images[component]
        let end = offset + UInt64(payload.count)
        progress(Progress(component: image.name, done: end, total: image.size), UInt64(payload.count))
        // A resume point at most every 256 KiB or second: each costs an fsync.
        let now = monotonicMilliseconds()
        if end < image.size, unsavedBytes >= 256 * 1024 || now - lastSave >= 1000, Block2.isAligned(end, szx: szx) {
            let record = DeviceState.ResumeRecord(manifestID: manifestID, component: component, offset: end,
                                                  blockSize: Block2.size(szx: szx), etag: response.etag)
            try? state.saveResume(record, stagedFile: state.stagingPath(image.name))
            lastSave = now
            unsavedBytes = 0
        }
    }

    func discard(component: Int) {
        guard component < files.count else { return }
        ftruncate(files[component], 0)
        verifiers[component] = BlockDigestVerifier(component: images[component])
        state.clearResume()
    }

    func checkDigests(component: Int, engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        if let storageFailure { return engine.transportFailed("staging slot: \(storageFailure)") }
        do {
            try verifiers[component].finish(component: images[component])
            return engine.digestsChecked(matching: true)
        } catch {
            return engine.digestsChecked(matching: false, reason: "\(imageURIs[component]): \(error.description)")
        }
    }

    func install(engine: inout UpdateEngine) -> [UpdateEngine.Action] {
        guard let verified else { return engine.installFinished(error: "no manifest") }
        close()
        do {
            let record = try state.install(verified, sha256: verifiers.map { $0.digests.digest(.sha256) })
            logger.notice("installed \(record.manufacturer)/\(record.model) \(record.version)")
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
