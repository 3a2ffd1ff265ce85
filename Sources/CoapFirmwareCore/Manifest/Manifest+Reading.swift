import CoapFirmwareDevice

/// Reading a manifest: always through the device's rules. A CBOR payload
/// goes to `ManifestView` as it is; a JSON payload is first spelled as CBOR
/// (`JSONSpelling`), so the two forms cannot disagree on what they accept.
extension Manifest {
    /// Reads a CBOR manifest payload (SPEC §2, integer keys).
    public init(cborPayload payload: [UInt8]) throws(ManifestError) {
        let result: Result<Manifest, ManifestError> = payload.withUnsafeBytes { raw in
            switch ManifestView.read(raw) {
            case .failure(let failure):
                return .failure(.badManifest(field: failure.path.rendered(raw), reason: "\(failure.reason)"))
            case .success(let view):
                return .success(Manifest(view: view, payload: raw))
            }
        }
        self = try result.get()
    }

    /// Reads a JSON manifest payload (SPEC §2, the draft's names).
    public init(jsonPayload payload: [UInt8]) throws(ManifestError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(payload)
        } catch {
            throw .badManifest(field: "manifest", reason: error.description)
        }
        try self.init(cborPayload: JSONSpelling.cbor(value))
    }

    /// The host model of a payload the device's rules accepted.
    init(view: ManifestView, payload b: UnsafeRawBufferPointer) {
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: b[range]), as: UTF8.self) }
        func digests(_ image: ManifestView.Image) -> [ImageDigest] {
            (0..<image.digestCount).map { i in
                ImageDigest(algorithm: image.digests[i].algorithm, value: Array(b[image.digests[i].value]))
            }
        }
        self.init(timestamp: view.timestamp, manufacturer: text(view.manufacturer), model: text(view.model),
                  firmwareVersion: view.version)
        if let key = view.keyInfo {
            keyInfo = KeyInfo(curve: key.curve, x: Array(b[key.x]), y: key.y.map { Array(b[$0]) })
        }
        if let range = view.critical {
            var r = CBORReader(b, range: range)
            if case .success(.array(let n)) = r.next() {
                critical = (0..<n).compactMap { _ in
                    guard case .success(let item) = r.next(), let key = item.int64 else { return nil }
                    return ManifestField(rawValue: key)?.jsonName
                }
            }
        }
        if view.isSplit {
            components = (0..<view.imageCount).map { i in
                let image = view.images[i]
                return Component(name: image.name.map(text) ?? "", location: text(image.location), size: image.size,
                                 digests: digests(image))
            }
            // Keys 6, 7 and 9 describe nothing here; kept for display when present.
            if let declared = ManifestView.declaredImage(b) {
                firmwareLocation = declared.hasLocation ? text(declared.image.location) : nil
                firmwareDigests = declared.image.digestCount > 0 ? digests(declared.image) : nil
                firmwareSize = declared.hasSize ? declared.image.size : nil
            }
        } else {
            let image = view.images[0]
            firmwareLocation = text(image.location)
            firmwareDigests = digests(image)
            firmwareSize = image.size
        }
    }
}

extension FieldPath {
    /// The field as errors name it (`components[1].size`); `payload`
    /// lets a repeated non-integer key be described.
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
        case .success(.other): return payload[range.lowerBound] == 0xf7 ? "key (undefined)" : "key (float)"
        case .failure: return "key ?"
        }
    }
}

extension FieldPath.Member {
    var name: String {
        switch self {
        case .none: return ""
        case .name: return ComponentKey.name.jsonName
        case .location: return ComponentKey.location.jsonName
        case .size: return ComponentKey.size.jsonName
        case .commitHash: return ComponentKey.commitHash.jsonName
        case .digestAlgo: return DigestKey.digestAlgo.jsonName
        case .hash: return DigestKey.hash.jsonName
        case .unknownKey: return "key"
        }
    }
}
