/// A CBOR manifest (SPEC §2) read in place for the device: no allocation,
/// strings are byte ranges into the payload, lists have fixed capacity.
/// It applies the same rules, in the same order and naming the same fields,
/// as `Manifest(cbor:)` on Linux; `ManifestViewTests` holds the two to
/// identical verdicts on every vector and fuzz-corpus input.
public struct ManifestView {
    public static let maxImages = 4
    public static let maxDigests = 3

    /// Where a refusal points: a manifest field, optionally inside a
    /// component or digest entry (rendered like `components[1].size`).
    public struct FieldPath: Sendable, Equatable {
        public enum Member: UInt8, Sendable {
            case none, name, location, size, commitHash, digestAlgo, hash, unknownKey
        }
        /// nil: the manifest as a whole.
        public var field: ManifestField?
        public var component: Int? = nil
        public var member: Member = .none
        public var digest: Int? = nil
        public var digestMember: Member = .none
        public var unknownKey: Int64? = nil
        /// A repeated key that is not a small integer: its item and bytes.
        public var unknownKeyRange: Range<Int>? = nil

        public static let manifest = FieldPath(field: nil)
    }

    public struct Failure: Error, Sendable, Equatable {
        public let path: FieldPath
        public let reason: StaticString
        public static func == (a: Failure, b: Failure) -> Bool { a.path == b.path }
    }

    public struct Digest: Sendable {
        public var algorithm: DigestAlgorithm = .sha256
        public var value: Range<Int> = 0..<0
    }

    public struct Image: Sendable {
        /// The component name; for a single image, nil (its name is the
        /// location's last segment).
        public var name: Range<Int>? = nil
        public var location: Range<Int> = 0..<0
        public var size: UInt64 = 0
        public var digestCount = 0
        public var digests = InlineArray<3, Digest>(repeating: Digest())
    }

    public var timestamp: Int64 = 0
    public var manufacturer: Range<Int> = 0..<0
    public var model: Range<Int> = 0..<0
    public var version = FirmwareVersion(major: 0, minor: 0, revision: 0)
    public var imageCount = 0
    public var images = InlineArray<4, Image>(repeating: Image())
    public var isSplit = false

    /// Sum of the image sizes (checked not to overflow).
    public var totalSize: UInt64 {
        var total: UInt64 = 0
        for i in 0..<imageCount { total &+= images[i].size }
        return total
    }

    // Root keys, in SPEC §2 order; index = key - 1.
    struct Found {
        var ranges = InlineArray<11, Range<Int>>(repeating: 0..<0)
        var present: UInt16 = 0
        func has(_ f: ManifestField) -> Bool { present & (1 << UInt16(f.rawValue)) != 0 }
        func range(_ f: ManifestField) -> Range<Int> { ranges[Int(f.rawValue) - 1] }
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

    static func fail(_ path: FieldPath, _ reason: StaticString) -> Failure { Failure(path: path, reason: reason) }

    private mutating func parse(_ b: UnsafeRawBufferPointer, _ whole: Range<Int>) -> Failure? {
        // Well-formed, one item, nothing after it.
        var check = CBORReader(b, range: whole)
        if let f = check.skip() { return Self.fail(.manifest, f.description) }
        guard check.isAtEnd else { return Self.fail(.manifest, "bytes after the manifest") }

        var r = CBORReader(b, range: whole)
        guard case .success(.map(let count)) = r.next() else { return Self.fail(.manifest, "expected map") }
        var found = Found()
        if let f = Self.scanMap(b, &r, count: count, path: FieldPath(field: nil), keys: 1...11, store: { key, range in
            found.ranges[Int(key) - 1] = range
            found.present |= 1 << UInt16(key)
        }) { return f }
        func path(_ f: ManifestField) -> FieldPath { FieldPath(field: f) }

        if found.has(.critical) {
            var c = CBORReader(b, range: found.range(.critical))
            guard case .success(.array(let n)) = c.next() else { return Self.fail(path(.critical), "expected array") }
            for _ in 0..<n {
                let v = c.next()
                switch v {
                case .success(.unsigned(let k)) where k >= 1 && k <= 11: continue
                case .success(.array), .success(.map), .success(.tag):
                    return Self.fail(path(.critical), "lists a key this device does not understand")
                default: return Self.fail(path(.critical), "lists a key this device does not understand")
                }
            }
        }
        guard found.has(.manifestVersion) else { return Self.fail(path(.manifestVersion), "required field is missing") }
        switch Self.text(b, found.range(.manifestVersion)) {
        case .some(let t) where b.equals(t, "1.0"): break
        case .some: return Self.fail(path(.manifestVersion), "unsupported version (this device reads \"1.0\")")
        case .none: return Self.fail(path(.manifestVersion), "expected text string")
        }
        guard found.has(.timestamp) else { return Self.fail(path(.timestamp), "required field is missing") }
        var t = CBORReader(b, range: found.range(.timestamp))
        guard case .success(.tag(1)) = t.next() else { return Self.fail(path(.timestamp), "expected tag 1 (epoch seconds)") }
        switch t.next() {
        case .success(.unsigned(let n)) where n <= UInt64(Int64.max): timestamp = Int64(n)
        case .success(.negative(let n)) where n < UInt64(Int64.max): timestamp = -1 - Int64(n)
        default: return Self.fail(path(.timestamp), "tag 1 must hold an integer number of seconds")
        }
        for isModel in 0..<2 {
            let field: ManifestField = isModel == 1 ? .model : .manufacturer
            guard found.has(field) else { return Self.fail(path(field), "required field is missing") }
            guard let text = Self.text(b, found.range(field)) else { return Self.fail(path(field), "expected text string") }
            guard !text.isEmpty else { return Self.fail(path(field), "must not be empty") }
            if field == .manufacturer { manufacturer = text } else { model = text }
        }
        guard found.has(.firmwareVersion) else { return Self.fail(path(.firmwareVersion), "required field is missing") }
        guard let versionText = Self.text(b, found.range(.firmwareVersion)) else {
            return Self.fail(path(.firmwareVersion), "expected text string")
        }
        guard let version = FirmwareVersion(bytes: UnsafeRawBufferPointer(rebasing: b[versionText])) else {
            return Self.fail(path(.firmwareVersion), "not major.minor.revision")
        }
        self.version = version
        if found.has(.keyInfo), let f = Self.checkKeyInfo(b, found.range(.keyInfo)) { return f }

        if found.has(.components) {
            isSplit = true
            var c = CBORReader(b, range: found.range(.components))
            guard case .success(.array(let n)) = c.next() else { return Self.fail(path(.components), "expected array") }
            guard n > 0 else { return Self.fail(path(.components), "empty list") }
            guard n <= Self.maxImages else { return Self.fail(path(.components), "more components than this device supports") }
            for index in 0..<n {
                let entryStart = c.offset
                if let f = c.skip() { return Self.fail(path(.components), f.description) }
                var p = FieldPath(field: .components, component: index)
                var e = CBORReader(b, range: entryStart..<c.offset)
                guard case .success(.map(let members)) = e.next() else { return Self.fail(p, "expected map") }
                var memberRanges = InlineArray<4, Range<Int>>(repeating: 0..<0)
                var present: UInt8 = 0
                if let f = Self.scanMap(b, &e, count: members, path: p, keys: 1...4, store: { key, range in
                    memberRanges[Int(key) - 1] = range
                    present |= 1 << UInt8(key)
                }) { return f }
                func missing(_ key: Int) -> Bool { present & (1 << UInt8(key)) == 0 }
                var image = Image()
                p.member = .name
                if missing(1) { return Self.fail(p, "required field is missing") }
                guard let name = Self.text(b, memberRanges[0]) else { return Self.fail(p, "expected text string") }
                guard Self.isSafeName(UnsafeRawBufferPointer(rebasing: b[name])) else { return Self.fail(p, "not a safe file name") }
                for other in 0..<imageCount {
                    if let otherName = images[other].name, b.equals(name, UnsafeRawBufferPointer(rebasing: b[otherName])) {
                        return Self.fail(p, "component is listed twice")
                    }
                }
                image.name = name
                p.member = .location
                if missing(2) { return Self.fail(p, "required field is missing") }
                switch Self.location(b, memberRanges[1]) {
                case .failure(let why): return Self.fail(p, why.reason)
                case .success(let l): image.location = l
                }
                p.member = .size
                if missing(3) { return Self.fail(p, "required field is missing") }
                guard case .success(.unsigned(let size)) = Self.first(b, memberRanges[2]) else {
                    return Self.fail(p, "expected unsigned integer")
                }
                image.size = size
                p.member = .commitHash
                if missing(4) { return Self.fail(p, "required field is missing") }
                if let f = Self.digestList(b, memberRanges[3], path: p, into: &image) { return f }
                images[imageCount] = image
                imageCount += 1
            }
            // Keys 6, 7 and 9 describe nothing here; checked if present.
            if found.has(.firmwareLocation), case .failure(let why) = Self.location(b, found.range(.firmwareLocation)) {
                return Self.fail(path(.firmwareLocation), why.reason)
            }
            if found.has(.firmwareCryptoInfo) {
                var scratch = Image()
                if let f = Self.cryptoInfo(b, found.range(.firmwareCryptoInfo), into: &scratch) { return f }
            }
            if found.has(.firmwareSize), case .success(.unsigned) = Self.first(b, found.range(.firmwareSize)) {} else if found.has(.firmwareSize) {
                return Self.fail(path(.firmwareSize), "expected unsigned integer")
            }
        } else {
            guard found.has(.firmwareLocation) else { return Self.fail(path(.firmwareLocation), "required field is missing") }
            var image = Image()
            switch Self.location(b, found.range(.firmwareLocation)) {
            case .failure(let why): return Self.fail(path(.firmwareLocation), why.reason)
            case .success(let l): image.location = l
            }
            guard Self.isSafeName(Self.lastSegment(UnsafeRawBufferPointer(rebasing: b[image.location]))) else {
                return Self.fail(path(.firmwareLocation), "last segment is not a safe file name")
            }
            guard found.has(.firmwareCryptoInfo) else { return Self.fail(path(.firmwareCryptoInfo), "required field is missing") }
            if let f = Self.cryptoInfo(b, found.range(.firmwareCryptoInfo), into: &image) { return f }
            guard found.has(.firmwareSize) else { return Self.fail(path(.firmwareSize), "required field is missing") }
            guard case .success(.unsigned(let size)) = Self.first(b, found.range(.firmwareSize)) else {
                return Self.fail(path(.firmwareSize), "expected unsigned integer")
            }
            image.size = size
            images[0] = image
            imageCount = 1
        }
        var total: UInt64 = 0
        for i in 0..<imageCount {
            let (sum, overflow) = total.addingReportingOverflow(images[i].size)
            guard !overflow else { return Self.fail(path(.components), "image sizes overflow 64 bits") }
            total = sum
        }
        return nil
    }

    /// Walks a map's entries: refuses a repeated key (by its encoded
    /// bytes), records the value range of each integer key in `keys`.
    static func scanMap(_ b: UnsafeRawBufferPointer, _ r: inout CBORReader, count: Int, path: FieldPath,
                        keys: ClosedRange<Int64>, store: (Int64, Range<Int>) -> Void) -> Failure? {
        let firstKey = r.offset
        for _ in 0..<count {
            let keyStart = r.offset
            var k = r
            if let f = r.skip() { return fail(path, f.description) }
            let keyRange = keyStart..<r.offset
            // A repeated key: compare with every earlier key's bytes.
            var scan = CBORReader(b, range: firstKey..<keyStart)
            while !scan.isAtEnd {
                let earlier = scan.offset
                _ = scan.skip()
                let earlierRange = earlier..<scan.offset
                _ = scan.skip()  // its value
                if b.equals(earlierRange, UnsafeRawBufferPointer(rebasing: b[keyRange])) {
                    var p = path
                    if case .success(let item) = k.next(), let key = item.int64, keys.contains(key) {
                        p.setKey(key)
                    } else {
                        p.setUnknownKey(Self.first(b, keyRange).int64Value)
                        p.unknownKeyRange = keyRange
                    }
                    return fail(p, "map key given twice")
                }
            }
            let valueStart = r.offset
            if let f = r.skip() { return fail(path, f.description) }
            if case .success(let item) = k.next(), let key = item.int64, keys.contains(key) {
                store(key, valueStart..<r.offset)
            }
        }
        return nil
    }

    static func first(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Result<CBORReader.Item, CBORReader.Failure> {
        var r = CBORReader(b, range: range)
        return r.next()
    }

    static func text(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int>? {
        if case .success(.text(let t)) = first(b, range) { return t }
        return nil
    }

    struct Why: Error { let reason: StaticString }

    /// A URI reference: non-empty text without spaces or control characters.
    static func location(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Result<Range<Int>, Why> {
        guard let t = text(b, range) else { return .failure(Why(reason: "expected text string")) }
        guard !t.isEmpty else { return .failure(Why(reason: "must not be empty")) }
        for i in t where b[i] <= 0x20 || b[i] == 0x7f { return .failure(Why(reason: "not a URI reference")) }
        return .success(t)
    }

    static func cryptoInfo(_ b: UnsafeRawBufferPointer, _ range: Range<Int>, into image: inout Image) -> Failure? {
        var r = CBORReader(b, range: range)
        let p = FieldPath(field: .firmwareCryptoInfo)
        guard case .success(.map(let n)) = r.next() else { return fail(p, "expected map") }
        var list: Range<Int>?
        if let f = scanMap(b, &r, count: n, path: p, keys: 1...1, store: { _, range in list = range }) { return f }
        var q = p
        q.member = .commitHash
        guard let list else { return fail(q, "required field is missing") }
        return digestList(b, list, path: q, into: &image)
    }

    static func digestList(_ b: UnsafeRawBufferPointer, _ range: Range<Int>, path: FieldPath, into image: inout Image) -> Failure? {
        var r = CBORReader(b, range: range)
        guard case .success(.array(let n)) = r.next() else { return fail(path, "expected array") }
        guard n > 0 else { return fail(path, "no digest listed") }
        for index in 0..<n {
            var p = path
            p.digest = index
            let start = r.offset
            if let f = r.skip() { return fail(p, f.description) }
            var e = CBORReader(b, range: start..<r.offset)
            guard case .success(.map(let members)) = e.next() else { return fail(p, "expected map") }
            var algoRange: Range<Int>?, hashRange: Range<Int>?
            if let f = scanMap(b, &e, count: members, path: p, keys: 1...2, store: { key, range in
                if key == 1 { algoRange = range } else { hashRange = range }
            }) { return f }
            p.digestMember = .digestAlgo
            guard let algoRange else { return fail(p, "required field is missing") }
            p.digestMember = .hash
            guard let hashRange else { return fail(p, "required field is missing") }
            p.digestMember = .digestAlgo
            guard case .success(let algoItem) = first(b, algoRange), let id = algoItem.int64 else {
                return fail(p, "expected COSE algorithm id")
            }
            guard let algorithm = DigestAlgorithm(coseID: id) else { return fail(p, "unsupported digest algorithm") }
            p.digestMember = .hash
            guard case .success(.bytes(let value)) = first(b, hashRange) else { return fail(p, "expected byte string") }
            guard value.count == algorithm.digestLength else { return fail(p, "digest has the wrong length for its algorithm") }
            guard image.digestCount < maxDigests else { return fail(path, "more digests than this device supports") }
            image.digests[image.digestCount] = Digest(algorithm: algorithm, value: value)
            image.digestCount += 1
        }
        return nil
    }

    /// COSE_Key for P-256 (kty 2, crv 1, x, y) or Ed25519 (kty 1, crv 6, x).
    static func checkKeyInfo(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Failure? {
        let p = FieldPath(field: .keyInfo)
        var r = CBORReader(b, range: range)
        guard case .success(.map(let n)) = r.next() else { return fail(p, "expected map") }
        var kty: Int64?, crv: Int64?, x: Range<Int>?, y: Range<Int>?, xBad = false, yBad = false
        if let f = scanMap(b, &r, count: n, path: p, keys: -3...1, store: { key, range in
            let item = first(b, range)
            switch key {
            case 1: kty = item.int64Value
            case -1: crv = item.int64Value
            case -2: if case .success(.bytes(let v)) = item { x = v } else { xBad = true }
            case -3: if case .success(.bytes(let v)) = item { y = v } else { yBad = true }
            default: break
            }
        }) { return f }
        guard kty != nil, crv != nil, x != nil || xBad else { return fail(p, "COSE_Key needs kty, crv and x") }
        let isP256: Bool
        switch (kty, crv) {
        case (2, 1): isP256 = true
        case (1, 6): isP256 = false
        default: return fail(p, "only EC2/P-256 and OKP/Ed25519 keys are supported")
        }
        guard !xBad, !yBad else { return fail(p, "expected key coordinate") }
        guard let x, x.count == 32 else { return fail(p, "key coordinates have the wrong length") }
        if isP256 {
            guard let y, y.count == 32 else { return fail(p, "key coordinates have the wrong length") }
        } else if y != nil {
            return fail(p, "key coordinates have the wrong length")
        }
        return nil
    }

    /// 1-64 of letters, digits, '.', '_', '-', not "." or ".." (the one
    /// rule; `Manifest.isSafeName` calls it).
    public static func isSafeName(_ s: UnsafeRawBufferPointer) -> Bool {
        guard (1...64).contains(s.count) else { return false }
        if s.count <= 2 && s.allSatisfy({ $0 == 0x2e }) { return false }
        return s.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d
        }
    }

    /// The part after the last '/', before any '?' or '#'.
    public static func lastSegment(_ s: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var end = s.count
        for i in 0..<s.count where s[i] == 0x3f || s[i] == 0x23 { end = i; break }
        var start = 0
        for i in 0..<end where s[i] == 0x2f { start = i + 1 }
        return UnsafeRawBufferPointer(rebasing: s[start..<end])
    }
}

extension ManifestView.FieldPath {
    mutating func setKey(_ key: Int64) {
        if field == nil, let f = ManifestField(rawValue: key) {
            field = f
        } else if field == .components, component != nil, member == .none {
            member = [ManifestView.FieldPath.Member.name, .location, .size, .commitHash][Int(key) - 1]
        } else if digest != nil {
            digestMember = key == 1 ? .digestAlgo : .hash
        } else if field == .firmwareCryptoInfo {
            member = .commitHash
        } else {
            setUnknownKey(key)
        }
    }

    mutating func setUnknownKey(_ key: Int64?) {
        if digest != nil { digestMember = .unknownKey } else { member = .unknownKey }
        unknownKey = key
    }
}

extension CBORReader.Item {
    /// An integer item's value, if it fits Int64.
    public var int64: Int64? {
        switch self {
        case .unsigned(let n) where n <= UInt64(Int64.max): return Int64(n)
        case .negative(let n) where n < UInt64(Int64.max): return -1 - Int64(n)
        default: return nil
        }
    }
}

extension Result where Success == CBORReader.Item {
    var int64Value: Int64? {
        if case .success(let item) = self { return item.int64 }
        return nil
    }
}

extension FirmwareVersion {
    /// Parses `A.B.C`: decimal parts without sign or leading zero, at most
    /// 9 digits each (the one parser; `init?(_ text:)` calls it).
    public init?(bytes s: UnsafeRawBufferPointer) {
        var parts = InlineArray<3, UInt32>(repeating: 0)
        var part = 0, digits = 0, value: UInt32 = 0, leadingZero = false
        for i in 0...s.count {
            if i == s.count || s[i] == 0x2e {
                guard digits > 0, part < 3 else { return nil }
                parts[part] = value
                part += 1
                digits = 0; value = 0; leadingZero = false
                continue
            }
            let c = s[i]
            guard c >= 0x30 && c <= 0x39, digits < 9, !leadingZero else { return nil }
            if digits == 0 && c == 0x30 { leadingZero = true }
            value = value * 10 + UInt32(c - 0x30)
            digits += 1
        }
        guard part == 3 else { return nil }
        self.init(major: parts[0], minor: parts[1], revision: parts[2])
    }
}

extension ManifestView.FieldPath {
    /// The field as `ManifestError` names it (`components[1].size`);
    /// `payload` lets a repeated non-integer key be described.
    public func rendered(_ payload: UnsafeRawBufferPointer? = nil) -> String {
        let key = describeKey(payload)
        guard let field else { return member == .unknownKey ? key : "manifest" }
        var s = field.jsonName
        if let component { s += "[\(component)]" }
        switch member {
        case .none: break
        case .unknownKey: s += "." + key
        default: s += ".\(member.name)"
        }
        if let digest { s += "[\(digest)]" }
        switch digestMember {
        case .none: break
        case .unknownKey: s += "." + key
        default: s += ".\(digestMember.name)"
        }
        return s
    }

    private func describeKey(_ payload: UnsafeRawBufferPointer?) -> String {
        guard let range = unknownKeyRange, let payload else { return "key \(unknownKey.map { String($0) } ?? "?")" }
        var r = CBORReader(payload, range: range)
        switch r.next() {
        case .success(.unsigned(let n)): return "key \(n)"
        case .success(.negative(let n)): return "key -\(n == UInt64.max ? "18446744073709551616" : String(n + 1))"
        case .success(.text(let t)): return "key \"\(String(decoding: UnsafeRawBufferPointer(rebasing: payload[t]), as: UTF8.self))\""
        case .success(.bytes): return "key (byte string)"
        case .success(.array): return "key (array)"
        case .success(.map): return "key (map)"
        case .success(.tag(let t)): return "key (tag \(t))"
        case .success(.bool): return "key (boolean)"
        case .success(.null): return "key (null)"
        case .success(.other):
            return payload[range.lowerBound] == 0xf7 ? "key (undefined)" : "key (float)"
        case .failure: return "key ?"
        }
    }
}

extension ManifestView.FieldPath.Member {
    var name: String {
        switch self {
        case .none: return ""
        case .name: return "name"
        case .location: return "location"
        case .size: return "size"
        case .commitHash: return "commitHash"
        case .digestAlgo: return "digestAlgo"
        case .hash: return "hash"
        case .unknownKey: return "key"
        }
    }
}
