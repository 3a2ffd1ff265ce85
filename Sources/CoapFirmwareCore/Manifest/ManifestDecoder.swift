/// Reads a manifest from either wire form (SPEC §2) with one set of rules.
///
/// The CBOR and JSON forms differ only in spelling (integer vs. text keys,
/// tag 1 vs. RFC 3339, byte strings vs. hex, COSE_Key vs. JWK), so both are
/// read through `Node`, which hides the spelling and tracks the field path
/// that errors name (`components[1].size`).
enum ManifestDecoder {
    static func decode(_ root: Node) throws(ManifestError) -> Manifest {
        let f = try root.fields(of: ManifestField.allCases.map { ($0.rawValue, $0.jsonName) })
        func required(_ field: ManifestField) throws(ManifestError) -> Node {
            guard let node = f[field.jsonName] else {
                throw .badManifest(field: field.jsonName, reason: "required field is missing")
            }
            return node
        }

        // Critical keys first: a manifest this device cannot fully understand is refused before anything else is read.
        let critical = try f["critical"].map { (node) throws(ManifestError) in try criticalNames(node) }
        let manifestVersion = try required(.manifestVersion).text()
        guard manifestVersion == "1.0" else {
            throw .badManifest(field: "manifestVersion", reason: "unsupported version \"\(manifestVersion)\" (this device reads \"1.0\")")
        }
        let timestamp = try required(.timestamp).timestamp()
        let manufacturer = try required(.manufacturer).nonEmptyText()
        let model = try required(.model).nonEmptyText()
        let versionNode = try required(.firmwareVersion)
        let versionText = try versionNode.text()
        guard let version = FirmwareVersion(versionText) else {
            throw .badManifest(field: "firmwareVersion", reason: "\"\(versionText)\" is not major.minor.revision")
        }

        var manifest = Manifest(timestamp: timestamp, manufacturer: manufacturer, model: model, firmwareVersion: version)
        manifest.manifestVersion = manifestVersion
        if let node = f["key-info"] { manifest.keyInfo = try node.keyInfo() }
        manifest.critical = critical

        if let node = f["components"] {
            let entries = try node.array()
            guard !entries.isEmpty else { throw .badManifest(field: "components", reason: "empty list") }
            var components: [Component] = []
            for entry in entries {
                let c = try entry.fields(of: [(1, "name"), (2, "location"), (3, "size"), (4, "commitHash")])
                func member(_ name: String) throws(ManifestError) -> Node {
                    guard let n = c[name] else {
                        throw .badManifest(field: entry.child(name).path, reason: "required field is missing")
                    }
                    return n
                }
                let nameNode = try member("name")
                let name = try nameNode.text()
                guard Manifest.isSafeName(name) else {
                    throw .badManifest(field: nameNode.path, reason: "\"\(name)\" is not a safe file name")
                }
                guard !components.contains(where: { $0.name == name }) else {
                    throw .badManifest(field: nameNode.path, reason: "component \"\(name)\" is listed twice")
                }
                components.append(Component(
                    name: name, location: try member("location").location(),
                    size: try member("size").uint(), digests: try digestList(try member("commitHash"))))
            }
            manifest.components = components
            // With components, keys 6, 7, 9 describe nothing: read them only if present, for display.
            manifest.firmwareLocation = try f["firmwareLocation"]?.location()
            if let info = f["firmwareCryptoInfo"] { manifest.firmwareDigests = try cryptoInfo(info) }
            manifest.firmwareSize = try f["firmwareSize"]?.uint()
        } else {
            let locationNode = try required(.firmwareLocation)
            let location = try locationNode.location()
            guard Manifest.isSafeName(Manifest.lastSegment(of: location)) else {
                throw .badManifest(field: "firmwareLocation", reason: "last segment of \"\(location)\" is not a safe file name")
            }
            manifest.firmwareLocation = location
            manifest.firmwareDigests = try cryptoInfo(try required(.firmwareCryptoInfo))
            manifest.firmwareSize = try required(.firmwareSize).uint()
        }
        guard manifest.totalImageSize != nil else {
            throw .badManifest(field: "components", reason: "image sizes overflow 64 bits")
        }
        return manifest
    }

    private static func cryptoInfo(_ node: Node) throws(ManifestError) -> [ImageDigest] {
        let f = try node.fields(of: [(1, "commitHash")])
        guard let list = f["commitHash"] else {
            throw .badManifest(field: node.child("commitHash").path, reason: "required field is missing")
        }
        return try digestList(list)
    }

    private static func digestList(_ node: Node) throws(ManifestError) -> [ImageDigest] {
        let entries = try node.array()
        guard !entries.isEmpty else { throw .badManifest(field: node.path, reason: "no digest listed") }
        var digests: [ImageDigest] = []
        for entry in entries {
            let f = try entry.fields(of: [(1, "digestAlgo"), (2, "hash")])
            guard let algoNode = f["digestAlgo"] else {
                throw .badManifest(field: entry.child("digestAlgo").path, reason: "required field is missing")
            }
            guard let hashNode = f["hash"] else {
                throw .badManifest(field: entry.child("hash").path, reason: "required field is missing")
            }
            let algorithm = try algoNode.digestAlgorithm()
            let value = try hashNode.digestBytes()
            guard value.count == algorithm.digestLength else {
                throw .badManifest(field: hashNode.path,
                                   reason: "\(algorithm.jsonName) digest must be \(algorithm.digestLength) bytes, found \(value.count)")
            }
            digests.append(ImageDigest(algorithm: algorithm, value: value))
        }
        return digests
    }

    /// A device must reject a manifest listing, as critical, a key it does not understand (SPEC §2).
    private static func criticalNames(_ node: Node) throws(ManifestError) -> [String] {
        var names: [String] = []
        for entry in try node.array() {
            switch entry.raw {
            case .cbor(let value):
                guard let key = value.int64, let field = ManifestField(rawValue: key) else {
                    throw .badManifest(field: "critical", reason: "lists key \(describe(value)), which this device does not understand")
                }
                names.append(field.jsonName)
            case .json(let value):
                guard case .string(let name) = value, ManifestField(jsonName: name) != nil else {
                    throw .badManifest(field: "critical", reason: "lists \(value), which this device does not understand")
                }
                names.append(name)
            }
        }
        return names
    }

    static func describe(_ value: CBORValue) -> String {
        switch value {
        case .unsigned(let n): return String(n)
        case .negative(let n): return "-\(n == UInt64.max ? "18446744073709551616" : String(n + 1))"
        case .text(let s): return "\"\(s)\""
        default: return "(\(value.typeName))"
        }
    }
}

extension Manifest {
    /// Reads a manifest from its decoded CBOR payload (SPEC §2, integer keys).
    public init(cbor: CBORValue) throws(ManifestError) {
        self = try ManifestDecoder.decode(Node(raw: .cbor(cbor), path: ""))
    }

    /// Reads a manifest from its parsed JSON payload (SPEC §2, the draft's names).
    public init(json: JSONValue) throws(ManifestError) {
        self = try ManifestDecoder.decode(Node(raw: .json(json), path: ""))
    }

    /// Parses and reads a JSON manifest payload.
    public init(jsonBytes: [UInt8]) throws(ManifestError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(jsonBytes)
        } catch {
            throw .badManifest(field: "manifest", reason: error.description)
        }
        try self.init(json: value)
    }
}

/// A value in either wire form, with the path of the field it came from.
struct Node {
    enum Raw {
        case cbor(CBORValue)
        case json(JSONValue)
    }

    let raw: Raw
    let path: String

    private var name: String { path.isEmpty ? "manifest" : path }

    func child(_ member: String) -> Node {
        Node(raw: raw, path: path.isEmpty ? member : "\(path).\(member)")
    }

    private func wrongType(_ expected: String) -> ManifestError {
        let found: String
        switch raw {
        case .cbor(let v): found = v.typeName
        case .json(let v): found = v.typeName
        }
        return .badManifest(field: name, reason: "expected \(expected), found \(found)")
    }

    /// The members of a map/object whose keys the schema lists (CBOR key, JSON
    /// name), by JSON name. Unknown keys are ignored (forward compatible);
    /// a key given twice is an error naming that key.
    func fields(of schema: [(Int64, String)]) throws(ManifestError) -> [String: Node] {
        var result: [String: Node] = [:]
        switch raw {
        case .cbor(.map(let entries)):
            var seen: [CBORValue] = []
            for entry in entries {
                let known = entry.key.int64.flatMap { k in schema.first(where: { $0.0 == k }) }
                let label = known?.1 ?? "key \(ManifestDecoder.describe(entry.key))"
                if seen.contains(entry.key) {
                    throw .badManifest(field: child(label).path, reason: "map key given twice")
                }
                seen.append(entry.key)
                if let known { result[known.1] = Node(raw: .cbor(entry.value), path: child(known.1).path) }
            }
        case .json(.object(let members)):
            var seen = Set<String>()
            for member in members {
                guard seen.insert(member.key).inserted else {
                    throw .badManifest(field: child(member.key).path, reason: "member given twice")
                }
                if schema.contains(where: { $0.1 == member.key }) {
                    result[member.key] = Node(raw: .json(member.value), path: child(member.key).path)
                }
            }
        case .cbor: throw wrongType("map")
        case .json: throw wrongType("object")
        }
        return result
    }

    func array() throws(ManifestError) -> [Node] {
        switch raw {
        case .cbor(.array(let items)):
            return items.enumerated().map { Node(raw: .cbor($1), path: "\(path)[\($0)]") }
        case .json(.array(let items)):
            return items.enumerated().map { Node(raw: .json($1), path: "\(path)[\($0)]") }
        default: throw wrongType("array")
        }
    }

    func text() throws(ManifestError) -> String {
        switch raw {
        case .cbor(.text(let s)), .json(.string(let s)): return s
        case .cbor: throw wrongType("text string")
        case .json: throw wrongType("string")
        }
    }

    func nonEmptyText() throws(ManifestError) -> String {
        let s = try text()
        guard !s.isEmpty else { throw .badManifest(field: name, reason: "must not be empty") }
        return s
    }

    /// A URI reference: non-empty, no spaces or control characters (RFC 3986 §2).
    func location() throws(ManifestError) -> String {
        let s = try nonEmptyText()
        guard s.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw .badManifest(field: name, reason: "\"\(s)\" is not a URI reference")
        }
        return s
    }

    func uint() throws(ManifestError) -> UInt64 {
        switch raw {
        case .cbor(.unsigned(let n)): return n
        case .json(let v):
            guard let n = v.uint64 else { throw wrongType("unsigned integer") }
            return n
        default: throw wrongType("unsigned integer")
        }
    }

    /// CBOR: tag 1 around an integer (RFC 8949 §3.4.2). JSON: RFC 3339 text.
    func timestamp() throws(ManifestError) -> Int64 {
        switch raw {
        case .cbor(.tagged(1, let inner)):
            guard let seconds = inner.int64 else {
                throw .badManifest(field: name, reason: "tag 1 must hold an integer number of seconds, found \(inner.typeName)")
            }
            return seconds
        case .cbor(let v):
            throw .badManifest(field: name, reason: "expected tag 1 (epoch seconds), found \(v.typeName)")
        case .json(.string(let s)):
            guard let seconds = RFC3339.parse(s) else {
                throw .badManifest(field: name, reason: "\"\(s)\" is not an RFC 3339 date-time")
            }
            return seconds
        case .json: throw wrongType("RFC 3339 string")
        }
    }

    func digestAlgorithm() throws(ManifestError) -> DigestAlgorithm {
        switch raw {
        case .cbor(let v):
            guard let id = v.int64 else { throw wrongType("COSE algorithm id") }
            guard let algorithm = DigestAlgorithm(coseID: id) else {
                throw .badManifest(field: name, reason: "unsupported digest algorithm \(id)")
            }
            return algorithm
        case .json(let v):
            guard case .string(let s) = v else { throw wrongType("string") }
            guard let algorithm = DigestAlgorithm(jsonName: s) else {
                throw .badManifest(field: name, reason: "unsupported digest algorithm \"\(s)\"")
            }
            return algorithm
        }
    }

    /// CBOR: a byte string. JSON: lowercase hex.
    func digestBytes() throws(ManifestError) -> [UInt8] {
        switch raw {
        case .cbor(.bytes(let b)): return b
        case .cbor: throw wrongType("byte string")
        case .json(.string(let s)):
            guard let b = Hex.decodeLowercase(s) else {
                throw .badManifest(field: name, reason: "not lowercase hex")
            }
            return b
        case .json: throw wrongType("hex string")
        }
    }

    /// COSE_Key (RFC 9053 §7) or JWK (RFC 7517, RFC 8037) for P-256 or Ed25519.
    func keyInfo() throws(ManifestError) -> KeyInfo {
        let curve: KeyInfo.Curve
        let x: [UInt8]
        var y: [UInt8]?
        switch raw {
        case .cbor:
            let f = try fields(of: [(1, "kty"), (-1, "crv"), (-2, "x"), (-3, "y")])
            guard let kty = f["kty"], let crv = f["crv"], let xNode = f["x"] else {
                throw .badManifest(field: name, reason: "COSE_Key needs kty, crv and x")
            }
            switch (kty.rawInt, crv.rawInt) {
            case (2, 1): curve = .p256
            case (1, 6): curve = .ed25519
            default: throw .badManifest(field: name, reason: "only EC2/P-256 and OKP/Ed25519 keys are supported")
            }
            x = try xNode.rawBytes()
            y = try f["y"]?.rawBytes()
        case .json:
            let f = try fields(of: [(0, "kty"), (0, "crv"), (0, "x"), (0, "y")])
            guard let kty = f["kty"], let crv = f["crv"], let xNode = f["x"] else {
                throw .badManifest(field: name, reason: "JWK needs kty, crv and x")
            }
            switch (try kty.text(), try crv.text()) {
            case ("EC", "P-256"): curve = .p256
            case ("OKP", "Ed25519"): curve = .ed25519
            default: throw .badManifest(field: name, reason: "only EC/P-256 and OKP/Ed25519 keys are supported")
            }
            x = try xNode.rawBytes()
            y = try f["y"]?.rawBytes()
        }
        let expected = 32
        guard x.count == expected, curve == .ed25519 ? y == nil : y?.count == expected else {
            throw .badManifest(field: name, reason: "key coordinates have the wrong length")
        }
        return KeyInfo(curve: curve, x: x, y: y)
    }

    private var rawInt: Int64? {
        if case .cbor(let v) = raw { return v.int64 }
        return nil
    }

    /// CBOR: a byte string. JSON: base64url (JWK members, RFC 7518 §6.2.1.2).
    private func rawBytes() throws(ManifestError) -> [UInt8] {
        switch raw {
        case .cbor(.bytes(let b)): return b
        case .json(.string(let s)):
            guard let b = Base64URL.decode(s) else { throw .badManifest(field: name, reason: "not base64url") }
            return b
        default: throw wrongType("key coordinate")
        }
    }
}
