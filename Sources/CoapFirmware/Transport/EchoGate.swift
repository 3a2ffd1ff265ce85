import CoapFirmwareCore
import CoapFirmwareDevice

/// Amplification control with RFC 9175 Echo: a peer address that has not
/// shown it receives our answers gets a 4.01 carrying an Echo value (about
/// 14 bytes for a request of 20 or more) instead of the response (up to
/// 49 times the request: `/.well-known/core`, 18.7 times: an image block).
/// The value is keyed to the address and a one-minute window, so checking
/// it needs no state; an address that echoes it is trusted until it has been
/// quiet for `trustSeconds`.
struct EchoGate {
    enum Decision: Equatable {
        case serve
        /// Answer 4.01 Unauthorized with this Echo option value.
        case challenge([UInt8])
    }

    let secret: [UInt8]
    let trustSeconds: Int64
    let capacity: Int
    private var trusted: [String: Int64] = [:]

    init(secret: [UInt8], trustSeconds: Int64 = 600, capacity: Int = 4096) {
        (self.secret, self.trustSeconds, self.capacity) = (secret, trustSeconds, capacity)
    }

    /// The Echo value for `address` in the minute of `now`.
    func value(for address: String, at now: Int64) -> [UInt8] {
        Array(OpenSSLSHA256.hash(secret + Array("\(now / 60)|\(address)".utf8)).prefix(8))
    }

    mutating func check(address: String, echo: [UInt8]?, now: Int64) -> Decision {
        if let since = trusted[address], now - since < trustSeconds {
            trusted[address] = now  // trust slides while the address keeps asking
            return .serve
        }
        if let echo, echo == value(for: address, at: now) || echo == value(for: address, at: now - 60) {
            if trusted.count >= capacity {
                trusted = trusted.filter { now - $0.value < trustSeconds }
                if trusted.count >= capacity, let oldest = trusted.min(by: { $0.value < $1.value }) { trusted[oldest.key] = nil }
            }
            trusted[address] = now
            return .serve
        }
        return .challenge(value(for: address, at: now))
    }
}
