/// The device-side acceptance rules after the signature holds, in the
/// draft's order (SPEC §6): device identity, freshness, size.
public struct DevicePolicy: Sendable {
    public var manufacturer: String
    public var model: String
    /// What runs now; nil on a device with nothing installed.
    public var installed: InstalledRelease?
    /// Staging slot capacity in bytes; nil for unlimited.
    public var slotSize: UInt64?

    public init(manufacturer: String, model: String, installed: InstalledRelease? = nil, slotSize: UInt64? = nil) {
        self.manufacturer = manufacturer
        self.model = model
        self.installed = installed
        self.slotSize = slotSize
    }

    /// What a manifest offers, once it passes.
    public enum Verdict: Sendable, Equatable {
        /// A newer release: download and install it.
        case newer
        /// The release already installed.
        case upToDate
    }

    /// Checks identity, freshness and size; throws the first rule that fails.
    ///
    /// An older timestamp is a rollback even for a higher version: a device
    /// never accepts a manifest older than the one it runs (SPEC §2). The
    /// installed version offered again is `upToDate` (SPEC §7).
    public func evaluate(_ manifest: Manifest) throws(ManifestError) -> Verdict {
        guard manifest.manufacturer == manufacturer else {
            throw .wrongDevice(field: "manufacturer", expected: manufacturer, found: manifest.manufacturer)
        }
        guard manifest.model == model else {
            throw .wrongDevice(field: "model", expected: model, found: manifest.model)
        }
        if let installed {
            if manifest.firmwareVersion < installed.version {
                throw .rollback(reason: "offered version \(manifest.firmwareVersion) is lower than installed \(installed.version)")
            }
            if manifest.timestamp < installed.timestamp {
                throw .rollback(reason: "manifest timestamp \(RFC3339.format(manifest.timestamp)) is older than installed \(RFC3339.format(installed.timestamp))")
            }
            if manifest.firmwareVersion == installed.version { return .upToDate }
        }
        if let slotSize {
            let total = manifest.totalImageSize ?? .max
            guard total <= slotSize else { throw .tooLarge(size: total, slot: slotSize) }
        }
        return .newer
    }
}

/// The release a device runs: what rollback protection compares against.
public struct InstalledRelease: Sendable, Equatable {
    public var version: FirmwareVersion
    public var timestamp: Int64

    public init(version: FirmwareVersion, timestamp: Int64) {
        self.version = version
        self.timestamp = timestamp
    }
}
