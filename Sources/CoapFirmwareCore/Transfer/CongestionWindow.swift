/// How many Block2 requests may be in flight at once, and the
/// retransmission time-out for new ones: the congestion control of windowed
/// downloads (issue #11), as a pure state machine (no clock, no I/O; times
/// are milliseconds the caller measures).
///
/// - **Window**: starts at one request (RFC 7252 §4.7 NSTART = 1) until a
///   round trip has been measured, then at `initialWindow`; grows by one
///   block per delivered block while below `ssthresh` (slow start: doubles
///   each round trip), then by 1/window per block (congestion avoidance:
///   one block per round trip). Slow start also ends when a round trip
///   grows to 1.5 times the smallest one seen (HyStart's delay signal, RFC
///   9406): the bottleneck's queue is filling, and a drop-tail queue that
///   overflows costs a time-out (a whole second) where the window would
///   gain a few blocks. Never above `limit`, the byte budget
///   (`--window-bytes`) in blocks.
/// - **Loss**: CoAP has no duplicate acknowledgements, so a loss shows as a
///   request unanswered after the time-out (libcoap is retransmitting it
///   then). The window halves, at most once per round trip: a time-out of a
///   request sent before the last decrease is the same congestion event.
/// - **Time-out** (RFC 6298): SRTT and RTTVAR from round trips of requests
///   answered before their first retransmission could have been sent
///   (Karn: an answer after that may belong to the retransmission, so it
///   says nothing of the round trip); RTO = SRTT + max(G, 4 RTTVAR), at
///   least `minimumRTO` (1 s, RFC 6298 (2.4), also libcoap's smallest
///   ACK_TIMEOUT), at most 60 s. Before the first sample it is RFC 7252's
///   ACK_TIMEOUT (2 s). When every request in flight timed out and nothing
///   came back for a whole time-out, it doubles (RFC 6298 (5.5)), until a
///   valid sample resets it.
public struct CongestionWindow: Sendable, Equatable {
    /// The most requests in flight (the byte budget in blocks, at least 1).
    public private(set) var limit: Int
    public let initialWindow: Int
    public let minimumRTO: Int64
    public static let maximumRTO: Int64 = 60_000
    /// Clock granularity G of RFC 6298, in milliseconds.
    public static let granularity: Int64 = 10

    /// The window, in blocks (fractional during congestion avoidance).
    public private(set) var window: Double = 1
    public private(set) var ssthresh: Double = .infinity
    /// Smoothed round trip and its variation, in milliseconds; nil before the first sample.
    public private(set) var srtt: Double?
    public private(set) var rttvar: Double = 0
    /// The smallest round trip measured, in milliseconds.
    public private(set) var minimumRTT: Double = .infinity
    /// The time-out for requests sent now, in milliseconds.
    public private(set) var rto: Int64
    /// When the window last shrank; time-outs of requests sent before it are the same event.
    private var lastDecrease: Int64 = .min
    public private(set) var losses = 0
    public private(set) var samples = 0

    /// `limit`: the most requests in flight; `initialRTO`: RFC 7252's ACK_TIMEOUT in milliseconds.
    public init(limit: Int, initialWindow: Int = 4, initialRTO: Int64 = 2000, minimumRTO: Int64 = 1000) {
        self.limit = max(1, limit)
        self.initialWindow = max(1, initialWindow)
        self.minimumRTO = max(1, minimumRTO)
        self.rto = min(Self.maximumRTO, max(self.minimumRTO, initialRTO))
    }

    /// How many requests may be in flight now.
    public var allowed: Int { min(limit, max(1, Int(window))) }

    /// A new byte budget in blocks (the block size changed).
    public mutating func setLimit(_ blocks: Int) {
        limit = max(1, blocks)
        window = min(window, Double(limit))
    }

    /// A response arrived for a request first sent at `sent`, answered at
    /// `now`; `timeout` is the time-out it was sent with. Grows the window
    /// and, for an unambiguous round trip, updates the time-out.
    public mutating func delivered(sent: Int64, now: Int64, timeout: Int64) {
        let rtt = now - sent
        let measured = srtt != nil
        if rtt < timeout { sample(Double(max(0, rtt))) }
        // Before the first round trip one request at a time; with it, the initial window.
        guard measured else { return }
        if window < ssthresh {
            window = min(Double(limit), window + 1)
        } else {
            window = min(Double(limit), window + 1 / max(window, 1))
        }
    }

    private mutating func sample(_ rtt: Double) {
        samples += 1
        minimumRTT = min(minimumRTT, rtt)
        if window < ssthresh, srtt != nil, rtt > minimumRTT * 1.5 + Double(Self.granularity) {
            ssthresh = window
        }
        if let s = srtt {
            // RFC 6298 (2.3), alpha 1/8, beta 1/4.
            rttvar = 0.75 * rttvar + 0.25 * abs(s - rtt)
            srtt = 0.875 * s + 0.125 * rtt
        } else {
            srtt = rtt
            rttvar = rtt / 2
            window = Double(min(limit, initialWindow))
        }
        let value = srtt! + max(Double(Self.granularity), 4 * rttvar)
        rto = min(Self.maximumRTO, max(minimumRTO, Int64(value.rounded(.up))))
    }

    /// A request first sent at `sent` is still unanswered after its time-out
    /// at `now`. Returns whether this is a new congestion event (the window shrank).
    @discardableResult
    public mutating func timedOut(sent: Int64, now: Int64) -> Bool {
        guard sent >= lastDecrease else { return false }
        losses += 1
        ssthresh = max(2, window / 2)
        window = max(1, min(window, ssthresh))
        lastDecrease = now
        return true
    }

    /// Nothing was answered for a whole time-out with requests in flight:
    /// back the time-out off (RFC 6298 (5.5)) and send one at a time until a round trip is measured again.
    public mutating func silence(now: Int64) {
        rto = min(Self.maximumRTO, rto * 2)
        ssthresh = max(2, window / 2)
        window = 1
        lastDecrease = now
    }
}
