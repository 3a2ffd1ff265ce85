import CoapFirmwareCore

/// Signs manifests in both formats with one private key.
public struct ManifestSigner {
    public let key: PrivateKey

    public init(key: PrivateKey) { self.key = key }

    /// A tagged COSE_Sign1 over the deterministic CBOR payload (SPEC §3).
    public func signCOSE(_ manifest: Manifest) throws(KeyError) -> [UInt8] {
        try COSESign1.sign(payload: CBOREncoder.encode(manifest.cborValue), key: key)
    }

    /// A flattened JWS over the JSON payload (SPEC §3).
    public func signJWS(_ manifest: Manifest) throws(KeyError) -> [UInt8] {
        try JWSFlattened.sign(payload: JSONWriter.write(manifest.jsonValue), key: key)
    }
}
