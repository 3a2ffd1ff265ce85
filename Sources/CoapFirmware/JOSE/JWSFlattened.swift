import CoapFirmwareCore
import CoapFirmwareDevice

/// A JWS in the flattened JSON serialization (RFC 7515 §7.2.2), as SPEC §3
/// profiles it: protected header `{"alg", "kid"}`, base64url payload.
struct JWSFlattened {
    var protectedB64: String
    var payloadB64: String
    var algorithm: SignatureAlgorithm
    var kid: [UInt8]?
    var payload: [UInt8]
    var signature: [UInt8]

    /// ASCII(BASE64URL(protected) || '.' || BASE64URL(payload)) (RFC 7515 §5.1).
    var signingInput: [UInt8] { Array("\(protectedB64).\(payloadB64)".utf8) }

    init(decoding bytes: [UInt8]) throws(ManifestError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw .badManifest(field: "JWS", reason: error.description)
        }
        guard case .object(let members) = value else {
            throw .badManifest(field: "JWS", reason: "expected a JSON object")
        }
        var seen = Set<String>()
        for member in members where !seen.insert(member.key).inserted {
            throw .badManifest(field: "JWS.\(member.key)", reason: "member given twice")
        }
        if members.contains(where: { $0.key == "signatures" }) {
            throw .badManifest(field: "JWS", reason: "the general serialization is not supported; use the flattened one")
        }
        func string(_ name: String) throws(ManifestError) -> String {
            guard let member = members.first(where: { $0.key == name }) else {
                throw .badManifest(field: "JWS.\(name)", reason: "required member is missing")
            }
            guard case .string(let s) = member.value else {
                throw .badManifest(field: "JWS.\(name)", reason: "expected a string")
            }
            return s
        }
        func base64(_ name: String, _ text: String) throws(ManifestError) -> [UInt8] {
            guard let b = Base64URL.decode(text) else { throw .badManifest(field: "JWS.\(name)", reason: "not base64url") }
            return b
        }
        protectedB64 = try string("protected")
        payloadB64 = try string("payload")
        signature = try base64("signature", try string("signature"))
        payload = try base64("payload", payloadB64)

        let header: [(key: String, value: JSONValue)]
        do {
            guard case .object(let h) = try JSONParser.parse(try base64("protected", protectedB64)) else {
                throw ManifestError.badManifest(field: "JWS.protected", reason: "not a JSON object")
            }
            header = h
        } catch let error as ManifestError {
            throw error
        } catch {
            throw .badManifest(field: "JWS.protected", reason: "\(error)")
        }
        // RFC 7515 §4: a header with a duplicate member name must be rejected.
        var names = Set<String>()
        for member in header where !names.insert(member.key).inserted {
            throw .badManifest(field: "JWS.protected.\(member.key)", reason: "header member given twice")
        }
        if header.contains(where: { $0.key == "crit" || $0.key == "b64" }) {
            throw .badSignature(field: "crit", reason: "header extensions (crit, b64) are not supported")
        }
        guard case .string(let alg)? = header.first(where: { $0.key == "alg" })?.value else {
            throw .badSignature(field: "alg", reason: "no alg string in the protected header")
        }
        guard let algorithm = SignatureAlgorithm(joseName: alg) else {
            throw .badSignature(field: "alg", reason: "unsupported algorithm \"\(alg)\"")
        }
        self.algorithm = algorithm
        if let kidValue = header.first(where: { $0.key == "kid" })?.value {
            guard case .string(let text) = kidValue, let kid = Base64URL.decode(text) else {
                throw .badManifest(field: "JWS.protected.kid", reason: "expected base64url text")
            }
            self.kid = kid
        }
    }

    static func sign(payload: [UInt8], key: PrivateKey) throws(KeyError) -> [UInt8] {
        let header = JSONWriter.write(.object([
            ("alg", .string(key.algorithm.joseName)), ("kid", .string(Base64URL.encode(key.publicKey.kid))),
        ]))
        let protectedB64 = Base64URL.encode(header)
        let payloadB64 = Base64URL.encode(payload)
        let signature = try key.sign(Array("\(protectedB64).\(payloadB64)".utf8))
        return JSONWriter.write(.object([
            ("protected", .string(protectedB64)), ("payload", .string(payloadB64)),
            ("signature", .string(Base64URL.encode(signature))),
        ]))
    }
}
