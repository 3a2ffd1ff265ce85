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
        discussion: """
            ES256 and EdDSA: writes DIR/private.pem (PKCS#8, mode 0600) and DIR/public.pem (SPKI). \
            HSS-LMS: writes DIR/private.hss (stateful: it counts the one-time signatures used; \
            mode 0600, back it up only while no publish runs) and DIR/public.hss (RFC 8554 bytes). \
            Prints the key id (kid) and, for HSS-LMS, how many signatures the key can make.
            """)

    @Option(help: "Signature algorithm: ES256, EdDSA or HSS-LMS.")
    var alg: String

    @Option(help: "Folder to write the key pair into (created if missing).")
    var out: String

    @Option(help: "HSS-LMS: number of HSS levels, 1-8 (default 1).")
    var levels: Int?

    @Option(help: "HSS-LMS: LMS tree height per level: 5, 10 or 15 (default 10).")
    var height: Int?

    @Option(help: "HSS-LMS: Winternitz parameter: 1, 2, 4 or 8 (default 4).")
    var w: Int?

    @Flag(help: "Overwrite an existing key pair in DIR.")
    var force = false

    @OptionGroup var verbosity: VerbosityOptions

    func run() throws {
        verbosity.bootstrap()
        guard let algorithm = SignatureAlgorithm(argument: alg) else {
            throw CommandFailure.usage("--alg \(alg): expected ES256, EdDSA or HSS-LMS")
        }
        if algorithm != .hssLms, levels != nil || height != nil || w != nil {
            throw CommandFailure.usage("--levels, --height and --w apply to --alg HSS-LMS only")
        }
        let suffix = algorithm == .hssLms ? "hss" : "pem"
        let privatePath = "\(out)/private.\(suffix)"
        let publicPath = "\(out)/public.\(suffix)"
        if !force, FileSystem.exists(privatePath) || FileSystem.exists(publicPath) {
            throw CommandFailure.failed("\(out) already holds a key pair; refusing to overwrite it (use --force)")
        }
        do {
            try FileSystem.makeDirectories(out)
            let key: PrivateKey
            if algorithm == .hssLms {
                let parameters = try hssParameters()
                key = PrivateKey(hss: try HSSPrivateKey.generate(levels: parameters, path: privatePath))
            } else {
                key = try PrivateKey.generate(algorithm)
                try FileSystem.atomicWrite(privatePath, try key.pkcs8PEM(), mode: 0o600)
            }
            try FileSystem.atomicWrite(publicPath, try key.publicKey.fileBytes(), mode: 0o644)
            print("algorithm: \(algorithm.rawValue)")
            if let hss = key.hss {
                let shape = hss.levels.map { "LMS_SHA256_M32_H\($0.type.height)/LMOTS_SHA256_N32_W\($0.ots.w)" }
                print("parameters: \(hss.levels.count) level(s): \(shape.joined(separator: ", "))")
                print("signatures remaining: \(hss.remaining) of \(hss.capacity) (each publish uses 2)")
            }
            print("kid: \(Hex.encode(key.publicKey.kid))")
            print("private key: \(privatePath) (keep it secret)")
            print("public key: \(publicPath) (give it to devices as --trust)")
        } catch let error as FileSystemError {
            throw CommandFailure.failed(error.description)
        } catch let error as KeyError {
            throw CommandFailure.failed(error.description)
        }
    }

    /// --levels/--height/--w, checked, with the manifest size limit in mind:
    /// a signature must leave room for the payload in a 16 KiB JWS.
    func hssParameters() throws -> [(LMSType, LMOTSType)] {
        let count = levels ?? 1
        guard (1...HSS.maxLevels).contains(count) else {
            throw CommandFailure.usage("--levels \(count): expected 1 to \(HSS.maxLevels)")
        }
        let h = height ?? 10
        guard let type = LMSType(height: h), h <= HSSPrivateKey.maxGeneratedHeight else {
            throw CommandFailure.usage("--height \(h): expected 5, 10 or 15 (signing rebuilds a level's tree: H15 takes a minute here, H20 half an hour; use more levels for more signatures)")
        }
        let winternitz = w ?? 4
        guard let ots = LMOTSType(w: winternitz) else {
            throw CommandFailure.usage("--w \(winternitz): expected 1, 2, 4 or 8")
        }
        let parameters = Array(repeating: (type, ots), count: count)
        let signatureBytes = HSS.signatureLength(levels: parameters)
        let budget = (Manifest.maxEncodedSize - 2048) * 3 / 4
        guard signatureBytes <= budget else {
            throw CommandFailure.usage("--levels \(count) --height \(h) --w \(winternitz): signatures of \(signatureBytes) bytes would not fit the \(Manifest.maxEncodedSize)-byte manifest limit (at most \(budget)); use a larger --w or fewer levels")
        }
        return parameters
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
            privateKey = try PrivateKey.load(path: key, bytes: try readArgumentFile(key, option: "--key"))
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
                let next = try PublicKey(fileBytes: try readArgumentFile(keyInfo, option: "--key-info"))
                guard next.keyInfo != nil else {
                    throw CommandFailure.usage("--key-info \(keyInfo): key-info carries ES256 and EdDSA keys only, not \(next.algorithm.rawValue)")
                }
                options.nextKey = next
            } catch let error as KeyError {
                throw CommandFailure.usage("--key-info \(keyInfo): \(error.description)")
            }
        }

        // A stateful key with too few leaves is refused before any work; the
        // publisher reserves its two leaves (COSE and JWS) under the lock.
        if let hss = privateKey.hss, hss.remaining < 2 {
            throw CommandFailure.failed("--key \(key): HSS-LMS key has \(hss.remaining) signature(s) left of \(hss.capacity); a release needs 2 (COSE and JWS). Create a new key with keygen")
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
