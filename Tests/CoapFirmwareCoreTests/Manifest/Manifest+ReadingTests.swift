import Testing
import TestSupport
import CoapFirmwareDevice
@testable import CoapFirmwareCore

let sampleDigest = ImageDigest(algorithm: .sha256, value: [UInt8](repeating: 0xAB, count: 32))

func sampleManifest() -> Manifest {
    Manifest(timestamp: 1_764_000_000, manufacturer: "example.com", model: "c7960",
             firmwareVersion: FirmwareVersion(major: 1, minor: 2, revision: 3),
             firmwareLocation: "1.2.3/firmware.bin", firmwareDigests: [sampleDigest], firmwareSize: 3000)
}

func jsonText(_ m: Manifest) -> String { String(decoding: JSONWriter.write(m.jsonValue), as: UTF8.self) }

func field(cbor: TestCBOR) -> String? {
    caught(ManifestError.self) { _ = try Manifest(cborPayload: cbor.encoded) }?.field
}

func field(json: String) -> String? {
    caught(ManifestError.self) { _ = try Manifest(jsonPayload: Array(json.utf8)) }?.field
}

/// Reading a manifest: both forms through the device's rules.
@Suite struct ManifestReadingTests {
    @Test func readsBothForms() throws {
        #expect(try Manifest(cborPayload: sampleManifestCBOR(digest: sampleDigest.value).encoded) == sampleManifest())
        #expect(try Manifest(jsonPayload: Array(jsonText(sampleManifest()).utf8)) == sampleManifest())
        var split = sampleManifest()
        (split.firmwareLocation, split.firmwareDigests, split.firmwareSize) = (nil, nil, nil)
        split.components = [
            Component(name: "boot", location: "1.2.3/boot.bin", size: 10, digests: [sampleDigest]),
            Component(name: "app", location: "https://example.com/app.bin", size: .max - 10,
                      digests: [ImageDigest(algorithm: .sha512, value: [UInt8](repeating: 1, count: 64))]),
        ]
        split.keyInfo = KeyInfo(curve: .ed25519, x: [UInt8](repeating: 7, count: 32))
        split.critical = ["firmwareVersion", "key-info"]
        #expect(try Manifest(jsonPayload: Array(jsonText(split).utf8)) == split)
        #expect(split.images.map(\.name) == ["boot", "app"])
        #expect(split.totalImageSize == .max)
    }

    @Test func singleImageIsNamedAfterItsLocation() {
        var m = sampleManifest()
        m.firmwareLocation = "coap://h/a/b/fw-1.bin?x=1#f"
        #expect(m.images.map(\.name) == ["fw-1.bin"])
    }

    /// What the device refuses, the host refuses, naming the same field.
    @Test func cborFieldErrors() {
        let sample = sampleManifestCBOR()
        let cases: [(String, TestCBOR)] = [
            ("manifestVersion", sample.setting(1, .text("2.0"))), ("timestamp", sample.setting(2, .unsigned(5))),
            ("manufacturer", sample.setting(3, .text(""))), ("model", sample.setting(4, .bytes([1]))),
            ("firmwareVersion", sample.setting(5, .text("1.02.3"))), ("firmwareLocation", sample.setting(6, .text("a b"))),
            ("firmwareCryptoInfo.commitHash", sample.setting(7, .map([(.unsigned(1), .array([]))]))),
            ("firmwareCryptoInfo.commitHash[0].digestAlgo", sample.setting(7, .map([(.unsigned(1), .array([.map([(.unsigned(2), .bytes([]))])]))]))),
            ("firmwareSize", sample.setting(9, .negative(0))), ("components", sample.setting(10, .array([]))),
            ("components[0]", sample.setting(10, .array([.text("x")]))),
            ("components[0].name", sample.setting(10, .array([.map([(.unsigned(1), .text(".."))])]))),
            ("critical", sample.setting(11, .array([.unsigned(42)]))), ("key-info", sample.setting(8, .map([(.unsigned(1), .unsigned(3))]))),
            ("key \"x\"", .map(sample.entries + [(.text("x"), .unsigned(1)), (.text("x"), .unsigned(2))])),
            ("manifest", .raw(sample.encoded + [0])),
        ]
        for (expected, cbor) in cases { #expect(field(cbor: cbor) == expected) }
    }

    @Test func jsonSpellingErrors() throws {
        let good = jsonText(sampleManifest())
        #expect(field(json: good + "x") == "manifest")
        #expect(field(json: "[]") == "manifest")
        #expect(field(json: good.replacingOccurrences("\"firmwareSize\":3000", "\"firmwareSize\":3000.0")) == "firmwareSize")
        #expect(field(json: good.replacingOccurrences("\"firmwareSize\":3000", "\"firmwareSize\":-1")) == "firmwareSize")
        #expect(field(json: good.replacingOccurrences("\"firmwareSize\":3000", "\"firmwareSize\":18446744073709551616")) == "firmwareSize")
        #expect(field(json: good.replacingOccurrences("2025-11-24T16:00:00Z", "2025-11-24")) == "timestamp")
        #expect(field(json: good.replacingOccurrences("\"2025-11-24T16:00:00Z\"", "1764000000")) == "timestamp")
        #expect(field(json: good.replacingOccurrences("sha256", "md5")) == "firmwareCryptoInfo.commitHash[0].digestAlgo")
        #expect(field(json: good.replacingOccurrences("abab", "ABAB")) == "firmwareCryptoInfo.commitHash[0].hash")
        #expect(field(json: good.replacingOccurrences("\"model\":\"c7960\"", "\"model\":\"c7960\",\"model\":\"x\"")) == "model")
        #expect(try Manifest(jsonPayload: Array(good.replacingOccurrences("{", "{\"future\":[1,{\"a\":null}],").utf8)) == sampleManifest())
    }

    /// One mutation in each form: the same verdict, the same field.
    @Test func bothFormsAgree() {
        let cbor = sampleManifestCBOR(digest: sampleDigest.value), json = jsonText(sampleManifest())
        let pairs: [(TestCBOR, String)] = [
            (cbor.setting(5, .unsigned(5)), json.replacingOccurrences("\"1.2.3\",", "5,")),
            (cbor.setting(4, nil), json.replacingOccurrences("\"model\":\"c7960\",", "")),
            (cbor.setting(3, .text("")), json.replacingOccurrences("\"example.com\"", "\"\"")),
            (cbor.setting(11, .array([.text("x")])), json.replacingOccurrences("{", "{\"critical\":[\"x\"],")),
            (cbor.setting(9, .text("3000")), json.replacingOccurrences(":3000", ":\"3000\"")),
            (cbor.setting(10, .array([])), json.replacingOccurrences("{", "{\"components\":[],")),
            (cbor.setting(1, .text("1.1")), json.replacingOccurrences("\"1.0\"", "\"1.1\"")),
        ]
        for (c, j) in pairs {
            let a = field(cbor: c), b = field(json: j)
            #expect(a != nil && a == b, "CBOR \(a ?? "ok"), JSON \(b ?? "ok")")
        }
    }

    /// Every vector's payload-level fault is named the same by the host,
    /// in both forms (the envelope faults belong to the verifier's tests).
    @Test(arguments: try ManifestVector.all().filter { v in
        v.expect == "bad-manifest" && v.field != "manifest" && !["COSE_Sign1", "JWS"].contains { v.field?.hasPrefix($0) == true }
    })
    func vectorFields(_ v: ManifestVector) throws {
        let bytes = try readVector(v.file)
        let payload: [UInt8]?
        if v.format == "cbor" {
            payload = bytes.withUnsafeBytes { raw in
                guard case .success(let cose) = COSESign1View.parse(raw) else { return nil }
                return Array(raw[cose.payload])
            }
        } else if case .object(let members)? = try? JSONParser.parse(bytes), case .string(let p)? = members.first(where: { $0.key == "payload" })?.value {
            payload = Base64URL.decode(p)
        } else {
            payload = nil
        }
        guard let payload else { return }  // an envelope fault
        let error = caught(ManifestError.self) {
            _ = v.format == "cbor" ? try Manifest(cborPayload: payload) : try Manifest(jsonPayload: payload)
        }
        #expect(error?.field == v.field, "\(String(describing: error))")
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
