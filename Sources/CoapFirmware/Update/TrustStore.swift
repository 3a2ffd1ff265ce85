import CoapFirmwareCore
import CoapFirmwareDevice

/// A device's trust set (issue #12, key rollover): its `--trust` anchors plus
/// the keys it adopted from `key-info`, minus the retired kids.
///
/// Rules, applied to a release only once it is fully verified and installed
/// (its signature under the trust set of the time, every image digest), and
/// once for each installed release:
/// - **Retire.** If an adopted key S signed it, the manufacturer has moved to
///   S: every other key of the set is retired, the anchors and other adopted
///   keys included, but for the key this release announces (unless that is
///   an anchor). So a leaked old
///   key stops working, and so does any key it got adopted meanwhile (an
///   attacker's release signed with the old key, announcing the attacker's
///   key), which a rule of "keys older than S" would keep. A retired kid is
///   refused even when `--trust` names it again.
/// - **Adopt.** The key its `key-info` announces joins the set, unless it is
///   retired or already trusted.
///
/// A release signed by an anchor retires nothing: a device provisioned
/// after a rollover gets the new key as its anchor instead of the old one.
/// `key-info` in anything that failed validation never reaches these rules.
/// `applied` records the installed release the rules last ran on (the
/// SHA-256 of its envelope): they run at the start of an update only for an
/// installed release they have not seen, so a process killed between the
/// install switch and the trust file's rename adopts on its next run, while
/// an anchor added later with `--trust` is not retired by a release
/// installed before it (a `trust.json` written before `applied` existed gets
/// the rules once more, at the first start of this version). A set that
/// cannot be saved is still used by the run that made it. `<state>/trust.json`
/// is replaced atomically (write, fsync, rename): a kill leaves the old set
/// or the new one.
public struct TrustStore: Sendable {
    public struct Adopted: Sendable {
        public let key: PublicKey
        /// The version of the release whose `key-info` announced it.
        public let announcedBy: String
    }

    public let anchors: [PublicKey]
    public private(set) var adopted: [Adopted]
    public private(set) var retired: [[UInt8]]
    /// The SHA-256 (hex) of the installed envelope the rules last ran on.
    public private(set) var applied: String?

    public static func path(state root: String) -> String { "\(root)/trust.json" }

    /// What a device verifies with: anchors and adopted keys that are not retired.
    public var keys: [PublicKey] {
        (anchors + adopted.map(\.key)).filter { key in !retired.contains(key.kid) }
            .reduce(into: [PublicKey]()) { set, key in if !set.contains(where: { $0.kid == key.kid }) { set.append(key) } }
    }

    /// Every key the set ever held, retired ones included: for recognising a
    /// release this device or mirror had before (which folders a mirror
    /// keeps), never for accepting one.
    public var everKnownKeys: [PublicKey] { anchors + adopted.map(\.key) }

    public init(anchors: [PublicKey], adopted: [Adopted] = [], retired: [[UInt8]] = [], applied: String? = nil) {
        (self.anchors, self.adopted, self.retired, self.applied) = (anchors, adopted, retired, applied)
    }

    /// The anchors and what `<state>/trust.json` records (nothing yet if it is missing).
    public static func load(state root: String, anchors: [PublicKey]) throws(ManifestError) -> TrustStore {
        let path = path(state: root)
        guard FileSystem.exists(path) else { return TrustStore(anchors: anchors) }
        func fail(_ why: String) -> ManifestError { .badManifest(field: "trust.json", reason: "\(path): \(why)") }
        let json: JSONValue
        do {
            json = try JSONParser.parse(try FileSystem.read(path, limit: 1 << 20, followLink: false))
        } catch let error as FileSystemError {
            throw fail(error.reason)
        } catch {
            throw fail("\(error)")
        }
        guard case .object(let m) = json, case .array(let adoptedList)? = m.first(where: { $0.key == "adopted" })?.value,
              case .array(let retiredList)? = m.first(where: { $0.key == "retired" })?.value
        else { throw fail("expected {\"adopted\": [...], \"retired\": [...]}") }
        var store = TrustStore(anchors: anchors)
        for item in adoptedList {
            guard case .object(let a) = item, case .string(let pem)? = a.first(where: { $0.key == "key" })?.value,
                  case .string(let version)? = a.first(where: { $0.key == "announcedBy" })?.value
            else { throw fail("bad adopted entry") }
            do {
                store.adopted.append(Adopted(key: try PublicKey(fileBytes: Array(pem.utf8)), announcedBy: version))
            } catch {
                throw fail("adopted key: \(error.description)")
            }
        }
        for item in retiredList {
            guard case .string(let hex) = item, let kid = Hex.decodeLowercase(hex), kid.count == 8 else { throw fail("bad retired kid") }
            store.retired.append(kid)
        }
        // Absent in a file written before the field existed: the rules run once more.
        if let value = m.first(where: { $0.key == "applied" })?.value {
            guard case .string(let hex) = value, hex.utf8.count == 64, Hex.decodeLowercase(hex) != nil
            else { throw fail("bad applied digest") }
            store.applied = hex
        }
        return store
    }

    public var json: JSONValue {
        .object([
            ("adopted", .array(adopted.map { a in
                .object([("kid", .string(Hex.encode(a.key.kid))), ("announcedBy", .string(a.announcedBy)),
                         ("key", .string(String(decoding: (try? a.key.fileBytes()) ?? [], as: UTF8.self)))])
            })),
            ("retired", .array(retired.map { .string(Hex.encode($0)) })),
        ] + (applied.map { [("applied", JSONValue.string($0))] } ?? []))
    }

    /// `status --json`'s view: each kid with `anchor`, `adopted` or `retired`.
    public var statusJSON: JSONValue {
        var rows: [JSONValue] = []
        var seen: [[UInt8]] = []
        func add(_ kid: [UInt8], _ status: String, _ extra: [(key: String, value: JSONValue)] = []) {
            guard !seen.contains(kid) else { return }
            seen.append(kid)
            rows.append(.object([("kid", .string(Hex.encode(kid))), ("status", .string(status))] + extra))
        }
        for kid in retired { add(kid, "retired") }
        for a in adopted { add(a.key.kid, "adopted", [("announcedBy", .string(a.announcedBy))]) }
        for key in anchors { add(key.kid, "anchor") }
        return .array(rows)
    }

    /// Whether the rules already ran on the installed envelope with this SHA-256 (hex).
    public func hasApplied(_ envelopeDigest: String) -> Bool { applied == envelopeDigest }

    /// Applies the rules to an installed release, whose envelope has the
    /// SHA-256 `envelopeDigest` (hex); true when the set changed.
    @discardableResult
    public mutating func apply(installed verified: VerifiedManifest, envelopeDigest: String) -> Bool {
        var changed = applied != envelopeDigest
        applied = envelopeDigest
        let signer = verified.signerKid
        let announced = verified.manifest.keyInfo.flatMap { try? PublicKey(keyInfo: $0) }
        // The announced key is spared only as a key still to come: an anchor announced
        // again (a wrong --key-info, or a leaked old key) is retired with the rest.
        let spared = announced.flatMap { key in anchors.contains { $0.kid == key.kid } ? nil : key.kid }
        if adopted.contains(where: { $0.key.kid == signer }) {
            for kid in anchors.map(\.kid) + adopted.map(\.key.kid)
            where kid != signer && kid != spared && !retired.contains(kid) {
                retired.append(kid)
                changed = true
            }
        }
        if let key = announced, !retired.contains(key.kid), !keys.contains(where: { $0.kid == key.kid }) {
            adopted.append(Adopted(key: key, announcedBy: verified.manifest.firmwareVersion.description))
            changed = true
        }
        return changed
    }

    public func save(state root: String) throws(FileSystemError) {
        try FileSystem.atomicWrite(Self.path(state: root), JSONWriter.write(json), mode: 0o600)
    }
}
