import Testing
import TestSupport
import CoapFirmwareDevice
@testable import CoapFirmwareCore

/// The host's view of the device's policy: the same rules, errors that name what differs.
@Suite struct DeviceProfileTests {
    let installed = InstalledRelease(version: FirmwareVersion(major: 1, minor: 2, revision: 3), timestamp: 1_764_000_000)

    func profile(slot: UInt64? = nil) -> DeviceProfile {
        DeviceProfile(manufacturer: "example.com", model: "c7960", installed: installed, slotSize: slot)
    }

    func offer(_ version: String, at timestamp: Int64 = 1_764_000_100) -> Manifest {
        var m = sampleManifest()
        m.firmwareVersion = FirmwareVersion(version)!
        m.timestamp = timestamp
        return m
    }

    @Test func verdicts() throws {
        #expect(try profile().isNewer(offer("1.2.4")))
        #expect(try !profile().isNewer(offer("1.2.3")))
        #expect(try DeviceProfile(manufacturer: "example.com", model: "c7960").isNewer(offer("0.0.1")))
        #expect(caught(ManifestError.self) { _ = try profile().isNewer(offer("1.2.2")) }?.resultCode == .rollback)
        #expect(caught(ManifestError.self) { _ = try profile().isNewer(offer("9.0.0", at: 1_763_999_999)) }?.resultCode == .rollback)
        var m = offer("1.2.2")
        m.model = "other"
        #expect(throws: ManifestError.wrongDevice(field: "model", expected: "c7960", found: "other")) { try profile(slot: 1).isNewer(m) }
        m.manufacturer = "evil.example"
        #expect(throws: ManifestError.wrongDevice(field: "manufacturer", expected: "example.com", found: "evil.example")) { try profile().isNewer(m) }
        #expect(throws: ManifestError.tooLarge(size: 3000, slot: 2999)) { try profile(slot: 2999).isNewer(offer("1.2.4")) }
    }

    @Test func resultNamesAndExitStatuses() {
        #expect(ResultCode.allCases.map(\.description) == ["updated", "up-to-date", "bad-signature", "bad-manifest", "wrong-device",
                                                          "rollback", "too-large", "digest-mismatch", "transfer-failed", "no-server"])
        #expect(ResultCode.allCases.filter { $0.exitStatus == 0 } == [.updated, .upToDate])
    }
}
