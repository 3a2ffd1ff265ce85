import Testing
@testable import CoapFirmware
import TestSupport

/// The one PSK-file parser and the endpoint spellings of the command lines.
@Suite struct TransportArgumentsTests {
    @Test func pskFile() throws {
        let text = "# comment\n\n  device-1:00112233 \r\nurn:dev:ops:aa:ff\n"
        let keys = try PSK.parseFile(Array(text.utf8), path: "psk.txt")
        #expect(keys == [PSK(identity: Array("device-1".utf8), key: [0x00, 0x11, 0x22, 0x33]),
                         PSK(identity: Array("urn:dev:ops:aa".utf8), key: [0xff])])
        #expect(caught(PSKFileError.self) { _ = try PSK.parseFile(Array("a:00\nnokey\n".utf8), path: "p") }?.message == "p:2: expected identity:hexkey")
        #expect(caught(PSKFileError.self) { _ = try PSK.parseFile(Array(":00\n".utf8), path: "p") }?.message == "p:1: expected identity:hexkey")
        #expect(caught(PSKFileError.self) { _ = try PSK.parseFile(Array("a:\n".utf8), path: "p") } != nil)
        #expect(caught(PSKFileError.self) { _ = try PSK.parseFile(Array("# only\n".utf8), path: "p") }?.message == "p: no keys")
    }

    @Test func endpoints() {
        #expect(EndpointSpec("127.0.0.1:5683") == EndpointSpec(host: "127.0.0.1", port: 5683, secure: false))
        #expect(EndpointSpec("[::1]:5684") == EndpointSpec(host: "::1", port: 5684, secure: false))
        #expect(EndpointSpec("::1") == EndpointSpec(host: "::1", port: 5683, secure: false))
        #expect(EndpointSpec("coaps://h") == EndpointSpec(host: "h", port: 5684, secure: true))
        #expect(EndpointSpec("h:99999") == nil)
    }

    @Test(arguments: [("_firmware.lan:127.0.0.1:5683", "_firmware.lan", "127.0.0.1", UInt16?(5683)),
                      ("Host:[::1]:5683", "host", "::1", 5683), ("host:[::1]", "host", "::1", nil), ("host:10.0.0.1", "host", "10.0.0.1", nil)])
    func hostMappings(_ argument: String, _ host: String, _ address: String, _ port: UInt16?) throws {
        let m = try #require(HostMapping(argument: argument))
        #expect(m.host == host && m.address == address && m.port == port)
    }

    @Test func badHostMappings() {
        #expect(HostMapping(argument: "nohost") == nil)
        #expect(HostMapping(argument: ":1.2.3.4") == nil)
    }
}
