import CoapFirmwareCore
import CoapFirmwareDevice

/// Why an image file does not pass (`coap-fw-client verify --image`).
public enum ImageFileError: Error, CustomStringConvertible {
    /// The file cannot be read (a usage error: it names the path).
    case unreadable(FileSystemError)
    /// The bytes do not match the component (size or a digest).
    case mismatch(ManifestError)

    public var description: String {
        switch self {
        case .unreadable(let e): return e.description
        case .mismatch(let e): return e.description
        }
    }
}

extension Component {
    /// Checks a file against this component with the device's digest
    /// verifier, fed as a transfer would feed it.
    public func check(file path: String) throws(ImageFileError) {
        var verifier = BlockDigestVerifier<OpenSSLDigests>(component: self)
        var offset: UInt64 = 0
        do {
            try FileSystem.forEachChunk(path) { chunk in
                _ = verifier.update(offset: offset, block: chunk)
                offset += UInt64(chunk.count)
            }
        } catch let error as FileSystemError {
            throw .unreadable(error)
        } catch {
            throw .unreadable(FileSystemError(path: path, reason: "\(error)"))
        }
        do {
            try verifier.finish(component: self)
        } catch {
            throw .mismatch(.digestMismatch(image: path, reason: "\(error.description) (component \(name))"))
        }
    }
}
