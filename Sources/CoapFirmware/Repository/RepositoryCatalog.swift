#if canImport(Glibc)
import Glibc
#endif
import CoapFirmwareCore

/// What a repository folder serves (SPEC §4), read from the disk with no
/// CoAP: every manifest and image as a resource path (in both spellings,
/// `firmware` and `manifest`) with its link attributes, and the identity of
/// each model's manifest files, so that a changed release can be told
/// apart from an unchanged one. The server registers what a scan finds.
struct RepositoryCatalog: Equatable {
    /// One resource's link attributes (RFC 6690).
    struct Resource: Equatable {
        /// The `ct` attribute: one Content-Format, or a quoted list.
        var contentFormat: String
        /// Manifests are observable (RFC 7641), images are not.
        var observable: Bool
    }

    /// Resource paths (no leading slash) → attributes.
    var resources: [String: Resource] = [:]
    /// `<manufacturer>/<model>` → the identity of each manifest format's file.
    var manifests: [String: [FileIdentity?]] = [:]

    /// The prefixes a model's resources are served under (SPEC §4).
    static let prefixes = [".well-known/firmware", ".well-known/manifest"]

    /// Scans the repository at `root` (a real path). Only plain names are
    /// served, and only files whose real path stays inside `root`.
    static func scan(root: String) -> RepositoryCatalog {
        var catalog = RepositoryCatalog()
        let firmware = "\(root)/.well-known/firmware"
        for manufacturer in FileSystem.entries(of: firmware) where RepositoryRouter.isPlainSegment(manufacturer) {
            for model in FileSystem.entries(of: "\(firmware)/\(manufacturer)") where RepositoryRouter.isPlainSegment(model) {
                let key = "\(manufacturer)/\(model)"
                let dir = "\(firmware)/\(key)"
                guard isInside(dir, root: root) else { continue }
                catalog.addModel(key, directory: dir, root: root)
            }
        }
        return catalog
    }

    private mutating func addModel(_ key: String, directory dir: String, root: String) {
        let served = RepositoryLayout.servedManifests
        let present = served.filter { FileIdentity.of("\(dir)/\($0.fileName)") != nil && Self.isInside("\(dir)/\($0.fileName)", root: root) }
        manifests[key] = served.map { FileIdentity.of("\(dir)/\($0.fileName)") }
        for prefix in Self.prefixes {
            let base = "\(prefix)/\(key)"
            for format in present {
                resources["\(base)/\(format.fileName)"] = Resource(contentFormat: String(format.contentFormat), observable: true)
            }
            if !present.isEmpty {
                let formats = present.map { String($0.contentFormat) }
                let ct = formats.count == 1 ? formats[0] : "\"\(formats.joined(separator: " "))\""
                resources["\(base)/manifest"] = Resource(contentFormat: ct, observable: true)
            }
        }
        for version in FileSystem.entries(of: dir) where RepositoryRouter.isPlainSegment(version) && FileSystem.isDirectory("\(dir)/\(version)") {
            for file in FileSystem.entries(of: "\(dir)/\(version)") where RepositoryRouter.isPlainSegment(file) {
                let path = "\(dir)/\(version)/\(file)"
                guard FileIdentity.of(path) != nil, Self.isInside(path, root: root) else { continue }
                for prefix in Self.prefixes {
                    resources["\(prefix)/\(key)/\(version)/\(file)"] = Resource(contentFormat: String(CoapContentFormat.octetStream), observable: false)
                }
            }
        }
    }

    /// The `/.well-known/core` body (RFC 6690): every resource, sorted, with
    /// its `ct` and `rt` and `obs` for the observable ones.
    var linkFormat: [UInt8] {
        let links = resources.keys.sorted().map { path -> String in
            let r = resources[path]!
            return "</\(path)>;ct=\(r.contentFormat);rt=\"\(r.observable ? "firmware.manifest" : "firmware.image")\"\(r.observable ? ";obs" : "")"
        }
        return Array(links.joined(separator: ",").utf8)
    }

    /// Models whose manifest files changed since `old` (a model that is new
    /// has no observers yet, so it is not listed).
    func changedModels(since old: RepositoryCatalog) -> [String] {
        manifests.keys.sorted().filter { key in old.manifests[key].map { $0 != manifests[key] } ?? false }
    }

    /// The observable resources of a model, to notify when its release changes (RFC 7641 §3.2).
    func manifestResources(of model: String) -> [String] {
        Self.prefixes.flatMap { prefix in
            (RepositoryLayout.servedManifests.map(\.fileName) + ["manifest"]).map { "\(prefix)/\(model)/\($0)" }
        }.filter { resources[$0] != nil }
    }

    /// True when `path` exists and its real path lies inside `root`.
    static func isInside(_ path: String, root: String) -> Bool {
        guard let real = realpath(path, nil) else { return false }
        defer { free(real) }
        let resolved = String(cString: real)
        return resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/")
    }
}
