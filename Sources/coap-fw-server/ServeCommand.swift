import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
#if canImport(Glibc)
import Glibc
#endif

/// Set from the signal handler, read by the serving loop.
nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0

struct Serve {
    static let command = CommandSpec(
        "serve", abstract: "Serve a firmware repository over CoAP (and coaps with DTLS).",
        discussion: """
            Serves the repository folder as SPEC §4 lays it out: manifests at \
            /.well-known/firmware/<manufacturer>/<model>/manifest.{cbor,json} (also under \
            /.well-known/manifest/, and as .../manifest chosen by Accept), images at \
            .../<version>/<file>, and /.well-known/core. New releases are picked up without a \
            restart and observers of a manifest are notified. Stop with SIGINT or SIGTERM.

            Examples:
              coap-fw-server serve --repo /srv/firmware
              coap-fw-server serve --repo repo --listen 127.0.0.1:5683 --psk-file psk.txt --listen-dtls 127.0.0.1:5684
            """,
        options: RepositoryOptions.options + [
            .repeated("listen", "ADDR:PORT", "Plain CoAP address to listen on (repeat). Default: [::]:5683 and 0.0.0.0:5683."),
            .flag("no-plain", "Turn plain (unencrypted) CoAP off; serve coaps only."),
            .repeated("listen-dtls", "ADDR:PORT", "coaps address to listen on (repeat). Default with DTLS: [::]:5684 and 0.0.0.0:5684."),
        ] + DTLSServerOptions.options + [
            .value("max-sessions", "N", "Most idle sessions kept; past it the oldest idle one is freed (default 1000)."),
            .value("max-observers", "N",
                   "Most observing sessions in all (32 per peer address); past it the oldest registration is dropped (default 1000)."),
            .value("idle-timeout", "SECONDS", "Seconds before an idle session is dropped (default 300)."),
            .value("echo", "MODE",
                   "RFC 9175 Echo before answering a peer address not yet verified: off (default) or all (libcoap and coap-fw-client repeat the request; aiocoap and CoAPthon3 do not)."),
            .value("echo-trust", "SECONDS", "With --echo all: seconds a verified address stays verified after its last request (default 600)."),
            .value("manifest-max-age", "SECONDS",
                   "Max-Age of manifest answers (default 60): how long a device may cache one; watching devices register again after it."),
            .value("report-log-bytes", "BYTES",
                   "Devices' reports: rotate <repo>/.reports/<m>/<model>.jsonl to .jsonl.1 past this size (default 1048576)."),
            .value("reports-per-minute", "N", "Devices' reports: at most this many per peer address a minute, then 4.29 (default 5)."),
            .value("mirror", "ORIGIN", "Also mirror --product releases from this origin (coap://host[:port]), verified with --trust (see `mirror`)."),
        ] + TrustOptions.options + MirrorOptions.options + VerbosityOptions.options
    ) { try Serve($0).run() }

    var repository: RepositoryOptions
    var listen: [String]
    var noPlain: Bool
    var listenDTLS: [String]
    var dtls: DTLSServerOptions
    var maxSessions: Int
    var maxObservers: Int
    var idleTimeout: Int
    var echo: EchoMode
    var echoTrust: Int
    var reportLogBytes: Int
    var manifestMaxAge: Int
    var mirrorOrigin: String?
    var mirror: MirrorOptions
    var reportsPerMinute: Int
    var verbosity: VerbosityOptions

    init(_ a: ParsedArguments) throws {
        (repository, listen, noPlain) = (RepositoryOptions(a), a.strings("listen"), a.flag("no-plain"))
        (listenDTLS, dtls) = (a.strings("listen-dtls"), DTLSServerOptions(a))
        maxSessions = try a.int("max-sessions", default: 1000)
        maxObservers = try a.int("max-observers", default: 1000)
        idleTimeout = try a.int("idle-timeout", default: 300)
        echoTrust = try a.int("echo-trust", default: 600)
        reportLogBytes = try a.int("report-log-bytes", default: 1 << 20)
        manifestMaxAge = try a.int("manifest-max-age", default: 60)
        (mirrorOrigin, mirror) = (a.string("mirror"), try MirrorOptions(a))
        reportsPerMinute = try a.int("reports-per-minute", default: 5)
        let mode = a.string("echo") ?? "off"
        guard let echo = EchoMode(rawValue: mode) else { throw CommandFailure.usage("--echo \(mode): expected off or all") }
        (self.echo, verbosity) = (echo, VerbosityOptions(a))
    }

    func run() throws {
        let logger = verbosity.logger("coap-fw-server", quiet: .notice)

        for (option, value, range) in [("--max-sessions", maxSessions, 1...1_000_000), ("--max-observers", maxObservers, 1...1_000_000),
                                       ("--idle-timeout", idleTimeout, 1...86_400), ("--echo-trust", echoTrust, 1...86_400),
                                       ("--report-log-bytes", reportLogBytes, 256...(1 << 30)), ("--manifest-max-age", manifestMaxAge, 1...86_400), ("--reports-per-minute", reportsPerMinute, 1...10_000)]
            where !range.contains(value) {
            throw CommandFailure.usage("\(option) \(value): expected \(range.lowerBound) to \(range.upperBound)")
        }
        var config = ServerConfiguration(repository: repository.repo)
        (config.maxSessions, config.maxObservers, config.idleTimeout) = (maxSessions, maxObservers, idleTimeout)
        (config.echo, config.echoTrustSeconds) = (echo, echoTrust)
        (config.reportLogBytes, config.reportsPerMinute) = (Int64(reportLogBytes), reportsPerMinute)
        config.manifestMaxAge = manifestMaxAge
        if noPlain {
            config.listen = []
        } else if !listen.isEmpty {
            config.listen = try listen.map { text in
                guard let spec = EndpointSpec(text), !spec.secure else {
                    throw CommandFailure.usage("--listen \(text): expected ADDR:PORT, e.g. 127.0.0.1:5683 or [::1]:5683")
                }
                return spec
            }
        }
        if !listenDTLS.isEmpty {
            config.listenSecure = try listenDTLS.map { text in
                guard let spec = EndpointSpec(text, defaultSecure: true), spec.secure else {
                    throw CommandFailure.usage("--listen-dtls \(text): expected ADDR:PORT")
                }
                return spec
            }
        }
        if let pskFile = dtls.pskFile { config.psk = try readPSKFile(pskFile) }
        if dtls.cert != nil || dtls.certKey != nil {
            guard let cert = dtls.cert, let certKey = dtls.certKey else { throw CommandFailure.usage("--cert and --cert-key go together") }
            (config.certificateFile, config.privateKeyFile, config.caFile) = (cert, certKey, dtls.ca)
        }
        if !config.usesDTLS && !listenDTLS.isEmpty {
            throw CommandFailure.usage("--listen-dtls needs --psk-file or --cert")
        }

        var mirrorPlan: (CoapURI, [(String, String)], [PublicKey])?
        if let mirrorOrigin {
            mirrorPlan = try mirror.checked(origin: mirrorOrigin, option: "--mirror")
        } else if !mirror.products.isEmpty || !mirror.trust.trust.isEmpty {
            throw CommandFailure.usage("--product and --trust go with --mirror ORIGIN")
        }
        let server: FirmwareServer
        do {
            server = try FirmwareServer(configuration: config, logger: logger)
        } catch {
            throw error.isUsage ? CommandFailure.usage(error.description) : CommandFailure.failed(error.description)
        }
        signal(SIGINT) { _ in stopSignal = 1; mirrorStop = 1 }
        signal(SIGTERM) { _ in stopSignal = 1; mirrorStop = 1 }
        if let (origin, products, keys) = mirrorPlan {
            logger.notice("mirroring \(products.map { "\($0.0)/\($0.1)" }.joined(separator: ", ")) from \(origin)")
            let prune = Mirror.PruneRequests()
            server.pruneRequests = prune
            mirror.start(repository: repository.repo, origin: origin, products: products, keys: keys, logger: logger,
                         pruneRequests: prune)
            // The devices' reports go on to the origin too (best effort).
            server.reportForwarder = ReportForwarder(origin: origin, psk: mirror.transport.psk, logger: logger)
            server.forwardedProducts = Set(products.map { "\($0.0)/\($0.1)" })
        }
        signal(SIGPIPE, SIG_IGN)
        logger.notice("serving \(repository.repo) on \(server.endpoints.map(\.description).joined(separator: ", "))")
        server.run { stopSignal != 0 }
        logger.notice("stopped")
    }
}

