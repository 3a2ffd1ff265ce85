import CoapFirmwareCore
import CoapFirmwareDevice

/// A SUIT envelope that authenticated, read, and ran (issue #14).
public struct SUITRelease: Sendable {
    public struct Component: Sendable {
        public var uri: String?
        public var sha256: [UInt8]?
        public var size: UInt64?
        /// A fetch directive ran for it.
        public var fetch: Bool
        /// An image-match condition ran for it.
        public var imageMatch: Bool
    }

    public let sequenceNumber: UInt64
    public let signerKid: [UInt8]
    public let algorithm: SignatureAlgorithm
    public let componentCount: Int
    /// Each component identifier read as a name, when it is one byte string of UTF-8 text.
    public let componentNames: [String?]
    /// What the update sequences left per component (empty unless they ran: `verify(..., run: true)`).
    public let components: [Component]
    /// The release's `A.B.C` from the text member (component-version, key 6), when there is one.
    public let version: String?
}

/// Checks a SUIT envelope on Linux with the device's reader and rules
/// (`SUITEnvelopeView`, `SUITManifestView`, `SUITInterpreter`): the
/// signature under a trusted key (OpenSSL; the kid selects, never widens),
/// the manifest digest, the severed members, then the sequences an update
/// runs. Nothing of the manifest is read before the signature and digest hold.
public struct SUITVerifier: Sendable {
    public let trustedKeys: [PublicKey]

    public init(trustedKeys: [PublicKey]) {
        precondition(!trustedKeys.isEmpty, "a verifier needs at least one trusted key")
        self.trustedKeys = trustedKeys
    }

    /// Authenticates, then reads the manifest (every sequence must be a
    /// well-formed command list); with `run` also runs the sequences an
    /// update runs, which refuses the commands this updater does not
    /// support. `vendorID`/`classID` nil: the identity conditions are not
    /// checked (`verify` without a product).
    public func verify(_ envelope: [UInt8], run: Bool = true, vendorID: [UInt8]? = nil, classID: [UInt8]? = nil,
                       slot: UInt64 = 0) throws(ManifestError) -> SUITRelease {
        guard envelope.count <= Manifest.maxEncodedSize else {
            throw .badManifest(field: "SUIT_Envelope", reason: "\(envelope.count) bytes, more than the \(Manifest.maxEncodedSize)-byte limit")
        }
        let outcome: Result<SUITRelease, ManifestError> = envelope.withUnsafeBytes { bytes in
            let view: SUITEnvelopeView
            switch SUITEnvelopeView.parse(bytes) {
            case .failure(let f): return .failure(Self.error(f))
            case .success(let v): view = v
            }
            let key: PublicKey, algorithm: SignatureAlgorithm
            switch pickKey(view.cose, bytes) {
            case .failure(let e): return .failure(e)
            case .success(let picked): (key, algorithm) = picked
            }
            var message: [UInt8] = []
            view.cose.writeToBeSigned(bytes) { message.append(contentsOf: $0) }
            let signature = Array(UnsafeRawBufferPointer(rebasing: bytes[view.cose.signature]))
            guard key.verify(signature: signature, message: message, algorithm: algorithm) else {
                return .failure(.badSignature(field: "suit-authentication-wrapper",
                                              reason: "COSE_Sign1 signature does not verify with key \(Hex.encode(key.kid))"))
            }
            guard view.manifestDigestHolds(OpenSSLSHA256.self, envelope: bytes) else {
                return .failure(.digestMismatch(image: "suit-manifest", reason: "the manifest does not match the signed digest"))
            }
            let manifest: SUITManifestView
            switch SUITManifestView.parse(OpenSSLSHA256.self, envelope: view, in: bytes) {
            case .failure(let f): return .failure(Self.error(f))
            case .success(let m): manifest = m
            }
            let version = manifest.text.flatMap { Self.componentVersion(bytes, text: $0) }
            let names = Self.componentNames(bytes, components: manifest.components)
            guard run else {
                return .success(SUITRelease(sequenceNumber: manifest.sequenceNumber, signerKid: key.kid, algorithm: algorithm,
                                            componentCount: manifest.componentCount, componentNames: names, components: [],
                                            version: version))
            }
            func with(_ id: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> Result<SUITPlan, SUITFailure>) -> Result<SUITPlan, SUITFailure> {
                guard let id else { return body(nil) }
                return id.withUnsafeBytes { body($0) }
            }
            let planned = with(vendorID) { vendor in
                with(classID) { klass in
                    SUITInterpreter.plan(bytes, manifest: manifest, device: SUITDevice(vendorID: vendor, classID: klass, slot: slot))
                }
            }
            let plan: SUITPlan
            switch planned {
            case .failure(let f): return .failure(Self.error(f))
            case .success(let p): plan = p
            }
            func bytesOf(_ range: Range<Int>) -> [UInt8] { Array(UnsafeRawBufferPointer(rebasing: bytes[range])) }
            var components: [SUITRelease.Component] = []
            for i in 0..<plan.count {
                let c = plan.components[i]
                components.append(SUITRelease.Component(uri: c.uri.map { String(decoding: bytesOf($0), as: UTF8.self) },
                                                        sha256: c.digest.map(bytesOf), size: c.size, fetch: c.fetch,
                                                        imageMatch: c.imageMatch))
            }
            return .success(SUITRelease(sequenceNumber: plan.sequenceNumber, signerKid: key.kid, algorithm: algorithm,
                                        componentCount: plan.count, componentNames: names, components: components,
                                        version: version))
        }
        return try outcome.get()
    }

    /// The components array's identifiers, each as text when it is [bstr of UTF-8].
    static func componentNames(_ bytes: UnsafeRawBufferPointer, components: Range<Int>) -> [String?] {
        var r = CBORReader(bytes, range: components)
        guard case .success(.array(let n)) = r.next() else { return [] }
        var names: [String?] = []
        for _ in 0..<n {
            let start = r.offset
            var name: String?
            if case .success(.array(1)) = r.next(), case .success(.bytes(let id)) = r.next() {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[id])
                name = String(validating: raw, as: UTF8.self)
            }
            r = CBORReader(bytes, range: start..<r.end)
            if r.skip() != nil { return names }
            names.append(name)
        }
        return names
    }

    /// The first component-version (key 6) in the text map: {language: {component-id: {6: "A.B.C"}}}.
    static func componentVersion(_ bytes: UnsafeRawBufferPointer, text: Range<Int>) -> String? {
        var r = CBORReader(bytes, range: text)
        guard case .success(.map(let languages)) = r.next() else { return nil }
        for _ in 0..<languages {
            guard case .success(.text) = r.next(), case .success(.map(let entries)) = r.next() else { return nil }
            for _ in 0..<entries {
                guard case .success(let key) = r.next() else { return nil }
                if case .array(let n) = key {
                    for _ in 0..<n where r.skip() != nil { return nil }
                    guard case .success(.map(let fields)) = r.next() else { return nil }
                    for _ in 0..<fields {
                        guard case .success(let k) = r.next() else { return nil }
                        let valueStart = r.offset
                        if case .unsigned(6) = k, case .success(.text(let t)) = r.next() {
                            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[t]), as: UTF8.self)
                        }
                        r = CBORReader(bytes, range: valueStart..<r.end)
                        if r.skip() != nil { return nil }
                    }
                } else if r.skip() != nil {
                    return nil
                }
            }
        }
        return nil
    }

    /// `update --format suit`: the envelope as the release the update engine
    /// installs. Identity conditions run against UUID5(manufacturer/model)
    /// (or the given ids), so the release is this device's; each component
    /// must be fetched (a uri, SHA-256, image-size) and image-matched, and
    /// the text member must give the `A.B.C` version. The sequence number
    /// stands in for the timestamp, so the device's rollback rule (version
    /// higher, timestamp not older) is SUIT's too.
    public func release(_ envelope: [UInt8], manufacturer: String, model: String, vendorID: [UInt8]? = nil,
                        classID: [UInt8]? = nil) throws(ManifestError) -> VerifiedManifest {
        let ids = UUID5.suitIdentity(manufacturer: manufacturer, model: model)
        let r = try verify(envelope, run: true, vendorID: vendorID ?? ids.vendorID, classID: classID ?? ids.classID)
        guard let text = r.version, let version = FirmwareVersion(text) else {
            throw .badManifest(field: "suit-text", reason: "no component-version (key 6) giving the release's A.B.C version")
        }
        guard r.sequenceNumber <= UInt64(ManifestView.timestampRange.upperBound) else {
            throw .badManifest(field: "suit-manifest-sequence-number", reason: "\(r.sequenceNumber) is beyond what this device records")
        }
        var components: [Component] = []
        for (i, c) in r.components.enumerated() {
            guard c.fetch, c.imageMatch, let uri = c.uri, let sha256 = c.sha256, let size = c.size else {
                throw .badManifest(field: "suit-install", reason: "component \(i) is not fetched and image-matched with a uri, an image-digest and an image-size")
            }
            // The component's name, as the CBOR manifest of the same release names it (`publish --suit`
            // identifies components by name); else the uri's last segment (the spec's [h'00'] ids).
            var name = Manifest.lastSegment(of: uri)
            if i < r.componentNames.count, let id = r.componentNames[i], Manifest.isSafeName(id), Manifest.isImageName(id) { name = id }
            guard Manifest.isSafeName(name), Manifest.isImageName(name), !components.contains(where: { $0.name == name }) else {
                throw .badManifest(field: "suit-install", reason: "component \(i) has no usable name (identifier, or the last segment of \"\(uri)\")")
            }
            components.append(Component(name: name, location: uri, size: size, digests: [ImageDigest(algorithm: .sha256, value: sha256)]))
        }
        let manifest = Manifest(timestamp: Int64(r.sequenceNumber), manufacturer: manufacturer, model: model,
                                firmwareVersion: version, components: components)
        return VerifiedManifest(manifest: manifest, format: .suit, envelope: envelope, signerKid: r.signerKid, algorithm: r.algorithm)
    }

    /// The trusted key the envelope's kid names (any, without a kid) whose algorithm it uses.
    private func pickKey(_ cose: COSESign1View, _ bytes: UnsafeRawBufferPointer) -> Result<(PublicKey, SignatureAlgorithm), ManifestError> {
        guard let algorithm = SignatureAlgorithm(coseID: cose.algorithm) else {
            return .failure(.badSignature(field: "alg", reason: "algorithm \(cose.algorithm) is not supported"))
        }
        let kid = cose.kid.map { Array(UnsafeRawBufferPointer(rebasing: bytes[$0])) }
        return Result { () throws(ManifestError) in
            try ManifestVerifier.pickKey(from: trustedKeys, kid: kid, algorithm: algorithm, kidField: "kid", algField: "alg")
        }
    }

    static func error(_ f: SUITFailure) -> ManifestError {
        let field: String
        switch (f.number, f.kind) {
        case (0, _): field = "\(f.member)"
        case (_, .command): field = "\(f.member): \(SUITVerifier.name(ofCommand: f.number)) (\(f.number))"
        case (_, .parameter): field = "\(f.member): parameter \(SUITVerifier.name(ofParameter: f.number)) (\(f.number))"
        case (_, .member): field = "\(f.member) (key \(f.number))"
        }
        switch f.result {
        case .badSignature: return .badSignature(field: field, reason: "\(f.reason)")
        case .digestMismatch: return .digestMismatch(image: field, reason: "\(f.reason)")
        case .wrongDevice: return .wrongDevice(field: field, expected: "this device's id", found: "\(f.reason)")
        default: return .badManifest(field: field, reason: "\(f.reason)")
        }
    }

    /// The draft's name of a parameter, for error messages.
    static func name(ofParameter number: Int64) -> String {
        switch number {
        case 1: return "vendor-id"
        case 2: return "class-id"
        case 3: return "image-digest"
        case 5: return "component-slot"
        case 12: return "strict-order"
        case 13: return "soft-failure"
        case 14: return "image-size"
        case 18: return "content"
        case 21: return "uri"
        case 22: return "source-component"
        case 23: return "invoke-args"
        case 24: return "device-id"
        default: return number <= -256 ? "custom" : "unknown"
        }
    }

    /// The draft's name of a command, for error messages.
    static func name(ofCommand number: Int64) -> String {
        switch number {
        case 1: return "condition-vendor-identifier"
        case 2: return "condition-class-identifier"
        case 3: return "condition-image-match"
        case 5: return "condition-component-slot"
        case 6: return "condition-check-content"
        case 12: return "directive-set-component-index"
        case 14: return "condition-abort"
        case 15: return "directive-try-each"
        case 18: return "directive-write"
        case 19: return "directive-set-parameters"
        case 20: return "directive-override-parameters"
        case 21: return "directive-fetch"
        case 22: return "directive-copy"
        case 23: return "directive-invoke"
        case 24: return "condition-device-identifier"
        case 31: return "directive-swap"
        case 32: return "directive-run-sequence"
        default: return number <= -256 ? "custom command" : "command"
        }
    }
}

extension SUITRelease.Component {
    /// Checks a file against this component's image-digest and image-size
    /// (SUIT's condition-image-match, run on bytes at hand).
    public func check(file path: String, index: Int) throws(ImageFileError) {
        guard let expected = sha256 else {
            throw .mismatch(.badManifest(field: "component \(index)", reason: "no image-digest to match \(path) against"))
        }
        var hash = OpenSSLSHA256()
        var length: UInt64 = 0
        do {
            try FileSystem.forEachChunk(path) { chunk in
                hash.update(chunk)
                length += UInt64(chunk.count)
            }
        } catch let error as FileSystemError {
            throw .unreadable(error)
        } catch {
            throw .unreadable(FileSystemError(path: path, reason: "\(error)"))
        }
        if let size, size != length {
            throw .mismatch(.digestMismatch(image: path, reason: "\(length) bytes, image-size is \(size) (component \(index))"))
        }
        let digest = hash.finalizeDigest()
        let computed = withUnsafeBytes(of: digest.words) { Array($0) }
        guard constantTimeEquals(computed, expected) else {
            throw .mismatch(.digestMismatch(image: path, reason: "SHA-256 is not the image-digest (component \(index))"))
        }
    }
}
