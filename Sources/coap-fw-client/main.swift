import CoapFirmwareCLI

runMain(ClientCommand.self)
