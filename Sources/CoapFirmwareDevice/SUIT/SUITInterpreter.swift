/// The SUIT commands an updater runs (issue #14), over an authenticated
/// manifest, with no allocation: the subset the specification's examples
/// 0, 1, 2, 3 and 5 use.
///
/// - conditions: vendor-identifier (1), class-identifier (2), image-match
///   (3), component-slot (5);
/// - directives: set-component-index (12), try-each (15),
///   override-parameters (20), fetch (21);
/// - parameters: vendor-id (1), class-id (2), image-digest (3),
///   component-slot (5), image-size (14), uri (21).
///
/// Every condition and directive but set-component-index, try-each and
/// override-parameters takes a reporting policy (an unsigned integer).
/// The sequences an update runs are the shared sequence, payload-fetch,
/// install and validate; anything else in them (copy, swap, write,
/// run-sequence, invoke, custom or unknown commands and parameters) is
/// refused as `bad-manifest` naming the command, never skipped. Load and
/// invoke run at boot, not at install: they are checked for form only.
///
/// Running the sequences gives a `SUITPlan`: per component the image to
/// fetch (uri, digest, size) and whether its image must match. Conditions
/// on the vendor and class ids compare with the device's (RFC 9124 UUIDs);
/// image-match is recorded, and checked by whoever has the bytes (the
/// download's digest check, `verify --image`).
public enum SUITInterpreter {
    public enum Command {
        public static let vendorIdentifier: Int64 = 1
        public static let classIdentifier: Int64 = 2
        public static let imageMatch: Int64 = 3
        public static let componentSlot: Int64 = 5
        public static let checkContent: Int64 = 6
        public static let setComponentIndex: Int64 = 12
        public static let abort: Int64 = 14
        public static let tryEach: Int64 = 15
        public static let write: Int64 = 18
        public static let setParameters: Int64 = 19
        public static let overrideParameters: Int64 = 20
        public static let fetch: Int64 = 21
        public static let copy: Int64 = 22
        public static let invoke: Int64 = 23
        public static let deviceIdentifier: Int64 = 24
        public static let swap: Int64 = 31
        public static let runSequence: Int64 = 32
    }

    public enum Parameter {
        public static let vendorID: Int64 = 1
        public static let classID: Int64 = 2
        public static let imageDigest: Int64 = 3
        public static let componentSlot: Int64 = 5
        public static let imageSize: Int64 = 14
        public static let uri: Int64 = 21
    }

    /// try-each inside try-each: at most this deep.
    static let maxDepth = 2

    /// Checks that `sequence` is a command list: pairs of a known command and
    /// an argument of its kind (a reporting policy, a map, an index, a list
    /// of bstr-wrapped sequences). Custom commands (-256 and lower) pass here
    /// and are refused when run.
    static func checkForm(_ bytes: UnsafeRawBufferPointer, _ sequence: Range<Int>, member: SUITText, depth: Int) -> SUITFailure? {
        var r = CBORReader(bytes, range: sequence)
        var whole = r
        guard whole.skip() == nil, whole.isAtEnd, case .success(.array(let count)) = r.next(), count % 2 == 0 else {
            return .malformed(member, "expected a list of command and argument pairs")
        }
        for _ in 0..<(count / 2) {
            guard case .success(let c) = r.next(), let command = c.int64 else {
                return .malformed(member, "a command must be an integer")
            }
            let argumentStart = r.offset
            guard case .success(let argument) = r.next() else { return .malformed(member, "truncated", number: command) }
            switch command {
            case Command.vendorIdentifier, Command.classIdentifier, Command.imageMatch, Command.componentSlot,
                 Command.checkContent, Command.abort, Command.deviceIdentifier, Command.write, Command.fetch,
                 Command.copy, Command.invoke, Command.swap:
                guard case .unsigned = argument else {
                    return .malformed(member, "the command's reporting policy is missing", number: command)
                }
            case Command.setComponentIndex:
                switch argument {
                case .unsigned, .bool(true): break
                case .array(let n):
                    for _ in 0..<n {
                        guard case .success(.unsigned) = r.next() else { return .malformed(member, "bad component index", number: command) }
                    }
                default: return .malformed(member, "bad component index", number: command)
                }
            case Command.overrideParameters, Command.setParameters:
                guard case .map = argument else { return .malformed(member, "expected a parameter map", number: command) }
                r = CBORReader(bytes, range: argumentStart..<r.end)
                if r.skip() != nil { return .malformed(member, "malformed parameters", number: command) }
            case Command.tryEach:
                guard depth < maxDepth, case .array(let n) = argument else {
                    return .malformed(member, "expected a list of sequences (nested at most twice)", number: command)
                }
                for _ in 0..<n {
                    switch r.next() {
                    case .success(.bytes(let branch)):
                        if let f = checkForm(bytes, branch, member: member, depth: depth + 1) { return f }
                    case .success(.null): break
                    default: return .malformed(member, "a try-each branch must be a bstr-wrapped sequence", number: command)
                    }
                }
            case Command.runSequence:
                guard case .bytes(let inner) = argument, depth < maxDepth else {
                    return .malformed(member, "expected a bstr-wrapped sequence", number: command)
                }
                if let f = checkForm(bytes, inner, member: member, depth: depth + 1) { return f }
            case ...(-256):
                r = CBORReader(bytes, range: argumentStart..<r.end)
                if r.skip() != nil { return .malformed(member, "malformed argument", number: command) }
            default:
                return .malformed(member, "unknown command", number: command)
            }
        }
        return nil
    }

    /// Runs the sequences an update runs, in order: shared, payload-fetch,
    /// install, validate.
    public static func plan(_ bytes: UnsafeRawBufferPointer, manifest: SUITManifestView, device: SUITDevice)
        -> Result<SUITPlan, SUITFailure> {
        // A severed sequence that was left out cannot run: nothing of it may be skipped.
        if manifest.installMissing { return .failure(.malformed("suit-install", "severed and not delivered")) }
        if manifest.payloadFetchMissing { return .failure(.malformed("suit-payload-fetch", "severed and not delivered")) }
        var state = State(count: manifest.componentCount)
        func run(_ sequence: Range<Int>?, _ member: SUITText) -> SUITFailure? {
            guard let sequence else { return nil }
            return execute(bytes, sequence, member: member, state: &state, device: device, depth: 0)
        }
        // The shared sequence runs before each sequence (draft-33 §8.4.5), or once when there is none.
        func withShared(_ sequence: Range<Int>?, _ member: SUITText) -> SUITFailure? {
            guard sequence != nil else { return nil }
            return run(manifest.sharedSequence, "suit-shared-sequence") ?? run(sequence, member)
        }
        let sequences = manifest.payloadFetch != nil || manifest.install != nil || manifest.validate != nil
        if let f = (sequences ? nil : run(manifest.sharedSequence, "suit-shared-sequence"))
            ?? withShared(manifest.payloadFetch, "suit-payload-fetch") ?? withShared(manifest.install, "suit-install")
            ?? withShared(manifest.validate, "suit-validate") { return .failure(f) }
        // RFC 9124: a device checks both identities of what it installs.
        if device.vendorID != nil || device.classID != nil {
            for i in 0..<manifest.componentCount where state.components[i].fetch || state.components[i].imageMatch {
                let c = state.components[i]
                guard (device.vendorID == nil || c.vendorChecked), (device.classID == nil || c.classChecked) else {
                    return .failure(.malformed("suit-shared-sequence", "no vendor-identifier and class-identifier condition held for a component",
                                               number: Int64(i), kind: .member))
                }
            }
        }
        return .success(SUITPlan(components: state.components, count: manifest.componentCount,
                                 sequenceNumber: manifest.sequenceNumber))
    }

    struct State {
        var components = InlineArray<4, SUITComponent>(repeating: SUITComponent())
        /// The components the next commands apply to (bit i: component i).
        var selected: UInt8 = 1
        let count: Int

        init(count: Int) { self.count = count }

        func isSelected(_ i: Int) -> Bool { selected & (1 << UInt8(i)) != 0 }
    }

    static func execute(_ bytes: UnsafeRawBufferPointer, _ sequence: Range<Int>, member: SUITText,
                        state: inout State, device: SUITDevice, depth: Int) -> SUITFailure? {
        var r = CBORReader(bytes, range: sequence)
        guard case .success(.array(let count)) = r.next() else { return .malformed(member, "expected a command list") }
        for _ in 0..<(count / 2) {
            guard case .success(let c) = r.next(), let command = c.int64 else { return .malformed(member, "bad command") }
            guard case .success(let argument) = r.next() else { return .malformed(member, "truncated") }
            switch command {
            case Command.setComponentIndex:
                switch argument {
                case .unsigned(let i):
                    guard i < UInt64(state.count) else { return .malformed(member, "component index out of range", number: command) }
                    state.selected = 1 << UInt8(i)
                case .bool(true):
                    state.selected = UInt8((1 << state.count) - 1)
                case .array(let n):
                    guard n > 0 else { return .malformed(member, "an empty component index list", number: command) }
                    var mask: UInt8 = 0
                    for _ in 0..<n {
                        guard case .success(.unsigned(let i)) = r.next(), i < UInt64(state.count) else {
                            return .malformed(member, "component index out of range", number: command)
                        }
                        mask |= 1 << UInt8(i)
                    }
                    state.selected = mask
                default: return .malformed(member, "bad component index", number: command)
                }
            case Command.overrideParameters:
                guard case .map(let n) = argument else { return .malformed(member, "expected a parameter map", number: command) }
                for _ in 0..<n {
                    guard case .success(let k) = r.next(), let parameter = k.int64 else { return .malformed(member, "bad parameter") }
                    let valueStart = r.offset
                    guard case .success(let value) = r.next() else { return .malformed(member, "truncated parameter") }
                    // One slot per parameter (`SUITComponent.Field`), set on every selected component.
                    var field = SUITComponent.Field.vendorID
                    var range = 0..<0
                    var number: UInt64 = 0
                    switch (parameter, value) {
                    case (Parameter.vendorID, .bytes(let id)) where id.count == 16: (field, range) = (.vendorID, id)
                    case (Parameter.classID, .bytes(let id)) where id.count == 16: (field, range) = (.classID, id)
                    case (Parameter.imageDigest, .bytes(let wrapped)):
                        switch SUITEnvelopeView.readDigest(bytes, wrapped, member: member) {
                        case .failure(let f): return f
                        case .success(let (_, digest)): (field, range) = (.digest, digest)
                        }
                    case (Parameter.uri, .text(let uri)): (field, range) = (.uri, uri)
                    case (Parameter.imageSize, .unsigned(let size)): (field, number) = (.size, size)
                    case (Parameter.componentSlot, .unsigned(let slot)): (field, number) = (.slot, slot)
                    default:
                        return .malformed(member, "parameter not supported (or mistyped)", number: parameter, kind: .parameter)
                    }
                    for i in 0..<state.count where state.isSelected(i) { state.components[i].set(field, range: range, number: number) }
                    r = CBORReader(bytes, range: valueStart..<r.end)
                    _ = r.skip()
                }
            case Command.vendorIdentifier, Command.classIdentifier:
                let vendor = command == Command.vendorIdentifier
                guard let expected = vendor ? device.vendorID : device.classID else { continue }
                for i in 0..<state.count where state.isSelected(i) {
                    guard let id = vendor ? state.components[i].vendorID : state.components[i].classID, bytesEqual(bytes, id, expected) else {
                        return SUITFailure(.wrongDevice, member, vendor ? "the vendor id is not this device's" : "the class id is not this device's",
                                           number: command)
                    }
                    if vendor { state.components[i].vendorChecked = true } else { state.components[i].classChecked = true }
                }
            case Command.componentSlot:
                for i in 0..<state.count where state.isSelected(i) && state.components[i].slot != device.slot {
                    return SUITFailure(.wrongDevice, member, "the component slot is not this device's", number: command)
                }
            case Command.imageMatch, Command.fetch:
                let fetch = command == Command.fetch
                for i in 0..<state.count where state.isSelected(i) {
                    guard state.components[i].digest != nil, !fetch || state.components[i].uri != nil else {
                        return .malformed(member, fetch ? "fetch needs a uri and an image-digest" : "image-match without an image-digest",
                                          number: command)
                    }
                    if fetch { state.components[i].fetch = true } else { state.components[i].imageMatch = true }
                }
            case Command.tryEach:
                guard case .array(let n) = argument else { return .malformed(member, "bad try-each", number: command) }
                var chosen = false
                var lastFailure: SUITFailure?
                for _ in 0..<n {
                    let branch = r.next()
                    guard !chosen else { continue }
                    switch branch {
                    case .success(.bytes(let inner)):
                        var attempt = state
                        if let f = execute(bytes, inner, member: member, state: &attempt, device: device, depth: depth + 1) {
                            // A failed condition tries the next branch; a malformed branch is refused.
                            guard f.result == .wrongDevice else { return f }
                            lastFailure = f
                        } else {
                            state = attempt
                            chosen = true
                        }
                    case .success(.null):
                        chosen = true  // an empty branch: nothing to do
                    default:
                        return .malformed(member, "bad try-each branch", number: command)
                    }
                }
                if !chosen { return lastFailure ?? SUITFailure(.wrongDevice, member, "no try-each branch applies", number: command) }
            default:
                return .malformed(member, "command not supported by this updater", number: command)
            }
        }
        return nil
    }
}

/// What the device compares the identity conditions with (nil: not checked,
/// as `verify` without `--manufacturer`/`--model` does), and the slot it
/// installs into.
public struct SUITDevice {
    public var vendorID: UnsafeRawBufferPointer?
    public var classID: UnsafeRawBufferPointer?
    public var slot: UInt64

    public init(vendorID: UnsafeRawBufferPointer?, classID: UnsafeRawBufferPointer?, slot: UInt64 = 0) {
        (self.vendorID, self.classID, self.slot) = (vendorID, classID, slot)
    }
}

/// One component as the sequences left it: ranges into the envelope, kept
/// compact (four ranges, two numbers, a bit per field present) because the
/// plan is copied for each try-each branch on a small stack.
public struct SUITComponent {
    enum Field: UInt8 { case vendorID, classID, digest, uri, size, slot }

    private var ranges = InlineArray<4, Range<Int>>(repeating: 0..<0)
    private var numbers = InlineArray<2, UInt64>(repeating: 0)
    private var present: UInt8 = 0
    /// A fetch directive ran for it: its image is downloaded from `uri`.
    public var fetch = false
    /// An image-match condition ran for it: its image must match `digest` (and `size`).
    public var imageMatch = false
    /// The vendor-identifier / class-identifier condition held for it (against the device's ids).
    public var vendorChecked = false
    public var classChecked = false

    public init() {}

    mutating func set(_ field: Field, range: Range<Int>, number: UInt64) {
        let i = Int(field.rawValue)
        if i < 4 { ranges[i] = range } else { numbers[i - 4] = number }
        present |= 1 << field.rawValue
    }

    private func range(_ field: Field) -> Range<Int>? { present & (1 << field.rawValue) != 0 ? ranges[Int(field.rawValue)] : nil }
    private func number(_ field: Field) -> UInt64? { present & (1 << field.rawValue) != 0 ? numbers[Int(field.rawValue) - 4] : nil }

    public var vendorID: Range<Int>? { range(.vendorID) }
    public var classID: Range<Int>? { range(.classID) }
    /// The SHA-256 bytes of its image-digest.
    public var digest: Range<Int>? { range(.digest) }
    public var uri: Range<Int>? { range(.uri) }
    public var size: UInt64? { number(.size) }
    public var slot: UInt64? { number(.slot) }
}

/// The outcome of `SUITInterpreter.plan`.
public struct SUITPlan {
    public var components: InlineArray<4, SUITComponent>
    public var count: Int
    public var sequenceNumber: UInt64
}
