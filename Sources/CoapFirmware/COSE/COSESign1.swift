import CoapFirmwareCore
import CoapFirmwareDevice

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
    /// Written by the core (the same bytes the device hashes).
    var toBeSigned: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(protectedBytes.count + payload.count + 24)
        protectedBytes.withUnsafeBytes { p in
            payload.withUnsafeBytes { m in
                COSESign1View.writeToBeSigned(protectedHeader: p, payload: m) { out.append(contentsOf: $0) }
            }
        }
        return out
    }

    /// Parses the envelope with the core's in-place reader (the one the
    /// device runs); structural faults are `bad-manifest` naming the part,
    /// an unusable algorithm is `bad-signature` naming `alg`.
    init(decoding bytes: [UInt8]) throws(ManifestError) {
        let parsed = bytes.withUnsafeBytes { raw in
            COSESign1View.parse(raw).map { view in
                (view, Array(raw[view.protectedHeader]), Array(raw[view.payload]), Array(raw[view.signature]),
                 view.kid.map { Array(raw[$0]) })
            }
        }
        switch parsed {
        case .failure(let failure):
            let field = String(describing: failure.part.fieldName)
            let reason = String(describing: failure.reason)
            if failure.part.isSignatureError { throw .badSignature(field: field, reason: reason) }
            throw .badManifest(field: field, reason: reason)
        case .success(let (view, protectedBytes, payload, signature, kid)):
            guard let algorithm = SignatureAlgorithm(coseID: view.algorithm) else {
                throw .badSignature(field: "alg", reason: "unsupported algorithm \(view.algorithm)")
            }
            self.protectedBytes = protectedBytes
            self.algorithm = algorithm
            self.kid = kid
            self.payload = payload
            self.signature = signature
        }
    }

    private init(protectedBytes: [UInt8], algorithm: SignatureAlgorithm, kid: [UInt8], payload: [UInt8]) {
        self.protectedBytes = protectedBytes
        self.algorithm = algorithm
        self.kid = kid
        self.payload = payload
        self.signature = []
    }

    /// A COSE_Sign1_Tagged over `payload`; `detached` leaves the payload out
    /// (nil), as SUIT's authentication wrapper carries it (the payload is the
    /// SUIT_Digest).
    static func sign(payload: [UInt8], key: PrivateKey, detached: Bool = false) throws(KeyError) -> [UInt8] {
        let kid = key.publicKey.kid
        var message = COSESign1(
            protectedBytes: CBOREncoder.encode(.map([CBORMapEntry(.int(1), .int(key.algorithm.coseID))])),
            algorithm: key.algorithm, kid: kid, payload: payload)
        message.signature = try key.sign(message.toBeSigned)
        return CBOREncoder.encode(.tagged(tag, .array([
            .bytes(message.protectedBytes), .map([CBORMapEntry(.int(4), .bytes(kid))]),
            detached ? .null : .bytes(payload), .bytes(message.signature),
        ])))
    }
}
