import Testing
@testable import CoapFirmwareCore

@Suite struct CongestionWindowTests {
    /// Delivers `count` blocks, each answered `rtt` ms after it was sent, at `start`.
    func deliver(_ w: inout CongestionWindow, count: Int, rtt: Int64, start: Int64 = 0) {
        for i in 0..<Int64(count) { w.delivered(sent: start + i, now: start + i + rtt, timeout: w.rto) }
    }

    @Test func oneRequestUntilARoundTripIsMeasured() {
        var w = CongestionWindow(limit: 64)
        #expect(w.allowed == 1)
        #expect(w.rto == 2000)  // RFC 7252 ACK_TIMEOUT before any sample
        // An answer after the time-out may be the retransmission's: no sample, still one at a time.
        w.delivered(sent: 0, now: 2500, timeout: 2000)
        #expect(w.allowed == 1)
        #expect(w.samples == 0)
        w.delivered(sent: 3000, now: 3100, timeout: 2000)
        #expect(w.samples == 1)
        #expect(w.allowed == 4)  // the initial window
        #expect(w.srtt == 100)
        #expect(w.rttvar == 50)
        #expect(w.rto == 1000)  // 100 + 4 * 50 = 300, raised to the 1 s floor
    }

    @Test func slowStartDoublesPerRoundTripThenTheBudgetCaps() {
        var w = CongestionWindow(limit: 16)
        deliver(&w, count: 1, rtt: 100)
        #expect(w.allowed == 4)
        deliver(&w, count: 4, rtt: 100)
        #expect(w.allowed == 8)
        deliver(&w, count: 8, rtt: 100)
        #expect(w.allowed == 16)
        deliver(&w, count: 100, rtt: 100)
        #expect(w.allowed == 16)  // never past the byte budget
        w.setLimit(4)
        #expect(w.allowed == 4)
    }

    @Test func aGrowingRoundTripEndsSlowStart() {
        var w = CongestionWindow(limit: 64)
        deliver(&w, count: 1, rtt: 100)
        deliver(&w, count: 4, rtt: 100)
        #expect(w.allowed == 8)
        w.delivered(sent: 1000, now: 1200, timeout: w.rto)  // 200 > 1.5 * 100 + 10: the queue fills
        #expect(w.ssthresh == 8)
        let before = w.window
        deliver(&w, count: 9, rtt: 120, start: 2000)
        // Congestion avoidance: about one block per round trip, not nine.
        #expect(w.window > before && w.window < before + 1.5)
    }

    @Test func aTimeOutHalvesOncePerEvent() {
        var w = CongestionWindow(limit: 64)
        deliver(&w, count: 1, rtt: 100)
        deliver(&w, count: 28, rtt: 100)
        #expect(w.allowed == 32)
        let first = w.timedOut(sent: 500, now: 1500)
        #expect(first)
        #expect(w.allowed == 16)
        // Requests sent before the decrease time out in the same event: no second halving.
        let sameEvent = w.timedOut(sent: 600, now: 1600)
        #expect(!sameEvent)
        let stillSame = w.timedOut(sent: 1400, now: 2400)
        #expect(!stillSame)
        #expect(w.allowed == 16)
        // One sent after it is a new event.
        let second = w.timedOut(sent: 1501, now: 2600)
        #expect(second)
        #expect(w.allowed == 8)
        #expect(w.losses == 2)
        // Never below two (one request at a time only after silence).
        for t in 0..<10 { w.timedOut(sent: 10_000 + Int64(t) * 2000, now: 11_000 + Int64(t) * 2000) }
        #expect(w.allowed == 2)
    }

    @Test func aTimeOutNeverGrowsTheWindow() {
        var w = CongestionWindow(limit: 64)
        // Before the first round trip: still one request at a time.
        let first = w.timedOut(sent: 0, now: 2000)
        #expect(first)
        #expect(w.allowed == 1)
        deliver(&w, count: 1, rtt: 100, start: 3000)
        w.silence(now: 5000)
        #expect(w.allowed == 1)
        let after = w.timedOut(sent: 5001, now: 7000)
        #expect(after)
        #expect(w.allowed == 1)
    }

    @Test func silenceBacksTheTimeOutOffAndASampleResetsIt() {
        var w = CongestionWindow(limit: 64)
        deliver(&w, count: 1, rtt: 400)
        #expect(w.rto == 1200)  // 400 + 4 * 200
        w.silence(now: 5000)
        #expect(w.rto == 2400)
        #expect(w.allowed == 1)
        w.silence(now: 8000)
        #expect(w.rto == 4800)
        for _ in 0..<20 { w.silence(now: 9000) }
        #expect(w.rto == CongestionWindow.maximumRTO)
        w.delivered(sent: 10_000, now: 10_400, timeout: w.rto)
        #expect(w.rto < 2000)
        #expect(w.allowed == 2)  // slow start again, from one
    }

    @Test func rtoFollowsRFC6298() {
        var w = CongestionWindow(limit: 8, minimumRTO: 1)
        w.delivered(sent: 0, now: 1000, timeout: 2000)
        #expect(w.rto == 3000)  // R + 4 * R/2
        w.delivered(sent: 0, now: 1400, timeout: 3000)
        // RTTVAR = 3/4 * 500 + 1/4 * 400 = 475; SRTT = 7/8 * 1000 + 1/8 * 1400 = 1050
        #expect(w.rttvar == 475)
        #expect(w.srtt == 1050)
        #expect(w.rto == 2950)
    }
}
