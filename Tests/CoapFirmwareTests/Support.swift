import Foundation
@testable import CoapFirmware
import TestSupport

/// PEM-wraps DER (for building keys from RFC test vectors).
func pem(_ label: String, _ der: [UInt8]) -> [UInt8] {
    let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
    return Array("-----BEGIN \(label)-----\n\(body)\n-----END \(label)-----\n".utf8)
}

/// An Ed25519 private key from its 32-byte seed (RFC 8410 PKCS#8 form).
func ed25519PrivateKey(seed: [UInt8]) throws -> PrivateKey {
    try PrivateKey(pem: pem("PRIVATE KEY", hex("302e020100300506032b657004220420") + seed))
}
