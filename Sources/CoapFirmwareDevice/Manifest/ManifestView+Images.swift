/// The images of a manifest: `components` (a split image), or the single
/// image of keys 6, 7 and 9, each with its digest list.
extension ManifestView {
    mutating func readComponents(_ b: UnsafeRawBufferPointer, _ root: Root) -> Failure? {
        isSplit = true
        let list = FieldPath(field: .components)
        var c = CBORReader(b, range: root.range(.components))
        guard case .success(.array(let n)) = c.next() else { return MapScan.fail(list, "expected array") }
        guard n > 0 else { return MapScan.fail(list, "empty list") }
        guard n <= Self.maxImages else { return MapScan.fail(list, "more components than this device supports") }
        for index in 0..<n {
            let entryStart = c.offset
            if let f = c.skip() { return MapScan.fail(list, f.description) }
            var p = list
            p.component = index
            var e = CBORReader(b, range: entryStart..<c.offset)
            guard case .success(.map(let count)) = e.next() else { return MapScan.fail(p, "expected map") }
            var members = InlineArray<4, Range<Int>>(repeating: 0..<0)
            var present: UInt8 = 0
            let keys = ComponentKey.name.rawValue...ComponentKey.commitHash.rawValue
            if let f = MapScan.entries(b, &e, count: count, path: p, keys: keys, store: { key, range in
                members[Int(key) - 1] = range
                present |= 1 << UInt8(key)
            }) { return f }
            func missing(_ key: ComponentKey) -> Bool { present & (1 << UInt8(key.rawValue)) == 0 }
            func range(_ key: ComponentKey) -> Range<Int> { members[Int(key.rawValue) - 1] }
            var image = Image()
            p.member = .name
            if missing(.name) { return MapScan.fail(p, "required field is missing") }
            guard let name = MapScan.text(b, range(.name)) else { return MapScan.fail(p, "expected text string") }
            let nameBytes = UnsafeRawBufferPointer(rebasing: b[name])
            guard SafeName.isSafe(nameBytes) else { return MapScan.fail(p, "not a safe file name") }
            guard SafeName.isImageName(nameBytes) else { return MapScan.fail(p, "reserved for the device's own records") }
            for other in 0..<imageCount {
                if let otherName = images[other].name, bytesEqual(b, name, UnsafeRawBufferPointer(rebasing: b[otherName])) {
                    return MapScan.fail(p, "component is listed twice")
                }
            }
            image.name = name
            p.member = .location
            if missing(.location) { return MapScan.fail(p, "required field is missing") }
            switch MapScan.location(b, range(.location)) {
            case .failure(let why): return MapScan.fail(p, why.reason)
            case .success(let l): image.location = l
            }
            p.member = .size
            if missing(.size) { return MapScan.fail(p, "required field is missing") }
            guard let size = MapScan.unsigned(b, range(.size)) else { return MapScan.fail(p, "expected unsigned integer") }
            image.size = size
            p.member = .commitHash
            if missing(.commitHash) { return MapScan.fail(p, "required field is missing") }
            if let f = Self.digestList(b, range(.commitHash), path: p, into: &image) { return f }
            images[imageCount] = image
            imageCount += 1
        }
        // Keys 6, 7 and 9 describe nothing here; checked if present.
        var declared = Image()
        return Self.declaredFields(b, root, into: &declared)
    }

    mutating func readSingleImage(_ b: UnsafeRawBufferPointer, _ root: Root) -> Failure? {
        func fail(_ f: ManifestField, _ reason: StaticString) -> Failure { MapScan.fail(f, reason) }
        guard root.has(.firmwareLocation) else { return fail(.firmwareLocation, "required field is missing") }
        var image = Image()
        switch MapScan.location(b, root.range(.firmwareLocation)) {
        case .failure(let why): return fail(.firmwareLocation, why.reason)
        case .success(let l): image.location = l
        }
        guard SafeName.isImageName(SafeName.lastSegment(UnsafeRawBufferPointer(rebasing: b[image.location]))) else {
            return fail(.firmwareLocation, "last segment is not a safe file name, or one the device reserves")
        }
        guard root.has(.firmwareCryptoInfo) else { return fail(.firmwareCryptoInfo, "required field is missing") }
        if let f = Self.cryptoInfo(b, root.range(.firmwareCryptoInfo), into: &image) { return f }
        guard root.has(.firmwareSize) else { return fail(.firmwareSize, "required field is missing") }
        guard let size = MapScan.unsigned(b, root.range(.firmwareSize)) else { return fail(.firmwareSize, "expected unsigned integer") }
        image.size = size
        images[0] = image
        imageCount = 1
        return nil
    }

    /// Keys 6, 7 and 9 of a split manifest, each only if present: what the
    /// host shows of them. `image.location` is empty when key 6 is absent.
    static func declaredFields(_ b: UnsafeRawBufferPointer, _ root: Root, into image: inout Image) -> Failure? {
        if root.has(.firmwareLocation) {
            switch MapScan.location(b, root.range(.firmwareLocation)) {
            case .failure(let why): return MapScan.fail(.firmwareLocation, why.reason)
            case .success(let l): image.location = l
            }
        }
        if root.has(.firmwareCryptoInfo), let f = cryptoInfo(b, root.range(.firmwareCryptoInfo), into: &image) { return f }
        if root.has(.firmwareSize) {
            guard let size = MapScan.unsigned(b, root.range(.firmwareSize)) else {
                return MapScan.fail(.firmwareSize, "expected unsigned integer")
            }
            image.size = size
        }
        return nil
    }

    /// For the host: keys 6, 7 and 9 of a split manifest that `read` accepted
    /// (nil for a single-image manifest, whose image they are).
    public static func declaredImage(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil)
        -> (image: Image, hasLocation: Bool, hasSize: Bool)? {
        guard case .success(let root) = scanRoot(bytes, range ?? 0..<bytes.count), root.has(.components) else { return nil }
        var image = Image()
        guard declaredFields(bytes, root, into: &image) == nil else { return nil }
        return (image, root.has(.firmwareLocation), root.has(.firmwareSize))
    }

    /// `firmwareCryptoInfo`: `{1: commitHash}`.
    static func cryptoInfo(_ b: UnsafeRawBufferPointer, _ range: Range<Int>, into image: inout Image) -> Failure? {
        var r = CBORReader(b, range: range)
        let p = FieldPath(field: .firmwareCryptoInfo)
        guard case .success(.map(let n)) = r.next() else { return MapScan.fail(p, "expected map") }
        var list: Range<Int>?
        if let f = MapScan.entries(b, &r, count: n, path: p, keys: 1...1, store: { _, range in list = range }) { return f }
        var q = p
        q.member = .commitHash
        guard let list else { return MapScan.fail(q, "required field is missing") }
        return digestList(b, list, path: q, into: &image)
    }

    /// A `commitHash` list: 1 to `maxDigests` entries, each a supported
    /// algorithm with a digest of its length.
    static func digestList(_ b: UnsafeRawBufferPointer, _ range: Range<Int>, path: FieldPath, into image: inout Image) -> Failure? {
        var r = CBORReader(b, range: range)
        guard case .success(.array(let n)) = r.next() else { return MapScan.fail(path, "expected array") }
        guard n > 0 else { return MapScan.fail(path, "no digest listed") }
        for index in 0..<n {
            var p = path
            p.digest = index
            let start = r.offset
            if let f = r.skip() { return MapScan.fail(p, f.description) }
            var e = CBORReader(b, range: start..<r.offset)
            guard case .success(.map(let members)) = e.next() else { return MapScan.fail(p, "expected map") }
            var algoRange: Range<Int>?, hashRange: Range<Int>?
            let keys = DigestKey.digestAlgo.rawValue...DigestKey.hash.rawValue
            if let f = MapScan.entries(b, &e, count: members, path: p, keys: keys, store: { key, range in
                if key == DigestKey.digestAlgo.rawValue { algoRange = range } else { hashRange = range }
            }) { return f }
            p.digestMember = .digestAlgo
            guard let algoRange else { return MapScan.fail(p, "required field is missing") }
            p.digestMember = .hash
            guard let hashRange else { return MapScan.fail(p, "required field is missing") }
            p.digestMember = .digestAlgo
            guard let id = MapScan.first(b, algoRange).int64Value else { return MapScan.fail(p, "expected COSE algorithm id") }
            guard let algorithm = DigestAlgorithm(coseID: id) else { return MapScan.fail(p, "unsupported digest algorithm") }
            p.digestMember = .hash
            guard case .success(.bytes(let value)) = MapScan.first(b, hashRange) else { return MapScan.fail(p, "expected byte string") }
            guard value.count == algorithm.digestLength else { return MapScan.fail(p, "digest has the wrong length for its algorithm") }
            guard image.digestCount < maxDigests else { return MapScan.fail(path, "more digests than this device supports") }
            image.digests[image.digestCount] = Digest(algorithm: algorithm, value: value)
            image.digestCount += 1
        }
        return nil
    }

    /// `key-info`: a COSE_Key for P-256 (kty 2, crv 1, x, y) or Ed25519 (kty 1, crv 6, x).
    static func readKeyInfo(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Result<KeyInfo, Failure> {
        let p = FieldPath(field: .keyInfo)
        var r = CBORReader(b, range: range)
        guard case .success(.map(let n)) = r.next() else { return .failure(MapScan.fail(p, "expected map")) }
        var kty: Int64?, crv: Int64?, x: Range<Int>?, y: Range<Int>?, xBad = false, yBad = false
        if let f = MapScan.entries(b, &r, count: n, path: p, keys: COSEKeyLabel.y.rawValue...COSEKeyLabel.kty.rawValue, store: { key, range in
            let item = MapScan.first(b, range)
            switch COSEKeyLabel(rawValue: key) {
            case .kty: kty = item.int64Value
            case .crv: crv = item.int64Value
            case .x: if case .success(.bytes(let v)) = item { x = v } else { xBad = true }
            case .y: if case .success(.bytes(let v)) = item { y = v } else { yBad = true }
            case nil: break
            }
        }) { return .failure(f) }
        guard let kty, let crv, x != nil || xBad else { return .failure(MapScan.fail(p, "COSE_Key needs kty, crv and x")) }
        guard let curve = KeyInfoCurve(coseKeyType: kty, curve: crv) else {
            return .failure(MapScan.fail(p, "only EC2/P-256 and OKP/Ed25519 keys are supported"))
        }
        guard !xBad, !yBad else { return .failure(MapScan.fail(p, "expected key coordinate")) }
        guard let x, x.count == 32 else { return .failure(MapScan.fail(p, "key coordinates have the wrong length")) }
        switch curve {
        case .p256:
            guard let y, y.count == 32 else { return .failure(MapScan.fail(p, "key coordinates have the wrong length")) }
        case .ed25519:
            guard y == nil else { return .failure(MapScan.fail(p, "key coordinates have the wrong length")) }
        }
        return .success(KeyInfo(curve: curve, x: x, y: y))
    }
}
