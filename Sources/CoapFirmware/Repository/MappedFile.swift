#if canImport(Glibc)
import Glibc
#endif
import Dispatch
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
/// after a restart. The serving thread never hashes a large file: until a
/// background hash is done, the ETag is derived from the file's identity
/// (device, inode, size, modification time) instead (issue #13 item 4).
// @unchecked Sendable: the mapping is read-only after init, and the one
// thing that changes (the ETag) is atomic.
final class MappedFile: @unchecked Sendable {
    let path: String
    let identity: FileIdentity
    let base: UnsafeRawPointer?
    let count: Int
    private let currentETag: Atomic<UInt64>

    /// Files up to this size are hashed where they are mapped (microseconds).
    static let hashInlineLimit = 64 * 1024
    private static let hashing = DispatchQueue(label: "coap-fw.etag-hashing", qos: .utility)

    /// The ETag as a number, never 0 (libcoap treats 0 as "no ETag"); sent
    /// without leading zero bytes, as libcoap does.
    var etag: UInt64 { currentETag.load(ordering: .acquiring) }

    /// Maps `path`; nil if it is not a readable regular file.
    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
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
            _ = cfw_sigbus_guard_add(p, count)
        } else {
            base = nil
        }
        currentETag = Atomic(count <= Self.hashInlineLimit ? Self.contentETag(base, count) : identity.etag)
        if count > Self.hashInlineLimit {
            // The closure keeps the mapping alive until it is hashed.
            Self.hashing.async { [self] in currentETag.store(Self.contentETag(base, count), ordering: .releasing) }
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
struct FileIdentity: Equatable {
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
        var fields = [device, inode, UInt64(bitPattern: size), UInt64(bitPattern: Int64(mtimeSeconds)),
                      UInt64(bitPattern: Int64(mtimeNanoseconds))]
        return fields.withUnsafeMutableBytes { MappedFile.nonZero(OpenSSLSHA256.hash(Array($0))) }
    }
}
