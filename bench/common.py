"""What the benchmarks add to the test kit: timing a process, reading RSS,
printing tables, and a published release to fetch.

Processes, ports, digests, keygen/publish and CoAP probes come from the test
kit (Tests/support, the package ``support``): `make bench` puts Tests on
PYTHONPATH; by hand, ``PYTHONPATH=Tests python3 bench/server_bench.py``.

Benchmarks print tables; they assert only that every transfer delivered the
right bytes (a fast wrong answer is not a result). Loopback only.
"""
import statistics
import subprocess
import time
from pathlib import Path

from support import cli, coap
from support.files import sha256_file, write_random_file
from support.paths import default_bin_dir, image_path
from support.ports import free_udp_port
from support.procs import proc_status_kib, start_process, wait_for

__all__ = ["BIN", "CLIENT", "SERVER", "free_udp_port", "image_path", "median", "publish", "random_file",
           "rss_kib", "run_measured", "serve", "sha256_file", "background", "table", "wait_coap"]

BIN = default_bin_dir("release")
SERVER = str(BIN / "coap-fw-server")
CLIENT = str(BIN / "coap-fw-client")


def random_file(path, size, seed=1):
    """Reproducible pseudo-random bytes (the same file for the same seed)."""
    write_random_file(Path(path), size, seed=seed)
    return Path(path)


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
    """Current and peak resident set size of a process, KiB (0, 0 once it is gone)."""
    try:
        return proc_status_kib(pid, "VmRSS"), proc_status_kib(pid, "VmHWM")
    except FileNotFoundError:
        return 0, 0


def background(argv):
    """A background process, output discarded; ``.stop()`` sends SIGTERM (then SIGKILL)."""
    return start_process(Path(argv[0]).name, argv, None, check_exit=False)


def serve(repo, port):
    """Our server on 127.0.0.1:PORT."""
    return background([SERVER, *cli.serve_args(repo, port=port, verbose=0)])


def wait_coap(port, path=".well-known/core", timeout=10):
    """Until something answers a CoAP GET on 127.0.0.1:PORT."""
    wait_for(lambda: coap.probe("127.0.0.1", port, path, timeout=1) is not None, timeout,
             what=f"a CoAP answer on port {port}")


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
    """keygen (once per workdir) + publish; returns (repo, public key path,
    {name: path in repo})."""
    keys = Path(workdir) / "keys"
    if not (keys / "private.pem").exists():
        cli.keygen(BIN, keys)
    repo = Path(workdir) / "repo"
    if len(images) == 1:
        cli.publish(BIN, repo, keys / "private.pem", model, version, image=images[0])
    else:
        cli.publish(BIN, repo, keys / "private.pem", model, version,
                    components=[(Path(img).stem, img) for img in images])
    return repo, keys / "public.pem", {Path(i).name: repo / image_path(model, version, Path(i).name) for i in images}
