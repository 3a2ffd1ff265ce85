#!/usr/bin/env python3
"""Soak test of `coap-fw-server serve` (make soak; not part of make test).

One server on loopback serves a repository with three models, 16-256 KiB
images; a new version of one model is published every --publish-every
(120) seconds, so that observers get notified and clients move to new
releases, and the version folders older than the last --keep-versions (2)
of a model are removed, as an operator would (a client still fetching one
of those fails, and is counted as failed). Against it, for --seconds (default $SOAK_SECONDS or 3600):

  clients    --clients (50) devices, each in a loop running `coap-fw-client
             update --json` with its own state folder, through the
             user-space relay (Tests/faults/relay.py) with --loss (5 %) each
             way. After each `updated` the installed image's SHA-256 and
             size (and `status --json`) are compared with what was
             published for that model and version ("wrong bytes" must stay
             0), then the state folder is removed, so the next run installs
             again (a failed run keeps its state and resumes).
  fuzzer     random and mutated CoAP datagrams (support.coap.mutations of
             valid manifest and image requests), --fuzz-rate a second, from
             a few sockets renewed now and then, straight at the server.
  observers  --observers (500) sockets, each its own source port,
             registering an Observe on a manifest, acknowledging
             confirmable notifications and registering again every
             --observe-refresh seconds (+-50 %). Counted: ports
             "registered" (a first 2.05 with Observe), "notifications"
             (every later one, re-registrations' answers included), and
             other answers by code (e.g. "answers_5.03").
  probe      every --probe-every (10) seconds a fresh client (new socket,
             straight to the server, not through the relay) GETs a
             manifest, retransmitting every second, and must get 2.05
             within --probe-timeout (5) seconds: "a fresh client is always
             served". One more goes once the load has stopped.

The server's VmRSS is read after --warmup (default a fifth of the run, at
most 300 s) and at the end, with all the load still on; it may grow by at
most --max-growth-kib (2048).

It prints a table and one line

    SOAK-JSON: {"seconds": ..., "transfers": {"completed": N, "failed": N, ...},
                "wrong_bytes": 0, "rss_kib": {"start": N, "end": N, "growth": N, ...},
                "fresh_client": {"served": N, "not_served": N, ...}, "ok": true, ...}

and exits 1 when bytes were wrong, the RSS grew too much, a fresh client
was not served, or the server did not stop cleanly (crash text, exit status
other than 0); 2 on a usage error. Loopback only; everything it starts is
stopped at the end, and its folder removed unless --keep.

    PYTHONPATH=Tests python3 Tests/soak/soak.py --seconds 180 --clients 20 [--observers 1100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from support import cli, coap
from support.files import sha256_file, write_random_file
from support.netns import relay_stats, start_relay
from support.paths import CLIENT, SERVER, default_bin_dir, image_path, manifest_path, model_dir
from support.ports import free_udp_port
from support.procs import crashes, proc_status_kib
from support.servers import Processes

MODELS = ("soak-a", "soak-b", "soak-c")
IMAGE_NAME = "fw.bin"
MIN_SIZE, MAX_SIZE = 16 * 1024, 256 * 1024
HOST = "127.0.0.1"


def log(*parts):
    print(f"[soak {time.strftime('%H:%M:%S')}]", *parts, flush=True)


# ---------------------------------------------------------------------------
# releases
# ---------------------------------------------------------------------------

class Releases:
    """What was published: (model, version) -> (SHA-256, size), and the
    publisher of new versions."""

    def __init__(self, bin_dir: Path, root: Path, rng: random.Random, keep_versions: int = 0):
        self.bin_dir, self.root, self.rng = bin_dir, root, rng
        self.keys = root / "keys"
        self.repo = root / "repo"
        self.lock = threading.Lock()
        self.published: dict[tuple[str, str], tuple[str, int]] = {}
        self.counter = {m: 0 for m in MODELS}
        self.failures: list[str] = []
        self.keep_versions = keep_versions
        self.pruned = 0
        cli.keygen(bin_dir, self.keys)

    def publish_next(self, model: str) -> str | None:
        """Publishes version 1.0.N+1 of ``model`` with a new image."""
        with self.lock:
            self.counter[model] += 1
            version = f"1.0.{self.counter[model]}"
            size = self.rng.randint(MIN_SIZE, MAX_SIZE)
        image = self.root / "images" / model / version / IMAGE_NAME
        digest = write_random_file(image, size)
        with self.lock:  # known before any client can see it
            self.published[(model, version)] = (digest, size)
        run = cli.publish(self.bin_dir, self.repo, self.keys / "private.pem", model, version, image=image,
                          check=False)
        image.unlink()
        if run.returncode != 0:
            self.failures.append(f"publish {model} {version}: exit {run.returncode}: {run.stderr.strip()[:300]}")
            return None
        if self.keep_versions:  # an operator's clean-up: the oldest version folders go
            old = self.counter[model] - self.keep_versions
            if old >= 1 and (folder := model_dir(self.repo, model) / f"1.0.{old}").is_dir():
                shutil.rmtree(folder)
                self.pruned += 1
        return version

    def expected(self, model: str, version: str) -> tuple[str, int] | None:
        with self.lock:
            return self.published.get((model, version))


# ---------------------------------------------------------------------------
# the load
# ---------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.results = Counter()          # update result codes ("hang", "no-json" for harness views)
        self.bytes = 0
        self.wrong: list[str] = []        # installed bytes that differ from the published image
        self.failure_samples: list[str] = []
        self.client_crashes: list[str] = []
        self.update_seconds: list[float] = []
        self.probe_ok = 0
        self.probe_failed: list[str] = []
        self.fuzz_sent = 0
        self.observe = Counter()
        self.publishes = 0
        self.rss: list[tuple[float, int]] = []

    def add(self, **kw):
        with self.lock:
            for key, value in kw.items():
                setattr(self, key, getattr(self, key) + value)


def client_loop(i: int, ctx: dict, stop: threading.Event, stats: Stats):
    """One device: update, check, reset, again."""
    model = MODELS[i % len(MODELS)]
    block_size = 256 if i % 5 == 4 else 1024
    state = ctx["root"] / "clients" / f"{i:03d}"
    rng = random.Random(i)
    runs = 0
    while not stop.is_set():
        runs += 1
        fmt = "json" if (runs + i) % 2 else "cbor"
        started = time.monotonic()
        try:
            run = cli.update(ctx["bin_dir"], ctx["trust"], model, state, "--origin", ctx["origin"],
                             "--format", fmt, "--block-size", block_size, "--timeout", ctx["timeout"],
                             "--ack-timeout", ctx["ack_timeout"], timeout=ctx["run_limit"])
        except AssertionError as e:  # did not finish within run_limit: killed
            with stats.lock:
                stats.results["hang"] += 1
                stats.failure_samples.append(f"client {i}: {str(e).splitlines()[0]}")
            continue
        elapsed = time.monotonic() - started
        doc = run.json or {}
        result = doc.get("result") or "no-json"
        crashed = crashes(run.stderr)
        with stats.lock:
            stats.results[result] += 1
            if crashed or run.returncode not in (0, 1):
                stats.client_crashes.append(f"client {i}: exit {run.returncode} {crashed}\n{run.stderr[-1500:]}")
            if result != "updated" and len(stats.failure_samples) < 40:
                reason = doc.get("reason") or next((a.get("reason") for a in reversed(doc.get("attempts") or [])
                                                     if a.get("reason")), None)
                stats.failure_samples.append(f"client {i} {model} {fmt}: {result}: {reason}")
        if result != "updated":
            stop.wait(rng.uniform(0.5, 2.0))
            continue
        wrong = check_install(ctx, stats, state, model, doc.get("version"))
        with stats.lock:
            stats.bytes += doc.get("bytesTransferred") or 0
            stats.update_seconds.append(elapsed)
            if wrong:
                stats.wrong.append(f"client {i} {model} {doc.get('version')}: {wrong}")
        if not wrong:
            shutil.rmtree(state, ignore_errors=True)  # a fresh device again: the next run installs
        else:
            state.rename(state.with_name(f"{state.name}-wrong-{runs}"))  # kept for a look


def check_install(ctx: dict, stats: Stats, state: Path, model: str, version: str | None) -> str | None:
    """None when STATE/installed holds exactly what was published for
    ``version``; else what is wrong."""
    expected = ctx["releases"].expected(model, version or "")
    if expected is None:
        return f"version {version!r} was never published"
    digest, size = expected
    installed = state / "installed" / IMAGE_NAME
    if not installed.is_file():
        return f"{installed} missing"
    if installed.stat().st_size != size or sha256_file(installed) != digest:
        return f"{installed}: {installed.stat().st_size} bytes, SHA-256 differs from the published image ({size} bytes)"
    status = cli.status(ctx["bin_dir"], state, check=False).json or {}
    got = [(c.get("name"), c.get("sha256"), c.get("size")) for c in status.get("components", [])]
    if status.get("version") != version or got != [(IMAGE_NAME, digest, size)]:
        return f"status --json says {status.get('version')} {got}"
    return None


def publisher_loop(ctx: dict, stop: threading.Event, stats: Stats, every: float):
    n = 0
    while not stop.wait(every):
        if ctx["releases"].publish_next(MODELS[n % len(MODELS)]):
            stats.add(publishes=1)
        n += 1


def fuzzer_loop(ctx: dict, stop: threading.Event, stats: Stats, rate: float, seed: int):
    rng = random.Random(seed)
    port = ctx["server_port"]
    valid = []
    for k, model in enumerate(MODELS):
        for path in (manifest_path(model, "cbor"), manifest_path(model, "json"), image_path(model, "1.0.1", IMAGE_NAME)):
            for szx in (2, 6):
                valid.append(coap.encode(coap.CON, coap.GET, 100 + k, bytes([k, szx]),
                                         coap.uri_path_options(path) + [(coap.BLOCK2, coap.block2(rng.randrange(64), szx))]))
    datagrams = coap.mutations(rng, valid, image_path(MODELS[0], "1.0.1", IMAGE_NAME))
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
    for s in sockets:
        s.setblocking(False)
    sent = 0
    batch = max(1, int(rate / 20))
    try:
        while not stop.wait(batch / rate):
            for _ in range(batch):
                k = sent % len(sockets)
                if sent % 2000 == 1999:  # now and then a new source port
                    sockets[k].close()
                    sockets[k] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    sockets[k].setblocking(False)
                try:
                    sockets[k].sendto(next(datagrams), (HOST, port))
                except OSError:
                    pass
                sent += 1
            for s in sockets:  # answers are not the point: drain them
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
    finally:
        for s in sockets:
            s.close()
        stats.add(fuzz_sent=sent)


def observe_loop(ctx: dict, stop: threading.Event, stats: Stats, count: int, refresh: float, seed: int):
    """``count`` sockets, one Observe registration each, refreshed."""
    rng = random.Random(seed)
    port = ctx["server_port"]
    sel = selectors.DefaultSelector()
    observers = []
    now = time.monotonic()
    for k in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        path = manifest_path(MODELS[k % len(MODELS)], "cbor" if k % 2 else "json")
        # registrations spread over the first seconds (about 200 a second)
        entry = {"sock": s, "token": rng.randbytes(4), "path": path, "due": now + k / 200.0,
                 "mid": rng.randrange(65536), "registered": False}
        observers.append(entry)
        sel.register(s, selectors.EVENT_READ, entry)
    counts = Counter()
    try:
        while not stop.is_set():
            now = time.monotonic()
            for entry in observers:
                if entry["due"] <= now:
                    entry["mid"] = (entry["mid"] + 1) & 0xFFFF
                    datagram = coap.encode(coap.CON, coap.GET, entry["mid"], entry["token"],
                                           coap.uri_path_options(entry["path"]) + [(coap.OBSERVE, b"")])
                    try:
                        entry["sock"].sendto(datagram, (HOST, port))
                        counts["registrations_sent"] += 1
                    except OSError:
                        counts["send_errors"] += 1
                    entry["due"] = now + refresh * rng.uniform(0.5, 1.5)
            for key, _ in sel.select(timeout=0.2):
                entry = key.data
                try:
                    data = entry["sock"].recv(4096)
                    message = coap.decode(data)
                except (OSError, ValueError):
                    counts["bad_datagrams"] += 1
                    continue
                if message.mtype == coap.CON:  # a confirmable notification: acknowledge it
                    try:
                        entry["sock"].sendto(coap.encode(coap.ACK, 0, message.mid), (HOST, port))
                    except OSError:
                        pass
                if message.token != entry["token"]:
                    continue
                if message.code_text == "2.05" and message.option(coap.OBSERVE) is not None:
                    counts["notifications" if entry["registered"] else "registered"] += 1
                    entry["registered"] = True
                elif message.code_text == "2.05":
                    counts["answers_without_observe"] += 1
                else:
                    counts[f"answers_{message.code_text}"] += 1
    finally:
        for entry in observers:
            sel.unregister(entry["sock"])
            entry["sock"].close()
        with stats.lock:
            stats.observe.update(counts)


def probe_loop(ctx: dict, stop: threading.Event, stats: Stats, every: float, timeout: float):
    n = 0
    while not stop.wait(every):
        path = manifest_path(MODELS[n % len(MODELS)], "cbor")
        n += 1
        started = time.monotonic()
        response = coap.request(HOST, ctx["server_port"], path, timeout=timeout, resend=1.0)
        took = time.monotonic() - started
        with stats.lock:
            if response is not None and response.code_text == "2.05":
                stats.probe_ok += 1
            else:
                what = "no answer" if response is None else response.code_text
                stats.probe_failed.append(f"t+{time.monotonic() - ctx['t0']:.0f}s {path}: {what} after {took:.1f} s")


def rss_parts(pid: int) -> str:
    """RssAnon/RssFile in KiB: the heap's part and mapped files' part of VmRSS."""
    return f"{proc_status_kib(pid, 'RssAnon')}/{proc_status_kib(pid, 'RssFile')}"


def deleted_mappings(pid: int) -> int:
    """Mappings of files that were removed (e.g. images of removed versions)."""
    try:
        return sum(1 for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if line.endswith("(deleted)"))
    except OSError:
        return -1


def rss_loop(ctx: dict, stop: threading.Event, stats: Stats):
    while True:
        try:
            value = proc_status_kib(ctx["server_pid"])
        except (AssertionError, OSError):
            return
        with stats.lock:
            stats.rss.append((time.monotonic() - ctx["t0"], value))
        if stop.wait(10):
            return


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------

def rows_table(rows) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'figure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {k.ljust(width)} | {v} |" for k, v in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or 3600),
                        help="how long the load runs (default $SOAK_SECONDS or 3600)")
    parser.add_argument("--clients", type=int, default=50, help="updating clients through the relay (default 50)")
    parser.add_argument("--loss", type=float, default=0.05, help="relay loss each way (default 0.05)")
    parser.add_argument("--delay", type=float, default=0.0, help="relay delay each way, seconds (default 0)")
    parser.add_argument("--observers", type=int, default=500,
                        help="Observe flood: source ports (default 500; 1100 passes the server's 1000 sessions)")
    parser.add_argument("--observe-refresh", type=float, default=60.0, help="re-registration period, s (default 60)")
    parser.add_argument("--fuzz-rate", type=float, default=200.0, help="fuzzer datagrams a second (default 200)")
    parser.add_argument("--publish-every", type=float, default=120.0, help="a new version every N s (default 120)")
    parser.add_argument("--keep-versions", type=int, default=2,
                        help="version folders kept per model; older ones are removed (default 2; 0 keeps all)")
    parser.add_argument("--probe-every", type=float, default=10.0, help="fresh-client GET every N s (default 10)")
    parser.add_argument("--probe-timeout", type=float, default=5.0, help="a fresh client's limit, s (default 5)")
    parser.add_argument("--warmup", type=float, default=None, help="s before the start RSS (default seconds/5, <= 300)")
    parser.add_argument("--max-growth-kib", type=int, default=2048, help="allowed RSS growth (default 2048)")
    parser.add_argument("--timeout", type=float, default=30.0, help="client --timeout (default 30)")
    parser.add_argument("--ack-timeout", type=float, default=1.0, help="client --ack-timeout (default 1)")
    parser.add_argument("--server-args", default="", help="more `serve` arguments, e.g. '--max-sessions 2000'")
    parser.add_argument("--seed", type=int, default=None, help="seed of the relay, fuzzer and sizes (default random)")
    parser.add_argument("--bin", type=Path, default=None, help="folder of the binaries (default $COAPFW_BIN or .build/debug)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, repository)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 0 or args.observers < 0 or not 0 <= args.loss <= 1:
        parser.error("--seconds > 0, --clients >= 0, --observers >= 0, 0 <= --loss <= 1")
    warmup = args.warmup if args.warmup is not None else min(300.0, args.seconds / 5)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    bin_dir = args.bin or default_bin_dir()
    for name in (SERVER, CLIENT):
        if not (bin_dir / name).is_file():
            print(f"soak: {bin_dir / name} missing (make build)", file=sys.stderr)
            return 2

    root = Path(tempfile.mkdtemp(prefix="coapfw-soak-"))
    (root / "logs").mkdir()
    procs = Processes(bin_dir, root / "logs")
    stats = Stats()
    stop = threading.Event()
    threads: dict[str, list[threading.Thread]] = {}
    server_problems: list[str] = []
    relay_counters = None
    log(f"work folder {root}, seed {seed}, {args.seconds:g} s, {args.clients} clients, loss {args.loss:g}, "
        f"{args.observers} observers, fuzzer {args.fuzz_rate:g}/s")
    try:
        releases = Releases(bin_dir, root, random.Random(seed), args.keep_versions)
        for model in MODELS:
            releases.publish_next(model)
        server = procs.server(releases.repo, *args.server_args.split(), verbose=0)
        relay_port = free_udp_port(HOST)
        relay = start_relay(procs.start, None, relay_port, server.port, loss=args.loss, delay=args.delay,
                            seed=seed, host=HOST, extra=["--uplink-idle", "60"])
        ctx = {"root": root, "bin_dir": bin_dir, "trust": releases.keys / "public.pem", "releases": releases,
               "origin": f"coap://{HOST}:{relay_port}", "server_port": server.port, "server_pid": server.pid,
               "timeout": args.timeout, "ack_timeout": args.ack_timeout, "run_limit": max(600.0, 10 * args.timeout),
               "t0": time.monotonic()}

        def spawn(name, target, *a, n=1):
            threads[name] = [threading.Thread(target=target, args=(*a,), name=f"{name}-{k}", daemon=True)
                             for k in range(n)]

        spawn("rss", rss_loop, ctx, stop, stats)
        spawn("observers", observe_loop, ctx, stop, stats, args.observers, args.observe_refresh, seed + 1)
        spawn("fuzzer", fuzzer_loop, ctx, stop, stats, args.fuzz_rate, seed + 2)
        spawn("publisher", publisher_loop, ctx, stop, stats, args.publish_every)
        spawn("probe", probe_loop, ctx, stop, stats, args.probe_every, args.probe_timeout)
        threads["clients"] = [threading.Thread(target=client_loop, args=(i, ctx, stop, stats), name=f"client-{i}",
                                               daemon=True) for i in range(args.clients)]
        for group in threads.values():
            for t in group:
                t.start()

        deadline = ctx["t0"] + args.seconds
        rss_start = None
        parts_start = parts_end = None
        early_exit = None
        next_report = ctx["t0"] + 60
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            if not server.alive():
                early_exit = f"exited at t+{time.monotonic() - ctx['t0']:.0f} s with status {server.popen.poll()}"
                log(f"the server {early_exit}: the load stops")
                break
            if rss_start is None and time.monotonic() >= ctx["t0"] + warmup:
                rss_start = proc_status_kib(server.pid)
                parts_start = rss_parts(server.pid)
                log(f"warm-up over: server VmRSS {rss_start} KiB {parts_start}")
            if time.monotonic() >= next_report:
                next_report += 60
                with stats.lock:
                    log(f"t+{time.monotonic() - ctx['t0']:.0f}s results {dict(stats.results)} wrong {len(stats.wrong)} "
                        f"probes ok {stats.probe_ok} failed {len(stats.probe_failed)}")
        alive = server.alive()
        load_seconds = round(time.monotonic() - ctx["t0"], 1)
        rss_end = proc_status_kib(server.pid) if alive else None
        hwm = proc_status_kib(server.pid, "VmHWM") if alive else None
        parts_end = rss_parts(server.pid) if alive else None
        deleted_maps = deleted_mappings(server.pid) if alive else None
        if rss_start is None:
            rss_start, parts_start = rss_end, parts_end
        log("time is up: stopping the load (running updates finish)")
        stop.set()
        for name in ("clients", "publisher", "probe", "fuzzer", "observers", "rss"):
            for t in threads.get(name, []):
                t.join(timeout=ctx["run_limit"] + 30)
        # One last fresh client once the load is gone.
        after = coap.request(HOST, server.port, manifest_path(MODELS[0]), timeout=args.probe_timeout, resend=1.0)
        served_after = after is not None and after.code_text == "2.05"
        if served_after:
            stats.probe_ok += 1
        else:
            stats.probe_failed.append(f"after the load {manifest_path(MODELS[0])}: "
                                      + ("no answer" if after is None else after.code_text))
        relay.stop()
        relay_counters = relay_stats(relay.log())
        server_problems = [p.splitlines()[0] for p in server.problems()]
        server_problems += [p.splitlines()[0] for p in procs.stop_all()]
    finally:
        stop.set()
        procs.stop_all()

    # -- report -------------------------------------------------------------
    elapsed = load_seconds
    completed = stats.results.get("updated", 0)
    failed = sum(v for k, v in stats.results.items() if k != "updated")
    growth = None if rss_start is None or rss_end is None else rss_end - rss_start
    down = (relay_counters or {}).get("down", {})
    up = (relay_counters or {}).get("up", {})
    ok_bytes = not stats.wrong
    ok_rss = growth is not None and growth <= args.max_growth_kib
    ok_fresh = not stats.probe_failed and stats.probe_ok > 0  # the one after the load included
    ok_server = not server_problems and alive
    report = {
        "date": time.strftime("%Y-%m-%d"), "seconds": elapsed, "seconds_asked": args.seconds, "seed": seed, "clients": args.clients,
        "loss": args.loss, "observers": args.observers, "fuzz_rate": args.fuzz_rate,
        "transfers": {"completed": completed, "failed": failed, "results": dict(stats.results),
                      "bytes": stats.bytes, "per_minute": round(completed / (elapsed / 60), 1),
                      "median_update_s": round(sorted(stats.update_seconds)[len(stats.update_seconds) // 2], 1)
                      if stats.update_seconds else None},
        "wrong_bytes": len(stats.wrong), "wrong": stats.wrong[:10],
        "client_crashes": len(stats.client_crashes),
        "rss_kib": {"start": rss_start, "end": rss_end, "growth": growth, "peak": hwm,
                    "parts_start": parts_start, "parts_end": parts_end, "deleted_file_mappings": deleted_maps,
                    "samples": [v for _, v in stats.rss][:: max(1, len(stats.rss) // 20)]},
        "fresh_client": {"served": stats.probe_ok, "not_served": len(stats.probe_failed),
                         "failures": stats.probe_failed[:10], "served_after_load": served_after},
        "publishes": stats.publishes, "publish_failures": releases.failures[:5], "versions_removed": releases.pruned,
        "fuzz_datagrams": stats.fuzz_sent, "observe": dict(stats.observe),
        "relay": {"up_dropped": up.get("dropped"), "up_received": up.get("received"),
                  "down_dropped": down.get("dropped"), "down_received": down.get("received"),
                  "client_addresses": (relay_counters or {}).get("clients")},
        "server_early_exit": early_exit, "server_problems": server_problems,
        "checks": {"wrong_bytes_0": ok_bytes, "rss_growth_ok": ok_rss, "fresh_client_always_served": ok_fresh,
                   "server_clean": ok_server},
    }
    report["ok"] = all(report["checks"].values())
    rows = [
        ("duration", f"{elapsed:g} s of {args.seconds:g} ({args.clients} clients, loss {args.loss:.0%} each way, "
                     f"seed {seed})" + (f"; the server {early_exit} **FAIL**" if early_exit else "")),
        ("transfers completed", f"{completed} ({report['transfers']['per_minute']}/min, {stats.bytes} bytes)"),
        ("transfers failed", f"{failed} {dict((k, v) for k, v in stats.results.items() if k != 'updated')}"),
        ("wrong bytes", f"{len(stats.wrong)}" + ("" if ok_bytes else " **FAIL**")),
        ("server RSS start -> end", f"{rss_start} -> {rss_end} KiB (growth {growth} KiB, limit {args.max_growth_kib})"
         + ("" if ok_rss else " **FAIL**")),
        ("server peak RSS (VmHWM)", f"{hwm} KiB"),
        ("RssAnon/RssFile start -> end", f"{parts_start} -> {parts_end} KiB (mapped images count as RssFile); "
                                         f"{deleted_maps} mappings of removed files at the end"),
        ("fresh client served", f"{stats.probe_ok} of {stats.probe_ok + len(stats.probe_failed)}"
         + f" (after the load: {'yes' if served_after else 'NO'})" + ("" if ok_fresh else " **FAIL**")),
        ("releases published", f"{stats.publishes} during the run (+{len(MODELS)} at start), "
                               f"{releases.pruned} old version folders removed"),
        ("fuzzer datagrams", f"{stats.fuzz_sent}"),
        ("Observe flood", f"{args.observers} ports: {dict(stats.observe)}"),
        ("relay dropped up/down", f"{up.get('dropped')}/{down.get('dropped')} of {up.get('received')}/{down.get('received')}"),
        ("server and relay stopped cleanly", "yes" if ok_server else f"NO {server_problems}"),
    ]
    print(rows_table(rows))
    for line in stats.probe_failed[:10]:
        print(f"  fresh client not served: {line}")
    for line in stats.failure_samples[:10]:
        print(f"  failed update: {line}")
    for line in stats.wrong[:10]:
        print(f"  WRONG BYTES: {line}")
    for line in stats.client_crashes[:3]:
        print(f"  client crash: {line}")
    print("SOAK-JSON: " + json.dumps(report), flush=True)
    if args.keep:
        print(f"work folder kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
