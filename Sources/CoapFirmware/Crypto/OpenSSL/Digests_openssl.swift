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

/// RFC 9562 §5.5 name-based UUIDs (version 5, SHA-1), as RFC 9124 suggests
/// for SUIT's vendor and class ids. SHA-1 only names here; it never
/// authenticates anything.
public enum UUID5 {
    /// The DNS namespace (RFC 9562 Appendix A).
    public static let dnsNamespace: [UInt8] = [0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                               0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8]

    public static func make(namespace: [UInt8], name: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 20)
        let input = namespace + name
        _ = SHA1(input, input.count, &digest)
        var uuid = Array(digest.prefix(16))
        uuid[6] = uuid[6] & 0x0F | 0x50  // version 5
        uuid[8] = uuid[8] & 0x3F | 0x80  // the RFC 9562 variant
        return uuid
    }

    /// vendor-id = UUID5(DNS, manufacturer); class-id = UUID5(vendor-id, model).
    public static func suitIdentity(manufacturer: String, model: String) -> (vendorID: [UInt8], classID: [UInt8]) {
        let vendor = make(namespace: dnsNamespace, name: Array(manufacturer.utf8))
        return (vendor, make(namespace: vendor, name: Array(model.utf8)))
    }
}
