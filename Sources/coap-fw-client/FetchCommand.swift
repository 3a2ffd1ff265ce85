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

    @Option(name: .customLong("block-size"), help: "Block2 size in bytes (16..1024).")
    var blockSize = 1024

    @Option(help: "Seconds to wait without progress.")
    var timeout: Double = 30

    @Option(name: .customLong("psk-file"), help: ArgumentHelp("DTLS key for coaps:// ('identity:hexkey').", valueName: "FILE"))
    var pskFile: String?

    @OptionGroup var verbosity: VerbosityOptions

    func run() throws {
        let logger = verbosity.logger("coap-fw-client")
        guard let target = CoapURI(uri) else { throw CommandFailure.usage("\(uri): expected a coap:// or coaps:// URI") }
        guard let szx = Block2.szx(forSize: blockSize) else { throw CommandFailure.usage("--block-size \(blockSize): expected a power of two in 16...1024") }
        let psk = try pskFile.map(readPSKFile)?.first
        do {
            let total = try Download.run(target, szx: szx, timeout: timeout, psk: psk, output: output, logger: logger)
            printError("\(total) bytes")
        } catch .output(let error) {
            throw CommandFailure.usage("--output \(error.description)")
        } catch {
            throw CommandFailure.failed(error.description)
        }
    }
}
