/// What a device runs to accept a release, with no allocation and no
/// Foundation: the COSE_Sign1 envelope, the signature (HSS-LMS built in,
/// ES256/EdDSA through a pluggable verifier), the manifest rules in the
/// draft's order (SPEC §6), and the per-block digest check of each image.

/// ES256 and EdDSA, for devices that have them (a hardware engine, a C
/// library); `HashBasedOnly` refuses both.
public protocol ClassicSignatureVerifier {
    /// ES256: `digest` is SHA-256 of the Sig_structure; raw r‖s signature.
    func verifyES256(publicKey: UnsafeRawBufferPointer, digest: Digest32, signature: UnsafeRawBufferPointer) -> Bool
    /// Ed25519 over the Sig_structure, which `message` streams to its sink.
    func verifyEd25519(publicKey: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer,
                       message: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Bool
}

/// A device that trusts HSS-LMS keys only.
public struct HashBasedOnly: ClassicSignatureVerifier {
    public init() {}
    public func verifyES256(publicKey: UnsafeRawBufferPointer, digest: Digest32, signature: UnsafeRawBufferPointer) -> Bool { false }
    public func verifyEd25519(publicKey: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer,
                              message: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Bool { false }
}

/// The device's trust anchor: one public key.
public struct TrustAnchor {
    public enum Kind: UInt8 { case es256, ed25519, hssLms }
    public let kind: Kind
    /// ES256: 64-byte x‖y; Ed25519: 32 bytes; HSS-LMS: RFC 8554 bytes.
    public let publicKey: UnsafeRawBufferPointer
    /// SHA-256(key bytes)[:8] (SPEC §3); for ES256/EdDSA the caller passes
    /// the SPKI-derived kid it was provisioned with.
    public let kid: UInt64

    public init(kind: Kind, publicKey: UnsafeRawBufferPointer, kid: UInt64) {
        self.kind = kind
        self.publicKey = publicKey
        self.kid = kid
    }

    /// An HSS-LMS anchor, its kid computed over the key bytes with `engine`.
    public init<H: SHA256Engine>(hss publicKey: UnsafeRawBufferPointer, engine: H.Type) {
        var h = H()
        h.update(publicKey)
        let digest = h.finalizeDigest()
        self.init(kind: .hssLms, publicKey: publicKey, kid: UInt64(bigEndian: digest.words.0))
    }
}

/// What the device knows about itself (SPEC §6).
public struct DeviceIdentity {
    public var manufacturer: UnsafeRawBufferPointer
    public var model: UnsafeRawBufferPointer
    /// The running release, or nil on an empty device.
    public var installedVersion: FirmwareVersion?
    public var installedTimestamp: Int64
    /// Staging slot capacity; `.max` for unlimited.
    public var slotSize: UInt64

    public init(manufacturer: UnsafeRawBufferPointer, model: UnsafeRawBufferPointer,
                installedVersion: FirmwareVersion? = nil, installedTimestamp: Int64 = .min, slotSize: UInt64 = .max) {
        self.manufacturer = manufacturer
        self.model = model
        self.installedVersion = installedVersion
        self.installedTimestamp = installedTimestamp
        self.slotSize = slotSize
    }
}

/// The device's verdict, numbered like SPEC §7's result codes.
public enum DeviceResult: UInt8, Sendable {
    case accepted = 0
    case upToDate
    case badSignature
    case badManifest
    case wrongDevice
    case rollback
    case tooLarge
    case digestMismatch
}

public enum DeviceVerifier {
    /// Checks an envelope in the draft's order: signature, identity,
    /// freshness, size. On `.accepted` (or `.upToDate`) `view` holds the
    /// manifest, its ranges pointing into `envelope`.
    public static func check<H: SHA256Engine, V: ClassicSignatureVerifier>(
        _ engine: H.Type, classic: V, envelope: UnsafeRawBufferPointer, trust: TrustAnchor,
        device: DeviceIdentity, view: inout ManifestView
    ) -> DeviceResult {
        guard case .success(let cose) = COSESign1View.parse(envelope) else { return .badManifest }
        if let kid = cose.kid {
            guard kid.count == 8 else { return .badSignature }
            var value: UInt64 = 0
            for i in kid { value = value << 8 | UInt64(envelope[i]) }
            guard value == trust.kid else { return .badSignature }
        }
        let signature = UnsafeRawBufferPointer(rebasing: envelope[cose.signature])
        let valid: Bool
        switch (trust.kind, cose.algorithm) {
        case (.hssLms, HSS.coseAlgorithm):
            valid = HSS.verify(engine, publicKey: trust.publicKey, signature: signature, message: { h in
                cose.writeToBeSigned(envelope) { h.update($0) }
            }) == nil
        case (.es256, -7), (.es256, -9):
            var h = H()
            cose.writeToBeSigned(envelope) { h.update($0) }
            valid = classic.verifyES256(publicKey: trust.publicKey, digest: h.finalizeDigest(), signature: signature)
        case (.ed25519, -8), (.ed25519, -19):
            valid = classic.verifyEd25519(publicKey: trust.publicKey, signature: signature, message: { sink in
                cose.writeToBeSigned(envelope, into: sink)
            })
        default:
            valid = false
        }
        guard valid else { return .badSignature }

        if view.read(envelope, range: cose.payload) != nil { return .badManifest }
        guard envelope.equals(view.manufacturer, device.manufacturer),
              envelope.equals(view.model, device.model) else { return .wrongDevice }
        if let installed = device.installedVersion {
            if view.version < installed || view.timestamp < device.installedTimestamp { return .rollback }
            if view.version == installed { return .upToDate }
        }
        guard view.totalSize <= device.slotSize else { return .tooLarge }
        return .accepted
    }
}

/// Hashes one image block by block with every digest its manifest lists
/// (SHA-256 through the plugged engine, SHA-384/512 in pure Swift), then
/// compares size and digests in constant time. No block is kept.
public struct BlockDigestVerifier<H: SHA256Engine> {
    public let expectedSize: UInt64
    public private(set) var received: UInt64 = 0
    var sha256 = H()
    var sha512 = SHA512()
    var sha384 = SHA512(sha384: ())
    let wants: (sha256: Bool, sha384: Bool, sha512: Bool)

    public init(image: ManifestView.Image) {
        expectedSize = image.size
        var wants = (sha256: false, sha384: false, sha512: false)
        for i in 0..<image.digestCount {
            switch image.digests[i].algorithm {
            case .sha256: wants.sha256 = true
            case .sha384: wants.sha384 = true
            case .sha512: wants.sha512 = true
            }
        }
        self.wants = wants
    }

    /// Feeds the block at `offset`; refuses a gap, an overlap or bytes past
    /// the signed size.
    public mutating func update(offset: UInt64, block: UnsafeRawBufferPointer) -> Bool {
        guard offset == received, UInt64(block.count) <= expectedSize - received else { return false }
        if wants.sha256 { sha256.update(block) }
        if wants.sha384 { sha384.update(block) }
        if wants.sha512 { sha512.update(block) }
        received += UInt64(block.count)
        return true
    }

    /// True when the size and every listed digest match.
    public mutating func finish(image: ManifestView.Image, manifest bytes: UnsafeRawBufferPointer) -> Bool {
        guard received == expectedSize else { return false }
        var out = InlineArray<64, UInt8>(repeating: 0)
        var difference: UInt8 = 0
        for i in 0..<image.digestCount {
            let digest = image.digests[i]
            withUnsafeMutableBytes(of: &out) { raw in
                switch digest.algorithm {
                case .sha256: var h = sha256; h.finalize(into: raw)
                case .sha384: var h = sha384; h.finalize(into: raw)
                case .sha512: var h = sha512; h.finalize(into: raw)
                }
                for k in 0..<digest.value.count { difference |= raw[k] ^ bytes[digest.value.lowerBound + k] }
            }
        }
        return difference == 0
    }
}
