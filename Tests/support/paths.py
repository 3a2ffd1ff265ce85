"""Where things are: the repository, the binaries, SPEC §4 names."""

from __future__ import annotations

import os
from pathlib import Path

SUPPORT_DIR = Path(__file__).resolve().parent
TESTS_DIR = SUPPORT_DIR.parent
REPO_ROOT = TESTS_DIR.parent
VECTORS_DIR = REPO_ROOT / "Vectors"
FAULTS_DIR = TESTS_DIR / "faults"

SERVER = "coap-fw-server"
CLIENT = "coap-fw-client"
LIBCOAP_CLIENT = "coap-client-notls"
LIBCOAP_DTLS_CLIENT = "coap-client-openssl"

MANUFACTURER = "example.com"
MODEL = "c7960"
DOMAIN = "lan"
LOCAL_HOST = f"_firmware.{DOMAIN}"


def default_bin_dir(configuration: str = "debug") -> Path:
    """``$COAPFW_BIN`` or ``.build/<configuration>``: the folder of the binaries."""
    return Path(os.environ.get("COAPFW_BIN", REPO_ROOT / ".build" / configuration))


def model_path(model: str = MODEL, manufacturer: str = MANUFACTURER, kind: str = "firmware") -> str:
    """``.well-known/<kind>/<manufacturer>/<model>`` (kind ``manifest`` is the alias)."""
    return f".well-known/{kind}/{manufacturer}/{model}"


def manifest_path(model: str = MODEL, fmt: str = "cbor", manufacturer: str = MANUFACTURER) -> str:
    return f"{model_path(model, manufacturer)}/manifest.{fmt}"


def image_path(model: str = MODEL, version: str = "1.0.0", name: str = "fw.bin",
               manufacturer: str = MANUFACTURER) -> str:
    return f"{model_path(model, manufacturer)}/{version}/{name}"


def local_manifest_uri(model: str = MODEL, fmt: str = "cbor") -> str:
    """The manifest URI the client reports for the server found by local discovery."""
    return f"coap://{LOCAL_HOST}/{manifest_path(model, fmt)}"


def local_discovery_args(port: int, host: str = "127.0.0.1") -> list[str]:
    """`update` arguments that make ``host:port`` the local server (discovery in domain lan)."""
    return ["--domain", DOMAIN, "--resolve", f"{LOCAL_HOST}:{host}:{port}"]


# CoAP Content-Formats of a repository's files (SPEC §4): COSE_Sign1 and
# JSON manifests, everything else an octet stream.
CONTENT_FORMATS = {"manifest.cbor": 18, "manifest.json": 50}
OCTET_STREAM = 42


def content_format(name: str) -> int:
    """The Content-Format a server gives the repository file called ``name``."""
    return CONTENT_FORMATS.get(name, OCTET_STREAM)


def repo_file(root: Path, segments) -> Path | None:
    """The file of the repository folder ``root`` (resolved) that a
    request's Uri-Path ``segments`` name, as a Python peer server maps them;
    None when there is none or the path would leave the folder. The
    draft's second spelling (``.well-known/manifest/...``) answers the same
    (SPEC §4)."""
    segments = list(segments)
    if not segments or any(s in ("", ".", "..") or "/" in s for s in segments):
        return None
    if len(segments) >= 2 and segments[0] == ".well-known" and segments[1] == "manifest":
        segments = [".well-known", "firmware", *segments[2:]]
    path = root.joinpath(*segments)
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return None
    return path if path.is_file() else None


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def model_dir(repo, model: str = MODEL, manufacturer: str = MANUFACTURER):
    """The folder of a model's manifests inside a repository folder."""
    return Path(repo) / model_path(model, manufacturer)


def python_env(env: dict | None = None) -> dict:
    """The environment for a child Python that imports this kit (a script
    such as Tests/faults/fault_matrix.py): Tests first on PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH")) if p)
    return env
