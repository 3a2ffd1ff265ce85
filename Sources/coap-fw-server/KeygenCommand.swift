import CoapFirmware
import CoapFirmwareCLI
import CoapFirmwareCore
import CoapFirmwareDevice

struct Keygen {
    static let command = CommandSpec(
        "keygen", abstract: "Create a manifest signing key pair.",
        discussion: """
            ES256 and EdDSA: writes DIR/private.pem (PKCS#8, mode 0600) and DIR/public.pem (SPKI). \
            HSS-LMS: writes DIR/private.hss (stateful: it counts the one-time signatures used; \
            mode 0600, back it up only while no publish runs) and DIR/public.hss (RFC 8554 bytes). \
            Prints the key id (kid) and, for HSS-LMS, how many signatures the key can make.
            """,
        options: [
            .value("alg", "ALG", "Signature algorithm: ES256, EdDSA or HSS-LMS.", required: true),
            .value("out", "DIR", "Folder to write the key pair into (created if missing).", required: true),
        ] + HSSKeyOptions.options + [
            .flag("force", "Overwrite an existing key pair in DIR."),
        ] + VerbosityOptions.options
    ) { try Keygen($0).run() }

    var alg: String
    var out: String
    var hss: HSSKeyOptions
    var force: Bool
    var verbosity: VerbosityOptions

    init(_ a: ParsedArguments) throws {
        (alg, out, hss) = (a.required("alg"), a.required("out"), try HSSKeyOptions(a))
        (force, verbosity) = (a.flag("force"), VerbosityOptions(a))
    }

    func run() throws {
        _ = verbosity.logger("coap-fw-server")
        guard let algorithm = SignatureAlgorithm(argument: alg) else {
            throw CommandFailure.usage("--alg \(alg): expected ES256, EdDSA or HSS-LMS")
        }
        if algorithm != .hssLms, !hss.isEmpty {
            throw CommandFailure.usage("--levels, --height and --w apply to --alg HSS-LMS only")
        }
        let suffix = algorithm == .hssLms ? "hss" : "pem"
        let privatePath = "\(out)/private.\(suffix)"
        let publicPath = "\(out)/public.\(suffix)"
        if !force, FileSystem.exists(privatePath) || FileSystem.exists(publicPath) {
            throw CommandFailure.failed("\(out) already holds a key pair; refusing to overwrite it (use --force)")
        }
        // Every option is checked before anything is written.
        var parameters: [(LMSType, LMOTSType)] = []
        if algorithm == .hssLms {
            do {
                parameters = try HSSPrivateKey.parameters(levels: hss.levels, height: hss.height, w: hss.w)
            } catch {
                throw CommandFailure.usage(error.message)
            }
        }
        do {
            try FileSystem.makeDirectories(out)
            let key: PrivateKey
            if algorithm == .hssLms {
                key = PrivateKey(hss: try HSSPrivateKey.generate(levels: parameters, path: privatePath))
            } else {
                key = try PrivateKey.generate(algorithm)
                try FileSystem.atomicWrite(privatePath, try key.pkcs8PEM(), mode: 0o600)
            }
            try FileSystem.atomicWrite(publicPath, try key.publicKey.fileBytes(), mode: 0o644)
            print("algorithm: \(algorithm)")
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
}
