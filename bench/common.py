"""Shared helpers for the benchmarks: start processes, time them, read RSS.

Benchmarks print tables; they assert only that every transfer delivered the
right bytes (a fast wrong answer is not a result). Loopback only.
"""
import hashlib
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("COAPFW_BIN", REPO / ".build" / "release"))
SERVER = str(BIN / "coap-fw-server")
CLIENT = str(BIN / "coap-fw-client")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def random_file(path, size, seed=1):
    """Deterministic pseudo-random bytes (fast: SHA-256 counter blocks repeated)."""
    block = b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() for i in range(2048))
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            piece = hashlib.sha256(block[:64] + i.to_bytes(8, "big")).digest() + block
            piece = piece[: min(left, len(piece))]
            f.write(piece)
            left -= len(piece)
            i += 1
    return path


def run_measured(argv, timeout=600, **kw):
    """Runs argv under GNU time; returns (wall s, cpu s, peak RSS KiB, returncode).

    GNU time, not os.wait4: Linux carries the forking parent's RSS high-water
    mark into a child's ru_maxrss, so a small child would report the Python
    benchmark's own size.
    """
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "@@%M %U %S"] + list(argv), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout, **kw)
    wall = time.perf_counter() - start
    line = [l for l in p.stderr.decode(errors="replace").splitlines() if l.startswith("@@")][-1]
    rss, user, sys_ = line[2:].split()
    return wall, float(user) + float(sys_), int(rss), p.returncode


def rss_kib(pid):
    """Current and peak resident set size of a process, KiB."""
    cur = peak = 0
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    except FileNotFoundError:
        pass
    return cur, peak


def wait_coap(port, path=".well-known/core", timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["coap-client-notls", "-B", "1", f"coap://127.0.0.1:{port}/{path}"],
                             capture_output=True, timeout=5)
        if out.stdout.strip():
            return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer")


class Proc:
    """A background process stopped with SIGTERM (then SIGKILL) on exit."""

    def __init__(self, argv, **kw):
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    @property
    def pid(self):
        return self.p.pid


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line, sep]
    for r in rows:
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(out)


def publish(workdir, images, version="1.0.0", model="c7960"):
    """keygen + publish; returns (repo, public key path, {name: path in repo})."""
    keys = Path(workdir) / "keys"
    if not (keys / "private.pem").exists():
        subprocess.run([SERVER, "keygen", "--alg", "ES256", "--out", str(keys)], check=True, capture_output=True)
    repo = Path(workdir) / "repo"
    args = [SERVER, "publish", "--repo", str(repo), "--key", str(keys / "private.pem"),
            "--manufacturer", "example.com", "--model", model, "--version", version]
    if len(images) == 1:
        args += ["--image", str(images[0])]
    else:
        for img in images:
            args += ["--component", f"{Path(img).stem}={img}"]
    subprocess.run(args, check=True, capture_output=True)
    base = repo / ".well-known" / "firmware" / "example.com" / model / version
    return repo, keys / "public.pem", {Path(i).name: base / Path(i).name for i in images}


def image_path(model="c7960", version="1.0.0", name="firmware.bin"):
    return f".well-known/firmware/example.com/{model}/{version}/{name}"
