/// IETF SUIT manifests (draft-ietf-suit-manifest-33; RFC 9019, RFC 9124)
/// beside this project's own CBOR/JSON manifests (issue #14): read in place,
/// with no allocation, by the device and by the Linux tools alike.
///
/// The labels are the draft's IANA section (`Vectors/suit/README.md` has the
/// table).
public enum SUITLabel {
    public static let envelopeTag: UInt64 = 107
    public static let manifestTag: UInt64 = 1070
    // SUIT_Envelope
    public static let authenticationWrapper: Int64 = 2
    public static let manifest: Int64 = 3
    // SUIT_Manifest (16, 20 and 23 are also the envelope's severed members)
    public static let manifestVersion: Int64 = 1
    public static let sequenceNumber: Int64 = 2
    public static let common: Int64 = 3
    public static let referenceURI: Int64 = 4
    public static let validate: Int64 = 7
    public static let load: Int64 = 8
    public static let invoke: Int64 = 9
    public static let payloadFetch: Int64 = 16
    public static let install: Int64 = 20
    public static let text: Int64 = 23
    // SUIT_Common
    public static let components: Int64 = 2
    public static let sharedSequence: Int64 = 4
    // SUIT_Digest algorithm
    public static let sha256: Int64 = -16
}

/// The words of a refusal: kept on Linux, where they become the error
/// message; on the microcontroller (Embedded Swift) they compile to nothing,
/// so the strings cost no flash: the device reports the result code.
public struct SUITText: ExpressibleByStringLiteral, Sendable, CustomStringConvertible {
    #if hasFeature(Embedded)
    @inline(__always) public init(stringLiteral value: StaticString) {}
    @inline(__always) public init(_ value: StaticString) {}
    public var description: String { "" }
    #else
    public let text: StaticString
    public init(stringLiteral value: StaticString) { text = value }
    public init(_ value: StaticString) { text = value }
    public var description: String { "\(text)" }
    #endif
}

/// Why a SUIT envelope was refused: the result, the member (or command)
/// it is about, and why.
public struct SUITFailure: Error, Equatable, Sendable {
    public let result: ResultCode
    /// The envelope or manifest member, e.g. "suit-authentication-wrapper", "suit-install".
    public let member: SUITText
    public let reason: SUITText
    /// The command, parameter or member number a refusal names (0: none).
    public let number: Int64
    public let kind: Kind

    public enum Kind: UInt8, Sendable { case command, parameter, member }

    public init(_ result: ResultCode, _ member: SUITText, _ reason: SUITText, number: Int64 = 0, kind: Kind = .command) {
        (self.result, self.member, self.reason, self.number, self.kind) = (result, member, reason, number, kind)
    }

    public static func == (a: SUITFailure, b: SUITFailure) -> Bool {
        a.result == b.result && a.number == b.number && a.kind == b.kind
    }

    static func malformed(_ member: SUITText, _ reason: SUITText, number: Int64 = 0, kind: Kind = .command) -> SUITFailure {
        SUITFailure(.badManifest, member, reason, number: number, kind: kind)
    }
}

/// A SUIT_Envelope (tag 107, optional) read in place: the authentication
/// wrapper's digest and COSE_Sign1 (detached payload: the SUIT_Digest),
/// the bstr-wrapped manifest, and the severed members. Nothing in the
/// manifest is read here: `authenticate` first.
public struct SUITEnvelopeView {
    /// The COSE_Sign1 whose (detached) payload is the encoded SUIT_Digest.
    public let cose: COSESign1View
    public let digestAlgorithm: Int64
    /// The digest bytes of the SUIT_Digest.
    public let digest: Range<Int>
    /// The manifest's bstr item, head included: what the digest covers.
    public let manifestItem: Range<Int>
    /// The manifest's content (a SUIT_Manifest map).
    public let manifest: Range<Int>
    /// Severed members' bstr items, head included (their digests cover that).
    public let severedPayloadFetch: Range<Int>?
    public let severedInstall: Range<Int>?
    public let severedText: Range<Int>?

    /// Whether `bytes` look like a SUIT envelope (tag 107, or a map whose
    /// first key is the authentication wrapper): how `verify` tells it from
    /// a COSE_Sign1 (tag 18) or JWS (`{`) manifest.
    public static func looksLikeEnvelope(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 3 else { return false }
        if bytes[0] == 0xD8, bytes[1] == UInt8(SUITLabel.envelopeTag) { return true }
        return bytes[0] & 0xE0 == 0xA0 && bytes[1] == UInt8(SUITLabel.authenticationWrapper)
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<SUITEnvelopeView, SUITFailure> {
        let member: SUITText = "SUIT_Envelope"
        var whole = CBORReader(bytes)
        if let f = whole.skip() { return .failure(.malformed(member, SUITText(f.description))) }
        guard whole.isAtEnd else { return .failure(.malformed(member, SUITText(CBORReader.Failure.trailingBytes.description))) }
        var r = CBORReader(bytes)
        var head = r.next()
        if case .success(.tag(let tag)) = head {
            guard tag == SUITLabel.envelopeTag else { return .failure(.malformed(member, "expected CBOR tag 107 or none")) }
            head = r.next()
        }
        guard case .success(.map(let count)) = head else { return .failure(.malformed(member, "expected a map")) }
        var wrapper: Range<Int>?, manifestItem: Range<Int>?, manifest: Range<Int>?
        var fetch: Range<Int>?, install: Range<Int>?, text: Range<Int>?
        for _ in 0..<count {
            let key = r.next()
            let valueStart = r.offset
            guard case .success(let item) = r.next() else { return .failure(.malformed(member, "truncated member")) }
            if case .success(.text) = key {
                // An integrated payload (text key): not used by this updater.
                r = CBORReader(bytes, range: valueStart..<r.end)
                if r.skip() != nil { return .failure(.malformed(member, "bad integrated payload")) }
                continue
            }
            guard case .success(let k) = key, let label = k.int64 else {
                return .failure(.malformed(member, "member keys must be integers or text"))
            }
            guard case .bytes(let content) = item else { return .failure(.malformed(member, "members must be byte strings")) }
            let itemRange = valueStart..<r.offset
            func once(_ slot: inout Range<Int>?) -> Bool {
                guard slot == nil else { return false }
                slot = itemRange
                return true
            }
            let fresh: Bool
            switch label {
            case SUITLabel.authenticationWrapper: fresh = wrapper == nil; wrapper = content
            case SUITLabel.manifest: fresh = once(&manifestItem); manifest = content
            case SUITLabel.payloadFetch: fresh = once(&fetch)
            case SUITLabel.install: fresh = once(&install)
            case SUITLabel.text: fresh = once(&text)
            default: return .failure(.malformed(member, "unknown envelope member"))
            }
            guard fresh else { return .failure(.malformed(member, "a member is repeated")) }
        }
        guard let wrapper else { return .failure(.malformed("suit-authentication-wrapper", "missing")) }
        guard let manifestItem, let manifest else { return .failure(.malformed("suit-manifest", "missing")) }

        // SUIT_Authentication = [bstr .cbor SUIT_Digest, + bstr .cbor SUIT_Authentication_Block]
        let auth: SUITText = "suit-authentication-wrapper"
        var a = CBORReader(bytes, range: wrapper)
        var check = a
        guard check.skip() == nil, check.isAtEnd, case .success(.array(let blocks)) = a.next(), blocks >= 2 else {
            return .failure(.malformed(auth, "expected an array of the digest and a signature"))
        }
        guard case .success(.bytes(let digestBytes)) = a.next() else { return .failure(.malformed(auth, "expected the bstr-wrapped SUIT_Digest")) }
        guard case .success(let (algorithm, digest)) = readDigest(bytes, digestBytes, member: auth) else {
            return .failure(.malformed(auth, "the SUIT_Digest is malformed"))
        }
        guard case .success(.bytes(let block)) = a.next() else { return .failure(.malformed(auth, "expected a bstr-wrapped COSE_Sign1")) }
        // Only the first authentication block is checked (one trust anchor).
        for _ in 2..<blocks {
            guard case .success(.bytes) = a.next() else { return .failure(.malformed(auth, "authentication blocks must be byte strings")) }
        }
        let cose: COSESign1View
        switch COSESign1View.parse(bytes, range: block, detachedPayload: digestBytes) {
        case .failure(let f):
            return .failure(f.part.isSignatureError ? SUITFailure(.badSignature, auth, SUITText(f.reason)) : .malformed(auth, SUITText(f.reason)))
        case .success(let v): cose = v
        }
        return .success(SUITEnvelopeView(cose: cose, digestAlgorithm: algorithm, digest: digest, manifestItem: manifestItem,
                                         manifest: manifest, severedPayloadFetch: fetch, severedInstall: install,
                                         severedText: text))
    }

    /// A SUIT_Digest = [algorithm, bstr] in `range`; only SHA-256 is accepted.
    static func readDigest(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, member: SUITText)
        -> Result<(Int64, Range<Int>), SUITFailure> {
        var d = CBORReader(bytes, range: range)
        guard case .success(.array(2)) = d.next(), case .success(let alg) = d.next(), let algorithm = alg.int64,
              case .success(.bytes(let digest)) = d.next(), d.isAtEnd
        else { return .failure(.malformed(member, "expected SUIT_Digest [algorithm, bstr]")) }
        guard algorithm == SUITLabel.sha256, digest.count == 32 else {
            return .failure(.malformed(member, "only SHA-256 (-16) digests are supported"))
        }
        return .success((algorithm, digest))
    }

    /// The authentication, in SUIT's order: the signature over the digest
    /// (the kid, when given, must name the anchor; the algorithm must be
    /// its), then the digest over the bstr-wrapped manifest. Nothing of the
    /// manifest is read before both hold.
    public func authenticate<H: SHA256Engine, V: ClassicSignatureVerifier>(
        _ engine: H.Type, classic: V, envelope: UnsafeRawBufferPointer, trust: TrustAnchor
    ) -> SUITFailure? {
        guard DeviceVerifier.verifySignature(engine, classic: classic, cose: cose, envelope: envelope, trust: trust) else {
            return SUITFailure(.badSignature, "suit-authentication-wrapper", "the signature does not hold under the trusted key")
        }
        return manifestDigestHolds(engine, envelope: envelope) ? nil
            : SUITFailure(.digestMismatch, "suit-manifest", "the manifest does not match the signed digest")
    }

    /// SHA-256 over the manifest's bstr item (head included) against the signed digest.
    public func manifestDigestHolds<H: SHA256Engine>(_: H.Type, envelope: UnsafeRawBufferPointer) -> Bool {
        Self.digestHolds(H.self, envelope, item: manifestItem, digest: digest)
    }

    static func digestHolds<H: SHA256Engine>(_: H.Type, _ bytes: UnsafeRawBufferPointer, item: Range<Int>, digest: Range<Int>) -> Bool {
        var h = H()
        h.update(UnsafeRawBufferPointer(rebasing: bytes[item]))
        let computed = h.finalizeDigest()
        return withUnsafeBytes(of: computed.words) { constantTimeEquals($0, UnsafeRawBufferPointer(rebasing: bytes[digest])) }
    }
}
