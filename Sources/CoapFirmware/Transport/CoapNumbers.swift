/// CoAP protocol numbers this project uses, each with its source.
enum CoapContentFormat {
    /// text/plain; charset=utf-8 (RFC 7252 §12.3).
    static let textPlain: UInt16 = 0
    /// application/link-format (RFC 6690 §7.2).
    static let linkFormat: UInt16 = 40
    /// application/octet-stream (RFC 7252 §12.3): firmware images.
    static let octetStream: UInt16 = 42
    /// application/json (RFC 7252 §12.3): JWS manifests.
    static let json: UInt16 = 50
    /// application/cbor (RFC 7049 §7.4): accepted as a request for the CBOR manifest.
    static let cbor: UInt16 = 60
    /// application/cose; cose-type="cose-sign1" (RFC 9052 §9.1): COSE manifests.
    static let coseSign1: UInt16 = 18
    /// application/suit-envelope+cose: SUIT envelopes (`manifest.suit`).
    /// draft-ietf-suit-manifest-33 registers the media type but no CoAP
    /// Content-Format, and IANA lists none: until one is assigned we use the
    /// first ID of RFC 7252 §12.3's experimental range (65000-65535), so
    /// that `.../manifest` can be negotiated by Accept. One constant to
    /// change when IANA assigns the number.
    static let suitEnvelope: UInt16 = 65000
}
