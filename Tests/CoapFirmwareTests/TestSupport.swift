import Foundation
import CoapFirmware
import CoapFirmwareCore

/// The repository root, found from this file's path (Tests/CoapFirmwareTests/…).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let vectorsDirectory = repositoryRoot.appendingPathComponent("Vectors")

func hexBytes(_ text: String) -> [UInt8] { Hex.decode(text)! }

func readVector(_ relative: String) throws -> [UInt8] {
    Array(try Data(contentsOf: vectorsDirectory.appendingPathComponent(relative)))
}

/// PEM-wraps DER (for building keys from RFC test vectors).
func pem(_ label: String, _ der: [UInt8]) -> [UInt8] {
    let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
    return Array("-----BEGIN \(label)-----\n\(body)\n-----END \(label)-----\n".utf8)
}

/// An Ed25519 private key from its 32-byte seed (RFC 8410 PKCS#8 form).
func ed25519PrivateKey(seed: [UInt8]) throws -> PrivateKey {
    try PrivateKey(pem: pem("PRIVATE KEY", hexBytes("302e020100300506032b657004220420") + seed))
}

/// A fresh temporary folder, removed by the caller.
func makeTemporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "coapfw-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The error `body` throws, if it is an `E`; nil when it succeeds or throws something else.
func caught<E: Error>(_ type: E.Type, _ body: () throws -> Void) -> E? {
    do { try body() } catch let error as E { return error } catch { return nil }
    return nil
}
