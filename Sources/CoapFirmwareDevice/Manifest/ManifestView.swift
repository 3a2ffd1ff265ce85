/// A CBOR manifest payload (SPEC §2) read in place: the one set of manifest
/// rules. The device runs it on the payload of an envelope whose signature
/// held; the host builds its `Manifest` from it, and spells JSON manifests
/// as CBOR first so that both forms meet these same rules.
///
/// No allocation: strings are byte ranges into the payload, lists have a
/// fixed capacity (`maxImages`, `maxDigests`). Checks run in SPEC order,
/// and a refusal names the field at fault.
public struct ManifestView {
    public static let maxImages = 4
    public static let maxDigests = 3
    /// 0000-01-01T00:00:00Z ... 9999-12-31T23:59:59Z, in seconds since 1970.
    public static let timestampRange: ClosedRange<Int64> = -62_167_219_200...253_402_300_799

    /// Why a payload was refused: where, and a short reason.
    public struct Failure: Error, Sendable, Equatable {
        public let path: FieldPath
        public let reason: StaticString
        public static func == (a: Failure, b: Failure) -> Bool { a.path == b.path }
    }

    /// One `{digestAlgo, hash}` entry; `value` is the hash's byte range.
    public struct Digest: Sendable {
        public var algorithm: DigestAlgorithm = .sha256
        public var value: Range<Int> = 0..<0
    }

    /// One image to install.
    public struct Image: Sendable {
        /// The component name; nil for a single image, which is named after
        /// its location's last segment (SPEC §6).
        public var name: Range<Int>? = nil
        public var location: Range<Int> = 0..<0
        public var size: UInt64 = 0
        public var digestCount = 0
        public var digests = InlineArray<3, Digest>(repeating: Digest())
    }

    /// A `key-info` COSE_Key: its curve and coordinate ranges.
    public struct KeyInfo: Sendable {
        public var curve: KeyInfoCurve
        public var x: Range<Int>
        /// P-256 only.
        public var y: Range<Int>?
    }

    public var timestamp: Int64 = 0
    public var manufacturer: Range<Int> = 0..<0
    public var model: Range<Int> = 0..<0
    public var version = FirmwareVersion(major: 0, minor: 0, revision: 0)
    public var imageCount = 0
    public var images = InlineArray<4, Image>(repeating: Image())
    /// Whether the images came from `components` (a split image).
    public var isSplit = false
    public var keyInfo: KeyInfo? = nil
    /// The `critical` array item, when present (every entry is a known key).
    public var critical: Range<Int>? = nil

    public init() {}

    /// Sum of the image sizes (checked not to overflow when read).
    public var totalSize: UInt64 {
        var total: UInt64 = 0
        for i in 0..<imageCount { total &+= images[i].size }
        return total
    }

    /// Reads and checks a CBOR manifest payload.
    public static func read(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil) -> Result<ManifestView, Failure> {
        var view = ManifestView()
        if let failure = view.read(bytes, range: range) { return .failure(failure) }
        return .success(view)
    }

    /// Reads into this view in place (no copy of the view on the stack).
    public mutating func read(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil) -> Failure? {
        self = ManifestView()
        return parse(bytes, range ?? 0..<bytes.count)
    }

    /// The value ranges of the root map's keys, index = key - 1.
    struct Root {
        var ranges = InlineArray<11, Range<Int>>(repeating: 0..<0)
        var present: UInt16 = 0
        func has(_ f: ManifestField) -> Bool { present & (1 << UInt16(f.rawValue)) != 0 }
        func range(_ f: ManifestField) -> Range<Int> { ranges[Int(f.rawValue) - 1] }
    }

    /// One well-formed item, nothing after it, a map without repeated keys.
    static func scanRoot(_ b: UnsafeRawBufferPointer, _ whole: Range<Int>) -> Result<Root, Failure> {
        var check = CBORReader(b, range: whole)
        if let f = check.skip() { return .failure(MapScan.fail(.manifest, f.description)) }
        guard check.isAtEnd else { return .failure(MapScan.fail(.manifest, "bytes after the manifest")) }
        var r = CBORReader(b, range: whole)
        guard case .success(.map(let count)) = r.next() else { return .failure(MapScan.fail(.manifest, "expected map")) }
        var root = Root()
        let keys = ManifestField.manifestVersion.rawValue...ManifestField.critical.rawValue
        if let f = MapScan.entries(b, &r, count: count, path: .manifest, keys: keys, store: { key, range in
            root.ranges[Int(key) - 1] = range
            root.present |= 1 << UInt16(key)
        }) { return .failure(f) }
        return .success(root)
    }

    private mutating func parse(_ b: UnsafeRawBufferPointer, _ whole: Range<Int>) -> Failure? {
        let root: Root
        switch Self.scanRoot(b, whole) {
        case .failure(let f): return f
        case .success(let r): root = r
        }
        func fail(_ f: ManifestField, _ reason: StaticString) -> Failure { MapScan.fail(f, reason) }
        func required(_ f: ManifestField) -> Failure? { root.has(f) ? nil : fail(f, "required field is missing") }

        // Critical keys first: what this device cannot fully understand is refused before anything else is read.
        if root.has(.critical) {
            critical = root.range(.critical)
            var c = CBORReader(b, range: root.range(.critical))
            guard case .success(.array(let n)) = c.next() else { return fail(.critical, "expected array") }
            for _ in 0..<n {
                guard case .success(.unsigned(let k)) = c.next(), ManifestField(rawValue: Int64(clamping: k)) != nil else {
                    return fail(.critical, "lists a key this device does not understand")
                }
            }
        }
        if let f = required(.manifestVersion) { return f }
        guard let versionField = MapScan.text(b, root.range(.manifestVersion)) else { return fail(.manifestVersion, "expected text string") }
        guard bytesEqual(b, versionField, "1.0") else { return fail(.manifestVersion, "unsupported version (this device reads \"1.0\")") }

        if let f = required(.timestamp) { return f }
        var t = CBORReader(b, range: root.range(.timestamp))
        guard case .success(.tag(1)) = t.next() else { return fail(.timestamp, "expected tag 1 (epoch seconds)") }
        guard case .success(let seconds) = t.next(), let value = seconds.int64 else {
            return fail(.timestamp, "tag 1 must hold an integer number of seconds")
        }
        // What a device cannot record (RFC 3339 has four-digit years) it must not install.
        guard Self.timestampRange.contains(value) else { return fail(.timestamp, "outside the years 0000 to 9999") }
        timestamp = value

        for isModel in 0..<2 {
            let field: ManifestField = isModel == 1 ? .model : .manufacturer
            if let f = required(field) { return f }
            guard let text = MapScan.text(b, root.range(field)) else { return fail(field, "expected text string") }
            guard !text.isEmpty else { return fail(field, "must not be empty") }
            if field == .manufacturer { manufacturer = text } else { model = text }
        }

        if let f = required(.firmwareVersion) { return f }
        guard let versionText = MapScan.text(b, root.range(.firmwareVersion)) else { return fail(.firmwareVersion, "expected text string") }
        guard let version = FirmwareVersion(bytes: UnsafeRawBufferPointer(rebasing: b[versionText])) else {
            return fail(.firmwareVersion, "not major.minor.revision")
        }
        self.version = version

        if root.has(.keyInfo) {
            switch Self.readKeyInfo(b, root.range(.keyInfo)) {
            case .failure(let f): return f
            case .success(let key): keyInfo = key
            }
        }
        if let f = root.has(.components) ? readComponents(b, root) : readSingleImage(b, root) { return f }

        var total: UInt64 = 0
        for i in 0..<imageCount {
            let (sum, overflow) = total.addingReportingOverflow(images[i].size)
            guard !overflow else { return fail(.components, "image sizes overflow 64 bits") }
            total = sum
        }
        return nil
    }
}
