import CoapFirmwareDevice

extension FirmwareVersion: CustomStringConvertible {
    /// Parses `A.B.C` with the device's byte rule; nil for anything else.
    public init?(_ text: String) {
        guard let v = Array(text.utf8).withUnsafeBytes({ FirmwareVersion(bytes: $0) }) else { return nil }
        self = v
    }

    public var description: String { "\(major).\(minor).\(revision)" }
}
