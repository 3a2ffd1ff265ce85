#!/usr/bin/env python3
"""Server benchmark (issue #3): our coap-fw-server vs libcoap's example
server (coap-server-notls, body PUT first) vs aiocoap-fileserver, fetched by
libcoap's coap-client-notls in one run on loopback, alternating A B C.

Prints median wall times and ratios, concurrent-client times, and server
RSS while 128 clients fetch an 8 MiB image at once.

    PYTHONPATH=Tests python3 bench/server_bench.py [--rounds 5] [--quick]

(`make bench` sets PYTHONPATH: the benchmarks use the test kit, Tests/support.)
"""
import argparse
import concurrent.futures
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import (free_udp_port, median, publish, random_file, rss_kib, run_measured, serve, sha256_file, background,
                    table, wait_coap)


def fetch(url, out, block):
    wall, cpu, rss, code = run_measured(["coap-client-notls", "-B", "300", "-b", str(block), "-o", str(out), url])
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and clients (smoke run)")
    args = ap.parse_args()
    rounds = 2 if args.quick else args.rounds
    work = Path(tempfile.mkdtemp(prefix="coapfw-bench-"))
    big = random_file(work / "firmware.bin", 8 * 1024 * 1024)
    small = random_file(work / "small.bin", 1024 * 1024, seed=2)
    repo, _, files = publish(work / "a", [big])
    repo_small, _, files_small = publish(work / "b", [small], model="c7961")
    # One folder for everyone: aiocoap-fileserver and ours serve the same files.
    digests = {"big": sha256_file(big), "small": sha256_file(small)}
    ours_port, libcoap_port, aio_port = free_udp_port(), free_udp_port(), free_udp_port()
    import shutil
    shutil.copytree(repo_small / ".well-known" / "firmware" / "example.com" / "c7961",
                    repo / ".well-known" / "firmware" / "example.com" / "c7961")

    servers = {}
    servers["coap-fw-server"] = serve(repo, ours_port)
    servers["libcoap coap-server"] = background(["coap-server-notls", "-A", "127.0.0.1", "-p", str(libcoap_port), "-d", "16"])
    servers["aiocoap-fileserver"] = background(["aiocoap-fileserver", "--bind", f"127.0.0.1:{aio_port}", str(repo)])
    try:
        wait_coap(ours_port)
        wait_coap(libcoap_port)
        wait_coap(aio_port)
        # libcoap's example server cannot serve files: PUT the bodies first.
        for name, path in (("big", big), ("small", small)):
            subprocess.run(["coap-client-notls", "-m", "put", "-b", "1024", "-f", str(path),
                            f"coap://127.0.0.1:{libcoap_port}/{name}"], check=True, capture_output=True, timeout=300)
        urls = {
            "coap-fw-server": {"big": f"coap://127.0.0.1:{ours_port}/.well-known/firmware/example.com/c7960/1.0.0/firmware.bin",
                               "small": f"coap://127.0.0.1:{ours_port}/.well-known/firmware/example.com/c7961/1.0.0/small.bin"},
            "libcoap coap-server": {"big": f"coap://127.0.0.1:{libcoap_port}/big", "small": f"coap://127.0.0.1:{libcoap_port}/small"},
            "aiocoap-fileserver": {"big": f"coap://127.0.0.1:{aio_port}/.well-known/firmware/example.com/c7960/1.0.0/firmware.bin",
                                   "small": f"coap://127.0.0.1:{aio_port}/.well-known/firmware/example.com/c7961/1.0.0/small.bin"},
        }
        cases = [("8 MiB, -b 1024", "big", 1024), ("1 MiB, -b 64", "small", 64)]
        times = {(s, c[0]): [] for s in servers for c in cases}
        for r in range(rounds):
            for label, which, block in cases:
                for name in servers:  # alternate A B C within each round
                    out = work / f"out-{r}"
                    t = fetch(urls[name][which], out, block)
                    ok = out.exists() and sha256_file(out) == digests[which]
                    if not ok:
                        print(f"WRONG BYTES from {name} ({label}, round {r})", file=sys.stderr)
                        sys.exit(1)
                    times[(name, label)].append(t)
        rows = []
        for label, _, _ in cases:
            ref = median(times[("libcoap coap-server", label)])
            for name in servers:
                m = median(times[(name, label)])
                rows.append([label, name, f"{m:.3f}", f"{m / ref:.2f}x", " ".join(f"{x:.2f}" for x in times[(name, label)])])
        print(f"\nSingle client, coap-client-notls, {rounds} rounds alternating (median wall s; ratio to libcoap's server)\n")
        print(table(["transfer", "server", "median s", "vs libcoap", "all runs"], rows))

        # Concurrency: N coap-client processes at once fetching 1 MiB.
        rows = []
        for n in ([8, 32] if args.quick else [32, 128]):
            for name in ("coap-fw-server", "libcoap coap-server"):
                outs = [work / f"c{name[:3]}{i}" for i in range(n)]
                start = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(n) as pool:
                    list(pool.map(lambda o: fetch(urls[name]["small"], o, 1024), outs))
                wall = time.perf_counter() - start
                good = sum(1 for o in outs if o.exists() and sha256_file(o) == digests["small"])
                rows.append([n, name, f"{wall:.2f}", f"{good}/{n}"])
        print("\nConcurrent clients fetching 1 MiB at -b 1024 (wall s for all)\n")
        print(table(["clients", "server", "wall s", "correct"], rows))

        # Memory: 128 clients fetching the 8 MiB image at once; sample RSS.
        n = 16 if args.quick else 128
        rows = []
        for name in ("coap-fw-server", "libcoap coap-server"):
            pid = servers[name].pid
            before, _ = rss_kib(pid)
            peak = [0]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kib(pid)[0])
                    time.sleep(0.02)

            t = threading.Thread(target=sample)
            t.start()
            outs = [work / f"m{i}" for i in range(n)]
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                list(pool.map(lambda o: fetch(urls[name]["big"], o, 1024), outs))
            wall = time.perf_counter() - start
            stop.set()
            t.join()
            good = sum(1 for o in outs if o.exists() and sha256_file(o) == digests["big"])
            rows.append([name, n, f"{before / 1024:.1f}", f"{peak[0] / 1024:.1f}", f"{wall:.1f}", f"{good}/{n}"])
            for o in outs:
                o.unlink(missing_ok=True)
        print(f"\nServer RSS while {n} clients fetch the 8 MiB image at once\n")
        print(table(["server", "clients", "RSS before MiB", "peak RSS MiB", "wall s", "correct"], rows))
    finally:
        for s in servers.values():
            s.stop()
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
