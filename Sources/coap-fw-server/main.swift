import CoapFirmwareCLI

runMain(ServerCommand.self)
