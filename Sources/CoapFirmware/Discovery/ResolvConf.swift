/// The local domain for discovery (SPEC §4 step 1): the DHCP domain as
/// /etc/resolv.conf records it.
public enum ResolvConf {
    /// Its `domain` line, else its first `search` entry.
    public static func domain(path: String = "/etc/resolv.conf") -> String? {
        guard let bytes = try? FileSystem.read(path, limit: 1 << 20) else { return nil }
        var search: String?
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2 else { continue }
            if words[0] == "domain" { return String(words[1]) }
            if words[0] == "search", search == nil { search = String(words[1]) }
        }
        return search
    }
}
