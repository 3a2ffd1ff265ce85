import CoapFirmwareCore

/// A COSE_Sign1 message (RFC 9052 §4.2), as SPEC §3 profiles it: tag 18,
/// protected header `{1: alg}`, unprotected `{4: kid}`, attached payload.
struct COSESign1 {
    static let tag: UInt64 = 18

    var protectedBytes: [UInt8]
    var algorithm: SignatureAlgorithm
    var kid: [UInt8]?
    var payload: [UInt8]
    var signature: [UInt8]

    /// Sig_structure for Signature1 with empty external_aad (RFC 9052 §4.4).
    var toBeSigned: [UInt8] {
        CBORCodec.encode(.array([.text("Signature1"), .bytes(protectedBytes), .bytes([]), .bytes(payload)]))
    }

    /// Parses the envelope; structural faults are `bad-manifest` naming the
    /// part, an unusable algorithm is `bad-signature` naming `alg`.
    init(decoding bytes: [UInt8]) throws(ManifestError) {
        let value: CBORValue
        do {
            value = try CBORCodec.decode(bytes)
        } catch {
            throw .badManifest(field: "COSE_Sign1", reason: error.description)
        }
        guard case .tagged(Self.tag, let inner) = value else {
            throw .badManifest(field: "COSE_Sign1", reason: "expected CBOR tag 18 (COSE_Sign1), found \(value.typeName)")
        }
        guard case .array(let parts) = inner, parts.count == 4 else {
            throw .badManifest(field: "COSE_Sign1", reason: "expected an array of 4 elements")
        }
        guard case .bytes(let protectedBytes) = parts[0] else {
            throw .badManifest(field: "COSE_Sign1.protected", reason: "expected a byte string")
        }
        guard case .map(let unprotected) = parts[1] else {
            throw .badManifest(field: "COSE_Sign1.unprotected", reason: "expected a map")
        }
        guard case .bytes(let payload) = parts[2] else {
            throw .badManifest(field: "COSE_Sign1.payload", reason: "expected an attached payload byte string")
        }
        guard case .bytes(let signature) = parts[3] else {
            throw .badManifest(field: "COSE_Sign1.signature", reason: "expected a byte string")
        }
        var protected: [CBORMapEntry] = []
        if !protectedBytes.isEmpty {
            guard case .map(let entries)? = try? CBORCodec.decode(protectedBytes) else {
                throw .badManifest(field: "COSE_Sign1.protected", reason: "not a CBOR map")
            }
            protected = entries
        }
        // Header labels: 1 alg, 2 crit, 4 kid (RFC 9052 §3.1).
        if protected.contains(where: { $0.key == .int(2) }) {
            throw .badSignature(field: "crit", reason: "critical header parameters are not supported")
        }
        guard let algValue = protected.first(where: { $0.key == .int(1) })?.value else {
            throw .badSignature(field: "alg", reason: "no alg in the protected header")
        }
        guard let id = algValue.int64, let algorithm = SignatureAlgorithm(coseID: id) else {
            throw .badSignature(field: "alg", reason: "unsupported algorithm \(ManifestDecoderDescribe.cbor(algValue))")
        }
        if let kidValue = (protected + unprotected).first(where: { $0.key == .int(4) })?.value {
            guard case .bytes(let kid) = kidValue else {
                throw .badManifest(field: "COSE_Sign1.kid", reason: "expected a byte string")
            }
            self.kid = kid
        }
        self.protectedBytes = protectedBytes
        self.algorithm = algorithm
        self.payload = payload
        self.signature = signature
    }

    private init(protectedBytes: [UInt8], algorithm: SignatureAlgorithm, kid: [UInt8], payload: [UInt8]) {
        self.protectedBytes = protectedBytes
        self.algorithm = algorithm
        self.kid = kid
        self.payload = payload
        self.signature = []
    }

    static func sign(payload: [UInt8], key: PrivateKey) throws(KeyError) -> [UInt8] {
        let kid = key.publicKey.kid
        var message = COSESign1(
            protectedBytes: CBORCodec.encode(.map([CBORMapEntry(.int(1), .int(key.algorithm.coseID))])),
            algorithm: key.algorithm, kid: kid, payload: payload)
        message.signature = try key.sign(message.toBeSigned)
        return CBORCodec.encode(.tagged(tag, .array([
            .bytes(message.protectedBytes), .map([CBORMapEntry(.int(4), .bytes(kid))]),
            .bytes(payload), .bytes(message.signature),
        ])))
    }
}

/// Short renderings of CBOR values for messages.
enum ManifestDecoderDescribe {
    static func cbor(_ value: CBORValue) -> String {
        if let n = value.int64 { return String(n) }
        if case .text(let s) = value { return "\"\(s)\"" }
        return "(\(value.typeName))"
    }
}
