import Testing
@testable import CoapFirmwareCore

private func block(_ n: UInt32, more: Bool, szx: UInt8 = 6, etag: UInt8 = 1, count: Int? = nil, size2: UInt64? = nil) -> BlockReceiver.Block {
    BlockReceiver.Block(number: n, more: more, szx: szx, etag: ETag([etag]), size2: size2, payloadCount: count ?? (16 << Int(szx)))
}

@Suite struct BlockReceiverTests {
    @Test func acceptsAWholeBody() {
        var r = BlockReceiver(expectedSize: 2500, szx: 6)
        #expect(r.receive(block(0, more: true, size2: 2500)) == .accept(offset: 0, next: 1))
        #expect(r.receive(block(1, more: true)) == .accept(offset: 1024, next: 2))
        #expect(r.receive(block(2, more: false, count: 452)) == .accept(offset: 2048, next: nil))
        #expect(r.isComplete && r.offset == 2500)
    }

    @Test func emptyAndExactMultiples() {
        var empty = BlockReceiver(expectedSize: 0, szx: 2)
        #expect(empty.receive(block(0, more: false, szx: 2, count: 0)) == .accept(offset: 0, next: nil))
        var exact = BlockReceiver(expectedSize: 128, szx: 2)
        #expect(exact.receive(block(0, more: true, szx: 2)) == .accept(offset: 0, next: 1))
        #expect(exact.receive(block(1, more: false, szx: 2)) == .accept(offset: 64, next: nil))
    }

    @Test func adoptsASmallerBlockSize() {
        var r = BlockReceiver(expectedSize: 200, szx: 6)
        // RFC 7959 §2.4: the server may answer block 0 with a smaller size.
        #expect(r.receive(block(0, more: true, szx: 2)) == .accept(offset: 0, next: 1))
        #expect(r.szx == 2 && r.nextBlockNumber == 1)
        #expect(r.receive(block(1, more: true, szx: 2)) == .accept(offset: 64, next: 2))
        #expect(r.receive(block(2, more: true, szx: 2)) == .accept(offset: 128, next: 3))
        #expect(r.receive(block(3, more: false, szx: 2, count: 8)) == .accept(offset: 192, next: nil))
    }

    @Test func faults() {
        var r = BlockReceiver(expectedSize: 3000, szx: 6)
        #expect(r.receive(block(0, more: true, size2: 3001)) == .reject(.wrongSize2(announced: 3001, manifest: 3000)))
        #expect(r.receive(block(1, more: true)) == .restart(.outOfOrder(expectedOffset: 0, got: 1024)))
        #expect(r.receive(block(0, more: true)) == .accept(offset: 0, next: 1))
        #expect(r.receive(block(1, more: true, etag: 2)) == .restart(.etagChanged(from: ETag([1]), to: ETag([2]))))
        #expect(r.receive(block(1, more: true, count: 1000)) == .restart(.shortBlock(offset: 1024, count: 1000, blockSize: 1024)))
        #expect(r.receive(block(1, more: false, count: 10)) == .mismatch(.truncated(at: 1034, size: 3000)))
        #expect(r.receive(block(1, more: true, szx: 6)) == .accept(offset: 1024, next: 2))
        #expect(r.receive(block(2, more: true)) == .mismatch(.tooLong(size: 3000)))
        #expect(r.receive(block(2, more: false, count: 1000)) == .mismatch(.tooLong(size: 3000)))
        #expect(r.receive(block(2, more: false, szx: 6, count: 952)) == .accept(offset: 2048, next: nil))
        var big = BlockReceiver(expectedSize: 100, szx: 2)
        #expect(big.receive(block(0, more: true, szx: 3)) == .restart(.blockSizeGrew(asked: 2, got: 3)))
        #expect(big.receive(block(UInt32.max, more: true, szx: 2)) == .restart(.outOfOrder(expectedOffset: 0, got: UInt64(UInt32.max) * 64)))
    }

    @Test func resumesWithTheSameETagOnly() {
        var r = BlockReceiver(expectedSize: 5000, szx: 6, offset: 2048, etag: ETag([7]))
        #expect(r.nextBlockNumber == 2)
        #expect(r.receive(block(2, more: true, etag: 8)) == .restart(.etagChanged(from: ETag([7]), to: ETag([8]))))
        #expect(r.receive(block(2, more: true, etag: 7)) == .accept(offset: 2048, next: 3))
    }

    /// Arbitrary block sequences never make the receiver accept bytes past
    /// the manifest size or out of sequence (a light fuzz; issue #5 adds libFuzzer).
    @Test func randomSequencesStayConsistent() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let size = UInt64.random(in: 0...5000, using: &rng)
            var r = BlockReceiver(expectedSize: size, szx: UInt8.random(in: 0...6, using: &rng))
            var accepted: UInt64 = 0
            for _ in 0..<40 {
                let b = BlockReceiver.Block(number: UInt32.random(in: 0...8, using: &rng), more: Bool.random(using: &rng),
                                            szx: UInt8.random(in: 0...6, using: &rng), etag: ETag([UInt8.random(in: 0...1, using: &rng)]),
                                            payloadCount: Int.random(in: 0...1024, using: &rng))
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

@Suite struct UpdateEngineTests {
    let installed = InstalledRelease(version: FirmwareVersion("1.0.0")!, timestamp: 100)

    func manifest(_ version: String = "1.1.0", sizes: [UInt64] = [2048, 100]) -> Manifest {
        var m = Manifest(timestamp: 200, manufacturer: "example.com", model: "c7960", firmwareVersion: FirmwareVersion(version)!)
        m.components = sizes.enumerated().map { Component(name: "c\($0)", location: "c\($0)", size: $1, digests: [sampleDigest]) }
        return m
    }

    func engine(slot: UInt64? = nil) -> UpdateEngine {
        UpdateEngine(policy: DevicePolicy(manufacturer: "example.com", model: "c7960", installed: installed, slotSize: slot), szx: 6)
    }

    @Test func happyPathInOrder() {
        var e = engine()
        #expect(e.start() == [.fetchManifest])
        #expect(e.manifestVerified(manifest()) == [.fetchBlock(component: 0, number: 0, szx: 6)])
        #expect(e.blockReceived(block(0, more: true)) == [.store(component: 0, offset: 0), .fetchBlock(component: 0, number: 1, szx: 6)])
        #expect(e.blockReceived(block(1, more: false)) == [.store(component: 0, offset: 1024), .checkDigests(component: 0)])
        #expect(e.digestsChecked(matching: true) == [.fetchBlock(component: 1, number: 0, szx: 6)])
        #expect(e.blockReceived(block(0, more: false, count: 100)) == [.store(component: 1, offset: 0), .checkDigests(component: 1)])
        #expect(e.digestsChecked(matching: true) == [.install])
        #expect(e.installFinished(error: nil) == [.finish(.init(.updated))])
        // Late events after the end change nothing.
        #expect(e.blockReceived(block(0, more: false)) == [])
    }

    @Test func validatesBeforeAnyImageByte() {
        var e = engine(slot: 1000)
        _ = e.start()
        #expect(e.manifestVerified(manifest()) == [.finish(.init(.tooLarge, "too large: images need 2148 bytes, the slot holds 1000"))])
        var r = engine()
        _ = r.start()
        guard case .finish(let outcome)? = r.manifestVerified(manifest("0.9.0")).first else { Issue.record("no finish"); return }
        #expect(outcome.result == .rollback)
        var u = engine()
        _ = u.start()
        #expect(u.manifestVerified(manifest("1.0.0")) == [.finish(.init(.upToDate))])
    }

    @Test func restartsABoundedNumberOfTimes() {
        var e = engine()
        _ = e.start()
        _ = e.manifestVerified(manifest())
        _ = e.blockReceived(block(0, more: true))
        for attempt in 1...3 {
            #expect(e.blockReceived(block(1, more: true, etag: 9)) == [.discard(component: 0), .fetchBlock(component: 0, number: 0, szx: 6)], "restart \(attempt)")
            _ = e.blockReceived(block(0, more: true))
        }
        let last = e.blockReceived(block(1, more: true, etag: 9))
        #expect(last.first == .discard(component: 0))
        guard case .finish(let outcome)? = last.last else { Issue.record("no finish"); return }
        #expect(outcome.result == .transferFailed)
    }

    @Test func sizeFaultsEndAsDigestMismatchAndRejectionsAtOnce() {
        var e = UpdateEngine(policy: DevicePolicy(manufacturer: "example.com", model: "c7960"), szx: 6, maxRestarts: 0)
        _ = e.start()
        _ = e.manifestVerified(manifest())
        let actions = e.blockReceived(block(0, more: false, count: 10))
        guard case .finish(let outcome)? = actions.last else { Issue.record("no finish"); return }
        #expect(outcome.result == .digestMismatch)

        var s = engine()
        _ = s.start()
        _ = s.manifestVerified(manifest())
        let rejected = s.blockReceived(block(0, more: true, size2: 99))
        guard case .finish(let o)? = rejected.last else { Issue.record("no finish"); return }
        #expect(o.result == .transferFailed)
    }

    @Test func digestMismatchDiscards() {
        var e = engine()
        _ = e.start()
        _ = e.manifestVerified(manifest(sizes: [10]))
        _ = e.blockReceived(block(0, more: false, count: 10))
        #expect(e.digestsChecked(matching: false, reason: "sha256") == [.discard(component: 0), .finish(.init(.digestMismatch, "sha256"))])
    }

    @Test func resumesWhereTold() {
        var e = engine()
        _ = e.start()
        let actions = e.manifestVerified(manifest(), resume: .init(component: 0, offset: 1024, etag: ETag([1])))
        #expect(actions == [.fetchBlock(component: 0, number: 1, szx: 6)])
        // A resume point that does not fit the manifest is ignored.
        var f = engine()
        _ = f.start()
        #expect(f.manifestVerified(manifest(), resume: .init(component: 5, offset: 0, etag: nil)) == [.fetchBlock(component: 0, number: 0, szx: 6)])
        var g = engine()
        _ = g.start()
        #expect(g.manifestVerified(manifest(), resume: .init(component: 0, offset: 1000, etag: nil)) == [.fetchBlock(component: 0, number: 0, szx: 6)])
    }

    @Test func transportFailures() {
        var e = engine()
        _ = e.start()
        #expect(e.transportFailed("timeout") == [.finish(.init(.transferFailed, "timeout"))])
        // A slot that cannot be written ends the attempt even at the digest check.
        var f = engine()
        _ = f.start()
        _ = f.manifestVerified(manifest(sizes: [10]))
        _ = f.blockReceived(block(0, more: false, count: 10))
        #expect(f.transportFailed("slot full") == [.finish(.init(.transferFailed, "slot full"))])
    }

    /// SPEC §6: the engine's own state, one block buffer included, stays under 4 KiB.
    @Test func stateFitsTheBudget() {
        let engineSize = MemoryLayout<UpdateEngine>.size
        let receiverSize = MemoryLayout<BlockReceiver>.size
        let oneBlock = 1024
        // Heap the engine owns: the image sizes array (header + 8 bytes per component, 8 components).
        let sizesArray = 32 + 8 * 8
        // Digest contexts (OpenSSL EVP_MD_CTX + SHA-512 state, the largest) for three algorithms plus SHA-256.
        let digestStates = 4 * (48 + 216)
        let total = engineSize + sizesArray + oneBlock + digestStates
        print("engine \(engineSize) B, receiver \(receiverSize) B, budget use \(total) B of 4096")
        #expect(receiverSize <= 64)
        #expect(engineSize <= 256)
        #expect(total < 4096)
    }
}
