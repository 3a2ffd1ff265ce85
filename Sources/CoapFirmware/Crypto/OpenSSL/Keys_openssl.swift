internal import CCrypto
import CoapFirmwareCore
import CoapFirmwareDevice

/// Errors from key handling and signing.
public enum KeyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes are not a key of a supported kind.
    case unreadable(String)
    /// The key's algorithm or curve is not ES256/P-256 or Ed25519.
    case unsupported(String)
    /// OpenSSL failed an operation that should not fail.
    case openssl(String)
    /// A stateful HSS-LMS key has used all its one-time leaves.
    case exhausted(path: String, capacity: UInt64, remaining: UInt64)

    public var description: String {
        switch self {
        case .unreadable(let why): return "unreadable key: \(why)"
        case .unsupported(let why): return "unsupported key: \(why)"
        case .openssl(let why): return "OpenSSL error: \(why)"
        case .exhausted(let path, let capacity, let remaining):
            return "HSS-LMS key \(path) has \(remaining) signature(s) left of \(capacity), too few for this release (a release needs 2: COSE and JWS); create a new key with keygen and give devices its public key first"
        }
    }
}

/// Takes OpenSSL's queued error text, so failures say what OpenSSL saw.
func opensslErrorText() -> String {
    var text: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        text.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return text.isEmpty ? "no detail" : text.joined(separator: "; ")
}

/// Owns one `EVP_PKEY`; every public and private key type wraps one.
final class EVPKey {
    let pointer: OpaquePointer
    let algorithm: SignatureAlgorithm

    /// Takes ownership of `pointer`; refuses keys other than P-256 and Ed25519.
    init(taking pointer: OpaquePointer) throws(KeyError) {
        self.pointer = pointer
        switch EVP_PKEY_get_base_id(pointer) {
        case EVP_PKEY_ED25519:
            algorithm = .eddsa
        case EVP_PKEY_EC:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            guard EVP_PKEY_get_utf8_string_param(pointer, "group", &name, name.count, &length) == 1 else {
                EVP_PKEY_free(pointer)
                throw .unsupported("EC key without a named curve")
            }
            let curve = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard curve == "prime256v1" || curve == "P-256" else {
                EVP_PKEY_free(pointer)
                throw .unsupported("EC curve \(curve) (only P-256 is supported)")
            }
            algorithm = .es256
        default:
            EVP_PKEY_free(pointer)
            throw .unsupported("key type \(EVP_PKEY_get_base_id(pointer)) (only EC P-256 and Ed25519 are supported)")
        }
    }

    /// Reads a PEM file's key with `read` (one of OpenSSL's PEM_read_bio_*).
    convenience init(pem: [UInt8], kind: String, _ read: (OpaquePointer) -> OpaquePointer?) throws(KeyError) {
        let pointer = try withMemoryBIO(pem) { bio throws(KeyError) -> OpaquePointer in
            guard let p = read(bio) else { throw .unreadable("not a PEM \(kind): \(opensslErrorText())") }
            return p
        }
        try self.init(taking: pointer)
    }

    deinit { EVP_PKEY_free(pointer) }

    /// DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    var spkiDER: [UInt8] {
        let length = i2d_PUBKEY(pointer, nil)
        guard length > 0 else { fatalError("OpenSSL: i2d_PUBKEY failed: \(opensslErrorText())") }
        var out = [UInt8](repeating: 0, count: Int(length))
        out.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_PUBKEY(pointer, &cursor)
        }
        return out
    }
}

/// Runs `body` with a read-only memory BIO over `bytes`.
func withMemoryBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) throws(KeyError) -> T) throws(KeyError) -> T {
    let result: Result<T, KeyError> = bytes.withUnsafeBytes { raw in
        guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
            return .failure(.openssl("BIO_new_mem_buf failed"))
        }
        defer { BIO_free(bio) }
        return Result { () throws(KeyError) -> T in try body(bio) }
    }
    return try result.get()
}

/// Runs `write` into a fresh memory BIO and returns what it wrote.
func writeToMemoryBIO(_ write: (OpaquePointer) -> Int32) throws(KeyError) -> [UInt8] {
    guard let bio = BIO_new(BIO_s_mem()) else { throw .openssl("BIO_new failed") }
    defer { BIO_free(bio) }
    guard write(bio) == 1 else { throw .openssl(opensslErrorText()) }
    var data: UnsafeMutablePointer<CChar>?
    // BIO_get_mem_data is a macro over BIO_ctrl(BIO_CTRL_INFO).
    let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)
    guard length > 0, let data else { throw .openssl("empty BIO") }
    return data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
}

/// A manifest verification key: ES256 (P-256), Ed25519 or HSS-LMS (SPEC §3).
public final class PublicKey: @unchecked Sendable {
    // @unchecked Sendable: the EVP_PKEY is never mutated after init, and
    // OpenSSL 3 allows concurrent verification with one key.
    enum Backing {
        case evp(EVPKey)
        /// RFC 8554 HSS public key bytes (u32 L ‖ LMS public key).
        case hss([UInt8])
    }
    let backing: Backing

    public var algorithm: SignatureAlgorithm {
        switch backing {
        case .evp(let key): return key.algorithm
        case .hss: return .hssLms
        }
    }

    /// The bytes the `kid` is computed over: DER SubjectPublicKeyInfo, or
    /// for HSS-LMS the RFC 8554 public key bytes (SPEC §3).
    public let spkiDER: [UInt8]

    /// The first 8 bytes of SHA-256 over `spkiDER` (SPEC §3).
    public var kid: [UInt8] { Array(OpenSSLSHA256.hash(spkiDER).prefix(8)) }

    init(key: EVPKey) {
        self.backing = .evp(key)
        self.spkiDER = key.spkiDER
    }

    /// Reads an HSS public key in RFC 8554 byte form (u32 L ‖ type ‖
    /// otstype ‖ I ‖ T[1]), exactly 60 bytes.
    public init(hssBytes bytes: [UInt8]) throws(KeyError) {
        let result = bytes.withUnsafeBytes { HSS.readPublicKey($0) }
        if case .failure(let failure) = result {
            throw .unreadable("not an RFC 8554 HSS public key: \(failure.description)")
        }
        self.backing = .hss(bytes)
        self.spkiDER = bytes
    }

    /// Reads a public key file: PEM SPKI, or RFC 8554 HSS bytes.
    public convenience init(fileBytes bytes: [UInt8]) throws(KeyError) {
        if bytes.starts(with: Array("-----BEGIN".utf8)) {
            try self.init(pem: bytes)
        } else {
            try self.init(hssBytes: bytes)
        }
    }

    /// The RFC 8554 bytes of an HSS key, nil for the others.
    public var hssBytes: [UInt8]? {
        if case .hss(let bytes) = backing { return bytes }
        return nil
    }

    var evp: EVPKey? {
        if case .evp(let key) = backing { return key }
        return nil
    }

    /// Reads a PEM `PUBLIC KEY` (SPKI) file's bytes.
    public convenience init(pem: [UInt8]) throws(KeyError) {
        self.init(key: try EVPKey(pem: pem, kind: "public key (SPKI)") { PEM_read_bio_PUBKEY($0, nil, nil, nil) })
    }

    /// Reads DER SubjectPublicKeyInfo.
    public convenience init(spkiDER der: [UInt8]) throws(KeyError) {
        let pointer: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let pointer else { throw .unreadable("not a DER SubjectPublicKeyInfo") }
        self.init(key: try EVPKey(taking: pointer))
    }

    /// Builds a key from a manifest's `key-info` (COSE_Key or JWK coordinates).
    public convenience init(keyInfo: KeyInfo) throws(KeyError) {
        // Wrap the raw point in a fixed SPKI prefix: simpler than OSSL_PARAM
        // building, and the prefixes are constants of RFC 5480 / RFC 8410.
        let der: [UInt8]
        switch keyInfo.curve {
        case .ed25519:
            der = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00] + keyInfo.x
        case .p256:
            guard let y = keyInfo.y else { throw .unreadable("P-256 key-info without y") }
            der = [0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
                   0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04] + keyInfo.x + y
        }
        try self.init(spkiDER: der)
    }

    /// The key as `key-info` coordinates (COSE_Key / JWK); nil for
    /// HSS-LMS, which `key-info` cannot carry.
    public var keyInfo: KeyInfo? {
        switch algorithm {
        case .eddsa: return KeyInfo(curve: .ed25519, x: Array(spkiDER.suffix(32)))
        case .es256:
            let point = spkiDER.suffix(64)
            return KeyInfo(curve: .p256, x: Array(point.prefix(32)), y: Array(point.suffix(32)))
        case .hssLms: return nil
        }
    }

    /// The file form: PEM SPKI, or the raw RFC 8554 bytes for HSS-LMS.
    public func fileBytes() throws(KeyError) -> [UInt8] {
        switch backing {
        case .hss(let bytes): return bytes
        case .evp(let key): return try writeToMemoryBIO { PEM_write_bio_PUBKEY($0, key.pointer) }
        }
    }

    public func pem() throws(KeyError) -> [UInt8] { try fileBytes() }

    /// Verifies `signature` over `message`: raw r‖s for ES256 (RFC 9053 §2.1),
    /// 64 bytes for Ed25519. False for any malformed signature.
    public func verify(signature: [UInt8], message: [UInt8], algorithm: SignatureAlgorithm) -> Bool {
        guard algorithm == self.algorithm else { return false }
        let key: EVPKey
        switch backing {
        case .hss(let publicKey):
            return verifyHSS(publicKey: publicKey, signature: signature, message: message) == nil
        case .evp(let k): key = k
        }
        guard signature.count == 64 else { return false }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        switch algorithm {
        case .eddsa:
            guard EVP_DigestVerifyInit(context, nil, nil, nil, key.pointer) == 1 else { return false }
            return EVP_DigestVerify(context, signature, 64, message, message.count) == 1
        case .es256:
            guard let der = ecdsaRawToDER(signature) else { return false }
            guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, key.pointer) == 1 else { return false }
            let ok = EVP_DigestVerify(context, der, der.count, message, message.count) == 1
            ERR_clear_error()
            return ok
        case .hssLms:
            return false
        }
    }

    /// HSS verification by the core, with OpenSSL's SHA-256 plugged in.
    func verifyHSS(publicKey: [UInt8], signature: [UInt8], message: [UInt8]) -> HSSFailure? {
        publicKey.withUnsafeBytes { pub in
            signature.withUnsafeBytes { sig in
                message.withUnsafeBytes { msg in
                    HSS.verify(OpenSSLSHA256.self, publicKey: pub, signature: sig, message: { $0.update(msg) })
                }
            }
        }
    }
}

/// A manifest signing key: PEM PKCS#8 (ES256, Ed25519), or a stateful
/// HSS-LMS key file (`HSSPrivateKey`).
public final class PrivateKey {
    enum Backing {
        case evp(EVPKey)
        case hss(HSSPrivateKey)
    }
    let backing: Backing

    public var algorithm: SignatureAlgorithm {
        switch backing {
        case .evp(let key): return key.algorithm
        case .hss: return .hssLms
        }
    }

    init(key: EVPKey) { self.backing = .evp(key) }

    public init(hss: HSSPrivateKey) { self.backing = .hss(hss) }

    /// The HSS-LMS key behind this one, if it is one.
    public var hss: HSSPrivateKey? {
        if case .hss(let key) = backing { return key }
        return nil
    }

    /// Reads a private key file: our HSS-LMS format (by its header) or PEM.
    public static func load(path: String, bytes: [UInt8]) throws(KeyError) -> PrivateKey {
        if HSSPrivateKey.looksLikeKey(bytes) { return PrivateKey(hss: try HSSPrivateKey(path: path)) }
        // The commonest mistake: the public half of the pair.
        if bytes.starts(with: Array("-----BEGIN PUBLIC KEY-----".utf8)) || (try? PublicKey(hssBytes: bytes)) != nil {
            throw .unreadable("this is a public key; signing needs the private key (keygen wrote private.pem or private.hss beside it)")
        }
        return try PrivateKey(pem: bytes)
    }

    /// Generates a fresh key for `algorithm`.
    public static func generate(_ algorithm: SignatureAlgorithm) throws(KeyError) -> PrivateKey {
        guard algorithm != .hssLms else { throw .unsupported("HSS-LMS keys are made by HSSPrivateKey.generate") }
        let name = algorithm == .es256 ? "EC" : "ED25519"
        guard let context = EVP_PKEY_CTX_new_from_name(nil, name, nil) else { throw .openssl(opensslErrorText()) }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw .openssl(opensslErrorText()) }
        if algorithm == .es256, EVP_PKEY_CTX_set_group_name(context, "P-256") != 1 { throw .openssl(opensslErrorText()) }
        var pointer: OpaquePointer?
        guard EVP_PKEY_generate(context, &pointer) == 1, let pointer else { throw .openssl(opensslErrorText()) }
        return PrivateKey(key: try EVPKey(taking: pointer))
    }

    /// Reads a PEM private key (PKCS#8, or the traditional EC form).
    public convenience init(pem: [UInt8]) throws(KeyError) {
        self.init(key: try EVPKey(pem: pem, kind: "private key") { PEM_read_bio_PrivateKey($0, nil, nil, nil) })
    }

    public var publicKey: PublicKey {
        switch backing {
        case .evp(let key): return PublicKey(key: key)
        case .hss(let key): return try! PublicKey(hssBytes: key.publicKeyBytes)
        }
    }

    /// PEM PKCS#8, unencrypted (the file is written 0600).
    public func pkcs8PEM() throws(KeyError) -> [UInt8] {
        guard case .evp(let key) = backing else { throw .unsupported("an HSS-LMS key has no PKCS#8 form") }
        return try writeToMemoryBIO { PEM_write_bio_PKCS8PrivateKey($0, key.pointer, nil, nil, 0, nil, nil) }
    }

    /// Signs `message`: raw r‖s for ES256, 64 bytes for Ed25519, an HSS
    /// signature (one leaf reserved and fsynced first) for HSS-LMS.
    public func sign(_ message: [UInt8]) throws(KeyError) -> [UInt8] {
        let key: EVPKey
        switch backing {
        case .hss(let hss): return try hss.sign(message)
        case .evp(let k): key = k
        }
        guard let context = EVP_MD_CTX_new() else { throw .openssl("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        let md = algorithm == .es256 ? EVP_sha256() : nil
        guard EVP_DigestSignInit(context, nil, md, nil, key.pointer) == 1 else { throw .openssl(opensslErrorText()) }
        var length = 0
        guard EVP_DigestSign(context, nil, &length, message, message.count) == 1 else { throw .openssl(opensslErrorText()) }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, message, message.count) == 1 else { throw .openssl(opensslErrorText()) }
        signature.removeSubrange(length...)
        switch algorithm {
        case .eddsa: return signature
        case .es256:
            guard let raw = ecdsaDERToRaw(signature) else { throw .openssl("could not convert the ECDSA signature") }
            return raw
        case .hssLms: throw .unsupported("HSS-LMS through OpenSSL")
        }
    }
}

/// Raw r‖s (32+32 bytes) to a DER ECDSA-Sig-Value, which OpenSSL verifies.
private func ecdsaRawToDER(_ raw: [UInt8]) -> [UInt8]? {
    guard raw.count == 64, let sig = ECDSA_SIG_new() else { return nil }
    defer { ECDSA_SIG_free(sig) }
    let r = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, 32, nil) }
    let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + 32, 32, nil) }
    guard let r, let s else { BN_free(r); BN_free(s); return nil }
    guard ECDSA_SIG_set0(sig, r, s) == 1 else { BN_free(r); BN_free(s); return nil }
    let length = i2d_ECDSA_SIG(sig, nil)
    guard length > 0 else { return nil }
    var der = [UInt8](repeating: 0, count: Int(length))
    der.withUnsafeMutableBufferPointer { buffer in
        var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
        _ = i2d_ECDSA_SIG(sig, &cursor)
    }
    return der
}

/// A DER ECDSA-Sig-Value to raw r‖s, each left-padded to 32 bytes.
private func ecdsaDERToRaw(_ der: [UInt8]) -> [UInt8]? {
    let sig: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
        var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
        return d2i_ECDSA_SIG(nil, &cursor, buffer.count)
    }
    guard let sig else { return nil }
    defer { ECDSA_SIG_free(sig) }
    var raw = [UInt8](repeating: 0, count: 64)
    let ok = raw.withUnsafeMutableBufferPointer { buffer in
        BN_bn2binpad(ECDSA_SIG_get0_r(sig), buffer.baseAddress, 32) == 32
            && BN_bn2binpad(ECDSA_SIG_get0_s(sig), buffer.baseAddress! + 32, 32) == 32
    }
    return ok ? raw : nil
}
