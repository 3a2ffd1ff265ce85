internal import CCoap
import CoapFirmwareCore
#if canImport(Glibc)
import Glibc
#endif

/// A UDP endpoint address given on a command line: `HOST:PORT`, `[IPv6]:PORT`,
/// optionally prefixed by `coap://` or `coaps://`.
public struct EndpointSpec: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var secure: Bool

    public init(host: String, port: UInt16, secure: Bool) {
        self.host = host
        self.port = port
        self.secure = secure
    }

    /// Parses `text`; without a port, 5683 (5684 for coaps) applies.
    public init?(_ text: String, defaultSecure: Bool = false) {
        var rest = Substring(text)
        var secure = defaultSecure
        if rest.hasPrefix("coaps://") { secure = true; rest = rest.dropFirst(8) }
        else if rest.hasPrefix("coap://") { secure = false; rest = rest.dropFirst(7) }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        // A bare IPv6 literal (two or more colons, no brackets) names a host without a port.
        let authority = !rest.hasPrefix("[") && rest.filter { $0 == ":" }.count > 1 ? "[\(rest)]"[...] : rest
        guard let (host, portText) = CoapURI.splitAuthority(authority) else { return nil }
        var port: UInt16 = secure ? 5684 : 5683
        if let portText {
            guard let p = UInt16(portText) else { return nil }
            port = p
        }
        self.init(host: host, port: port, secure: secure)
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(secure ? "coaps" : "coap")://\(h):\(port)"
    }

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

/// Renders a libcoap address as `[::1]:5683` / `127.0.0.1:5683`.
func describeAddress(_ address: UnsafePointer<coap_address_t>?) -> String {
    guard let address else { return "?" }
    var buffer = [UInt8](repeating: 0, count: 80)
    let n = coap_print_addr(address, &buffer, buffer.count)
    return String(decoding: buffer.prefix(n), as: UTF8.self)
}
