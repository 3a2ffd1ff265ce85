import Testing
@testable import CoapFirmwareCore

let sampleDigest = ImageDigest(algorithm: .sha256, value: [UInt8](repeating: 0xAB, count: 32))

func sampleManifest() -> Manifest {
    Manifest(timestamp: 1_764_000_000, manufacturer: "example.com", model: "c7960",
             firmwareVersion: FirmwareVersion(major: 1, minor: 2, revision: 3),
             firmwareLocation: "1.2.3/firmware.bin", firmwareDigests: [sampleDigest], firmwareSize: 3000)
}

@Suite struct ManifestTests {
    @Test func roundTripsThroughBothForms() throws {
        var m = sampleManifest()
        m.keyInfo = KeyInfo(curve: .ed25519, x: [UInt8](repeating: 7, count: 32))
        m.critical = ["firmwareVersion"]
        #expect(try Manifest(cbor: m.cborValue) == m)
        #expect(try Manifest(jsonBytes: JSONWriter.write(m.jsonValue)) == m)

        var split = sampleManifest()
        split.firmwareLocation = nil
        split.firmwareDigests = nil
        split.firmwareSize = nil
        split.components = [
            Component(name: "boot", location: "1.2.3/boot.bin", size: 10, digests: [sampleDigest]),
            Component(name: "app", location: "https://example.com/app.bin", size: .max - 10,
                      digests: [ImageDigest(algorithm: .sha512, value: [UInt8](repeating: 1, count: 64))]),
        ]
        #expect(try Manifest(cbor: split.cborValue) == split)
        #expect(try Manifest(jsonBytes: JSONWriter.write(split.jsonValue)) == split)
        #expect(split.images.map(\.name) == ["boot", "app"])
        #expect(split.totalImageSize == .max)
    }

    @Test func singleImageIsNamedAfterItsLocation() {
        var m = sampleManifest()
        m.firmwareLocation = "coap://h/a/b/fw-1.bin?x=1#f"
        #expect(m.images.map(\.name) == ["fw-1.bin"])
    }

    /// Replaces one key of the CBOR payload and expects an error naming `field`.
    func expectCBOR(_ field: String, _ change: (inout [CBORMapEntry]) -> Void) {
        guard case .map(var entries) = sampleManifest().cborValue else { Issue.record("not a map"); return }
        change(&entries)
        let error = caught(ManifestError.self) { _ = try Manifest(cbor: .map(entries)) }
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.resultCode == .badManifest)
    }

    func set(_ key: Int64, _ value: CBORValue?) -> (inout [CBORMapEntry]) -> Void {
        { entries in
            entries.removeAll { $0.key == .int(key) }
            if let value { entries.append(CBORMapEntry(.int(key), value)) }
        }
    }

    @Test func cborFieldErrors() {
        expectCBOR("manifestVersion", set(1, .text("2.0")))
        expectCBOR("manifestVersion", set(1, nil))
        expectCBOR("timestamp", set(2, .unsigned(5)))
        expectCBOR("timestamp", set(2, .tagged(1, .float(1.5))))
        expectCBOR("manufacturer", set(3, .text("")))
        expectCBOR("model", set(4, .bytes([1])))
        expectCBOR("firmwareVersion", set(5, .text("1.02.3")))
        expectCBOR("firmwareLocation", set(6, .text("../..")))
        expectCBOR("firmwareLocation", set(6, .text("a b")))
        expectCBOR("firmwareCryptoInfo.commitHash", set(7, .map([CBORMapEntry(.int(1), .array([]))])))
        expectCBOR("firmwareCryptoInfo.commitHash[0].digestAlgo", set(7, .map([CBORMapEntry(.int(1), .array([.map([CBORMapEntry(.int(2), .bytes([]))])]))])))
        expectCBOR("firmwareSize", set(9, .negative(0)))
        expectCBOR("components", set(10, .array([])))
        expectCBOR("components[0]", set(10, .array([.text("x")])))
        expectCBOR("components[0].name", set(10, .array([.map([CBORMapEntry(.int(1), .text(".."))])])))
        expectCBOR("critical", set(11, .array([.int(42)])))
        expectCBOR("key-info", set(8, .map([CBORMapEntry(.int(1), .int(3))])))
        expectCBOR("firmwareVersion", { $0.append(CBORMapEntry(.int(5), .text("9.9.9"))) })
    }

    @Test func componentNamesMustBeUnique() throws {
        var m = sampleManifest()
        let c = Component(name: "a", location: "a.bin", size: 1, digests: [sampleDigest])
        m.components = [c, c]
        #expect(throws: ManifestError.badManifest(field: "components[1].name", reason: "component \"a\" is listed twice")) {
            try Manifest(cbor: m.cborValue)
        }
    }

    @Test func unknownKeysAreIgnoredUnlessCritical() throws {
        guard case .map(var entries) = sampleManifest().cborValue else { return }
        entries.append(CBORMapEntry(.int(99), .text("future")))
        entries.append(CBORMapEntry(.text("x"), .null))
        #expect(try Manifest(cbor: .map(entries)) == sampleManifest())
        entries.append(CBORMapEntry(.int(11), .array([.int(99)])))
        #expect(throws: ManifestError.self) { try Manifest(cbor: .map(entries)) }
    }

    @Test func jsonFieldErrors() throws {
        func expectJSON(_ field: String, _ text: String) {
            let error = caught(ManifestError.self) { _ = try Manifest(jsonBytes: Array(text.utf8)) }
            #expect(error?.field == field, "\(String(describing: error))")
        }
        let good = String(decoding: JSONWriter.write(sampleManifest().jsonValue), as: UTF8.self)
        expectJSON("manifest", good + "x")
        expectJSON("manifest", "[]")
        expectJSON("firmwareSize", good.replacingOccurrences("\"firmwareSize\":3000", "\"firmwareSize\":3000.0"))
        expectJSON("firmwareSize", good.replacingOccurrences("\"firmwareSize\":3000", "\"firmwareSize\":-1"))
        expectJSON("timestamp", good.replacingOccurrences("2025-11-24T16:00:00Z", "2025-11-24"))
        expectJSON("firmwareCryptoInfo.commitHash[0].digestAlgo", good.replacingOccurrences("sha256", "md5"))
        expectJSON("firmwareCryptoInfo.commitHash[0].hash", good.replacingOccurrences("abab", "ABAB"))
    }
}

@Suite struct DevicePolicyTests {
    let installed = InstalledRelease(version: FirmwareVersion(major: 1, minor: 2, revision: 3), timestamp: 1_764_000_000)

    func policy(slot: UInt64? = nil) -> DevicePolicy {
        DevicePolicy(manufacturer: "example.com", model: "c7960", installed: installed, slotSize: slot)
    }

    func offer(_ version: String, at timestamp: Int64 = 1_764_000_100) -> Manifest {
        var m = sampleManifest()
        m.firmwareVersion = FirmwareVersion(version)!
        m.timestamp = timestamp
        return m
    }

    @Test func acceptsNewer() throws {
        #expect(try policy().evaluate(offer("1.2.4")) == .newer)
        #expect(try policy().evaluate(offer("1.10.0")) == .newer)
        #expect(try DevicePolicy(manufacturer: "example.com", model: "c7960").evaluate(offer("0.0.1")) == .newer)
    }

    @Test func sameVersionIsUpToDate() throws {
        #expect(try policy().evaluate(offer("1.2.3")) == .upToDate)
        #expect(try policy().evaluate(offer("1.2.3", at: 1_764_000_000)) == .upToDate)
    }

    @Test func rollbacks() {
        #expect(throws: ManifestError.self) { try policy().evaluate(offer("1.2.2")) }
        #expect(throws: ManifestError.self) { try policy().evaluate(offer("0.99.99")) }
        // A higher version with an older timestamp is a replayed old manifest.
        #expect(throws: ManifestError.self) { try policy().evaluate(offer("9.0.0", at: 1_763_999_999)) }
        do {
            _ = try policy().evaluate(offer("1.2.2"))
        } catch {
            #expect(error.resultCode == .rollback)
        }
    }

    @Test func identityBeforeFreshnessBeforeSize() throws {
        var m = offer("1.2.2")
        m.model = "other"
        #expect(throws: ManifestError.wrongDevice(field: "model", expected: "c7960", found: "other")) {
            try policy(slot: 1).evaluate(m)
        }
        m.manufacturer = "evil.example"
        #expect(throws: ManifestError.wrongDevice(field: "manufacturer", expected: "example.com", found: "evil.example")) {
            try policy().evaluate(m)
        }
        #expect(throws: ManifestError.self) { try policy(slot: 1).evaluate(offer("1.2.2")) }
        #expect(throws: ManifestError.tooLarge(size: 3000, slot: 2999)) { try policy(slot: 2999).evaluate(offer("1.2.4")) }
        #expect(try policy(slot: 3000).evaluate(offer("1.2.4")) == .newer)
    }

    @Test func resultCodesAndExitStatuses() {
        #expect(ResultCode.allCases.map(\.rawValue) == ["updated", "up-to-date", "no-server", "bad-signature", "wrong-device",
                                                        "rollback", "too-large", "digest-mismatch", "transfer-failed", "bad-manifest"])
        #expect(ResultCode.allCases.filter { $0.exitStatus == 0 } == [.updated, .upToDate])
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Index>? {
        guard !target.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
}

/// The error `body` throws, if it is an `E`; nil when it succeeds or throws something else.
func caught<E: Error>(_ type: E.Type, _ body: () throws -> Void) -> E? {
    do { try body() } catch let error as E { return error } catch { return nil }
    return nil
}
