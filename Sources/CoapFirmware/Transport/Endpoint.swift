import CoapFirmwareCore

/// A UDP endpoint address given on a command line: `HOST:PORT`, `[IPv6]:PORT`,
/// optionally prefixed by `coap://` or `coaps://`.
public struct EndpointSpec: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var secure: Bool

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(secure ? "coaps" : "coap")://\(h):\(port)"
    }
}

extension EndpointSpec {
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
}

/// `--resolve HOST:ADDR[:PORT]`: a host name mapped to an address (and
/// optionally a port), like curl's; ADDR may be `[IPv6]`.
public struct HostMapping: Sendable, Equatable {
    public var host: String
    public var address: String
    public var port: UInt16?

    public init?(argument text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let host = String(text[..<colon]).lowercased()
        let rest = text[text.index(after: colon)...]
        guard !host.isEmpty, let spec = EndpointSpec(String(rest)) else { return nil }
        let hasPort = rest.hasPrefix("[") ? rest.contains("]:") : rest.contains(":")
        (self.host, self.address, self.port) = (host, spec.host, hasPort ? spec.port : nil)
    }
}
