import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore

struct Status {
    static let command = CommandSpec(
        "status", abstract: "Show the installed firmware.",
        options: [
            .value("state", "DIR", "State folder.", required: true),
            .flag("json", "Print one JSON object: version, timestamp, components (name, size, sha256, path)."),
        ]
    ) { try Status($0).run() }

    var state: String
    var json: Bool

    init(_ a: ParsedArguments) { (state, json) = (a.required("state"), a.flag("json")) }

    func run() throws {
        guard FileSystem.isDirectory(state) else { throw CommandFailure.usage("--state \(state): no such folder") }
        let record: DeviceState.Record?
        do {
            record = try DeviceState(root: state).installed()
        } catch let error as ManifestError {
            throw CommandFailure.failed("--state \(state): \(error.description)")
        } catch {
            throw CommandFailure.failed("--state \(state): \(error)")
        }
        guard let record else {
            if json {
                printJSON(.object([("version", .null), ("timestamp", .null), ("components", .array([]))]))
            } else {
                print("nothing installed in \(state)")
            }
            return
        }
        if json {
            printJSON(record.json)
        } else {
            print("\(record.manufacturer) \(record.model) \(record.version) (\(RFC3339.format(record.timestamp)))")
            for c in record.components { print("  \(c.name): \(c.size) bytes sha256 \(Hex.encode(c.sha256)) \(c.path)") }
        }
    }
}
