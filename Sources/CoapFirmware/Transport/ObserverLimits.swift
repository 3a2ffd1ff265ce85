/// Bounds on Observe registrations (RFC 7641). libcoap keeps every session
/// that holds an observer, and never recycles it while it does, so one
/// source registering from many ports could hold sessions without end. At
/// most `perAddress` observing sessions per peer address and `total` in all:
/// a registration past a bound evicts the oldest (of that address first),
/// whose session then becomes idle and can be recycled. No I/O: the server
/// drops the evicted sessions' observers.
struct ObserverLimits {
    let perAddress: Int
    let total: Int
    private var entries: [UInt: (address: String, order: UInt64)] = [:]
    private var next: UInt64 = 0

    init(perAddress: Int, total: Int) {
        precondition(perAddress >= 1 && total >= 1)
        (self.perAddress, self.total) = (perAddress, total)
    }

    var count: Int { entries.count }

    func contains(session: UInt) -> Bool { entries[session] != nil }

    /// `session` (from `address`) now observes something; returns the sessions to evict.
    mutating func register(session: UInt, address: String) -> [UInt] {
        next += 1
        let known = entries[session] != nil
        entries[session] = (address, known ? entries[session]!.order : next)
        var evicted: [UInt] = []
        let fromAddress = entries.filter { $0.value.address == address && $0.key != session }.sorted { $0.value.order < $1.value.order }
        for (old, _) in fromAddress.prefix(max(0, fromAddress.count + 1 - perAddress)) {
            entries[old] = nil
            evicted.append(old)
        }
        if entries.count > total {
            let oldest = entries.filter { $0.key != session }.sorted { $0.value.order < $1.value.order }
            for (old, _) in oldest.prefix(entries.count - total) {
                entries[old] = nil
                evicted.append(old)
            }
        }
        return evicted
    }

    /// The session is gone (libcoap freed it).
    mutating func remove(session: UInt) { entries[session] = nil }
}
