#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice
import Logging

/// `coap-fw-client fetch`: one resource downloaded block by block with the
/// update's transport and block rules, and no verification (debugging a
/// server; the benchmark's raw-transfer baseline).
public enum Download {
    public enum Failure: Error, CustomStringConvertible {
        /// The output file cannot be written (a usage error).
        case output(FileSystemError)
        case transfer(String)

        public var description: String {
            switch self {
            case .output(let e): return e.description
            case .transfer(let why): return why
            }
        }
    }

    /// Fetches `uri` into `output` (nil: discard); returns the body's length.
    public static func run(_ uri: CoapURI, szx: UInt8, timeout: Double, psk: PSK?, output: String?,
                           logger: Logger) throws(Failure) -> UInt64 {
        var fd: Int32 = -1
        if let output {
            fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .output(.errno(output, "cannot open")) }
        }
        defer { if fd >= 0 { close(fd) } }
        let client: CoapClient
        do {
            client = try CoapClient(logger: logger, psk: psk)
        } catch {
            throw .transfer(error.description)
        }
        let requester = Requester(client: client, timeout: timeout, exchangeTimeout: timeout)
        guard requester.address(for: uri) != nil else { throw .transfer("\(uri): cannot resolve \(uri.host)") }
        let result = requester.fetchBody(uri, szx: szx, limit: .max) { offset, bytes in
            guard fd >= 0, bytes.count > 0 else { return nil }
            return pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset)) == bytes.count
                ? nil : "\(output ?? ""): write failed: \(String(cString: strerror(errno)))"
        }
        switch result {
        case .success(let length): return length
        case .failure(let error): throw .transfer("\(uri): \(error)")
        }
    }
}
