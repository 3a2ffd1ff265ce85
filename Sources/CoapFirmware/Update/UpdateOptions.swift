import CoapFirmwareCore
import CoapFirmwareDevice

/// What `coap-fw-client update` was asked to do (SPEC §7).
public struct UpdateOptions: Sendable {
    public var trustedKeys: [PublicKey]
    public var manufacturer: String
    public var model: String
    public var stateDirectory: String
    public var domain: String?
    /// Ask `_firmware.<domain>` first (a mirror asks only its origin).
    public var discoverLocal = true
    public var origin: CoapURI?
    public var format: ManifestFormat = .cbor
    /// SUIT: the device's vendor and class ids (nil: UUID5 of the manufacturer and model, RFC 9124).
    public var suitVendorID: [UInt8]?
    public var suitClassID: [UInt8]?
    /// The Block2 size exponent to ask for (SPEC §5: default 1024 bytes).
    public var szx: UInt8 = Block2.maxSZX
    /// Host name → address (and optional port), like curl's --resolve.
    public var resolve: [HostMapping] = []
    public var slotSize: UInt64?
    /// Longest wait without progress at one server, in seconds.
    public var timeout: Double = 30
    public var psk: PSK?
    /// Requests per CoAP session before a fresh one (new port, new Message-ID space).
    public var requestsPerSession = 30_000
    /// How long one exchange may wait before it is sent afresh (see `Requester`).
    public var exchangeTimeout: Double = 6
    /// RFC 7252 §4.8 transmission parameters: ACK_TIMEOUT (s) and MAX_RETRANSMIT.
    public var ackTimeout: Double = 2
    public var maxRetransmit = 4
    /// The window's byte budget: Block2 requests in flight or answered
    /// ahead of the hash frontier, at most this many payload bytes
    /// (`Requester`); 0 is lock-step, one block per round trip.
    public var windowBytes = 4096
    /// After a local `up-to-date`, ask the origin too once this many seconds
    /// have passed since it last answered (recorded in the state folder), so a
    /// local server replaying an old manifest cannot freeze a device.
    public var originCheck: Double = 86_400

    public init(trustedKeys: [PublicKey], manufacturer: String, model: String, stateDirectory: String) {
        (self.trustedKeys, self.manufacturer, self.model, self.stateDirectory) = (trustedKeys, manufacturer, model, stateDirectory)
    }

    /// The local server's manifest URI (SPEC §4 discovery step 1).
    public func localManifestURI(domain: String) -> CoapURI {
        CoapURI(secure: false, host: "_firmware.\(domain)", path: RepositoryLayout.modelSegments(manufacturer: manufacturer, model: model) + [format.fileName])
    }

    /// The origin's manifest URI: the standard path when `--origin` names only a server.
    public func originManifestURI() -> CoapURI? {
        guard var origin else { return nil }
        if origin.path.isEmpty || origin.path == [""] {
            origin.path = RepositoryLayout.modelSegments(manufacturer: manufacturer, model: model) + [format.fileName]
        }
        return origin
    }
}

/// One server tried, and how it went.
public struct AttemptReport: Sendable {
    public var uri: String
    public var result: ResultCode
    public var reason: String?
    public var bytes: UInt64
    /// The ETag the server gave its manifest (not printed; `watch` compares notifications with it).
    public var manifestETag: ETag? = nil
}

/// The outcome of an update run (`--json` prints it, SPEC §7).
public struct UpdateReport: Sendable {
    public var result: ResultCode
    public var reason: String?
    public var source: String?
    public var version: String?
    public var bytesTransferred: UInt64
    public var attempts: [AttemptReport]
    /// The ETag of the manifest at `source`, when it gave one (not printed).
    public var sourceETag: ETag? {
        guard let source else { return nil }
        return attempts.last { $0.uri == source }?.manifestETag
    }

    public init(result: ResultCode, reason: String?, source: String? = nil, version: String? = nil,
                bytesTransferred: UInt64, attempts: [AttemptReport] = []) {
        (self.result, self.reason, self.source, self.version) = (result, reason, source, version)
        (self.bytesTransferred, self.attempts) = (bytesTransferred, attempts)
    }

    public var json: JSONValue {
        func optional(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        let attempts: [JSONValue] = attempts.map { a in
            .object([("uri", .string(a.uri)), ("result", .string(a.result.description)),
                     ("reason", optional(a.reason)), ("bytes", .number(String(a.bytes)))])
        }
        return .object([
            ("result", .string(result.description)), ("source", optional(source)), ("version", optional(version)),
            ("bytesTransferred", .number(String(bytesTransferred))), ("attempts", .array(attempts)),
            ("reason", optional(reason)),
        ])
    }
}

/// Progress of the image download, for a terminal progress bar.
public struct Progress: Sendable {
    public var component: String
    public var done: UInt64
    public var total: UInt64
}

extension UpdateOptions {
    /// Verifies an envelope under `trustedKeys`: as a SUIT envelope, run for
    /// this device's identity (`SUITVerifier.release`), or as COSE or JWS,
    /// whichever it is. The one choice of reader for a fetched manifest and
    /// for the installed one.
    func verify(_ envelope: [UInt8], suit: Bool, trustedKeys: [PublicKey]) throws(ManifestError) -> VerifiedManifest {
        if suit {
            return try SUITVerifier(trustedKeys: trustedKeys).release(envelope, manufacturer: manufacturer, model: model,
                                                                      vendorID: suitVendorID, classID: suitClassID)
        }
        return try ManifestVerifier(trustedKeys: trustedKeys).verify(envelope)
    }
}
