import Testing
@testable import CoapFirmwareCLI

/// The hand-written command-line parser (no reflection, no Foundation; issue
/// #11): what it accepts, what it refuses as a usage error, and its help.
@Suite struct ArgumentsTests {
    static let leaf = CommandSpec(
        "update", abstract: "Update.",
        options: [
            .value("state", "DIR", "State folder.", required: true),
            .repeated("trust", "FILE", "A key (repeat)."),
            .value("output", "FILE", "Output.", short: "o"),
            .value("block-size", "BYTES", "Block size."),
            .value("timeout", "SECONDS", "Timeout."),
            .value("slot-size", "BYTES", "Slot."),
            .flag("json", "JSON."),
            .counted("verbose", short: "v", "More."),
        ],
        arguments: [ArgumentSpec("uri", "A URI.", required: false)])
    static let root = CommandSpec("tool", abstract: "A tool.", subcommands: [leaf])

    func parse(_ tokens: [String]) throws -> ParsedArguments {
        guard case .run(let command, let parsed) = try Self.root.parse(tokens, path: "tool") else {
            Issue.record("expected a command to run")
            throw CommandFailure.failed("help")
        }
        #expect(command.name == "update")
        return parsed
    }

    func usageError(_ tokens: [String]) -> String? {
        do {
            _ = try Self.root.parse(tokens, path: "tool")
            return nil
        } catch let failure as CommandFailure {
            #expect(failure.status == 2)
            return failure.message
        } catch {
            return "\(error)"
        }
    }

    @Test func valuesFlagsAndRepeats() throws {
        let a = try parse(["update", "--state", "s1", "--trust", "a.pem", "--trust=b.pem", "--state=s2", "-vv", "-v",
                           "--json", "-o", "out.bin", "coap://h/x", "--block-size", "64", "--timeout", "2.5"])
        #expect(a.required("state") == "s2")  // the last one counts
        #expect(a.strings("trust") == ["a.pem", "b.pem"])
        #expect(a.count("verbose") == 3)
        #expect(a.flag("json"))
        #expect(a.string("output") == "out.bin")
        #expect(a.positional(0) == "coap://h/x")
        #expect(try a.int("block-size", default: 1024) == 64)
        #expect(try a.double("timeout", default: 30) == 2.5)
        #expect(try a.uint64("slot-size") == nil)
        #expect(!a.flag("missing"))
    }

    @Test func shortValueAttachedAndDoubleDash() throws {
        let a = try parse(["update", "-oout.bin", "--state", "-1", "--timeout=--x", "--", "--not-an-option"])
        #expect(a.string("output") == "out.bin")
        #expect(a.required("state") == "-1")  // a value may start with one dash
        #expect(a.string("timeout") == "--x")  // or with two, after =
        #expect(a.positional(0) == "--not-an-option")
        #expect(usageError(["update", "--state", "--json"])?.contains("--state DIR: the value is missing") == true)
        // `-o=FILE` means FILE; `-o --json` forgot the value, as `--output --json` does.
        #expect(try parse(["update", "--state", "s", "-o=out.bin"]).string("output") == "out.bin")
        #expect(usageError(["update", "--state", "s", "-o", "--json"])?.contains("-o (--output FILE): the value is missing") == true)
        #expect(try parse(["update", "--state", "s", "-o", "-"]).string("output") == "-")
    }

    @Test func helpOnlyInAnOptionsPlace() throws {
        // A value or a positional after `--` that reads -h or --help is not a request for help.
        let a = try parse(["update", "--state", "-h", "-o", "-h", "--", "--help"])
        #expect(a.required("state") == "-h" && a.string("output") == "-h" && a.positional(0) == "--help")
        #expect(try parse(["update", "--state", "s", "--output=--help"]).string("output") == "--help")
        for tokens in [["update", "-vh"], ["update", "--bogus", "--help"]] {
            guard case .help = try Self.root.parse(tokens, path: "tool") else {
                Issue.record("\(tokens): no help")
                continue
            }
        }
    }

    @Test func usageErrorsNameTheOption() throws {
        #expect(usageError(["update"])?.contains("missing --state DIR") == true)
        #expect(usageError(["update", "--state", "s", "--bogus"])?.contains("unknown option --bogus") == true)
        #expect(usageError(["update", "--state", "s", "-x"])?.contains("unknown option -x") == true)
        #expect(usageError(["update", "--state"])?.contains("--state DIR: the value is missing") == true)
        #expect(usageError(["update", "--state", "s", "--json=yes"])?.contains("--json takes no value") == true)
        #expect(usageError(["update", "--state", "s", "a", "b"])?.contains("unexpected argument 'b'") == true)
        #expect(usageError(["frobnicate"])?.contains("unknown subcommand 'frobnicate'") == true)
        #expect(usageError([])?.contains("missing subcommand") == true)
        let a = try parse(["update", "--state", "s", "--block-size", "big", "--timeout", "soon", "--slot-size", "-1"])
        #expect(throws: CommandFailure.self) { try a.int("block-size") }
        #expect(throws: CommandFailure.self) { try a.double("timeout") }
        #expect(throws: CommandFailure.self) { try a.uint64("slot-size") }
        // inf and nan parse as numbers: each command checks its own range (a usage error naming the option).
        #expect(try parse(["update", "--state", "s", "--timeout", "inf"]).double("timeout") == .infinity)
    }

    @Test func help() throws {
        for tokens in [["update", "--help"], ["update", "--state", "s", "-h"], ["help", "update"]] {
            guard case .help(let text) = try Self.root.parse(tokens, path: "tool") else {
                Issue.record("\(tokens): no help")
                continue
            }
            #expect(text.hasPrefix("USAGE: tool update --state DIR [options] [<uri>]"))
            #expect(text.contains("  -o, --output FILE"))
            #expect(text.contains("  --trust FILE"))
            #expect(text.contains("  -h, --help"))
        }
        guard case .help(let text) = try Self.root.parse(["--help"], path: "tool") else {
            Issue.record("no root help")
            return
        }
        #expect(text.contains("SUBCOMMANDS:\n  update"))
    }

    @Test func wrapsAtEightyColumns() {
        let words = Array(repeating: "word", count: 60).joined(separator: " ")
        let wrapped = CommandSpec.wrap(words, indent: 28)
        for line in wrapped.split(separator: "\n") { #expect(line.count <= 80) }
        #expect(wrapped.split(separator: "\n").dropFirst().allSatisfy { $0.hasPrefix(String(repeating: " ", count: 28)) })
        #expect(CommandSpec.wrap("  kept  as is") == "  kept  as is")
    }
}
