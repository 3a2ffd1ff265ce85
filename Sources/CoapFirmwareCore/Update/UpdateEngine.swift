import CoapFirmwareDevice

/// The device update engine (SPEC §6) as a pure state machine: no I/O, no
/// clock, no buffers. Its driver performs the actions it returns (fetch,
/// store, hash, install) and feeds back what happened.
///
/// Order, as the draft asks: the driver verifies the signature and hands
/// over the manifest; the engine checks identity, freshness and size before
/// any image byte is asked for; then each component is fetched block by
/// block, checked by `BlockReceiver`, its digests compared, and only then
/// is anything installed. Faults restart a component at most
/// `maxRestarts` times, then this server fails.
public struct UpdateEngine: Sendable {
    public enum State: Sendable, Equatable {
        case idle
        case awaitingManifest
        /// The manifest passed every rule; the driver prepares the staging slot.
        case preparingStaging
        case downloading(component: UInt16, receiver: BlockReceiver, restarts: UInt8)
        case checkingDigests(component: UInt16)
        case installing
        case finished(Outcome)
    }

    public struct Outcome: Sendable, Equatable {
        public var result: ResultCode
        public var reason: String?

        public init(_ result: ResultCode, _ reason: String? = nil) {
            self.result = result
            self.reason = reason
        }
    }

    public enum Action: Sendable, Equatable {
        case fetchManifest
        /// Open the staging slot for the accepted manifest and find where an
        /// interrupted download of it stopped; answer with `stagingPrepared`.
        /// Nothing touches staging before this (a replayed manifest must not
        /// wipe a resumable download).
        case prepareStaging
        /// Ask for one block of a component.
        case fetchBlock(component: Int, block: Block2)
        /// Write the payload just received at `offset` of the component's staging file and hash it.
        case store(component: Int, offset: UInt64)
        /// Throw away what is staged for the component (truncate, reset its digests).
        case discard(component: Int)
        /// Compare the component's digests and size with the manifest.
        case checkDigests(component: Int)
        /// Install every component and record the manifest, atomically.
        case install
        case finish(Outcome)
    }

    /// Where an interrupted download left off, for the same manifest.
    public struct ResumePoint: Sendable, Equatable {
        public var component: Int
        public var offset: UInt64
        public var etag: ETag?

        public init(component: Int, offset: UInt64, etag: ETag?) {
            self.component = component
            self.offset = offset
            self.etag = etag
        }
    }

    public private(set) var state: State = .idle
    public let device: DeviceProfile
    public let szx: UInt8
    public let maxRestarts: UInt8
    /// Image sizes from the verified manifest, in install order.
    public private(set) var sizes: [UInt64] = []

    public init(device: DeviceProfile, szx: UInt8, maxRestarts: UInt8 = 3) {
        (self.device, self.szx, self.maxRestarts) = (device, szx, maxRestarts)
    }

    public mutating func start() -> [Action] {
        guard state == .idle else { return [] }
        state = .awaitingManifest
        return [.fetchManifest]
    }

    /// The manifest's signature held (only the verifier makes a
    /// `VerifiedManifest`); now the device's policy. Only a manifest that
    /// passes it reaches the staging slot.
    public mutating func manifestVerified(_ verified: VerifiedManifest) -> [Action] {
        guard state == .awaitingManifest else { return [] }
        let manifest = verified.manifest
        do {
            guard try device.isNewer(manifest) else { return finish(.upToDate, nil) }
        } catch {
            return finish(error.resultCode, error.description)
        }
        sizes = manifest.images.map { $0.size }
        guard !sizes.isEmpty, sizes.count <= Int(UInt16.max) else { return finish(.badManifest, "no image to install") }
        state = .preparingStaging
        return [.prepareStaging]
    }

    /// The staging slot is ready. `resume` is where a previous run stopped
    /// for this same manifest, its staged bytes already re-hashed by the driver.
    public mutating func stagingPrepared(resume: ResumePoint? = nil) -> [Action] {
        guard state == .preparingStaging else { return [] }
        if let r = resume, r.component < sizes.count, r.offset <= sizes[r.component], Block2.isAligned(r.offset, szx: szx) {
            return begin(component: r.component, offset: r.offset, etag: r.etag, restarts: 0)
        }
        return begin(component: 0, offset: 0, etag: nil, restarts: 0)
    }

    /// The manifest could not be fetched or did not verify.
    public mutating func manifestFailed(_ result: ResultCode, _ reason: String) -> [Action] {
        guard state == .awaitingManifest else { return [] }
        return finish(result, reason)
    }

    public mutating func blockReceived(_ block: BlockReceiver.Block) -> [Action] {
        guard case .downloading(let component, var receiver, let restarts) = state else { return [] }
        let index = Int(component)
        switch receiver.receive(block) {
        case .accept(let offset, let next):
            if let next {
                state = .downloading(component: component, receiver: receiver, restarts: restarts)
                return [.store(component: index, offset: offset), .fetchBlock(component: index, block: next)]
            }
            state = .checkingDigests(component: component)
            return [.store(component: index, offset: offset), .checkDigests(component: index)]
        case .restart(let fault):
            return restart(component: component, restarts: restarts, fault: fault, exhausted: .transferFailed)
        case .mismatch(let fault):
            return restart(component: component, restarts: restarts, fault: fault, exhausted: .digestMismatch)
        case .reject(let fault):
            return [.discard(component: index)] + finish(.transferFailed, fault.description)
        }
    }

    /// The driver compared the finished component with the manifest.
    public mutating func digestsChecked(matching: Bool, reason: String? = nil) -> [Action] {
        guard case .checkingDigests(let component) = state else { return [] }
        guard matching else {
            return [.discard(component: Int(component))] + finish(.digestMismatch, reason)
        }
        let next = Int(component) + 1
        if next < sizes.count { return begin(component: next, offset: 0, etag: nil, restarts: 0) }
        state = .installing
        return [.install]
    }

    public mutating func installFinished(error: String?) -> [Action] {
        guard state == .installing else { return [] }
        if let error { return finish(.transferFailed, "install failed: \(error)") }
        return finish(.updated, nil)
    }

    /// No response within the time-out, a CoAP error, an unreachable server,
    /// or a staging slot that cannot be written.
    public mutating func transportFailed(_ reason: String) -> [Action] {
        switch state {
        case .awaitingManifest, .preparingStaging, .downloading, .checkingDigests: return finish(.transferFailed, reason)
        default: return []
        }
    }

    private mutating func begin(component: Int, offset: UInt64, etag: ETag?, restarts: UInt8) -> [Action] {
        let receiver = BlockReceiver(expectedSize: sizes[component], szx: szx, offset: offset, etag: etag)
        state = .downloading(component: UInt16(component), receiver: receiver, restarts: restarts)
        return [.fetchBlock(component: component, block: receiver.nextBlock)]
    }

    private mutating func restart(component: UInt16, restarts: UInt8, fault: BlockReceiver.Fault, exhausted: ResultCode) -> [Action] {
        let index = Int(component)
        guard restarts < maxRestarts else {
            return [.discard(component: index)] + finish(exhausted, "\(fault) (after \(restarts) restarts)")
        }
        return [.discard(component: index)] + begin(component: index, offset: 0, etag: nil, restarts: restarts + 1)
    }

    private mutating func finish(_ result: ResultCode, _ reason: String?) -> [Action] {
        let outcome = Outcome(result, reason)
        state = .finished(outcome)
        return [.finish(outcome)]
    }
}
