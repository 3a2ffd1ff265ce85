internal import CCrypto
import CoapFirmwareDevice

/// OpenSSL's SHA-2 plugged into the device's engine protocols: HSS/LMS,
/// the block digest verifier and the publisher run the device's code with
/// these. The low-level contexts live inline, so a hash step costs no
/// allocation; SHA-256 is about three times faster than the pure-Swift
/// engine on x86-64.
public enum OpenSSLDigests: DigestEngines {
    public typealias SHA256 = OpenSSLSHA256
    public typealias SHA384 = OpenSSLSHA512Family<SHA384Values>
    public typealias SHA512 = OpenSSLSHA512Family<SHA512Values>
}

public struct OpenSSLSHA256: SHA256Engine {
    private var context = SHA256_CTX()

    public init() { SHA256_Init(&context) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        SHA256_Update(&context, base, bytes.count)
    }

    public mutating func finalize(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= 32)
        SHA256_Final(out.baseAddress!.assumingMemoryBound(to: UInt8.self), &context)
    }
}

/// SHA-512, or SHA-384 (the same context, other initial values).
public struct OpenSSLSHA512Family<Parameters: SHA512Parameters>: HashEngine {
    public static var digestLength: Int { Parameters.digestLength }
    private var context = SHA512_CTX()

    public init() {
        if Parameters.digestLength == 48 { SHA384_Init(&context) } else { SHA512_Init(&context) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        SHA512_Update(&context, base, bytes.count)
    }

    public mutating func finalize(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Parameters.digestLength)
        // SHA512_Final writes the context's own length (48 after SHA384_Init).
        var full = InlineArray<64, UInt8>(repeating: 0)
        withUnsafeMutableBytes(of: &full) { raw in
            SHA512_Final(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &context)
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<Parameters.digestLength]))
        }
    }
}
