#!/usr/bin/env python3
"""Network fault matrix for `coap-fw-client update` (issue #5).

For each cell -- loss 0/5/20 % x delay 0/100 ms, each without and with
duplication 5 % + reordering 5 % (12 cells) -- it builds a fresh pair of
network namespaces joined by a veth (10.78.<n>.1 server, 10.78.<n>.2 client,
addresses that exist only inside those two namespaces), runs `coap-fw-server
serve` in one and `coap-fw-client update` (256 KiB image, --timeout 30,
-vvv) in the other, and removes both namespaces afterwards, whatever
happened.

The faults are applied per direction (each way loses, delays, duplicates and
reorders independently). `tc qdisc add ... netem` on both veth ends is always
tried first; when the kernel has no sch_netem ("Specified qdisc kind is
unknown") the reason is printed and the same faults come from the user-space
relay (relay.py) in the server's namespace, between the veth and the server.

A cell PASSES when the update completed (`updated`, exit 0) and
STATE/installed/<image> has the image's SHA-256 -- or when it failed with a
result code (`transfer-failed` or `no-server`, exit 1) within its time-out
bound: no more than --timeout (+10 s slack) after the last datagram the
link delivered to the client (measured by the relay), and, for `no-server`,
within --timeout (+10 s) in all. Installed bytes that differ from the image
are a hard failure, as are a crash (no JSON, a signal, crash text in a log,
a server that does not stop cleanly), a hang past --cell-limit, any other
result code, and an exit status that contradicts the result.

    fault_matrix.py                  the full matrix, RFC 7252 default timing
    fault_matrix.py --quick          loss 0/20 % x delay 0/100 ms, plus
                                     5 % loss with dup+reorder at 100 ms,
                                     with --ack-timeout 1 (used by make test)
    fault_matrix.py --cells 'loss20-*,*-dr' --seed 7 --jobs 3

Exit status: 0 when every cell passed (cells that failed with a result code
are listed), 1 when any cell did not, 2 on a usage error. Without root (no
`ip netns`) it prints "skipped: <reason>" and exits 0.

The last line of output is the machine-readable result, for tests (the
Markdown table is for people):

    RESULTS-JSON: {"skipped": null, "seed": N, "passed": N, "failed": N,
                   "cells": [{"cell": ..., "verdict": "PASS", "result": ...,
                              "installed": "yes", ...}, ...]}

("skipped" is the reason, and "cells" empty, when the matrix could not run.)

It imports the test kit (Tests/support): `make faults` puts Tests on
PYTHONPATH; by hand, `PYTHONPATH=Tests Tests/faults/fault_matrix.py ...`.
"""

from __future__ import annotations

import argparse
import atexit
import fnmatch
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from support import cli
from support.files import sha256_file
from support.netns import NetnsPair, netem_args, netns_unavailable_reason, relay_stats, start_relay
from support.paths import CLIENT, SERVER, default_bin_dir
from support.procs import crashes
from support.servers import Processes

IMAGE_SIZE = 256 * 1024
IMAGE_NAME = "fw256.bin"
MODEL = "faultm"
VERSION = "1.0.0"
SERVER_PORT = 5683
RELAY_PORT = 5690
SLACK = 10.0  # seconds on top of --timeout for a failure to be "within its time-out"
FAILURE_CODES = ("transfer-failed", "no-server")
RETRANSMISSION_MARK = "retransmission"


# ---------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    loss: int      # percent, each direction
    delay: int     # milliseconds, each direction
    dr: bool       # duplication 5 % + reordering 5 %

    @property
    def name(self) -> str:
        return f"loss{self.loss}-delay{self.delay}" + ("-dr" if self.dr else "")

    @property
    def dup(self) -> float:
        return 0.05 if self.dr else 0.0

    @property
    def reorder(self) -> float:
        return 0.05 if self.dr else 0.0


FULL_CELLS = [Cell(loss, delay, dr) for loss in (0, 5, 20) for delay in (0, 100) for dr in (False, True)]
QUICK_CELLS = [Cell(0, 0, False), Cell(0, 100, False), Cell(20, 0, False), Cell(20, 100, False),
               Cell(5, 100, True)]


@dataclass
class Outcome:
    cell: str
    loss: int
    delay: int
    dr: bool
    link: str = ""
    result: str | None = None
    exit: int | None = None
    wall: float | None = None
    bytes: int | None = None
    retransmissions: int | None = None
    sessions: int | None = None
    relay: dict | None = None
    installed: str = "-"          # "yes" | "WRONG" | "-" (nothing installed)
    stall: float | None = None    # s from the link's last delivery to the client's exit
    verdict: str = "FAIL"         # PASS | FAIL
    kind: str = ""                # updated | failed-with-code | wrong-bytes | crash | hang | ...
    reasons: list = field(default_factory=list)
    reason: str | None = None     # the client's own reason (JSON) on a failure
    workdir: str = ""


# ---------------------------------------------------------------------------
# cleanup of everything this process started
# ---------------------------------------------------------------------------

class Registry:
    """Processes (Popen) and namespace pairs (NetnsPair) created by this run,
    so that a signal or an exception still removes them: the processes are
    killed first, then the namespaces deleted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items: set = set()

    def add(self, item):
        with self.lock:
            self.items.add(item)

    def drop(self, item):
        with self.lock:
            self.items.discard(item)

    def cleanup(self):
        with self.lock:
            items = list(self.items)
            self.items.clear()
        for p in (i for i in items if isinstance(i, subprocess.Popen)):
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for pair in (i for i in items if isinstance(i, NetnsPair)):
            try:
                pair.close()
            except AssertionError as e:
                print(f"cleanup: {e}", file=sys.stderr)


REGISTRY = Registry()
atexit.register(REGISTRY.cleanup)


def _on_signal(signum, _frame):
    REGISTRY.cleanup()
    print(f"fault matrix interrupted by signal {signum}; namespaces removed", file=sys.stderr, flush=True)
    os._exit(1)


# ---------------------------------------------------------------------------
# one cell
# ---------------------------------------------------------------------------

_LOG_LOCK = threading.Lock()


def log(msg: str):
    with _LOG_LOCK:
        print(msg, flush=True)


def run_cell(cell: Cell, *, bin_dir: Path, workdir: Path, trust: Path, repo: Path, digest: str,
             seed: int, timeout: float, ack_timeout: float | None, cell_limit: float) -> Outcome:
    out = Outcome(cell.name, cell.loss, cell.delay, cell.dr, workdir=str(workdir))
    workdir.mkdir(parents=True)
    pair = NetnsPair(tag="cfm", net="10.78")  # names and addresses of its own
    REGISTRY.add(pair)
    procs = Processes(bin_dir, workdir)
    try:
        pair.open()
        # The server is up (probed over the clean veth) before any fault is on.
        server = procs.server(repo, host=pair.server_addr, port=SERVER_PORT, prefix=pair.exec_prefix(pair.server_ns),
                              ready=lambda _: pair.probe_from_client(SERVER_PORT))
        REGISTRY.add(server.popen)

        loss, delay = cell.loss / 100, cell.delay / 1000
        spec = netem_args(loss, delay, cell.dup, cell.reorder)
        relay = None
        if pair.add_netem(tuple(spec)):
            out.link = "netem " + " ".join(spec)
            port = SERVER_PORT
        else:
            log(f"[{cell.name}] tc netem unavailable ({pair.netem_error}); using the user-space relay")
            relay = start_relay(procs.start, pair, RELAY_PORT, SERVER_PORT, loss=loss, delay=delay, dup=cell.dup,
                                reorder=cell.reorder, seed=seed, stats_file=workdir / "relay.json")
            REGISTRY.add(relay.popen)
            out.link = f"relay seed {seed}"
            port = RELAY_PORT

        state = workdir / "state"
        args = [*pair.exec_prefix(pair.client_ns),
                *cli.update_args(bin_dir, trust, MODEL, state, "--origin", f"coap://{pair.server_addr}:{port}",
                                 "--timeout", f"{timeout:g}", "-vvv")]
        if ack_timeout is not None:
            args += ["--ack-timeout", f"{ack_timeout:g}"]
        (workdir / "client.cmd").write_text(" ".join(map(str, args)) + "\n")
        with open(workdir / "client.out", "wb") as stdout, open(workdir / "client.err", "wb") as stderr:
            started = time.monotonic()
            client = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
            REGISTRY.add(client)
            try:
                rc = client.wait(timeout=cell_limit)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
                rc = None
            ended = time.monotonic()
            REGISTRY.drop(client)
        out.wall = round(ended - started, 1)
        out.exit = rc

        if relay is not None:
            relay.stop()
            out.relay = relay_stats(relay.log())
            if out.relay is None:
                out.reasons.append("the relay printed no counters")
            elif out.relay.get("last_down_sent") is not None:
                out.stall = round(ended - out.relay["last_down_sent"], 1)
        else:
            out.relay = {"netem": pair.tc_stats()}
        problems = server.problems()
        out.reasons += [p.splitlines()[0] for p in problems]
        if problems:
            out.kind = "server-crash"

        judge(out, workdir, bin_dir, state, digest, timeout, cell_limit, rc)
    except Exception as e:  # noqa: BLE001 - any harness error fails the cell, never hides it
        out.verdict, out.kind = "FAIL", out.kind or "harness-error"
        out.reasons.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        (workdir / "harness-error.txt").write_text(repr(e) + "\n" + str(e))
    finally:
        started_here = list(procs.procs)
        procs.stop_all()  # what matters was judged above
        for proc in started_here:
            REGISTRY.drop(proc.popen)
        try:
            pair.close()
        finally:
            REGISTRY.drop(pair)
    return out


def judge(out: Outcome, workdir: Path, bin_dir: Path, state: Path, digest: str, timeout: float,
          cell_limit: float, rc: int | None):
    stdout = (workdir / "client.out").read_text(errors="replace")
    stderr = (workdir / "client.err").read_text(errors="replace")
    # libcoap's own debug log (-vvv) goes to stdout, next to the JSON.
    logs = stdout + "\n" + stderr
    out.retransmissions = sum(1 for line in logs.splitlines() if RETRANSMISSION_MARK in line.lower())
    out.sessions = logs.count("new CoAP session")
    doc = None
    json_lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if json_lines:
        try:
            doc = json.loads(json_lines[-1])
        except ValueError:
            pass
    if isinstance(doc, dict):
        out.result = doc.get("result")
        out.bytes = doc.get("bytesTransferred")
        out.reason = doc.get("reason") or next((a.get("reason") for a in reversed(doc.get("attempts") or [])
                                                 if a.get("reason")), None)

    # What is on disk, whatever the client said.
    installed = state / "installed" / IMAGE_NAME
    if installed.exists():
        out.installed = "yes" if sha256_file(installed) == digest else "WRONG"
    status = cli.status(bin_dir, state, check=False)

    hard, soft = [], []
    if out.installed == "WRONG":
        hard.append(f"{installed} differs from the image (SHA-256)")
    crashed = crashes(stderr)
    if crashed:
        hard.append(f"client log shows a crash {crashed}")
    if status.returncode != 0 or status.json is None:
        hard.append(f"`status --json` failed (exit {status.returncode}): {status.stderr.strip()[:200]}")
    if rc is None:
        out.kind = out.kind or "hang"
        hard.append(f"client still running after {cell_limit:g} s (killed)")
    elif rc < 0 or rc > 2:
        out.kind = out.kind or "crash"
        hard.append(f"client ended with exit status {rc}")
    elif doc is None:
        out.kind = out.kind or "crash"
        hard.append(f"client printed no JSON (exit {rc})")

    if out.result == "updated" and rc is not None:
        if rc != 0:
            hard.append(f"result updated with exit status {rc}")
        if out.installed != "yes":
            hard.append(f"result updated but {installed} is {'missing' if out.installed == '-' else 'wrong'}")
        if status.json is not None:
            comps = [(c.get("name"), c.get("sha256"), c.get("size")) for c in status.json.get("components", [])]
            if status.json.get("version") != VERSION or comps != [(IMAGE_NAME, digest, IMAGE_SIZE)]:
                hard.append(f"status after updated: version {status.json.get('version')!r}, components {comps}")
        if out.bytes != IMAGE_SIZE:
            soft.append(f"bytesTransferred {out.bytes} != {IMAGE_SIZE} on a fresh state folder")
    elif out.result is not None and rc is not None:
        if rc != 1:
            hard.append(f"result {out.result} with exit status {rc} (expected 1)")
        if out.result not in FAILURE_CODES:
            hard.append(f"result {out.result!r} is not a transfer failure ({'/'.join(FAILURE_CODES)})")
        if status.json is not None and status.json.get("version") is not None:
            hard.append(f"failed update, yet status shows version {status.json.get('version')!r}")
        if out.installed == "yes":
            soft.append("failed, yet the image is installed (right bytes)")
        if out.stall is not None and out.stall > timeout + SLACK:
            hard.append(f"failed {out.stall} s after the link last delivered anything (bound {timeout:g}+{SLACK:g} s)")
        if out.result == "no-server" and out.wall > timeout + SLACK:
            hard.append(f"no-server after {out.wall} s (bound {timeout:g}+{SLACK:g} s)")
        if out.stall is not None and out.stall < timeout - 1:
            soft.append(f"gave up {out.stall} s after the last delivery, before --timeout {timeout:g} s")

    out.reasons += hard + soft
    if out.installed == "WRONG":
        out.kind = "wrong-bytes"
    if hard or out.kind in ("server-crash",):
        out.verdict = "FAIL"
        out.kind = out.kind or "bad-outcome"
    elif out.result == "updated":
        out.verdict, out.kind = "PASS", "updated"
    else:
        out.verdict, out.kind = "PASS", "failed-with-code"


# ---------------------------------------------------------------------------
# the matrix
# ---------------------------------------------------------------------------

def fmt(value, spec="") -> str:
    return "-" if value is None else format(value, spec)


def relay_cells(o: Outcome) -> tuple[str, str]:
    r = o.relay or {}
    if "netem" in r:
        return "netem", "-"
    def one(d):
        s = r.get(d) or {}
        return f"{s.get('forwarded', '-')}/{s.get('dropped', '-')}/{s.get('duplicated', '-')}/{s.get('reordered', '-')}"
    if not r:
        return "-", "-"
    return f"up {one('up')}, down {one('down')}", fmt((r.get("up") or {}).get("coap_repeats"))


def table(outcomes: list[Outcome]) -> str:
    head = ["cell", "loss", "delay", "dup+reorder", "result", "exit", "wall s", "bytes", "retx (client log)",
            "repeated MIDs at relay", "fresh sessions", "relay fwd/drop/dup/reord", "sha256 ok", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for o in outcomes:
        counters, repeats = relay_cells(o)
        verdict = o.verdict if o.kind in ("updated", "") else f"{o.verdict} ({o.kind})"
        row = [o.cell, f"{o.loss}%", f"{o.delay} ms", "5%+5%" if o.dr else "-", fmt(o.result), fmt(o.exit),
               fmt(o.wall, ".1f"), fmt(o.bytes), fmt(o.retransmissions), repeats,
               fmt(None if o.sessions is None else max(o.sessions - 1, 0)), counters,
               {"yes": "yes", "WRONG": "**WRONG**", "-": "- (none)"}[o.installed], verdict]
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)


def prepare_release(bin_dir: Path, root: Path, seed: int) -> tuple[Path, Path, str]:
    rel = cli.make_release(bin_dir, root, size=IMAGE_SIZE, model=MODEL, version=VERSION, name=IMAGE_NAME, seed=seed)
    return rel.trust, rel.repo, rel.digest


def select_cells(cells: list[Cell], patterns: str | None) -> list[Cell]:
    if not patterns:
        return cells
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    return [c for c in cells if any(fnmatch.fnmatchcase(c.name, p) or p == c.name for p in wanted)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the small matrix (make test)")
    parser.add_argument("--size", type=int, default=None,
                        help="image bytes (default 256 KiB; --quick: 64 KiB, to keep make test short)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the image and the relays (default random)")
    parser.add_argument("--cells", help="comma-separated cell names or globs, e.g. 'loss20-*,*-dr'")
    parser.add_argument("--jobs", type=int, default=None,
                        help="cells run at once, each in its own namespaces (default: 1; --quick: all)")
    parser.add_argument("--timeout", type=float, default=30, help="the client's --timeout (default 30)")
    parser.add_argument("--ack-timeout", type=float, default=None,
                        help="the client's --ack-timeout (default: the client's, 2 s; --quick: 1 s)")
    parser.add_argument("--cell-limit", type=float, default=None,
                        help="kill a client still running after this many seconds: a hang (default 1800; --quick 600)")
    parser.add_argument("--bin", type=Path, default=default_bin_dir(),
                        help="folder of coap-fw-server and coap-fw-client (default $COAPFW_BIN or .build/debug)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep every cell's logs and state here")
    parser.add_argument("--list", action="store_true", help="print the selected cells and exit")
    args = parser.parse_args(argv)

    global IMAGE_SIZE
    IMAGE_SIZE = args.size or (64 * 1024 if args.quick else 256 * 1024)
    cells = select_cells(QUICK_CELLS if args.quick else FULL_CELLS, args.cells)
    if not cells:
        parser.error(f"--cells {args.cells!r} selects no cell of {[c.name for c in (QUICK_CELLS if args.quick else FULL_CELLS)]}")
    if args.list:
        print("\n".join(c.name for c in cells))
        return 0
    ack_timeout = args.ack_timeout if args.ack_timeout is not None else (1.0 if args.quick else None)
    cell_limit = args.cell_limit or (600.0 if args.quick else 1800.0)
    jobs = max(1, args.jobs or (len(cells) if args.quick else 1))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)

    reason = netns_unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        print("RESULTS-JSON: " + json.dumps({"skipped": reason, "seed": seed, "passed": 0, "failed": 0, "cells": []}))
        return 0
    for program in (SERVER, CLIENT):
        if not (args.bin / program).is_file():
            print(f"{args.bin / program}: not found (build first, or --bin / $COAPFW_BIN)", file=sys.stderr)
            return 2

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    keep = args.workdir is not None
    root = args.workdir or Path(tempfile.mkdtemp(prefix="coapfw-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    log(f"fault matrix: {len(cells)} cells ({'quick' if args.quick else 'full'}), seed {seed}, jobs {jobs}, "
        f"client --timeout {args.timeout:g}, ACK timeout {ack_timeout or 'default (2 s)'}, "
        f"{IMAGE_SIZE // 1024} KiB image, work folder {root}")
    trust, repo, digest = prepare_release(args.bin, root, seed)

    def one(cell: Cell) -> Outcome:
        cell_seed = (seed + zlib.crc32(cell.name.encode())) % (1 << 31)
        log(f"[{cell.name}] start")
        o = run_cell(cell, bin_dir=args.bin, workdir=root / cell.name, trust=trust, repo=repo, digest=digest,
                     seed=cell_seed, timeout=args.timeout, ack_timeout=ack_timeout, cell_limit=cell_limit)
        log(f"[{cell.name}] {o.verdict} {o.kind}: {o.result} after {fmt(o.wall)} s, {o.link}"
            + (f" -- {'; '.join(o.reasons)}" if o.reasons else ""))
        return o

    started = time.monotonic()
    # Slowest cells (most loss, then most delay) first, so that --jobs N
    # ends as early as it can; the table keeps the matrix order.
    order = sorted(cells, key=lambda c: (-c.loss, -c.delay, not c.dr))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = dict(zip(order, pool.map(one, order)))
    outcomes = [done[c] for c in cells]
    total = time.monotonic() - started

    print()
    print(table(outcomes))
    print()
    links = sorted({o.link.split(" seed")[0] for o in outcomes if o.link})
    print(f"link emulation: {', '.join(links) or '-'}; relay counters per direction are "
          "forwarded/dropped/duplicated/reordered; 'repeated MIDs at relay' are the client's "
          "retransmissions as they reached the relay (before loss)")
    passed = [o for o in outcomes if o.verdict == "PASS"]
    failed_code = [o for o in passed if o.kind == "failed-with-code"]
    bad = [o for o in outcomes if o.verdict != "PASS"]
    wrong = [o for o in outcomes if o.installed == "WRONG"]
    print(f"{len(passed)}/{len(outcomes)} cells passed ({len(passed) - len(failed_code)} updated, "
          f"{len(failed_code)} failed with a result code within the time-out), {len(bad)} failed, "
          f"{len(wrong)} installed wrong bytes; {total:.0f} s in all")
    for o in failed_code:
        print(f"  failed with a code: {o.cell}: {o.result} after {o.wall} s"
              + (f" (stall {o.stall} s)" if o.stall is not None else "") + f": {o.reason}")
    for o in outcomes:
        notes = o.reasons if o.verdict == "PASS" else []
        for note in notes:
            print(f"  note: {o.cell}: {note}")
    for o in bad:
        print(f"  FAILED: {o.cell} ({o.kind}): {'; '.join(o.reasons)}; logs in {o.workdir}")
    if not bad and not keep:
        shutil.rmtree(root, ignore_errors=True)
    elif bad:
        print(f"work folder kept: {root}")
    print("RESULTS-JSON: " + json.dumps({"skipped": None, "seed": seed, "passed": len(passed), "failed": len(bad),
                                         "cells": [o.__dict__ for o in outcomes]}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
