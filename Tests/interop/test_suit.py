"""Issue #14, SUIT envelopes, offline part: `coap-fw-client verify` on the
specification's example envelopes (suit-wg/manifest-spec, signed with the
draft's published key) and on our vectors, made by an independent Python
generator (Vectors/suit/generate.py: its own CBOR reader and writer,
`cryptography`), each with its exact result; the independent checker
(Tests/support/suit_checker.py) agrees on every one."""
import json
from pathlib import Path

import pytest

from support import cli
from support import suit_checker

SUIT = Path(__file__).resolve().parents[2] / "Vectors" / "suit"
INDEX = json.loads((SUIT / "index.json").read_text())
DEVICE = INDEX["device"]


def verify(bin_dir, vector, *extra):
    args = ["verify", "--json", "--trust", SUIT / vector["key"], SUIT / vector["file"], *extra]
    if vector["device"]:
        args += ["--manufacturer", DEVICE["manufacturer"], "--model", DEVICE["model"],
                 "--installed-sequence", DEVICE["current_sequence"]]
    for _, image in sorted((vector.get("images") or {}).items()):
        args += ["--image", SUIT / image]
    return cli.run_binary(bin_dir, cli.CLIENT, *args, timeout=30, parse_json=True)


@pytest.mark.parametrize("vector", INDEX["vectors"], ids=lambda v: v["name"])
def test_verify_gives_the_vectors_result(bin_dir, vector):
    run = verify(bin_dir, vector)
    assert run.json is not None, run.describe()
    result = "ok" if run.json["result"] == "verified" else run.json["result"]
    assert result == vector["expect"], f"{vector['why']}\n{run.describe()}"
    assert run.returncode == (0 if vector["expect"] == "ok" else 1), run.describe()
    if vector["expect"] != "ok":
        # The error names the member, command or image at fault.
        named = run.json["field"] or run.json["error"]
        assert any(word in named for word in ("suit-", "SUIT_", "sequence number", "fw-a")), run.describe()


@pytest.mark.parametrize("vector", INDEX["vectors"], ids=lambda v: v["name"])
def test_the_independent_checker_agrees(vector):
    device = None
    if vector["device"]:
        device = {"vendor_id": bytes.fromhex(DEVICE["vendor_id"]), "class_id": bytes.fromhex(DEVICE["class_id"]),
                  "current_sequence": DEVICE["current_sequence"], "slot": DEVICE.get("slot", 0)}
    images = {int(k): (SUIT / v).read_bytes() for k, v in (vector.get("images") or {}).items()}
    result, detail = suit_checker.check((SUIT / vector["file"]).read_bytes(), (SUIT / vector["key"]).read_bytes(),
                                        images or None, device=device, profile=vector.get("profile", "spec"))
    assert result == vector["expect"], detail


def test_positive_vector_in_detail(bin_dir):
    [ok] = [v for v in INDEX["vectors"] if v["name"] == "ok"]
    run = verify(bin_dir, ok)
    assert run.returncode == 0, run.describe()
    doc, positive = run.json, INDEX["positive"]
    assert doc["format"] == "suit" and doc["sequenceNumber"] == positive["sequence"]
    assert doc["version"] == positive["text_version"] and doc["identityChecked"] is True
    [component] = doc["components"]
    assert component == {"uri": positive["uri"], "sha256": positive["image_sha256"], "size": positive["image_size"],
                         "fetch": True, "imageMatch": True}


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5])
def test_spec_examples_verify_but_install_nothing(bin_dir, tmp_path, n):
    """Each example verifies as it is; given an image (any bytes: their
    digests are sample patterns) image-match fails as digest-mismatch, but
    example 4, whose install copies between components, is refused first
    as bad-manifest naming the parameter this updater lacks."""
    envelope, key = SUIT / "spec" / f"example{n}.cbor", SUIT / "spec" / "public.pem"
    plain = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--json", "--trust", key, envelope, timeout=30, parse_json=True)
    assert plain.returncode == 0 and plain.json["sequenceNumber"] == n, plain.describe()
    image = tmp_path / "image.bin"
    image.write_bytes(bytes(34768))
    run = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--json", "--trust", key, envelope, "--image", image,
                         timeout=30, parse_json=True)
    assert run.returncode == 1, run.describe()
    if n == 4:
        assert run.json["result"] == "bad-manifest" and "source-component" in run.json["field"], run.describe()
    else:
        assert run.json["result"] == "digest-mismatch", run.describe()


def test_verify_usage_errors(bin_dir, tmp_path):
    envelope, key = SUIT / "ours" / "ok.cbor", SUIT / "spec" / "public.pem"
    bad_uuid = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--trust", key, envelope, "--vendor-id", "xyz", timeout=30)
    assert bad_uuid.returncode == 2 and "--vendor-id xyz" in bad_uuid.stderr, bad_uuid.describe()
    model_alone = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--trust", key, envelope, "--model", "c7960", timeout=30)
    assert model_alone.returncode == 2 and "--model needs --manufacturer" in model_alone.stderr, model_alone.describe()
    # The ids themselves, as UUID text, are the same as the names.
    by_id = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--json", "--trust", key, envelope,
                           "--vendor-id", DEVICE["vendor_uuid"], "--class-id", DEVICE["class_uuid"], timeout=30, parse_json=True)
    assert by_id.returncode == 0 and by_id.json["identityChecked"] is True, by_id.describe()
    other = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--json", "--trust", key, envelope,
                           "--manufacturer", "example.org", "--model", "c7960", timeout=30, parse_json=True)
    assert other.returncode == 1 and other.json["result"] == "wrong-device", other.describe()
