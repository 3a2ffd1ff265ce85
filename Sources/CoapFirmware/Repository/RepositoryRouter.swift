import CoapFirmwareCore

/// Maps a request's Uri-Path segments to a file of the repository (SPEC §4),
/// without touching the network: the server's routing rules in one place.
///
/// Served: `/.well-known/firmware/<m>/<model>/manifest.{cbor,json,suit}`,
/// the negotiated `.../manifest` (by Accept: none, 18 or 60 the CBOR one, 50
/// the JSON one, `CoapContentFormat.suitEnvelope` the SUIT envelope), `.../<version>/<file>`, and the
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
        /// A manifest file (observable).
        case manifest
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
        let served = RepositoryLayout.servedManifests
        let chosen: (fileName: String, contentFormat: UInt16)
        if segments[4] == "manifest" {
            switch accept {
            case nil, CoapContentFormat.cbor: chosen = served[0]
            case let asked?:
                guard let match = served.first(where: { $0.contentFormat == asked }) else { return .notAcceptable }
                chosen = match
            }
        } else {
            guard let named = served.first(where: { $0.fileName == segments[4] }) else { return .notFound }
            chosen = named
        }
        return .file(relativePath: "\(model)/\(chosen.fileName)", contentFormat: chosen.contentFormat, kind: .manifest)
    }

    /// A segment that names one entry of a folder and nothing else.
    static func isPlainSegment(_ segment: String) -> Bool {
        !segment.isEmpty && !segment.hasPrefix(".") && !segment.utf8.contains(where: { $0 == 0x2F || $0 == 0 || $0 == 0x5C })
            && segment.utf8.count <= 255
    }
}
