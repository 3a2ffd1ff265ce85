/// A set of digest algorithms.
public struct DigestAlgorithms: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let sha256 = DigestAlgorithms(rawValue: 1)
    public static let sha384 = DigestAlgorithms(rawValue: 2)
    public static let sha512 = DigestAlgorithms(rawValue: 4)

    public init(_ algorithm: DigestAlgorithm) {
        switch algorithm {
        case .sha256: self = .sha256
        case .sha384: self = .sha384
        case .sha512: self = .sha512
        }
    }
}

/// The digests of one stream, every selected algorithm fed at once
/// (SPEC §6: all listed algorithms as the blocks arrive). Generic over the
/// engines: pure Swift on the device, OpenSSL's on Linux.
public struct DigestSet<Engines: DigestEngines> {
    public let algorithms: DigestAlgorithms
    var sha256 = Engines.SHA256()
    var sha384 = Engines.SHA384()
    var sha512 = Engines.SHA512()

    public init(_ algorithms: DigestAlgorithms) { self.algorithms = algorithms }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        if algorithms.contains(.sha256) { sha256.update(bytes) }
        if algorithms.contains(.sha384) { sha384.update(bytes) }
        if algorithms.contains(.sha512) { sha512.update(bytes) }
    }

    /// Writes the digest so far to `out` (at least its length); the state
    /// is copied, so the stream may go on and other digests may be taken.
    public func digest(_ algorithm: DigestAlgorithm, into out: UnsafeMutableRawBufferPointer) {
        precondition(algorithms.contains(DigestAlgorithms(algorithm)), "digest of an algorithm not selected")
        switch algorithm {
        case .sha256: var h = sha256; h.finalize(into: out)
        case .sha384: var h = sha384; h.finalize(into: out)
        case .sha512: var h = sha512; h.finalize(into: out)
        }
    }

    /// Whether the digest so far equals `expected`, compared in constant time.
    public func matches(_ algorithm: DigestAlgorithm, _ expected: UnsafeRawBufferPointer) -> Bool {
        guard expected.count == algorithm.digestLength else { return false }
        var out = InlineArray<64, UInt8>(repeating: 0)
        return withUnsafeMutableBytes(of: &out) { raw in
            digest(algorithm, into: raw)
            return constantTimeEquals(UnsafeRawBufferPointer(rebasing: raw[0..<expected.count]), expected)
        }
    }
}

/// Hashes one image block by block as it arrives and refuses a gap, an
/// overlap or bytes past the signed size; no block is kept. At the end the
/// size and every listed digest must match.
public struct BlockDigestVerifier<Engines: DigestEngines> {
    public let expectedSize: UInt64
    public private(set) var received: UInt64 = 0
    public private(set) var digests: DigestSet<Engines>

    /// The outcome of `finish`.
    public enum Outcome: Sendable, Equatable {
        case match
        case wrongSize(received: UInt64)
        case mismatch(DigestAlgorithm)
    }

    public init(size: UInt64, algorithms: DigestAlgorithms) {
        expectedSize = size
        digests = DigestSet(algorithms)
    }

    /// For the image of a manifest view, hashing what it lists (and
    /// `extra`, e.g. SHA-256 for a record of what was installed).
    public init(image: ManifestView.Image, extra: DigestAlgorithms = []) {
        var algorithms = extra
        for i in 0..<image.digestCount { algorithms.insert(.init(image.digests[i].algorithm)) }
        self.init(size: image.size, algorithms: algorithms)
    }

    /// Feeds the block at `offset`.
    public mutating func update(offset: UInt64, block: UnsafeRawBufferPointer) -> Bool {
        guard offset == received, UInt64(block.count) <= expectedSize - received else { return false }
        digests.update(block)
        received += UInt64(block.count)
        return true
    }

    /// Checks the size, then each `(algorithm, expected)` pair that `forEach` yields.
    public func finish(_ forEach: ((DigestAlgorithm, UnsafeRawBufferPointer) -> Bool) -> Void) -> Outcome {
        guard received == expectedSize else { return .wrongSize(received: received) }
        var outcome = Outcome.match
        forEach { algorithm, expected in
            if !digests.matches(algorithm, expected) { outcome = .mismatch(algorithm) }
            return outcome == .match
        }
        return outcome
    }

    /// Checks against the image of a manifest view whose payload is `bytes`.
    public func finish(image: ManifestView.Image, manifest bytes: UnsafeRawBufferPointer) -> Outcome {
        finish { check in
            for i in 0..<image.digestCount {
                let d = image.digests[i]
                guard check(d.algorithm, UnsafeRawBufferPointer(rebasing: bytes[d.value])) else { return }
            }
        }
    }
}
