import CoapFirmwareCore
import CoapFirmwareDevice

/// `publish --suit` (issue #14): the release as a SUIT envelope beside the
/// CBOR and JSON manifests, signed with the same key. One component per
/// image, identified by its name; sequence number = the release timestamp;
/// shared sequence = per component override {vendor-id, class-id,
/// image-digest (SHA-256), image-size}, then condition vendor-identifier and
/// class-identifier; install = override {uri, relative to the manifest},
/// fetch, image-match; validate = image-match; text = {"en": {component:
/// {vendor-name, model-name, component-version}}}. Every condition and
/// directive carries reporting policy 15 (all records). Deterministic CBOR.
public enum SUITWriter {
    static let reportingPolicy = CBORValue.unsigned(15)

    public static func envelope(for manifest: Manifest, key: PrivateKey) throws(KeyError) -> [UInt8] {
        let (vendorID, classID) = UUID5.suitIdentity(manufacturer: manifest.manufacturer, model: manifest.model)
        typealias Command = SUITInterpreter.Command
        typealias Parameter = SUITInterpreter.Parameter
        let images = manifest.images
        func select(_ i: Int) -> [CBORValue] {
            images.count == 1 ? [] : [.int(Command.setComponentIndex), .unsigned(UInt64(i))]
        }
        func encoded(_ value: CBORValue) -> CBORValue { .bytes(CBOREncoder.encode(value)) }
        var shared: [CBORValue] = [], install: [CBORValue] = [], validate: [CBORValue] = []
        for (i, image) in images.enumerated() {
            let sha256 = image.digests.first { $0.algorithm == .sha256 }?.value ?? []
            shared += select(i) + [
                .int(Command.overrideParameters), .map([
                    CBORMapEntry(.int(Parameter.vendorID), .bytes(vendorID)),
                    CBORMapEntry(.int(Parameter.classID), .bytes(classID)),
                    CBORMapEntry(.int(Parameter.imageDigest), encoded(.array([.int(SUITLabel.sha256), .bytes(sha256)]))),
                    CBORMapEntry(.int(Parameter.imageSize), .unsigned(image.size)),
                ]),
                .int(Command.vendorIdentifier), reportingPolicy, .int(Command.classIdentifier), reportingPolicy,
            ]
            install += select(i) + [
                .int(Command.overrideParameters), .map([CBORMapEntry(.int(Parameter.uri), .text(image.location))]),
                .int(Command.fetch), reportingPolicy, .int(Command.imageMatch), reportingPolicy,
            ]
            validate += select(i) + [.int(Command.imageMatch), reportingPolicy]
        }
        let componentIDs: [CBORValue] = images.map { .array([.bytes(Array($0.name.utf8))]) }
        let common = CBORValue.map([
            CBORMapEntry(.int(SUITLabel.components), .array(componentIDs)),
            CBORMapEntry(.int(SUITLabel.sharedSequence), encoded(.array(shared))),
        ])
        let text = CBORValue.map([CBORMapEntry(.text("en"), .map(componentIDs.map { id in
            CBORMapEntry(id, .map([
                CBORMapEntry(.unsigned(1), .text(manifest.manufacturer)), CBORMapEntry(.unsigned(2), .text(manifest.model)),
                CBORMapEntry(.unsigned(6), .text(manifest.firmwareVersion.description)),
            ]))
        }))])
        let suitManifest = CBORValue.map([
            CBORMapEntry(.int(SUITLabel.manifestVersion), .unsigned(1)),
            CBORMapEntry(.int(SUITLabel.sequenceNumber), .unsigned(UInt64(max(0, manifest.timestamp)))),
            CBORMapEntry(.int(SUITLabel.common), encoded(common)),
            CBORMapEntry(.int(SUITLabel.validate), encoded(.array(validate))),
            CBORMapEntry(.int(SUITLabel.install), encoded(.array(install))),
            CBORMapEntry(.int(SUITLabel.text), encoded(text)),
        ])
        let manifestItem = CBOREncoder.encode(.bytes(CBOREncoder.encode(suitManifest)))
        let digest = CBOREncoder.encode(.array([.int(SUITLabel.sha256), .bytes(OpenSSLSHA256.hash(manifestItem))]))
        let signature = try COSESign1.sign(payload: digest, key: key, detached: true)
        let wrapper = CBOREncoder.encode(.array([.bytes(digest), .bytes(signature)]))
        // The manifest's bstr as encoded above is the exact item the digest covers.
        return CBOREncoder.encode(.tagged(SUITLabel.envelopeTag, .map([
            CBORMapEntry(.int(SUITLabel.authenticationWrapper), .bytes(wrapper)),
            CBORMapEntry(.int(SUITLabel.manifest), .bytes(CBOREncoder.encode(suitManifest))),
        ])))
    }
}
