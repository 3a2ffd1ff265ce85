#!/usr/bin/env python3
"""Client benchmark (issue #4): our full update (manifest, signature,
per-block digests, staging, atomic install) and our raw block-wise fetch vs
libcoap's coap-client-notls and aiocoap's client, all fetching the same
8 MiB image from the same server (ours) in one run, alternating.

Reports wall time, CPU time and peak RSS per client, the verification
overhead (update vs raw fetch with the same transport), and our client's
peak RSS for a 1 MiB vs a 64 MiB image (optionally peak heap with
valgrind's massif: --massif).

    PYTHONPATH=Tests python3 bench/client_bench.py [--rounds 5] [--quick] [--massif]

(`make bench` sets PYTHONPATH: the benchmarks use the test kit, Tests/support.)
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import (CLIENT, free_udp_port, median, publish, random_file, run_measured, serve, sha256_file, table,
                    wait_coap)

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--massif", action="store_true", help="also measure peak heap with valgrind massif (slow)")
    args = ap.parse_args()
    rounds = 2 if args.quick else args.rounds
    work = Path(tempfile.mkdtemp(prefix="coapfw-cbench-"))
    port = free_udp_port()
    try:
        img = random_file(work / "firmware.bin", 8 * 1024 * 1024)
        digest = sha256_file(img)
        repo, pub, _ = publish(work, [img])
        server = serve(repo, port)
        wait_coap(port)
        origin = f"coap://127.0.0.1:{port}"
        url = f"{origin}/.well-known/firmware/example.com/c7960/1.0.0/firmware.bin"

        def update(state):
            shutil.rmtree(state, ignore_errors=True)
            return [CLIENT, "update", "--trust", str(pub), "--manufacturer", "example.com", "--model", "c7960",
                    "--state", str(state), "--origin", origin, "--timeout", "30"]

        clients = {
            "coap-fw-client update (verify+install)": lambda r: (update(work / f"state{r}"), work / f"state{r}" / "installed" / "firmware.bin"),
            "coap-fw-client fetch (raw)": lambda r: ([CLIENT, "fetch", "-o", str(work / "raw.bin"), url], work / "raw.bin"),
            "libcoap coap-client-notls": lambda r: (["coap-client-notls", "-B", "300", "-b", "1024", "-o", str(work / "lc.bin"), url], work / "lc.bin"),
            "aiocoap client": lambda r: ([sys.executable, str(HERE / "aiocoap_fetch.py"), url, str(work / "aio.bin"), "6"], work / "aio.bin"),
        }
        results = {name: [] for name in clients}
        for r in range(rounds):
            for name, make in clients.items():
                if name == "aiocoap client" and r >= (1 if args.quick else 2):
                    continue  # quadratic body concatenation: 25-33 s a run (PEERS.md)
                argv, out = make(r)
                if out.exists():
                    out.unlink()
                wall, cpu, rss, code = run_measured(argv)
                if code != 0 or not out.exists() or sha256_file(out) != digest:
                    print(f"WRONG RESULT from {name}: exit {code}", file=sys.stderr)
                    sys.exit(1)
                results[name].append((wall, cpu, rss))
                if name.startswith("coap-fw-client update"):
                    shutil.rmtree(work / f"state{r}", ignore_errors=True)
        ref = median([w for w, _, _ in results["libcoap coap-client-notls"]])
        rows = []
        for name, runs in results.items():
            w = median([x[0] for x in runs])
            c = median([x[1] for x in runs])
            m = max(x[2] for x in runs)
            rows.append([name, len(runs), f"{w:.3f}", f"{w / ref:.2f}x", f"{c:.3f}", f"{m / 1024:.1f}"])
        print(f"\n8 MiB image from coap-fw-server at 1024-byte blocks, loopback, alternating (median)\n")
        print(table(["client", "runs", "wall s", "vs libcoap", "CPU s", "peak RSS MiB"], rows))
        upd = median([x[0] for x in results["coap-fw-client update (verify+install)"]])
        raw = median([x[0] for x in results["coap-fw-client fetch (raw)"]])
        print(f"\nverification + install overhead: update {upd:.3f} s vs raw fetch {raw:.3f} s = {100 * (upd - raw) / raw:+.1f}%")

        # Memory: the engine never holds an image, so 1 MiB and 64 MiB should look the same.
        rows = []
        for size_mib in (1, 64):
            img2 = random_file(work / f"img{size_mib}.bin", size_mib * 1024 * 1024, seed=size_mib)
            repo2, pub2, _ = publish(work / f"r{size_mib}", [img2], model=f"m{size_mib}")
            shutil.copytree(repo2 / ".well-known" / "firmware" / "example.com" / f"m{size_mib}",
                            repo / ".well-known" / "firmware" / "example.com" / f"m{size_mib}")
            state = work / f"mstate{size_mib}"
            argv = [CLIENT, "update", "--trust", str(pub2), "--manufacturer", "example.com", "--model", f"m{size_mib}",
                    "--state", str(state), "--origin", origin, "--timeout", "30"]
            import time
            time.sleep(1.5)  # let the server's re-scan pick up the new model
            wall, cpu, rss, code = run_measured(argv)
            ok = code == 0 and sha256_file(state / "installed" / img2.name) == sha256_file(img2)
            heap = "-"
            if args.massif and shutil.which("valgrind"):
                shutil.rmtree(state, ignore_errors=True)
                mout = work / f"massif{size_mib}.out"
                subprocess.run(["valgrind", "--tool=massif", f"--massif-out-file={mout}", "--pages-as-heap=no"] + argv,
                               capture_output=True)
                peaks = [int(x) for x in re.findall(r"mem_heap_B=(\d+)", mout.read_text())]
                heap = f"{max(peaks) / 1024:.0f} KiB" if peaks else "?"
            rows.append([f"{size_mib} MiB", f"{wall:.2f}", f"{rss / 1024:.1f}", heap, "yes" if ok else "NO"])
        print("\nOur client's memory vs image size\n")
        print(table(["image", "wall s", "peak RSS MiB", "peak heap (massif)", "installed correctly"], rows))
        server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
