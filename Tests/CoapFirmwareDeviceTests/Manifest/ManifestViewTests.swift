import Testing
import TestSupport
@testable import CoapFirmwareDevice

/// The one set of manifest rules, on payloads: the vectors, the limits a
/// device has, and the edges of each field.
@Suite struct ManifestViewTests {
    func read(_ cbor: TestCBOR) -> Result<ManifestView, ManifestView.Failure> {
        cbor.encoded.withUnsafeBytes { ManifestView.read($0) }
    }

    func refusal(_ cbor: TestCBOR) -> FieldPath? {
        if case .failure(let f) = read(cbor) { return f.path }
        return nil
    }

    /// The COSE payload of a vector envelope, if it parses as one.
    static func payload(_ envelope: [UInt8]) -> [UInt8]? {
        envelope.withUnsafeBytes { raw in
            guard case .success(let cose) = COSESign1View.parse(raw) else { return nil }
            return Array(raw[cose.payload])
        }
    }

    /// Every CBOR vector: a payload is accepted exactly when the vector is
    /// good (or fails only its signature), and refused when its fault is in
    /// the payload.
    @Test(arguments: try ManifestVector.all().filter { $0.format == "cbor" })
    func vector(_ v: ManifestVector) throws {
        guard let payload = Self.payload(try readVector(v.file)) else {
            #expect(v.expect == "bad-manifest" && v.field?.hasPrefix("COSE_Sign1") == true, "only envelope faults fail to parse")
            return
        }
        let result = payload.withUnsafeBytes { ManifestView.read($0) }
        let payloadFault = v.expect == "bad-manifest" && v.field != "manifest" && !(v.field?.hasPrefix("COSE_Sign1") ?? false)
        switch result {
        case .success(let view):
            #expect(!payloadFault, "\(v.name) must be refused (\(v.field ?? ""))")
            if v.expect == "ok" { #expect(view.imageCount == v.images.count) }
        case .failure(let failure):
            #expect(payloadFault || v.field == "manifest", "\(v.name): refused at \(failure.path) (\(failure.reason))")
        }
    }

    @Test func readsTheSample() throws {
        let bytes = sampleManifestCBOR().encoded
        let view = try bytes.withUnsafeBytes { try ManifestView.read($0).get() }
        #expect(view.timestamp == 1_764_000_000 && view.version == FirmwareVersion(major: 1, minor: 2, revision: 3))
        #expect(view.imageCount == 1 && !view.isSplit && view.images[0].size == 3000 && view.images[0].name == nil)
        #expect(view.images[0].digestCount == 1 && view.images[0].digests[0].algorithm == .sha256)
        #expect(String(decoding: bytes[view.model], as: UTF8.self) == "c7960")
        #expect(view.keyInfo == nil && view.critical == nil)
    }

    /// Timestamps a device can record: the years 0000 to 9999 (RFC 3339);
    /// anything else (a signer writing milliseconds) is a bad manifest.
    @Test func timestampsAreYears0000To9999() throws {
        func at(_ seconds: Int64) -> TestCBOR { sampleManifestCBOR().setting(2, .tag(1, .int(seconds))) }
        #expect(try read(at(-62_167_219_200)).get().timestamp == -62_167_219_200)  // 0000-01-01T00:00:00Z
        #expect(try read(at(253_402_300_799)).get().timestamp == 253_402_300_799)  // 9999-12-31T23:59:59Z
        for refused in [Int64.min, -62_167_219_201, 253_402_300_800, 1_764_000_000_000, Int64.max] {
            #expect(refusal(at(refused)) == FieldPath(field: .timestamp), "\(refused)")
        }
        #expect(refusal(sampleManifestCBOR().setting(2, .tag(1, .unsigned(UInt64(Int64.max) + 1)))) == FieldPath(field: .timestamp))
        #expect(refusal(sampleManifestCBOR().setting(2, .tag(1, .raw([0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0])))) == FieldPath(field: .timestamp))
        #expect(refusal(sampleManifestCBOR().setting(2, .unsigned(5))) == FieldPath(field: .timestamp))
    }

    /// Names the device keeps its own records under, and fragments, which
    /// CoAP cannot request (issue #13 items 7 and 14).
    @Test func reservedNamesAndFragments() {
        for name in ["release.json", "manifest.cbor", "manifest.json"] {
            #expect(refusal(sampleManifestCBOR().setting(6, .text("1.2.3/\(name)"))) == FieldPath(field: .firmwareLocation), "\(name)")
        }
        #expect(refusal(sampleManifestCBOR().setting(6, .text("1.2.3/firmware.bin#x"))) == FieldPath(field: .firmwareLocation))
        #expect((try? read(sampleManifestCBOR().setting(6, .text("1.2.3/manifest.cbor.bin"))).get()) != nil)
    }

    @Test func fieldsInOrder() {
        let sample = sampleManifestCBOR()
        #expect(refusal(sample.setting(11, .array([.unsigned(42)]))) == FieldPath(field: .critical))
        #expect(refusal(sample.setting(1, .text("2.0"))) == FieldPath(field: .manifestVersion))
        #expect(refusal(sample.setting(1, nil)) == FieldPath(field: .manifestVersion))
        #expect(refusal(sample.setting(3, .text(""))) == FieldPath(field: .manufacturer))
        #expect(refusal(sample.setting(4, .bytes([1]))) == FieldPath(field: .model))
        #expect(refusal(sample.setting(5, .text("1.02.3"))) == FieldPath(field: .firmwareVersion))
        #expect(refusal(sample.setting(6, .text("../.."))) == FieldPath(field: .firmwareLocation))
        #expect(refusal(sample.setting(6, .text("a b"))) == FieldPath(field: .firmwareLocation))
        #expect(refusal(sample.setting(9, .negative(0))) == FieldPath(field: .firmwareSize))
        #expect(refusal(sample.setting(8, .map([(.unsigned(1), .unsigned(3))]))) == FieldPath(field: .keyInfo))
        var twice = sample.entries
        twice.append((.unsigned(5), .text("9.9.9")))
        #expect(refusal(.map(twice)) == FieldPath(field: .firmwareVersion), "a repeated key names the key")
        // Order: a manifest wrong in two places is refused for the earlier rule.
        #expect(refusal(sample.setting(1, .text("2.0")).setting(3, .text(""))) == FieldPath(field: .manifestVersion))
    }

    @Test func unknownKeysAreIgnoredUnlessCritical() throws {
        var entries = sampleManifestCBOR().entries
        entries.append((.unsigned(99), .text("future")))
        entries.append((.text("x"), .raw([0xf9, 0x3c, 0x00])))  // a half float under an unknown key
        #expect(try read(.map(entries)).get().imageCount == 1)
        entries.append((.unsigned(11), .array([.unsigned(99)])))
        #expect(refusal(.map(entries)) == FieldPath(field: .critical))
    }

    @Test func deviceLimits() {
        func component(_ name: String) -> TestCBOR {
            .map([(.unsigned(1), .text(name)), (.unsigned(2), .text("\(name).bin")), (.unsigned(3), .unsigned(1)),
                  (.unsigned(4), .array([.map([(.unsigned(1), .int(-16)), (.unsigned(2), .bytes([UInt8](repeating: 1, count: 32)))])]))])
        }
        let split = sampleManifestCBOR().setting(6, nil).setting(7, nil).setting(9, nil)
        #expect((try? read(split.setting(10, .array((0..<4).map { component("c\($0)") }))).get().imageCount) == 4)
        var five = FieldPath(field: .components)
        #expect(refusal(split.setting(10, .array((0..<5).map { component("c\($0)") }))) == five)
        five.component = 1
        five.member = .name
        #expect(refusal(split.setting(10, .array([component("a"), component("a")]))) == five, "component names are unique")
        for name in ["release.json", "manifest.cbor", "manifest.json"] {  // the device's own records (issue #13 item 7)
            #expect(refusal(split.setting(10, .array([component("a"), component(name)]))) == five, "\(name)")
        }
        let digest = TestCBOR.map([(.unsigned(1), .int(-16)), (.unsigned(2), .bytes([UInt8](repeating: 2, count: 32)))])
        var path = FieldPath(field: .firmwareCryptoInfo)
        path.member = .commitHash
        #expect(refusal(sampleManifestCBOR().setting(7, .map([(.unsigned(1), .array(Array(repeating: digest, count: 4)))]))) == path)
        path.digest = 0
        path.digestMember = .hash
        #expect(refusal(sampleManifestCBOR().setting(7, .map([(.unsigned(1), .array([.map([(.unsigned(1), .int(-16)), (.unsigned(2), .bytes([1]))])]))]))) == path)
    }

    @Test func keyInfo() throws {
        let x = [UInt8](repeating: 7, count: 32)
        let ed = TestCBOR.map([(.unsigned(1), .unsigned(1)), (.negative(0), .unsigned(6)), (.negative(1), .bytes(x))])
        let view = try read(sampleManifestCBOR().setting(8, ed)).get()
        #expect(view.keyInfo?.curve == .ed25519 && view.keyInfo?.x.count == 32 && view.keyInfo?.y == nil)
        let p256WithoutY = TestCBOR.map([(.unsigned(1), .unsigned(2)), (.negative(0), .unsigned(1)), (.negative(1), .bytes(x))])
        #expect(refusal(sampleManifestCBOR().setting(8, p256WithoutY)) == FieldPath(field: .keyInfo))
    }
}
