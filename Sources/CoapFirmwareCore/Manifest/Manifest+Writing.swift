import CoapFirmwareDevice

/// Writes a manifest in either wire form (SPEC §2), with the keys the
/// device reads (`ManifestKeys`).
///
/// Map keys come out in the order RFC 8949 §4.2.1 asks for (ascending
/// integer keys 1..11), and libcbor's encoder emits shortest forms, so one
/// release always yields the same payload bytes.
extension Manifest {
    /// The CBOR payload as a value, integer keys ascending.
    public var cborValue: CBORValue {
        var entries: [CBORMapEntry] = []
        func put(_ field: ManifestField, _ value: CBORValue?) {
            if let value { entries.append(CBORMapEntry(.int(field.rawValue), value)) }
        }
        func digests(_ list: [ImageDigest]) -> CBORValue {
            .array(list.map { d in
                .map([CBORMapEntry(.int(DigestKey.digestAlgo.rawValue), .int(d.algorithm.coseID)),
                      CBORMapEntry(.int(DigestKey.hash.rawValue), .bytes(d.value))])
            })
        }
        put(.manifestVersion, .text(manifestVersion))
        put(.timestamp, .tagged(1, .int(timestamp)))
        put(.manufacturer, .text(manufacturer))
        put(.model, .text(model))
        put(.firmwareVersion, .text(firmwareVersion.description))
        put(.firmwareLocation, firmwareLocation.map { .text($0) })
        put(.firmwareCryptoInfo, firmwareDigests.map { .map([CBORMapEntry(.int(1), digests($0))]) })
        put(.keyInfo, keyInfo.map { key in
            var m = [CBORMapEntry(.int(COSEKeyLabel.kty.rawValue), .int(key.curve.coseKeyType)),
                     CBORMapEntry(.int(COSEKeyLabel.crv.rawValue), .int(key.curve.coseCurve)),
                     CBORMapEntry(.int(COSEKeyLabel.x.rawValue), .bytes(key.x))]
            if let y = key.y { m.append(CBORMapEntry(.int(COSEKeyLabel.y.rawValue), .bytes(y))) }
            return .map(m)
        })
        put(.firmwareSize, firmwareSize.map { .unsigned($0) })
        put(.components, components.map { list in
            .array(list.map { c in
                .map([CBORMapEntry(.int(ComponentKey.name.rawValue), .text(c.name)),
                      CBORMapEntry(.int(ComponentKey.location.rawValue), .text(c.location)),
                      CBORMapEntry(.int(ComponentKey.size.rawValue), .unsigned(c.size)),
                      CBORMapEntry(.int(ComponentKey.commitHash.rawValue), digests(c.digests))])
            })
        })
        put(.critical, critical.map { names in
            .array(names.compactMap { ManifestField(jsonName: $0).map { .int($0.rawValue) } })
        })
        return .map(entries)
    }

    /// The JSON payload as a value, members in the draft's order.
    public var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        func put(_ field: ManifestField, _ value: JSONValue?) {
            if let value { members.append((field.jsonName, value)) }
        }
        func digests(_ list: [ImageDigest]) -> JSONValue {
            .array(list.map {
                .object([(DigestKey.digestAlgo.jsonName, .string($0.algorithm.jsonName)), (DigestKey.hash.jsonName, .string(Hex.encode($0.value)))])
            })
        }
        put(.manifestVersion, .string(manifestVersion))
        put(.timestamp, .string(RFC3339.format(timestamp)))
        put(.manufacturer, .string(manufacturer))
        put(.model, .string(model))
        put(.firmwareVersion, .string(firmwareVersion.description))
        put(.firmwareLocation, firmwareLocation.map { .string($0) })
        put(.firmwareCryptoInfo, firmwareDigests.map { .object([("commitHash", digests($0))]) })
        put(.keyInfo, keyInfo.map { key in
            var m: [(key: String, value: JSONValue)] = [
                ("kty", .string(key.curve.jwkKeyType)), ("crv", .string(key.curve.jwkCurve)), ("x", .string(Base64URL.encode(key.x))),
            ]
            if let y = key.y { m.append(("y", .string(Base64URL.encode(y)))) }
            return .object(m)
        })
        put(.firmwareSize, firmwareSize.map { .number(String($0)) })
        put(.components, components.map { list in
            .array(list.map { c in
                .object([(ComponentKey.name.jsonName, .string(c.name)), (ComponentKey.location.jsonName, .string(c.location)),
                         (ComponentKey.size.jsonName, .number(String(c.size))), (ComponentKey.commitHash.jsonName, digests(c.digests))])
            })
        })
        put(.critical, critical.map { .array($0.map { .string($0) }) })
        return .object(members)
    }
}
