import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
import CoapFirmwareDevice
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct Update {
    static let command = CommandSpec(
        "update", abstract: "Find a firmware server, verify the manifest, download and install the update.",
        discussion: """
            Discovery (SPEC §4): first the local server coap://_firmware.<domain>/.well-known/firmware/<m>/<model>/manifest.cbor \
            (domain from --domain or /etc/resolv.conf), then --origin. A server that is unreachable, times out, answers \
            with an error or serves a manifest or image that fails validation is skipped for the next one.

            --origin takes a full manifest URI, or just coap://host[:port] for the standard path.
            --resolve HOST:ADDR[:PORT] maps a host name to an address (and port), like curl's.
            Exit status: 0 updated or up-to-date, 1 failed or rejected, 2 usage error.
            """,
        options: TrustOptions.options + ProductOptions.options + [
            .value("state", "DIR", "State folder: installed firmware, staging slot, resume data.", required: true),
            .value("domain", "DOMAIN", "Local domain for discovery (default: /etc/resolv.conf's domain or first search entry)."),
            .value("origin", "URI", "The manufacturer's origin server (coap:// or coaps:// URI)."),
            .value("format", "FORMAT", "Manifest format to ask for: cbor (COSE_Sign1, the default), json (JWS) or suit (a SUIT envelope, manifest.suit)."),
            .repeated("resolve", "HOST:ADDR[:PORT]", "Map a host name to an address, like curl (repeat)."),
            .value("slot-size", "BYTES", "Staging slot capacity in bytes (default: unlimited)."),
        ] + ClientTransportOptions.options + [
            .value("ack-timeout", "SECONDS",
                   "RFC 7252 ACK_TIMEOUT in seconds (1 to 60, default 2): the first retransmission's wait (doubles each time)."),
            .value("max-retransmit", "N", "RFC 7252 MAX_RETRANSMIT: retransmissions of one message before it is given up (default 4)."),
            .value("origin-check", "SECONDS",
                   "After a local server answers up-to-date, ask the origin too when it was last asked this many seconds ago or more (0: every time; default 86400)."),
            .value("device-id", "ID", "This device's id in reports (default: /etc/machine-id)."),
            .value("vendor-id", "UUID", "SUIT: this device's vendor id (default UUID5(DNS, --manufacturer), RFC 9124)."),
            .value("class-id", "UUID", "SUIT: this device's class id (default UUID5(vendor id, --model))."),
            .flag("no-report", "Do not tell the server how the run went (a report never changes the result)."),
            .flag("json", "Print one JSON object (SPEC §7) instead of text."),
        ] + VerbosityOptions.options
    ) { try Update($0).run() }

    var trust: TrustOptions
    var product: ProductOptions
    var state: String
    var domain: String?
    var origin: String?
    var format: String
    var resolve: [String]
    var slotSize: UInt64?
    var transport: ClientTransportOptions
    var ackTimeout: Double
    var maxRetransmit: Int
    var originCheck: Double?
    var json: Bool
    var deviceID: String?
    var noReport: Bool
    var verbosity: VerbosityOptions
    var suitIdentity: SUITIdentityOptions

    init(_ a: ParsedArguments) throws {
        (trust, product, state) = (TrustOptions(a), ProductOptions(a), a.required("state"))
        (domain, origin, format) = (a.string("domain"), a.string("origin"), a.string("format") ?? "cbor")
        (resolve, slotSize, transport) = (a.strings("resolve"), try a.uint64("slot-size"), try ClientTransportOptions(a))
        (ackTimeout, maxRetransmit) = (try a.double("ack-timeout", default: 2), try a.int("max-retransmit", default: 4))
        (originCheck, json, verbosity) = (try a.double("origin-check"), a.flag("json"), VerbosityOptions(a))
        (deviceID, noReport) = (a.string("device-id"), a.flag("no-report"))
        suitIdentity = SUITIdentityOptions(a)
    }

    func run() throws {
        let logger = verbosity.logger("coap-fw-client")
        let options = try checkedOptions()
        guard let report = once(options, logger: logger) else { throw CommandFailure(status: 1, "") }
        if report.result.exitStatus != 0 { throw CommandFailure(status: report.result.exitStatus, "") }
    }

    /// The options of an update, or a usage error naming the option (`watch` shares them).
    func checkedOptions() throws -> UpdateOptions {
        guard let format = ManifestFormat(rawValue: format.lowercased()) else {
            throw CommandFailure.usage("--format \(self.format): expected cbor, json or suit")
        }
        let szx = try transport.szx(), timeout = try transport.checkedTimeout(), names = try product.checked()
        guard !state.isEmpty, !FileSystem.exists(state) || FileSystem.isDirectory(state) else {
            throw CommandFailure.usage("--state \"\(state)\": expected a folder (it is created if missing)")
        }
        let originCheck = self.originCheck ?? 86_400  // a day
        guard originCheck.isFinite, (0...3_153_600_000).contains(originCheck) else {
            throw CommandFailure.usage("--origin-check \(originCheck): expected 0 to 3153600000 seconds")
        }
        var options = UpdateOptions(trustedKeys: try trust.keys(), manufacturer: names.manufacturer, model: names.model,
                                    stateDirectory: state)
        options.originCheck = originCheck
        options.format = format
        (options.suitVendorID, options.suitClassID) = try suitIdentity.ids()
        options.szx = szx
        options.slotSize = slotSize
        options.timeout = timeout
        options.windowBytes = try transport.checkedWindowBytes()
        // libcoap 4.3.1 takes ACK_TIMEOUT as a fixed-point value with a whole part of at least 1.
        guard ackTimeout >= 1 && ackTimeout <= 60 else { throw CommandFailure.usage("--ack-timeout \(ackTimeout): expected 1 to 60 seconds") }
        guard (0...20).contains(maxRetransmit) else { throw CommandFailure.usage("--max-retransmit \(maxRetransmit): expected 0 to 20") }
        options.ackTimeout = ackTimeout
        options.maxRetransmit = maxRetransmit
        // A fresh exchange after about two transmissions' worth of waiting (see UpdateOptions.exchangeTimeout).
        options.exchangeTimeout = max(3 * ackTimeout, 1)
        if let domain {
            guard !domain.isEmpty, !domain.contains("/"), !domain.contains(" ") else { throw CommandFailure.usage("--domain \(domain): not a domain name") }
            options.domain = domain
        }
        if let origin {
            guard let uri = CoapURI(origin) else { throw CommandFailure.usage("--origin \(origin): expected a coap:// or coaps:// URI") }
            guard !uri.secure || transport.pskFile != nil else { throw CommandFailure.usage("--origin \(origin): coaps needs --psk-file") }
            options.origin = uri
        }
        for entry in resolve {
            guard let mapping = HostMapping(argument: entry) else {
                throw CommandFailure.usage("--resolve \(entry): expected HOST:ADDR[:PORT], e.g. _firmware.lan:127.0.0.1:5683 or host:[::1]:5683")
            }
            options.resolve.append(mapping)
        }
        options.psk = try transport.psk()
        if options.domain == nil && options.origin == nil && ResolvConf.domain() == nil {
            throw CommandFailure.usage("no server to ask: give --origin, or --domain (no domain in /etc/resolv.conf)")
        }

        if let deviceID, !FleetReport.isValidDeviceID(deviceID) {
            throw CommandFailure.usage("--device-id \(deviceID): expected 1 to 64 printable characters without spaces")
        }
        return options
    }

    /// One update: runs it, prints its result (one JSON line with --json),
    /// sends the report. nil when the state folder could not be used (said on stderr).
    func once(_ options: UpdateOptions, logger: Logger) -> UpdateReport? {
        let bar = ProgressBar(enabled: !json && isatty(1) == 1)
        let updater = Updater(options: options, logger: logger, progress: bar.update)
        let report: UpdateReport
        do {
            report = try updater.run()
        } catch {
            // The state folder cannot be used: nothing was tried, nothing changed.
            let reason = "--state \(state): \(error.description)"
            if json { printJSON(UpdateReport(result: .transferFailed, reason: reason, bytesTransferred: 0).json) }
            printError("coap-fw-client: \(reason)")
            return nil
        }
        bar.finish()
        if json {
            printJSON(report.json)
        } else {
            switch report.result {
            case .updated:
                print("updated to \(report.version ?? "?") from \(report.source ?? "?") (\(report.bytesTransferred) image bytes fetched)")
            case .upToDate:
                print("up to date: \(report.version ?? "?") (\(report.source ?? "?"))")
            default:
                for a in report.attempts { printError("  \(a.uri): \(a.result)\(a.reason.map { ": \($0)" } ?? "")") }
                printError("coap-fw-client: \(report.result)\(report.reason.map { ": \($0)" } ?? "")")
            }
        }
        if !noReport {
            if let id = deviceID ?? Updater.machineID() {
                if let why = updater.sendReport(report, deviceID: id) { logger.info("report not sent: \(why)") }
            } else {
                logger.info("no report: no --device-id and no /etc/machine-id")
            }
        }
        return report
    }
}
