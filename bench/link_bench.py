#!/usr/bin/env python3
"""Downloads over an emulated constrained link (issue #11): our `update` and
`fetch` against libcoap's coap-client-notls, the same image from the same
server (ours), through the fault relay's named link profiles
(Tests/faults/relay.py: lowpan = 100 kbit/s, 50 ms each way, 40 B overhead,
4 KiB drop-tail queue; lossy-lowpan = the same with 5 % loss each way;
nbiot = 30 kbit/s, 500 ms each way).

Prints, per profile, image size and block size: wall time per client and
what the link could carry the image in (payload + 40 B per block, at the
rate; no headers of CoAP counted), i.e. how much of the link a lock-step
client uses. Every download's SHA-256 is checked.

    PYTHONPATH=Tests python3 bench/link_bench.py [--profiles lowpan lossy-lowpan] [--bin .build/debug]
"""
import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import BIN, free_udp_port, publish, random_file, sha256_file, table, wait_coap
from support import cli
from support.netns import relay_stats, start_relay
from support.procs import start_process

RATES = {"lowpan": 100_000, "lossy-lowpan": 100_000, "nbiot": 30_000}
CASES = [(16 * 1024, 64), (128 * 1024, 1024)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", nargs="+", default=["lowpan", "lossy-lowpan"], choices=sorted(RATES))
    ap.add_argument("--bin", type=Path, default=BIN)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    client, server = str(args.bin / "coap-fw-client"), str(args.bin / "coap-fw-server")
    work = Path(tempfile.mkdtemp(prefix="coapfw-link-"))
    rows = []
    procs = []
    try:
        images = [random_file(work / f"fw{size}.bin", size) for size, _ in CASES]
        for (size, block), image in zip(CASES, images):  # a model per case: an update fetches only its image
            repo, pub, _ = publish(work, [image], model=f"link{block}")
        port = free_udp_port()
        procs.append(start_process("server", [server, *cli.serve_args(repo, port=port, verbose=0)], None, check_exit=False))
        wait_coap(port)
        for profile in args.profiles:
            for (size, block), image in zip(CASES, images):
                digest = sha256_file(image)
                capacity = (size + 40 * -(-size // block)) * 8 / RATES[profile]
                relay_port = free_udp_port()
                log = work / f"relay-{profile}-{block}.log"
                relay = start_relay(lambda name, argv: start_process(name, argv, log, check_exit=False), None,
                                    relay_port, port, seed=args.seed, extra=["--profile", profile])
                procs.append(relay)
                origin = f"coap://127.0.0.1:{relay_port}"
                url = f"{origin}/.well-known/firmware/example.com/link{block}/1.0.0/{image.name}"
                out = work / "out.bin"
                state = work / "state"
                runs = {
                    "libcoap coap-client-notls": (["coap-client-notls", "-B", "600", "-b", str(block), "-o", str(out), url], out),
                    "coap-fw-client fetch": ([client, "fetch", "--block-size", str(block), "-o", str(out), url], out),
                    "coap-fw-client update": ([client, "update", "--trust", str(pub), "--manufacturer", "example.com",
                                               "--model", f"link{block}", "--state", str(state), "--origin", origin,
                                               "--block-size", str(block), "--timeout", "120"],
                                              state / "installed" / image.name),
                }
                for name, (argv, result) in runs.items():
                    shutil.rmtree(state, ignore_errors=True)
                    out.unlink(missing_ok=True)
                    started = time.monotonic()
                    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
                    wall = time.monotonic() - started
                    ok = p.returncode == 0 and result.exists() and sha256_file(result) == digest
                    rows.append([profile, f"{size // 1024} KiB / {block}", name, f"{wall:.1f}" if ok else f"FAILED ({p.returncode})",
                                 f"{capacity:.1f}", f"{capacity / wall:.0%}" if ok else "-"])
                    print(" | ".join(rows[-1]), flush=True)
                relay.stop()
                stats = relay_stats(relay.log()) or {}
                up, down = stats.get("up", {}), stats.get("down", {})
                print(f"  relay: up dropped {up.get('dropped_loss')} loss / {up.get('dropped_queue')} queue, "
                      f"down dropped {down.get('dropped_loss')} loss / {down.get('dropped_queue')} queue, "
                      f"down link bytes {down.get('link_bytes')}", flush=True)
        print()
        print(table(["profile", "image / block", "client", "wall s", "link could in s", "link used"], rows))
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
