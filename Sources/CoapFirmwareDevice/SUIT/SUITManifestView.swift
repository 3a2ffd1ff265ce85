/// A SUIT_Manifest read in place, after `SUITEnvelopeView.authenticate`:
/// version 1, the sequence number, the common block (components, shared
/// sequence) and the command sequences, a severed one taken from the
/// envelope once its digest holds. The commands are not interpreted here
/// (`SUITInterpreter`), but every sequence is checked to be a well-formed
/// command list, so `verify` can say "authentic and well-formed".
public struct SUITManifestView {
    public static let maxComponents = 4

    public private(set) var sequenceNumber: UInt64 = 0
    public private(set) var componentCount = 0
    /// The components array (each a SUIT_Component_Identifier).
    public private(set) var components: Range<Int> = 0..<0
    /// Sequences' contents (a flat command list each), nil when absent.
    public private(set) var sharedSequence: Range<Int>?
    public private(set) var payloadFetch: Range<Int>?
    public private(set) var install: Range<Int>?
    public private(set) var validate: Range<Int>?
    public private(set) var load: Range<Int>?
    public private(set) var invoke: Range<Int>?
    /// The text map's content, nil when absent (or severed and not delivered).
    public private(set) var text: Range<Int>?
    /// Whether the install or payload-fetch sequence was severed and not
    /// delivered with the envelope: it cannot run, so nothing can be installed.
    public private(set) var installMissing = false
    public private(set) var payloadFetchMissing = false

    public init() {}

    public static func parse<H: SHA256Engine>(_: H.Type, envelope e: SUITEnvelopeView, in bytes: UnsafeRawBufferPointer)
        -> Result<SUITManifestView, SUITFailure> {
        let member: SUITText = "suit-manifest"
        var v = SUITManifestView()
        var r = CBORReader(bytes, range: e.manifest)
        var head = r.next()
        if case .success(.tag(SUITLabel.manifestTag)) = head { head = r.next() }
        guard case .success(.map(let count)) = head else { return .failure(.malformed(member, "expected a map")) }
        var seen: UInt32 = 0
        var version: UInt64?
        var sequence: UInt64?
        var common: Range<Int>?
        var fetchDelivered = false, installDelivered = false, textDelivered = false
        for _ in 0..<count {
            guard case .success(let k) = r.next(), let label = k.int64 else {
                return .failure(.malformed(member, "manifest keys must be integers"))
            }
            if (0..<32).contains(label) {
                let bit = UInt32(1) << UInt32(label)
                guard seen & bit == 0 else { return .failure(.malformed(member, "a manifest member is repeated", number: label, kind: .member)) }
                seen |= bit
            }
            let valueStart = r.offset
            guard case .success(let item) = r.next() else { return .failure(.malformed(member, "truncated member")) }
            r = CBORReader(bytes, range: valueStart..<r.end)
            if r.skip() != nil { return .failure(.malformed(member, "malformed member", number: label, kind: .member)) }
            switch (label, item) {
            case (SUITLabel.manifestVersion, .unsigned(let n)): version = n
            case (SUITLabel.sequenceNumber, .unsigned(let n)): sequence = n
            case (SUITLabel.common, .bytes(let content)): common = content
            case (SUITLabel.referenceURI, .text): break
            case (SUITLabel.validate, .bytes(let content)): v.validate = content
            case (SUITLabel.load, .bytes(let content)): v.load = content
            case (SUITLabel.invoke, .bytes(let content)): v.invoke = content
            case (SUITLabel.payloadFetch, _), (SUITLabel.install, _), (SUITLabel.text, _):
                // Inline (bstr), or severed: a SUIT_Digest of the envelope member.
                let severedItem = label == SUITLabel.payloadFetch ? e.severedPayloadFetch
                    : label == SUITLabel.install ? e.severedInstall : e.severedText
                var content: Range<Int>?
                switch item {
                case .bytes(let inline):
                    guard severedItem == nil else {
                        return .failure(.malformed(memberName(label), "delivered severed, but the manifest holds it inline", number: label, kind: .member))
                    }
                    content = inline
                case .array(2):
                    switch SUITEnvelopeView.readDigest(bytes, valueStart..<r.offset, member: memberName(label)) {
                    case .failure(let f): return .failure(f)
                    case .success(let (_, digest)):
                        if let severedItem {
                            guard SUITEnvelopeView.digestHolds(H.self, bytes, item: severedItem, digest: digest) else {
                                return .failure(SUITFailure(.digestMismatch, memberName(label), "the severed member does not match its digest", number: label, kind: .member))
                            }
                            var s = CBORReader(bytes, range: severedItem)
                            if case .success(.bytes(let delivered)) = s.next() { content = delivered }
                        }
                    }
                default:
                    return .failure(.malformed(memberName(label), "expected a bstr or a SUIT_Digest", number: label, kind: .member))
                }
                switch label {
                case SUITLabel.payloadFetch:
                    v.payloadFetch = content; fetchDelivered = severedItem != nil; v.payloadFetchMissing = content == nil
                case SUITLabel.install: v.install = content; installDelivered = severedItem != nil; v.installMissing = content == nil
                default: v.text = content; textDelivered = severedItem != nil
                }
            default:
                return .failure(.malformed(member, "unknown or mistyped manifest member", number: label, kind: .member))
            }
        }
        guard r.isAtEnd else { return .failure(.malformed(member, "bytes after the manifest map")) }
        // A severed member the manifest does not account for is not authenticated.
        if e.severedPayloadFetch != nil && !fetchDelivered { return .failure(.malformed("suit-payload-fetch", "delivered but not in the manifest")) }
        if e.severedInstall != nil && !installDelivered { return .failure(.malformed("suit-install", "delivered but not in the manifest")) }
        if e.severedText != nil && !textDelivered { return .failure(.malformed("suit-text", "delivered but not in the manifest")) }
        guard version == 1 else { return .failure(.malformed("suit-manifest-version", "only version 1 is supported", number: 1, kind: .member)) }
        guard let sequence else { return .failure(.malformed("suit-manifest-sequence-number", "missing", number: 2, kind: .member)) }
        v.sequenceNumber = sequence
        guard let common else { return .failure(.malformed("suit-common", "missing", number: 3, kind: .member)) }

        // SUIT_Common = {2: components, 4: shared sequence}
        var c = CBORReader(bytes, range: common)
        var check = c
        guard check.skip() == nil, check.isAtEnd, case .success(.map(let commonCount)) = c.next() else {
            return .failure(.malformed("suit-common", "expected a map"))
        }
        var commonSeen: UInt8 = 0
        for _ in 0..<commonCount {
            guard case .success(let k) = c.next(), let label = k.int64 else { return .failure(.malformed("suit-common", "keys must be integers")) }
            if (0..<8).contains(label) {
                guard commonSeen & (1 << UInt8(label)) == 0 else { return .failure(.malformed("suit-common", "a member is repeated", number: label, kind: .member)) }
                commonSeen |= 1 << UInt8(label)
            }
            let valueStart = c.offset
            guard case .success(let item) = c.next() else { return .failure(.malformed("suit-common", "truncated")) }
            switch (label, item) {
            case (SUITLabel.components, .array(let n)):
                guard n >= 1, n <= maxComponents else { return .failure(.malformed("suit-components", "1 to 4 components are supported")) }
                v.componentCount = n
                c = CBORReader(bytes, range: valueStart..<c.end)
                if c.skip() != nil { return .failure(.malformed("suit-components", "malformed")) }
                v.components = valueStart..<c.offset
                continue
            case (SUITLabel.sharedSequence, .bytes(let content)):
                v.sharedSequence = content
            default:
                return .failure(.malformed("suit-common", "unknown or mistyped member", number: label, kind: .member))
            }
        }
        guard v.componentCount > 0 else { return .failure(.malformed("suit-components", "missing")) }
        // Every sequence a well-formed command list (interpretation comes later).
        func form(_ sequence: Range<Int>?, _ name: SUITText) -> SUITFailure? {
            guard let sequence else { return nil }
            return SUITInterpreter.checkForm(bytes, sequence, member: name, depth: 0)
        }
        if let f = form(v.sharedSequence, "suit-shared-sequence") ?? form(v.payloadFetch, "suit-payload-fetch")
            ?? form(v.install, "suit-install") ?? form(v.validate, "suit-validate") ?? form(v.load, "suit-load")
            ?? form(v.invoke, "suit-invoke") { return .failure(f) }
        return .success(v)
    }

    /// SUIT's anti-rollback rule: a sequence number lower than the installed
    /// one is a rollback, the same one is the installed release (nil: newer).
    public static func freshness(sequence: UInt64, installed: UInt64?) -> ResultCode? {
        guard let installed else { return nil }
        if sequence < installed { return .rollback }
        return sequence == installed ? .upToDate : nil
    }

    static func memberName(_ label: Int64) -> SUITText {
        switch label {
        case SUITLabel.payloadFetch: return "suit-payload-fetch"
        case SUITLabel.install: return "suit-install"
        default: return "suit-text"
        }
    }
}
