import CoapFirmwareCore
import CoapFirmwareDevice

/// Where a release lives in a repository folder (SPEC §4):
///
///     .well-known/firmware/<manufacturer>/<model>/manifest.cbor
///     .well-known/firmware/<manufacturer>/<model>/manifest.json
///     .well-known/firmware/<manufacturer>/<model>/manifest.suit   (optional, SUIT)
///     .well-known/firmware/<manufacturer>/<model>/<version>/<file>
public struct RepositoryLayout: Sendable {
    public let root: String

    /// The manifest files a model folder may hold, as served: file name and
    /// Content-Format. The first is what `.../manifest` gives without Accept.
    static let servedManifests: [(fileName: String, contentFormat: UInt16)] = [
        (ManifestFormat.cbor.fileName, ManifestFormat.cbor.contentFormat),
        (ManifestFormat.json.fileName, ManifestFormat.json.contentFormat),
        (ReleasePublisher.suitFileName, CoapContentFormat.suitEnvelope),
    ]

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
