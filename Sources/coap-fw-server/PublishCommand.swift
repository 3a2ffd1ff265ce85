import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
import CoapFirmwareDevice
#if canImport(Glibc)
import Glibc
#endif

struct Publish {
    static let command = CommandSpec(
        "publish", abstract: "Sign a release and publish it into a repository folder.",
        discussion: """
            Writes <repo>/.well-known/firmware/<manufacturer>/<model>/manifest.cbor (COSE_Sign1), \
            manifest.json (JWS) and the images under <version>/. A published version is never \
            overwritten, nor a newer one superseded, without --force.
            """,
        options: RepositoryOptions.options + [
            .value("key", "FILE", "Private signing key (PEM, or private.hss) from keygen.", required: true),
        ] + ProductOptions.options + [
            .value("version", "A.B.C", "Firmware version major.minor.revision.", required: true),
            .value("image", "FILE", "The image file of a single-image release."),
            .repeated("component", "NAME=FILE", "A component of a split release, in install order (repeat)."),
            .value("timestamp", "TIME", "Creation time (RFC 3339 or seconds since 1970); default: now."),
            .repeated("digest", "ALG", "Digest algorithm to list: sha256, sha384, sha512 (repeat; default sha256)."),
            .value("key-info", "FILE", "Announce this public key (PEM) as the manufacturer's next key (key rollover)."),
            .flag("suit", "Also write manifest.suit, a SUIT envelope (draft-ietf-suit-manifest-33) of the same release."),
            .flag("force", "Replace a published version, publish below the current one, or with a timestamp more than a day ahead."),
            .flag("allow-insecure-key", "Use a private key file that others can read (refused by default)."),
        ] + VerbosityOptions.options
    ) { try Publish($0).run() }

    var repository: RepositoryOptions
    var key: String
    var product: ProductOptions
    var version: String
    var image: String?
    var components: [String]
    var timestamp: String?
    var digests: [String]
    var keyInfo: String?
    var suit: Bool
    var force: Bool
    var allowInsecureKey: Bool
    var verbosity: VerbosityOptions

    init(_ a: ParsedArguments) {
        (repository, key, product, version) = (RepositoryOptions(a), a.required("key"), ProductOptions(a), a.required("version"))
        (image, components, timestamp) = (a.string("image"), a.strings("component"), a.string("timestamp"))
        (digests, keyInfo, force) = (a.strings("digest"), a.string("key-info"), a.flag("force"))
        suit = a.flag("suit")
        (allowInsecureKey, verbosity) = (a.flag("allow-insecure-key"), VerbosityOptions(a))
    }

    func run() throws {
        _ = verbosity.logger("coap-fw-server")
        guard let version = FirmwareVersion(self.version) else {
            throw CommandFailure.usage("--version \(self.version): expected major.minor.revision, e.g. 1.2.3")
        }
        var images: [ReleaseImage] = []
        switch (image, components.isEmpty) {
        case (let path?, true):
            images = [ReleaseImage(file: path)]
        case (nil, false):
            for spec in components {
                guard let component = ReleaseImage(component: spec) else {
                    throw CommandFailure.usage("--component \(spec): expected NAME=FILE")
                }
                images.append(component)
            }
        default:
            throw CommandFailure.usage("give either --image FILE or one or more --component NAME=FILE")
        }
        var digestAlgorithms: [DigestAlgorithm] = []
        for name in digests.isEmpty ? ["sha256"] : digests {
            guard let algorithm = DigestAlgorithm(jsonName: name.lowercased()) else {
                throw CommandFailure.usage("--digest \(name): expected sha256, sha384 or sha512")
            }
            if !digestAlgorithms.contains(algorithm) { digestAlgorithms.append(algorithm) }
        }
        let when: Int64
        if let timestamp {
            guard let parsed = Int64(timestamp) ?? RFC3339.parse(timestamp) else {
                throw CommandFailure.usage("--timestamp \(timestamp): expected RFC 3339 (2026-01-31T12:00:00Z) or epoch seconds")
            }
            when = parsed
        } else {
            when = Int64(time(nil))
        }

        let privateKey: PrivateKey
        do {
            privateKey = try PrivateKey.load(path: key, bytes: try readArgumentFile(key, option: "--key"))
        } catch let error as KeyError {
            throw CommandFailure.usage("--key \(key): \(error.description)")
        }
        if let mode = FileSystem.permissions(key), mode & 0o077 != 0, !allowInsecureKey {
            throw CommandFailure.usage("--key \(key): the private key is readable by others (mode \(String(mode, radix: 8))); run chmod 600 \(key), or pass --allow-insecure-key")
        }
        var options = ReleasePublisher.Options(
            manufacturer: product.manufacturer, model: product.model, version: version, images: images,
            isSplit: !components.isEmpty, timestamp: when)
        options.digests = digestAlgorithms
        options.force = force
        options.suit = suit
        if let keyInfo {
            do {
                let next = try PublicKey(fileBytes: try readArgumentFile(keyInfo, option: "--key-info"))
                guard next.keyInfo != nil else {
                    throw CommandFailure.usage("--key-info \(keyInfo): key-info carries ES256 and EdDSA keys only, not \(next.algorithm)")
                }
                options.nextKey = next
            } catch let error as KeyError {
                throw CommandFailure.usage("--key-info \(keyInfo): \(error.description)")
            }
        }

        do {
            let result = try ReleasePublisher(repository: repository.repo, key: privateKey).publish(options)
            print("published \(product.manufacturer)/\(product.model) \(version) (\(RFC3339.format(when)))")
            for image in result.manifest.images {
                let sha256 = image.digests.first { $0.algorithm == .sha256 }.map { " sha256 \(Hex.encode($0.value))" } ?? ""
                print("  image \(image.name): \(image.location), \(image.size) bytes\(sha256)")
            }
            for path in result.manifestPaths { print("  manifest \(path)") }
            print("  signed by kid \(Hex.encode(privateKey.publicKey.kid)) (\(privateKey.algorithm))")
            if let hss = privateKey.hss {
                print("  signatures remaining: \(hss.remaining) of \(hss.capacity)")
            }
        } catch {
            switch error {
            case .invalidArgument: throw CommandFailure.usage(error.description)
            default: throw CommandFailure.failed(error.description)
            }
        }
    }
}
