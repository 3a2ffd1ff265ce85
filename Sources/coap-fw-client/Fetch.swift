import CoapFirmwareCLI
#if canImport(Glibc)
import Glibc
#endif

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
        verbosity.bootstrap()
        guard let target = CoapURI(uri) else { throw CommandFailure.usage("\(uri): expected a coap:// or coaps:// URI") }
        guard let szx = BlockSize.szx(for: blockSize) else { throw CommandFailure.usage("--block-size \(blockSize): expected a power of two in 16...1024") }
        guard let address = Resolved.resolve(host: target.host, port: target.port) else {
            throw CommandFailure.failed("\(uri): cannot resolve \(target.host)")
        }
        let client: CoapClient
        do {
            client = try CoapClient(logger: Logger(label: "coap-fw-client"), psk: try pskFile.map(readClientPSK))
        } catch let error as TransportError {
            throw CommandFailure.failed(error.description)
        }
        var fd: Int32 = -1
        if let output {
            fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw CommandFailure.usage("--output \(output): \(String(cString: strerror(errno)))") }
        }
        defer { if fd >= 0 { close(fd) } }
        var number: UInt32 = 0
        var total = 0
        var etag: ETag?
        while true {
            let response: CoapResponse
            do {
                response = try client.get(target, address: address, block2: (number, UInt8(szx)), timeout: timeout)
            } catch {
                throw CommandFailure.failed("\(uri): block \(number): \(error.description)")
            }
            guard response.isSuccess else { throw CommandFailure.failed("\(uri): CoAP \(response.codeText)") }
            if number > 0, response.etag != etag { throw CommandFailure.failed("\(uri): ETag changed at block \(number)") }
            etag = response.etag
            if fd >= 0, response.payloadCount > 0 {
                guard write(fd, client.payload.baseAddress, response.payloadCount) == response.payloadCount else {
                    throw CommandFailure.failed("--output \(output ?? ""): write failed")
                }
            }
            total += response.payloadCount
            guard let block = response.block2, block.more else { break }
            number = block.number + 1
        }
        printError("\(total) bytes")
    }
}
