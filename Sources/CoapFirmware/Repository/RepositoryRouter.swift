import CoapFirmwareCore

/// Maps a request's Uri-Path segments to a file of the repository (SPEC §4),
/// without touching the network: the server's routing rules in one place.
///
/// Served: `/.well-known/firmware/<m>/<model>/manifest.{cbor,json}`, the
/// negotiated `.../manifest` (by Accept), `.../<version>/<file>`, and the
/// same under the draft's `/.well-known/manifest/` spelling. Nothing else:
/// every segment must be a plain name (no empty, `.`, `..`, hidden or
/// slash-bearing segments), and the resolved file must lie inside the
/// repository after symlinks are followed (checked by the caller with
/// `realpath`).
struct RepositoryRouter: Sendable {
    enum Route: Equatable, Sendable {
        /// Serve this file (path relative to the repository root).
        case file(relativePath: String, contentFormat: UInt16, kind: Kind)
        /// 4.04: no such resource.
        case notFound
        /// 4.06: the Accept option asks for a format we do not serve.
        case notAcceptable
    }

    enum Kind: Equatable, Sendable {
        case manifest(ManifestFormat)
        case image
    }

    init() {}

    func route(segments: [String], accept: UInt16?) -> Route {
        guard segments.count == 5 || segments.count == 6,
              segments[0] == ".well-known", segments[1] == "firmware" || segments[1] == "manifest",
              segments.dropFirst(2).allSatisfy(Self.isPlainSegment)
        else { return .notFound }
        let model = ([".well-known", "firmware"] + segments[2...3]).joined(separator: "/")
        if segments.count == 6 {
            return .file(relativePath: "\(model)/\(segments[4])/\(segments[5])", contentFormat: CoapContentFormat.octetStream, kind: .image)
        }
        let format: ManifestFormat
        switch segments[4] {
        case "manifest.cbor": format = .cbor
        case "manifest.json": format = .json
        case "manifest":
            switch accept {
            case nil, CoapContentFormat.coseSign1, CoapContentFormat.cbor: format = .cbor
            case CoapContentFormat.json: format = .json
            default: return .notAcceptable
            }
        default:
            return .notFound
        }
        return .file(relativePath: "\(model)/\(format.fileName)", contentFormat: format.contentFormat, kind: .manifest(format))
    }

    /// A segment that names one entry of a folder and nothing else.
    static func isPlainSegment(_ segment: String) -> Bool {
        !segment.isEmpty && !segment.hasPrefix(".") && !segment.utf8.contains(where: { $0 == 0x2F || $0 == 0 || $0 == 0x5C })
            && segment.utf8.count <= 255
    }
}
