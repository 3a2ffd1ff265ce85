"""Wrappers for the command lines: coap-fw-server (keygen, publish, serve
arguments), coap-fw-client (update, status, verify) and libcoap's client,
and the checks of an update's outcome.

Every wrapper takes the folder of the binaries first and returns a ``Run``;
none raises on a non-zero exit unless asked to check it.
"""

from __future__ import annotations

import json as jsonlib
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from support.files import sha256_file, write_random_file
from support.paths import CLIENT, LIBCOAP_CLIENT, MANUFACTURER, MODEL, SERVER, authority
from support.procs import crashes


@dataclass
class Run:
    """One finished invocation."""

    args: list
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    json: dict | None = None

    def describe(self) -> str:
        return (f"command: {' '.join(map(str, self.args))}\n"
                f"exit status: {self.returncode} after {self.elapsed:.1f} s\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-6000:]}")


def run_binary(bin_dir: Path, program: str, *args, timeout: float = 120, prefix=(),
               parse_json: bool = False) -> Run:
    """Runs ``program`` from ``bin_dir`` (``"server"`` / ``"client"`` are short
    for the two binaries), optionally behind ``prefix`` (e.g. ``ip netns exec
    NS``). Output is captured as text; a hang past ``timeout`` fails."""
    program = {"server": SERVER, "client": CLIENT}.get(program, program)
    cmd = [*map(str, prefix), str(Path(bin_dir) / program), *map(str, args)]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise AssertionError(f"{program} did not finish within {timeout} s\ncommand: {' '.join(cmd)}\n"
                             f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-6000:]}") from None
    result = Run(cmd, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    if parse_json:
        try:
            result.json = jsonlib.loads(proc.stdout)
        except ValueError:
            result.json = None
    return result


def _checked(run: Run, check: bool, what: str) -> Run:
    assert not check or run.returncode == 0, f"{what} failed\n{run.describe()}"
    return run


# ---------------------------------------------------------------------------
# coap-fw-server
# ---------------------------------------------------------------------------

def keygen(bin_dir: Path, out: Path, alg: str = "ES256", *extra, check: bool = True) -> Run:
    """``keygen --alg ALG --out OUT``; with ``check`` it must succeed."""
    return _checked(run_binary(bin_dir, SERVER, "keygen", "--alg", alg, "--out", out, *extra, timeout=60),
                    check, f"keygen --alg {alg}")


def publish_args(repo: Path, key: Path, model: str, version: str, *, image: Path | None = None,
                 components=(), manufacturer: str = MANUFACTURER, timestamp: str | None = None,
                 digests=(), extra=()) -> list[str]:
    """The arguments of ``coap-fw-server publish`` (after the program)."""
    args = ["publish", "--repo", repo, "--key", key, "--manufacturer", manufacturer,
            "--model", model, "--version", version]
    if image is not None:
        args += ["--image", image]
    for name, path in components:
        args += ["--component", f"{name}={path}"]
    if timestamp is not None:
        args += ["--timestamp", timestamp]
    for d in digests:
        args += ["--digest", d]
    return [str(a) for a in [*args, *extra]]


def publish(bin_dir: Path, repo: Path, key: Path, model: str, version: str, *, check: bool = True,
            timeout: float = 300, **kw) -> Run:
    """``publish`` (keywords as for ``publish_args``); with ``check`` it must succeed."""
    return _checked(run_binary(bin_dir, SERVER, *publish_args(repo, key, model, version, **kw), timeout=timeout),
                    check, f"publish {model} {version}")


def serve_args(repo: Path, *extra, hosts=("127.0.0.1",), port: int | None = None,
               dtls_host: str | None = None, dtls_port: int | None = None, psk_file: Path | None = None,
               verbose: int = 1) -> list[str]:
    """The arguments of ``coap-fw-server serve`` (after the program): plain
    CoAP on ``port`` at every host (``--no-plain`` without a port), DTLS on
    ``dtls_port``."""
    args = ["serve", "--repo", repo]
    if port is not None:
        for h in hosts:
            args += ["--listen", authority(h, port)]
    else:
        args.append("--no-plain")
    if dtls_port is not None:
        args += ["--listen-dtls", authority(dtls_host or hosts[0], dtls_port)]
    if psk_file is not None:
        args += ["--psk-file", psk_file]
    if verbose:
        args.append("-" + "v" * verbose)
    return [str(a) for a in [*args, *extra]]


@dataclass
class Release:
    """Keys and a repository with one published release (see ``make_release``)."""

    keys: Path
    repo: Path
    model: str
    version: str
    image: Path
    digest: str
    alg: str = "ES256"

    @property
    def key(self) -> Path:
        return self.keys / ("private.hss" if self.alg == "HSS-LMS" else "private.pem")

    @property
    def trust(self) -> Path:
        return self.keys / ("public.hss" if self.alg == "HSS-LMS" else "public.pem")

    @property
    def data(self) -> bytes:
        return self.image.read_bytes()


def make_release(bin_dir: Path, root: Path, *, size: int, model: str = MODEL, version: str = "1.0.0",
                 name: str = "fw.bin", alg: str = "ES256", seed=None) -> Release:
    """Keys in ROOT/keys (made unless there), a random image of ``size`` bytes
    in ROOT/images/<version>/<name>, published into ROOT/repo."""
    keys = Path(root) / "keys"
    if not keys.exists():
        keygen(bin_dir, keys, alg)
    image = Path(root) / "images" / version / name
    digest = write_random_file(image, size, seed=seed)
    release = Release(keys, Path(root) / "repo", model, version, image, digest, alg)
    publish(bin_dir, release.repo, release.key, model, version, image=image)
    return release


# ---------------------------------------------------------------------------
# coap-fw-client
# ---------------------------------------------------------------------------

def update_args(bin_dir: Path, trust: Path, model: str, state: Path, *extra,
                manufacturer: str = MANUFACTURER) -> list[str]:
    """The whole command line of ``coap-fw-client update ... --json``."""
    return [str(a) for a in (Path(bin_dir) / CLIENT, "update", "--trust", trust, "--manufacturer", manufacturer,
                             "--model", model, "--state", state, "--json", *extra)]


def update(bin_dir: Path, trust: Path, model: str, state: Path, *extra, manufacturer: str = MANUFACTURER,
           timeout: float = 120, prefix=()) -> Run:
    """``update ... --json`` -> Run with ``.json`` parsed (None if it is not JSON)."""
    cmd = update_args(bin_dir, trust, model, state, *extra, manufacturer=manufacturer)
    return run_binary(bin_dir, CLIENT, *cmd[1:], timeout=timeout, prefix=prefix, parse_json=True)


def status(bin_dir: Path, state: Path, *, check: bool = True) -> Run:
    """``status --state STATE --json``; with ``check`` it must succeed with JSON."""
    run = run_binary(bin_dir, CLIENT, "status", "--state", state, "--json", timeout=30, parse_json=True)
    assert not check or (run.returncode == 0 and run.json is not None), f"status --json failed\n{run.describe()}"
    return run


def verify(bin_dir: Path, trusts, manifest: Path, *images, extra=()) -> Run:
    """``verify --trust T... MANIFEST [--image I]... --json`` -> Run with ``.json``."""
    args = ["verify"]
    for trust in trusts if isinstance(trusts, (list, tuple)) else [trusts]:
        args += ["--trust", trust]
    args.append(manifest)
    for image in images:
        args += ["--image", image]
    return run_binary(bin_dir, CLIENT, *args, "--json", *extra, timeout=60, parse_json=True)


def assert_updated(run: Run, version: str, size: int | None = None):
    """Exit 0, result updated, version, and (if given) bytesTransferred == size."""
    doc = run.json
    assert doc is not None, f"client printed no JSON\n{run.describe()}"
    assert run.returncode == 0 and doc.get("result") == "updated", f"expected updated\n{run.describe()}"
    assert doc.get("version") == version, f"version {doc.get('version')!r} != {version!r}\n{run.describe()}"
    if size is not None:
        assert doc.get("bytesTransferred") == size, (
            f"bytesTransferred {doc.get('bytesTransferred')} != {size}\n{run.describe()}")
    assert doc.get("source"), f"no source\n{run.describe()}"
    assert doc["attempts"] and doc["attempts"][-1]["uri"] == doc["source"], run.describe()
    assert doc["attempts"][-1]["result"] == "updated", run.describe()
    assert not crashes(run.stderr), f"client crashed?\n{run.describe()}"


def assert_installed(bin_dir: Path, state: Path, version: str, expected: list[tuple[str, Path | str, int]],
                     manufacturer: str = MANUFACTURER) -> dict:
    """STATE/installed/<name> holds each expected image (name, sha256 or
    source file, size), and `status --json` lists exactly these, in order."""
    wanted = []
    for name, source, size in expected:
        digest = sha256_file(source) if isinstance(source, Path) else source
        wanted.append((name, digest, size))
        installed = state / "installed" / name
        assert installed.is_file(), f"{installed} missing; state: {sorted(map(str, state.rglob('*')))}"
        assert installed.stat().st_size == size, f"{installed}: {installed.stat().st_size} bytes, expected {size}"
        assert sha256_file(installed) == digest, f"{installed}: SHA-256 differs from the published image"
    doc = status(bin_dir, state).json
    assert doc.get("version") == version, doc
    assert doc.get("manufacturer") == manufacturer, doc
    got = [(c.get("name"), c.get("sha256"), c.get("size")) for c in doc.get("components", [])]
    assert got == wanted, f"status components {got} != {wanted}"
    for comp in doc["components"]:
        path = Path(comp["path"])
        path = path if path.is_absolute() else Path.cwd() / path
        assert path.resolve() == (state / "installed" / comp["name"]).resolve(), comp
    return doc


# ---------------------------------------------------------------------------
# libcoap's client
# ---------------------------------------------------------------------------

def coap_get(uri: str, out: Path, *args, client: str = LIBCOAP_CLIENT, timeout: float = 60):
    """libcoap's client with ``-o OUT`` -> (CompletedProcess, bytes or None):
    what it wrote (None when it wrote no file). coap-client exits 0 even on
    failure, so callers compare the bytes."""
    out = Path(out)
    if out.exists():
        out.unlink()
    proc = subprocess.run([client, "-B", str(int(timeout)), *map(str, args), "-o", str(out), uri],
                          capture_output=True, text=True, timeout=timeout + 10)
    return proc, (out.read_bytes() if out.exists() else None)
