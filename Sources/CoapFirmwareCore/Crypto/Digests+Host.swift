import CoapFirmwareDevice

/// Array conveniences over the device's hash engines, for the host (they allocate).
extension HashEngine {
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of one buffer (allocates; for the host).
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var engine = Self()
        bytes.withUnsafeBytes { engine.update($0) }
        var out = [UInt8](repeating: 0, count: digestLength)
        out.withUnsafeMutableBytes { engine.finalize(into: $0) }
        return out
    }
}

extension DigestSet {
    /// The digest so far as an array (allocates; for the host).
    public func digest(_ algorithm: DigestAlgorithm) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: algorithm.digestLength)
        out.withUnsafeMutableBytes { digest(algorithm, into: $0) }
        return out
    }
}

extension Digest32 {
    public var bytes: [UInt8] { withBytes { Array($0) } }
}
