"""The fault relay's bottleneck link (issue #11 item 1): --rate, --overhead,
--queue per direction and the named profiles, over real UDP on loopback.

A burst of datagrams is sent at once through the relay to a plain UDP sink;
what reaches the sink, in which order and how far apart, and the relay's
stats line (drops by cause, bytes carried) are checked. Intervals are lower
bounds only (a slow machine delivers later, never earlier).
"""

from __future__ import annotations

import json
import socket
import time

from support.netns import relay_stats, start_relay
from support.ports import free_udp_port

HOST = "127.0.0.1"


def start(procs, *args):
    listen = free_udp_port()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((HOST, 0))
    relay = start_relay(procs.start, None, listen, sink.getsockname()[1], seed=1, extra=args)
    return relay, listen, sink


def params(relay) -> dict[str, dict]:
    """The per-direction parameters of the relay's start line."""
    line = next(l for l in relay.log().splitlines() if l.startswith("relay "))
    words = line.split(" ", 6)[-1]  # 'up {...} down {...}'
    up, down = words.split(" down ")
    return {"up": json.loads(up[len("up "):]), "down": json.loads(down)}


def receive(sink: socket.socket, want: int, timeout: float) -> list[tuple[float, bytes]]:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and (left := deadline - time.monotonic()) > 0:
        sink.settimeout(left)
        try:
            data = sink.recv(65536)
        except socket.timeout:
            break
        got.append((time.monotonic(), data))
    return got


def test_bottleneck_sends_at_the_rate_and_drops_the_tail(procs):
    """16 kbit/s, 40 bytes of overhead, a 2000-byte queue: 20 datagrams of
    460 bytes (500 on the link, 0.25 s each) sent at once. The first goes on
    the link, four wait (2000 bytes), the other 15 are dropped by the queue:
    exactly datagrams 0-4 arrive, in order, each at least 0.25 s after the
    one before; nothing more comes."""
    relay, listen, sink = start(procs, "--rate", 16000, "--overhead", 40, "--queue", 2000)
    with sink, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        sent = time.monotonic()
        for i in range(20):
            client.sendto(bytes([i]) * 460, (HOST, listen))
        got = receive(sink, 20, 3.0)
    relay.stop()
    indices = [data[0] for _, data in got]
    assert indices == [0, 1, 2, 3, 4], f"datagrams through the bottleneck: {indices}"
    times = [sent] + [t for t, _ in got]
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:])]
    assert all(g >= 0.24 for g in gaps), f"arrival gaps {gaps} s: each datagram takes 0.25 s on a 16 kbit/s link"
    stats = relay_stats(relay.log())
    assert stats is not None, relay.describe()
    up = stats["up"]
    assert (up["received"], up["forwarded"], up["dropped"], up["dropped_queue"], up["dropped_loss"]) == (20, 5, 15, 15, 0), up
    assert up["link_bytes"] == 5 * 500 and up["bytes_forwarded"] == 5 * 460, up
    assert up["queue_peak_bytes"] == 2000, up
    assert stats["down"]["link_bytes"] == 0, stats["down"]


def test_profiles_and_overrides(procs):
    """--profile lowpan gives both directions 100 kbit/s, 50 ms, 40 B
    overhead and a 4 KiB queue; an option overrides one field of one
    direction; lossy-lowpan adds 5 % loss; nbiot is 30 kbit/s and 500 ms.
    Loss is counted apart from queue drops."""
    relay, _, sink = start(procs, "--profile", "lowpan", "--down-queue", 1024)
    sink.close()
    p = params(relay)
    relay.stop()
    want = {"rate": 100000, "delay": 0.05, "overhead": 40, "queue": 4096, "loss": 0.0}
    assert {k: p["up"][k] for k in want} == want, p
    assert {k: p["down"][k] for k in want} == dict(want, queue=1024), p

    relay, _, sink = start(procs, "--profile", "nbiot")
    sink.close()
    p = params(relay)
    relay.stop()
    assert (p["up"]["rate"], p["up"]["delay"], p["down"]["rate"], p["down"]["delay"]) == (30000, 0.5, 30000, 0.5), p

    relay, listen, sink = start(procs, "--profile", "lossy-lowpan", "--queue", 0, "--delay", 0)
    assert params(relay)["up"]["loss"] == 0.05
    with sink, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for i in range(400):
            client.sendto(i.to_bytes(2, "big") * 10, (HOST, listen))
            time.sleep(0.002)  # faster than the link (4.8 ms each): they queue, and --queue 0 drops none
        got = receive(sink, 400, 3.0)
    relay.stop()
    up = relay_stats(relay.log())["up"]
    assert up["dropped_loss"] == 400 - len(got) and up["dropped_queue"] == 0, (len(got), up)
    assert 5 <= up["dropped_loss"] <= 40, f"5 % loss of 400 datagrams dropped {up['dropped_loss']}"
