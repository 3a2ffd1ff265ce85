import CoapFirmwareCore
import CoapFirmwareDevice

/// A device's trust set (issue #12, key rollover): its `--trust` anchors plus
/// the keys it adopted from `key-info`, minus the retired kids.
///
/// Rules, applied to a release only once it is fully verified and installed
/// (its signature under the trust set of the time, every image digest):
/// - **Retire.** If an adopted key signed it, every key older than that one
///   (the anchors, and keys adopted before it) is retired: a manufacturer that
///   signs with its new key has moved on, and a leaked old key must stop
///   working. A retired kid is refused even when `--trust` names it again.
/// - **Adopt.** The key its `key-info` announces joins the set, unless it is
///   retired or already trusted.
///
/// `key-info` in anything that failed validation never reaches these rules.
/// They are idempotent and run again at the start of each update on the
/// installed manifest (re-verified under the current set), so a process
/// killed between the install switch and the trust file's rename adopts on
/// its next run. `<state>/trust.json` is replaced atomically (write, fsync,
/// rename): a kill leaves the old set or the new one.
public struct TrustStore: Sendable {
    public struct Adopted: Sendable {
        public let key: PublicKey
        /// The version of the release whose `key-info` announced it.
        public let announcedBy: String
    }

    public let anchors: [PublicKey]
    public private(set) var adopted: [Adopted]
    public private(set) var retired: [[UInt8]]

    public static func path(state root: String) -> String { "\(root)/trust.json" }

    /// What a device verifies with: anchors and adopted keys that are not retired.
    public var keys: [PublicKey] {
        (anchors + adopted.map(\.key)).filter { key in !retired.contains(key.kid) }
            .reduce(into: [PublicKey]()) { set, key in if !set.contains(where: { $0.kid == key.kid }) { set.append(key) } }
    }

    public init(anchors: [PublicKey], adopted: [Adopted] = [], retired: [[UInt8]] = []) {
        (self.anchors, self.adopted, self.retired) = (anchors, adopted, retired)
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
        return store
    }

    public var json: JSONValue {
        .object([
            ("adopted", .array(adopted.map { a in
                .object([("kid", .string(Hex.encode(a.key.kid))), ("announcedBy", .string(a.announcedBy)),
                         ("key", .string(String(decoding: (try? a.key.fileBytes()) ?? [], as: UTF8.self)))])
            })),
            ("retired", .array(retired.map { .string(Hex.encode($0)) })),
        ])
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

    /// Applies the rules to an installed release; true when the set changed.
    @discardableResult
    public mutating func apply(installed verified: VerifiedManifest) -> Bool {
        var changed = false
        let signer = verified.signerKid
        if let index = adopted.firstIndex(where: { $0.key.kid == signer }) {
            let older = anchors.map(\.kid) + adopted.prefix(index).map(\.key.kid)
            for kid in older where kid != signer && !retired.contains(kid) {
                retired.append(kid)
                changed = true
            }
        }
        if let info = verified.manifest.keyInfo, let key = try? PublicKey(keyInfo: info),
           !retired.contains(key.kid), !keys.contains(where: { $0.kid == key.kid }) {
            adopted.append(Adopted(key: key, announcedBy: verified.manifest.firmwareVersion.description))
            changed = true
        }
        return changed
    }

    public func save(state root: String) throws(FileSystemError) {
        try FileSystem.atomicWrite(Self.path(state: root), JSONWriter.write(json), mode: 0o600)
    }
}
