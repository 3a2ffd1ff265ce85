// Signature verification speed on this machine (issue #6): HSS-LMS H10/W4
// through the core with the pure-Swift and the OpenSSL SHA-256 engines,
// against ES256 and Ed25519 through OpenSSL. Prints a table; run from a
// release build (`make bench`), never as a test.
import Foundation
import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice

struct Vector: Decodable { var `public`: String; var message: String; var signature: String }

func bytes(_ hex: String) -> [UInt8] { Hex.decodeLowercase(hex)! }

/// Median seconds per call over `rounds` rounds of `iterations` calls.
func measure(rounds: Int = 7, iterations: Int, _ body: () -> Bool) -> Double {
    var samples: [Double] = []
    for _ in 0..<rounds {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<iterations { precondition(body(), "verification failed") }
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(iterations))
    }
    return samples.sorted()[rounds / 2]
}

let root = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "."
let data = try Data(contentsOf: URL(fileURLWithPath: "\(root)/Vectors/lms/h10w4.json"))
let v = try JSONDecoder().decode([Vector].self, from: data)[0]
let pub = bytes(v.public), sig = bytes(v.signature), msg = bytes(v.message)

func hss<H: SHA256Engine>(_ engine: H.Type) -> Bool {
    pub.withUnsafeBytes { p in sig.withUnsafeBytes { s in msg.withUnsafeBytes { m in
        HSS.verify(engine, publicKey: p, signature: s, message: { $0.update(m) }) == nil } } }
}

let es256 = try PrivateKey.generate(.es256), ed25519 = try PrivateKey.generate(.eddsa)
let esSig = try es256.sign(msg), edSig = try ed25519.sign(msg)
let esPub = es256.publicKey, edPub = ed25519.publicKey

let rows: [(String, Int, Double)] = [
    ("HSS-LMS H10/W4, core + pure-Swift SHA-256", sig.count, measure(iterations: 50) { hss(SHA256.self) }),
    ("HSS-LMS H10/W4, core + OpenSSL SHA-256", sig.count, measure(iterations: 200) { hss(OpenSSLSHA256.self) }),
    ("ES256 (P-256), OpenSSL", esSig.count, measure(iterations: 500) { esPub.verify(signature: esSig, message: msg, algorithm: .es256) }),
    ("Ed25519, OpenSSL", edSig.count, measure(iterations: 500) { edPub.verify(signature: edSig, message: msg, algorithm: .eddsa) }),
]
print("| verification (\(msg.count)-byte message) | signature bytes | time per verify |")
print("|---|---|---|")
for (name, size, seconds) in rows {
    print("| \(name) | \(size) | \(String(format: "%.1f", seconds * 1e6)) µs |")
}
