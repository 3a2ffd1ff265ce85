import Testing
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice

/// The device report's CBOR (issue #12): what the client writes, the server reads back
/// field for field, within 256 bytes; the limiter's window.
@Suite struct FleetReportTests {
    @Test func roundTripWithinTheLimit() throws {
        let longest = FleetReport(deviceID: String(repeating: "d", count: 64), result: .transferFailed,
                                  version: FirmwareVersion("65535.65535.65535"), bytes: .max, seconds: .max, attempts: .max)
        let bytes = CBOREncoder.encode(longest.cbor)
        #expect(bytes.count <= FleetReport.maxBytes)
        #expect(try FleetReport.parse(bytes).get() == longest)
        let none = FleetReport(deviceID: "a", result: .noServer, version: nil, bytes: 0, seconds: 0, attempts: 0)
        #expect(try FleetReport.parse(CBOREncoder.encode(none.cbor)).get() == none)
    }

    @Test func refusals() {
        #expect(FleetReport.parse(Array(repeating: 0, count: 257)) == .failure(.tooLarge(257)))
        #expect(FleetReport.parse([0xA0]).isFailure)  // an empty map: fields missing
        #expect(FleetReport.parse([0x80]).isFailure)  // an array
        #expect(FleetReport.parse([0xBF, 0xFF]).isFailure)  // indefinite length
    }

    @Test func limiterAllowsFivePerMinutePerAddress() {
        var limiter = ReportLimiter(limit: 5)
        var first: [Bool] = []
        for t in 100..<106 { first.append(limiter.allow("a", now: Int64(t)).allowed) }
        #expect(first == [true, true, true, true, true, false])
        let other = limiter.allow("b", now: 106)
        let stillLimited = limiter.allow("a", now: 159)
        let windowPassed = limiter.allow("a", now: 161)
        #expect(other.allowed && !stillLimited.allowed && windowPassed.allowed)
        // The 4.29's Max-Age: until the oldest of the five (at 100) leaves the minute.
        #expect(stillLimited.retryAfter == 1)
        #expect(limiter.allow("b", now: 107).retryAfter == 0)
    }
}

private extension Result {
    var isFailure: Bool { if case .failure = self { return true } else { return false } }
}
