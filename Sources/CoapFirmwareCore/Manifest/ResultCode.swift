import CoapFirmwareDevice

extension ResultCode: CustomStringConvertible {
    /// The SPEC §7 spelling, as `--json` prints it.
    public var description: String { "\(name)" }

    /// The process exit status for this result (SPEC §7): 0 only for success.
    public var exitStatus: Int32 { isSuccess ? 0 : 1 }
}

/// Why a manifest was refused, in the draft's validation order (SPEC §6).
public enum ManifestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The signature does not hold, the key is not trusted, or the algorithm is unusable.
    case badSignature(field: String?, reason: String)
    /// The envelope or payload is malformed; `field` names what is at fault.
    case badManifest(field: String, reason: String)
    /// The manifest is for another manufacturer or model.
    case wrongDevice(field: String, expected: String, found: String)
    /// The manifest is older than what is installed.
    case rollback(reason: String)
    /// The images do not fit the staging slot.
    case tooLarge(size: UInt64, slot: UInt64)
    /// An image does not match the manifest's digest or size.
    case digestMismatch(image: String, reason: String)

    public var resultCode: ResultCode {
        switch self {
        case .badSignature: return .badSignature
        case .badManifest: return .badManifest
        case .wrongDevice: return .wrongDevice
        case .rollback: return .rollback
        case .tooLarge: return .tooLarge
        case .digestMismatch: return .digestMismatch
        }
    }

    /// The field at fault, where there is one.
    public var field: String? {
        switch self {
        case .badSignature(let field, _): return field
        case .badManifest(let field, _): return field
        case .wrongDevice(let field, _, _): return field
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .badSignature(let field, let reason):
            return field.map { "bad signature: \($0): \(reason)" } ?? "bad signature: \(reason)"
        case .badManifest(let field, let reason): return "bad manifest: \(field): \(reason)"
        case .wrongDevice(let field, let expected, let found):
            return "wrong device: \(field) is \"\(found)\", this device is \"\(expected)\""
        case .rollback(let reason): return "rollback refused: \(reason)"
        case .tooLarge(let size, let slot): return "too large: images need \(size) bytes, the slot holds \(slot)"
        case .digestMismatch(let image, let reason): return "digest mismatch: \(image): \(reason)"
        }
    }
}
