/// Where a manifest refusal points: a root field, optionally a member of a
/// component or digest entry (the host renders it as `components[1].size`).
public struct FieldPath: Sendable, Equatable {
    public enum Member: UInt8, Sendable {
        case none, name, location, size, commitHash, digestAlgo, hash, unknownKey
    }

    /// nil: the manifest as a whole.
    public var field: ManifestField?
    public var component: Int? = nil
    public var member: Member = .none
    public var digest: Int? = nil
    public var digestMember: Member = .none
    /// An unknown key given twice, when it is an integer.
    public var unknownKey: Int64? = nil
    /// An unknown key given twice: its encoded bytes in the payload.
    public var unknownKeyRange: Range<Int>? = nil

    public init(field: ManifestField?) { self.field = field }

    public static let manifest = FieldPath(field: nil)

    /// Points at `key` of the map this path names.
    mutating func setKey(_ key: Int64) {
        if field == nil, let f = ManifestField(rawValue: key) {
            field = f
        } else if field == .components, component != nil, member == .none, let k = ComponentKey(rawValue: key) {
            member = [Member.name, .location, .size, .commitHash][Int(k.rawValue) - 1]
        } else if digest != nil {
            digestMember = key == DigestKey.digestAlgo.rawValue ? .digestAlgo : .hash
        } else if field == .firmwareCryptoInfo {
            member = .commitHash
        } else {
            setUnknownKey(key)
        }
    }

    mutating func setUnknownKey(_ key: Int64?) {
        if digest != nil { digestMember = .unknownKey } else { member = .unknownKey }
        unknownKey = key
    }
}
