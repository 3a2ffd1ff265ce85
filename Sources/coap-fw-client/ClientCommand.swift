import CoapFirmwareCLI

struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coap-fw-client",
        abstract: "Check and install signed firmware on a device.",
        subcommands: [Update.self, Status.self, Verify.self, Fetch.self]
    )
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify a signed manifest offline, and images against it.",
        discussion: """
            The format (COSE_Sign1 or JWS) is detected from the content. Images are matched to the \
            manifest's images in order. Exit status 0 only if the signature holds under a trusted key \
            and every given image matches its size and every listed digest.
            """)

    @Option(help: "Trusted public key (PEM SPKI); repeat to trust several.")
    var trust: [String] = []

    @Argument(help: "The signed manifest file (manifest.cbor or manifest.json).")
    var manifest: String

    @Option(help: "An image file to check against the manifest (repeat, in component order).")
    var image: [String] = []

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @OptionGroup var verbosity: VerbosityOptions

    func run() throws {
        verbosity.bootstrap()
        let keys = try loadTrustedKeys(trust)
        let envelope = try readArgumentFile(manifest, option: "manifest", limit: 1 << 20)
        do {
            let verified = try ManifestVerifier(trustedKeys: keys).verify(envelope)
            let expected = verified.manifest.images
            guard image.count <= expected.count else {
                throw CommandFailure.usage("--image: \(image.count) images given, the manifest lists \(expected.count)")
            }
            for (path, component) in zip(image, expected) {
                let checker = ImageVerifier(component)
                do {
                    try FileSystem.forEachChunk(path) { checker.update(bufferPointer: $0) }
                } catch {
                    throw CommandFailure.usage("--image \(error)")
                }
                do {
                    try checker.finish()
                } catch {
                    throw ManifestError.digestMismatch(image: path, reason: "\(error.description) (component \(component.name))")
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
                print(jsonText(.object([
                    ("result", .string("verified")), ("format", .string(verified.format.rawValue)),
                    ("kid", .string(Hex.encode(verified.signerKid))), ("alg", .string(verified.algorithm.rawValue)),
                    ("imagesChecked", .number(String(image.count))), ("manifest", m.jsonValue),
                ])))
            } else {
                print("verified: \(manifest) (\(verified.format == .cbor ? "COSE_Sign1" : "JWS"), \(verified.algorithm.rawValue), kid \(Hex.encode(verified.signerKid)))")
                print("  \(m.manufacturer) \(m.model) \(m.firmwareVersion), \(RFC3339.format(m.timestamp))")
                for (i, c) in m.images.enumerated() {
                    let checked = i < image.count ? "matches \(image[i])" : "not checked"
                    print("  image \(c.name): \(c.location), \(c.size) bytes, \(checked)")
                }
            }
        case .failure(let error):
            if json {
                print(jsonText(.object([
                    ("result", .string(error.resultCode.rawValue)),
                    ("field", error.field.map { .string($0) } ?? .null),
                    ("error", .string(error.description)),
                ])))
            }
            printError("coap-fw-client: \(manifest): \(error.description)")
        }
    }
}
