import CoapFirmwareCore
import CoapFirmwareDevice
import Logging

/// Runs an update (SPEC §4-§6): discovery, then for each server in turn
/// `UpdateEngine` driven by a `Transfer`, until one updates or is up to date.
public final class Updater {
    public let options: UpdateOptions
    private let logger: Logger
    private let progress: ((Progress) -> Void)?
    private(set) var bytesTransferred: UInt64 = 0
    /// The trust set of this run (anchors, adopted keys, retired kids).
    public private(set) var trust: TrustStore
    /// When `run` began (monotonic milliseconds): a report's duration.
    private var started: Int64 = 0


    public init(options: UpdateOptions, logger: Logger, progress: ((Progress) -> Void)? = nil) {
        (self.options, self.logger, self.progress) = (options, logger, progress)
        trust = TrustStore(anchors: options.trustedKeys)
    }

    /// Applies the key-rollover rules to the installed release (re-verified under
    /// the current set) unless they already ran on it, and saves the set when
    /// it changed. It runs at the start of every update too, so an install
    /// whose trust file was not written yet (a kill, a full disk) is caught up
    /// on the next run.
    private func reconcileTrust(_ state: DeviceState) {
        guard let envelope = state.installedEnvelope() else { return }
        let digest = Hex.encode(OpenSSLSHA256.hash(envelope))
        guard !trust.hasApplied(digest), let verified = verifyInstalled(envelope) else { return }
        var next = trust
        guard next.apply(installed: verified, envelopeDigest: digest) else { return }
        for a in next.adopted where !trust.adopted.contains(where: { $0.key.kid == a.key.kid }) {
            logger.notice("adopted key \(Hex.encode(a.key.kid)) announced by \(a.announcedBy)")
        }
        for kid in next.retired where !trust.retired.contains(kid) { logger.notice("retired key \(Hex.encode(kid))") }
        // This run uses the new set even if it cannot be saved: a retirement is the safe direction.
        trust = next
        do {
            try next.save(state: state.root)
        } catch {
            logger.warning("\(TrustStore.path(state: state.root)): \(error.description); this run uses the new set, the next one applies the rules again")
        }
    }

    /// The installed envelope re-verified under the current set, in its own
    /// format: a SUIT install counts for key rollover too (its signer retires
    /// the other keys; SUIT announces none).
    private func verifyInstalled(_ envelope: [UInt8]) -> VerifiedManifest? {
        try? options.verify(envelope, suit: envelope.withUnsafeBytes { SUITEnvelopeView.looksLikeEnvelope($0) },
                            trustedKeys: trust.keys)
    }

    /// Runs discovery and the update; throws only when the state folder is unusable.
    public func run() throws(FileSystemError) -> UpdateReport {
        started = monotonicMilliseconds()
        let state = try DeviceState(root: options.stateDirectory)
        try state.lock()
        state.cleanUp()
        let installed: DeviceState.Record?
        do {
            installed = try state.installed()
        } catch {
            throw FileSystemError(path: state.installedDirectory, reason: error.description)
        }
        // A trust file that cannot be read stops the run: starting over from the
        // anchors would bring retired keys back.
        do {
            trust = try TrustStore.load(state: state.root, anchors: options.trustedKeys)
        } catch {
            throw FileSystemError(path: TrustStore.path(state: state.root), reason: error.description)
        }
        reconcileTrust(state)

        var candidates: [CoapURI] = []
        if !options.discoverLocal {
            // A mirror: only the origin.
        } else if let domain = options.domain ?? ResolvConf.domain() {
            candidates.append(options.localManifestURI(domain: domain))
        } else {
            logger.info("no local domain (--domain or /etc/resolv.conf): skipping local discovery")
        }
        let localCount = candidates.count
        let origin = options.originManifestURI()
        if let origin { candidates.append(origin) }

        var attempts: [AttemptReport] = []
        var lastAnswered: AttemptReport?
        func attempt(_ uri: CoapURI) -> (AttemptReport, Bool) {
            let before = bytesTransferred
            var (attempt, answered) = attemptServer(uri, state: state, installed: installed)
            attempt.bytes = bytesTransferred - before
            if attempt.result == .updated { reconcileTrust(state) }
            attempts.append(attempt)
            // The origin was heard only if it gave a verified manifest that
            // settles the question (a failed download asks again next run).
            if uri == origin, [.updated, .upToDate, .rollback].contains(attempt.result) { state.recordOriginAnswer() }
            return (attempt, answered)
        }
        func done(_ result: ResultCode, from uri: CoapURI) -> UpdateReport {
            let now = (try? state.installed()) ?? nil
            return UpdateReport(result: result, reason: nil, source: uri.description, version: now?.version.description,
                                bytesTransferred: bytesTransferred, attempts: attempts)
        }
        for (index, uri) in candidates.enumerated() {
            let (report, answered) = attempt(uri)
            if report.result.isSuccess {
                // A local server could keep replaying the installed manifest:
                // now and then the origin is asked too (--origin-check).
                if report.result == .upToDate, index < localCount, let origin, state.originCheckDue(after: options.originCheck) {
                    logger.info("\(uri) is up to date; asking the origin too (--origin-check)")
                    if attempt(origin).0.result == .updated { return done(.updated, from: origin) }
                }
                return done(report.result, from: uri)
            }
            logger.warning("\(uri): \(report.result): \(report.reason ?? "")")
            if answered { lastAnswered = report }
        }
        return UpdateReport(result: lastAnswered?.result ?? .noServer,
                            reason: lastAnswered?.reason ?? (candidates.isEmpty ? "no server configured" : "no server answered"),
                            source: nil, version: installed?.version.description,
                            bytesTransferred: bytesTransferred, attempts: attempts)
    }

    /// The default device id of a report: `/etc/machine-id` (nil if it is missing or not an id).
    public static func machineID(path: String = "/etc/machine-id") -> String? {
        guard let bytes = try? FileSystem.read(path, limit: 256) else { return nil }
        let id = String(decoding: bytes, as: UTF8.self).trimmingSpaces()
        return FleetReport.isValidDeviceID(id) ? id : nil
    }

    /// Tells the server whose manifest this run used (or, when none held, the
    /// last one that answered) how it went (issue #12): one POST of a
    /// `FleetReport` to `.../<m>/<model>/report`, waiting at most `timeout`
    /// seconds (the run's duration, rounded up, travels in it). Returns nil when the server took it, else why not; either
    /// way the update's result stands.
    public func sendReport(_ report: UpdateReport, deviceID: String, timeout: Double = 5) -> String? {
        let seconds = UInt64(max(0, monotonicMilliseconds() - started) + 999) / 1000
        let answered = report.attempts.last { $0.result != .noServer }?.uri
        guard let used = (report.source ?? answered).flatMap(CoapURI.init) else { return "no server answered" }
        let target = CoapURI(secure: used.secure, host: used.host, port: used.port,
                             path: RepositoryLayout.modelSegments(manufacturer: options.manufacturer, model: options.model) + ["report"])
        let fields = FleetReport(deviceID: deviceID, result: report.result, version: report.version.flatMap { FirmwareVersion($0) },
                                 bytes: report.bytesTransferred, seconds: seconds, attempts: UInt64(report.attempts.count))
        let client: CoapClient
        do {
            client = try CoapClient(logger: logger, psk: options.psk)
        } catch {
            return error.description
        }
        client.ackTimeout = options.ackTimeout
        client.maxRetransmit = options.maxRetransmit
        let requester = Requester(client: client, timeout: timeout, exchangeTimeout: timeout, mappings: options.resolve,
                                  windowBytes: 0, logger: logger)
        switch requester.post(target, contentFormat: 60, payload: CBOREncoder.encode(fields.cbor), timeout: timeout) {
        case .failure(let error):
            return "\(target): \(error.description)"
        case .success(let response):
            guard response.codeClass == 2 else { return "\(target): \(response.codeText)" }
            logger.info("report sent to \(target)")
            return nil
        }
    }

    /// One server: fetch and verify its manifest, download, install. Returns
    /// the outcome and whether the server answered at all.
    private func attemptServer(_ manifestURI: CoapURI, state: DeviceState, installed: DeviceState.Record?)
        -> (AttemptReport, Bool) {
        logger.info("trying \(manifestURI)")
        func report(_ result: ResultCode, _ reason: String?) -> AttemptReport {
            AttemptReport(uri: manifestURI.description, result: result, reason: reason, bytes: 0)
        }
        let client: CoapClient
        do {
            client = try CoapClient(logger: logger, psk: options.psk)
        } catch {
            return (report(.noServer, error.description), false)
        }
        client.requestsPerSession = options.requestsPerSession
        client.ackTimeout = options.ackTimeout
        client.maxRetransmit = options.maxRetransmit
        let requester = Requester(client: client, timeout: options.timeout, exchangeTimeout: options.exchangeTimeout,
                                  mappings: options.resolve, windowBytes: options.windowBytes, logger: logger)
        let transfer = Transfer(requester: requester, state: state, szx: options.szx, trustedKeys: trust.keys,
                                options: options, logger: logger, progress: { [weak self] p, bytes in
                                    self?.bytesTransferred += bytes
                                    self?.progress?(p)
                                })
        let device = DeviceProfile(manufacturer: options.manufacturer, model: options.model,
                                   installed: installed?.release, slotSize: options.slotSize)
        var engine = UpdateEngine(device: device, szx: options.szx)
        var queue = engine.start()
        while !queue.isEmpty {
            let action = queue.removeFirst()
            if case .finish(let outcome) = action {
                transfer.close()
                let result = outcome.result == .transferFailed && !requester.answered ? .noServer : outcome.result
                var attempt = report(result, outcome.reason)
                attempt.manifestETag = transfer.manifestETag
                return (attempt, requester.answered)
            }
            queue += transfer.perform(action, manifestURI: manifestURI, engine: &engine)
        }
        return (report(.transferFailed, "engine stopped"), requester.answered)
    }
}

private extension String {
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars.drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(String.UnicodeScalarView(scalars.reversed().drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }.reversed()))
    }
}
