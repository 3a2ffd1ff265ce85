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
    /// Why a download failed; `isOutput` when the output file is at fault (a usage error).
    public struct Failure: Error, CustomStringConvertible {
        public var isOutput = false
        public var description: String
    }

    /// Fetches `uri` into `output` (nil: discard); returns the body's length.
    public static func run(_ uri: CoapURI, szx: UInt8, timeout: Double, psk: PSK?, output: String?,
                           windowBytes: Int = 4096, logger: Logger) throws(Failure) -> UInt64 {
        var fd: Int32 = -1
        if let output {
            fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw Failure(isOutput: true, description: FileSystemError.errno(output, "cannot open").description) }
        }
        defer { if fd >= 0 { close(fd) } }
        let client: CoapClient
        do {
            client = try CoapClient(logger: logger, psk: psk)
        } catch {
            throw Failure(description: error.description)
        }
        let requester = Requester(client: client, timeout: timeout, exchangeTimeout: timeout, windowBytes: windowBytes,
                                  logger: logger)
        guard requester.address(for: uri) != nil else { throw Failure(description: "\(uri): cannot resolve \(uri.host)") }
        var written: UInt64 = 0
        var info = stat()
        let regularFile = fd >= 0 && fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        let result = requester.fetchBody(uri, szx: szx, limit: .max) { offset, bytes in
            guard fd >= 0 else { return nil }
            // A fresh start after bytes were written: a shorter body leaves nothing behind
            // (O_TRUNC emptied the file at open; /dev/null is no file to truncate).
            if offset == 0, written > 0, regularFile, ftruncate(fd, 0) != 0 {
                return "\(output ?? ""): truncate failed: \(String(cString: strerror(errno)))"
            }
            written = offset + UInt64(bytes.count)
            guard bytes.count > 0 else { return nil }
            return pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset)) == bytes.count
                ? nil : "\(output ?? ""): write failed: \(String(cString: strerror(errno)))"
        }
        switch result {
        case .success(let body): return body.length
        case .failure(let error): throw Failure(description: "\(uri): \(error)")
        }
    }
}
