import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore

struct Verify {
    static let command = CommandSpec(
        "verify", abstract: "Verify a signed manifest offline, and images against it.",
        discussion: """
            The format (COSE_Sign1 or JWS) is detected from the content. Images are matched to the \
            manifest's images in order. Exit status 0 only if the signature holds under a trusted key \
            and every given image matches its size and every listed digest.
            """,
        options: TrustOptions.options + [
            .repeated("image", "FILE", "An image file to check against the manifest (repeat, in component order)."),
            .flag("json", "Print one JSON object instead of text."),
        ] + VerbosityOptions.options,
        arguments: [ArgumentSpec("manifest", "The signed manifest file (manifest.cbor or manifest.json).")]
    ) { try Verify($0).run() }

    var trust: TrustOptions
    var manifest: String
    var image: [String]
    var json: Bool
    var verbosity: VerbosityOptions

    init(_ a: ParsedArguments) {
        (trust, manifest, image) = (TrustOptions(a), a.positional(0) ?? "", a.strings("image"))
        (json, verbosity) = (a.flag("json"), VerbosityOptions(a))
    }

    func run() throws {
        _ = verbosity.logger("coap-fw-client")
        let keys = try trust.keys()
        let envelope = try readArgumentFile(manifest, option: "manifest", limit: 1 << 20)
        do {
            let verified = try ManifestVerifier(trustedKeys: keys).verify(envelope)
            let expected = verified.manifest.images
            guard image.count <= expected.count else {
                throw CommandFailure.usage("--image: \(image.count) images given, the manifest lists \(expected.count)")
            }
            for (path, component) in zip(image, expected) {
                do {
                    try component.check(file: path)
                } catch .unreadable(let error) {
                    throw CommandFailure.usage("--image \(error)")
                } catch .mismatch(let error) {
                    throw error
                }
            }
            report(.success(verified))
        } catch let error as ManifestError {
            report(.failure(error))
            throw CommandFailure(status: 1, "")
        }
    }

    private func report(_ outcome: Result<VerifiedManifest, ManifestError>) {
        switch outcome {
        case .success(let verified):
            let m = verified.manifest
            if json {
                printJSON(.object([
                    ("result", .string("verified")), ("format", .string(verified.format.rawValue)),
                    ("kid", .string(Hex.encode(verified.signerKid))), ("alg", .string(verified.algorithm.joseName)),
                    ("imagesChecked", .number(String(image.count))), ("manifest", m.jsonValue),
                ]))
            } else {
                print("verified: \(manifest) (\(verified.format == .cbor ? "COSE_Sign1" : "JWS"), \(verified.algorithm), kid \(Hex.encode(verified.signerKid)))")
                print("  \(m.manufacturer) \(m.model) \(m.firmwareVersion), \(RFC3339.format(m.timestamp))")
                for (i, c) in m.images.enumerated() {
                    let checked = i < image.count ? "matches \(image[i])" : "not checked"
                    print("  image \(c.name): \(c.location), \(c.size) bytes, \(checked)")
                }
            }
        case .failure(let error):
            if json {
                printJSON(.object([
                    ("result", .string(error.resultCode.description)),
                    ("field", error.field.map { .string($0) } ?? .null),
                    ("error", .string(error.description)),
                ]))
            }
            printError("coap-fw-client: \(manifest): \(error.description)")
        }
    }
}
