// The board glue of the bare-metal build (`make embedded`): C-callable
// entry points over CoapFirmwareDevice, one static state, no allocation.
// Compiled together with Sources/CoapFirmwareDevice by Embedded Swift;
// not part of the SwiftPM package.

/// Everything the device keeps between calls: the checked manifest (ranges
/// into the caller's envelope buffer, which must stay put) and the digest
/// state of the image being received.
struct DeviceState {
    var envelope = UnsafeRawBufferPointer(start: nil, count: 0)
    var view = ManifestView()
    var checked = false
    var image = 0
    var digests: BlockDigestVerifier<SoftwareDigests>? = nil
}

nonisolated(unsafe) var device = DeviceState()

/// Checks a COSE_Sign1 manifest against an HSS-LMS trust anchor and the
/// device's identity (`installedTimestamp` Int64.min: nothing installed).
/// Returns 0 when accepted (download it), else a `ResultCode`: 1 up to
/// date, 2 bad signature, 3 bad manifest, 4 wrong device, 5 rollback,
/// 6 too large.
@_cdecl("coapfw_check_manifest")
public func coapfwCheckManifest(
    _ envelope: UnsafePointer<UInt8>, _ envelopeLength: Int,
    _ trust: UnsafePointer<UInt8>, _ trustLength: Int,
    _ manufacturer: UnsafePointer<UInt8>, _ manufacturerLength: Int,
    _ model: UnsafePointer<UInt8>, _ modelLength: Int,
    _ installedMajor: UInt32, _ installedMinor: UInt32, _ installedRevision: UInt32,
    _ installedTimestamp: Int64, _ slotSize: UInt64
) -> Int32 {
    let env = UnsafeRawBufferPointer(start: envelope, count: envelopeLength)
    let anchor = TrustAnchor(hss: UnsafeRawBufferPointer(start: trust, count: trustLength), engine: SHA256.self)
    let installed = installedTimestamp == .min ? nil : InstalledRelease(
        version: FirmwareVersion(major: installedMajor, minor: installedMinor, revision: installedRevision),
        timestamp: installedTimestamp)
    let policy = DevicePolicy(
        manufacturer: UnsafeRawBufferPointer(start: manufacturer, count: manufacturerLength),
        model: UnsafeRawBufferPointer(start: model, count: modelLength),
        installed: installed, slotSize: slotSize)
    device = DeviceState()
    let result = DeviceVerifier.check(SHA256.self, classic: HashBasedOnly(), envelope: env, trust: anchor,
                                      policy: policy, view: &device.view)
    if result == nil {
        device.envelope = env
        device.checked = true
    }
    return Int32(result?.rawValue ?? 0)
}

/// Number of images in the accepted manifest, and the size of one.
@_cdecl("coapfw_image_count")
public func coapfwImageCount() -> Int32 { device.checked ? Int32(device.view.imageCount) : 0 }

@_cdecl("coapfw_image_size")
public func coapfwImageSize(_ index: Int32) -> UInt64 {
    guard device.checked, index >= 0, Int(index) < device.view.imageCount else { return 0 }
    return device.view.images[Int(index)].size
}

/// Starts receiving image `index`; 0 on success.
@_cdecl("coapfw_image_begin")
public func coapfwImageBegin(_ index: Int32) -> Int32 {
    guard device.checked, index >= 0, Int(index) < device.view.imageCount else { return -1 }
    device.image = Int(index)
    device.digests = BlockDigestVerifier(image: device.view.images[Int(index)])
    return 0
}

/// Hashes one block at `offset` as it arrives; 0 on success, -1 for a
/// block out of order or past the signed size.
@_cdecl("coapfw_image_block")
public func coapfwImageBlock(_ offset: UInt64, _ block: UnsafePointer<UInt8>, _ length: Int) -> Int32 {
    // Updated in place: no copy of the digest states per block.
    guard device.digests != nil else { return -1 }
    return device.digests!.update(offset: offset, block: UnsafeRawBufferPointer(start: block, count: length)) ? 0 : -1
}

/// Ends the image: 0 when size and every digest match, 7 (digest
/// mismatch) otherwise.
@_cdecl("coapfw_image_finish")
public func coapfwImageFinish() -> Int32 {
    guard let digests = device.digests else { return Int32(ResultCode.digestMismatch.rawValue) }
    device.digests = nil
    let outcome = digests.finish(image: device.view.images[device.image], manifest: device.envelope)
    return outcome == .match ? 0 : Int32(ResultCode.digestMismatch.rawValue)
}

/// The size of the device state in bytes (for the RAM budget).
@_cdecl("coapfw_state_size")
public func coapfwStateSize() -> Int { MemoryLayout<DeviceState>.size }

// MARK: SUIT (issue #14)

/// What the device keeps of an accepted SUIT envelope: the plan's
/// components (ranges into the caller's envelope buffer) and the SHA-256
/// state of the image being received.
struct SUITState {
    var envelope = UnsafeRawBufferPointer(start: nil, count: 0)
    var plan = SUITPlan(components: InlineArray(repeating: SUITComponent()), count: 0, sequenceNumber: 0)
    var checked = false
    var image = 0
    var received: UInt64 = 0
    var hash = SHA256()
}

nonisolated(unsafe) var suit = SUITState()

/// Checks a SUIT envelope against an HSS-LMS trust anchor, in SUIT's order:
/// the signature over the digest, the digest over the manifest, the
/// manifest, then the sequences an update runs with the device's vendor and
/// class ids (16 bytes each), then anti-rollback against `installedSequence`
/// (`hasInstalled` 0: nothing installed) and the slot. Returns 0 when
/// accepted, else a `ResultCode` as `coapfw_check_manifest` does.
@_cdecl("coapfw_check_suit")
public func coapfwCheckSUIT(
    _ envelope: UnsafePointer<UInt8>, _ envelopeLength: Int,
    _ trust: UnsafePointer<UInt8>, _ trustLength: Int,
    _ vendorID: UnsafePointer<UInt8>, _ classID: UnsafePointer<UInt8>,
    _ hasInstalled: Int32, _ installedSequence: UInt64, _ slotSize: UInt64
) -> Int32 {
    suit.checked = false
    let env = UnsafeRawBufferPointer(start: envelope, count: envelopeLength)
    // Two frames one after the other, not nested: the signature check's deep
    // HSS-LMS stack never sits under the plan's.
    let authenticated = suitAuthenticate(env, UnsafeRawBufferPointer(start: trust, count: trustLength))
    guard authenticated == 0 else { return authenticated }
    return suitPlan(env, vendorID, classID, installed: hasInstalled != 0 ? installedSequence : nil, slotSize: slotSize)
}

@inline(never)
func suitAuthenticate(_ env: UnsafeRawBufferPointer, _ trust: UnsafeRawBufferPointer) -> Int32 {
    let anchor = TrustAnchor(hss: trust, engine: SHA256.self)
    switch SUITEnvelopeView.parse(env) {
    case .failure(let f): return Int32(f.result.rawValue)
    case .success(let view):
        return Int32(view.authenticate(SHA256.self, classic: HashBasedOnly(), envelope: env, trust: anchor)?.result.rawValue ?? 0)
    }
}

@inline(never)
func suitPlan(_ env: UnsafeRawBufferPointer, _ vendorID: UnsafePointer<UInt8>, _ classID: UnsafePointer<UInt8>,
              installed: UInt64?, slotSize: UInt64) -> Int32 {
    guard case .success(let view) = SUITEnvelopeView.parse(env) else { return Int32(ResultCode.badManifest.rawValue) }
    let manifest: SUITManifestView
    switch SUITManifestView.parse(SHA256.self, envelope: view, in: env) {
    case .failure(let f): return Int32(f.result.rawValue)
    case .success(let m): manifest = m
    }
    let device = SUITDevice(vendorID: UnsafeRawBufferPointer(start: vendorID, count: 16),
                            classID: UnsafeRawBufferPointer(start: classID, count: 16))
    switch SUITInterpreter.plan(env, manifest: manifest, device: device) {
    case .failure(let f): return Int32(f.result.rawValue)
    case .success(let p): suit.plan = p
    }
    if let fresh = SUITManifestView.freshness(sequence: suit.plan.sequenceNumber, installed: installed) {
        return Int32(fresh.rawValue)
    }
    var total: UInt64 = 0
    for i in 0..<suit.plan.count {
        let c = suit.plan.components[i]
        guard c.fetch, c.imageMatch, c.digest != nil, let size = c.size else { return Int32(ResultCode.badManifest.rawValue) }
        let (sum, overflow) = total.addingReportingOverflow(size)
        guard !overflow else { return Int32(ResultCode.tooLarge.rawValue) }
        total = sum
    }
    if total > slotSize { return Int32(ResultCode.tooLarge.rawValue) }
    suit.envelope = env
    suit.checked = true
    return 0
}

/// Components of the accepted envelope, the size of one, and its URI (bytes into the envelope).
@_cdecl("coapfw_suit_component_count")
public func coapfwSUITComponentCount() -> Int32 { suit.checked ? Int32(suit.plan.count) : 0 }

@_cdecl("coapfw_suit_image_size")
public func coapfwSUITImageSize(_ index: Int32) -> UInt64 {
    guard suit.checked, index >= 0, Int(index) < suit.plan.count else { return 0 }
    return suit.plan.components[Int(index)].size ?? 0
}

/// Starts receiving component `index`'s image; 0 on success.
@_cdecl("coapfw_suit_image_begin")
public func coapfwSUITImageBegin(_ index: Int32) -> Int32 {
    guard suit.checked, index >= 0, Int(index) < suit.plan.count else { return -1 }
    suit.image = Int(index)
    suit.received = 0
    suit.hash = SHA256()
    return 0
}

/// Hashes one block at `offset` as it arrives; -1 for a block out of order or past image-size.
@_cdecl("coapfw_suit_image_block")
public func coapfwSUITImageBlock(_ offset: UInt64, _ block: UnsafePointer<UInt8>, _ length: Int) -> Int32 {
    guard suit.checked, length >= 0, offset == suit.received, let size = suit.plan.components[suit.image].size,
          UInt64(length) <= size - offset else { return -1 }
    suit.hash.update(UnsafeRawBufferPointer(start: block, count: length))
    suit.received += UInt64(length)
    return 0
}

/// Ends the image: condition-image-match. 0 when its size and SHA-256 match, 7 otherwise.
@_cdecl("coapfw_suit_image_finish")
public func coapfwSUITImageFinish() -> Int32 {
    let c = suit.plan.components[suit.image]
    guard suit.checked, let digest = c.digest, suit.received == c.size else { return Int32(ResultCode.digestMismatch.rawValue) }
    let computed = suit.hash.finalizeDigest()
    let match = withUnsafeBytes(of: computed.words) { constantTimeEquals($0, UnsafeRawBufferPointer(rebasing: suit.envelope[digest])) }
    return match ? 0 : Int32(ResultCode.digestMismatch.rawValue)
}

/// The size of the SUIT state in bytes (for the RAM budget).
@_cdecl("coapfw_suit_state_size")
public func coapfwSUITStateSize() -> Int { MemoryLayout<SUITState>.size }
