#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore
import CoapFirmwareDevice

/// A read-only memory mapping of a whole file, shared by every transfer of it.
///
/// Transfers hold a reference until libcoap releases their body, so a file
/// replaced on disk (a new release is a new inode) keeps its old bytes for
/// the transfers already under way, and the new bytes get a new ETag.
final class MappedFile {
    let path: String
    let identity: FileIdentity
    let base: UnsafeRawPointer?
    let count: Int
    /// The first 8 bytes of the content's SHA-256 as a number, never 0 (libcoap
    /// treats 0 as "no ETag"); sent without leading zero bytes, as libcoap does.
    let etag: UInt64
    /// Lowercase SHA-256 of the content, for logs.
    let sha256: [UInt8]

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
        } else {
            base = nil
        }
        var hasher = DigestSet<OpenSSLDigests>(.sha256)
        hasher.update(UnsafeRawBufferPointer(start: base, count: count))
        sha256 = hasher.digest(.sha256)
        let tag = sha256.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        etag = tag == 0 ? 1 : tag
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }
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
}
