import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
import CoapFirmwareDevice

/// A plain block-wise download with the update's transport and no
/// verification: for debugging a server, and as the benchmark's "raw
/// transfer" baseline against which verification overhead is measured.
struct Fetch {
    static let command = CommandSpec(
        "fetch", abstract: "Download one resource block by block, without verifying it (debugging, benchmarks).",
        options: [.value("output", "FILE", "Write the body here (default: discard).", short: "o")]
            + ClientTransportOptions.options + VerbosityOptions.options,
        arguments: [ArgumentSpec("uri", "coap:// or coaps:// URI.")]
    ) { try Fetch($0).run() }

    var uri: String
    var output: String?
    var transport: ClientTransportOptions
    var verbosity: VerbosityOptions

    init(_ a: ParsedArguments) throws {
        (uri, output) = (a.positional(0) ?? "", a.string("output"))
        (transport, verbosity) = (try ClientTransportOptions(a), VerbosityOptions(a))
    }

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
