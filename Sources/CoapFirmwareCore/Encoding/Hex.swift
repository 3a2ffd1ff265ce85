/// Lowercase hexadecimal, as the JSON manifest writes digests (SPEC §2).
public enum Hex {
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes lowercase hex only: the manifest format says lowercase, and one
    /// spelling per digest keeps comparisons and signatures unambiguous.
    public static func decodeLowercase(_ text: String) -> [UInt8]? { decode(text, nibble: lowerNibble) }

    /// Decodes hex in either case (key files, command-line input).
    public static func decode(_ text: String) -> [UInt8]? { decode(text, nibble: nibble) }

    private static func decode(_ text: String, nibble: (UInt8) -> UInt8?) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func lowerNibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x41...0x46: return c - 0x41 + 10
        default: return lowerNibble(c)
        }
    }
}
