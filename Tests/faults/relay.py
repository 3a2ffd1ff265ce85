#!/usr/bin/env python3
"""A user-space netem for UDP: loss, delay, duplication and reordering, and a
bottleneck link (rate, per-datagram overhead, drop-tail queue), per
direction, between CoAP clients and one upstream server.

The fault matrix (fault_matrix.py) always tries the kernel's `tc qdisc ...
netem` first; this relay is the fall-back for kernels without sch_netem
("Specified qdisc kind is unknown"). It runs inside the server's network
namespace:

    relay.py --listen 10.78.3.1:5690 --upstream 10.78.3.1:5683 \
             --loss 0.05 --delay 0.1 --dup 0.05 --reorder 0.05 --seed 7

Every datagram, in each direction ("up": client -> server, "down": server ->
client), goes through, in this order:

  loss      dropped with probability LOSS;
  dup       otherwise forwarded twice with probability DUP (both copies at
            the same time, like netem's `duplicate`);
  link      with --rate BITS_PER_S, each copy then crosses a bottleneck:
            it occupies the link for (its size + OVERHEAD bytes) x 8 / RATE
            seconds, after the copies before it (--overhead: lower-layer
            headers per datagram, e.g. 802.15.4 + 6LoWPAN). A copy that
            arrives while more than QUEUE bytes (payload + overhead) wait
            for the link is dropped (--queue, drop-tail; 0: no limit). The
            steps below start when it has left the link;
  reorder   each copy is, with probability REORDER, held back: it is sent
            right after the next datagram of the same direction, or when an
            extra random 2..3 x DELAY has passed (2..3 x --reorder-unit when
            DELAY is 0), whichever comes first;
  delay     everything else leaves DELAY seconds after it arrived (after it
            left the link, with --rate).

`--loss/--delay/--dup/--reorder/--rate/--overhead/--queue` set both
directions; `--up-loss`, `--down-rate`, ... override one direction.
`--profile` starts from a named link, which the options then override:

  lowpan        100 kbit/s, 50 ms each way, 40 B overhead, 4 KiB queue
                (6LoWPAN over 802.15.4, one hop to the border router)
  lossy-lowpan  the same with 5 % loss each way
  nbiot         30 kbit/s, 500 ms each way, 40 B overhead, 8 KiB queue

Each client address gets its own
upstream socket (like a NAT), so a client's new sessions on new local ports
stay apart; with `--uplink-idle S` (a long run with many short-lived
clients, e.g. Tests/soak/soak.py) a client address that sent and received
nothing for S seconds is forgotten, its upstream socket closed, like a NAT's
idle mapping. The random generator is seeded (`--seed`) and printed, so a run
can be replayed.

On SIGTERM/SIGINT it prints one line

    relay stats {"up": {...}, "down": {...}, ...}

with, per direction: received, forwarded (datagrams sent, duplicates and
released held ones included), dropped (all causes), dropped_loss,
dropped_queue (the bottleneck's queue was full), link_bytes (bytes carried
over the bottleneck, overhead included), queue_peak_bytes, duplicated,
reordered (held back),
released_after_next / released_by_timer, bytes_forwarded, and coap_repeats
(received CoAP messages whose Message ID this client endpoint already used
in that direction: for "up", the client's retransmissions as they reach the
relay, before any loss). "clients" counts the client addresses seen,
"clients_open" those still mapped at exit. `last_down_sent` / `last_up_sent` are
time.monotonic() stamps (CLOCK_MONOTONIC, comparable across processes).
`--stats-file` writes the same JSON to a file. (Tests read that line with
support.netns.relay_stats, and netem's arguments for the same faults come
from support.netns.netem_args.)
"""

from __future__ import annotations

import argparse
import collections
import heapq
import itertools
import json
import random
import selectors
import signal
import socket
import sys
import time

DIRECTIONS = ("up", "down")

# Named links for --profile: what each direction gets unless an option says otherwise.
PROFILES = {
    "lowpan": {"rate": 100_000, "delay": 0.05, "overhead": 40, "queue": 4096},
    "lossy-lowpan": {"rate": 100_000, "delay": 0.05, "overhead": 40, "queue": 4096, "loss": 0.05},
    "nbiot": {"rate": 30_000, "delay": 0.5, "overhead": 40, "queue": 8192},
}
FAULTS = ("loss", "delay", "dup", "reorder", "rate", "overhead", "queue")


def split_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: a probability is 0..1")
    return value


def seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: seconds must be >= 0")
    return value


def count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text}: expected a whole number >= 0")
    return int(text)


class Direction:
    def __init__(self, name: str, loss: float, delay: float, dup: float, reorder: float, reorder_unit: float,
                 rate: int = 0, overhead: int = 0, queue: int = 0):
        self.name = name
        self.loss, self.delay, self.dup, self.reorder = loss, delay, dup, reorder
        self.rate, self.overhead, self.queue = rate, overhead, queue
        self.reorder_unit = reorder_unit
        self.held: dict[int, tuple] = {}  # id -> (sock, data, dest)
        self.seen: dict[tuple, set] = {}  # endpoint -> (type, message id) already received
        self.link_free_at = 0.0  # when the bottleneck has sent everything admitted so far
        self.waiting: collections.deque = collections.deque()  # (starts sending at, bytes) not yet on the link
        self.waiting_bytes = 0
        self.stats = {"received": 0, "forwarded": 0, "dropped": 0, "dropped_loss": 0, "dropped_queue": 0,
                      "duplicated": 0, "reordered": 0, "released_after_next": 0, "released_by_timer": 0,
                      "bytes_forwarded": 0, "link_bytes": 0, "queue_peak_bytes": 0, "coap_repeats": 0}
        self.last_sent: float | None = None

    def params(self) -> dict:
        return {"loss": self.loss, "delay": self.delay, "dup": self.dup, "reorder": self.reorder,
                "rate": self.rate, "overhead": self.overhead, "queue": self.queue}

    def cross_link(self, now: float, size: int) -> float | None:
        """When a datagram of ``size`` bytes arriving at ``now`` has left the
        bottleneck (``now`` without --rate); None when the queue drops it."""
        if not self.rate:
            return now
        while self.waiting and self.waiting[0][0] <= now:  # started sending: no longer queued
            self.waiting_bytes -= self.waiting.popleft()[1]
        wire = size + self.overhead
        start = max(now, self.link_free_at)
        if start > now:
            if self.queue and self.waiting_bytes + wire > self.queue:
                self.stats["dropped"] += 1
                self.stats["dropped_queue"] += 1
                return None
            self.waiting.append((start, wire))
            self.waiting_bytes += wire
            self.stats["queue_peak_bytes"] = max(self.stats["queue_peak_bytes"], self.waiting_bytes)
        self.link_free_at = start + wire * 8 / self.rate
        self.stats["link_bytes"] += wire
        return self.link_free_at


def coap_message_id(data: bytes) -> tuple[int, int] | None:
    """(type, Message ID) of a CoAP-over-UDP message, None if it is not one."""
    if len(data) < 4 or data[0] >> 6 != 1 or data[0] & 0x0F > 8:
        return None
    return (data[0] >> 4) & 3, int.from_bytes(data[2:4], "big")


class Relay:
    def __init__(self, listen, upstream, directions: dict[str, Direction], seed: int, stats_file: str | None,
                 uplink_idle: float = 0.0):
        self.rng = random.Random(seed)
        self.seed = seed
        self.listen, self.upstream = listen, upstream
        self.dirs = directions
        self.stats_file = stats_file
        self.lsock = socket.socket(socket.AF_INET6 if ":" in listen[0] else socket.AF_INET, socket.SOCK_DGRAM)
        self.lsock.bind(listen)
        self.lsock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.uplinks: dict[tuple, socket.socket] = {}
        self.uplink_idle = uplink_idle
        self.last_active: dict[tuple, float] = {}  # client address -> last datagram either way
        self.next_sweep = time.monotonic() + uplink_idle
        self.clients_seen = 0
        self.queue: list = []  # (due, seq, kind, direction, payload)
        self.seq = itertools.count()
        self.hold_ids = itertools.count()
        self.stop = False
        self.started = time.monotonic()

    # -- scheduling -------------------------------------------------------

    def _push(self, due: float, kind: str, direction: Direction, payload):
        heapq.heappush(self.queue, (due, next(self.seq), kind, direction.name, payload))

    def on_datagram(self, d: Direction, sock, data: bytes, dest, endpoint):
        now = time.monotonic()
        d.stats["received"] += 1
        mid = coap_message_id(data)
        if mid is not None:
            mtype, number = mid
            # "up": only CON/NON requests repeat a Message ID on retransmission;
            # "down": a repeated ACK/response means the server answered a duplicate.
            if d.name == "down" or mtype in (0, 1):
                key = (mtype if d.name == "up" else 0, number)
                seen = d.seen.setdefault(endpoint, set())
                if key in seen:
                    d.stats["coap_repeats"] += 1
                else:
                    seen.add(key)
        if self.rng.random() < d.loss:
            d.stats["dropped"] += 1
            d.stats["dropped_loss"] += 1
            return
        copies = 1
        if d.dup and self.rng.random() < d.dup:
            copies = 2
            d.stats["duplicated"] += 1
        for _ in range(copies):
            left = d.cross_link(now, len(data))
            if left is None:
                continue
            if d.reorder and self.rng.random() < d.reorder:
                d.stats["reordered"] += 1
                hid = next(self.hold_ids)
                d.held[hid] = (sock, data, dest)
                extra = self.rng.uniform(2.0, 3.0) * (d.delay if d.delay > 0 else d.reorder_unit)
                self._push(left + d.delay + extra, "release", d, hid)
            else:
                self._push(left + d.delay, "send", d, (sock, data, dest))

    def _send(self, d: Direction, sock, data: bytes, dest):
        try:
            if dest is None:
                sock.send(data)
            else:
                sock.sendto(data, dest)
        except OSError:
            return
        d.stats["forwarded"] += 1
        d.stats["bytes_forwarded"] += len(data)
        d.last_sent = time.monotonic()

    def run_due(self):
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            _, _, kind, dname, payload = heapq.heappop(self.queue)
            d = self.dirs[dname]
            if kind == "send":
                self._send(d, *payload)
                # Whatever was held back in this direction goes after it.
                for hid in sorted(d.held):
                    self._send(d, *d.held.pop(hid))
                    d.stats["released_after_next"] += 1
            elif payload in d.held:  # "release": the hold ran out first
                self._send(d, *d.held.pop(payload))
                d.stats["released_by_timer"] += 1

    def forget_idle(self):
        """With --uplink-idle: drops the client addresses quiet for that long
        (datagrams still queued for them are sent on a closed socket: lost)."""
        now = time.monotonic()
        if not self.uplink_idle or now < self.next_sweep:
            return
        self.next_sweep = now + min(self.uplink_idle, 1.0)
        for addr in [a for a, t in self.last_active.items() if now - t > self.uplink_idle]:
            del self.last_active[addr]
            uplink = self.uplinks.pop(addr)
            self.sel.unregister(uplink)
            uplink.close()
            for d in self.dirs.values():
                d.seen.pop(addr, None)

    # -- main loop --------------------------------------------------------

    def serve(self) -> int:
        def on_term(*_):
            self.stop = True

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        print(f"relay {self.listen[0]}:{self.listen[1]} -> {self.upstream[0]}:{self.upstream[1]} seed {self.seed} "
              + " ".join(f"{n} {json.dumps(d.params())}" for n, d in self.dirs.items()), flush=True)
        up, down = self.dirs["up"], self.dirs["down"]
        while not self.stop:
            timeout = max(0.0, self.queue[0][0] - time.monotonic()) if self.queue else 0.5
            try:
                events = self.sel.select(min(timeout, 0.5))
            except InterruptedError:
                continue
            for key, _ in events:
                sock = key.fileobj
                try:
                    data, addr = sock.recvfrom(65535)
                except (BlockingIOError, ConnectionRefusedError, OSError):
                    continue
                if key.data is None:  # from a client
                    uplink = self.uplinks.get(addr)
                    if uplink is None:
                        uplink = socket.socket(self.lsock.family, socket.SOCK_DGRAM)
                        uplink.setblocking(False)
                        uplink.connect(self.upstream)
                        self.uplinks[addr] = uplink
                        self.clients_seen += 1
                        self.sel.register(uplink, selectors.EVENT_READ, addr)
                    self.last_active[addr] = time.monotonic()
                    self.on_datagram(up, uplink, data, None, addr)
                else:  # from the server, back to the client at key.data
                    self.last_active[key.data] = time.monotonic()
                    self.on_datagram(down, self.lsock, data, key.data, key.data)
            self.run_due()
            self.forget_idle()
        stats = self.report()
        print("relay stats " + json.dumps(stats), flush=True)
        if self.stats_file:
            with open(self.stats_file, "w") as f:
                json.dump(stats, f)
        return 0

    def report(self) -> dict:
        out = {name: dict(d.stats, held_at_exit=len(d.held), **d.params()) for name, d in self.dirs.items()}
        out["seed"] = self.seed
        out["clients"] = self.clients_seen
        out["clients_open"] = len(self.uplinks)
        out["last_up_sent"] = self.dirs["up"].last_sent
        out["last_down_sent"] = self.dirs["down"].last_sent
        out["started"] = self.started
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True, type=split_hostport, help="HOST:PORT the clients send to")
    parser.add_argument("--upstream", required=True, type=split_hostport, help="the server's HOST:PORT")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--reorder-unit", type=seconds, default=0.5,
                        help="with no delay, a reordered datagram waits at most 2..3 x this (default 0.5 s)")
    parser.add_argument("--stats-file", help="also write the final counters (JSON) here")
    parser.add_argument("--uplink-idle", type=seconds, default=0.0,
                        help="forget a client address quiet for this many seconds (default 0: never)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="start from a named link (see above)")
    for fault, kind, text in (("loss", probability, "drop probability"), ("delay", seconds, "delay in seconds"),
                              ("dup", probability, "duplication probability"),
                              ("reorder", probability, "reordering probability"),
                              ("rate", count, "bottleneck rate in bits/s (0: none)"),
                              ("overhead", count, "lower-layer bytes per datagram on the bottleneck"),
                              ("queue", count, "bytes that may wait for the bottleneck (0: no limit)")):
        parser.add_argument(f"--{fault}", type=kind, default=None, help=f"{text}, both directions (default 0)")
        for name in DIRECTIONS:
            parser.add_argument(f"--{name}-{fault}", type=kind, default=None, help=f"{text}, {name} only")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    profile = PROFILES.get(args.profile, {})
    dirs = {}
    for name in DIRECTIONS:
        value = {}
        for f in FAULTS:
            for v in (getattr(args, f"{name}_{f}"), getattr(args, f), profile.get(f), 0):
                if v is not None:
                    value[f] = v
                    break
        dirs[name] = Direction(name, reorder_unit=args.reorder_unit, **value)
    return Relay(args.listen, args.upstream, dirs, seed, args.stats_file, args.uplink_idle).serve()


if __name__ == "__main__":
    sys.exit(main())
