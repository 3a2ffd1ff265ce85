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

/// The host part of a libcoap address (`::1`, `127.0.0.1`), for per-peer bounds.
func describeHost(_ address: UnsafePointer<coap_address_t>?) -> String {
    guard let address else { return "?" }
    var buffer = [CChar](repeating: 0, count: 64)
    let family = Int32(address.pointee.addr.sa.sa_family)
    var copy = address.pointee
    let ok: Bool = withUnsafePointer(to: &copy.addr) { raw in
        family == AF_INET6
            ? raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                withUnsafePointer(to: p.pointee.sin6_addr) { inet_ntop(AF_INET6, $0, &buffer, socklen_t(buffer.count)) != nil } }
            : raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                withUnsafePointer(to: p.pointee.sin_addr) { inet_ntop(AF_INET, $0, &buffer, socklen_t(buffer.count)) != nil } }
    }
    return ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
}

/// Renders a libcoap address as `[::1]:5683` / `127.0.0.1:5683`.
func describeAddress(_ address: UnsafePointer<coap_address_t>?) -> String {
    guard let address else { return "?" }
    var buffer = [UInt8](repeating: 0, count: 80)
    let n = coap_print_addr(address, &buffer, buffer.count)
    return String(decoding: buffer.prefix(n), as: UTF8.self)
}

/// UDP port ownership. libcoap binds with SO_REUSEADDR (and IPv6 sockets
/// dual-stack), so on Linux a second server on a port in use would start
/// silently and take the newest socket's share of the traffic.
enum UDPPort {
    /// Binds a throw-away socket to `address` the way libcoap will, but
    /// without SO_REUSEADDR: errno (EADDRINUSE) when another socket holds
    /// the port, 0 when it is free.
    static func probe(_ address: coap_address_t) -> Int32 {
        var address = address
        let family = Int32(address.addr.sa.sa_family)
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        if family == AF_INET6 {
            var off: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
        }
        let result = withUnsafePointer(to: &address.addr) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, address.size) }
        }
        return result == 0 ? 0 : errno
    }

    /// Clears SO_REUSEADDR on this process's UDP sockets bound to `ports`
    /// (libcoap's endpoints, which it does not expose), so that nobody can
    /// bind the same port after us either.
    static func keepExclusive(_ ports: Set<UInt16>) {
        for name in FileSystem.entries(of: "/proc/self/fd") {
            guard let fd = Int32(name) else { continue }
            var type: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_DGRAM.rawValue) else { continue }
            var storage = sockaddr_storage()
            var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let named = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
            }
            guard named == 0 else { continue }
            let port: UInt16 = withUnsafeBytes(of: &storage) { raw in
                // sin_port and sin6_port sit at the same offset, network order.
                UInt16(raw[2]) << 8 | UInt16(raw[3])
            }
            if ports.contains(port) {
                var off: Int32 = 0
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, socklen_t(MemoryLayout<Int32>.size))
            }
        }
    }
}
