import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
#if canImport(Glibc)
import Glibc
#endif

/// Set by the SIGTERM/SIGINT handler; read by the loop between runs.
nonisolated(unsafe) private var watchStop: sig_atomic_t = 0
/// Whether an update is running (the handler then ends the process at once:
/// the state folder survives a kill at any point, and the download resumes).
nonisolated(unsafe) private var watchInRun: sig_atomic_t = 0

struct Watch {
    static let command = CommandSpec(
        "watch", abstract: "Keep a device up to date: update, then observe the manifest and update when it changes.",
        discussion: """
            Runs an update (the same as `update`, with its options), then observes the manifest at the \
            server that answered (RFC 7641) and runs again on each notification, after a random delay of \
            up to --spread seconds, and every --interval seconds (both ±20 %). After a failed run the \
            next one comes after --backoff seconds, doubling up to --interval. The observation is \
            registered again when nothing was heard for the manifest's Max-Age. A server without \
            Observe is polled. SIGTERM or SIGINT ends it (exit 0); during a download it ends at once, \
            and the next start resumes where it stopped. With --json, one line per run.
            """,
        options: Update.command.options + [
            .value("interval", "SECONDS", "Seconds between runs without a notification (default 3600, ±20 %)."),
            .value("spread", "SECONDS", "Longest random delay before acting on a notification (default 30)."),
            .value("backoff", "SECONDS", "Wait after a first failed run; doubles after each (default 30, at most --interval)."),
        ]
    ) { try Watch($0).run() }

    var update: Update
    var interval: Double
    var spread: Double
    var backoff: Double

    init(_ a: ParsedArguments) throws {
        update = try Update(a)
        interval = try a.double("interval", default: 3600)
        spread = try a.double("spread", default: 30)
        backoff = try a.double("backoff", default: 30)
    }

    func run() throws {
        for (option, value, range) in [("--interval", interval, 1.0...31_536_000), ("--spread", spread, 0...86_400),
                                       ("--backoff", backoff, 0.1...31_536_000)] where !(value.isFinite && range.contains(value)) {
            throw CommandFailure.usage("\(option) \(value): expected \(range.lowerBound) to \(range.upperBound) seconds")
        }
        let logger = update.verbosity.logger("coap-fw-client")
        let options = try update.checkedOptions()
        let onSignal: @convention(c) (Int32) -> Void = { _ in
            if watchInRun != 0 { _exit(0) }
            watchStop = 1
        }
        signal(SIGTERM, onSignal)
        signal(SIGINT, onSignal)
        signal(SIGPIPE, SIG_IGN)
        let watcher = Watcher(options: options, schedule: Watcher.Schedule(interval: interval, spread: spread, backoff: backoff),
                              logger: logger)
        watcher.run(shouldStop: { watchStop != 0 }) {
            watchInRun = 1
            defer { watchInRun = 0 }
            let report = update.once(options, logger: logger)
            fflush(nil)
            return report
        }
        logger.info("stopped")
    }
}
