import CoapFirmwareDevice

extension ETag: CustomStringConvertible {
    /// The bytes as sent.
    public var bytes: [UInt8] { (0..<Int(length)).map { self[$0] } }
    public var description: String { Hex.encode(bytes) }
}

extension BlockReceiver.Fault: CustomStringConvertible {
    public var description: String {
        switch self {
        case .etagChanged(let a, let b): return "ETag changed from \(a.map { $0.description } ?? "none") to \(b.map { $0.description } ?? "none") mid-transfer"
        case .outOfOrder(let e, let g): return "block at offset \(g), expected offset \(e)"
        case .blockSizeGrew(let a, let g): return "server answered with block size \(Block2.size(szx: g)), larger than the \(Block2.size(szx: a)) asked for"
        case .shortBlock(let o, let c, let s): return "block at offset \(o) has \(c) bytes but is not the last (block size \(s))"
        case .tooLong(let size): return "body is longer than the manifest's \(size) bytes"
        case .truncated(let at, let size): return "body ends at \(at) bytes, the manifest says \(size)"
        case .wrongSize2(let a, let m): return "server announces Size2 \(a), the manifest says \(m) bytes"
        }
    }
}

extension BlockDigestVerifier {
    /// For a host `Component`: what it lists, plus SHA-256 always (the
    /// device records it for `status`).
    public init(component: Component) {
        var algorithms = DigestAlgorithms.sha256
        for d in component.digests { algorithms.insert(DigestAlgorithms(d.algorithm)) }
        self.init(size: component.size, algorithms: algorithms)
    }

    /// Checks size and every digest of `component`; throws the first mismatch.
    public func finish(component: Component) throws(ManifestError) {
        let outcome = finish { check in
            for d in component.digests { guard d.value.withUnsafeBytes({ check(d.algorithm, $0) }) else { return } }
        }
        switch outcome {
        case .match: return
        case .wrongSize(let received):
            throw .digestMismatch(image: component.name, reason: "size is \(received) bytes, the manifest says \(component.size)")
        case .mismatch(let algorithm):
            throw .digestMismatch(image: component.name, reason: "\(algorithm.jsonName) digest does not match the manifest")
        }
    }
}
