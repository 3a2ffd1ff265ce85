import CoapFirmwareCore

/// A DTLS pre-shared key (RFC 4279): the identity and the key bytes.
public struct PSK: Sendable, Equatable {
    public var identity: [UInt8]
    public var key: [UInt8]

    public init(identity: [UInt8], key: [UInt8]) { (self.identity, self.key) = (identity, key) }

    /// Reads a `--psk-file`: one `identity:hexkey` per line (blank lines and
    /// `#` comments allowed; the identity may itself hold colons). Errors
    /// name the file and line.
    public static func parseFile(_ bytes: [UInt8], path: String) throws(PSKFileError) -> [PSK] {
        var entries: [PSK] = []
        // Lines by their bytes: "\r\n" is one Character to String, not a break.
        for (number, raw) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let blank: Set<UInt8> = [0x20, 0x09, 0x0D]
            let line = String(decoding: raw.drop { blank.contains($0) }.reversed().drop { blank.contains($0) }.reversed(), as: UTF8.self)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.lastIndex(of: ":"), colon != line.startIndex,
                  let key = Hex.decode(String(line[line.index(after: colon)...])), !key.isEmpty
            else { throw PSKFileError(message: "\(path):\(number + 1): expected identity:hexkey") }
            entries.append(PSK(identity: Array(line[..<colon].utf8), key: key))
        }
        guard !entries.isEmpty else { throw PSKFileError(message: "\(path): no keys") }
        return entries
    }
}

public struct PSKFileError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
