#if canImport(Glibc)
import Glibc
#endif

/// The command-line parser both tools use. Options are declared as data and
/// read by name: no reflection and no Foundation, so a device's client does not
/// page in a metadata walker and a JSON coder to read a dozen options (issue
/// #11: this alone was about 1.3 MiB of its resident memory).
///
/// Syntax: `--name VALUE`, `--name=VALUE`, `-x VALUE`, combined short flags
/// (`-vv`), `--` ends the options; a value may start with `-` (`-1`) but not
/// with `--`. A single-valued option given twice keeps
/// the last value. Unknown options, missing values and missing required
/// options are usage errors (exit 2, SPEC §7) naming the option.
public struct OptionSpec: Sendable {
    public enum Kind: Sendable, Equatable {
        /// `--name VALUE`, once (the last one counts).
        case value(String)
        /// `--name VALUE`, any number of times, in order.
        case repeated(String)
        /// `--name`, present or not.
        case flag
        /// `-v -v` / `-vv`: how many times.
        case counted
    }

    public let name: String
    public let short: Character?
    public let kind: Kind
    public let help: String
    public let required: Bool

    public static func value(_ name: String, _ valueName: String, _ help: String, required: Bool = false,
                             short: Character? = nil) -> OptionSpec {
        OptionSpec(name: name, short: short, kind: .value(valueName), help: help, required: required)
    }

    public static func repeated(_ name: String, _ valueName: String, _ help: String, required: Bool = false) -> OptionSpec {
        OptionSpec(name: name, short: nil, kind: .repeated(valueName), help: help, required: required)
    }

    public static func flag(_ name: String, _ help: String) -> OptionSpec {
        OptionSpec(name: name, short: nil, kind: .flag, help: help, required: false)
    }

    public static func counted(_ name: String, short: Character, _ help: String) -> OptionSpec {
        OptionSpec(name: name, short: short, kind: .counted, help: help, required: false)
    }

    var takesValue: Bool {
        switch kind {
        case .value, .repeated: return true
        case .flag, .counted: return false
        }
    }

    /// `--trust FILE`, as usage lines and errors spell it.
    var synopsis: String {
        switch kind {
        case .value(let v), .repeated(let v): return "--\(name) \(v)"
        case .flag, .counted: return "--\(name)"
        }
    }
}

/// A positional argument.
public struct ArgumentSpec: Sendable {
    public let name: String
    public let help: String
    public let required: Bool

    public init(_ name: String, _ help: String, required: Bool = true) {
        (self.name, self.help, self.required) = (name, help, required)
    }
}

/// A command: its options and what it runs, or a group of subcommands.
public struct CommandSpec: Sendable {
    public let name: String
    public let abstract: String
    public let discussion: String
    public let options: [OptionSpec]
    public let arguments: [ArgumentSpec]
    public let subcommands: [CommandSpec]
    public let run: (@Sendable (ParsedArguments) throws -> Void)?

    public init(_ name: String, abstract: String, discussion: String = "", options: [OptionSpec] = [],
                arguments: [ArgumentSpec] = [], subcommands: [CommandSpec] = [],
                run: (@Sendable (ParsedArguments) throws -> Void)? = nil) {
        (self.name, self.abstract, self.discussion) = (name, abstract, discussion)
        (self.options, self.arguments, self.subcommands, self.run) = (options, arguments, subcommands, run)
    }

    /// The help text: usage, abstract, discussion, options.
    public func help(path: String) -> String {
        var text = "USAGE: \(path)"
        if !subcommands.isEmpty {
            text += " <subcommand>\n\n\(Self.wrap(abstract))\n"
            if !discussion.isEmpty { text += "\n\(Self.wrap(discussion))\n" }
            text += "\nSUBCOMMANDS:\n"
            for sub in subcommands { text += Self.row(sub.name, sub.abstract) }
            text += "\nSee '\(path) help <subcommand>' for a subcommand's options.\n"
            return text
        }
        for option in options where option.required {
            text += " " + option.synopsis + (isRepeated(option) ? " ..." : "")
        }
        if options.contains(where: { !$0.required }) { text += " [options]" }
        for argument in arguments { text += argument.required ? " <\(argument.name)>" : " [<\(argument.name)>]" }
        text += "\n\n\(Self.wrap(abstract))\n"
        if !discussion.isEmpty { text += "\n\(Self.wrap(discussion))\n" }
        if !arguments.isEmpty {
            text += "\nARGUMENTS:\n"
            for argument in arguments { text += Self.row("<\(argument.name)>", argument.help) }
        }
        text += "\nOPTIONS:\n"
        for option in options {
            let names = (option.short.map { "-\($0), " } ?? "") + option.synopsis
            text += Self.row(names, option.help)
        }
        text += Self.row("-h, --help", "Show this help.")
        return text
    }

    private func isRepeated(_ option: OptionSpec) -> Bool {
        if case .repeated = option.kind { return true }
        return false
    }

    private static func row(_ left: String, _ right: String) -> String {
        let pad = left.count < 26 ? String(repeating: " ", count: 26 - left.count) : "\n" + String(repeating: " ", count: 28)
        return "  \(left)\(pad)\(wrap(right, indent: 28))\n"
    }

    /// Word-wraps each line of `text` at 80 columns, continuing lines at `indent`
    /// (lines that start with spaces, such as examples, are kept as they are).
    static func wrap(_ text: String, indent: Int = 0) -> String {
        let margin = String(repeating: " ", count: indent)
        var out: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(" ") {
                out.append((out.isEmpty ? "" : margin) + line)
                continue
            }
            var current = ""
            var width = out.isEmpty ? indent : indent
            for word in line.split(separator: " ") {
                if !current.isEmpty && width + current.count + 1 + word.count > 80 {
                    out.append((out.isEmpty ? "" : margin) + current)
                    current = ""
                    width = indent
                }
                current += (current.isEmpty ? "" : " ") + word
            }
            out.append((out.isEmpty ? "" : margin) + current)
        }
        return out.joined(separator: "\n")
    }
}

/// What a command line said, read by option name (without `--`).
public struct ParsedArguments: Sendable {
    public let commandPath: String
    var values: [String: [String]] = [:]
    var counts: [String: Int] = [:]
    public internal(set) var positionals: [String] = []
    /// `-h` or `--help` in an option's place (not as a value, not after `--`).
    var helpRequested = false

    /// The last value of a single-valued option.
    public func string(_ name: String) -> String? { values[name]?.last }

    /// A required option's value (its presence is checked when parsing).
    public func required(_ name: String) -> String { values[name]?.last ?? "" }

    /// Every value of a repeated option, in order.
    public func strings(_ name: String) -> [String] { values[name] ?? [] }

    public func flag(_ name: String) -> Bool { (counts[name] ?? 0) > 0 }

    public func count(_ name: String) -> Int { counts[name] ?? 0 }

    public func positional(_ index: Int) -> String? { index < positionals.count ? positionals[index] : nil }

    /// An integer option, or a usage error naming it.
    public func int(_ name: String) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text) else { throw CommandFailure.usage("--\(name) \(text): expected a whole number") }
        return value
    }

    public func int(_ name: String, default value: Int) throws -> Int { try int(name) ?? value }

    public func uint64(_ name: String) throws -> UInt64? {
        guard let text = string(name) else { return nil }
        guard let value = UInt64(text) else { throw CommandFailure.usage("--\(name) \(text): expected a whole number (0 or more)") }
        return value
    }

    /// A number option (`inf` and `nan` parse; each command checks its range).
    public func double(_ name: String) throws -> Double? {
        guard let text = string(name) else { return nil }
        guard let value = Double(text) else { throw CommandFailure.usage("--\(name) \(text): expected a number") }
        return value
    }

    public func double(_ name: String, default value: Double) throws -> Double { try double(name) ?? value }
}

/// What a command line asks for: a command to run, or help to show.
enum Invocation {
    case run(CommandSpec, ParsedArguments)
    case help(String)
}

extension CommandSpec {
    /// Parses `arguments` (without the program name) for this root command.
    func parse(_ arguments: [String], path: String) throws -> Invocation {
        var rest = arguments[...]
        var command = self
        var path = path
        while !command.subcommands.isEmpty {
            guard let first = rest.first else {
                throw CommandFailure.usage("missing subcommand: \(command.subcommands.map(\.name).joined(separator: ", ")) (see \(path) --help)")
            }
            if first == "-h" || first == "--help" { return .help(command.help(path: path)) }
            if first == "help" {
                guard let name = rest.dropFirst().first else { return .help(command.help(path: path)) }
                guard let sub = command.subcommands.first(where: { $0.name == name }) else {
                    throw CommandFailure.usage("help \(name): no such subcommand")
                }
                return .help(sub.help(path: "\(path) \(name)"))
            }
            guard let sub = command.subcommands.first(where: { $0.name == first }) else {
                throw CommandFailure.usage("unknown subcommand '\(first)': expected \(command.subcommands.map(\.name).joined(separator: ", "))")
            }
            command = sub
            path += " \(first)"
            rest = rest.dropFirst()
        }
        let parsed: ParsedArguments
        do {
            parsed = try command.parseOptions(Array(rest), path: path)
        } catch {
            // `update --bogus --help`: the help asked for, rather than the error.
            if rest.prefix(while: { $0 != "--" }).contains(where: { $0 == "-h" || $0 == "--help" }) {
                return .help(command.help(path: path))
            }
            throw error
        }
        return parsed.helpRequested ? .help(command.help(path: path)) : .run(command, parsed)
    }

    func parseOptions(_ tokens: [String], path: String) throws -> ParsedArguments {
        var parsed = ParsedArguments(commandPath: path)
        let seeHelp = " (see \(path) --help)"
        func record(_ option: OptionSpec, _ value: String?) {
            if let value {
                parsed.values[option.name, default: []].append(value)
            } else {
                parsed.counts[option.name, default: 0] += 1
            }
        }
        var i = 0
        var onlyPositionals = false
        while i < tokens.count {
            let token = tokens[i]
            i += 1
            if onlyPositionals || token == "-" || !token.hasPrefix("-") {
                parsed.positionals.append(token)
                continue
            }
            if token == "--" {
                onlyPositionals = true
                continue
            }
            if token == "--help" {
                parsed.helpRequested = true
                continue
            }
            if token.hasPrefix("--") {
                let body = token.dropFirst(2)
                let name = String(body.prefix { $0 != "=" })
                let inline = body.firstIndex(of: "=").map { String(body[body.index(after: $0)...]) }
                guard let option = options.first(where: { $0.name == name }) else {
                    throw CommandFailure.usage("unknown option --\(name)\(seeHelp)")
                }
                if option.takesValue {
                    if let inline {
                        record(option, inline)
                    } else {
                        // `--state --json`: a forgotten value, not a folder named --json.
                        guard i < tokens.count, !tokens[i].hasPrefix("--") else {
                            throw CommandFailure.usage("\(option.synopsis): the value is missing")
                        }
                        record(option, tokens[i])
                        i += 1
                    }
                } else {
                    guard inline == nil else { throw CommandFailure.usage("--\(name) takes no value") }
                    record(option, nil)
                }
                continue
            }
            // Short options: -v, -vv, -o FILE, -oFILE, -o=FILE.
            var letters = token.dropFirst()
            while let letter = letters.first {
                letters = letters.dropFirst()
                guard let option = options.first(where: { $0.short == letter }) else {
                    if letter == "h" {
                        parsed.helpRequested = true
                        continue
                    }
                    throw CommandFailure.usage("unknown option -\(letter)\(seeHelp)")
                }
                if option.takesValue {
                    if !letters.isEmpty {
                        record(option, String(letters.first == "=" ? letters.dropFirst() : letters))
                    } else {
                        // `-o --json`: a forgotten value, as for long options.
                        guard i < tokens.count, !tokens[i].hasPrefix("--") else {
                            throw CommandFailure.usage("-\(letter) (\(option.synopsis)): the value is missing")
                        }
                        record(option, tokens[i])
                        i += 1
                    }
                    break
                }
                record(option, nil)
            }
        }
        if parsed.helpRequested { return parsed }
        for option in options where option.required && parsed.values[option.name] == nil {
            throw CommandFailure.usage("missing \(option.synopsis)\(seeHelp)")
        }
        for (index, argument) in arguments.enumerated() where argument.required && index >= parsed.positionals.count {
            throw CommandFailure.usage("missing <\(argument.name)>\(seeHelp)")
        }
        if parsed.positionals.count > arguments.count {
            throw CommandFailure.usage("unexpected argument '\(parsed.positionals[arguments.count])'\(seeHelp)")
        }
        return parsed
    }
}

/// Runs a root command with SPEC §7's exit statuses: 0 done, 1 failed, 2 usage.
public func runMain(_ root: CommandSpec, arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
    do {
        switch try root.parse(arguments, path: root.name) {
        case .help(let text):
            print(text, terminator: "")
            exit(0)
        case .run(let command, let parsed):
            try command.run?(parsed)
            exit(0)
        }
    } catch let failure as CommandFailure {
        if !failure.message.isEmpty { printError("\(root.name): \(failure.message)") }
        exit(failure.status)
    } catch {
        printError("\(root.name): \(error)")
        exit(1)
    }
}
