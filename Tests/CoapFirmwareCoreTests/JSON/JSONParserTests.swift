import Testing
@testable import CoapFirmwareCore

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesNestedValues() throws {
        let value = try parse(#" {"a": [1, -2.5e3, true, false, null, "x\u00e9\ud83d\ude00\n"], "b": {}} "#)
        #expect(value == .object([
            ("a", .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null, .string("xé😀\n")])),
            ("b", .object([])),
        ]))
    }

    @Test func keepsDuplicateMembersForTheReaderToReject() throws {
        guard case .object(let members) = try parse(#"{"k":1,"k":2}"#) else { Issue.record("not an object"); return }
        #expect(members.map(\.key) == ["k", "k"])
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "-", "1.", "1e", "'a'", "NaN", "[1] x", "\"\u{01}\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\x\"", "{\"a\" 1}", "tru", "[\"a\"\"b\"]", "\"abc",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParser.Error.self) { try parse(text) }
    }

    @Test func rejectsDeepNesting() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParser.Error.self) { try parse(deep) }
        let ok = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        #expect(throws: Never.self) { try parse(ok) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func writerRoundTrips() throws {
        let value: JSONValue = .object([("q", .string("a\"b\\c\u{1}")), ("n", .number("12")), ("l", .array([.null, .bool(true)]))])
        let text = JSONWriter.write(value)
        #expect(String(decoding: text, as: UTF8.self) == #"{"q":"a\"b\\c\u0001","n":12,"l":[null,true]}"#)
        #expect(try JSONParser.parse(text) == value)
    }

    @Test func unsignedIntegers() {
        #expect(JSONValue.number("18446744073709551615").uint64 == .max)
        #expect(JSONValue.number("18446744073709551616").uint64 == nil)
        #expect(JSONValue.number("01").uint64 == nil)
        #expect(JSONValue.number("-1").uint64 == nil)
        #expect(JSONValue.number("1.0").uint64 == nil)
        #expect(JSONValue.number("1e3").uint64 == nil)
    }
}
