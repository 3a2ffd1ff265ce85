"""Fixtures of the coap-fw interop tests (the helpers are in Tests/support).

These tests drive the already-built binaries (``coap-fw-server`` and
``coap-fw-client``) and check what they write with independent Python
implementations (pycose, cbor2, cryptography). They never build anything.

The binaries are taken from ``$COAPFW_BIN`` (a folder), defaulting to
``<repo>/.build/debug``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from support import cli
from support.paths import CLIENT, REPO_ROOT, SERVER, VECTORS_DIR, default_bin_dir
from support.servers import Processes

# No single invocation should come anywhere near this; it only stops a hung
# binary from hanging the whole suite.
RUN_TIMEOUT = 20


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS_DIR


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    path = default_bin_dir()
    missing = [name for name in (SERVER, CLIENT) if not (path / name).is_file()]
    if missing:
        pytest.fail(
            f"binaries {missing} not found in {path} "
            "(build the package first or point COAPFW_BIN at them)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def run(bin_dir: Path):
    """``run(program, *args)`` -> support.cli.Run: ``program`` is
    ``"coap-fw-server"`` / ``"coap-fw-client"`` (or ``"server"`` /
    ``"client"``) from ``bin_dir``. The exit status is *not* checked."""
    return functools.partial(cli.run_binary, bin_dir, timeout=RUN_TIMEOUT)


@pytest.fixture
def fw_repo(tmp_path: Path) -> Path:
    """An empty (not yet existing) repository folder for publish."""
    return tmp_path / "repo"


@pytest.fixture
def keygen(bin_dir: Path, tmp_path: Path):
    """``keygen(alg, name=None)`` -> (dir, Run) in tmp_path; asserts success."""
    counter = {"n": 0}

    def _keygen(alg: str, name: str | None = None):
        counter["n"] += 1
        out = tmp_path / (name or f"keys-{alg.lower()}-{counter['n']}")
        return out, cli.keygen(bin_dir, out, alg)

    return _keygen


def _stopped(group: Processes):
    problems = group.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def procs(bin_dir: Path, tmp_path: Path):
    """A support.servers.Processes for the test: at teardown every process
    is stopped with SIGTERM, and our server (and the malicious one) must then
    exit 0 with no crash text in its log."""
    group = Processes(bin_dir, tmp_path)
    yield group
    _stopped(group)


@pytest.fixture
def server(procs: Processes):
    """``server(repo, *extra_args, host=..., hosts=[...], dtls=..., psk_file=...)``
    -> Proc of ``coap-fw-server serve``, already answering (see
    Processes.server); checked at teardown like every ``procs`` process."""
    return procs.server


@pytest.fixture(scope="module")
def module_procs(bin_dir: Path, tmp_path_factory):
    """A Processes whose processes live for the whole test module."""
    group = Processes(bin_dir, tmp_path_factory.mktemp("servers"))
    yield group
    _stopped(group)


@pytest.fixture(scope="session")
def coap_get():
    """support.cli.coap_get: libcoap's client -> (CompletedProcess, bytes or None)."""
    return cli.coap_get
