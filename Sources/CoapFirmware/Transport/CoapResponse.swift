import CoapFirmwareDevice

/// One CoAP response as the update driver needs it. The payload sits in the
/// client's block buffer (`CoapClient.payload`) until the next request.
public struct CoapResponse: Sendable, Equatable {
    /// Response code as class.detail, e.g. 2.05 → (2, 5).
    public var codeClass: UInt8
    public var codeDetail: UInt8
    public var contentFormat: UInt16?
    public var etag: ETag?
    public var block2: Block2?
    public var size2: UInt64?
    public var payloadCount = 0

    public init(code: UInt8) {
        (codeClass, codeDetail) = (code >> 5, code & 0x1F)
    }

    public var isSuccess: Bool { codeClass == 2 }
    public var codeText: String { "\(codeClass).\(codeDetail < 10 ? "0" : "")\(codeDetail)" }

    /// What the block rules see of it; `asked` is the exponent requested,
    /// which a response without Block2 (a whole body, RFC 7959 §2.4) keeps.
    public func block(asked szx: UInt8) -> BlockReceiver.Block {
        BlockReceiver.Block(block2: block2 ?? Block2(number: 0, szx: szx), etag: etag, size2: size2, payloadCount: payloadCount)
    }
}

/// Why a request got no usable response.
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name did not resolve or no session could be made.
    case unreachable(String)
    /// Nothing came back within the time-out (retransmissions included).
    case timeout(seconds: Double)
    /// The peer reset the exchange, ICMP said unreachable, or DTLS failed.
    case failed(String)
    /// The response was larger than the block buffer.
    case oversized(Int)

    public var description: String {
        switch self {
        case .unreachable(let why): return "unreachable: \(why)"
        case .timeout(let s): return "no response within \(s) s"
        case .failed(let why): return why
        case .oversized(let n): return "response payload of \(n) bytes exceeds the block buffer"
        }
    }
}
