import CoapFirmware
import CoapFirmwareCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Ends a command with an exit status and a message (SPEC §7: 0 success,
/// 1 rejected or failed, 2 usage error).
public struct CommandFailure: Error, CustomStringConvertible {
    public var status: Int32
    public var message: String

    public init(status: Int32, _ message: String) { (self.status, self.message) = (status, message) }

    /// A usage error: the command line asks for something unusable.
    public static func usage(_ message: String) -> CommandFailure { CommandFailure(status: 2, message) }

    /// The operation ran and failed.
    public static func failed(_ message: String) -> CommandFailure { CommandFailure(status: 1, message) }

    public var description: String { message }
}

public func printError(_ message: String) {
    var text = message
    if !text.hasSuffix("\n") { text += "\n" }
    // Unbuffered write(2): no shared FILE* state, so no data race to reason about.
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}

/// `-v` flags shared by every command: `-v` info, `-vv` debug, `-vvv` trace.
public struct VerbosityOptions: Sendable {
    public static let options: [OptionSpec] = [
        .counted("verbose", short: "v", "More log output on stderr (repeat for more: -vv, -vvv)."),
    ]

    public var verbose: Int

    public init(_ arguments: ParsedArguments) { verbose = arguments.count("verbose") }

    /// The level for this many `-v`, starting from `quiet` (what a command
    /// shows with none: warnings for the client, notices for the server).
    public func level(quiet: Logger.Level = .warning) -> Logger.Level {
        [quiet, .info, .debug, .trace][min(verbose, 3)]
    }

    /// Sends logs to stderr at this verbosity and returns the command's logger.
    public func logger(_ label: String, quiet: Logger.Level = .warning) -> Logger {
        let level = level(quiet: quiet)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

/// Reads a file named by an option; failure is a usage error naming both.
public func readArgumentFile(_ path: String, option: String, limit: Int = 1 << 20) throws -> [UInt8] {
    do {
        return try FileSystem.read(path, limit: limit)
    } catch {
        throw CommandFailure.usage("\(option) \(error.description)")
    }
}

/// Loads trust anchors (PEM SPKI files, or RFC 8554 HSS public keys). A file that does not parse is
/// refused: trusting nothing or everything by accident is worse than stopping.
public func loadTrustedKeys(_ paths: [String]) throws -> [PublicKey] {
    guard !paths.isEmpty else { throw CommandFailure.usage("--trust: at least one public key file is required") }
    return try paths.map { path in
        let pem = try readArgumentFile(path, option: "--trust")
        do {
            return try PublicKey(fileBytes: pem)
        } catch let error as KeyError {
            throw CommandFailure.usage("--trust \(path): \(error.description)")
        }
    }
}

/// Reads `--psk-file`: its keys, or a usage error naming the file and line.
public func readPSKFile(_ path: String) throws -> [PSK] {
    do {
        return try PSK.parseFile(try readArgumentFile(path, option: "--psk-file"), path: path)
    } catch let error as PSKFileError {
        throw CommandFailure.usage("--psk-file \(error.message)")
    }
}

/// One JSON object on stdout, for `--json` modes.
public func printJSON(_ value: JSONValue) {
    print(String(decoding: JSONWriter.write(value), as: UTF8.self))
    fflush(nil)  // a line at a time, also into a pipe (`watch --json`); nil: every stream
}
