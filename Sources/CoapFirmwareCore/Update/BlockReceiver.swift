/// A CoAP ETag (RFC 7252 §5.10.6): 1 to 8 opaque bytes, held inline.
public struct ETag: Sendable, Hashable, CustomStringConvertible {
    public let length: UInt8
    public let value: UInt64

    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard (1...8).contains(bytes.count) else { return nil }
        length = UInt8(bytes.count)
        value = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    public var bytes: [UInt8] { (0..<Int(length)).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
    public var description: String { Hex.encode(bytes) }
}

/// Checks the Block2 responses of one image transfer (RFC 7959 §2.2-2.4)
/// against the size the signed manifest gives, with no I/O and no buffer:
/// the caller keeps the payload and writes it where the verdict says.
///
/// Rules, after RIOT's SUIT block callback: a block must start where the
/// previous one ended; every block but the last is full; the body may not
/// run past the manifest's size nor stop short of it; the ETag may not
/// change; a Size2 that disagrees with the manifest is refused at once.
public struct BlockReceiver: Sendable, Equatable {
    /// Block2 as received, with what the caller saw of the response.
    public struct Block: Sendable, Equatable {
        public var number: UInt32
        public var more: Bool
        public var szx: UInt8
        public var etag: ETag?
        public var size2: UInt64?
        public var payloadCount: Int

        public init(number: UInt32, more: Bool, szx: UInt8, etag: ETag?, size2: UInt64? = nil, payloadCount: Int) {
            self.number = number
            self.more = more
            self.szx = szx
            self.etag = etag
            self.size2 = size2
            self.payloadCount = payloadCount
        }
    }

    /// What to do with a block.
    public enum Verdict: Sendable, Equatable {
        /// Store the payload at `offset`; ask for `next`, or the image is complete when nil.
        case accept(offset: UInt64, next: UInt32?)
        /// The transfer is inconsistent but a fresh start may work (changed ETag, a block out of place).
        case restart(Fault)
        /// The bytes cannot match the manifest (too long, too short).
        case mismatch(Fault)
        /// The server contradicts the signed manifest; do not retry it.
        case reject(Fault)
    }

    /// Why a block was not accepted.
    public enum Fault: Sendable, Equatable, CustomStringConvertible {
        case etagChanged(from: ETag?, to: ETag?)
        case outOfOrder(expectedOffset: UInt64, got: UInt64)
        case blockSizeGrew(asked: UInt8, got: UInt8)
        case shortBlock(offset: UInt64, count: Int, blockSize: Int)
        case tooLong(size: UInt64)
        case truncated(at: UInt64, size: UInt64)
        case wrongSize2(announced: UInt64, manifest: UInt64)

        public var description: String {
            switch self {
            case .etagChanged(let a, let b): return "ETag changed from \(a.map { $0.description } ?? "none") to \(b.map { $0.description } ?? "none") mid-transfer"
            case .outOfOrder(let e, let g): return "block at offset \(g), expected offset \(e)"
            case .blockSizeGrew(let a, let g): return "server answered with block size \(16 << g), larger than the \(16 << a) asked for"
            case .shortBlock(let o, let c, let s): return "block at offset \(o) has \(c) bytes but is not the last (block size \(s))"
            case .tooLong(let size): return "body is longer than the manifest's \(size) bytes"
            case .truncated(let at, let size): return "body ends at \(at) bytes, the manifest says \(size)"
            case .wrongSize2(let a, let m): return "server announces Size2 \(a), the manifest says \(m) bytes"
            }
        }
    }

    /// The size the signed manifest gives for this image.
    public let expectedSize: UInt64
    /// The block size exponent in use (16 << szx bytes).
    public private(set) var szx: UInt8
    /// Bytes accepted so far, always a multiple of the block size until the end.
    public private(set) var offset: UInt64
    /// The ETag of this transfer, fixed by its first block.
    public private(set) var etag: ETag?

    /// Starts a transfer at `offset` (a multiple of the block size, for a resume).
    public init(expectedSize: UInt64, szx: UInt8, offset: UInt64 = 0, etag: ETag? = nil) {
        precondition(szx <= 6, "SZX 7 is reserved (RFC 7959 §2.2)")
        precondition(offset % UInt64(16 << szx) == 0, "a resume offset must be block aligned")
        self.expectedSize = expectedSize
        self.szx = szx
        self.offset = offset
        self.etag = offset == 0 ? nil : etag
    }

    public var blockSize: Int { 16 << Int(szx) }

    /// The block number to ask for next.
    public var nextBlockNumber: UInt32 { UInt32(offset / UInt64(blockSize)) }

    public var isComplete: Bool { offset == expectedSize && completed }
    private var completed = false

    public mutating func receive(_ block: Block) -> Verdict {
        if let size2 = block.size2, size2 != expectedSize {
            return .reject(.wrongSize2(announced: size2, manifest: expectedSize))
        }
        if offset > 0 || etag != nil, block.etag != etag {
            return .restart(.etagChanged(from: etag, to: block.etag))
        }
        guard block.szx <= szx else { return .restart(.blockSizeGrew(asked: szx, got: block.szx)) }
        let size = UInt64(16) << UInt64(block.szx)
        let (start, overflow) = UInt64(block.number).multipliedReportingOverflow(by: size)
        guard !overflow, start == offset else { return .restart(.outOfOrder(expectedOffset: offset, got: overflow ? .max : start)) }
        if block.more && block.payloadCount != Int(size) {
            return .restart(.shortBlock(offset: start, count: block.payloadCount, blockSize: Int(size)))
        }
        guard block.payloadCount <= Int(size) else { return .restart(.shortBlock(offset: start, count: block.payloadCount, blockSize: Int(size))) }
        let end = start + UInt64(block.payloadCount)
        if end > expectedSize || (block.more && end == expectedSize) { return .mismatch(.tooLong(size: expectedSize)) }
        if !block.more && end < expectedSize { return .mismatch(.truncated(at: end, size: expectedSize)) }
        // A server may answer with a smaller block than asked (RFC 7959 §2.4); keep its size.
        szx = block.szx
        etag = block.etag
        offset = end
        if !block.more { completed = true }
        return .accept(offset: start, next: block.more ? block.number + 1 : nil)
    }
}
