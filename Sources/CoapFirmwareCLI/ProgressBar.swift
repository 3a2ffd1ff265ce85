import CoapFirmware
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on a terminal: bytes, percent, rate, ETA.
public final class ProgressBar {
    public let enabled: Bool
    private var started = 0.0
    private var lastDraw = 0.0
    private var drew = false

    public init(enabled: Bool) { self.enabled = enabled }

    private func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    public func update(_ p: Progress) {
        guard enabled else { return }
        let t = now()
        if started == 0 { started = t }
        guard t - lastDraw >= 0.1 || p.done == p.total else { return }
        lastDraw = t
        let fraction = p.total == 0 ? 1 : Double(p.done) / Double(p.total)
        let rate = Double(p.done) / max(t - started, 0.001)
        let eta = rate > 0 ? Double(p.total - p.done) / rate : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = "\r\(p.component) [\(bar)] \(p.done)/\(p.total) B \(Int(fraction * 100))% \(Int(rate / 1024)) KiB/s ETA \(Int(eta)) s   "
        // write(2) to fd 1: unbuffered, so no shared FILE* state.
        _ = line.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
        drew = true
    }

    public func finish() {
        if drew { print("") }
    }
}
