#!/usr/bin/env python3
"""Writes scripts/coap-fw-client.order, the function order `make release`
links the binaries with (lld --symbol-ordering-file): every function of the
client that runs during an update, so that they sit together and the pages
the kernel maps around each page fault (64 KiB) hold code that runs
(issue #11; docs/benchmarks.md "Client memory": 11.6 MiB without the order
file, 7.9 MiB with it).

It runs `coap-fw-client update` (COSE and JWS manifests, windowed and
lock-step, a split release) under valgrind's callgrind against our server
and keeps the names callgrind saw that the binary defines, sorted. A stale
file is harmless (unknown names are skipped; functions it misses are laid
out after the listed ones); `make bench-memory` shows what it is worth.

    PYTHONPATH=Tests python3 scripts/link_order.py [--bin .build/release]   # = make link-order
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import BIN, free_udp_port, publish, random_file, wait_coap  # noqa: E402
from support import cli  # noqa: E402
from support.procs import start_process  # noqa: E402

OUT = Path(__file__).resolve().parent / "coap-fw-client.order"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", type=Path, default=BIN)
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("link_order: needs valgrind (apt-get install valgrind)")
    work = Path(tempfile.mkdtemp(prefix="coapfw-order-"))
    server = None
    try:
        # callgrind cannot read the DWARF 5 of this toolchain: profile a copy without it.
        client = work / "coap-fw-client"
        subprocess.run(["objcopy", "--strip-debug", str(args.bin / "coap-fw-client"), str(client)], check=True)
        image = random_file(work / "order.bin", 256 * 1024)
        repo, pub, _ = publish(work, [image], model="order")
        port = free_udp_port()
        server = start_process("server", [str(args.bin / "coap-fw-server"), *cli.serve_args(repo, port=port, verbose=0)],
                               None, check_exit=False)
        wait_coap(port)
        names = set()
        runs = [["--format", "cbor"], ["--format", "json", "--lock-step"], ["--format", "cbor", "--block-size", "64"]]
        for i, extra in enumerate(runs):
            out = work / f"callgrind.{i}"
            argv = ["valgrind", "--tool=callgrind", "--demangle=no", "--compress-strings=no", "--compress-pos=no",
                    f"--callgrind-out-file={out}", str(client), "update", "--trust", str(pub), "--manufacturer",
                    "example.com", "--model", "order", "--state", str(work / f"state{i}"),
                    "--origin", f"coap://127.0.0.1:{port}", *extra]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                sys.exit(f"link_order: update {' '.join(extra)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
            for line in out.read_text(errors="replace").splitlines():
                m = re.match(r"c?fn=(?:\(\d+\) )?(.+)$", line)
                if m:
                    names.add(m.group(1).strip())
        defined = set(subprocess.run(["nm", "--defined-only", "--format=just-symbols", str(client)],
                                     capture_output=True, text=True, check=True).stdout.split())
        order = sorted(names & defined)
        OUT.write_text("".join(f"{n}\n" for n in order))
        print(f"{OUT}: {len(order)} functions")
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
