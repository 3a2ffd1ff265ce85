#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice
import Dispatch
import Logging
import Synchronization

/// A mirror passes the reports its devices send on to the origin (issue #12,
/// item 4), best effort: the exact report bytes are queued (at most
/// `capacity`; past it the oldest are dropped and counted) and POSTed to the
/// origin's `.../<m>/<model>/report` from a thread of their own (its own
/// libcoap context), one at a time. Every report comes from the mirror's one
/// address, so the origin's per-peer limit applies to all its devices
/// together: a 4.29 is obeyed (RFC 8516: nothing is sent for its Max-Age,
/// 60 s without one, at most 10 minutes), and the same report is tried again,
/// up to `maxTries` times in all. A report the origin does not take
/// otherwise (an error answer, no answer within 5 s) is dropped: reports are
/// statistics, and the mirror's own log has them all. An origin that takes
/// reports from mirrors wants a `--reports-per-minute` that fits its
/// busiest mirror's devices.
public final class ReportForwarder: Sendable {
    private struct State {
        var queue: [(product: String, body: [UInt8])] = []
        var dropped = 0
        var forwarded = 0
    }

    /// Tries of one report, the first included, while the origin answers 4.29.
    public static let maxTries = 3

    private let origin: CoapURI
    private let psk: PSK?
    private let capacity: Int
    private let logger: Logger
    private let state = Mutex(State())
    private let worker = DispatchQueue(label: "coap-fw.report-forwarder")
    private let wake = DispatchSemaphore(value: 0)

    public init(origin: CoapURI, psk: PSK? = nil, capacity: Int = 1000, logger: Logger) {
        (self.origin, self.psk, self.capacity, self.logger) = (origin, psk, capacity, logger)
        worker.async { [self] in run() }
    }

    /// Queues one report (called on the server's thread; never blocks).
    public func enqueue(product: String, body: [UInt8]) {
        state.withLock { s in
            if s.queue.count >= capacity {
                s.queue.removeFirst()
                s.dropped += 1
            }
            s.queue.append((product, body))
        }
        wake.signal()
    }

    /// Reports forwarded so far, and dropped from a full queue.
    public var counts: (forwarded: Int, dropped: Int) { state.withLock { ($0.forwarded, $0.dropped) } }

    private func run() {
        var client: CoapClient?
        while true {
            wake.wait()
            while let next = state.withLock({ s -> (product: String, body: [UInt8])? in s.queue.isEmpty ? nil : s.queue.removeFirst() }) {
                if client == nil { client = try? CoapClient(logger: logger, psk: psk) }
                guard let client else { break }
                var uri = origin
                uri.path = RepositoryLayout.modelSegments(manufacturer: String(next.product.prefix { $0 != "/" }),
                                                          model: String(next.product.drop { $0 != "/" }.dropFirst())) + ["report"]
                let requester = Requester(client: client, timeout: 5, exchangeTimeout: 5, windowBytes: 0, logger: logger)
                for attempt in 1...Self.maxTries {
                    switch requester.post(uri, contentFormat: 60, payload: next.body, timeout: 5) {
                    case .success(let response) where response.isSuccess:
                        state.withLock { $0.forwarded += 1 }
                    case .success(let response) where response.codeClass == 4 && response.codeDetail == 29 && attempt < Self.maxTries:
                        let wait = min(max(Int(response.maxAge ?? 60), 1), 600)
                        logger.info("forwarding reports to \(uri): 4.29; waiting \(wait) s as the origin asks")
                        usleep(UInt32(wait) * 1_000_000)
                        continue
                    case .success(let response):
                        logger.info("forwarding a report to \(uri): \(response.codeText); dropped")
                    case .failure(let error):
                        logger.info("forwarding a report to \(uri): \(error.description); dropped")
                    }
                    break
                }
            }
        }
    }
}
