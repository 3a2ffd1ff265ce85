import ArgumentParser
import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
import CoapFirmwareDevice
#if canImport(Glibc)
import Glibc
#endif

struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign a release and publish it into a repository folder.",
        discussion: """
            Writes <repo>/.well-known/firmware/<manufacturer>/<model>/manifest.cbor (COSE_Sign1), \
            manifest.json (JWS) and the images under <version>/. A published version is never \
            overwritten, nor a newer one superseded, without --force.
            """)

    @OptionGroup var repository: RepositoryOptions

    @Option(help: "Private signing key (PEM) from keygen.")
    var key: String

    @OptionGroup var product: ProductOptions

    @Option(help: "Firmware version major.minor.revision.")
    var version: String

    @Option(help: "The image file of a single-image release.")
    var image: String?

    @Option(name: .customLong("component"), help: ArgumentHelp("A component of a split release, in install order (repeat).", valueName: "NAME=FILE"))
    var components: [String] = []

    @Option(help: "Creation time (RFC 3339 or seconds since 1970); default: now.")
    var timestamp: String?

    @Option(name: .customLong("digest"), help: "Digest algorithm to list: sha256, sha384, sha512 (repeat; default sha256).")
    var digests: [String] = []

    @Option(name: .customLong("key-info"), help: "Announce this public key (PEM) as the manufacturer's next key (key rollover).")
    var keyInfo: String?

    @Flag(help: "Replace a published version, publish below the current one, or with a timestamp more than a day ahead.")
    var force = false

    @Flag(help: "Use a private key file that others can read (refused by default).")
    var allowInsecureKey = false

    @OptionGroup var verbosity: VerbosityOptions

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
