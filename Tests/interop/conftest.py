"""Shared fixtures for the coap-fw interop tests.

These tests drive the already-built binaries (``coap-fw-server`` and
``coap-fw-client``) and check what they write with independent Python
implementations (pycose, cbor2, cryptography). They never build anything.

The binaries are taken from ``$COAPFW_BIN`` (a folder), defaulting to
``<repo>/.build/debug``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = REPO_ROOT / "Vectors"

SERVER = "coap-fw-server"
CLIENT = "coap-fw-client"

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
    path = Path(os.environ.get("COAPFW_BIN", REPO_ROOT / ".build" / "debug"))
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
    """``run(program, *args, cwd=None, input=None)`` -> CompletedProcess.

    ``program`` is ``"coap-fw-server"`` / ``"coap-fw-client"`` (or the short
    forms ``"server"`` / ``"client"``) and is resolved in ``bin_dir``; every
    argument is converted with ``str``. Output is captured as text; the exit
    status is *not* checked, the tests look at it themselves.
    """

    def _run(program: str, *args, cwd=None, input=None) -> subprocess.CompletedProcess:
        name = {"server": SERVER, "client": CLIENT}.get(program, program)
        cmd = [str(bin_dir / name), *(str(a) for a in args)]
        return subprocess.run(
            cmd,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    return _run


@pytest.fixture
def fw_repo(tmp_path: Path) -> Path:
    """An empty (not yet existing) repository folder for publish."""
    return tmp_path / "repo"


@pytest.fixture
def keygen(run, tmp_path: Path):
    """``keygen(alg, name=None)`` -> (dir, CompletedProcess); asserts success."""
    counter = {"n": 0}

    def _keygen(alg: str, name: str | None = None):
        counter["n"] += 1
        out = tmp_path / (name or f"keys-{alg.lower()}-{counter['n']}")
        proc = run(SERVER, "keygen", "--alg", alg, "--out", out)
        assert proc.returncode == 0, (
            f"keygen --alg {alg} failed ({proc.returncode}): {proc.stderr}"
        )
        return out, proc

    return _keygen

