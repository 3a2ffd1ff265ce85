import CoapFirmwareCLI

let serverCommand = CommandSpec(
    "coap-fw-server", abstract: "Publish signed firmware releases and serve them over CoAP.",
    discussion: """
        A manufacturer creates a key once (keygen), signs each release into a repository folder \
        (publish), and a border router serves that folder.
        """,
    subcommands: [Keygen.command, Publish.command, Serve.command, MirrorCommand.command, Fleet.command])
