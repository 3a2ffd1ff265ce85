internal import CCoap
import CoapFirmwareCore
#if canImport(Glibc)
import Glibc
#endif

extension EndpointSpec {
    /// Resolves to one socket address (numeric hosts, or names via
    /// getaddrinfo); `passive` for an address to listen on.
    func resolve(passive: Bool = true) -> coap_address_t? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var address = coap_address_t()
        coap_address_init(&address)
        let length = Int(first.pointee.ai_addrlen)
        guard length <= MemoryLayout.size(ofValue: address.addr) else { return nil }
        withUnsafeMutableBytes(of: &address.addr) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: length))
        }
        address.size = socklen_t(length)
        return address
    }
}

/// A resolved server address.
struct Resolved: CustomStringConvertible {
    var address: coap_address_t
    var description: String {
        var copy = address
        return withUnsafePointer(to: &copy) { describeAddress($0) }
    }

    /// Resolves `host` (a name or literal) and `port`.
    static func resolve(host: String, port: UInt16) -> Resolved? {
        guard let address = EndpointSpec(host: host, port: port, secure: false).resolve(passive: false) else { return nil }
        return Resolved(address: address)
    }
}

/// Renders a libcoap address as `[::1]:5683` / `127.0.0.1:5683`.
func describeAddress(_ address: UnsafePointer<coap_address_t>?) -> String {
    guard let address else { return "?" }
    var buffer = [UInt8](repeating: 0, count: 80)
    let n = coap_print_addr(address, &buffer, buffer.count)
    return String(decoding: buffer.prefix(n), as: UTF8.self)
}
