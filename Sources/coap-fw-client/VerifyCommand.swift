import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
import CoapFirmwareDevice

struct Verify {
    static let command = CommandSpec(
        "verify", abstract: "Verify a signed manifest offline, and images against it.",
        discussion: """
            The format (COSE_Sign1, JWS or a SUIT envelope) is detected from the content. Images are \
            matched to the manifest's images in order. Exit status 0 only if the signature holds under a \
            trusted key and every given image matches its size and every listed digest. A SUIT envelope \
            must also be well-formed (every sequence a command list); with --manufacturer and --model \
            (or --vendor-id and --class-id) its identity conditions are checked against \
            UUID5(DNS, manufacturer) and UUID5(vendor-id, model), and the sequences an update runs \
            must use only the commands this updater supports.
            """,
        options: TrustOptions.options + [
            .repeated("image", "FILE", "An image file to check against the manifest (repeat, in component order)."),
            .value("manufacturer", "NAME", "SUIT: the device's manufacturer, for the vendor-id condition."),
            .value("model", "NAME", "SUIT: the device's model, for the class-id condition."),
            .value("vendor-id", "UUID", "SUIT: the vendor id itself (overrides --manufacturer)."),
            .value("class-id", "UUID", "SUIT: the class id itself (overrides --model)."),
            .value("installed-sequence", "N", "SUIT: the sequence number installed on the device: lower is a rollback (exit 1)."),
            .flag("json", "Print one JSON object instead of text."),
        ] + VerbosityOptions.options,
        arguments: [ArgumentSpec("manifest", "The signed manifest file (manifest.cbor or manifest.json).")]
    ) { try Verify($0).run() }


    var trust: TrustOptions
    var manifest: String
    var image: [String]
    var json: Bool
    var verbosity: VerbosityOptions

    var identity: SUITIdentityOptions
    var installedSequence: UInt64?

    init(_ a: ParsedArguments) throws {
        installedSequence = try a.uint64("installed-sequence")
        (trust, manifest, image) = (TrustOptions(a), a.positional(0) ?? "", a.strings("image"))
        (json, verbosity) = (a.flag("json"), VerbosityOptions(a))
        identity = SUITIdentityOptions(a)
    }

    func run() throws {
        _ = verbosity.logger("coap-fw-client")
        let keys = try trust.keys()
        let envelope = try readArgumentFile(manifest, option: "manifest", limit: 1 << 20)
        if envelope.withUnsafeBytes({ SUITEnvelopeView.looksLikeEnvelope($0) }) {
            return try runSUIT(envelope, keys: keys)
        }
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

/// `--manufacturer`/`--model` or `--vendor-id`/`--class-id`: the identity a SUIT manifest's conditions are checked against.
struct SUITIdentityOptions {
    var manufacturer: String?
    var model: String?
    var vendorID: String?
    var classID: String?

    init(_ a: ParsedArguments) {
        (manufacturer, model) = (a.string("manufacturer"), a.string("model"))
        (vendorID, classID) = (a.string("vendor-id"), a.string("class-id"))
    }

    /// The ids, or nil for each that is not to be checked; a usage error for a malformed UUID.
    func ids() throws -> (vendor: [UInt8]?, klass: [UInt8]?) {
        func parse(_ text: String, _ option: String) throws -> [UInt8] {
            let hex = String(text.filter { $0 != "-" })
            guard hex.utf8.count == 32, let bytes = Hex.decodeLowercase(hex.lowercased()) else {
                throw CommandFailure.usage("--\(option) \(text): expected a UUID (32 hex digits, dashes allowed)")
            }
            return bytes
        }
        var vendor = manufacturer.map { UUID5.make(namespace: UUID5.dnsNamespace, name: Array($0.utf8)) }
        if let vendorID { vendor = try parse(vendorID, "vendor-id") }
        var klass: [UInt8]?
        if let classID {
            klass = try parse(classID, "class-id")
        } else if let model {
            guard let vendor else { throw CommandFailure.usage("--model needs --manufacturer or --vendor-id (the class id is UUID5(vendor-id, model))") }
            klass = UUID5.make(namespace: vendor, name: Array(model.utf8))
        }
        return (vendor, klass)
    }

    static func uuidText(_ bytes: [UInt8]) -> String {
        let hex = Hex.encode(bytes)
        let u = Array(hex.utf8)
        func part(_ r: Range<Int>) -> String { String(decoding: u[r], as: UTF8.self) }
        return "\(part(0..<8))-\(part(8..<12))-\(part(12..<16))-\(part(16..<20))-\(part(20..<32))"
    }
}

extension Verify {
    /// A SUIT envelope: authenticated, well-formed, its update sequences run
    /// (identity checked when given), and `--image` files matched.
    func runSUIT(_ envelope: [UInt8], keys: [PublicKey]) throws {
        let (vendor, klass) = try identity.ids()
        do {
            // The update sequences run only when asked about a device or images:
            // the spec's example 4 (copy) is authentic and well-formed, but no install for this updater.
            let runs = vendor != nil || klass != nil || !image.isEmpty
            let release = try SUITVerifier(trustedKeys: keys).verify(envelope, run: runs, vendorID: vendor, classID: klass)
            if SUITManifestView.freshness(sequence: release.sequenceNumber, installed: installedSequence) == .rollback {
                throw ManifestError.rollback(reason: "sequence number \(release.sequenceNumber) is lower than the installed \(installedSequence ?? 0)")
            }
            guard image.count <= release.componentCount else {
                throw CommandFailure.usage("--image: \(image.count) images given, the manifest has \(release.components.count) components")
            }
            for (index, path) in image.enumerated() {
                do {
                    try release.components[index].check(file: path, index: index)
                } catch .unreadable(let error) {
                    throw CommandFailure.usage("--image \(error)")
                } catch .mismatch(let error) {
                    throw error
                }
            }
            if json {
                printJSON(.object([
                    ("result", .string("verified")), ("format", .string("suit")),
                    ("kid", .string(Hex.encode(release.signerKid))), ("alg", .string(release.algorithm.joseName)),
                    ("sequenceNumber", .number(String(release.sequenceNumber))),
                    ("version", release.version.map { .string($0) } ?? .null),
                    ("identityChecked", .bool(vendor != nil || klass != nil)), ("sequencesRun", .bool(runs)),
                    ("componentCount", .number(String(release.componentCount))),
                    ("imagesChecked", .number(String(image.count))),
                    ("components", .array(release.components.map { c in
                        .object([("uri", c.uri.map { .string($0) } ?? .null),
                                 ("sha256", c.sha256.map { .string(Hex.encode($0)) } ?? .null),
                                 ("size", c.size.map { .number(String($0)) } ?? .null),
                                 ("fetch", .bool(c.fetch)), ("imageMatch", .bool(c.imageMatch))])
                    })),
                ]))
            } else {
                print("verified: \(manifest) (SUIT envelope, \(release.algorithm), kid \(Hex.encode(release.signerKid)))")
                print("  sequence number \(release.sequenceNumber)\(release.version.map { ", version \($0)" } ?? "")"
                      + ", \(release.componentCount) component(s)"
                      + (runs ? (vendor != nil || klass != nil ? ", identity checked" : ", identity not checked") : ""))
                for (i, c) in release.components.enumerated() {
                    let checked = i < image.count ? "matches \(image[i])" : "not checked"
                    print("  component \(i): \(c.uri ?? "no uri"), \(c.size.map { "\($0) bytes" } ?? "no size"), \(checked)")
                }
            }
        } catch let error as ManifestError {
            report(.failure(error))
            throw CommandFailure(status: 1, "")
        }
    }
}
