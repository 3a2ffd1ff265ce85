#!/usr/bin/env python3
"""Downloads over emulated constrained links (issue #11): our `update` with
its window (the default) and with `--lock-step`, libcoap's
`coap-client-notls` and aiocoap's client, fetching the same image from the
same server (ours), through the fault relay's named link profiles
(Tests/faults/relay.py: lowpan = 100 kbit/s, 50 ms each way, 40 B of
lower-layer overhead per datagram, 4 KiB drop-tail queue; lossy-lowpan =
the same with 5 % loss each way; nbiot = 30 kbit/s, 500 ms each way).

Per profile, image size and block size, in ROUNDS rounds (the order of the
clients rotates each round; the cases run side by side, each through its
own relay), medians of: wall time; the capacity time
(payload + 40 B per block, at the link's rate: what the link could carry
the image in) and the efficiency (capacity ÷ wall); retransmissions per
request (Message IDs the relay saw again ÷ distinct requests); peak RSS
(GNU time). `update` also fetches and verifies a manifest, the peers only
the image. Every download's SHA-256 is checked; a wrong body counts as
failed.

Then: 4 devices updating at once through one `lowpan` relay (a shared
bottleneck): each must finish; aggregate efficiency and slowest ÷ fastest.
And plain loopback (no relay): the window against `--lock-step`.

    PYTHONPATH=Tests python3 bench/link_bench.py [--rounds 3] [--profiles lowpan lossy-lowpan nbiot] [--bin .build/release]
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import BIN, free_udp_port, publish, random_file, run_measured, sha256_file, table, wait_coap
from support import cli
from support.netns import relay_stats, start_relay
from support.procs import start_process

RATES = {"lowpan": 100_000, "lossy-lowpan": 100_000, "nbiot": 30_000}
CASES = {
    "lowpan": [(16 * 1024, 64), (128 * 1024, 256), (128 * 1024, 1024)],
    "lossy-lowpan": [(16 * 1024, 64), (128 * 1024, 256), (128 * 1024, 1024)],
    # Lock-step there needs a second per block.
    "nbiot": [(16 * 1024, 256)],
}
CLIENTS = ["update", "update --lock-step", "coap-client-notls", "aiocoap"]
AIOCOAP_FETCH = Path(__file__).with_name("aiocoap_fetch.py")
SHARED_DEVICES = 4
SHARED_CASE = (128 * 1024, 1024)
LOOPBACK_CASE = (8 * 1024 * 1024, 1024)


def capacity_s(size: int, block: int, rate: int) -> float:
    return (size + 40 * -(-size // block)) * 8 / rate


class Bench:
    def __init__(self, args):
        self.args = args
        self.client = str(args.bin / "coap-fw-client")
        self.server = str(args.bin / "coap-fw-server")
        self.work = Path(tempfile.mkdtemp(prefix="coapfw-link-"))
        self.procs = []
        self.images = {}
        self.lock = threading.Lock()

    def start(self, name, argv, log=None):
        p = start_process(name, argv, log, check_exit=False)
        with self.lock:
            self.procs.append(p)
        return p

    def model(self, size, block):
        return f"l{size // 1024}k{block}"

    def setup(self):
        cases = {c for p in self.args.profiles for c in CASES[p]} | {SHARED_CASE, LOOPBACK_CASE}
        for size, block in sorted(cases):
            image = random_file(self.work / "src" / f"{self.model(size, block)}.bin", size, seed=size + block)
            self.repo, self.pub, _ = publish(self.work, [image], model=self.model(size, block))
            self.images[(size, block)] = image
        self.port = free_udp_port()
        self.start("server", [self.server, *cli.serve_args(self.repo, port=self.port, verbose=0)])
        wait_coap(self.port)

    def argv(self, name, origin, size, block, state, out):
        model = self.model(size, block)
        url = f"{origin}/.well-known/firmware/example.com/{model}/1.0.0/{model}.bin"
        if name.startswith("update"):
            return [self.client, "update", "--trust", str(self.pub), "--manufacturer", "example.com", "--model", model,
                    "--state", str(state), "--origin", origin, "--block-size", str(block), "--timeout", "120",
                    *(["--lock-step"] if "lock-step" in name else [])], state / "installed" / f"{model}.bin"
        if name == "coap-client-notls":
            # -B limits the whole exchange; lock-step through lossy-lowpan needs about 3 minutes for 128 KiB.
            return ["coap-client-notls", "-B", "420", "-b", str(block), "-o", str(out), url], out
        return [sys.executable, str(AIOCOAP_FETCH), url, str(out), str(block.bit_length() - 5)], out

    def run_one(self, name, origin, size, block, tag):
        state, out = self.work / f"state-{tag}", self.work / f"out-{tag}.bin"
        shutil.rmtree(state, ignore_errors=True)
        out.unlink(missing_ok=True)
        argv, result = self.argv(name, origin, size, block, state, out)
        try:
            wall, _, rss, code = run_measured(argv, timeout=1200)
        except subprocess.TimeoutExpired:
            return None
        ok = code == 0 and result.exists() and sha256_file(result) == sha256_file(self.images[(size, block)])
        return (wall, rss) if ok else None

    def case(self, profile, size, block, results):
        for rnd in range(self.args.rounds):
            order = CLIENTS[rnd % len(CLIENTS):] + CLIENTS[:rnd % len(CLIENTS)]
            for name in order:
                relay_port = free_udp_port()
                log = self.work / f"relay-{profile}-{size}-{block}-{name.replace(' ', '')}-{rnd}.log"
                relay = start_relay(lambda n, a: self.start(n, a, log), None, relay_port, self.port,
                                    seed=self.args.seed + rnd, extra=["--profile", profile])
                got = self.run_one(name, f"coap://127.0.0.1:{relay_port}", size, block,
                                   f"{profile}-{size}-{block}-{name.replace(' ', '')}")
                relay.stop()
                up = (relay_stats(relay.log()) or {}).get("up", {})
                distinct = max(1, up.get("received", 0) - up.get("coap_repeats", 0))
                retrans = up.get("coap_repeats", 0) / distinct
                with self.lock:
                    results.setdefault((profile, size, block, name), []).append((got, retrans))
                wall = f"{got[0]:.1f} s" if got else "FAILED"
                print(f"  {profile} {size // 1024} KiB/{block} round {rnd + 1}: {name}: {wall}, "
                      f"{retrans:.3f} retransmissions/request", flush=True)

    def shared(self):
        size, block = SHARED_CASE
        relay_port = free_udp_port()
        log = self.work / "relay-shared.log"
        relay = start_relay(lambda n, a: self.start(n, a, log), None, relay_port, self.port, seed=self.args.seed,
                            extra=["--profile", "lowpan"])
        walls = [None] * SHARED_DEVICES

        def device(i):
            walls[i] = self.run_one("update", f"coap://127.0.0.1:{relay_port}", size, block, f"shared{i}")

        started = time.monotonic()
        threads = [threading.Thread(target=device, args=(i,)) for i in range(SHARED_DEVICES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = time.monotonic() - started
        relay.stop()
        return walls, total

    def loopback(self):
        size, block = LOOPBACK_CASE
        times = {"update": [], "update --lock-step": []}
        for rnd in range(self.args.rounds):
            for name in (list(times) if rnd % 2 == 0 else list(times)[::-1]):
                got = self.run_one(name, f"coap://127.0.0.1:{self.port}", size, block, "loop")
                times[name].append(got[0] if got else float("inf"))
        return {k: statistics.median(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", nargs="+", default=list(RATES), choices=sorted(RATES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", type=Path, default=BIN)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--skip-shared", action="store_true")
    ap.add_argument("--quick", action="store_true", help="tiny images, one round: a smoke test of this script")
    args = ap.parse_args()
    if args.quick:
        global SHARED_CASE, LOOPBACK_CASE
        for profile in CASES:
            CASES[profile] = [(4 * 1024, 256)]
        SHARED_CASE, LOOPBACK_CASE = (8 * 1024, 1024), (1024 * 1024, 1024)
        args.rounds = 1
    bench = Bench(args)
    try:
        bench.setup()
        results = {}
        # Every (profile, case) through its own relay, side by side: the links
        # are independent and the clients mostly wait; one case's rounds run in turn.
        threads = [threading.Thread(target=bench.case, args=(p, size, block, results))
                   for p in args.profiles for size, block in CASES[p]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = []
        for profile in args.profiles:
            for size, block in CASES[profile]:
                cap = capacity_s(size, block, RATES[profile])
                medians = {}
                for name in CLIENTS:
                    runs = results.get((profile, size, block, name), [])
                    good = [g for g, _ in runs if g]
                    failed = len(runs) - len(good)
                    wall = statistics.median(w for w, _ in good) if good else None
                    medians[name] = wall
                    rss = statistics.median(r for _, r in good) if good else None
                    retrans = statistics.median(r for _, r in runs) if runs else 0
                    rows.append([profile, f"{size // 1024} KiB / {block}", name,
                                 f"{wall:.1f}" if wall else "FAILED",
                                 f"{cap:.1f}", f"{cap / wall:.0%}" if wall else "-", f"{retrans:.3f}",
                                 f"{rss / 1024:.1f}" if rss else "-", str(failed)])
                ours, ref = medians.get("update"), medians.get("coap-client-notls")
                if ours and ref:
                    rows.append([profile, f"{size // 1024} KiB / {block}", "→ update vs libcoap", f"{ref / ours:.1f}× faster",
                                 "", "", "", "", ""])
        print()
        print(table(["profile", "image / block", "client", "median s", "link could in s", "efficiency",
                     "retrans/request", "peak RSS MiB", "failed runs"], rows))
        if not args.skip_shared:
            walls, total = bench.shared()
            done = [w[0] for w in walls if w]
            size, block = SHARED_CASE
            cap = SHARED_DEVICES * capacity_s(size, block, RATES["lowpan"])
            print()
            print(table(["devices on one lowpan link", "image / block", "finished", "each s", "all done s",
                         "link could in s", "aggregate efficiency", "slowest ÷ fastest"],
                        [[str(SHARED_DEVICES), f"{size // 1024} KiB / {block}", f"{len(done)} of {SHARED_DEVICES}",
                          " ".join(f"{w:.1f}" for w in done), f"{total:.1f}", f"{cap:.1f}", f"{cap / total:.0%}",
                          f"{max(done) / min(done):.2f}" if done else "-"]]))
        loop = bench.loopback()
        size, block = LOOPBACK_CASE
        print()
        print(table(["loopback", "update s", "update --lock-step s", "window ÷ lock-step"],
                    [[f"{size // (1024 * 1024)} MiB / {block}", f"{loop['update']:.2f}", f"{loop['update --lock-step']:.2f}",
                      f"{loop['update'] / loop['update --lock-step']:.2f}"]]))
    finally:
        for p in bench.procs:
            p.stop()
        shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    main()
