/// The release a device runs: what freshness is judged against.
public struct InstalledRelease: Sendable, Equatable {
    public var version: FirmwareVersion
    public var timestamp: Int64

    public init(version: FirmwareVersion, timestamp: Int64) {
        (self.version, self.timestamp) = (version, timestamp)
    }
}

/// What a device accepts once a manifest's signature held (SPEC §6, in the
/// draft's order): its identity, freshness, then the size of its slot. The
/// one acceptance policy: the device and the host's update engine both
/// ask it.
public struct DevicePolicy {
    public var manufacturer: UnsafeRawBufferPointer
    public var model: UnsafeRawBufferPointer
    /// What runs now; nil on a device with nothing installed.
    public var installed: InstalledRelease?
    /// Staging slot capacity in bytes (`.max`: unlimited).
    public var slotSize: UInt64

    public init(manufacturer: UnsafeRawBufferPointer, model: UnsafeRawBufferPointer,
                installed: InstalledRelease? = nil, slotSize: UInt64 = .max) {
        (self.manufacturer, self.model, self.installed, self.slotSize) = (manufacturer, model, installed, slotSize)
    }

    /// The first rule an offer fails, or `newer` / `upToDate`.
    public enum Verdict: UInt8, Sendable, Equatable {
        /// A newer release that fits: download it.
        case newer
        /// The installed version offered again (SPEC §7: up-to-date).
        case upToDate
        case wrongManufacturer
        case wrongModel
        /// A lower version than the installed one.
        case lowerVersion
        /// An older timestamp than the installed one, whatever the version (SPEC §2).
        case olderTimestamp
        /// The images need more than the slot holds.
        case tooLarge

        /// The result of a run that stops here; nil for `newer`.
        public var result: ResultCode? {
            switch self {
            case .newer: return nil
            case .upToDate: return .upToDate
            case .wrongManufacturer, .wrongModel: return .wrongDevice
            case .lowerVersion, .olderTimestamp: return .rollback
            case .tooLarge: return .tooLarge
            }
        }
    }

    /// Judges an offer: identity, then freshness, then size.
    public func evaluate(manufacturer offered: UnsafeRawBufferPointer, model offeredModel: UnsafeRawBufferPointer,
                         version: FirmwareVersion, timestamp: Int64, totalSize: UInt64) -> Verdict {
        guard bytesEqual(offered, 0..<offered.count, manufacturer) else { return .wrongManufacturer }
        guard bytesEqual(offeredModel, 0..<offeredModel.count, model) else { return .wrongModel }
        if let installed {
            if version < installed.version { return .lowerVersion }
            if timestamp < installed.timestamp { return .olderTimestamp }
            if version == installed.version { return .upToDate }
        }
        return totalSize <= slotSize ? .newer : .tooLarge
    }

    /// Judges a manifest read from `payload`.
    public func evaluate(_ view: ManifestView, in payload: UnsafeRawBufferPointer) -> Verdict {
        evaluate(manufacturer: UnsafeRawBufferPointer(rebasing: payload[view.manufacturer]),
                 model: UnsafeRawBufferPointer(rebasing: payload[view.model]),
                 version: view.version, timestamp: view.timestamp, totalSize: view.totalSize)
    }
}
