import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore

struct Status {
    static let command = CommandSpec(
        "status", abstract: "Show the installed firmware.",
        options: [
            .value("state", "DIR", "State folder.", required: true),
            .repeated("trust", "FILE", "The device's --trust anchors, to list them with the trust set (optional)."),
            .flag("json", "Print one JSON object: version, timestamp, components (name, size, sha256, path), trust (kid, status)."),
        ]
    ) { try Status($0).run() }

    var state: String
    var anchors: [String]
    var json: Bool

    init(_ a: ParsedArguments) { (state, anchors, json) = (a.required("state"), a.strings("trust"), a.flag("json")) }

    func run() throws {
        guard FileSystem.isDirectory(state) else { throw CommandFailure.usage("--state \(state): no such folder") }
        let keys = anchors.isEmpty ? [] : try loadTrustedKeys(anchors)
        let record: DeviceState.Record?
        let trust: TrustStore
        do {
            record = try DeviceState(root: state).installed()
            trust = try TrustStore.load(state: state, anchors: keys)
        } catch let error as ManifestError {
            throw CommandFailure.failed("--state \(state): \(error.description)")
        } catch {
            throw CommandFailure.failed("--state \(state): \(error)")
        }
        guard let record else {
            if json {
                printJSON(.object([("version", .null), ("timestamp", .null), ("components", .array([])), ("trust", trust.statusJSON)]))
            } else {
                print("nothing installed in \(state)")
                printTrust(trust)
            }
            return
        }
        if json {
            guard case .object(let fields) = record.json else { return }
            printJSON(.object(fields + [("trust", trust.statusJSON)]))
        } else {
            print("\(record.manufacturer) \(record.model) \(record.version) (\(RFC3339.format(record.timestamp)))")
            for c in record.components { print("  \(c.name): \(c.size) bytes sha256 \(Hex.encode(c.sha256)) \(c.path)") }
            printTrust(trust)
        }
    }

    private func printTrust(_ trust: TrustStore) {
        guard case .array(let rows) = trust.statusJSON else { return }
        for case .object(let row) in rows {
            let text = row.map { field -> String in
                if case .string(let s) = field.value { return field.key == "kid" ? "key \(s)" : field.key == "status" ? s : "(\(field.key) \(s))" }
                return ""
            }
            print("  " + text.joined(separator: " "))
        }
    }
}
