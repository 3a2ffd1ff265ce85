#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice
import Logging
import Synchronization

/// A verifying mirror of an origin's product (issue #12, item 1).
///
/// A sync is a device's update: `Updater` against the origin only, with the
/// mirror's trust set, into a state folder of the mirror's own
/// (`<repo>/.mirror/<m>/<model>`: staging, resume, the "installed" release,
/// the trust file with keys adopted from `key-info`). So the origin's
/// manifest is verified, refused when it is for another product or not
/// newer than what the mirror holds, and every image is fetched with the
/// per-block digests, ETag checks and resume a device has. Only a release
/// that passed all of it is published into the repository, with the exact
/// signed bytes: images first (each written aside, fsynced, renamed into
/// `<model>/<location>`), then the manifests (`manifest.cbor` from the sync,
/// `manifest.json` fetched and verified to be the same release, or removed
/// if the origin has none for it), each replaced atomically, so the
/// server's rescan notifies observers of a complete release. The current
/// and the previous release's version folders are kept, older ones pruned
/// (by the server, once no transfer reads them, under `serve --mirror`).
/// Image locations that are absolute URIs are left where they point.
public final class Mirror {
    /// Version folders a mirror no longer needs, handed to the server that
    /// serves the same repository (`serve --mirror`): it removes each once no
    /// transfer of its own reads from it. Keys are `<m>/<model>/<version>`.
    public final class PruneRequests: Sendable {
        private let pending = Mutex<[String]>([])
        public init() {}
        public func add(_ keys: [String]) { pending.withLock { list in list += keys.filter { !list.contains($0) } } }
        public func take() -> [String] { pending.withLock { list in defer { list = [] }; return list } }
    }

    public let repository: String
    public let manufacturer: String
    public let model: String
    private let options: UpdateOptions
    private let logger: Logger
    /// Set by `serve --mirror`: old folders go to the server instead of being removed here.
    public var pruneRequests: PruneRequests?

    /// `origin` is a base URI (coap://host[:port]) with the SPEC §4 layout under it.
    public init(repository: String, origin: CoapURI, manufacturer: String, model: String, trustedKeys: [PublicKey],
                transport: UpdateOptions? = nil, logger: Logger) {
        (self.repository, self.manufacturer, self.model, self.logger) = (repository, manufacturer, model, logger)
        var options = UpdateOptions(trustedKeys: trustedKeys, manufacturer: manufacturer, model: model,
                                    stateDirectory: "\(repository)/.mirror/\(manufacturer)/\(model)")
        if let transport {
            (options.szx, options.timeout, options.psk) = (transport.szx, transport.timeout, transport.psk)
            (options.windowBytes, options.ackTimeout, options.maxRetransmit) = (transport.windowBytes, transport.ackTimeout, transport.maxRetransmit)
            (options.exchangeTimeout, options.resolve) = (transport.exchangeTimeout, transport.resolve)
        }
        options.discoverLocal = false
        options.origin = origin
        options.format = .cbor
        self.options = options
    }

    public var product: String { "\(manufacturer)/\(model)" }
    private var layout: RepositoryLayout { RepositoryLayout(root: repository) }

    /// Options for a `Watcher` of the origin (the same transport and state).
    public var updateOptions: UpdateOptions { options }

    /// One sync; the report says what the origin offered and what became of it.
    public func sync() -> UpdateReport {
        var report: UpdateReport
        do {
            try FileSystem.makeDirectories(options.stateDirectory, mode: 0o750)
            let updater = Updater(options: options, logger: logger)
            report = try updater.run()
        } catch {
            return UpdateReport(result: .transferFailed, reason: "\(options.stateDirectory): \(error.description)", bytesTransferred: 0)
        }
        guard report.result.isSuccess else {
            logger.warning("mirror \(product): origin refused: \(report.result)\(report.reason.map { ": \($0)" } ?? ""); still serving what was published before")
            return report
        }
        // Published on `updated`, and after `up-to-date` too if a kill came between the sync and the publishing.
        do {
            if try publishInstalled() { logger.notice("mirror \(product): published \(report.version ?? "?")") }
        } catch {
            report.result = .transferFailed
            report.reason = "publishing into \(repository): \(error)"
            logger.error("mirror \(product): \(report.reason ?? "")")
        }
        return report
    }

    /// Publishes the mirror's verified release if the repository does not hold it yet; true if it did.
    func publishInstalled() throws -> Bool {
        let state = try DeviceState(root: options.stateDirectory)
        guard let envelope = state.installedEnvelope(), let record = try state.installed() else { return false }
        let trust = try TrustStore.load(state: options.stateDirectory, anchors: options.trustedKeys)
        let verified = try ManifestVerifier(trustedKeys: trust.keys).verify(envelope)
        let cborPath = layout.manifestPath(manufacturer: manufacturer, model: model, format: .cbor)
        if let current = try? FileSystem.read(cborPath, limit: 1 << 20), current == envelope { return false }

        let modelDirectory = layout.modelDirectory(manufacturer: manufacturer, model: model)
        // The release published before stays (its folders are kept) even when a
        // rollover retired the key that signed it.
        let previous = (try? FileSystem.read(cborPath, limit: 1 << 20)).flatMap {
            try? ManifestVerifier(trustedKeys: trust.everKnownKeys).verify($0)
        }
        // Images first.
        for (component, installed) in zip(verified.manifest.images, record.components) {
            guard let relative = Self.relativeLocation(component.location) else {
                logger.info("mirror \(product): image \(component.name) at \(component.location) is not mirrored (absolute location)")
                continue
            }
            let destination = "\(modelDirectory)/\(relative)"
            if FileSystem.isRegularFile(destination), (try? component.check(file: destination)) != nil {
                chmod(destination, 0o644)  // linked by a version that left the staging file's 0600
                continue
            }
            try FileSystem.makeDirectories(FileSystem.directory(of: destination))
            try Self.copy(installed.path, to: destination)
        }
        // Then the manifests: the JSON one only if the origin's is the same release.
        let jsonPath = layout.manifestPath(manufacturer: manufacturer, model: model, format: .json)
        if let json = fetchJSONManifest(matching: verified, trust: trust) {
            try FileSystem.atomicWrite(jsonPath, json)
        } else if FileSystem.exists(jsonPath) {
            unlink(jsonPath)
        }
        try FileSystem.atomicWrite(cborPath, envelope)
        try? FileSystem.syncDirectory(modelDirectory)
        prune(keeping: [verified.manifest, previous?.manifest].compactMap { $0 }, in: modelDirectory)
        return true
    }

    /// The origin's manifest.json, if it verifies and is the release `verified` is.
    private func fetchJSONManifest(matching verified: VerifiedManifest, trust: TrustStore) -> [UInt8]? {
        guard let origin = options.origin else { return nil }
        var uri = origin
        uri.path = RepositoryLayout.modelSegments(manufacturer: manufacturer, model: model) + [ManifestFormat.json.fileName]
        guard let client = try? CoapClient(logger: logger, psk: options.psk) else { return nil }
        let requester = Requester(client: client, timeout: options.timeout, exchangeTimeout: options.exchangeTimeout,
                                  mappings: options.resolve, windowBytes: options.windowBytes, logger: logger)
        var body: [UInt8] = []
        let fetched = requester.fetchBody(uri, szx: options.szx, limit: 1 << 20) { offset, chunk in
            if offset == 0 { body = [] }  // a fresh start
            if Int(offset) == body.count { body += chunk }
            return nil
        }
        guard case .success = fetched else { return nil }
        guard let json = try? ManifestVerifier(trustedKeys: trust.keys).verify(body) else {
            logger.warning("mirror \(product): the origin's manifest.json does not verify: not mirrored")
            return nil
        }
        let a = json.manifest, b = verified.manifest
        guard a.firmwareVersion == b.firmwareVersion, a.timestamp == b.timestamp, a.images == b.images,
              a.manufacturer == b.manufacturer, a.model == b.model else {
            logger.warning("mirror \(product): the origin's manifest.json is another release than its manifest.cbor: not mirrored")
            return nil
        }
        return body
    }

    /// Removes version folders no kept release's image lives in.
    private func prune(keeping releases: [Manifest], in modelDirectory: String) {
        let kept = Set(releases.flatMap { $0.images.compactMap { Self.relativeLocation($0.location)?.split(separator: "/").first.map(String.init) } })
        var old: [String] = []
        for entry in FileSystem.entries(of: modelDirectory) where FileSystem.isDirectory("\(modelDirectory)/\(entry)") && !kept.contains(entry) {
            guard FirmwareVersion(entry) != nil else { continue }  // only release folders
            old.append(entry)
        }
        if let pruneRequests {
            pruneRequests.add(old.map { "\(product)/\($0)" })
            return
        }
        for entry in old {
            logger.info("mirror \(product): pruning \(entry)")
            try? FileSystem.removeTree("\(modelDirectory)/\(entry)")
        }
    }

    /// A location relative to the manifest, made of plain segments ("1.2.3/fw.bin"); nil otherwise.
    static func relativeLocation(_ location: String) -> String? {
        guard !location.contains(":"), !location.contains("?"), !location.contains("#"), !location.hasPrefix("/") else { return nil }
        let segments = location.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !segments.isEmpty, segments.allSatisfy(RepositoryRouter.isPlainSegment) else { return nil }
        return location
    }

    /// Puts `source` at `destination` in one rename: a hard link to the
    /// mirror's verified copy (no second copy on disk), or, across file
    /// systems, a copy written beside it and fsynced first.
    static func copy(_ source: String, to destination: String) throws(FileSystemError) {
        let temp = "\(FileSystem.directory(of: destination))/.\(FileSystem.baseName(of: destination)).mirror-\(getpid())"
        unlink(temp)
        do throws(FileSystemError) {
            if link(source, temp) != 0 { try FileSystem.copyFile(source, to: temp) }
            // The mirror's staging files are 0600 (and a copy follows the umask); served, an
            // image is readable as a published one is. On a link this changes the state's copy too.
            guard chmod(temp, 0o644) == 0 else { throw FileSystemError.errno(temp, "cannot chmod") }
            guard rename(temp, destination) == 0 else { throw FileSystemError.errno(destination, "cannot rename \(temp) to") }
        } catch {
            unlink(temp)
            throw error
        }
    }
}
