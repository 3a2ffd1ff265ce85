import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice

/// The fuzz targets (issue #5): each takes arbitrary bytes and must neither
/// crash nor break an invariant, whatever the bytes. libFuzzer drives them
/// in `make fuzz` (built with -sanitize=fuzzer,address); `replay` runs the
/// kept corpora and crash reproducers as regression tests in `make test`.
enum FuzzTarget: String, CaseIterable {
    case manifestView = "manifest-view"
    case manifestJSON = "manifest-json"
    case envelope
    case parsers
    case blocks
    case device
    case resume
    case pskFile = "psk-file"

    func run(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        switch self {
        case .manifestView: fuzzManifestView(bytes)
        case .manifestJSON: fuzzManifestJSON(bytes)
        case .envelope: fuzzEnvelope(bytes)
        case .parsers: fuzzParsers(bytes)
        case .blocks: fuzzBlocks(bytes)
        case .device: fuzzDevice(bytes)
        case .resume: fuzzResume(bytes)
        case .pskFile: fuzzPSKFile(bytes)
        }
    }
}

/// The one rule set on arbitrary payloads: the view never reads outside
/// the payload; what it accepts becomes a `Manifest` that libcbor's
/// encoding and the JSON spelling both carry back to the same manifest.
func fuzzManifestView(_ bytes: [UInt8]) {
    let accepted: ManifestView? = bytes.withUnsafeBytes { raw in
        guard case .success(let view) = ManifestView.read(raw) else { return nil }
        let inside = { (r: Range<Int>) in r.lowerBound >= 0 && r.upperBound <= raw.count }
        guard view.imageCount >= 1, view.imageCount <= ManifestView.maxImages, inside(view.manufacturer), inside(view.model)
        else { fatalError("view out of bounds") }
        for i in 0..<view.imageCount {
            let image = view.images[i]
            guard inside(image.location), image.name.map(inside) ?? true, image.digestCount >= 1 else { fatalError("image out of bounds") }
            for d in 0..<image.digestCount where !inside(image.digests[d].value) || image.digests[d].value.count != image.digests[d].algorithm.digestLength {
                fatalError("digest out of bounds")
            }
        }
        return view
    }
    let manifest = try? Manifest(cborPayload: bytes)
    guard (accepted == nil) == (manifest == nil) else { fatalError("the view and Manifest(cborPayload:) disagree") }
    guard let manifest else { return }
    guard (try? Manifest(cborPayload: CBOREncoder.encode(manifest.cborValue))) == manifest else { fatalError("manifest CBOR round trip failed") }
    guard (try? Manifest(jsonPayload: JSONWriter.write(manifest.jsonValue))) == manifest else { fatalError("manifest JSON round trip failed") }
}

func fuzzManifestJSON(_ bytes: [UInt8]) {
    guard let manifest = try? Manifest(jsonPayload: bytes) else { return }
    guard (try? Manifest(jsonPayload: JSONWriter.write(manifest.jsonValue))) == manifest else {
        fatalError("manifest JSON round trip failed")
    }
}

/// Fixed trust anchors: the test vectors' ES256 and Ed25519 keys.
let fuzzVerifier: ManifestVerifier = {
    let es256 = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKsxF4P+eVmyH8upDVLnwf8BP386W
        y55VYVggTOEmodXIIHWWcT26BMfqcuYyocBYUiTjwJEyQqG55HZVmiJDrw==
        -----END PUBLIC KEY-----
        """
    let ed25519 = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEAVwctjFm8Zss1nZlC5bLQz5eptcViE8uMMK78qCNgmXE=
        -----END PUBLIC KEY-----
        """
    return ManifestVerifier(trustedKeys: [try! PublicKey(pem: Array(es256.utf8)), try! PublicKey(pem: Array(ed25519.utf8))])
}()

/// COSE_Sign1 and JWS parsing and verification. Anything that verifies must
/// be signed by a trusted key: the corpus holds valid vectors, so mutations
/// of them must never verify with changed content.
func fuzzEnvelope(_ bytes: [UInt8]) {
    guard let verified = try? fuzzVerifier.verify(bytes) else { return }
    guard fuzzVerifier.trustedKeys.contains(where: { $0.kid == verified.signerKid }) else { fatalError("verified by an untrusted key") }
    // Re-verifying the same bytes gives the same manifest.
    guard (try? fuzzVerifier.verify(bytes))?.manifest == verified.manifest else { fatalError("verification is not deterministic") }
}

/// Text parsers: versions, URIs (and reference resolution), RFC 3339, endpoints, base64url, hex.
func fuzzParsers(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    let halves = text.split(separator: "\n", maxSplits: 1).map(String.init)
    if let v = FirmwareVersion(text) {
        guard FirmwareVersion(v.description) == v, v.description == text else { fatalError("version round trip") }
    }
    if let seconds = RFC3339.parse(text) {
        guard RFC3339.parse(RFC3339.format(seconds)) == seconds else { fatalError("RFC 3339 round trip") }
    }
    if let uri = CoapURI(halves.first ?? text) {
        guard CoapURI(uri.description) == uri else { fatalError("URI round trip: \(uri)") }
        if halves.count == 2, let resolved = uri.resolving(halves[1]) {
            guard !resolved.path.contains(".."), !resolved.path.contains(".") else { fatalError("dot segment survived resolution") }
        }
    }
    _ = EndpointSpec(text)
    if let decoded = Base64URL.decode(text) {
        guard Base64URL.encode(decoded) == text else { fatalError("base64url is not canonical") }
    }
    if let decoded = Hex.decodeLowercase(text) {
        guard Hex.encode(decoded) == text else { fatalError("hex is not canonical") }
    }
    _ = try? JSONParser.parse(bytes)
}

/// The update engine fed an arbitrary sequence of block responses: accepted
/// blocks are contiguous, never past the manifest size, and only a complete
/// image reaches the digest check.
func fuzzBlocks(_ bytes: [UInt8]) {
    guard bytes.count >= 4 else { return }
    let size = UInt64(bytes[0]) << 8 | UInt64(bytes[1])
    let szx = bytes[2] % 7
    var manifest = Manifest(timestamp: 1, manufacturer: "m", model: "x", firmwareVersion: FirmwareVersion(major: 1, minor: 0, revision: 0))
    manifest.components = [
        Component(name: "a", location: "a", size: size, digests: [ImageDigest(algorithm: .sha256, value: [UInt8](repeating: 0, count: 32))]),
        Component(name: "b", location: "b", size: UInt64(bytes[3]), digests: [ImageDigest(algorithm: .sha256, value: [UInt8](repeating: 0, count: 32))]),
    ]
    var engine = UpdateEngine(device: DeviceProfile(manufacturer: "m", model: "x"), szx: szx)
    _ = engine.start()
    _ = engine.manifestVerified(VerifiedManifest(manifest: manifest, format: .cbor, envelope: [], signerKid: [], algorithm: .es256))
    _ = engine.stagingPrepared()
    var stored: [UInt64] = [0, 0]
    var i = 4
    while i + 8 <= bytes.count {
        let b = Array(bytes[i..<i + 8])
        i += 8
        let block = BlockReceiver.Block(
            block2: Block2(number: UInt32(b[0]) | UInt32(b[1] & 0x0F) << 8, more: b[2] & 1 == 1, szx: b[2] >> 1 & 7 == 7 ? 6 : b[2] >> 1 & 7),
            etag: ETag([b[3] & 3]), size2: b[4] & 0x80 != 0 ? UInt64(b[5]) : nil,
            payloadCount: Int(UInt16(b[6]) << 8 | UInt16(b[7])) % 1025)
        if case .downloading(let c, _, _) = engine.state {
            for action in engine.blockReceived(block) {
                switch action {
                case .store(let sc, let offset):
                    guard sc == Int(c), offset == stored[sc] else { fatalError("store at \(offset), expected \(stored[sc])") }
                    stored[sc] = offset + UInt64(block.payloadCount)
                    guard stored[sc] <= manifest.images[sc].size else { fatalError("stored past the manifest size") }
                case .discard(let dc):
                    stored[dc] = 0
                case .checkDigests(let dc):
                    guard stored[dc] == manifest.images[dc].size else { fatalError("digest check before the image was complete") }
                default:
                    break
                }
            }
        } else if case .checkingDigests = engine.state {
            for case .discard(let dc) in engine.digestsChecked(matching: b[0] & 1 == 0) { stored[dc] = 0 }
        } else if case .installing = engine.state {
            guard stored.enumerated().allSatisfy({ $0.element == manifest.images[$0.offset].size }) else {
                fatalError("install with incomplete images")
            }
            _ = engine.installFinished(error: nil)
        } else {
            break
        }
    }
}

/// Accepts every ES256 signature, so that mutated payloads get past the
/// signature step and the device's manifest rules and policy see them.
struct AcceptingVerifier: ClassicSignatureVerifier {
    func verifyES256(publicKey: UnsafeRawBufferPointer, digest: Digest32, signature: UnsafeRawBufferPointer) -> Bool { true }
    func verifyEd25519(publicKey: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer,
                       message: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Bool { false }
}

/// The device vectors' HSS-LMS public key (Vectors/device/hss-public.bin).
let fuzzHSSPublicKey: [UInt8] = Hex.decodeLowercase(
    "000000010000000500000004167eaa80b17910a952b4a2e8a14155420ccc7408bb2e86cfbd6906229ba4f568c9106d8a5243f63d3ecdd1ac791d3fa9")!

/// What a device runs (`DeviceVerifier.check`: COSE_Sign1 view, signature,
/// manifest view, policy, pure-Swift SHA-256) on arbitrary envelopes, twice:
/// under the vectors' real HSS-LMS anchor (an accepted release must have a
/// signature that verifies again), and under an ES256 anchor whose
/// signature check always passes (the rules after it see every payload).
/// Whatever passes has its ranges inside the envelope.
func fuzzDevice(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { envelope in
        let inside = { (r: Range<Int>) in r.lowerBound >= 0 && r.upperBound <= envelope.count }
        Array("example.com".utf8).withUnsafeBytes { manufacturer in Array("c7960".utf8).withUnsafeBytes { model in
            let installed = InstalledRelease(version: FirmwareVersion(major: 1, minor: 2, revision: 2), timestamp: 1_763_999_999)
            let policy = DevicePolicy(manufacturer: manufacturer, model: model, installed: bytes.first.map { $0 & 1 == 0 } == true ? installed : nil,
                                      slotSize: 1 << 20)
            fuzzHSSPublicKey.withUnsafeBytes { key in
                let trust = TrustAnchor(hss: key, engine: SHA256.self)
                var view = ManifestView()
                let result = DeviceVerifier.check(SHA256.self, classic: HashBasedOnly(), envelope: envelope, trust: trust,
                                                  policy: policy, view: &view)
                if result == nil || result == .upToDate {
                    guard case .success(let cose) = COSESign1View.parse(envelope),
                          DeviceVerifier.verifySignature(SHA256.self, classic: HashBasedOnly(), cose: cose, envelope: envelope, trust: trust)
                    else { fatalError("accepted without a signature that verifies") }
                }
            }
            guard case .success(let cose) = COSESign1View.parse(envelope) else { return }
            guard inside(cose.payload), inside(cose.signature), cose.kid.map(inside) ?? true else { fatalError("COSE range out of bounds") }
            var kid: UInt64 = 0
            if let range = cose.kid, range.count == 8 { for i in range { kid = kid << 8 | UInt64(envelope[i]) } }
            let key = [UInt8](repeating: 4, count: 65)
            key.withUnsafeBytes { key in
                var view = ManifestView()
                let result = DeviceVerifier.check(SHA256.self, classic: AcceptingVerifier(), envelope: envelope,
                                                  trust: TrustAnchor(algorithm: .es256, publicKey: key, kid: kid), policy: policy, view: &view)
                guard result == nil || result == .upToDate || result == .wrongDevice || result == .rollback || result == .tooLarge else { return }
                guard view.imageCount >= 1, view.imageCount <= ManifestView.maxImages, inside(view.manufacturer), inside(view.model)
                else { fatalError("device view out of bounds") }
                for i in 0..<view.imageCount {
                    let image = view.images[i]
                    guard inside(image.location), image.name.map(inside) ?? true, image.digestCount >= 1 else { fatalError("image out of bounds") }
                }
            }
        } }
    }
}

/// `staging/resume.json`: what parses writes back to bytes that parse to
/// the same record, and nothing traps (a number of 2^63 or more once did).
func fuzzResume(_ bytes: [UInt8]) {
    guard let record = DeviceState.ResumeRecord(json: bytes) else { return }
    guard DeviceState.ResumeRecord(json: record.json) == record else { fatalError("resume record round trip failed") }
}

/// `--psk-file`: errors name the file; every entry has an identity and a
/// key, and writing the entries back as lines reads back the same entries.
func fuzzPSKFile(_ bytes: [UInt8]) {
    let entries: [PSK]
    do {
        entries = try PSK.parseFile(bytes, path: "fuzz.psk")
    } catch {
        guard error.message.hasPrefix("fuzz.psk") else { fatalError("a PSK file error that does not name the file") }
        return
    }
    guard !entries.isEmpty, entries.allSatisfy({ !$0.identity.isEmpty && !$0.key.isEmpty }) else { fatalError("empty PSK entry") }
    let lines = entries.map { $0.identity + Array(":".utf8) + Array(Hex.encode($0.key).utf8) }.joined(separator: [0x0A])
    guard (try? PSK.parseFile(Array(lines), path: "again")) == entries else { fatalError("PSK file round trip failed") }
}
