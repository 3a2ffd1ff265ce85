#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice

/// The state folder of a device (SPEC §6):
///
///     installed -> releases/<id>    symlink, switched atomically by rename(2)
///     releases/<id>/<name>          the installed images
///     releases/<id>/manifest.cbor   the signed manifest as received (or .json)
///     releases/<id>/release.json    version, timestamp, components (name, size, sha256, path)
///     staging/<name>.part           images being downloaded
///     staging/resume.json           where an interrupted download stops
///     lock                          flock(2): one updater at a time
///     origin-checked                when the origin last answered (epoch seconds)
///     trust.json                    keys adopted from key-info, retired kids (TrustStore)
///
/// Installing builds a complete release folder, fsyncs it, then replaces
/// the `installed` symlink with one rename: a power cut leaves either the
/// old release or the new one installed, never a mix.
public final class DeviceState {
    public let root: String
    private var lockFD: Int32 = -1

    public init(root: String) throws(FileSystemError) {
        guard !root.isEmpty else { throw FileSystemError(path: "--state", reason: "empty path") }
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        try FileSystem.makeDirectories("\(self.root)/staging")
        try FileSystem.makeDirectories("\(self.root)/releases")
    }

    deinit { if lockFD >= 0 { close(lockFD) } }

    /// Takes the state folder's lock; fails if another updater holds it.
    func lock() throws(FileSystemError) {
        let fd = open("\(root)/lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        guard fd >= 0 else { throw .errno("\(root)/lock", "cannot open") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw FileSystemError(path: "\(root)/lock", reason: "another coap-fw-client is updating this state folder")
        }
        lockFD = fd
    }

    var stagingDirectory: String { "\(root)/staging" }
    func stagingPath(_ name: String) -> String { "\(root)/staging/\(name).part" }
    public var installedDirectory: String { "\(root)/installed" }

    // MARK: Installed release

    /// What is installed, as recorded at install time.
    public struct Record: Sendable, Equatable {
        public struct Image: Sendable, Equatable {
            public var name: String
            public var size: UInt64
            public var sha256: [UInt8]
            public var path: String
        }

        public var version: FirmwareVersion
        public var timestamp: Int64
        public var manufacturer: String
        public var model: String
        public var components: [Image]

        public var release: InstalledRelease { InstalledRelease(version: version, timestamp: timestamp) }

        public var json: JSONValue {
            .object([
                ("version", .string(version.description)), ("timestamp", .string(RFC3339.format(timestamp))),
                ("manufacturer", .string(manufacturer)), ("model", .string(model)),
                ("components", .array(components.map { c in
                    .object([("name", .string(c.name)), ("size", .number(String(c.size))),
                             ("sha256", .string(Hex.encode(c.sha256))), ("path", .string(c.path))])
                })),
            ])
        }

        init(json: JSONValue) throws(ManifestError) {
            func fail(_ why: String) -> ManifestError { .badManifest(field: "release.json", reason: why) }
            guard case .object(let m) = json else { throw fail("not an object") }
            func string(_ k: String) throws(ManifestError) -> String {
                guard case .string(let s)? = m.first(where: { $0.key == k })?.value else { throw fail("missing \(k)") }
                return s
            }
            guard let v = FirmwareVersion(try string("version")) else { throw fail("bad version") }
            guard let t = RFC3339.parse(try string("timestamp")) else { throw fail("bad timestamp") }
            version = v
            timestamp = t
            manufacturer = try string("manufacturer")
            model = try string("model")
            guard case .array(let list)? = m.first(where: { $0.key == "components" })?.value else { throw fail("missing components") }
            var images: [Image] = []
            for item in list {
                guard case .object(let c) = item,
                      case .string(let name)? = c.first(where: { $0.key == "name" })?.value,
                      let size = c.first(where: { $0.key == "size" })?.value.uint64,
                      case .string(let hex)? = c.first(where: { $0.key == "sha256" })?.value,
                      let sha = Hex.decodeLowercase(hex),
                      case .string(let path)? = c.first(where: { $0.key == "path" })?.value
                else { throw fail("bad component") }
                images.append(Image(name: name, size: size, sha256: sha, path: path))
            }
            components = images
        }

        init(version: FirmwareVersion, timestamp: Int64, manufacturer: String, model: String, components: [Image]) {
            self.version = version
            self.timestamp = timestamp
            self.manufacturer = manufacturer
            self.model = model
            self.components = components
        }
    }

    /// The installed release, nil on a device with nothing installed yet.
    /// A record that exists but cannot be read is an error, not "nothing":
    /// treating it as empty would switch rollback protection off.
    public func installed() throws(ManifestError) -> Record? {
        let path = "\(installedDirectory)/release.json"
        guard FileSystem.exists(installedDirectory) else { return nil }
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(path, limit: 1 << 20, followLink: false)
        } catch {
            throw .badManifest(field: "release.json", reason: "\(path): \(error.reason)")
        }
        do {
            return try Record(json: JSONParser.parse(bytes))
        } catch let error as ManifestError {
            throw error
        } catch {
            throw .badManifest(field: "release.json", reason: "\(path): \(error)")
        }
    }

    /// The signed manifest of the installed release, as it was received (nil when
    /// nothing is installed, or for a release installed before it was kept).
    public func installedEnvelope() -> [UInt8]? {
        for format in ManifestFormat.allCases {
            let path = "\(installedDirectory)/\(format.fileName)"
            if FileSystem.exists(path), let bytes = try? FileSystem.read(path, limit: 1 << 20) { return bytes }
        }
        return nil
    }

    /// Installs the staged images of a verified manifest (SPEC §6).
    public func install(_ verified: VerifiedManifest, sha256: [[UInt8]]) throws(FileSystemError) -> Record {
        let manifest = verified.manifest
        let id = "\(manifest.firmwareVersion)-\(manifest.timestamp)-\(getpid())-\(monotonicMilliseconds())"
        let building = "\(root)/releases/.\(id).tmp"
        let final = "\(root)/releases/\(id)"
        try FileSystem.removeTree(building)
        try FileSystem.makeDirectories(building)
        var images: [Record.Image] = []
        for (component, digest) in zip(manifest.images, sha256) {
            let staged = stagingPath(component.name)
            try syncFile(staged)
            guard rename(staged, "\(building)/\(component.name)") == 0 else { throw .errno(staged, "cannot move into \(building)") }
            images.append(Record.Image(name: component.name, size: component.size, sha256: digest,
                                       path: "\(installedDirectory)/\(component.name)"))
        }
        let record = Record(version: manifest.firmwareVersion, timestamp: manifest.timestamp,
                            manufacturer: manifest.manufacturer, model: manifest.model, components: images)
        try FileSystem.atomicWrite("\(building)/\(verified.format.fileName)", verified.envelope)
        try FileSystem.atomicWrite("\(building)/release.json", JSONWriter.write(record.json))
        try FileSystem.syncDirectory(building)
        guard rename(building, final) == 0 else { throw .errno(final, "cannot rename \(building) to") }
        try FileSystem.syncDirectory("\(root)/releases")

        // The switch: a new symlink renamed over the old one.
        let previous = currentReleaseName()
        let link = "\(root)/.installed.tmp"
        unlink(link)
        guard symlink("releases/\(id)", link) == 0 else { throw .errno(link, "cannot create symlink") }
        guard rename(link, installedDirectory) == 0 else { throw .errno(installedDirectory, "cannot switch") }
        // Installed from here on: what fails now is tidying, never a reason to say "not installed".
        try? FileSystem.syncDirectory(root)
        if let previous, previous != id { try? FileSystem.removeTree("\(root)/releases/\(previous)") }
        clearResume()
        return record
    }

    /// Removes leftovers of an interrupted install (half-built release folders,
    /// releases no longer installed); the installed one is never touched.
    func cleanUp() {
        let current = currentReleaseName()
        for name in FileSystem.entries(of: "\(root)/releases") where name != current {
            try? FileSystem.removeTree("\(root)/releases/\(name)")
        }
        unlink("\(root)/.installed.tmp")
    }

    private func currentReleaseName() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(installedDirectory, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.hasPrefix("releases/") ? String(target.dropFirst(9)) : nil
    }

    // MARK: Resume

    /// Where a download stopped: the manifest it belongs to (its canonical
    /// digest), the component, the durable offset and the transfer's ETag.
    package struct ResumeRecord: Sendable, Equatable {
        package var manifestID: String
        package var component: Int
        package var offset: UInt64
        package var blockSize: Int
        package var etag: ETag?

        package init(manifestID: String, component: Int, offset: UInt64, blockSize: Int, etag: ETag?) {
            (self.manifestID, self.component, self.offset, self.blockSize, self.etag) = (manifestID, component, offset, blockSize, etag)
        }

        /// `resume.json` as written by `json`; anything unusable (garbage,
        /// missing members, numbers out of range) is no record: start over.
        package init?(json bytes: [UInt8]) {
            guard case .object(let m)? = try? JSONParser.parse(bytes),
                  case .string(let id)? = m.first(where: { $0.key == "manifest" })?.value,
                  let component = m.first(where: { $0.key == "component" })?.value.uint64.flatMap({ Int(exactly: $0) }),
                  let offset = m.first(where: { $0.key == "offset" })?.value.uint64,
                  let block = m.first(where: { $0.key == "blockSize" })?.value.uint64.flatMap({ Int(exactly: $0) })
            else { return nil }
            var etag: ETag?
            if case .string(let hex)? = m.first(where: { $0.key == "etag" })?.value, let bytes = Hex.decodeLowercase(hex) {
                etag = ETag(bytes)
            }
            self.init(manifestID: id, component: component, offset: offset, blockSize: block, etag: etag)
        }

        package var json: [UInt8] {
            var members: [(key: String, value: JSONValue)] = [
                ("manifest", .string(manifestID)), ("component", .number(String(component))),
                ("offset", .number(String(offset))), ("blockSize", .number(String(blockSize))),
            ]
            if let etag { members.append(("etag", .string(Hex.encode(etag.bytes)))) }
            return JSONWriter.write(.object(members))
        }
    }

    func loadResume() -> ResumeRecord? {
        guard let bytes = try? FileSystem.read("\(stagingDirectory)/resume.json", limit: 4096, followLink: false) else { return nil }
        return ResumeRecord(json: bytes)
    }

    /// Records a resume point. The staged bytes up to `offset` are fsynced
    /// first, so the record never claims more than the disk holds.
    func saveResume(_ record: ResumeRecord, stagedFile: String) throws(FileSystemError) {
        try syncFile(stagedFile)
        try FileSystem.atomicWrite("\(stagingDirectory)/resume.json", record.json)
    }

    func clearResume() {
        unlink("\(stagingDirectory)/resume.json")
    }

    // MARK: Origin checks

    private var originCheckPath: String { "\(root)/origin-checked" }

    /// Whether the origin last answered `interval` seconds ago or more (or never).
    func originCheckDue(after interval: Double) -> Bool {
        guard let bytes = try? FileSystem.read(originCheckPath, limit: 64, followLink: false),
              let last = Int64(String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace })
        else { return true }
        let now = Int64(time(nil))
        return Double(now) - Double(last) >= interval || last > now
    }

    /// Records that the origin answered now.
    func recordOriginAnswer() {
        try? FileSystem.atomicWrite(originCheckPath, Array("\(Int64(time(nil)))\n".utf8))
    }

    /// fsync of a staged file: a regular file, never followed through a link.
    private func syncFile(_ path: String) throws(FileSystemError) {
        guard let fd = FileSystem.openRegularFile(path) else { throw FileSystemError(path: path, reason: "not a regular file (a link or something else was put there)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .errno(path, "cannot fsync") }
    }
}
