import Testing
@testable import CoapFirmwareCore

@Suite struct CoapURITests {
    @Test func parses() throws {
        let u = try #require(CoapURI("coap://_firmware.lan/.well-known/firmware/example.com/c7960/manifest.cbor"))
        #expect(u.host == "_firmware.lan" && u.port == 5683 && !u.secure && !u.hostIsIPLiteral)
        #expect(u.path == [".well-known", "firmware", "example.com", "c7960", "manifest.cbor"])
        let v6 = try #require(CoapURI("coaps://[::1]:6000/a%20b/c?x=1&y"))
        #expect(v6.host == "::1" && v6.port == 6000 && v6.secure && v6.hostIsIPLiteral)
        #expect(v6.path == ["a b", "c"] && v6.query == ["x=1", "y"])
        #expect(CoapURI("coap://127.0.0.1")?.path == [])
        #expect(CoapURI("coap://127.0.0.1/")?.path == [])
        #expect(CoapURI("coap://127.0.0.1")?.hostIsIPLiteral == true)
    }

    @Test(arguments: ["http://x/", "coap://", "coap://h:99999/", "coap://u@h/", "coap://h/a b", "coap://[::1/", "coap://h/%zz", "x"])
    func rejects(_ text: String) {
        #expect(CoapURI(text) == nil)
    }

    // RFC 3986 §5.4.1 normal examples, transposed to coap.
    @Test(arguments: [
        ("g", "coap://a/b/c/g"), ("./g", "coap://a/b/c/g"), ("g/", "coap://a/b/c/g/"), ("/g", "coap://a/g"),
        ("//g", "coap://g/"), ("g?y", "coap://a/b/c/g?y"), ("..", "coap://a/b/"), ("../g", "coap://a/b/g"),
        ("../..", "coap://a/"), ("../../g", "coap://a/g"), ("../../../g", "coap://a/g"), ("", "coap://a/b/c/d;p?q"),
        ("coaps://other:7/x", "coaps://other:7/x"), ("1.2.3/firmware.bin", "coap://a/b/c/1.2.3/firmware.bin"),
    ])
    func resolvesReferences(_ reference: String, _ expected: String) throws {
        let base = try #require(CoapURI("coap://a/b/c/d;p?q"))
        #expect(base.resolving(reference)?.description == expected)
    }

    @Test func refusesOtherSchemes() throws {
        let base = try #require(CoapURI("coap://a/b"))
        #expect(base.resolving("http://evil/x") == nil)
    }
}
