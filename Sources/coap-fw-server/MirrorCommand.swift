import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGTERM/SIGINT; the mirror loops end between syncs.
nonisolated(unsafe) var mirrorStop: sig_atomic_t = 0

/// `--trust`, `--product M/X` (repeat) and `--poll`: what a mirror copies, and how often it looks.
struct MirrorOptions {
    static let options: [OptionSpec] = [
        .repeated("product", "M/X", "A product to mirror, as manufacturer/model (repeat)."),
        .value("poll", "SECONDS", "Seconds between looks at the origin when it sends no notification (default 300, ±20 %)."),
        .value("origin-timeout", "SECONDS", "Seconds without progress at the origin before a sync gives up (default 30)."),
        .value("origin-psk-file", "FILE", "DTLS key for a coaps:// origin ('identity:hexkey'; the first one is used)."),
    ]

    var trust: TrustOptions
    var products: [String]
    var poll: Double
    var timeout: Double
    var pskFile: String?
    var psk: PSK?

    init(_ a: ParsedArguments) throws {
        (trust, products, poll) = (TrustOptions(a), a.strings("product"), try a.double("poll", default: 300))
        (timeout, pskFile) = (try a.double("origin-timeout", default: 30), a.string("origin-psk-file"))
        if let pskFile { psk = try readPSKFile(pskFile).first }
    }

    /// The transport a mirror's syncs use.
    var transport: UpdateOptions {
        var options = UpdateOptions(trustedKeys: [], manufacturer: "", model: "", stateDirectory: "")
        (options.timeout, options.psk) = (timeout, psk)
        return options
    }

    /// The checked products and trust keys for `origin` (a usage error names the option at fault).
    func checked(origin text: String, option: String) throws -> (CoapURI, [(String, String)], [PublicKey]) {
        guard let origin = CoapURI(text), origin.path.isEmpty || origin.path == [""] else {
            throw CommandFailure.usage("\(option) \(text): expected coap://host[:port] or coaps://host[:port] (the SPEC §4 layout is under it)")
        }
        guard !origin.secure || psk != nil else { throw CommandFailure.usage("\(option) \(text): coaps needs --origin-psk-file") }
        guard !products.isEmpty else { throw CommandFailure.usage("\(option) needs at least one --product MANUFACTURER/MODEL") }
        let names = try products.map { product -> (String, String) in
            let parts = product.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.hasPrefix(".") }) else {
                throw CommandFailure.usage("--product \(product): expected MANUFACTURER/MODEL, e.g. example.com/c7960")
            }
            return (parts[0], parts[1])
        }
        guard poll.isFinite, (1...86_400).contains(poll) else { throw CommandFailure.usage("--poll \(poll): expected 1 to 86400 seconds") }
        guard timeout.isFinite, timeout > 0, timeout <= 86_400 else {
            throw CommandFailure.usage("--origin-timeout \(timeout): expected more than 0 and at most 86400 seconds")
        }
        return (origin, names, try trust.keys())
    }

    /// One loop per product on its own thread (each with its own libcoap
    /// contexts): sync, observe the origin's manifest, sync again on a
    /// notification or every --poll seconds, back off while it fails.
    func start(repository: String, origin: CoapURI, products: [(String, String)], keys: [PublicKey], logger: Logger,
               pruneRequests: Mirror.PruneRequests? = nil) {
        for (manufacturer, model) in products {
            let poll = self.poll, transport = self.transport
            DispatchQueue(label: "coap-fw.mirror.\(manufacturer)/\(model)").async {
                let mirror = Mirror(repository: repository, origin: origin, manufacturer: manufacturer, model: model,
                                    trustedKeys: keys, transport: transport, logger: logger)
                mirror.pruneRequests = pruneRequests
                let watcher = Watcher(options: mirror.updateOptions,
                                      schedule: Watcher.Schedule(interval: poll, spread: 0, backoff: 5), logger: logger)
                watcher.run(shouldStop: { mirrorStop != 0 }) { mirror.sync() }
            }
        }
    }
}

struct MirrorCommand {
    static let command = CommandSpec(
        "mirror", abstract: "Keep a repository folder a verified copy of an origin's products.",
        discussion: """
            For each --product: fetches the origin's manifest, verifies it with --trust (and the keys \
            it adopted from key-info), refuses one for another product or not newer than what it holds, \
            fetches every image with the device's per-block checks and resume, and only then publishes \
            the exact signed bytes into --repo (images first, manifests last). What fails is never \
            published; what was published before stays. Without --once it keeps watching the origin \
            (Observe, else every --poll seconds). `serve --mirror ORIGIN` does the same beside serving.
            """,
        options: RepositoryOptions.options + [
            .value("origin", "URI", "The origin, coap://host[:port].", required: true),
        ] + TrustOptions.options + MirrorOptions.options + [
            .flag("once", "Sync each product once and exit (0 when all are published or up to date)."),
            .flag("json", "With --once: one JSON line per product."),
        ] + VerbosityOptions.options
    ) { try MirrorCommand($0).run() }

    var repository: RepositoryOptions
    var origin: String
    var mirror: MirrorOptions
    var once: Bool
    var json: Bool
    var verbosity: VerbosityOptions

    init(_ a: ParsedArguments) throws {
        (repository, origin, mirror) = (RepositoryOptions(a), a.required("origin"), try MirrorOptions(a))
        (once, json, verbosity) = (a.flag("once"), a.flag("json"), VerbosityOptions(a))
    }

    func run() throws {
        let logger = verbosity.logger("coap-fw-server", quiet: .notice)
        let (origin, products, keys) = try mirror.checked(origin: self.origin, option: "--origin")
        try FileSystem.makeDirectories(repository.repo)
        if once {
            var failed = false
            for (manufacturer, model) in products {
                let report = Mirror(repository: repository.repo, origin: origin, manufacturer: manufacturer, model: model,
                                    trustedKeys: keys, transport: mirror.transport, logger: logger).sync()
                failed = failed || !report.result.isSuccess
                if json {
                    guard case .object(let fields) = report.json else { continue }
                    printJSON(.object([("product", .string("\(manufacturer)/\(model)"))] + fields))
                } else {
                    print("\(manufacturer)/\(model): \(report.result)\(report.version.map { " \($0)" } ?? "")\(report.reason.map { ": \($0)" } ?? "")")
                }
            }
            if failed { throw CommandFailure(status: 1, "") }
            return
        }
        let onSignal: @convention(c) (Int32) -> Void = { _ in mirrorStop = 1 }
        signal(SIGTERM, onSignal)
        signal(SIGINT, onSignal)
        mirror.start(repository: repository.repo, origin: origin, products: products, keys: keys, logger: logger)
        while mirrorStop == 0 { usleep(200_000) }
        logger.notice("stopped")
    }
}
