#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice

/// Where a server keeps the devices' reports (issue #12, item 4):
/// `<repo>/.reports/<manufacturer>/<model>.jsonl`, one JSON object per line
/// (time, peer, DTLS identity, the report's fields), appended with one
/// write(2) each. A file past `maxFileBytes` is renamed to `.jsonl.1`
/// (replacing the previous one) and a new one begun, so a product's reports
/// take at most twice that. `.reports` starts with a dot: the server never
/// serves it (RepositoryRouter serves plain names only).
struct ReportLog {
    static let folder = ".reports"
    let root: String
    let maxFileBytes: Int64

    func path(product: String) -> String { "\(root)/\(Self.folder)/\(product).jsonl" }

    /// Appends one report; throws when the folder cannot be written.
    func append(_ report: FleetReport, product: String, peer: String, identity: String?, time: Int64) throws(FileSystemError) {
        let file = path(product: product)
        try FileSystem.makeDirectories(FileSystem.directory(of: file), mode: 0o750)
        var st = stat()
        if lstat(file, &st) == 0, Int64(st.st_size) >= maxFileBytes {
            guard rename(file, file + ".1") == 0 else { throw .errno(file, "cannot rotate") }
        }
        let line = JSONValue.object([("time", .string(RFC3339.format(time))), ("peer", .string(peer)),
                                     ("identity", identity.map { .string($0) } ?? .null)] + report.jsonFields)
        let bytes = JSONWriter.write(line) + [0x0A]
        let fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw .errno(file, "cannot open") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw .errno(file, "cannot append to") }
    }
}

/// At most `limit` reports per peer address in any `window` seconds
/// (4.29 past it), remembering at most `maxPeers` addresses (the oldest
/// forgotten first), so that a flood from many spoofed addresses costs a
/// bounded table.
struct ReportLimiter {
    let limit: Int
    let window: Int64 = 60
    let maxPeers = 10_000
    private var seen: [String: [Int64]] = [:]
    private var order: [String] = []

    init(limit: Int) { self.limit = limit }

    /// Whether `peer` may report now; when not, the seconds until it may (a 4.29's Max-Age).
    mutating func allow(_ peer: String, now: Int64) -> (allowed: Bool, retryAfter: Int64) {
        var times = (seen[peer] ?? []).filter { now - $0 < window }
        guard times.count < limit else {
            seen[peer] = times
            return (false, max(1, window - (now - (times.min() ?? now))))
        }
        times.append(now)
        if seen[peer] == nil {
            order.append(peer)
            if order.count > maxPeers { seen[order.removeFirst()] = nil }
        }
        seen[peer] = times
        return (true, 0)
    }
}

/// `coap-fw-server fleet`: what the reports say per product.
public struct FleetSummary: Sendable {
    public struct Device: Sendable {
        public var id: String
        public var version: String?
        public var result: String
        public var time: String
        public var peer: String
    }

    public struct Product: Sendable {
        public var name: String
        public var devices: [Device]
        public var reports: Int
        /// Reports whose result is not a success, by result code.
        public var failures: [(code: String, count: Int)]
        /// Devices by the version their last report says is installed.
        public var versions: [(version: String, devices: Int)]
    }

    public var products: [Product]

    /// The longest report line read (a stored report is a few hundred bytes).
    static let maxLineBytes = 64 * 1024

    /// Reads every `<repo>/.reports/<m>/<model>.jsonl` (and its `.1`) in
    /// chunks, whatever their size (`--report-log-bytes` allows 1 GiB); lines
    /// that do not parse, or longer than `maxLineBytes`, are skipped and
    /// counted in `skippedLines`. A log that exists but cannot be read is an
    /// error naming it.
    public static func read(repository root: String) throws(FileSystemError) -> (FleetSummary, skippedLines: Int) {
        var products: [Product] = []
        var skipped = 0
        let base = "\(root)/\(ReportLog.folder)"
        for manufacturer in FileSystem.entries(of: base).sorted() where RepositoryRouter.isPlainSegment(manufacturer) {
            let names = FileSystem.entries(of: "\(base)/\(manufacturer)").filter { $0.hasSuffix(".jsonl") }.sorted()
            for file in names {
                let model = String(file.dropLast(6))
                var last: [String: Device] = [:]
                var order: [String] = []
                var failures: [String: Int] = [:]
                var reports = 0
                func take(_ line: [UInt8]) {
                    guard !line.isEmpty else { return }
                    guard let value = try? JSONParser.parse(line), case .object(let m) = value,
                          case .string(let id)? = m.first(where: { $0.key == "device" })?.value,
                          case .string(let result)? = m.first(where: { $0.key == "result" })?.value,
                          case .string(let time)? = m.first(where: { $0.key == "time" })?.value
                    else { skipped += 1; return }
                    reports += 1
                    var version: String?
                    if case .string(let v)? = m.first(where: { $0.key == "version" })?.value { version = v }
                    var peer = ""
                    if case .string(let p)? = m.first(where: { $0.key == "peer" })?.value { peer = p }
                    if last[id] == nil { order.append(id) }
                    last[id] = Device(id: id, version: version, result: result, time: time, peer: peer)
                    if result != "updated" && result != "up-to-date" { failures[result, default: 0] += 1 }
                }
                for path in ["\(base)/\(manufacturer)/\(file).1", "\(base)/\(manufacturer)/\(file)"] where FileSystem.exists(path) {
                    var line: [UInt8] = []
                    var overlong = false
                    do {
                        try FileSystem.forEachChunk(path) { chunk in
                            for byte in chunk {
                                if byte == 0x0A {
                                    if overlong { skipped += 1 } else { take(line) }
                                    line.removeAll(keepingCapacity: true)
                                    overlong = false
                                } else if line.count < maxLineBytes {
                                    line.append(byte)
                                } else {
                                    overlong = true
                                }
                            }
                        }
                    } catch let error as FileSystemError {
                        throw error
                    } catch {
                        throw FileSystemError(path: path, reason: "\(error)")
                    }
                    if overlong { skipped += 1 } else { take(line) }  // a last line without its newline
                }
                let devices = order.compactMap { last[$0] }
                var versions: [String: Int] = [:]
                for d in devices { versions[d.version ?? "none", default: 0] += 1 }
                products.append(Product(name: "\(manufacturer)/\(model)", devices: devices, reports: reports,
                                        failures: failures.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                        versions: versions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
            }
        }
        return (FleetSummary(products: products), skipped)
    }

    public var json: JSONValue {
        .object([("products", .array(products.map { p in
            .object([
                ("product", .string(p.name)), ("reports", .number(String(p.reports))),
                ("versions", .object(p.versions.map { ($0.version, .number(String($0.devices))) })),
                ("failures", .object(p.failures.map { ($0.code, .number(String($0.count))) })),
                ("devices", .array(p.devices.map { d in
                    .object([("device", .string(d.id)), ("version", d.version.map { .string($0) } ?? .null),
                             ("result", .string(d.result)), ("time", .string(d.time)), ("peer", .string(d.peer))])
                })),
            ])
        }))])
    }
}
