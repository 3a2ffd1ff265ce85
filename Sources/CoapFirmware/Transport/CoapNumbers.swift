/// CoAP protocol numbers this project uses, each with its source.
public enum CoapContentFormat {
    /// text/plain; charset=utf-8 (RFC 7252 §12.3).
    public static let textPlain: UInt16 = 0
    /// application/link-format (RFC 6690 §7.2).
    public static let linkFormat: UInt16 = 40
    /// application/octet-stream (RFC 7252 §12.3): firmware images.
    public static let octetStream: UInt16 = 42
    /// application/json (RFC 7252 §12.3): JWS manifests.
    public static let json: UInt16 = 50
    /// application/cbor (RFC 7049 §7.4): accepted as a request for the CBOR manifest.
    public static let cbor: UInt16 = 60
    /// application/cose; cose-type="cose-sign1" (RFC 9052 §9.1): COSE manifests.
    public static let coseSign1: UInt16 = 18
}

/// Block2 sizes (RFC 7959 §2.2): SZX 0..6 means 16..1024 bytes.
public enum BlockSize {
    public static let allowed: [Int] = [16, 32, 64, 128, 256, 512, 1024]

    /// The SZX exponent for a size, or nil if the size is not a power of two in 16...1024.
    public static func szx(for size: Int) -> Int? {
        allowed.firstIndex(of: size)
    }
}
