internal import CCoap
import CoapFirmwareDevice

/// PSK bytes handed to libcoap, which keeps the pointers it is given: they
/// live (and are freed) with this object, which outlives every session.
final class PSKBuffers {
    private let storage: UnsafeMutableRawBufferPointer
    let identityCount: Int
    let keyCount: Int
    /// The key as the server's identity callback returns it.
    let keyPointer: UnsafePointer<coap_bin_const_t>

    init(_ psk: PSK) {
        identityCount = psk.identity.count
        keyCount = psk.key.count
        storage = .allocate(byteCount: max(1, identityCount + keyCount), alignment: 1)
        storage.copyBytes(from: psk.identity + psk.key)
        let key = UnsafeMutablePointer<coap_bin_const_t>.allocate(capacity: 1)
        key.initialize(to: coap_bin_const_t(length: keyCount, s: storage.baseAddress!.assumingMemoryBound(to: UInt8.self) + identityCount))
        keyPointer = UnsafePointer(key)
    }

    deinit {
        UnsafeMutablePointer(mutating: keyPointer).deallocate()
        storage.deallocate()
    }

    var identity: coap_bin_const_t {
        coap_bin_const_t(length: identityCount, s: storage.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    var key: coap_bin_const_t {
        coap_bin_const_t(length: keyCount, s: storage.baseAddress!.assumingMemoryBound(to: UInt8.self) + identityCount)
    }

    /// Whether `candidate` is this identity (constant time in its bytes).
    func hasIdentity(_ candidate: UnsafeRawBufferPointer) -> Bool {
        candidate.count == identityCount
            && constantTimeEquals(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(storage)[0..<identityCount]), candidate)
    }
}
