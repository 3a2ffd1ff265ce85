import CoapFirmwareCLI
#if canImport(Glibc)
import Glibc
#endif

struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coap-fw-server",
        abstract: "Publish signed firmware releases and serve them over CoAP.",
        discussion: """
            A manufacturer creates a key once (keygen), signs each release into a \
            repository folder (publish), and a border router serves that folder.
            """,
        subcommands: [Keygen.self, Publish.self, Serve.self]
    )
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a manifest signing key pair.",
        discussion: "Writes DIR/private.pem (PKCS#8, mode 0600) and DIR/public.pem (SPKI) and prints the key id (kid).")

    @Option(help: "Signature algorithm: ES256 or EdDSA.")
    var alg: String

    @Option(help: "Folder to write the key pair into (created if missing).")
    var out: String

    @Flag(help: "Overwrite an existing key pair in DIR.")
    var force = false

    @OptionGroup var verbosity: VerbosityOptions

    func run() throws {
        verbosity.bootstrap()
        guard let algorithm = SignatureAlgorithm(argument: alg) else {
            throw CommandFailure.usage("--alg \(alg): expected ES256 or EdDSA")
        }
        let privatePath = "\(out)/private.pem"
        let publicPath = "\(out)/public.pem"
        if !force, FileSystem.exists(privatePath) || FileSystem.exists(publicPath) {
            throw CommandFailure.failed("\(out) already holds a key pair; refusing to overwrite it (use --force)")
        }
        do {
            try FileSystem.makeDirectories(out)
            let key = try PrivateKey.generate(algorithm)
            try FileSystem.atomicWrite(privatePath, try key.pkcs8PEM(), mode: 0o600)
            try FileSystem.atomicWrite(publicPath, try key.publicKey.pem(), mode: 0o644)
            print("algorithm: \(algorithm.rawValue)")
            print("kid: \(Hex.encode(key.publicKey.kid))")
            print("private key: \(privatePath) (keep it secret)")
            print("public key: \(publicPath) (give it to devices as --trust)")
        } catch let error as FileSystemError {
            throw CommandFailure.failed(error.description)
        } catch let error as KeyError {
            throw CommandFailure.failed(error.description)
        }
    }
}

struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign a release and publish it into a repository folder.",
        discussion: """
            Writes <repo>/.well-known/firmware/<manufacturer>/<model>/manifest.cbor (COSE_Sign1), \
            manifest.json (JWS) and the images under <version>/. A published version is never \
            overwritten, nor a newer one superseded, without --force.
            """)

    @Option(help: "Repository folder (created if missing).")
    var repo: String

    @Option(help: "Private signing key (PEM) from keygen.")
    var key: String

    @Option(help: "Manufacturer name, e.g. example.com.")
    var manufacturer: String

    @Option(help: "Device model, e.g. c7960.")
    var model: String

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

    @Flag(help: "Replace a published version, or publish below the current one.")
    var force = false

    @Flag(help: "Use a private key file that others can read (refused by default).")
    var allowInsecureKey = false

    @OptionGroup var verbosity: VerbosityOptions

    func run() throws {
        verbosity.bootstrap()
        guard let version = FirmwareVersion(self.version) else {
            throw CommandFailure.usage("--version \(self.version): expected major.minor.revision, e.g. 1.2.3")
        }
        var images: [ReleaseImage] = []
        switch (image, components.isEmpty) {
        case (let path?, true):
            images = [ReleaseImage(name: Manifest.lastSegment(of: path), path: path)]
        case (nil, false):
            for spec in components {
                guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                    throw CommandFailure.usage("--component \(spec): expected NAME=FILE")
                }
                images.append(ReleaseImage(name: String(spec[..<eq]), path: String(spec[spec.index(after: eq)...])))
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

        if let mode = FileSystem.permissions(key), mode & 0o077 != 0, !allowInsecureKey {
            throw CommandFailure.usage("--key \(key): the private key is readable by others (mode \(String(mode, radix: 8))); run chmod 600 \(key), or pass --allow-insecure-key")
        }
        let privateKey: PrivateKey
        do {
            privateKey = try PrivateKey(pem: try readArgumentFile(key, option: "--key"))
        } catch let error as KeyError {
            throw CommandFailure.usage("--key \(key): \(error.description)")
        }
        var options = ReleasePublisher.Options(
            manufacturer: manufacturer, model: model, version: version, images: images,
            isSplit: !components.isEmpty, timestamp: when)
        options.digests = digestAlgorithms
        options.force = force
        if let keyInfo {
            do {
                options.nextKey = try PublicKey(pem: try readArgumentFile(keyInfo, option: "--key-info"))
            } catch let error as KeyError {
                throw CommandFailure.usage("--key-info \(keyInfo): \(error.description)")
            }
        }

        do {
            let result = try ReleasePublisher(repository: repo, key: privateKey).publish(options)
            print("published \(manufacturer)/\(model) \(version) (\(RFC3339.format(when)))")
            for image in result.manifest.images {
                let sha256 = image.digests.first { $0.algorithm == .sha256 }.map { " sha256 \(Hex.encode($0.value))" } ?? ""
                print("  image \(image.name): \(image.location), \(image.size) bytes\(sha256)")
            }
            for path in result.manifestPaths { print("  manifest \(path)") }
            print("  signed by kid \(Hex.encode(privateKey.publicKey.kid)) (\(privateKey.algorithm.rawValue))")
        } catch {
            switch error {
            case .invalidArgument: throw CommandFailure.usage(error.description)
            default: throw CommandFailure.failed(error.description)
            }
        }
    }
}
