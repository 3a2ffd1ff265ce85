import Testing
import Foundation
@testable import CoapFirmware
import TestSupport

/// What the server would register for a repository folder, without CoAP.
@Suite struct RepositoryCatalogTests {
    func write(_ path: String, _ text: String = "x") throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    @Test func resourcesOfARelease() throws {
        let root = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let model = "\(root)/.well-known/firmware/example.com/c7960"
        try write("\(model)/manifest.cbor")
        try write("\(model)/1.2.3/fw.bin")
        try write("\(model)/.staging-1/fw.bin")     // a publish in progress: hidden
        try write("\(model)/1.2.3/.fw.bin.tmp")     // hidden files are never served
        let catalog = RepositoryCatalog.scan(root: root)
        let paths = Set(catalog.resources.keys)
        #expect(paths == [
            ".well-known/firmware/example.com/c7960/manifest.cbor", ".well-known/firmware/example.com/c7960/manifest",
            ".well-known/firmware/example.com/c7960/1.2.3/fw.bin",
            ".well-known/manifest/example.com/c7960/manifest.cbor", ".well-known/manifest/example.com/c7960/manifest",
            ".well-known/manifest/example.com/c7960/1.2.3/fw.bin",
        ])
        #expect(catalog.resources[".well-known/firmware/example.com/c7960/manifest.cbor"] == .init(contentFormat: "18", observable: true))
        #expect(catalog.resources[".well-known/firmware/example.com/c7960/1.2.3/fw.bin"] == .init(contentFormat: "42", observable: false))

        try write("\(model)/manifest.json")
        let both = RepositoryCatalog.scan(root: root)
        #expect(both.resources[".well-known/firmware/example.com/c7960/manifest"]?.contentFormat == "\"18 50\"")
        #expect(both.changedModels(since: catalog) == ["example.com/c7960"])
        #expect(both.changedModels(since: both).isEmpty)
        #expect(both.manifestResources(of: "example.com/c7960").count == 6)
    }

    @Test func nothingOutsideTheRoot() throws {
        let root = try makeTemporaryDirectory(), outside = try makeTemporaryDirectory()
        defer { for d in [root, outside] { try? FileManager.default.removeItem(atPath: d) } }
        try write("\(outside)/secret")
        let model = "\(root)/.well-known/firmware/m/x"
        try FileManager.default.createDirectory(atPath: "\(model)/1.0.0", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(model)/1.0.0/fw.bin", withDestinationPath: "\(outside)/secret")
        try FileManager.default.createSymbolicLink(atPath: "\(model)/manifest.cbor", withDestinationPath: "\(outside)/secret")
        #expect(RepositoryCatalog.scan(root: root).resources.isEmpty)
    }
}
