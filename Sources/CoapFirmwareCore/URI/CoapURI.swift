/// A `coap://` or `coaps://` URI (RFC 7252 §6), parsed into what a request
/// needs: host, port, Uri-Path segments (percent-decoded) and Uri-Query.
/// Resolves references against a base (RFC 3986 §5.2), which is how a
/// manifest's relative `firmwareLocation` becomes an image URI (SPEC §2).
public struct CoapURI: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    /// Host name or IP literal (IPv6 without brackets).
    public var host: String
    public var port: UInt16
    public var path: [String]
    public var query: [String]

    public init(secure: Bool, host: String, port: UInt16? = nil, path: [String], query: [String] = []) {
        self.secure = secure
        self.host = host
        self.port = port ?? (secure ? 5684 : 5683)
        self.path = path
        self.query = query
    }

    /// Parses an absolute coap/coaps URI; nil for anything else.
    public init?(_ text: String) {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("coap://") {
            secure = false
            rest = text.dropFirst(7)
        } else if lower.hasPrefix("coaps://") {
            secure = true
            rest = text.dropFirst(8)
        } else {
            return nil
        }
        guard !text.contains(where: { $0 == " " || $0 == "#" || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } == true }) else { return nil }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.contains("@") else { return nil }
        guard let (parsedHost, portPart) = Self.splitAuthority(authority) else { return nil }
        host = parsedHost
        if let portPart, !portPart.isEmpty {
            guard let p = UInt16(portPart), p > 0 else { return nil }
            port = p
        } else {
            port = secure ? 5684 : 5683
        }
        var pathAndQuery = rest[authorityEnd...]
        query = []
        if let q = pathAndQuery.firstIndex(of: "?") {
            var parts: [String] = []
            for item in pathAndQuery[pathAndQuery.index(after: q)...].split(separator: "&", omittingEmptySubsequences: false) {
                guard let decoded = Self.percentDecode(item) else { return nil }
                parts.append(decoded)
            }
            query = parts
            pathAndQuery = pathAndQuery[..<q]
        }
        guard let segments = Self.segments(of: pathAndQuery) else { return nil }
        path = Self.removeDotSegments(segments)
    }

    /// Resolves a URI reference against this URI (RFC 3986 §5.2.2, with
    /// dot segments removed as §5.2.4 says).
    public func resolving(_ reference: String) -> CoapURI? {
        let lower = reference.lowercased()
        if lower.hasPrefix("coap://") || lower.hasPrefix("coaps://") { return CoapURI(reference) }
        if reference.contains(":") && !reference.hasPrefix("/") && !reference.hasPrefix(".") {
            // Another scheme (http:, …): not something a CoAP device can fetch.
            if let colon = reference.firstIndex(of: ":"), !reference[..<colon].contains("/") { return nil }
        }
        if reference.hasPrefix("//") { return CoapURI((secure ? "coaps:" : "coap:") + reference) }
        var text = Substring(reference)
        var newQuery: [String] = []
        if let q = text.firstIndex(of: "?") {
            newQuery = text[text.index(after: q)...].split(separator: "&", omittingEmptySubsequences: false).compactMap { Self.percentDecode($0) }
            text = text[..<q]
        }
        guard let refSegments = Self.segments(of: text.isEmpty ? "" : (text.hasPrefix("/") ? text : "/" + text)) else { return nil }
        var result = self
        result.query = newQuery
        if text.isEmpty {
            if newQuery.isEmpty { result.query = query }
            return result
        }
        if text.hasPrefix("/") {
            result.path = Self.removeDotSegments(refSegments)
        } else {
            result.path = Self.removeDotSegments(Array(path.dropLast()) + refSegments)
        }
        return result
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let defaultPort: UInt16 = secure ? 5684 : 5683
        let p = port == defaultPort ? "" : ":\(port)"
        let q = query.isEmpty ? "" : "?" + query.map(Self.percentEncode).joined(separator: "&")
        return "\(secure ? "coaps" : "coap")://\(h)\(p)/" + path.map(Self.percentEncode).joined(separator: "/") + q
    }

    /// True when the host is an IP literal, so no Uri-Host option is sent (RFC 7252 §6.4).
    public var hostIsIPLiteral: Bool {
        if host.contains(":") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Splits `host[:port]` or `[IPv6]:port` (RFC 3986 §3.2.2-3.2.3) into a
    /// lowercased host and the port text, if any. A host is a name of
    /// unreserved characters or a bracketed IP literal; percent-encoded hosts
    /// are refused rather than decoded into spellings we cannot send.
    public static func splitAuthority(_ authority: Substring) -> (host: String, port: Substring?)? {
        let hostPart: Substring
        var portPart: Substring?
        let bracketed = authority.hasPrefix("[")
        if bracketed {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty { return nil }
        } else if let colon = authority.firstIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
        }
        guard !hostPart.isEmpty, hostPart.utf8.allSatisfy({ c in
            bracketed ? (Hex.nibble(c) != nil || c == 0x3A || c == 0x2E) : isUnreserved(c)
        }) else { return nil }
        return (String(hostPart).lowercased(), portPart)
    }

    static func isUnreserved(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E
    }

    static func segments(of path: Substring) -> [String]? {
        guard !path.isEmpty else { return [] }
        guard path.hasPrefix("/") else { return nil }
        var result: [String] = []
        for raw in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            guard let decoded = percentDecode(raw) else { return nil }
            result.append(decoded)
        }
        // "/a/" has a trailing empty segment, meaningful in CoAP; "/" alone is the root.
        if result == [""] { return [] }
        return result
    }

    /// RFC 3986 §5.2.4 on segments; a lone empty segment is the root, as "/" is
    /// (RFC 7252 §6.4: no Uri-Path option).
    static func removeDotSegments(_ segments: [String]) -> [String] {
        let out = removeDots(segments)
        return out == [""] ? [] : out
    }

    private static func removeDots(_ segments: [String]) -> [String] {
        var out: [String] = []
        for (i, s) in segments.enumerated() {
            if s == "." {
                if i == segments.count - 1 { out.append("") }
            } else if s == ".." {
                if !out.isEmpty { out.removeLast() }
                if i == segments.count - 1 { out.append("") }
            } else {
                out.append(s)
            }
        }
        return out
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var utf8 = text.utf8.makeIterator()
        while let c = utf8.next() {
            if c == UInt8(ascii: "%") {
                guard let h = utf8.next(), let l = utf8.next(), let hi = Hex.nibble(h), let lo = Hex.nibble(l) else { return nil }
                bytes.append(hi << 4 | lo)
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if byte < 0x80, c.isLetter || c.isNumber || "-._~!$'()*+,;=:@".contains(c) {
                out.append(c)
            } else {
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }
}
