import CoapFirmwareCLI

runMain(serverCommand)
