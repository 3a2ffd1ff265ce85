import ArgumentParser
import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
import CoapFirmwareDevice

/// A plain block-wise download with the update's transport and no
/// verification: for debugging a server, and as the benchmark's "raw
/// transfer" baseline against which verification overhead is measured.
struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download one resource block by block, without verifying it (debugging, benchmarks).")

    @Argument(help: "coap:// or coaps:// URI.")
    var uri: String

    @Option(name: .shortAndLong, help: "Write the body here (default: discard).")
    var output: String?

    @OptionGroup var transport: ClientTransportOptions

    @OptionGroup var verbosity: VerbosityOptions

    func run() throws {
        let logger = verbosity.logger("coap-fw-client")
        guard let target = CoapURI(uri) else { throw CommandFailure.usage("\(uri): expected a coap:// or coaps:// URI") }
        let szx = try transport.szx(), timeout = try transport.checkedTimeout(), psk = try transport.psk()
        let window = try transport.checkedWindowBytes()
        do {
            let total = try Download.run(target, szx: szx, timeout: timeout, psk: psk, output: output, windowBytes: window,
                                         logger: logger)
            printError("\(total) bytes")
        } catch {
            throw error.isOutput ? CommandFailure.usage("--output \(error)") : CommandFailure.failed(error.description)
        }
    }
}
