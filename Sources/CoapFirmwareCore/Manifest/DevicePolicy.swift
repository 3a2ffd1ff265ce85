import CoapFirmwareDevice

/// The device as the host's update engine knows it, judged by the
/// device's one acceptance policy (`CoapFirmwareDevice.DevicePolicy`):
/// this type only turns its verdict into errors that name what differs.
public struct DeviceProfile: Sendable {
    public var manufacturer: String
    public var model: String
    /// What runs now; nil on a device with nothing installed.
    public var installed: InstalledRelease?
    /// Staging slot capacity in bytes; nil for unlimited.
    public var slotSize: UInt64?

    public init(manufacturer: String, model: String, installed: InstalledRelease? = nil, slotSize: UInt64? = nil) {
        (self.manufacturer, self.model, self.installed, self.slotSize) = (manufacturer, model, installed, slotSize)
    }

    /// Whether the manifest is newer (`true`) or the installed release (`false`);
    /// throws the first rule that fails (SPEC §6).
    public func isNewer(_ manifest: Manifest) throws(ManifestError) -> Bool {
        let total = manifest.totalImageSize ?? .max
        let verdict = Array(manufacturer.utf8).withUnsafeBytes { ownManufacturer in
            Array(model.utf8).withUnsafeBytes { ownModel in
                Array(manifest.manufacturer.utf8).withUnsafeBytes { offeredManufacturer in
                    Array(manifest.model.utf8).withUnsafeBytes { offeredModel in
                        DevicePolicy(manufacturer: ownManufacturer, model: ownModel, installed: installed, slotSize: slotSize ?? .max)
                            .evaluate(manufacturer: offeredManufacturer, model: offeredModel, version: manifest.firmwareVersion,
                                      timestamp: manifest.timestamp, totalSize: total)
                    }
                }
            }
        }
        switch verdict {
        case .newer: return true
        case .upToDate: return false
        case .wrongManufacturer:
            throw .wrongDevice(field: "manufacturer", expected: manufacturer, found: manifest.manufacturer)
        case .wrongModel:
            throw .wrongDevice(field: "model", expected: model, found: manifest.model)
        case .lowerVersion:
            throw .rollback(reason: "offered version \(manifest.firmwareVersion) is lower than installed \(installed?.version.description ?? "?")")
        case .olderTimestamp:
            throw .rollback(reason: "manifest timestamp \(RFC3339.format(manifest.timestamp)) is older than installed \(RFC3339.format(installed?.timestamp ?? 0))")
        case .tooLarge:
            throw .tooLarge(size: total, slot: slotSize ?? .max)
        }
    }
}
