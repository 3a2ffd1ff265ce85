import CoapFirmwareCLI

runMain(clientCommand)
