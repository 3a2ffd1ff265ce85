"""`coap-fw-client verify` against the independent vectors in Vectors/.

Every entry of Vectors/manifests/index.json (made by Vectors/generate.py with
pycose / cbor2 / cryptography) is run through the CLI with --json, and the
result, exit status and reported field are compared with the index.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[2] / "Vectors"
INDEX = json.loads((VECTORS_DIR / "manifests" / "index.json").read_text())
OK_WITH_IMAGES = [v for v in INDEX if v["expect"] == "ok" and v["images"]]

CLIENT = "coap-fw-client"
FAILURE_RESULTS = {"bad-signature", "bad-manifest", "digest-mismatch"}


def describe(proc) -> str:
    return (
        f"command: {' '.join(proc.args)}\n"
        f"exit: {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )


def verify_json(run, vector: dict, *images, manifest: Path | None = None):
    """Run verify --json for a vector; returns (proc, parsed stdout)."""
    args = ["verify", "--trust", VECTORS_DIR / vector["trust"],
            manifest or VECTORS_DIR / vector["file"]]
    for image in images:
        args += ["--image", image]
    args.append("--json")
    proc = run(CLIENT, *args)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"verify --json did not print one JSON object\n{describe(proc)}")
    assert isinstance(out, dict), describe(proc)
    return proc, out


def trust_kid(vector: dict) -> str:
    pem = (VECTORS_DIR / vector["trust"]).read_text()
    body = re.search(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", pem, re.S).group(1)
    return hashlib.sha256(base64.b64decode("".join(body.split()))).digest()[:8].hex()


def test_index_is_complete():
    """Guard against an empty or unreadable index silently skipping everything."""
    assert len(INDEX) >= 40
    assert {v["expect"] for v in INDEX} == {"ok", "bad-signature", "bad-manifest"}
    for v in INDEX:
        assert (VECTORS_DIR / v["file"]).is_file(), v["file"]
        assert (VECTORS_DIR / v["trust"]).is_file(), v["trust"]
        for image in v["images"]:
            assert (VECTORS_DIR / image).is_file(), image


@pytest.mark.parametrize("vector", INDEX, ids=[v["name"] for v in INDEX])
def test_vector(vector, run):
    proc, out = verify_json(run, vector)
    if vector["expect"] == "ok":
        assert proc.returncode == 0, describe(proc)
        assert out["result"] == "verified", describe(proc)
        assert out["format"] == vector["format"], describe(proc)
        assert out["kid"] == trust_kid(vector), describe(proc)
        assert out["imagesChecked"] == 0
        manifest = out["manifest"]
        assert manifest["manufacturer"] == "example.com"
        assert manifest["model"] == "c7960"
        assert manifest["firmwareVersion"] == "1.2.3"
        assert manifest["timestamp"] == "2025-11-24T16:00:00Z"
    else:
        assert proc.returncode == 1, describe(proc)
        assert out["result"] == vector["expect"], (
            f"expected {vector['expect']} ({vector['purpose']})\n{describe(proc)}"
        )
        assert "field" in out, describe(proc)
        assert out["field"] == vector["field"], (
            f"expected field {vector['field']!r} ({vector['purpose']})\n{describe(proc)}"
        )
        assert isinstance(out.get("error"), str) and out["error"], describe(proc)


@pytest.mark.parametrize("vector", OK_WITH_IMAGES, ids=[v["name"] for v in OK_WITH_IMAGES])
def test_vector_images_match(vector, run):
    images = [VECTORS_DIR / i for i in vector["images"]]
    proc, out = verify_json(run, vector, *images)
    assert proc.returncode == 0, describe(proc)
    assert out["result"] == "verified", describe(proc)
    assert out["imagesChecked"] == len(images), describe(proc)


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "extended"])
@pytest.mark.parametrize("vector", OK_WITH_IMAGES, ids=[v["name"] for v in OK_WITH_IMAGES])
def test_vector_damaged_image_is_digest_mismatch(vector, damage, run, tmp_path):
    images = [VECTORS_DIR / i for i in vector["images"]]
    blob = bytearray(images[0].read_bytes())
    if damage == "flipped-byte":
        blob[len(blob) // 2] ^= 0x01
    elif damage == "truncated":
        del blob[-1]
    else:
        blob += b"\x00"
    bad = tmp_path / images[0].name
    bad.write_bytes(bytes(blob))
    proc, out = verify_json(run, vector, bad, *images[1:])
    assert proc.returncode == 1, describe(proc)
    assert out["result"] == "digest-mismatch", describe(proc)


@pytest.mark.parametrize("vector", [v for v in OK_WITH_IMAGES if len(v["images"]) > 1],
                         ids=[v["name"] for v in OK_WITH_IMAGES if len(v["images"]) > 1])
def test_vector_components_in_wrong_order_rejected(vector, run):
    images = [VECTORS_DIR / i for i in reversed(vector["images"])]
    proc, out = verify_json(run, vector, *images)
    assert proc.returncode == 1, describe(proc)
    assert out["result"] == "digest-mismatch", describe(proc)


def test_untrusted_key_is_bad_signature(run):
    """An ok vector checked against an unrelated key must not verify."""
    vector = next(v for v in INDEX if v["name"] == "cose-es256-valid")
    proc = run(CLIENT, "verify", "--trust", VECTORS_DIR / "keys" / "other-es256-public.pem",
               VECTORS_DIR / vector["file"], "--json")
    assert proc.returncode == 1, describe(proc)
    assert json.loads(proc.stdout)["result"] == "bad-signature", describe(proc)


def test_second_trust_key_is_used(run):
    vector = next(v for v in INDEX if v["name"] == "jws-eddsa-valid")
    proc = run(CLIENT, "verify", "--trust", VECTORS_DIR / "keys" / "es256-public.pem",
               "--trust", VECTORS_DIR / vector["trust"], VECTORS_DIR / vector["file"], "--json")
    assert proc.returncode == 0, describe(proc)
    assert json.loads(proc.stdout)["result"] == "verified"


def test_garbage_trust_file_is_usage_error(run, tmp_path):
    garbage = tmp_path / "garbage-trust.pem"
    garbage.write_text("this is not a PEM public key\n")
    proc = run(CLIENT, "verify", "--trust", garbage,
               VECTORS_DIR / "manifests" / "cose-es256-valid.cbor", "--json")
    assert proc.returncode == 2, describe(proc)
    assert str(garbage) in proc.stderr, describe(proc)


def test_private_key_as_trust_is_usage_error(run, tmp_path):
    private = tmp_path / "es256-private.pem"
    shutil.copyfile(VECTORS_DIR / "keys" / "es256-private.pem", private)
    proc = run(CLIENT, "verify", "--trust", private,
               VECTORS_DIR / "manifests" / "cose-es256-valid.cbor", "--json")
    assert proc.returncode == 2, describe(proc)
    assert str(private) in proc.stderr, describe(proc)


def test_missing_trust_file_is_usage_error(run, tmp_path):
    missing = tmp_path / "nope.pem"
    proc = run(CLIENT, "verify", "--trust", missing,
               VECTORS_DIR / "manifests" / "cose-es256-valid.cbor", "--json")
    assert proc.returncode == 2, describe(proc)
    assert str(missing) in proc.stderr, describe(proc)


def test_nonexistent_manifest_is_usage_error(run, tmp_path):
    missing = tmp_path / "does-not-exist.cbor"
    proc = run(CLIENT, "verify", "--trust", VECTORS_DIR / "keys" / "es256-public.pem",
               missing, "--json")
    assert proc.returncode == 2, describe(proc)
    assert str(missing) in proc.stderr, describe(proc)


def test_nonexistent_image_is_usage_error(run, tmp_path):
    missing = tmp_path / "firmware.bin"
    proc = run(CLIENT, "verify", "--trust", VECTORS_DIR / "keys" / "es256-public.pem",
               VECTORS_DIR / "manifests" / "cose-es256-valid.cbor", "--image", missing, "--json")
    assert proc.returncode == 2, describe(proc)
    assert str(missing) in proc.stderr, describe(proc)
