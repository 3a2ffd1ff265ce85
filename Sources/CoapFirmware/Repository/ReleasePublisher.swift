#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice

/// Why a release could not be published.
public enum PublishError: Error, Sendable, CustomStringConvertible {
    /// An argument is unusable; `option` names it.
    case invalidArgument(option: String, reason: String)
    /// The version is already published, or older than the published one.
    case refused(String)
    case file(FileSystemError)
    case key(KeyError)

    public var description: String {
        switch self {
        case .invalidArgument(let option, let reason): return "\(option): \(reason)"
        case .refused(let reason): return reason
        case .file(let error): return error.description
        case .key(let error): return error.description
        }
    }
}

/// One image to publish: its component name and the file that holds it.
public struct ReleaseImage: Sendable {
    public var name: String
    public var path: String

    public init(name: String, path: String) { (self.name, self.path) = (name, path) }

    /// A single image (`--image FILE`): named after the file.
    public init(file path: String) { self.init(name: Manifest.lastSegment(of: path), path: path) }

    /// A component of a split release (`--component NAME=FILE`); nil unless both halves are there.
    public init?(component spec: String) {
        guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else { return nil }
        self.init(name: String(spec[..<eq]), path: String(spec[spec.index(after: eq)...]))
    }
}

/// Publishes a signed release into a repository folder (SPEC §4, §7 `publish`).
///
/// Order matters for a server reading the folder while we write: images go
/// in first (their version folder appears by one rename), manifests last
/// (each by an atomic rename), so a served manifest never names a missing
/// image.
public struct ReleasePublisher {
    public let layout: RepositoryLayout
    public let signer: ManifestSigner

    public init(repository: String, key: PrivateKey) {
        layout = RepositoryLayout(root: repository)
        signer = ManifestSigner(key: key)
    }

    public struct Options: Sendable {
        public var manufacturer: String
        public var model: String
        public var version: FirmwareVersion
        /// One image (`--image`) or a split image (`--component`, several).
        public var images: [ReleaseImage]
        public var isSplit: Bool
        public var timestamp: Int64
        public var digests: [DigestAlgorithm] = [.sha256]
        /// A successor key to announce in `key-info` (key rollover).
        public var nextKey: PublicKey?
        /// Replace a published version, publish below the current one, or with a timestamp more than a day ahead.
        public var force = false
        /// Also write `manifest.suit`, a SUIT envelope of the same release (`SUITWriter`).
        public var suit = false

        public init(manufacturer: String, model: String, version: FirmwareVersion, images: [ReleaseImage],
                    isSplit: Bool, timestamp: Int64) {
            (self.manufacturer, self.model, self.version) = (manufacturer, model, version)
            (self.images, self.isSplit, self.timestamp) = (images, isSplit, timestamp)
        }
    }

    /// What was published.
    public struct Result: Sendable {
        public var manifest: Manifest
        public var manifestPaths: [String]
        public var versionDirectory: String
    }

    public func publish(_ options: Options) throws(PublishError) -> Result {
        try Self.checkName(options.manufacturer, option: "--manufacturer", isImage: false)
        try Self.checkName(options.model, option: "--model", isImage: false)
        guard ManifestView.timestampRange.contains(options.timestamp) else {
            throw .invalidArgument(option: "--timestamp", reason: "\(options.timestamp) is outside the years 0000 to 9999")
        }
        // One release from the future would make every later one a rollback for the whole fleet.
        let now = Int64(time(nil))
        guard options.force || options.timestamp <= now + 86_400 else {
            throw .invalidArgument(option: "--timestamp", reason: "\(RFC3339.format(options.timestamp)) is more than a day ahead of this machine's clock (\(RFC3339.format(now))); devices would refuse every later release as a rollback (use --force if you mean it)")
        }
        guard !options.images.isEmpty else { throw .invalidArgument(option: "--image", reason: "no image given") }
        guard options.images.count <= ManifestView.maxImages else {
            throw .invalidArgument(option: "--component", reason: "\(options.images.count) components; a device reads at most \(ManifestView.maxImages)")
        }
        // A stateful key with too few leaves is refused before any work; its
        // two leaves (COSE and JWS) are reserved under the lock further down.
        if options.suit {
            guard options.digests.contains(.sha256) else {
                throw .invalidArgument(option: "--suit", reason: "a SUIT envelope carries SHA-256 image digests: add --digest sha256")
            }
            guard options.timestamp >= 0 else {
                throw .invalidArgument(option: "--timestamp", reason: "the SUIT sequence number is the timestamp, which must not be before 1970")
            }
        }
        let leaves = options.suit ? 3 : 2
        if let hss = signer.key.hss, hss.remaining < leaves {
            throw .key(.exhausted(path: hss.path, capacity: hss.capacity, remaining: hss.remaining))
        }
        guard !options.digests.isEmpty else { throw .invalidArgument(option: "--digest", reason: "no digest algorithm given") }

        // Describe each image: its file name in the version folder, size and digests.
        var components: [Component] = []
        var fileNames = Set<String>()
        for image in options.images {
            let option = options.isSplit ? "--component \(image.name)" : "--image"
            try Self.checkName(image.name, option: option, isImage: true)
            let fileName = FileSystem.baseName(of: image.path)
            try Self.checkName(fileName, option: option, isImage: true, what: "file name ")
            guard FileSystem.isRegularFile(image.path) else {
                throw .invalidArgument(option: option, reason: "\(image.path) is not a regular file")
            }
            guard fileNames.insert(fileName).inserted else {
                throw .invalidArgument(option: option, reason: "two images share the file name \"\(fileName)\"")
            }
            guard !components.contains(where: { $0.name == image.name }) else {
                throw .invalidArgument(option: option, reason: "component \"\(image.name)\" given twice")
            }
            var hashers = DigestSet<OpenSSLDigests>(DigestAlgorithms(options.digests.map { DigestAlgorithms($0) }))
            var size: UInt64 = 0
            do {
                try FileSystem.forEachChunk(image.path) { chunk in
                    hashers.update(chunk)
                    size += UInt64(chunk.count)
                }
            } catch {
                // An image that cannot be read is a bad argument, named by its option.
                throw .invalidArgument(option: option, reason: "\(error)")
            }
            components.append(Component(
                name: image.name, location: "\(options.version)/\(fileName)", size: size,
                digests: options.digests.map { ImageDigest(algorithm: $0, value: hashers.digest($0)) }))
        }

        var manifest = Manifest(timestamp: options.timestamp, manufacturer: options.manufacturer,
                                model: options.model, firmwareVersion: options.version)
        manifest.keyInfo = options.nextKey?.keyInfo
        if options.isSplit {
            manifest.components = components
        } else {
            manifest.firmwareLocation = components[0].location
            manifest.firmwareDigests = components[0].digests
            manifest.firmwareSize = components[0].size
        }

        let modelDirectory = layout.modelDirectory(manufacturer: options.manufacturer, model: options.model)
        let versionDirectory = layout.versionDirectory(manufacturer: options.manufacturer, model: options.model, version: options.version)
        if !options.force {
            if FileSystem.exists(versionDirectory) {
                throw .refused("version \(options.version) is already published at \(versionDirectory) (use --force to replace it)")
            }
            if let current = currentRelease(manufacturer: options.manufacturer, model: options.model),
               current.firmwareVersion > options.version || current.timestamp > options.timestamp {
                throw .refused("the published release \(current.firmwareVersion) (\(RFC3339.format(current.timestamp))) is newer than \(options.version) (\(RFC3339.format(options.timestamp))); devices would refuse it as a rollback (use --force to publish anyway)")
            }
        }

        // Sign both formats and check our own output before anything is written.
        let envelopes: [(ManifestFormat, [UInt8])]
        let suitEnvelope: [UInt8]?
        do {
            // A stateful HSS-LMS key: reserve both leaves in one locked step,
            // only now that the release passed every check.
            try signer.key.hss?.reserveAhead(leaves)
            envelopes = [(.cbor, try signer.signCOSE(manifest)), (.json, try signer.signJWS(manifest))]
            suitEnvelope = options.suit ? try SUITWriter.envelope(for: manifest, key: signer.key) : nil
        } catch {
            throw .key(error)
        }
        if let suitEnvelope {
            // Our own reader, run as a device of this product runs it, must give back this release.
            let (vendorID, classID) = UUID5.suitIdentity(manufacturer: manifest.manufacturer, model: manifest.model)
            do {
                let back = try SUITVerifier(trustedKeys: [signer.key.publicKey]).verify(suitEnvelope, vendorID: vendorID, classID: classID)
                guard back.sequenceNumber == UInt64(manifest.timestamp), back.version == manifest.firmwareVersion.description,
                      back.components.map(\.uri) == manifest.images.map(\.location),
                      back.components.map(\.size) == manifest.images.map(\.size) else {
                    throw ManifestError.badManifest(field: "manifest.suit", reason: "round trip changed it")
                }
            } catch {
                fatalError("internal error: a freshly signed SUIT envelope does not verify: \(error)")
            }
        }
        let verifier = ManifestVerifier(trustedKeys: [signer.key.publicKey])
        for (format, bytes) in envelopes {
            guard bytes.count <= Manifest.maxEncodedSize else {
                throw .refused("the \(format.rawValue) manifest would be \(bytes.count) bytes, more than the \(Manifest.maxEncodedSize)-byte limit")
            }
            do {
                let check = try verifier.verify(bytes)
                guard check.manifest == manifest else { throw ManifestError.badManifest(field: "manifest", reason: "round trip changed it") }
            } catch {
                fatalError("internal error: a freshly signed \(format.rawValue) manifest does not verify: \(error)")
            }
        }

        do {
            try FileSystem.makeDirectories(modelDirectory)
            try installImages(options.images, into: versionDirectory, modelDirectory: modelDirectory)
            // The SUIT envelope first: the CBOR manifest, last, is what observers are notified of.
            if let suitEnvelope {
                try FileSystem.atomicWrite("\(modelDirectory)/\(Self.suitFileName)", suitEnvelope)
            } else if FileSystem.exists("\(modelDirectory)/\(Self.suitFileName)") {
                // An older release's envelope would go on being served to SUIT devices.
                unlink("\(modelDirectory)/\(Self.suitFileName)")
            }
            for (format, bytes) in envelopes {
                try FileSystem.atomicWrite("\(modelDirectory)/\(format.fileName)", bytes)
            }
        } catch {
            throw .file(error)
        }
        return Result(manifest: manifest,
                      manifestPaths: (suitEnvelope == nil ? [] : ["\(modelDirectory)/\(Self.suitFileName)"])
                          + envelopes.map { "\(modelDirectory)/\($0.0.fileName)" },
                      versionDirectory: versionDirectory)
    }

    /// The SUIT envelope's file name beside manifest.cbor and manifest.json.
    public static let suitFileName = ManifestFormat.suit.fileName

    /// A name that becomes a folder or file of the repository (served, so not
    /// hidden: the server never serves names that start with '.') and, for an
    /// image, a file of the device's release folder (`Manifest.isImageName`).
    static func checkName(_ name: String, option: String, isImage: Bool, what: String = "") throws(PublishError) {
        guard Manifest.isSafeName(name), !name.hasPrefix(".") else {
            throw .invalidArgument(option: option, reason: "\(what)\"\(name)\" must be 1-64 letters, digits, '.', '_' or '-', not starting with '.'")
        }
        guard !isImage || Manifest.isImageName(name) else {
            throw .invalidArgument(option: option, reason: "\(what)\"\(name)\" is a name the device keeps its records under")
        }
    }

    /// The release currently published for a model, read from its CBOR
    /// manifest if our key verifies it (a rolled-over key cannot, and then
    /// there is nothing to compare against).
    public func currentRelease(manufacturer: String, model: String) -> Manifest? {
        let path = layout.manifestPath(manufacturer: manufacturer, model: model, format: .cbor)
        guard let bytes = try? FileSystem.read(path, limit: Manifest.maxEncodedSize) else { return nil }
        return try? ManifestVerifier(trustedKeys: [signer.key.publicKey]).verify(bytes).manifest
    }

    /// Copies the images into a hidden staging folder, fsyncs them, then
    /// renames the folder into place (replacing an old one under --force).
    private func installImages(_ images: [ReleaseImage], into versionDirectory: String, modelDirectory: String) throws(FileSystemError) {
        let staging = "\(modelDirectory)/.staging-\(getpid())"
        try FileSystem.removeTree(staging)
        try FileSystem.makeDirectories(staging)
        for image in images {
            let target = "\(staging)/\(FileSystem.baseName(of: image.path))"
            try FileSystem.copyFile(image.path, to: target)
        }
        try FileSystem.syncDirectory(staging)
        let old = "\(modelDirectory)/.replaced-\(getpid())"
        if FileSystem.exists(versionDirectory) {
            guard rename(versionDirectory, old) == 0 else { throw .errno(versionDirectory, "cannot move aside") }
        }
        guard rename(staging, versionDirectory) == 0 else { throw .errno(versionDirectory, "cannot rename \(staging) to") }
        try FileSystem.syncDirectory(modelDirectory)
        try FileSystem.removeTree(old)
    }
}
