import Testing
import Foundation
import CoapFirmware
import CoapFirmwareCore

/// The device's allocation-free manifest reader and Linux's `Manifest(cbor:)`
/// give the same verdict, naming the same field, on every CBOR vector and
/// every fuzz-corpus input: the device rules cannot drift from the rules
/// the Linux client applies.
@Suite struct ManifestViewDifferentialTests {
    static func payloads() throws -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        for v in try ManifestVector.all() where v.format == "cbor" {
            let bytes = try readVector(v.file)
            let payload: [UInt8]? = bytes.withUnsafeBytes { raw in
                guard case .success(let view) = COSESign1View.parse(raw) else { return nil }
                return Array(raw[view.payload])
            }
            if let payload { out.append((v.name, payload)) }
        }
        for corpus in ["manifest-cbor", "envelope"] {
            let dir = repositoryRoot.appendingPathComponent("Fuzz/corpus/\(corpus)")
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() {
                let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent(name)))
                if corpus == "envelope" {
                    let payload: [UInt8]? = bytes.withUnsafeBytes { raw in
                        guard case .success(let view) = COSESign1View.parse(raw) else { return nil }
                        return Array(raw[view.payload])
                    }
                    if let payload { out.append(("\(corpus)/\(name)", payload)) }
                } else {
                    out.append(("\(corpus)/\(name)", bytes))
                }
            }
        }
        return out
    }

    @Test func sameVerdicts() throws {
        let inputs = try Self.payloads()
        #expect(inputs.count > 400)
        var accepted = 0, mismatches: [String] = []
        for (name, payload) in inputs {
            let linux: String?  // nil = accepted, else the field
            do {
                _ = try Manifest(cbor: CBORCodec.decode(payload))
                linux = nil
            } catch let error as ManifestError {
                linux = error.field ?? "?"
            } catch {
                linux = "manifest"
            }
            let device: String? = payload.withUnsafeBytes { raw in
                switch ManifestView.read(raw) {
                case .success: return nil
                case .failure(let f): return f.path.rendered(raw)
                }
            }
            if linux == nil { accepted += 1 }
            if linux != device { mismatches.append("\(name): linux \(linux ?? "ok"), device \(device ?? "ok")") }
        }
        #expect(accepted > 20)
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(inputs.count) differ:\n\(mismatches.prefix(30).joined(separator: "\n"))")
    }
}
