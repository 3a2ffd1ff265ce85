/// RFC 3339 §5.6 timestamps <-> seconds since the Unix epoch, with no
/// Foundation: the JSON manifest spells `timestamp` this way (SPEC §2).
public enum RFC3339 {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; fractions are dropped
    /// (the CBOR form has whole seconds). Nil if malformed or out of range.
    public static func parse(_ text: String) -> Int64? {
        let s = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int64? {
            guard i + width <= s.count else { return nil }
            var v: Int64 = 0
            for k in 0..<width {
                let c = s[i + k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
            }
            i += width
            return v
        }
        func literal(_ options: [UInt8]) -> Bool {
            guard i < s.count, options.contains(s[i]) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), literal([0x2D]), let month = number(2), literal([0x2D]),
              let day = number(2), literal([0x54, 0x74, 0x20]),  // 'T', 't', ' ' (RFC 3339 §5.6 note)
              let hour = number(2), literal([0x3A]), let minute = number(2), literal([0x3A]),
              let second = number(2)
        else { return nil }
        if i < s.count, s[i] == 0x2E {
            i += 1
            let start = i
            while i < s.count, s[i] >= 0x30 && s[i] <= 0x39 { i += 1 }
            guard i > start else { return nil }
        }
        var offset: Int64 = 0
        if literal([0x5A, 0x7A]) {  // 'Z', 'z'
        } else if i < s.count, s[i] == 0x2B || s[i] == 0x2D {
            let sign: Int64 = s[i] == 0x2B ? 1 : -1
            i += 1
            guard let oh = number(2), literal([0x3A]), let om = number(2), oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard i == s.count, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second <= 60
        else { return nil }
        // A leap second (:60) counts as the next second's start, like POSIX time.
        return daysFromCivil(year: year, month: month, day: day) * 86400 + hour * 3600 + minute * 60 + second - offset
    }

    /// Formats as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
    public static func format(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let rest = seconds - days * 86400
        let (y, m, d) = civilFromDays(days)
        func pad(_ v: Int64, _ width: Int) -> String {
            let digits = String(v)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rest / 3600, 2)):\(pad(rest / 60 % 60, 2)):\(pad(rest % 60, 2))Z"
    }

    static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days algorithms.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, m, d)
    }
}
