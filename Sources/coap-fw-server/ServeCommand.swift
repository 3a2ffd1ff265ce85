import ArgumentParser
import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
#if canImport(Glibc)
import Glibc
#endif

/// Set from the signal handler, read by the serving loop.
nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a firmware repository over CoAP (and coaps with DTLS).",
        discussion: """
            Serves the repository folder as SPEC §4 lays it out: manifests at \
            /.well-known/firmware/<manufacturer>/<model>/manifest.{cbor,json} (also under \
            /.well-known/manifest/, and as .../manifest chosen by Accept), images at \
            .../<version>/<file>, and /.well-known/core. New releases are picked up without a \
            restart and observers of a manifest are notified. Stop with SIGINT or SIGTERM.

            Examples:
              coap-fw-server serve --repo /srv/firmware
              coap-fw-server serve --repo repo --listen 127.0.0.1:5683 --psk-file psk.txt --listen-dtls 127.0.0.1:5684
            """)

    @OptionGroup var repository: RepositoryOptions

    @Option(help: ArgumentHelp("Plain CoAP address to listen on (repeat). Default: [::]:5683 and 0.0.0.0:5683.", valueName: "ADDR:PORT"))
    var listen: [String] = []

    @Flag(help: "Turn plain (unencrypted) CoAP off; serve coaps only.")
    var noPlain = false

    @Option(name: .customLong("listen-dtls"), help: ArgumentHelp("coaps address to listen on (repeat). Default with DTLS: [::]:5684 and 0.0.0.0:5684.", valueName: "ADDR:PORT"))
    var listenDTLS: [String] = []

    @OptionGroup var dtls: DTLSServerOptions

    @Option(name: .customLong("max-sessions"), help: "Most idle sessions kept; past it the oldest idle one is freed.")
    var maxSessions = 1000

    @Option(name: .customLong("max-observers"), help: "Most observing sessions in all (32 per peer address); past it the oldest registration is dropped.")
    var maxObservers = 1000

    @Option(name: .customLong("idle-timeout"), help: "Seconds before an idle session is dropped.")
    var idleTimeout = 300

    @Option(help: ArgumentHelp("RFC 9175 Echo before answering a peer address not yet verified: off or all (libcoap and coap-fw-client repeat the request; aiocoap and CoAPthon3 do not).", valueName: "MODE"))
    var echo = EchoMode.off

    @Option(name: .customLong("echo-trust"), help: ArgumentHelp("With --echo all: seconds a verified address stays verified after its last request.", valueName: "SECONDS"))
    var echoTrust = 600

    @OptionGroup var verbosity: VerbosityOptions

    func run() throws {
        let logger = verbosity.logger("coap-fw-server", quiet: .notice)

        for (option, value, range) in [("--max-sessions", maxSessions, 1...1_000_000), ("--max-observers", maxObservers, 1...1_000_000),
                                       ("--idle-timeout", idleTimeout, 1...86_400), ("--echo-trust", echoTrust, 1...86_400)] where !range.contains(value) {
            throw CommandFailure.usage("\(option) \(value): expected \(range.lowerBound) to \(range.upperBound)")
        }
        var config = ServerConfiguration(repository: repository.repo)
        (config.maxSessions, config.maxObservers, config.idleTimeout) = (maxSessions, maxObservers, idleTimeout)
        (config.echo, config.echoTrustSeconds) = (echo, echoTrust)
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

        let server: FirmwareServer
        do {
            server = try FirmwareServer(configuration: config, logger: logger)
        } catch {
            throw error.isUsage ? CommandFailure.usage(error.description) : CommandFailure.failed(error.description)
        }
        signal(SIGINT) { _ in stopSignal = 1 }
        signal(SIGTERM) { _ in stopSignal = 1 }
        signal(SIGPIPE, SIG_IGN)
        logger.notice("serving \(repository.repo) on \(server.endpoints.map(\.description).joined(separator: ", "))")
        server.run { stopSignal != 0 }
        logger.notice("stopped")
    }
}

extension EchoMode: ExpressibleByArgument {}
