/// The result of an update run or of one check, numbered for C callers and
/// named as `--json` spells it (SPEC §7): the one result enum.
public enum ResultCode: UInt8, Sendable, CaseIterable {
    /// The new release is installed (a check's "accepted, download it" is 0 too).
    case updated = 0
    /// The offered release is the installed one.
    case upToDate
    /// The signature does not hold, the key is not trusted, or the algorithm is unusable.
    case badSignature
    /// The envelope or the manifest is malformed.
    case badManifest
    /// The manifest is for another manufacturer or model.
    case wrongDevice
    /// The manifest is older than what is installed.
    case rollback
    /// The images do not fit the staging slot.
    case tooLarge
    /// An image does not match the manifest's size or digests.
    case digestMismatch
    /// The transfer failed (time-out, CoAP error, a server contradicting the manifest, a full slot).
    case transferFailed
    /// No server answered.
    case noServer

    /// The SPEC §7 spelling.
    public var name: StaticString {
        switch self {
        case .updated: return "updated"
        case .upToDate: return "up-to-date"
        case .badSignature: return "bad-signature"
        case .badManifest: return "bad-manifest"
        case .wrongDevice: return "wrong-device"
        case .rollback: return "rollback"
        case .tooLarge: return "too-large"
        case .digestMismatch: return "digest-mismatch"
        case .transferFailed: return "transfer-failed"
        case .noServer: return "no-server"
        }
    }

    /// Exit status 0 only for success (SPEC §7).
    public var isSuccess: Bool { self == .updated || self == .upToDate }
}
