import Testing
import TestSupport
@testable import CoapFirmwareDevice

func block(_ n: UInt32, more: Bool, szx: UInt8 = 6, etag: UInt8 = 1, count: Int? = nil, size2: UInt64? = nil) -> BlockReceiver.Block {
    BlockReceiver.Block(block2: Block2(number: n, more: more, szx: szx), etag: ETag([etag]), size2: size2,
                        payloadCount: count ?? Block2.size(szx: szx))
}

/// The block the receiver should ask for next.
func next(_ n: UInt32, szx: UInt8 = 6) -> Block2 { Block2(number: n, szx: szx) }

@Suite struct BlockReceiverTests {
    @Test func acceptsAWholeBody() {
        var r = BlockReceiver(expectedSize: 2500, szx: 6)
        #expect(r.receive(block(0, more: true, size2: 2500)) == .accept(offset: 0, next: next(1)))
        #expect(r.receive(block(1, more: true)) == .accept(offset: 1024, next: next(2)))
        #expect(r.receive(block(2, more: false, count: 452)) == .accept(offset: 2048, next: nil))
        #expect(r.isComplete && r.offset == 2500)
    }

    @Test func emptyAndExactMultiples() {
        var empty = BlockReceiver(expectedSize: 0, szx: 2)
        #expect(empty.receive(block(0, more: false, szx: 2, count: 0)) == .accept(offset: 0, next: nil))
        var exact = BlockReceiver(expectedSize: 128, szx: 2)
        #expect(exact.receive(block(0, more: true, szx: 2)) == .accept(offset: 0, next: next(1, szx: 2)))
        #expect(exact.receive(block(1, more: false, szx: 2)) == .accept(offset: 64, next: nil))
    }

    @Test func adoptsASmallerBlockSize() {
        var r = BlockReceiver(expectedSize: 200, szx: 6)
        // RFC 7959 §2.4: the server may answer block 0 with a smaller size.
        #expect(r.receive(block(0, more: true, szx: 2)) == .accept(offset: 0, next: next(1, szx: 2)))
        #expect(r.szx == 2 && r.nextBlock == next(1, szx: 2))
        #expect(r.receive(block(1, more: true, szx: 2)) == .accept(offset: 64, next: next(2, szx: 2)))
        #expect(r.receive(block(2, more: true, szx: 2)) == .accept(offset: 128, next: next(3, szx: 2)))
        #expect(r.receive(block(3, more: false, szx: 2, count: 8)) == .accept(offset: 192, next: nil))
    }

    @Test func faults() {
        var r = BlockReceiver(expectedSize: 3000, szx: 6)
        #expect(r.receive(block(0, more: true, size2: 3001)) == .reject(.wrongSize2(announced: 3001, manifest: 3000)))
        #expect(r.receive(block(1, more: true)) == .restart(.outOfOrder(expectedOffset: 0, got: 1024)))
        #expect(r.receive(block(0, more: true)) == .accept(offset: 0, next: next(1)))
        #expect(r.receive(block(1, more: true, etag: 2)) == .restart(.etagChanged(from: ETag([1]), to: ETag([2]))))
        #expect(r.receive(block(1, more: true, count: 1000)) == .restart(.shortBlock(offset: 1024, count: 1000, blockSize: 1024)))
        #expect(r.receive(block(1, more: false, count: 10)) == .mismatch(.truncated(at: 1034, size: 3000)))
        #expect(r.receive(block(1, more: true)) == .accept(offset: 1024, next: next(2)))
        #expect(r.receive(block(2, more: true)) == .mismatch(.tooLong(size: 3000)), "past the signed size, More or not")
        #expect(r.receive(block(2, more: false, count: 1000)) == .mismatch(.tooLong(size: 3000)))
        #expect(r.receive(block(2, more: false, count: 952)) == .accept(offset: 2048, next: nil))
        var big = BlockReceiver(expectedSize: 100, szx: 2)
        #expect(big.receive(block(0, more: true, szx: 3)) == .restart(.blockSizeGrew(asked: 2, got: 3)))
        #expect(big.receive(block(UInt32.max, more: true, szx: 2)) == .restart(.outOfOrder(expectedOffset: 0, got: UInt64(UInt32.max) * 64)))
    }

    /// CoAPthon3 sets More on the last block when the body is a multiple
    /// of the block size (PEERS.md): the signed size ends the body.
    @Test func moreOnTheBlockThatReachesTheSignedSize() {
        var r = BlockReceiver(expectedSize: 2048, szx: 6)
        #expect(r.receive(block(0, more: true)) == .accept(offset: 0, next: next(1)))
        #expect(r.receive(block(1, more: true)) == .accept(offset: 1024, next: nil))
        #expect(r.isComplete && r.offset == 2048)
        var empty = BlockReceiver(expectedSize: 0, szx: 6)
        #expect(empty.receive(block(0, more: true, count: 0)) == .restart(.shortBlock(offset: 0, count: 0, blockSize: 1024)))
    }

    @Test func resumesWithTheSameETagOnly() {
        var r = BlockReceiver(expectedSize: 5000, szx: 6, offset: 2048, etag: ETag([7]))
        #expect(r.nextBlock == next(2))
        #expect(r.receive(block(2, more: true, etag: 8)) == .restart(.etagChanged(from: ETag([7]), to: ETag([8]))))
        #expect(r.receive(block(2, more: true, etag: 7)) == .accept(offset: 2048, next: next(3)))
    }

    /// A body of unknown size (a manifest, `fetch`): bounded by the limit,
    /// Size2 not binding, ended by the last block.
    @Test func unknownSizeUpToALimit() {
        var r = BlockReceiver(limit: 100, szx: 2)
        #expect(r.receive(block(0, more: true, szx: 2, size2: 5000)) == .accept(offset: 0, next: next(1, szx: 2)))
        #expect(r.receive(block(1, more: false, szx: 2, count: 36)) == .accept(offset: 64, next: nil))
        #expect(r.isComplete && r.offset == 100)
        var long = BlockReceiver(limit: 100, szx: 2)
        _ = long.receive(block(0, more: true, szx: 2))
        #expect(long.receive(block(1, more: false, szx: 2, count: 37)) == .mismatch(.tooLong(size: 100)))
    }

    /// Every body size around the block edges, at every block size, in
    /// every order the feeder has: accepted exactly when blocks arrive in
    /// order and end where the manifest says.
    @Test(arguments: 0...6)
    func everySizeAtEveryBlockSize(_ szx: UInt8) {
        let blockSize = Block2.size(szx: szx)
        for size in [0, 1, blockSize - 1, blockSize, blockSize + 1, 3 * blockSize, 3 * blockSize + 5] where size >= 0 {
            var r = BlockReceiver(expectedSize: UInt64(size), szx: szx)
            let split = Chunks.blocks(count: size, size: blockSize)
            let ranges = split.ranges.isEmpty ? [0..<0] : split.ranges
            for (i, range) in ranges.enumerated() {
                let last = i == ranges.count - 1
                let verdict = r.receive(block(UInt32(i), more: !last, szx: szx, count: range.count))
                #expect(verdict == .accept(offset: UInt64(range.lowerBound), next: last ? nil : next(UInt32(i + 1), szx: szx)))
            }
            #expect(r.isComplete && r.offset == UInt64(size))
        }
    }

    /// Arbitrary block sequences never make the receiver accept bytes past
    /// the manifest size or out of sequence.
    @Test func randomSequencesStayConsistent() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let size = UInt64.random(in: 0...5000, using: &rng)
            var r = BlockReceiver(expectedSize: size, szx: UInt8.random(in: 0...6, using: &rng))
            var accepted: UInt64 = 0
            for _ in 0..<40 {
                let b = BlockReceiver.Block(
                    block2: Block2(number: UInt32.random(in: 0...8, using: &rng), more: Bool.random(using: &rng), szx: UInt8.random(in: 0...6, using: &rng)),
                    etag: ETag([UInt8.random(in: 0...1, using: &rng)]), payloadCount: Int.random(in: 0...1024, using: &rng))
                if case .accept(let offset, _) = r.receive(b) {
                    #expect(offset == accepted)
                    accepted = offset + UInt64(b.payloadCount)
                    #expect(accepted <= size)
                }
                if r.isComplete { break }
            }
            #expect(r.offset == accepted)
        }
    }
}

@Suite struct Block2Tests {
    @Test func optionValues() {
        // RFC 7959 §2.2: NUM << 4 | M << 3 | SZX.
        #expect(Block2(number: 0, szx: 6).optionValue == 0x06)
        #expect(Block2(number: 1, more: true, szx: 6).optionValue == 0x1e)
        #expect(Block2(number: 0xfffff, more: true, szx: 0).optionValue == 0xfffff8)
        #expect(Block2(optionValue: 0x1e) == Block2(number: 1, more: true, szx: 6))
        #expect(Block2(optionValue: 0x07) == nil)  // SZX 7 is reserved
    }

    @Test func sizesAndOffsets() {
        #expect((0...6).map { Block2.size(szx: $0) } == [16, 32, 64, 128, 256, 512, 1024])
        #expect([16, 1024, 48, 2048, 0].map(Block2.szx(forSize:)) == [0, 6, nil, nil, nil])
        #expect(Block2(number: 3, szx: 2).offset == 192)
        #expect(Block2(number: UInt32.max, szx: 6).offset == UInt64(UInt32.max) * 1024)
        #expect(Block2.isAligned(2048, szx: 6) && !Block2.isAligned(2047, szx: 6))
        #expect(Block2.starting(at: 2048, szx: 6) == Block2(number: 2, szx: 6))
    }
}
