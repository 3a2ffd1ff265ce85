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

from support import cli
from support.paths import VECTORS_DIR

INDEX = json.loads((VECTORS_DIR / "manifests" / "index.json").read_text())
OK_WITH_IMAGES = [v for v in INDEX if v["expect"] == "ok" and v["images"]]

FAILURE_RESULTS = {"bad-signature", "bad-manifest", "digest-mismatch"}


def verify_json(bin_dir, vector: dict, *images, manifest: Path | None = None):
    """Run verify --json for a vector; returns (proc, parsed stdout)."""
    proc = cli.verify(bin_dir, VECTORS_DIR / vector["trust"], manifest or VECTORS_DIR / vector["file"], *images)
    if proc.json is None:
        pytest.fail(f"verify --json did not print one JSON object\n{proc.describe()}")
    assert isinstance(proc.json, dict), proc.describe()
    return proc, proc.json


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
def test_vector(vector, bin_dir):
    proc, out = verify_json(bin_dir, vector)
    if vector["expect"] == "ok":
        assert proc.returncode == 0, proc.describe()
        assert out["result"] == "verified", proc.describe()
        assert out["format"] == vector["format"], proc.describe()
        assert out["kid"] == trust_kid(vector), proc.describe()
        assert out["imagesChecked"] == 0
        manifest = out["manifest"]
        assert manifest["manufacturer"] == "example.com"
        assert manifest["model"] == "c7960"
        assert manifest["firmwareVersion"] == "1.2.3"
        assert manifest["timestamp"] == "2025-11-24T16:00:00Z"
    else:
        assert proc.returncode == 1, proc.describe()
        assert out["result"] == vector["expect"], (
            f"expected {vector['expect']} ({vector['purpose']})\n{proc.describe()}"
        )
        assert "field" in out, proc.describe()
        assert out["field"] == vector["field"], (
            f"expected field {vector['field']!r} ({vector['purpose']})\n{proc.describe()}"
        )
        assert isinstance(out.get("error"), str) and out["error"], proc.describe()


@pytest.mark.parametrize("vector", OK_WITH_IMAGES, ids=[v["name"] for v in OK_WITH_IMAGES])
def test_vector_images_match(vector, bin_dir):
    images = [VECTORS_DIR / i for i in vector["images"]]
    proc, out = verify_json(bin_dir, vector, *images)
    assert proc.returncode == 0, proc.describe()
    assert out["result"] == "verified", proc.describe()
    assert out["imagesChecked"] == len(images), proc.describe()


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "extended"])
@pytest.mark.parametrize("vector", OK_WITH_IMAGES, ids=[v["name"] for v in OK_WITH_IMAGES])
def test_vector_damaged_image_is_digest_mismatch(vector, damage, bin_dir, tmp_path):
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
    proc, out = verify_json(bin_dir, vector, bad, *images[1:])
    assert proc.returncode == 1, proc.describe()
    assert out["result"] == "digest-mismatch", proc.describe()


@pytest.mark.parametrize("vector", [v for v in OK_WITH_IMAGES if len(v["images"]) > 1],
                         ids=[v["name"] for v in OK_WITH_IMAGES if len(v["images"]) > 1])
def test_vector_components_in_wrong_order_rejected(vector, bin_dir):
    images = [VECTORS_DIR / i for i in reversed(vector["images"])]
    proc, out = verify_json(bin_dir, vector, *images)
    assert proc.returncode == 1, proc.describe()
    assert out["result"] == "digest-mismatch", proc.describe()


def test_untrusted_key_is_bad_signature(bin_dir):
    """An ok vector checked against an unrelated key must not verify."""
    vector = next(v for v in INDEX if v["name"] == "cose-es256-valid")
    proc = cli.verify(bin_dir, VECTORS_DIR / "keys" / "other-es256-public.pem", VECTORS_DIR / vector["file"])
    assert proc.returncode == 1, proc.describe()
    assert proc.json["result"] == "bad-signature", proc.describe()


def test_second_trust_key_is_used(bin_dir):
    vector = next(v for v in INDEX if v["name"] == "jws-eddsa-valid")
    proc = cli.verify(bin_dir, [VECTORS_DIR / "keys" / "es256-public.pem", VECTORS_DIR / vector["trust"]],
                      VECTORS_DIR / vector["file"])
    assert proc.returncode == 0, proc.describe()
    assert proc.json["result"] == "verified"


def _usage_error_case(kind: str, tmp_path: Path):
    """(trust, manifest, images, the file the message must name) for one
    kind of bad command line."""
    good_trust = VECTORS_DIR / "keys" / "es256-public.pem"
    manifest = VECTORS_DIR / "manifests" / "cose-es256-valid.cbor"
    if kind == "garbage-trust":
        bad = tmp_path / "garbage-trust.pem"
        bad.write_text("this is not a PEM public key\n")
        return bad, manifest, [], bad
    if kind == "private-key-as-trust":
        bad = tmp_path / "es256-private.pem"
        shutil.copyfile(VECTORS_DIR / "keys" / "es256-private.pem", bad)
        return bad, manifest, [], bad
    if kind == "missing-trust":
        return tmp_path / "nope.pem", manifest, [], tmp_path / "nope.pem"
    if kind == "missing-manifest":
        return good_trust, tmp_path / "does-not-exist.cbor", [], tmp_path / "does-not-exist.cbor"
    if kind == "missing-image":
        return good_trust, manifest, [tmp_path / "firmware.bin"], tmp_path / "firmware.bin"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["garbage-trust", "private-key-as-trust", "missing-trust", "missing-manifest",
                                  "missing-image"])
def test_usage_error_names_the_file(kind, bin_dir, tmp_path):
    trust, manifest, images, named = _usage_error_case(kind, tmp_path)
    proc = cli.verify(bin_dir, trust, manifest, *images)
    assert proc.returncode == 2, proc.describe()
    assert str(named) in proc.stderr, proc.describe()
