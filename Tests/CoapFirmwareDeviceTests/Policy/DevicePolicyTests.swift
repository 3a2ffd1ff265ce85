import Testing
import TestSupport
@testable import CoapFirmwareDevice

/// The one acceptance policy, rule by rule and in the draft's order.
@Suite struct DevicePolicyTests {
    let installed = InstalledRelease(version: FirmwareVersion(major: 1, minor: 2, revision: 3), timestamp: 1_764_000_000)

    func verdict(manufacturer: String = "example.com", model: String = "c7960", version: (UInt32, UInt32, UInt32),
                 timestamp: Int64 = 1_764_000_100, size: UInt64 = 3000, installed: InstalledRelease?? = nil,
                 slot: UInt64 = .max) -> DevicePolicy.Verdict {
        let own = (Array("example.com".utf8), Array("c7960".utf8)), offered = (Array(manufacturer.utf8), Array(model.utf8))
        return own.0.withUnsafeBytes { m in own.1.withUnsafeBytes { x in
            offered.0.withUnsafeBytes { om in offered.1.withUnsafeBytes { ox in
                DevicePolicy(manufacturer: m, model: x, installed: installed ?? self.installed, slotSize: slot)
                    .evaluate(manufacturer: om, model: ox, version: FirmwareVersion(major: version.0, minor: version.1, revision: version.2),
                              timestamp: timestamp, totalSize: size)
            } }
        } }
    }

    @Test func newerReleases() {
        #expect(verdict(version: (1, 2, 4)) == .newer)
        #expect(verdict(version: (1, 10, 0)) == .newer)
        #expect(verdict(version: (0, 0, 1), installed: .some(nil)) == .newer)
        #expect(verdict(version: (1, 2, 4), slot: 3000) == .newer)
    }

    @Test func sameVersionIsUpToDate() {
        #expect(verdict(version: (1, 2, 3)) == .upToDate)
        #expect(verdict(version: (1, 2, 3), timestamp: 1_764_000_000) == .upToDate)
    }

    @Test func rollbacks() {
        #expect(verdict(version: (1, 2, 2)) == .lowerVersion)
        #expect(verdict(version: (0, 99, 99)) == .lowerVersion)
        // A higher version with an older timestamp is a replayed old manifest (SPEC §2).
        #expect(verdict(version: (9, 0, 0), timestamp: 1_763_999_999) == .olderTimestamp)
    }

    @Test func identityBeforeFreshnessBeforeSize() {
        #expect(verdict(model: "other", version: (1, 2, 2), slot: 1) == .wrongModel)
        #expect(verdict(manufacturer: "evil.example", model: "other", version: (1, 2, 2)) == .wrongManufacturer)
        #expect(verdict(model: "c7960x", version: (1, 2, 4)) == .wrongModel, "no prefix match")
        #expect(verdict(version: (1, 2, 2), slot: 1) == .lowerVersion)
        #expect(verdict(version: (1, 2, 4), slot: 2999) == .tooLarge)
    }

    @Test func verdictsMapToResultCodes() {
        let verdicts: [DevicePolicy.Verdict] = [.newer, .upToDate, .wrongManufacturer, .wrongModel, .lowerVersion, .olderTimestamp, .tooLarge]
        #expect(verdicts.map(\.result) == [nil, .upToDate, .wrongDevice, .wrongDevice, .rollback, .rollback, .tooLarge])
    }

    @Test func resultCodes() {
        #expect(ResultCode.allCases.map { "\($0.name)" } == ["updated", "up-to-date", "bad-signature", "bad-manifest", "wrong-device",
                                                             "rollback", "too-large", "digest-mismatch", "transfer-failed", "no-server"])
        #expect(ResultCode.allCases.filter(\.isSuccess) == [.updated, .upToDate])
        #expect(ResultCode.allCases.map(\.rawValue) == Array(0...9), "C callers see these numbers")
    }
}
