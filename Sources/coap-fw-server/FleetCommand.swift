import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore

struct Fleet {
    static let command = CommandSpec(
        "fleet", abstract: "Summarise the devices' reports a server received, per product.",
        discussion: """
            Reads <repo>/.reports/<manufacturer>/<model>.jsonl (what devices POST to \
            .../<model>/report after each run): devices per installed version, each device's last \
            result and time, and failed runs by result code.
            """,
        options: RepositoryOptions.options + [.flag("json", "Print one JSON object instead of text.")]
    ) { try Fleet($0).run() }

    var repository: RepositoryOptions
    var json: Bool

    init(_ a: ParsedArguments) { (repository, json) = (RepositoryOptions(a), a.flag("json")) }

    func run() throws {
        guard FileSystem.isDirectory(repository.repo) else { throw CommandFailure.usage("--repo \(repository.repo): no such folder") }
        let summary: FleetSummary, skipped: Int
        do {
            (summary, skipped) = try FleetSummary.read(repository: repository.repo)
        } catch {
            throw CommandFailure.failed(error.description)
        }
        if skipped > 0 { printError("coap-fw-server: fleet: \(skipped) report lines that do not parse were skipped") }
        if json {
            printJSON(summary.json)
            return
        }
        if summary.products.isEmpty { print("no reports in \(repository.repo)") }
        for p in summary.products {
            print("\(p.name): \(p.devices.count) devices, \(p.reports) reports")
            print("  versions: " + p.versions.map { "\($0.version) \($0.devices)" }.joined(separator: ", "))
            if !p.failures.isEmpty { print("  failures: " + p.failures.map { "\($0.code) \($0.count)" }.joined(separator: ", ")) }
            for d in p.devices { print("  \(d.id)  \(d.version ?? "none")  \(d.result)  \(d.time)  \(d.peer)") }
        }
    }
}
