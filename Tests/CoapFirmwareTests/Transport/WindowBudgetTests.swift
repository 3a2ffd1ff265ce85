import Testing
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The window's memory is bounded by its byte budget whatever the block
/// size (issue #11): payloads in one buffer of max(budget, 1024) bytes,
/// at most budget ÷ block size slots of bookkeeping, and an update
/// engine of fixed size beside it.
@Suite struct WindowBudgetTests {
    /// The documented bound on one slot's bookkeeping (docs/design.md).
    static let slotBytes = 112
    static let engineBytes = 160

    /// A port on loopback where nothing listens (bound, then closed).
    func closedPort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    @Test(arguments: [0, 1000, 4096, 65536, 1_048_576])
    func windowStaysInItsBudget(windowBytes: Int) throws {
        let port = closedPort()
        for szx in UInt8(0)...Block2.maxSZX {
            let client = try CoapClient(logger: Logger(label: "test"))
            let requester = Requester(client: client, timeout: 2, exchangeTimeout: 2, windowBytes: windowBytes,
                                      logger: Logger(label: "test"))
            let payload = max(min(windowBytes, 64 * 1024), 1024)
            #expect(requester.storageBytes == payload)
            let slots = Requester.windowSlots(windowBytes: windowBytes, szx: szx)
            #expect(slots * Block2.size(szx: szx) <= payload, "slots of \(Block2.size(szx: szx)) bytes overflow the buffer")
            #expect(slots == (windowBytes == 0 ? 1 : min(64, max(1, windowBytes / Block2.size(szx: szx)))))
            // A real fetch (the port answers with ICMP) sets the window up for this block size.
            let uri = try #require(CoapURI("coap://127.0.0.1:\(port)/x"))
            let result = requester.fetchBlock(uri, Block2(number: 0, szx: szx))
            guard case .failure = result else { Issue.record("a closed port answered"); return }
            // The slots' array may have a little more capacity than asked for.
            #expect(requester.windowMemoryBytes <= payload + (slots + 4) * Self.slotBytes,
                    "window memory \(requester.windowMemoryBytes) at \(Block2.size(szx: szx))-byte blocks")
        }
        #expect(MemoryLayout<Requester.Slot>.stride <= Self.slotBytes)
    }

    @Test func lockStepHasOneSlotAndOneBlock() {
        #expect(Requester.windowSlots(windowBytes: 0, szx: 6) == 1)
        #expect(Requester.windowSlots(windowBytes: 0, szx: 0) == 1)
        #expect(Requester.windowSlots(windowBytes: 4096, szx: 6) == 4)
        #expect(Requester.windowSlots(windowBytes: 4096, szx: 2) == 64)
        #expect(Requester.windowSlots(windowBytes: 4096, szx: 0) == 64)  // not 256: at most 64 in flight
        #expect(Requester.windowSlots(windowBytes: 65536, szx: 6) == 64)
    }

    @Test func engineStateIsFixed() {
        // The engine's inline state: the block receiver, counters, the device profile's references.
        #expect(MemoryLayout<UpdateEngine>.size <= Self.engineBytes, "UpdateEngine is \(MemoryLayout<UpdateEngine>.size) bytes")
        #expect(MemoryLayout<BlockReceiver>.size <= 64, "BlockReceiver is \(MemoryLayout<BlockReceiver>.size) bytes")
        #expect(MemoryLayout<CongestionWindow>.size <= 128, "CongestionWindow is \(MemoryLayout<CongestionWindow>.size) bytes")
    }
}
