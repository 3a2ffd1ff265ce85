import CoapFirmwareDevice

/// The JSON manifest's spelling mapped onto the CBOR form (SPEC §2), so a
/// JSON manifest meets the device's rules (`ManifestView`) and nothing else.
///
/// Only spelling happens here: names become integer keys, RFC 3339 becomes
/// tag 1, lowercase hex and base64url become byte strings, digest and JWK
/// names become COSE numbers. A value whose spelling is wrong (a bad date,
/// upper-case hex, an unknown digest name) is refused here, naming its
/// field; every other rule, types included, is the view's: a value of the
/// wrong JSON type is written as its natural CBOR item for the view to refuse.
enum JSONSpelling {
    /// How the value under one name is spelled.
    indirect enum Shape: Sendable {
        case plain
        case timestamp
        case digestName
        case hex
        case base64url
        case jwkKeyType
        case jwkCurve
        case fieldNames
        case object([(name: String, key: Int64, shape: Shape)])
        case array(of: Shape)
    }

    // Computed, not stored: a static indirect enum hides its boxes from
    // LeakSanitizer (spare-bit tagged pointers), which the fuzz build runs.
    static var digestList: Shape { .array(of: .object([entry(DigestKey.digestAlgo, .digestName), entry(DigestKey.hash, .hex)])) }

    static var manifest: Shape {
        .object([
            entry(ManifestField.manifestVersion, .plain), entry(ManifestField.timestamp, .timestamp),
            entry(ManifestField.manufacturer, .plain), entry(ManifestField.model, .plain),
            entry(ManifestField.firmwareVersion, .plain), entry(ManifestField.firmwareLocation, .plain),
            entry(ManifestField.firmwareCryptoInfo, .object([("commitHash", 1, digestList)])),
            entry(ManifestField.keyInfo, .object([("kty", COSEKeyLabel.kty.rawValue, .jwkKeyType), ("crv", COSEKeyLabel.crv.rawValue, .jwkCurve),
                                                  ("x", COSEKeyLabel.x.rawValue, .base64url), ("y", COSEKeyLabel.y.rawValue, .base64url)])),
            entry(ManifestField.firmwareSize, .plain),
            entry(ManifestField.components, .array(of: .object([
                entry(ComponentKey.name, .plain), entry(ComponentKey.location, .plain), entry(ComponentKey.size, .plain),
                entry(ComponentKey.commitHash, digestList),
            ]))),
            entry(ManifestField.critical, .array(of: .fieldNames)),
        ])
    }

    /// One schema entry: the key's JSON name, its CBOR key, its shape.
    static func entry<K: JSONNamed & RawRepresentable>(_ key: K, _ shape: Shape) -> (name: String, key: Int64, shape: Shape)
    where K.RawValue == Int64 {
        (key.jsonName, key.rawValue, shape)
    }

    /// The CBOR payload for a parsed JSON manifest.
    static func cbor(_ value: JSONValue) throws(ManifestError) -> [UInt8] {
        var out: [UInt8] = []
        try write(value, as: manifest, path: "", into: &out)
        return out
    }

    private static func write(_ value: JSONValue, as shape: Shape, path: String, into out: inout [UInt8]) throws(ManifestError) {
        func sink(_ bytes: UnsafeRawBufferPointer) { out.append(contentsOf: bytes) }
        func refuse(_ reason: String) -> ManifestError {
            .badManifest(field: path.hasPrefix("key-info") ? "key-info" : path, reason: reason)
        }
        func bytes(_ b: [UInt8]) { b.withUnsafeBytes { CBORWriter.string(.bytes, $0, into: sink) } }
        switch (shape, value) {
        case (.object(let schema), .object(let members)):
            CBORWriter.head(.map, UInt64(members.count), into: sink)
            for member in members {
                let known = schema.first { $0.name == member.key }
                if let known { CBORWriter.integer(known.key, into: sink) } else { writePlain(.string(member.key), into: &out) }
                let child = path.isEmpty ? member.key : "\(path).\(member.key)"
                try write(member.value, as: known?.shape ?? .plain, path: child, into: &out)
            }
        case (.array(let element), .array(let items)):
            CBORWriter.head(.array, UInt64(items.count), into: sink)
            for (i, item) in items.enumerated() { try write(item, as: element, path: "\(path)[\(i)]", into: &out) }
        case (.timestamp, .string(let s)):
            guard let seconds = RFC3339.parse(s) else { throw refuse("\"\(s)\" is not an RFC 3339 date-time") }
            CBORWriter.head(.tag, 1, into: sink)
            CBORWriter.integer(seconds, into: sink)
        case (.timestamp, _):
            throw refuse("expected an RFC 3339 string, found \(value.typeName)")
        case (.digestName, .string(let s)):
            guard let algorithm = DigestAlgorithm(jsonName: s) else { throw refuse("unsupported digest algorithm \"\(s)\"") }
            CBORWriter.integer(algorithm.coseID, into: sink)
        case (.digestName, _):
            throw refuse("expected a digest name string, found \(value.typeName)")
        case (.hex, .string(let s)):
            guard let b = Hex.decodeLowercase(s) else { throw refuse("not lowercase hex") }
            bytes(b)
        case (.base64url, .string(let s)):
            guard let b = Base64URL.decode(s) else { throw refuse("not base64url") }
            bytes(b)
        case (.jwkKeyType, .string(let s)):
            guard let kty = [("EC", Int64(2)), ("OKP", 1)].first(where: { $0.0 == s })?.1 else {
                throw refuse("only EC/P-256 and OKP/Ed25519 keys are supported")
            }
            CBORWriter.integer(kty, into: sink)
        case (.jwkCurve, .string(let s)):
            guard let crv = [("P-256", Int64(1)), ("Ed25519", 6)].first(where: { $0.0 == s })?.1 else {
                throw refuse("only EC/P-256 and OKP/Ed25519 keys are supported")
            }
            CBORWriter.integer(crv, into: sink)
        case (.fieldNames, .string(let s)):
            if let field = ManifestField(jsonName: s) { CBORWriter.integer(field.rawValue, into: sink) } else { writePlain(value, into: &out) }
        default:
            writePlain(value, into: &out)
        }
    }

    /// A value in its natural CBOR form, with no schema.
    private static func writePlain(_ value: JSONValue, into out: inout [UInt8]) {
        func sink(_ bytes: UnsafeRawBufferPointer) { out.append(contentsOf: bytes) }
        switch value {
        case .string(let s): Array(s.utf8).withUnsafeBytes { CBORWriter.string(.text, $0, into: sink) }
        case .bool(let b): CBORWriter.simple(b ? 21 : 20, into: sink)
        case .null: CBORWriter.simple(22, into: sink)
        case .number(let text):
            if let n = value.uint64 {
                CBORWriter.head(.unsigned, n, into: sink)
            } else if let n = Int64(text), n < 0 {
                CBORWriter.integer(n, into: sink)
            } else {
                CBORWriter.float64(Double(text) ?? .nan, into: sink)
            }
        case .array(let items):
            CBORWriter.head(.array, UInt64(items.count), into: sink)
            for item in items { writePlain(item, into: &out) }
        case .object(let members):
            CBORWriter.head(.map, UInt64(members.count), into: sink)
            for member in members {
                writePlain(.string(member.key), into: &out)
                writePlain(member.value, into: &out)
            }
        }
    }
}
