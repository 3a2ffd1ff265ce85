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
