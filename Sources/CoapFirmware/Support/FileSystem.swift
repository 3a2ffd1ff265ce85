#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A file-system failure, naming the path at fault.
public struct FileSystemError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }

    static func errno(_ path: String, _ action: String) -> FileSystemError {
        FileSystemError(path: path, reason: "\(action): \(String(cString: strerror(Glibc.errno)))")
    }
}

/// Small POSIX file helpers with the durability a firmware updater needs:
/// write to a temporary name, fsync, rename, fsync the directory.
public enum FileSystem {
    /// Reads a whole file, refusing files larger than `limit` bytes.
    public static func read(_ path: String, limit: Int = 1 << 30, followLink: Bool = true) throws(FileSystemError) -> [UInt8] {
        // O_NONBLOCK: a FIFO planted under the name is refused below instead
        // of blocking the open (reads of a regular file ignore the flag).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (followLink ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw .errno(path, "cannot open") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .errno(path, "cannot stat") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileSystemError(path: path, reason: "not a regular file") }
        guard info.st_size <= limit else {
            throw FileSystemError(path: path, reason: "\(info.st_size) bytes, more than the \(limit)-byte limit")
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(info.st_size))
        // Sized by the file (one byte more sees the end): a 400-byte manifest
        // does not cost a zeroed 64 KiB buffer (issue #11's private memory).
        var chunk = [UInt8](repeating: 0, count: min(64 * 1024, Int(info.st_size) + 1))
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw .errno(path, "cannot read")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            guard out.count <= limit else { throw FileSystemError(path: path, reason: "more than the \(limit)-byte limit") }
        }
        return out
    }

    /// Copies `source` into a new file `target` (created exclusively, `mode`)
    /// and fsyncs it; the caller renames it into place.
    static func copyFile(_ source: String, to target: String, mode: mode_t = 0o644) throws(FileSystemError) {
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .errno(target, "cannot create") }
        defer { close(fd) }
        do {
            try forEachChunk(source) { chunk in
                var done = 0
                while done < chunk.count {
                    let n = write(fd, chunk.baseAddress! + done, chunk.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw FileSystemError.errno(target, "cannot write")
                    }
                    done += n
                }
            }
        } catch let error as FileSystemError {
            throw error
        } catch {
            throw FileSystemError(path: target, reason: "\(error)")
        }
        guard fsync(fd) == 0 else { throw .errno(target, "cannot fsync") }
    }

    /// Creates `path` anew, never through a link someone planted there: a
    /// leftover (file or symlink) is removed first, then `O_CREAT | O_EXCL |
    /// O_NOFOLLOW` refuses anything that appears in between.
    public static func createExclusive(_ path: String, flags: Int32, mode: mode_t) throws(FileSystemError) -> Int32 {
        unlink(path)
        let fd = open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .errno(path, "cannot create") }
        return fd
    }

    /// Opens an existing regular file for reading and writing, not through a
    /// symlink; nil when it is missing, a link (soft or hard) or not a
    /// regular file (a FIFO does not block the open).
    public static func openRegularFile(_ path: String) -> Int32? {
        let fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        var info = stat()
        // One link only: a hard link planted to a file elsewhere is not ours.
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink == 1,
              fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// The names in a folder (without "." and ".."), sorted; empty if it cannot be read.
    static func entries(of path: String) -> [String] { readEntries(path) ?? [] }

    private static func readEntries(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Calls `body` with each chunk of a file, in order, without holding the file.
    static func forEachChunk(_ path: String, chunkSize: Int = 64 * 1024,
                                    _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError.errno(path, "cannot open") }
        defer { close(fd) }
        try forEachChunk(fd: fd, path: path, chunkSize: chunkSize, body)
    }

    /// The same for a file the caller opened (`path` names it in errors).
    static func forEachChunk(fd: Int32, path: String, chunkSize: Int = 64 * 1024,
                             _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw FileSystemError.errno(path, "cannot read")
            }
            if n == 0 { return }
            try chunk.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    /// Writes `bytes` so that `path` holds either its old content or all of
    /// the new one, even across a power cut: temporary file, fsync, rename,
    /// fsync of the directory.
    public static func atomicWrite(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(FileSystemError) {
        let temp = "\(directory(of: path))/.\(baseName(of: path)).tmp-\(getpid())"
        let fd = try createExclusive(temp, flags: O_WRONLY, mode: mode)
        // The umask must not widen or narrow what the caller asked for (0600 keys).
        fchmod(fd, mode)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                let error = FileSystemError.errno(temp, "cannot write")
                close(fd)
                unlink(temp)
                throw error
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let error = FileSystemError.errno(temp, "cannot fsync")
            close(fd)
            unlink(temp)
            throw error
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let error = FileSystemError.errno(path, "cannot rename \(temp) to")
            unlink(temp)
            throw error
        }
        try syncDirectory(directory(of: path))
    }

    /// fsyncs a directory, making a rename or create in it durable.
    static func syncDirectory(_ path: String) throws(FileSystemError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .errno(path, "cannot open directory") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .errno(path, "cannot fsync directory") }
    }

    /// Creates a directory and its parents (like `mkdir -p`).
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(FileSystemError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/\(part)"
            if mkdir(current, mode) != 0 && Glibc.errno != EEXIST { throw .errno(current, "cannot create directory") }
        }
        guard isDirectory(path) else { throw FileSystemError(path: path, reason: "exists and is not a directory") }
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Whether `path` is a regular file (symlinks followed): not a FIFO, a device or a folder.
    public static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The permission bits of a file, or nil if it cannot be stat'ed.
    public static func permissions(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    /// Removes a file or a directory tree; missing paths are fine.
    static func removeTree(_ path: String) throws(FileSystemError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard let names = readEntries(path) else { throw .errno(path, "cannot open directory") }
            for name in names { try removeTree("\(path)/\(name)") }
            guard rmdir(path) == 0 else { throw .errno(path, "cannot remove directory") }
        } else {
            guard unlink(path) == 0 else { throw .errno(path, "cannot remove") }
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    public static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
