import CoapFirmwareDevice

/// What a device tells the server after each run (issue #12, item 4):
/// `POST /.well-known/firmware/<m>/<model>/report`, Content-Format 60, a CBOR
/// map `{1: device-id, 2: result, 3: installed version or null, 4: bytes
/// transferred, 5: seconds, 6: attempts}` of at most 256 bytes. Unknown keys
/// are skipped (a later client may say more); a missing or mistyped field,
/// an unknown result code, indefinite lengths, trailing bytes: refused.
public struct FleetReport: Sendable, Equatable {
    public static let maxBytes = 256
    public static let maxDeviceID = 64

    public var deviceID: String
    public var result: ResultCode
    public var version: FirmwareVersion?
    public var bytes: UInt64
    public var seconds: UInt64
    public var attempts: UInt64

    public init(deviceID: String, result: ResultCode, version: FirmwareVersion?, bytes: UInt64, seconds: UInt64,
                attempts: UInt64) {
        (self.deviceID, self.result, self.version) = (deviceID, result, version)
        (self.bytes, self.seconds, self.attempts) = (bytes, seconds, attempts)
    }

    public var cbor: CBORValue {
        .map([
            CBORMapEntry(.unsigned(1), .text(deviceID)),
            CBORMapEntry(.unsigned(2), .text(result.description)),
            CBORMapEntry(.unsigned(3), version.map { .text($0.description) } ?? .null),
            CBORMapEntry(.unsigned(4), .unsigned(bytes)),
            CBORMapEntry(.unsigned(5), .unsigned(seconds)),
            CBORMapEntry(.unsigned(6), .unsigned(attempts)),
        ])
    }

    /// One JSON object (the fields, under their names), as the server logs it.
    public var jsonFields: [(key: String, value: JSONValue)] {
        [("device", .string(deviceID)), ("result", .string(result.description)),
         ("version", version.map { .string($0.description) } ?? .null), ("bytes", .number(String(bytes))),
         ("seconds", .number(String(seconds))), ("attempts", .number(String(attempts)))]
    }

    /// A device id is printable ASCII without spaces, 1 to 64 characters.
    public static func isValidDeviceID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxDeviceID && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// Reads a report, or says what is wrong with it.
    public static func parse(_ bytes: [UInt8]) -> Result<FleetReport, ReportError> {
        guard bytes.count <= maxBytes else { return .failure(.tooLarge(bytes.count)) }
        return bytes.withUnsafeBytes { raw in parse(raw) }
    }

    private static func parse(_ raw: UnsafeRawBufferPointer) -> Result<FleetReport, ReportError> {
        var reader = CBORReader(raw)
        func text(_ item: CBORReader.Item) -> String? {
            guard case .text(let range) = item else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self)
        }
        guard case .success(.map(let count)) = reader.next() else { return .failure(.malformed("not a CBOR map")) }
        var fields: [UInt64: CBORReader.Item] = [:]
        for _ in 0..<count {
            guard case .success(.unsigned(let key)) = reader.next() else { return .failure(.malformed("a key that is not an unsigned integer")) }
            guard fields[key] == nil else { return .failure(.malformed("key \(key) twice")) }
            if (1...6).contains(key) {
                switch reader.next() {
                case .success(let item): fields[key] = item
                case .failure(let failure): return .failure(.malformed("key \(key): \(failure.description)"))
                }
            } else if let failure = reader.skip() {
                return .failure(.malformed("key \(key): \(failure.description)"))
            }
        }
        guard reader.isAtEnd else { return .failure(.malformed("bytes after the map")) }
        guard let item = fields[1], let device = text(item), isValidDeviceID(device) else {
            return .failure(.malformed("1 (device-id): expected 1 to 64 printable characters"))
        }
        guard let item = fields[2], let name = text(item), let result = ResultCode.allCases.first(where: { $0.description == name }) else {
            return .failure(.malformed("2 (result): expected a result code"))
        }
        var version: FirmwareVersion?
        switch fields[3] {
        case .null?: version = nil
        case let item?:
            guard let parsed = text(item).flatMap(FirmwareVersion.init) else { return .failure(.malformed("3 (version): expected A.B.C or null")) }
            version = parsed
        case nil: return .failure(.malformed("3 (version): missing"))
        }
        var numbers: [UInt64] = []
        for (key, name) in [(4, "bytes"), (5, "seconds"), (6, "attempts")] as [(UInt64, String)] {
            guard case .unsigned(let n)? = fields[key] else { return .failure(.malformed("\(key) (\(name)): expected an unsigned integer")) }
            numbers.append(n)
        }
        return .success(FleetReport(deviceID: device, result: result, version: version, bytes: numbers[0], seconds: numbers[1],
                                    attempts: numbers[2]))
    }
}

public enum ReportError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLarge(Int)
    case malformed(String)

    public var description: String {
        switch self {
        case .tooLarge(let n): return "report of \(n) bytes (at most \(FleetReport.maxBytes))"
        case .malformed(let why): return "report: \(why)"
        }
    }
}
