import CoapFirmwareDevice

/// One CoAP response as the update driver needs it. The payload sits in the
/// client's block buffer (`CoapClient.payload`) until the next request.
struct CoapResponse: Sendable, Equatable {
    // Declared widest first: a response sits in every window slot (WindowBudgetTests).
    var payloadCount = 0
    var size2: UInt64?
    /// RFC 9175 Echo value (1 to 40 bytes), sent with a 4.01 challenge.
    var echo: [UInt8]?
    var etag: ETag?
    var block2: Block2?
    /// RFC 7641 Observe sequence number: present when the server keeps the observation.
    var observe: UInt32?
    /// Max-Age (RFC 7252 §5.10.5; 60 when absent).
    var maxAge: UInt32?
    var contentFormat: UInt16?
    /// Response code as class.detail, e.g. 2.05 → (2, 5).
    var codeClass: UInt8
    var codeDetail: UInt8

    init(code: UInt8) {
        (codeClass, codeDetail) = (code >> 5, code & 0x1F)
    }

    var isSuccess: Bool { codeClass == 2 }
    var codeText: String { "\(codeClass).\(codeDetail < 10 ? "0" : "")\(codeDetail)" }

    /// What the block rules see of it; `asked` is the exponent requested,
    /// which a response without Block2 (a whole body, RFC 7959 §2.4) keeps.
    func block(asked szx: UInt8) -> BlockReceiver.Block {
        BlockReceiver.Block(block2: block2 ?? Block2(number: 0, szx: szx), etag: etag, size2: size2, payloadCount: payloadCount)
    }
}

/// Why a request got no usable response.
enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name did not resolve or no session could be made.
    case unreachable(String)
    /// Nothing came back within the time-out (retransmissions included).
    case timeout(seconds: Double)
    /// The peer reset the exchange, ICMP said unreachable, or DTLS failed.
    case failed(String)
    /// The response was larger than the block buffer.
    case oversized(Int)

    var description: String {
        switch self {
        case .unreachable(let why): return "unreachable: \(why)"
        case .timeout(let s): return "no response within \(s) s"
        case .failed(let why): return why
        case .oversized(let n): return "response payload of \(n) bytes exceeds the block buffer"
        }
    }
}
