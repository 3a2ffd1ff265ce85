/// Checks the Block2 responses of one body (RFC 7959 §2.2-2.4) with no I/O
/// and no buffer: the caller keeps the payload and writes it where the
/// verdict says. The one set of block rules: images (against the size the
/// signed manifest gives), manifests and `fetch` (against a limit) all go
/// through it.
///
/// Rules, after RIOT's SUIT block callback: a block must start where the
/// previous one ended; every block but the last is full; the body may not
/// run past the expected size (or the limit) nor stop short of it, and it
/// ends where the signed size says, whatever the More flag; the ETag may
/// not change; a Size2 that disagrees with the manifest is refused at once.
public struct BlockReceiver: Sendable, Equatable {
    /// One response as received.
    public struct Block: Sendable, Equatable {
        /// The response's Block2; a response without one is block 0 of a
        /// whole body (RFC 7959 §2.4), at the exponent that was asked for.
        public var block2: Block2
        public var etag: ETag?
        public var size2: UInt64?
        public var payloadCount: Int

        public init(block2: Block2, etag: ETag?, size2: UInt64? = nil, payloadCount: Int) {
            (self.block2, self.etag, self.size2, self.payloadCount) = (block2, etag, size2, payloadCount)
        }
    }

    /// What to do with a block.
    public enum Verdict: Sendable, Equatable {
        /// Store the payload at `offset`; ask for `next`, or the body is complete when nil.
        case accept(offset: UInt64, next: Block2?)
        /// The transfer is inconsistent but a fresh start may work (changed ETag, a block out of place).
        case restart(Fault)
        /// The bytes cannot match (too long, too short).
        case mismatch(Fault)
        /// The server contradicts the signed manifest; do not retry it.
        case reject(Fault)
    }

    /// Why a block was not accepted.
    public enum Fault: Sendable, Equatable {
        case etagChanged(from: ETag?, to: ETag?)
        case outOfOrder(expectedOffset: UInt64, got: UInt64)
        case blockSizeGrew(asked: UInt8, got: UInt8)
        case shortBlock(offset: UInt64, count: Int, blockSize: Int)
        /// Longer than the expected size, or than the limit when the size is unknown.
        case tooLong(size: UInt64)
        case truncated(at: UInt64, size: UInt64)
        case wrongSize2(announced: UInt64, manifest: UInt64)
    }

    /// The size the signed manifest gives; nil when only `limit` bounds the body.
    public let expectedSize: UInt64?
    /// The most bytes the body may have.
    public let limit: UInt64
    /// The block size exponent in use.
    public private(set) var szx: UInt8
    /// Bytes accepted so far, always a multiple of the block size until the end.
    public private(set) var offset: UInt64
    /// The ETag of this transfer, fixed by its first block.
    public private(set) var etag: ETag?
    public private(set) var isComplete = false

    /// Starts a transfer of a body of known size at `offset` (block
    /// aligned, for a resume of the transfer that had `etag`).
    public init(expectedSize: UInt64, szx: UInt8, offset: UInt64 = 0, etag: ETag? = nil) {
        self.init(expectedSize: expectedSize, limit: expectedSize, szx: szx, offset: offset, etag: etag)
    }

    /// Starts a transfer of a body of unknown size, at most `limit` bytes.
    public init(limit: UInt64, szx: UInt8) {
        self.init(expectedSize: nil, limit: limit, szx: szx, offset: 0, etag: nil)
    }

    private init(expectedSize: UInt64?, limit: UInt64, szx: UInt8, offset: UInt64, etag: ETag?) {
        precondition(Block2.isAligned(offset, szx: szx), "a resume offset must be block aligned")
        (self.expectedSize, self.limit, self.szx, self.offset) = (expectedSize, limit, szx, offset)
        self.etag = offset == 0 ? nil : etag
    }

    /// The block to ask for next.
    public var nextBlock: Block2 { Block2.starting(at: offset, szx: szx) }

    public mutating func receive(_ block: Block) -> Verdict {
        if let expectedSize, let size2 = block.size2, size2 != expectedSize {
            return .reject(.wrongSize2(announced: size2, manifest: expectedSize))
        }
        if offset > 0 || etag != nil, block.etag != etag {
            return .restart(.etagChanged(from: etag, to: block.etag))
        }
        let b = block.block2
        guard b.szx <= szx else { return .restart(.blockSizeGrew(asked: szx, got: b.szx)) }
        guard let start = b.offset, start == offset else { return .restart(.outOfOrder(expectedOffset: offset, got: b.offset ?? .max)) }
        guard block.payloadCount <= b.size, !b.more || block.payloadCount == b.size else {
            return .restart(.shortBlock(offset: start, count: block.payloadCount, blockSize: b.size))
        }
        let end = start + UInt64(block.payloadCount)
        if end > limit { return .mismatch(.tooLong(size: limit)) }
        if let expectedSize, !b.more && end < expectedSize { return .mismatch(.truncated(at: end, size: expectedSize)) }
        // A server may answer with a smaller block than asked (RFC 7959 §2.4); keep its size.
        szx = b.szx
        etag = block.etag
        offset = end
        // The signed size is the authority: a body that reaches it is complete
        // even if the server says More (CoAPthon3 does, on a last full block);
        // the digests decide whether those bytes are the image.
        let last = !b.more || end == expectedSize
        if last { isComplete = true }
        return .accept(offset: start, next: last ? nil : Block2(number: b.number + 1, szx: b.szx))
    }
}
