import ArgumentParser

struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coap-fw-client",
        abstract: "Check and install signed firmware on a device.",
        subcommands: [Update.self, Status.self, Verify.self, Fetch.self]
    )
}
