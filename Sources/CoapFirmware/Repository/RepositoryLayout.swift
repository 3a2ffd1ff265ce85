import CoapFirmwareCore
import CoapFirmwareDevice

/// Where a release lives in a repository folder (SPEC §4):
///
///     .well-known/firmware/<manufacturer>/<model>/manifest.cbor
///     .well-known/firmware/<manufacturer>/<model>/manifest.json
///     .well-known/firmware/<manufacturer>/<model>/<version>/<file>
public struct RepositoryLayout: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    /// The URI path segments of a model's folder.
    public static func modelSegments(manufacturer: String, model: String) -> [String] {
        [".well-known", "firmware", manufacturer, model]
    }

    public func modelDirectory(manufacturer: String, model: String) -> String {
        ([root] + Self.modelSegments(manufacturer: manufacturer, model: model)).joined(separator: "/")
    }

    public func manifestPath(manufacturer: String, model: String, format: ManifestFormat) -> String {
        "\(modelDirectory(manufacturer: manufacturer, model: model))/\(format.fileName)"
    }

    public func versionDirectory(manufacturer: String, model: String, version: FirmwareVersion) -> String {
        "\(modelDirectory(manufacturer: manufacturer, model: model))/\(version)"
    }
}
