#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice
import Logging

/// `coap-fw-client watch` (issue #12, item 2): runs an update, then observes
/// the manifest at the server that answered (RFC 7641) and runs again on
/// each notification (after a random delay of up to `spread`, so that a
/// fleet does not stampede) and at each `interval` (±20 %). After a failed
/// run the next one comes sooner, from `backoff` doubling up to `interval`.
/// The observation is registered again when nothing was heard for Max-Age
/// (plus a margin): notifications stop when the server restarts or drops
/// us, and a re-registration's answer says whether it is still there.
/// A server that does not do Observe is simply polled.
public final class Watcher {
    public struct Schedule: Sendable {
        public var interval: Double
        public var spread: Double
        public var backoff: Double

        public init(interval: Double, spread: Double, backoff: Double) {
            (self.interval, self.spread, self.backoff) = (interval, spread, backoff)
        }
    }

    private let options: UpdateOptions
    private let schedule: Schedule
    private let logger: Logger
    private var generator = SystemRandomNumberGenerator()
    /// The observation: its client, what it watches, when it was last heard of.
    private var client: CoapClient?
    private var requester: Requester?
    private var observed: CoapURI?
    private var observing = false
    private var lastHeard: Int64 = 0
    private var maxAge: Int64 = 60
    private var awaitingFirst = false
    /// When to register again after an observation ended (nil: not to).
    private var retryAt: Int64?
    private var failedRegistrations = 0
    private var withoutObserve = 0
    /// Whether this registration already answered a 4.01 with Echo (RFC 9175): once only.
    private var echoed = false
    private var knownETag: ETag?
    private var nextID = 1
    /// The observation's token (kept for re-registrations).
    private var token: [UInt8]?
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 8)

    /// The least Max-Age taken from a server (seconds): it sets how soon
    /// silence means a lost observation, so how often a device registers.
    static let minimumMaxAge: Int64 = 5

    public init(options: UpdateOptions, schedule: Schedule, logger: Logger) {
        (self.options, self.schedule, self.logger) = (options, schedule, logger)
    }

    deinit { buffer.deallocate() }

    /// Runs until `shouldStop()`; `runOnce` performs one update and returns
    /// its report (nil when the state folder could not be used).
    public func run(shouldStop: () -> Bool, runOnce: () -> UpdateReport?) {
        var failures = 0
        while !shouldStop() {
            let report = runOnce()
            let succeeded = report?.result.isSuccess ?? false
            failures = succeeded ? 0 : failures + 1
            if let source = report?.source.flatMap(CoapURI.init), source != observed || !observing {
                withoutObserve = 0
                register(source)
            } else if observed != nil, !observing {
                register(observed!)
            }
            // What the run saw: the registration's answer is a change only if it differs
            // (a release published between the run and the registration is not missed).
            if let report, report.source.flatMap(CoapURI.init) == observed, let etag = report.sourceETag {
                knownETag = etag
            }
            let wait = succeeded ? jittered(schedule.interval)
                : jittered(min(schedule.interval, schedule.backoff * Double(1 << min(failures - 1, 20))))
            logger.info("next run in \(Int(wait)) s unless the manifest changes")
            var due = monotonicMilliseconds() + Int64(wait * 1000)
            while !shouldStop() {
                let now = monotonicMilliseconds()
                if now >= due { break }
                if observing, now - lastHeard > (maxAge + min(10, max(2, maxAge / 2))) * 1000, let observed {
                    logger.info("nothing heard from \(observed) for Max-Age: registering again")
                    register(observed)
                } else if !observing, let retry = retryAt, now >= retry, let observed {
                    logger.info("registering again at \(observed)")
                    register(observed)
                }
                if poll(milliseconds: min(due - now, 1000)) {
                    let delay = schedule.spread > 0 ? Double.random(in: 0...schedule.spread, using: &generator) : 0
                    logger.notice("\(observed?.description ?? "manifest") changed: updating in \(Int(delay)) s")
                    due = min(due, monotonicMilliseconds() + Int64(delay * 1000))
                }
            }
        }
    }

    /// An observation that ended (an error answer, no answer): registered again
    /// after 2 s, doubling after each failure up to Max-Age.
    private func ended() {
        observing = false
        failedRegistrations += 1
        let wait = min(maxAge * 1000, Int64(2000) << min(failedRegistrations - 1, 16))
        retryAt = monotonicMilliseconds() + wait
    }

    private func jittered(_ seconds: Double) -> Double {
        max(0.1, seconds * Double.random(in: 0.8...1.2, using: &generator))
    }

    /// The observation request (RFC 7641 §3.1): GET, Observe 0, the first 1024-byte block.
    private func registration(_ uri: CoapURI, token: [UInt8]?, echo: [UInt8]? = nil) -> CoapRequest {
        CoapRequest(uri: uri, accept: options.format.contentFormat, block2: Block2(number: 0, szx: 6), echo: echo,
                    observe: 0, token: token)
    }

    /// Sends an observation request for `uri`.
    private func register(_ uri: CoapURI) {
        do {
            if client == nil || observed != uri {
                let c = try CoapClient(logger: logger, psk: options.psk)
                c.ackTimeout = options.ackTimeout
                c.maxRetransmit = options.maxRetransmit
                client = c
                requester = Requester(client: c, timeout: options.timeout, exchangeTimeout: options.exchangeTimeout,
                                      mappings: options.resolve, windowBytes: 0, logger: logger)
            }
            guard let client, let requester, let address = requester.address(for: uri) else {
                ended()
                return
            }
            // The same URI on the same client: re-register under the same token, so the
            // server refreshes its one entry for us (RFC 7641 §3.3.1) instead of adding one.
            let again = observed == uri ? token : nil
            client.forget(id: nextID)
            nextID += 1
            token = try client.submit(registration(uri, token: again), address: address, id: nextID, into: buffer)
            if observed != uri { knownETag = nil }
            observed = uri
            observing = true  // until the answer says otherwise
            awaitingFirst = true
            echoed = false
            lastHeard = monotonicMilliseconds()
        } catch {
            logger.info("cannot observe \(uri): \(error.description)")
            ended()
        }
    }

    /// Waits up to `milliseconds` for the observation; true on a notification of a change.
    private func poll(milliseconds: Int64) -> Bool {
        guard let client, observing else {
            usleep(UInt32(max(1, milliseconds)) * 1000)
            return false
        }
        do {
            try client.process(milliseconds: milliseconds)
        } catch {
            logger.info("observation of \(observed?.description ?? "?") ended: \(error.description)")
            // The next registration gets a new client: this one's context may be broken.
            self.client = nil
            requester = nil
            ended()
            return false
        }
        var changed = false
        for completion in client.takeCompletions() where completion.id == nextID {
            switch completion.result {
            case .failure(let error):
                logger.info("observation of \(observed?.description ?? "?") ended: \(error.description)")
                ended()
            case .success(let response):
                if response.codeClass == 4, response.codeDetail == 1, let echo = response.echo, !echoed, let observed,
                   let address = requester?.address(for: observed) {
                    // RFC 9175: the server wants its Echo value back (once; a second 4.01 ends it below).
                    echoed = true
                    do {
                        _ = try client.submit(registration(observed, token: token, echo: echo), address: address, id: nextID,
                                              into: buffer)
                    } catch {
                        logger.info("cannot observe \(observed): \(error.description)")
                        ended()
                    }
                    continue
                }
                guard response.isSuccess else {
                    // A deleted resource, or a server going away (libcoap tells its observers 4.04).
                    logger.info("observation of \(observed?.description ?? "?") ended: \(response.codeText)")
                    ended()
                    continue
                }
                guard response.observe != nil else {
                    // No Observe: a server without it, or one that had not registered a
                    // just-published manifest yet. Asked again three times (2, 4, 8 s),
                    // then polled every interval until the next run.
                    observing = false
                    withoutObserve += 1
                    if withoutObserve <= 3 {
                        retryAt = monotonicMilliseconds() + (Int64(1000) << withoutObserve)
                        logger.info("\(observed?.description ?? "?") answered \(response.codeText) without Observe: asking again in \(1 << withoutObserve) s")
                    } else {
                        logger.info("\(observed?.description ?? "?") answered \(response.codeText) without Observe: polling every interval")
                        retryAt = nil
                    }
                    continue
                }
                withoutObserve = 0
                retryAt = nil
                failedRegistrations = 0
                lastHeard = monotonicMilliseconds()
                // Max-Age 0 or 1 would mean a registration every few seconds: 5 s at least, a day at most.
                maxAge = min(max(Int64(response.maxAge ?? 60), Self.minimumMaxAge), 86_400)
                // The answer to a registration is the manifest as it is now: a change
                // only if its ETag differs from the one last seen (a re-registration
                // after the server restarted may bring a release published meanwhile).
                // Every later notification is a change.
                if awaitingFirst {
                    awaitingFirst = false
                    if let etag = response.etag, let known = knownETag, etag != known { changed = true }
                } else {
                    changed = true
                }
                knownETag = response.etag ?? knownETag
            }
        }
        return changed
    }
}
