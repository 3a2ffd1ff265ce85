#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import Synchronization
internal import CFirmwareShims
import CoapFirmwareCore
import CoapFirmwareDevice

/// A read-only memory mapping of a whole file, shared by every transfer of it.
///
/// Transfers hold a reference until libcoap releases their body, so a file
/// replaced on disk (a new release is a new inode) keeps its old bytes for
/// the transfers already under way, and the new bytes get a new ETag. A
/// file changed in place (truncated under the mapping) cannot kill the
/// server: the SIGBUS guard reads the lost pages as zeros, and the server
/// ends the transfers of a file changed in place (issue #13 item 3).
///
/// The ETag is the first 8 bytes of the content's SHA-256, so identical
/// bytes have the same ETag on every server (a mirror and its origin) and
/// after a restart. The serving thread never hashes a large file: a file
/// first asked for before `ContentETags` has hashed it in the background is
/// served under an ETag derived from its identity (device, inode, size,
/// modification time) instead, for the life of that mapping (issue #13
/// item 4).
final class MappedFile {
    let path: String
    let identity: FileIdentity
    let base: UnsafeRawPointer?
    let count: Int
    /// The content ETag of a file hashed where it was mapped.
    private let inlineETag: UInt64?

    /// Files up to this size are hashed where they are mapped (microseconds).
    static let hashInlineLimit = 64 * 1024

    /// The ETag served for this mapping: fixed at its first read, so that
    /// one mapping never changes its ETag under a transfer (a client
    /// restarts on a new ETag). Only the serving thread reads it.
    private var servedETag: UInt64?

    /// The ETag as a number, never 0 (libcoap treats 0 as "no ETag"); sent
    /// without leading zero bytes, as libcoap does. The content ETag if it
    /// is known at the first read; if the background hash had not finished
    /// then, the identity ETag, for as long as this file stays mapped (a
    /// client asking for it within five minutes keeps it; the next mapping
    /// takes the content ETag).
    var etag: UInt64 {
        if let servedETag { return servedETag }
        let tag = inlineETag ?? ContentETags.shared.etag(of: identity) ?? identity.etag
        servedETag = tag
        return tag
    }

    /// Maps `path`; nil if it is not a readable regular file.
    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        self.path = path
        identity = FileIdentity(info)
        count = Int(info.st_size)
        if count > 0 {
            guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { return nil }
            base = UnsafeRawPointer(p)
            _ = madvise(p, count, MADV_SEQUENTIAL)
            _ = cfw_sigbus_guard_install()
            if cfw_sigbus_guard_add(p, count) != 0 {
                // 4096 mappings at once: serve it anyway, unguarded.
                Logger(label: "coap-fw-server").warning("\(path): no SIGBUS guard slot left; a truncation in place would end the server")
            }
        } else {
            base = nil
        }
        if count <= Self.hashInlineLimit {
            inlineETag = Self.contentETag(base, count)
        } else {
            inlineETag = nil
            ContentETags.shared.hashInBackground(path, identity: identity)
        }
    }

    /// The file at `path` is still this inode but its size or modification
    /// time changed: the mapping no longer holds the bytes transfers began
    /// with. (A file replaced by rename is another inode: the old mapping
    /// keeps the old bytes, and transfers finish on them.)
    var changedInPlace: Bool {
        guard let now = FileIdentity.of(path) else { return false }
        return now.device == identity.device && now.inode == identity.inode && now != identity
    }

    deinit {
        if let base {
            cfw_sigbus_guard_remove(base)
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        }
    }

    static func contentETag(_ base: UnsafeRawPointer?, _ count: Int) -> UInt64 {
        var hasher = DigestSet<OpenSSLDigests>(.sha256)
        hasher.update(UnsafeRawBufferPointer(start: base, count: count))
        return nonZero(hasher.digest(.sha256))
    }

    static func nonZero(_ digest: [UInt8]) -> UInt64 {
        let tag = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return tag == 0 ? 1 : tag
    }

    /// Pages read as zeros since start because a file shrank under its mapping.
    static var zeroFilledPages: UInt { UInt(cfw_sigbus_guard_hits()) }
}

/// What identifies a file's content on disk without reading it.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var mtimeSeconds: Int
    var mtimeNanoseconds: Int

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        mtimeSeconds = info.st_mtim.tv_sec
        mtimeNanoseconds = info.st_mtim.tv_nsec
    }

    static func of(_ path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return FileIdentity(info)
    }

    /// An ETag for this identity: the SHA-256 prefix of its fields (used
    /// while the content's own hash is not known yet).
    var etag: UInt64 {
        let fields = [device, inode, UInt64(bitPattern: size), UInt64(bitPattern: Int64(mtimeSeconds)),
                      UInt64(bitPattern: Int64(mtimeNanoseconds))]
        return fields.withUnsafeBytes { MappedFile.nonZero(OpenSSLSHA256.hash(Array($0))) }
    }
}

/// Content ETags by file identity, for the life of the process: a file
/// mapped again (after five minutes unused) or asked for by a resuming
/// client keeps its content ETag without a new hash. Hashing reads the file
/// (not a mapping) on one background queue; a result is kept only if the
/// file's identity did not change while it was read.
final class ContentETags: Sendable {
    static let shared = ContentETags()
    /// More identities than this and the table starts over (each costs a hash again).
    static let capacity = 65_536

    private struct State {
        var known: [FileIdentity: UInt64] = [:]
        var pending: Set<FileIdentity> = []
    }
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "coap-fw.etag-hashing", qos: .utility)

    func etag(of identity: FileIdentity) -> UInt64? { state.withLock { $0.known[identity] } }

    /// Hashes `path` in the background unless its ETag is known or on the way.
    func hashInBackground(_ path: String, identity: FileIdentity) {
        let start = state.withLock { s -> Bool in
            guard s.known[identity] == nil, !s.pending.contains(identity) else { return false }
            s.pending.insert(identity)
            return true
        }
        guard start else { return }
        queue.async { [self] in
            let etag = Self.hash(path, identity: identity)
            state.withLock { s in
                s.pending.remove(identity)
                guard let etag else { return }
                if s.known.count >= Self.capacity { s.known.removeAll() }
                s.known[identity] = etag
            }
        }
    }

    /// The content ETag of the file at `path` if it is `identity` from start to end of the read.
    private static func hash(_ path: String, identity: FileIdentity) -> UInt64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, FileIdentity(info) == identity else { return nil }
        var hasher = OpenSSLSHA256()
        var total = 0
        do {
            try FileSystem.forEachChunk(fd: fd, path: path, chunkSize: 1 << 20) { chunk in
                hasher.update(chunk)
                total += chunk.count
            }
        } catch {
            return nil
        }
        guard fstat(fd, &info) == 0, FileIdentity(info) == identity, total == Int(identity.size) else { return nil }
        var digest = [UInt8](repeating: 0, count: 32)
        digest.withUnsafeMutableBytes { hasher.finalize(into: $0) }
        return MappedFile.nonZero(digest)
    }
}
