import CoapFirmwareCLI

let clientCommand = CommandSpec(
    "coap-fw-client", abstract: "Check and install signed firmware on a device.",
    subcommands: [Update.command, Watch.command, Status.command, Verify.command, Fetch.command])
