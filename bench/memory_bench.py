#!/usr/bin/env python3
"""Client memory during a download (issue #11, item 3): our `update` of a
32 MiB image (the release build `make release` makes, which the README
installs) against libcoap's `coap-client-openssl` and `coap-client-notls`
fetching the same image from the same server (ours), on loopback.

Every 20 ms, /proc/PID/smaps: resident bytes per mapping (the binary,
each shared library, the heap and other anonymous memory) and the private
dirty bytes (Private_Dirty: pages this process wrote, i.e. heap, stacks,
relocated data; unlike Private_Clean it does not depend on whether another
process maps the same file at that moment); the table shows the sample
with the highest RSS, the peak private dirty figure, and GNU time's peak
RSS. Every download's SHA-256 is checked.

    PYTHONPATH=Tests python3 bench/memory_bench.py [--bin .build/release] [--size-mib 32]
"""
import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import BIN, free_udp_port, publish, random_file, sha256_file, table, wait_coap
from support import cli
from support.procs import start_process

GROUPS = [("binary", None), ("libcrypto", "libcrypto"), ("libssl", "libssl"), ("libc", "libc.so"),
          ("libstdc++", "libstdc++"), ("libcoap", "libcoap"), ("libcbor", "libcbor"), ("libm", "libm.so"),
          ("ld.so", "ld-linux"), ("other files", ""), ("heap and anonymous", "[anon]")]


def smaps(pid: int, binary: str):
    """{group: rss KiB}, private KiB, rss KiB of one sample (None once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    groups, private, total, current = {}, 0, 0, "heap and anonymous"
    for line in text.splitlines():
        head = line.split()
        if not head:
            continue
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            path = head[5] if len(head) > 5 else "[anon]"
            if path.startswith("[") or not path.startswith("/"):
                current = "heap and anonymous"
            elif Path(path).name == Path(binary).name:
                current = "binary"
            else:
                current = next((g for g, key in GROUPS if key and key != "[anon]" and key in path), "other files")
        elif head[0] == "Rss:":
            groups[current] = groups.get(current, 0) + int(head[1])
            total += int(head[1])
        elif head[0] == "Private_Dirty:":
            private += int(head[1])
    return groups, private, total


def measure(argv, binary):
    """Runs argv under GNU time, sampling smaps; (peak RSS KiB, peak private KiB, groups at peak, code, wall)."""
    started = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-f", "@@%M"] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    best = ({}, 0, 0)
    peak_private = 0
    child = None
    while p.poll() is None:
        if child is None:
            try:
                kids = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
                child = int(kids[0]) if kids else None
            except FileNotFoundError:
                pass
        if child is not None:
            sample = smaps(child, binary)
            if sample:
                peak_private = max(peak_private, sample[1])
                if sample[2] > best[2]:
                    best = sample
        time.sleep(0.02)
    err = p.stderr.read().decode(errors="replace")
    rss = int([l for l in err.splitlines() if l.startswith("@@")][-1][2:])
    return rss, peak_private, best[0], p.returncode, time.monotonic() - started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", type=Path, default=BIN)
    ap.add_argument("--size-mib", type=int, default=32)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="coapfw-mem-"))
    server = None
    try:
        size = args.size_mib * 1024 * 1024
        image = random_file(work / "mem.bin", size)
        repo, pub, _ = publish(work, [image], model="mem")
        port = free_udp_port()
        server = start_process("server", [str(args.bin / "coap-fw-server"), *cli.serve_args(repo, port=port, verbose=0)],
                               None, check_exit=False)
        wait_coap(port)
        origin = f"coap://127.0.0.1:{port}"
        url = f"{origin}/.well-known/firmware/example.com/mem/1.0.0/mem.bin"
        out, state = work / "out.bin", work / "state"
        client = str(args.bin / "coap-fw-client")
        runs = {
            "coap-fw-client update": ([client, "update", "--trust", str(pub), "--manufacturer", "example.com",
                                       "--model", "mem", "--state", str(state), "--origin", origin], state / "installed" / "mem.bin",
                                      client),
            "coap-client-openssl": (["coap-client-openssl", "-B", "600", "-o", str(out), url], out, "coap-client-openssl"),
            "coap-client-notls": (["coap-client-notls", "-B", "600", "-o", str(out), url], out, "coap-client-notls"),
        }
        rows, detail = [], []
        digest = sha256_file(image)
        for name, (argv, result, binary) in runs.items():
            # A freshly linked binary's pages are dirty in the page cache until written back, and smaps
            # counts them as Private_Dirty: write them back first.
            os.sync()
            shutil.rmtree(state, ignore_errors=True)
            out.unlink(missing_ok=True)
            rss, private, groups, code, wall = measure(argv, shutil.which(binary) or binary)
            ok = code == 0 and result.exists() and sha256_file(result) == digest
            rows.append([name, f"{wall:.1f}", f"{rss / 1024:.2f}", f"{private / 1024:.2f}", "yes" if ok else "NO"])
            detail.append([name] + [f"{groups.get(g, 0) / 1024:.2f}" for g, _ in GROUPS])
        print(f"\n{args.size_mib} MiB image on loopback, 1024-byte blocks\n")
        print(table(["client", "wall s", "peak RSS MiB (GNU time)", "peak private dirty MiB (smaps)", "right bytes"], rows))
        print("\nResident MiB by mapping at the sample with the highest RSS\n")
        print(table(["client"] + [g for g, _ in GROUPS], detail))
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
