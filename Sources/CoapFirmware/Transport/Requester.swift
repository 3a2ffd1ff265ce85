import CoapFirmwareCore
import CoapFirmwareDevice
import Logging

/// Block-wise GETs with an updater's patience, over one `CoapClient`: the
/// one fetch path of manifests, images and `fetch`.
///
/// **Window.** Asked for block N of a body, it also asks for the blocks
/// after it, each its own confirmable request with its own token, as far as
/// `congestion` allows (`CongestionWindow`: slow start, AIMD, RFC 6298
/// time-outs, which become libcoap's ACK_TIMEOUT for the next requests) and
/// never past the byte budget: at most `windowBytes / block size` blocks
/// (and at most 64) are in flight or waiting, and their payloads land in
/// one buffer of `windowBytes` allocated here once. Blocks come back in any
/// order; they are handed out strictly in order, one at a time, so the
/// block rules and the digests see exactly the sequence a lock-step
/// download gives. A block
/// ahead of the hash frontier waits here, in its slot, not in the staging
/// file: it is not trusted (its ETag and place are unchecked until its turn),
/// writing it early would cost a second write or a hole a resume would have
/// to understand, and the budget bounds the memory anyway. The payload
/// handed out stays valid until the next call. A request for any other block
/// (a restart, a new body, a smaller block size from the server) drops the
/// window and starts a new one there. `windowBytes` 0 is lock-step: one
/// request at a time with the fixed ACK_TIMEOUT, as before the window.
///
/// **Servers.** Nothing is asked ahead until the server has answered a
/// block at this block size (a server may answer with smaller blocks, RFC
/// 7959 §2.4, and requests made at the bigger size would be wasted), and
/// never again from a server that answered a request of a pipelined body
/// with another block than the one asked for (txThings keeps one block-wise
/// state per peer, and may answer even the window's last request, alone in
/// flight by then, with block 0): that block is asked for again alone, on
/// a new port, and the server gets lock-step from then on. In lock-step
/// every answer goes to the block rules as it came, so a server that lies
/// is caught as before.
///
/// **Patience.** A request unanswered for `exchangeTimeout` is sent afresh
/// (a new token; libcoap's retransmissions of the old one may still be
/// answered, and are ignored); when nothing at all came back for that long,
/// on a new session (a new port). The block waited for fails after
/// `timeout` without an answer to it. Host names go through `--resolve` first.
final class Requester {
    let client: CoapClient
    /// Longest wait without progress, in seconds (SPEC §7 `--timeout`).
    var timeout: Double
    /// How long one exchange may wait before it is sent afresh. RFC 7252's
    /// exponential back-off alone needs 2+4+8+16 s for four lost tries; on
    /// a lossy link a fresh exchange every few seconds keeps a moving
    /// transfer inside `timeout`.
    var exchangeTimeout: Double
    var mappings: [HostMapping]
    /// The byte budget of the window (0: lock-step).
    let windowBytes: Int
    private(set) var congestion: CongestionWindow
    /// Whether any request got an answer (a server that never answered is `no-server`).
    private(set) var answered = false
    private var addresses: [String: Resolved] = [:]
    /// What each server (by address) showed: the block size it answered at,
    /// and whether it botched a pipelined request.
    private var servers: [String: ServerKnowledge] = [:]

    private struct ServerKnowledge {
        /// The exponent of the server's last good answer: a body at it may be pipelined from its first block.
        var szx: UInt8?
        /// It answered a request in a window with another block (txThings keeps one block-wise state per peer).
        var lockStep = false
    }

    /// The window's payload buffer (`storageBytes`).
    private let storage: UnsafeMutableRawBufferPointer
    private var slots: [Slot] = []
    private var stream: Stream?
    private var generation = 0
    private var lastHeard: Int64 = 0
    private var lastBackoff: Int64 = 0
    private let logger: Logger

    /// One body being fetched.
    private struct Stream {
        var uri: CoapURI
        var address: Resolved
        var szx: UInt8
        /// The block to hand out next (the hash frontier).
        var next: UInt32
        /// The first block not yet asked for.
        var requested: UInt32
        /// The last block of the body, once known (its size, Size2, or a block without More).
        var last: UInt32?
        /// The block handed out by the previous call, whose slot is still the caller's.
        var handedOut: UInt32?
        var serverKey: String
        /// Whether a request went out while another was in flight: from
        /// then on an answer with another block than asked for may be the
        /// server's confusion (txThings answers the last request of a
        /// window, alone by then, with block 0), not a lie.
        var pipelined = false
    }

    /// A block in the window: asked for, answered, or failed.
    struct Slot {
        enum Phase: UInt8 { case empty, inFlight, done, failed }
        enum Outcome {
            case none
            case response(CoapResponse)
            case error(TransportError)
        }
        var phase = Phase.empty
        var lossNoted = false
        var number: UInt32 = 0
        /// The time-out this exchange was sent with, and when (ms).
        var timeout: Int32 = 0
        var sent: Int64 = 0
        var echo: [UInt8]?
        var outcome = Outcome.none

        var response: CoapResponse? { if case .response(let r) = outcome { r } else { nil } }
        var error: TransportError? { if case .error(let e) = outcome { e } else { nil } }
    }

    /// The client's id of the request for block `number` of the current stream.
    private func id(_ number: UInt32) -> Int { generation << 32 | Int(number) }

    /// A block as handed out: the response, and its payload (valid until the next call).
    struct Delivery {
        var response: CoapResponse
        var payload: UnsafeRawBufferPointer
    }

    init(client: CoapClient, timeout: Double, exchangeTimeout: Double, mappings: [HostMapping] = [],
         windowBytes: Int = 4096, logger: Logger) {
        (self.client, self.timeout, self.exchangeTimeout, self.mappings) = (client, timeout, exchangeTimeout, mappings)
        self.logger = logger
        self.windowBytes = max(0, windowBytes)
        let largest = Block2.size(szx: Block2.maxSZX)
        // No more than 64 blocks of the largest size can ever be in the window.
        storage = .allocate(byteCount: max(min(self.windowBytes, Self.maxSlots * largest), largest), alignment: 16)
        let initialRTO = Int64((client.ackTimeout * 1000).rounded())
        congestion = CongestionWindow(limit: max(1, self.windowBytes / largest), initialRTO: initialRTO)
        // Headroom over the window: forgotten requests still being retransmitted count for libcoap too.
        client.maxInFlight = self.windowBytes == 0 ? 1 : 2 * Self.windowSlots(windowBytes: self.windowBytes, szx: 0)
    }

    deinit { storage.deallocate() }

    /// The bytes the window holds for payloads: `windowBytes`, at least one
    /// block of the largest size (lock-step, a smaller budget) and at most
    /// 64 of them (`maxSlots`).
    var storageBytes: Int { storage.count }

    /// Blocks in flight or waiting at most, for a budget and block size: the
    /// budget in blocks, at least one (lock-step: one), at most `maxSlots`.
    static func windowSlots(windowBytes: Int, szx: UInt8) -> Int {
        windowBytes == 0 ? 1 : min(maxSlots, max(1, windowBytes / Block2.size(szx: szx)))
    }

    /// The most requests in flight: 64 (4 KiB of 64-byte blocks). Smaller
    /// blocks would mean more bookkeeping than payload for no gain: 64
    /// requests already fill a 100 kbit/s link with 100 ms of round trip.
    static let maxSlots = 64

    /// The window's whole memory now: the payload buffer and the slots'
    /// bookkeeping (`Slot`, without the Echo bytes of a 4.01 being answered).
    var windowMemoryBytes: Int { storage.count + slots.capacity * MemoryLayout<Slot>.stride }
    private var adaptive: Bool { windowBytes > 0 }

    /// Resolves a URI's host through the mappings first, then the system resolver.
    func address(for uri: CoapURI) -> Resolved? {
        let key = "\(uri.host)|\(uri.port)"
        if let known = addresses[key] { return known }
        let mapped = mappings.last { $0.host == uri.host }
        let found = Resolved.resolve(host: mapped?.address ?? uri.host, port: mapped?.port ?? uri.port)
        addresses[key] = found
        return found
    }

    /// Block `block` of `uri`'s body (`bodySize` bytes when known), with
    /// the blocks after it asked for in the window meanwhile.
    func fetchBlock(_ uri: CoapURI, _ block: Block2, bodySize: UInt64? = nil, accept: UInt16? = nil)
        -> Result<Delivery, TransportError> {
        guard let address = address(for: uri) else { return .failure(.unreachable("cannot resolve \(uri.host)")) }
        if var s = stream, s.uri == uri, s.szx == block.szx, s.next == block.number {
            if let done = s.handedOut { release(done) }
            s.handedOut = nil
            stream = s
        } else {
            startStream(uri, address: address, block: block, bodySize: bodySize)
        }
        let deadline = monotonicMilliseconds() + Int64(timeout * 1000)
        while true {
            fill(accept: accept)
            guard var s = stream else { return .failure(.failed("no stream")) }
            let index = slotIndex(s.next)
            let slot = slots[index]
            if slot.number == s.next, slot.phase == .done, let response = slot.response {
                // Where the server says the body ends, no more is asked for
                // ahead; the frontier block is always asked for (a server
                // that lies about its size is the block rules' business).
                if let size2 = response.size2, size2 > 0 {
                    s.last = min(s.last ?? .max, Self.lastBlock(ofBodySize: size2, szx: s.szx))
                }
                if let b = response.block2, !b.more { s.last = min(s.last ?? .max, s.next) }
                s.handedOut = s.next
                s.next += 1
                stream = s
                let bytes = UnsafeRawBufferPointer(rebasing: buffer(index)[0..<response.payloadCount])
                return .success(Delivery(response: response, payload: bytes))
            }
            if slot.number == s.next, slot.phase == .failed, let error = slot.error {
                if case .timeout = error {
                    // libcoap gave up on it: ask again while there is time.
                    submit(index, number: s.next, accept: accept)
                } else {
                    // An RST or ICMP error: the server is not there; no point waiting.
                    dropStream()
                    return .failure(error)
                }
            }
            let now = monotonicMilliseconds()
            if now >= deadline {
                client.closeSession()
                dropStream()
                return .failure(.timeout(seconds: timeout))
            }
            do {
                try client.process(milliseconds: min(deadline, nextTimer(now: now)) - now)
                // Everything that came while the caller was busy (hashing, an
                // fsync) first, so that it is not taken for silence or loss.
                try client.drain(limit: slots.count)
            } catch {
                dropStream()
                return .failure(error)
            }
            for completion in client.takeCompletions() { complete(completion, accept: accept) }
            checkTimers(now: monotonicMilliseconds(), accept: accept)
        }
    }

    private func startStream(_ uri: CoapURI, address: Resolved, block: Block2, bodySize: UInt64?, last known: UInt32? = nil) {
        dropStream()
        let count = Self.windowSlots(windowBytes: windowBytes, szx: block.szx)
        if slots.count != count { slots = Array(repeating: Slot(), count: count) }
        congestion.setLimit(count)
        let last = known ?? bodySize.map { Self.lastBlock(ofBodySize: $0, szx: block.szx) }
        stream = Stream(uri: uri, address: address, szx: block.szx, next: block.number, requested: block.number, last: last,
                        serverKey: CoapClient.sessionKey(uri: uri, address: address))
    }

    /// The number of the last block of a body of `size` bytes (block 0 for an empty body).
    private static func lastBlock(ofBodySize size: UInt64, szx: UInt8) -> UInt32 {
        UInt32(clamping: size == 0 ? 0 : (size - 1) / UInt64(Block2.size(szx: szx)))
    }

    /// Forgets the window: answers still on their way are ignored.
    private func dropStream() {
        for i in slots.indices where slots[i].phase == .inFlight { client.forget(id: id(slots[i].number)) }
        for i in slots.indices { slots[i] = Slot() }
        stream = nil
        generation += 1
    }

    private func slotIndex(_ number: UInt32) -> Int { Int(number % UInt32(slots.count)) }

    private func buffer(_ index: Int) -> UnsafeMutableRawBufferPointer {
        let size = Block2.size(szx: stream?.szx ?? Block2.maxSZX)
        return UnsafeMutableRawBufferPointer(rebasing: storage[index * size ..< (index + 1) * size])
    }

    private func release(_ number: UInt32) {
        let index = slotIndex(number)
        if slots[index].number == number { slots[index] = Slot() }
    }

    private var inFlight: Int { slots.reduce(0) { $0 + ($1.phase == .inFlight ? 1 : 0) } }

    /// Asks for more blocks while the window, the budget and the body allow.
    private func fill(accept: UInt16?) {
        guard var s = stream else { return }
        let known = servers[s.serverKey]
        let ahead = adaptive && known?.lockStep != true && known?.szx == s.szx
        var flying = inFlight
        while s.requested == s.next || (ahead && flying < congestion.allowed && s.requested &- s.next < UInt32(slots.count)
                                        && s.last.map({ s.requested <= $0 }) ?? true) {
            // Rotate sessions only between exchanges: no answer may be lost to it.
            if client.sessionExhausted && client.inFlight > 0 { break }
            let index = slotIndex(s.requested)
            guard slots[index].phase == .empty else { break }
            if flying > 0 { s.pipelined = true }
            submit(index, number: s.requested, accept: accept)
            s.requested += 1
            flying += 1
            stream = s
        }
    }

    private func submit(_ index: Int, number: UInt32, accept: UInt16?, echo: [UInt8]? = nil) {
        guard let s = stream else { return }
        let now = monotonicMilliseconds()
        if client.inFlight == 0 { lastHeard = now }
        let timeout = adaptive ? congestion.rto : Int64((client.ackTimeout * 1000).rounded())
        slots[index] = Slot(phase: .inFlight, number: number, timeout: Int32(clamping: timeout), sent: now, echo: echo)
        let request = CoapRequest(uri: s.uri, accept: accept, block2: Block2(number: number, szx: s.szx), echo: echo)
        do {
            try client.submit(request, address: s.address, id: id(number), into: buffer(index), timeout: adaptive ? timeout : nil)
        } catch {
            slots[index].phase = .failed
            slots[index].outcome = .error(error)
        }
    }

    private func complete(_ completion: CoapClient.Completion, accept: UInt16?) {
        guard completion.id >> 32 == generation else { return }
        let number = UInt32(truncatingIfNeeded: completion.id)
        let index = slotIndex(number)
        guard slots[index].number == number, slots[index].phase == .inFlight else { return }
        let now = monotonicMilliseconds()
        switch completion.result {
        case .success(let response):
            answered = true
            lastHeard = now
            if adaptive { congestion.delivered(sent: slots[index].sent, now: now, timeout: Int64(slots[index].timeout)) }
            // RFC 9175 §2.3: the server wants proof that we receive at this address; repeat once with its Echo.
            if response.codeClass == 4, response.codeDetail == 1, let echo = response.echo, slots[index].echo == nil {
                submit(index, number: number, accept: accept, echo: echo)
                return
            }
            if !response.isSuccess, let s = stream, number != s.next, let last = s.last, number <= last,
               servers[s.serverKey]?.lockStep != true {
                // An error for a block ahead inside the body (4.29, 5.03: a
                // server that limits concurrent requests): lock-step from the frontier.
                fallBackToLockStep(s, because: "block \(number) was answered \(response.codeText) in a window")
                return
            }
            if response.isSuccess, let s = stream {
                if let b = response.block2 {
                    // RFC 7959 §2.4: an answer in smaller blocks starts where the block asked for does.
                    let matches = b.szx <= s.szx && UInt64(b.number) == UInt64(number) << (s.szx - b.szx)
                    if !matches, s.pipelined, servers[s.serverKey]?.lockStep != true {
                        fallBackToLockStep(s, because: "block \(number) was answered as block \(b.number) of \(b.size) bytes in a window")
                        return
                    }
                    if matches { servers[s.serverKey, default: ServerKnowledge()].szx = b.szx }
                }
            }
            slots[index].phase = .done
            slots[index].outcome = .response(response)
        case .failure(let error):
            if case .oversized = error { answered = true }
            slots[index].phase = .failed
            slots[index].outcome = .error(error)
        }
    }

    /// The server cannot take a window: from now on one request at a time,
    /// from a new port (its state for the old one may be confused), starting
    /// again at the frontier.
    private func fallBackToLockStep(_ s: Stream, because why: String) {
        logger.info("\(s.uri): \(why); lock-step with this server")
        servers[s.serverKey, default: ServerKnowledge()].lockStep = true
        client.closeSession()
        startStream(s.uri, address: s.address, block: Block2(number: s.next, szx: s.szx), bodySize: nil, last: s.last)
    }

    /// Loss signals, fresh exchanges and sessions dropped for silence.
    private func checkTimers(now: Int64, accept: UInt16?) {
        guard stream != nil else { return }
        let exchange = Int64(exchangeTimeout * 1000)
        if inFlight > 0, now - lastHeard >= exchange {
            // Nothing came back for a whole exchange time-out: a new session (port) and every request afresh.
            logger.debug("no answer for \(exchangeTimeout) s; asking again on a new session")
            client.closeSession()
            if adaptive { congestion.silence(now: now) }
            // Without the old Echo: the server challenges the new port afresh.
            for i in slots.indices where slots[i].phase == .inFlight { submit(i, number: slots[i].number, accept: accept) }
            lastHeard = now
            return
        }
        if adaptive, inFlight > 0, now - max(lastHeard, lastBackoff) >= congestion.rto {
            // RFC 6298 (5.5): a whole time-out without any answer backs the time-out off.
            congestion.silence(now: now)
            lastBackoff = now
        }
        for i in slots.indices where slots[i].phase == .inFlight {
            let age = now - slots[i].sent
            if adaptive, !slots[i].lossNoted, age >= Int64(slots[i].timeout) {
                slots[i].lossNoted = true
                congestion.timedOut(sent: slots[i].sent, now: now)
            }
            if age >= exchange {
                client.forget(id: id(slots[i].number))
                submit(i, number: slots[i].number, accept: accept)
            }
        }
    }

    /// When the next loss signal or fresh exchange is due.
    private func nextTimer(now: Int64) -> Int64 {
        let exchange = Int64(exchangeTimeout * 1000)
        var due = now + 1000
        if inFlight > 0 {
            due = min(due, lastHeard + exchange)
            if adaptive { due = min(due, max(lastHeard, lastBackoff) + congestion.rto) }
        }
        for slot in slots where slot.phase == .inFlight {
            if adaptive && !slot.lossNoted { due = min(due, slot.sent + Int64(slot.timeout)) }
            due = min(due, slot.sent + exchange)
        }
        return max(due, now + 1)
    }

    /// Why a body could not be fetched.
    enum BodyError: Error, CustomStringConvertible {
        case transport(TransportError)
        case status(String)
        case blocks(BlockReceiver.Fault)
        /// The sink refused the bytes (a full disk, say).
        case sink(String)

        var description: String {
            switch self {
            case .transport(let e): return e.description
            case .status(let code): return "CoAP \(code)"
            case .blocks(let fault): return fault.description
            case .sink(let why): return why
            }
        }
    }

    /// One confirmable POST of a small body (at most one block), answered or
    /// not within `timeout` seconds; a 4.01 with Echo is answered once
    /// (RFC 9175). Not for bodies that need Block1.
    func post(_ uri: CoapURI, contentFormat: UInt16, payload: [UInt8], timeout: Double) -> Result<CoapResponse, TransportError> {
        guard let address = address(for: uri) else { return .failure(.unreachable("cannot resolve \(uri.host)")) }
        let id = -1
        var scratch = [UInt8](repeating: 0, count: 1024)
        return scratch.withUnsafeMutableBytes { buffer -> Result<CoapResponse, TransportError> in
            var request = CoapRequest(uri: uri, accept: nil, block2: nil, echo: nil, payload: payload, contentFormat: contentFormat)
            let deadline = monotonicMilliseconds() + Int64(timeout * 1000)
            var echoed = false
            do throws(TransportError) {
                try client.submit(request, address: address, id: id, into: buffer)
                while true {
                    let now = monotonicMilliseconds()
                    guard now < deadline else {
                        client.forget(id: id)
                        return .failure(.timeout(seconds: timeout))
                    }
                    try client.process(milliseconds: deadline - now)
                    for completion in client.takeCompletions() where completion.id == id {
                        switch completion.result {
                        case .failure(let error): return .failure(error)
                        case .success(let response):
                            answered = true
                            if response.codeClass == 4, response.codeDetail == 1, let echo = response.echo, !echoed {
                                echoed = true
                                request.echo = echo
                                try client.submit(request, address: address, id: id, into: buffer)
                                continue
                            }
                            return .success(response)
                        }
                    }
                }
            } catch {
                client.forget(id: id)
                return .failure(error)
            }
        }
    }

    /// Fetches a whole body of at most `limit` bytes, block by block, each
    /// block checked by `BlockReceiver` (the one set of block rules) and
    /// handed to `sink` at its offset; returns the body's length. A fault a
    /// fresh start may cure (a changed ETag, a block out of place: a server
    /// that rebuilt the body, or txThings answering a request on a new port
    /// with block 0) starts the body again at block 0, at most `maxRestarts`
    /// times, as `UpdateEngine` does for images; the sink then sees offset 0
    /// again and drops what it had.
    func fetchBody(_ uri: CoapURI, szx: UInt8, limit: UInt64, maxRestarts: Int = 3,
                   sink: (UInt64, UnsafeRawBufferPointer) -> String?) -> Result<Body, BodyError> {
        var receiver = BlockReceiver(limit: limit, szx: szx)
        var next: Block2? = receiver.nextBlock
        var restarts = 0
        var etag: ETag?
        while let block = next {
            let delivery: Delivery
            switch fetchBlock(uri, block) {
            case .failure(let error): return .failure(.transport(error))
            case .success(let d): delivery = d
            }
            let response = delivery.response
            guard response.isSuccess else { return .failure(.status(response.codeText)) }
            switch receiver.receive(response.block(asked: block.szx)) {
            case .accept(let offset, let following):
                if let why = sink(offset, delivery.payload) { return .failure(.sink(why)) }
                etag = response.etag
                next = following
            case .restart(let fault) where restarts < maxRestarts:
                restarts += 1
                logger.info("\(uri): \(fault); starting the body again")
                receiver = BlockReceiver(limit: limit, szx: szx)
                next = receiver.nextBlock
            case .restart(let fault), .mismatch(let fault), .reject(let fault):
                return .failure(.blocks(fault))
            }
        }
        return .success(Body(length: receiver.offset, etag: etag))
    }

    /// A body fetched: its length, and its ETag (the last block's; the block rules held it the same throughout).
    struct Body {
        var length: UInt64
        var etag: ETag?
    }
}
