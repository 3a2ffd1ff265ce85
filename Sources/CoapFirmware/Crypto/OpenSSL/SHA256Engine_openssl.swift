internal import CCrypto
import CoapFirmwareCore

/// OpenSSL's SHA-256 plugged into the core's `SHA256Engine` (used by HSS/LMS
/// verification and signing on Linux). The low-level `SHA256_CTX` lives
/// inline, so an LMS chain step costs no allocation; it is about three
/// times faster than the pure-Swift engine on x86-64.
public struct OpenSSLSHA256: SHA256Engine {
    private var context = SHA256_CTX()

    public init() {
        SHA256_Init(&context)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        SHA256_Update(&context, base, bytes.count)
    }

    public mutating func finalize(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= 32)
        SHA256_Final(out.baseAddress!.assumingMemoryBound(to: UInt8.self), &context)
    }
}
