import Testing
import TestSupport
import CoapFirmwareDevice
@testable import CoapFirmwareCore

private func block(_ n: UInt32, more: Bool, szx: UInt8 = 6, etag: UInt8 = 1, count: Int? = nil, size2: UInt64? = nil) -> BlockReceiver.Block {
    BlockReceiver.Block(block2: Block2(number: n, more: more, szx: szx), etag: ETag([etag]), size2: size2,
                        payloadCount: count ?? Block2.size(szx: szx))
}

private func fetch(_ component: Int, _ n: UInt32) -> UpdateEngine.Action { .fetchBlock(component: component, block: Block2(number: n, szx: 6)) }

@Suite struct UpdateEngineTests {
    let installed = InstalledRelease(version: FirmwareVersion("1.0.0")!, timestamp: 100)

    /// A manifest as only the verifier hands it over (its initializer is `package`).
    func manifest(_ version: String = "1.1.0", sizes: [UInt64] = [2048, 100]) -> VerifiedManifest {
        var m = Manifest(timestamp: 200, manufacturer: "example.com", model: "c7960", firmwareVersion: FirmwareVersion(version)!)
        m.components = sizes.enumerated().map { Component(name: "c\($0)", location: "c\($0)", size: $1, digests: [sampleDigest]) }
        return VerifiedManifest(manifest: m, format: .cbor, envelope: [], signerKid: [], algorithm: .es256)
    }

    func engine(slot: UInt64? = nil) -> UpdateEngine {
        UpdateEngine(device: DeviceProfile(manufacturer: "example.com", model: "c7960", installed: installed, slotSize: slot), szx: 6)
    }

    @Test func happyPathInOrder() {
        var e = engine()
        #expect(e.start() == [.fetchManifest])
        #expect(e.manifestVerified(manifest()) == [.prepareStaging])
        #expect(e.stagingPrepared() == [fetch(0, 0)])
        #expect(e.blockReceived(block(0, more: true)) == [.store(component: 0, offset: 0), fetch(0, 1)])
        #expect(e.blockReceived(block(1, more: false)) == [.store(component: 0, offset: 1024), .checkDigests(component: 0)])
        #expect(e.digestsChecked(matching: true) == [fetch(1, 0)])
        #expect(e.blockReceived(block(0, more: false, count: 100)) == [.store(component: 1, offset: 0), .checkDigests(component: 1)])
        #expect(e.digestsChecked(matching: true) == [.install])
        #expect(e.installFinished(error: nil) == [.finish(.init(.updated))])
        // Late events after the end change nothing.
        #expect(e.blockReceived(block(0, more: false)) == [])
    }

    /// A manifest refused by the policy never reaches the staging slot (issue #13 item 11).
    @Test func nothingTouchesStagingBeforeThePolicyHolds() {
        for (slot, version) in [(UInt64(1000), "1.1.0"), (nil, "0.9.0"), (nil, "1.0.0")] {
            var e = engine(slot: slot)
            _ = e.start()
            let actions = e.manifestVerified(manifest(version))
            #expect(!actions.contains(.prepareStaging) && actions.count == 1, "\(version): \(actions)")
        }
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
        _ = e.stagingPrepared()
        _ = e.blockReceived(block(0, more: true))
        for attempt in 1...3 {
            #expect(e.blockReceived(block(1, more: true, etag: 9)) == [.discard(component: 0), fetch(0, 0)], "restart \(attempt)")
            _ = e.blockReceived(block(0, more: true))
        }
        let last = e.blockReceived(block(1, more: true, etag: 9))
        #expect(last.first == .discard(component: 0))
        guard case .finish(let outcome)? = last.last else { Issue.record("no finish"); return }
        #expect(outcome.result == .transferFailed)
    }

    @Test func sizeFaultsEndAsDigestMismatchAndRejectionsAtOnce() {
        var e = UpdateEngine(device: DeviceProfile(manufacturer: "example.com", model: "c7960"), szx: 6, maxRestarts: 0)
        _ = e.start()
        _ = e.manifestVerified(manifest())
        _ = e.stagingPrepared()
        let actions = e.blockReceived(block(0, more: false, count: 10))
        guard case .finish(let outcome)? = actions.last else { Issue.record("no finish"); return }
        #expect(outcome.result == .digestMismatch)

        var s = engine()
        _ = s.start()
        _ = s.manifestVerified(manifest())
        _ = s.stagingPrepared()
        let rejected = s.blockReceived(block(0, more: true, size2: 99))
        guard case .finish(let o)? = rejected.last else { Issue.record("no finish"); return }
        #expect(o.result == .transferFailed)
    }

    @Test func digestMismatchDiscards() {
        var e = engine()
        _ = e.start()
        _ = e.manifestVerified(manifest(sizes: [10]))
        _ = e.stagingPrepared()
        _ = e.blockReceived(block(0, more: false, count: 10))
        #expect(e.digestsChecked(matching: false, reason: "sha256") == [.discard(component: 0), .finish(.init(.digestMismatch, "sha256"))])
    }

    @Test func resumesWhereTold() {
        var e = engine()
        _ = e.start()
        _ = e.manifestVerified(manifest())
        let actions = e.stagingPrepared(resume: .init(component: 0, offset: 1024, etag: ETag([1])))
        #expect(actions == [fetch(0, 1)])
        // A resume point that does not fit the manifest is ignored.
        var f = engine()
        _ = f.start()
        _ = f.manifestVerified(manifest())
        #expect(f.stagingPrepared(resume: .init(component: 5, offset: 0, etag: nil)) == [fetch(0, 0)])
        var g = engine()
        _ = g.start()
        _ = g.manifestVerified(manifest())
        #expect(g.stagingPrepared(resume: .init(component: 0, offset: 1000, etag: nil)) == [fetch(0, 0)])
    }

    @Test func transportFailures() {
        var e = engine()
        _ = e.start()
        #expect(e.transportFailed("timeout") == [.finish(.init(.transferFailed, "timeout"))])
        // A slot that cannot be written ends the attempt even at the digest check.
        var f = engine()
        _ = f.start()
        _ = f.manifestVerified(manifest(sizes: [10]))
        _ = f.stagingPrepared()
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
