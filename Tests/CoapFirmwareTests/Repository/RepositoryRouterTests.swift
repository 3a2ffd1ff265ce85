import Testing
@testable import CoapFirmware
import CoapFirmwareCore
import CoapFirmwareDevice
import TestSupport

@Suite struct RepositoryRouterTests {
    let router = RepositoryRouter()
    let model = [".well-known", "firmware", "example.com", "c7960"]

    @Test func servesTheLayout() {
        #expect(router.route(segments: model + ["manifest.cbor"], accept: nil)
            == .file(relativePath: ".well-known/firmware/example.com/c7960/manifest.cbor", contentFormat: 18, kind: .manifest))
        #expect(router.route(segments: model + ["manifest.json"], accept: nil)
            == .file(relativePath: ".well-known/firmware/example.com/c7960/manifest.json", contentFormat: 50, kind: .manifest))
        #expect(router.route(segments: model + ["1.2.3", "fw.bin"], accept: nil)
            == .file(relativePath: ".well-known/firmware/example.com/c7960/1.2.3/fw.bin", contentFormat: 42, kind: .image))
        // The draft's second spelling maps onto the same files.
        #expect(router.route(segments: [".well-known", "manifest", "example.com", "c7960", "manifest.cbor"], accept: nil)
            == router.route(segments: model + ["manifest.cbor"], accept: nil))
    }

    @Test func negotiatesTheManifest() {
        func format(_ accept: UInt16?) -> RepositoryRouter.Route { router.route(segments: model + ["manifest"], accept: accept) }
        #expect(format(nil) == router.route(segments: model + ["manifest.cbor"], accept: nil))
        #expect(format(18) == router.route(segments: model + ["manifest.cbor"], accept: nil))
        #expect(format(60) == router.route(segments: model + ["manifest.cbor"], accept: nil))
        #expect(format(50) == router.route(segments: model + ["manifest.json"], accept: nil))
        // SUIT (issue #14): by name, or by Accept with the experimental-range Content-Format.
        #expect(router.route(segments: model + ["manifest.suit"], accept: nil)
            == .file(relativePath: ".well-known/firmware/example.com/c7960/manifest.suit", contentFormat: 65000, kind: .manifest))
        #expect(format(65000) == router.route(segments: model + ["manifest.suit"], accept: nil))
        #expect(router.route(segments: model + ["manifest.xml"], accept: nil) == .notFound)
        #expect(format(0) == .notAcceptable)
        #expect(format(42) == .notAcceptable)
    }

    @Test(arguments: [
        [], [".well-known"], [".well-known", "core"], [".well-known", "firmware", "example.com", "c7960"],
        [".well-known", "firmware", "..", "..", "etc", "passwd"], [".well-known", "firmware", "example.com", "c7960", "..", "x"],
        [".well-known", "firmware", "example.com", "c7960", "", "x"], [".well-known", "firmware", "example.com", ".", "manifest.cbor"],
        [".well-known", "firmware", "example.com", "c7960", ".staging-1", "fw.bin"], [".well-known", "firmware", "a/b", "c", "manifest.cbor"],
        [".well-known", "firmware", "a\\b", "c", "manifest.cbor"], [".well-known", "firmware", "m", "x", "manifest.txt"],
        [".well-known", "firmware", "m", "x", "1.0.0", "fw.bin", "extra"], ["etc", "passwd"], [".well-known", "other", "m", "x", "manifest.cbor"],
        [".well-known", "firmware", "m", "x", "1.0.0", ".hidden"], [".well-known", "firmware", "m\u{0}", "x", "manifest.cbor"],
    ])
    func refuses(_ segments: [String]) {
        #expect(router.route(segments: segments, accept: nil) == .notFound)
    }
}
