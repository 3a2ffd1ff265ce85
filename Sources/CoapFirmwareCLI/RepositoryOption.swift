/// `--repo`: the repository folder (SPEC §4 layout) a server publishes into or serves.
public struct RepositoryOptions: Sendable {
    public static let options: [OptionSpec] = [
        .value("repo", "DIR", "Repository folder (SPEC §4 layout; publish creates it if missing).", required: true),
    ]

    public var repo: String

    public init(_ arguments: ParsedArguments) { repo = arguments.required("repo") }
}
