import ArgumentParser

/// `--repo`: the repository folder (SPEC §4 layout) a server publishes into or serves.
public struct RepositoryOptions: ParsableArguments {
    @Option(help: "Repository folder (SPEC §4 layout; publish creates it if missing).")
    public var repo: String

    public init() {}
}
