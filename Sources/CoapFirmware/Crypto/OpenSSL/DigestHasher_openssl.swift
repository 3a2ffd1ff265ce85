internal import CCrypto
import CoapFirmwareCore

/// An incremental digest over OpenSSL EVP (SHA-256/384/512).
///
/// Shape as swift-crypto's: `init`, `update` per chunk, `finalize` once.
/// The class owns its `EVP_MD_CTX` and frees it in `deinit`.
public final class DigestHasher {
    public let algorithm: DigestAlgorithm
    private let context: OpaquePointer
    private var finalized = false

    public init(_ algorithm: DigestAlgorithm) {
        self.algorithm = algorithm
        guard let context = EVP_MD_CTX_new() else { fatalError("OpenSSL: out of memory (EVP_MD_CTX_new)") }
        self.context = context
        guard EVP_DigestInit_ex(context, algorithm.evpMD, nil) == 1 else { fatalError("OpenSSL: EVP_DigestInit_ex failed") }
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(bufferPointer: UnsafeRawBufferPointer) {
        precondition(!finalized, "DigestHasher.update after finalize")
        guard let base = bufferPointer.baseAddress, bufferPointer.count > 0 else { return }
        guard EVP_DigestUpdate(context, base, bufferPointer.count) == 1 else { fatalError("OpenSSL: EVP_DigestUpdate failed") }
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update(bufferPointer: $0) }
    }

    public func finalize() -> [UInt8] {
        precondition(!finalized, "DigestHasher.finalize called twice")
        finalized = true
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &out, &length) == 1 else { fatalError("OpenSSL: EVP_DigestFinal_ex failed") }
        return Array(out.prefix(Int(length)))
    }

    /// The digest of one buffer.
    public static func hash(_ algorithm: DigestAlgorithm, _ bytes: [UInt8]) -> [UInt8] {
        let hasher = DigestHasher(algorithm)
        hasher.update(bytes)
        return hasher.finalize()
    }
}

extension DigestAlgorithm {
    var evpMD: OpaquePointer {
        switch self {
        case .sha256: return EVP_sha256()
        case .sha384: return EVP_sha384()
        case .sha512: return EVP_sha512()
        }
    }
}

/// Every digest a manifest lists for one image, fed at once: the engine
/// hashes each block with all listed algorithms as it arrives (SPEC §6).
public final class ImageVerifier {
    public let expected: Component
    private let hashers: [DigestHasher]
    /// SHA-256 is always computed (the device records it), listed or not.
    private let sha256: DigestHasher
    public private(set) var bytesSeen: UInt64 = 0

    public init(_ component: Component) {
        expected = component
        hashers = component.digests.map { DigestHasher($0.algorithm) }
        sha256 = DigestHasher(.sha256)
    }

    public func update(bufferPointer: UnsafeRawBufferPointer) {
        for hasher in hashers { hasher.update(bufferPointer: bufferPointer) }
        sha256.update(bufferPointer: bufferPointer)
        bytesSeen += UInt64(bufferPointer.count)
    }

    /// Checks size, then every digest in constant time; throws the first
    /// mismatch, or returns the image's SHA-256.
    @discardableResult
    public func finish() throws(ManifestError) -> [UInt8] {
        guard bytesSeen == expected.size else {
            throw .digestMismatch(image: expected.name, reason: "size is \(bytesSeen) bytes, the manifest says \(expected.size)")
        }
        for (hasher, digest) in zip(hashers, expected.digests) {
            guard constantTimeEquals(hasher.finalize(), digest.value) else {
                throw .digestMismatch(image: expected.name, reason: "\(digest.algorithm.jsonName) digest does not match the manifest")
            }
        }
        return sha256.finalize()
    }
}
