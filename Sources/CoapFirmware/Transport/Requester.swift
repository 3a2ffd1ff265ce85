import CoapFirmwareCore
import CoapFirmwareDevice

/// Requests with an updater's patience, over one `CoapClient`: each
/// exchange may take `exchangeTimeout` (libcoap's retransmissions
/// included), then it is dropped and sent afresh, until `timeout` passes
/// without an answer. Host names go through `--resolve` first.
final class Requester {
    let client: CoapClient
    /// Longest wait without progress, in seconds (SPEC §7 `--timeout`).
    var timeout: Double
    /// How long one exchange may wait before it is sent afresh. RFC 7252's
    /// exponential back-off alone needs 2+4+8+16 s for four lost tries; on
    /// a lossy link a fresh exchange every few seconds keeps a moving
    /// transfer inside `timeout` while staying one request at a time.
    var exchangeTimeout: Double
    var mappings: [HostMapping]
    /// Whether any request got an answer (a server that never answered is `no-server`).
    private(set) var answered = false
    private var addresses: [String: Resolved] = [:]

    init(client: CoapClient, timeout: Double, exchangeTimeout: Double, mappings: [HostMapping] = []) {
        (self.client, self.timeout, self.exchangeTimeout, self.mappings) = (client, timeout, exchangeTimeout, mappings)
    }

    /// Resolves a URI's host through the mappings first, then the system resolver.
    func address(for uri: CoapURI) -> Resolved? {
        let key = "\(uri.host)|\(uri.port)"
        if let known = addresses[key] { return known }
        let mapped = mappings.last { $0.host == uri.host }
        let found = Resolved.resolve(host: mapped?.address ?? uri.host, port: mapped?.port ?? uri.port)
        addresses[key] = found
        return found
    }

    /// One GET, retried while the server makes no progress for less than `timeout`.
    func get(_ uri: CoapURI, block2: Block2?, accept: UInt16? = nil) -> Result<CoapResponse, TransportError> {
        guard let address = address(for: uri) else { return .failure(.unreachable("cannot resolve \(uri.host)")) }
        let deadline = monotonicMilliseconds() + Int64(timeout * 1000)
        while true {
            let left = Double(deadline - monotonicMilliseconds()) / 1000
            if left <= 0 { return .failure(.timeout(seconds: timeout)) }
            do {
                let response = try client.get(uri, address: address, accept: accept, block2: block2,
                                              timeout: min(left, exchangeTimeout))
                answered = true
                return .success(response)
            } catch .timeout {
                continue
            } catch {
                // An RST or ICMP error: the server is not there; no point waiting.
                return .failure(error)
            }
        }
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

    /// Fetches a whole body of at most `limit` bytes, block by block, each
    /// block checked by `BlockReceiver` (the one set of block rules) and
    /// handed to `sink` at its offset; returns the body's length.
    func fetchBody(_ uri: CoapURI, szx: UInt8, limit: UInt64,
                          sink: (UInt64, UnsafeRawBufferPointer) -> String?) -> Result<UInt64, BodyError> {
        var receiver = BlockReceiver(limit: limit, szx: szx)
        var next: Block2? = receiver.nextBlock
        while let block = next {
            let response: CoapResponse
            switch get(uri, block2: block) {
            case .failure(let error): return .failure(.transport(error))
            case .success(let r): response = r
            }
            guard response.isSuccess else { return .failure(.status(response.codeText)) }
            switch receiver.receive(response.block(asked: block.szx)) {
            case .accept(let offset, let following):
                if let why = sink(offset, client.payload(response)) { return .failure(.sink(why)) }
                next = following
            case .restart(let fault), .mismatch(let fault), .reject(let fault):
                return .failure(.blocks(fault))
            }
        }
        return .success(receiver.offset)
    }
}
