import Testing
@testable import CoapFirmware

/// `ObserverLimits` (issue #13 server item 1): one address registering from
/// many ports can hold at most `perAddress` observers, and all addresses
/// together `total`; the oldest registration goes first.
struct ObserverLimitsTests {
    @Test func oneAddressKeepsItsNewestRegistrations() {
        var limits = ObserverLimits(perAddress: 3, total: 100)
        var evicted: [UInt] = []
        for session in UInt(1)...10 { evicted += limits.register(session: session, address: "198.51.100.7") }
        #expect(evicted == [1, 2, 3, 4, 5, 6, 7])
        #expect(limits.count == 3)
        // Another address is untouched by the first one's flood.
        #expect(limits.register(session: 100, address: "198.51.100.8") == [])
        #expect(limits.count == 4)
    }

    @Test func theTotalEvictsTheOldestOfAnyAddress() {
        var limits = ObserverLimits(perAddress: 32, total: 4)
        for (session, address) in [(1, "a"), (2, "b"), (3, "c"), (4, "d")] {
            #expect(limits.register(session: UInt(session), address: address) == [])
        }
        #expect(limits.register(session: 5, address: "e") == [1])
        #expect(limits.register(session: 6, address: "e") == [2])
        #expect(limits.count == 4)
    }

    @Test func reRegisteringKeepsTheOriginalOrderAndEvictsNothing() {
        var limits = ObserverLimits(perAddress: 2, total: 10)
        _ = limits.register(session: 1, address: "a")
        _ = limits.register(session: 2, address: "a")
        #expect(limits.register(session: 1, address: "a") == [])  // a refresh of session 1
        #expect(limits.register(session: 3, address: "a") == [1])  // still the oldest
        limits.remove(session: 2)
        #expect(limits.count == 1)
        #expect(limits.register(session: 4, address: "a") == [])
    }
}
