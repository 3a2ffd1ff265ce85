import Testing
@testable import CoapFirmware

/// `EchoGate` (issue #13 server item 5, RFC 9175 §2.4): an unverified
/// address is challenged; echoing the value (this minute's or the last)
/// verifies it for `trustSeconds`; values are per address.
struct EchoGateTests {
    let secret = [UInt8](repeating: 7, count: 16)

    @Test func challengeThenServe() throws {
        var gate = EchoGate(secret: secret, trustSeconds: 600)
        guard case .challenge(let value) = gate.check(address: "192.0.2.1", echo: nil, now: 1000) else {
            Issue.record("an unverified address must be challenged"); return
        }
        #expect(value.count == 8)
        #expect(gate.check(address: "192.0.2.1", echo: value, now: 1030) == .serve)
        // Verified now: no Echo needed while it keeps asking, until it has been quiet for trustSeconds.
        #expect(gate.check(address: "192.0.2.1", echo: nil, now: 1500) == .serve)
        #expect(gate.check(address: "192.0.2.1", echo: nil, now: 2000) == .serve)
        #expect(gate.check(address: "192.0.2.1", echo: nil, now: 2000 + 600) != .serve)
    }

    @Test func valuesAreBoundToAddressAndTime() {
        var gate = EchoGate(secret: secret)
        let value = gate.value(for: "192.0.2.1", at: 1000)
        #expect(value != gate.value(for: "192.0.2.2", at: 1000))
        #expect(gate.check(address: "192.0.2.2", echo: value, now: 1000) != .serve)  // another address's value
        #expect(gate.check(address: "192.0.2.1", echo: value, now: 1000 + 120) != .serve)  // two windows later
        #expect(EchoGate(secret: [1]).value(for: "192.0.2.1", at: 1000) != value)  // another server's secret
        #expect(gate.check(address: "192.0.2.1", echo: value, now: 1000 + 60) == .serve)  // the previous window still counts
    }

    @Test func theTrustedSetIsBounded() {
        var gate = EchoGate(secret: secret, trustSeconds: 600, capacity: 3)
        for i in 0..<10 {
            let address = "192.0.2.\(i)"
            #expect(gate.check(address: address, echo: gate.value(for: address, at: 5000), now: 5000 + Int64(i)) == .serve)
        }
        // The first addresses were dropped to keep the capacity.
        #expect(gate.check(address: "192.0.2.0", echo: nil, now: 5020) != .serve)
        #expect(gate.check(address: "192.0.2.9", echo: nil, now: 5020) == .serve)
    }
}
