"""Issue #14, SUIT envelopes, offline part: `coap-fw-client verify` on the
specification's example envelopes (suit-wg/manifest-spec, signed with the
draft's published key) and on our vectors, made by an independent Python
generator (Vectors/suit/generate.py: its own CBOR reader and writer,
`cryptography`), each with its exact result; the independent checker
(Tests/support/suit_checker.py) agrees on every one."""
import hashlib
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


# ---------------------------------------------------------------------------
# publish --suit, checked by the independent checker (and pyhsslms for HSS-LMS)

def suit_identity(manufacturer, model):
    """RFC 9124 / RFC 9562 §5.5, by Python's uuid module: not our Swift code."""
    import uuid
    vendor = uuid.uuid5(uuid.NAMESPACE_DNS, manufacturer)
    return vendor.bytes, uuid.uuid5(vendor, model).bytes


def published_suit(repo, model):
    return repo / ".well-known" / "firmware" / cli.MANUFACTURER / model / "manifest.suit"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_publish_suit_checked_independently(bin_dir, tmp_path, alg):
    """publish --suit writes manifest.suit beside the other two: the checker
    verifies the signature with the same public key, the digest, the
    identity UUIDs (Python's uuid5), the image digest and size, the
    relative URI and the version in the text member; sequence number = the
    release timestamp."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys, alg)
    image = tmp_path / "fw.bin"
    image.write_bytes(bytes((i * 31 + 7) & 0xFF for i in range(7000)))
    repo = tmp_path / "repo"
    cli.publish(bin_dir, repo, keys / "private.pem", "c7960", "1.2.0", image=image, timestamp="2026-11-01T00:00:00Z",
                extra=["--suit"])
    envelope = published_suit(repo, "c7960").read_bytes()
    vendor, klass = suit_identity(cli.MANUFACTURER, "c7960")
    result, detail = suit_checker.check(envelope, (keys / "public.pem").read_bytes(), {0: image.read_bytes()},
                                        device={"vendor_id": vendor, "class_id": klass, "current_sequence": 0},
                                        profile="device")
    assert result == "ok", detail
    assert detail["vendor_id"] == vendor.hex() and detail["class_id"] == klass.hex()
    assert detail["sequence"] == 1793491200  # 2026-11-01T00:00:00Z
    assert detail["image_digest"] == hashlib.sha256(image.read_bytes()).hexdigest() and detail["image_size"] == 7000
    assert detail["uris"] == ["1.2.0/fw.bin"] and detail["text_version"] == "1.2.0"
    assert detail["installable"] is True
    # The other products' ids fail the identity conditions.
    other_vendor, other_class = suit_identity("example.org", "c7960")
    wrong, _ = suit_checker.check(envelope, (keys / "public.pem").read_bytes(), None,
                                  device={"vendor_id": other_vendor, "class_id": other_class}, profile="device")
    assert wrong == "wrong-device"


def split_suit_release(bin_dir, tmp_path, model):
    """2.0.0 of `model` as components boot and app, published with --suit: (repo, keys, boot, app)."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    boot, app = tmp_path / "boot.bin", tmp_path / "app.bin"
    boot.write_bytes(b"B" * 1500)
    app.write_bytes(bytes(range(256)) * 10)
    repo = tmp_path / "repo"
    cli.publish(bin_dir, repo, keys / "private.pem", model, "2.0.0", components=[("boot", boot), ("app", app)],
                extra=["--suit"])
    return repo, keys, boot, app


def test_publish_suit_split_release(bin_dir, tmp_path):
    repo, keys, boot, app = split_suit_release(bin_dir, tmp_path, "c7961")
    envelope = published_suit(repo, "c7961").read_bytes()
    vendor, klass = suit_identity(cli.MANUFACTURER, "c7961")
    result, detail = suit_checker.check(envelope, (keys / "public.pem").read_bytes(),
                                        {0: boot.read_bytes(), 1: app.read_bytes()},
                                        device={"vendor_id": vendor, "class_id": klass}, profile="device")
    assert result == "ok", detail
    assert detail["components"] == [[b"boot".hex()], [b"app".hex()]]
    assert detail["uris"] == ["2.0.0/boot.bin", "2.0.0/app.bin"]
    ours = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--json", "--trust", keys / "public.pem",
                          published_suit(repo, "c7961"), "--manufacturer", cli.MANUFACTURER, "--model", "c7961",
                          "--image", boot, "--image", app, timeout=30, parse_json=True)
    assert ours.returncode == 0 and ours.json["componentCount"] == 2, ours.describe()
    swapped = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--json", "--trust", keys / "public.pem",
                             published_suit(repo, "c7961"), "--image", app, "--image", boot, timeout=30, parse_json=True)
    assert swapped.returncode == 1 and swapped.json["result"] == "digest-mismatch", swapped.describe()


def test_publish_suit_with_hss_lms(bin_dir, tmp_path):
    """An HSS-LMS key signs the SUIT envelope too (one more leaf: three per
    release); pyhsslms verifies that signature over the Sig_structure the
    checker builds, and our verify accepts the envelope."""
    import pyhsslms
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys, "HSS-LMS", "--height", "5")
    image = tmp_path / "fw.bin"
    image.write_bytes(b"h" * 3000)
    repo = tmp_path / "repo"
    before = (keys / "private.hss").read_bytes()[-8:]
    cli.publish(bin_dir, repo, keys / "private.hss", "c7962", "1.0.0", image=image, extra=["--suit"])
    used = int.from_bytes((keys / "private.hss").read_bytes()[-8:], "big") - int.from_bytes(before, "big")
    assert used == 3, f"{used} leaves for one release with --suit"
    envelope = published_suit(repo, "c7962").read_bytes()
    top = suit_checker.cbor_loads(envelope)
    members = top.value
    wrapper = suit_checker.cbor_loads(bytes(members[2]))
    digest, block = bytes(wrapper[0]), suit_checker.cbor_loads(bytes(wrapper[1]))
    protected, _, payload, signature = block.value
    assert block.tag == 18 and payload is None
    assert suit_checker.cbor_loads(bytes(protected)) == {1: -46}
    message = suit_checker.sig_structure(bytes(protected), digest)
    public = (keys / "public.hss").read_bytes()
    assert pyhsslms.HssPublicKey.deserialize(public).verify(message, bytes(signature))
    # The signed digest covers the manifest's bstr item, head included.
    assert suit_checker.cbor_loads(digest)[1] == hashlib.sha256(members[3].raw).digest()
    ours = cli.run_binary(bin_dir, cli.CLIENT, "verify", "--trust", keys / "public.hss", published_suit(repo, "c7962"),
                          "--image", image, timeout=30)
    assert ours.returncode == 0, ours.describe()


def test_serve_suit_by_name_and_by_accept(bin_dir, procs, tmp_path):
    """serve gives manifest.suit byte for byte to libcoap's client, by name
    and as `.../manifest` with Accept 65000 (application/suit-envelope+cose:
    no CoAP Content-Format is registered for it yet, we use the first of the
    experimental range), lists it in /.well-known/core with ct=65000 and
    obs, and the other formats stay what they were."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    image = tmp_path / "fw.bin"
    image.write_bytes(b"s" * 2500)
    repo = tmp_path / "repo"
    cli.publish(bin_dir, repo, keys / "private.pem", "c7963", "1.0.0", image=image, extra=["--suit"])
    folder = repo / ".well-known" / "firmware" / cli.MANUFACTURER / "c7963"
    server = procs.server(repo)
    base = f"coap://127.0.0.1:{server.port}/.well-known/firmware/{cli.MANUFACTURER}/c7963"
    _, by_name = cli.coap_get(f"{base}/manifest.suit", tmp_path / "a.suit", "-b", "64")
    assert by_name == (folder / "manifest.suit").read_bytes()
    _, negotiated = cli.coap_get(f"{base}/manifest", tmp_path / "b.suit", "-A", "65000", "-b", "64")
    assert negotiated == (folder / "manifest.suit").read_bytes()
    _, cbor = cli.coap_get(f"{base}/manifest", tmp_path / "c.cbor")
    assert cbor == (folder / "manifest.cbor").read_bytes()
    _, core = cli.coap_get(f"coap://127.0.0.1:{server.port}/.well-known/core", tmp_path / "core.txt")
    assert f"</.well-known/firmware/{cli.MANUFACTURER}/c7963/manifest.suit>;ct=65000;rt=\"firmware.manifest\";obs".encode() in core
    # What was served verifies with the independent checker.
    result, detail = suit_checker.check(by_name, (keys / "public.pem").read_bytes(), {0: image.read_bytes()})
    assert result == "ok", detail


# ---------------------------------------------------------------------------
# update --format suit: the same engine on a SUIT manifest

def suit_release(bin_dir, tmp_path, model, version="1.0.0", size=20_000, seed=3):
    keys = tmp_path / "keys"
    if not keys.exists():
        cli.keygen(bin_dir, keys)
    image = tmp_path / f"fw-{version}.bin"
    image.write_bytes(bytes((i * seed + 11) & 0xFF for i in range(size)))
    repo = tmp_path / "repo"
    cli.publish(bin_dir, repo, keys / "private.pem", model, version, image=image, extra=["--suit"])
    return repo, keys / "public.pem", image


def test_update_format_suit_installs_the_right_bytes(bin_dir, procs, tmp_path):
    """serve + update --format suit: the SUIT envelope (fetched block-wise
    at 64-byte blocks) authenticates, its identity conditions hold for
    UUID5(example.com, c7964), the image is fetched, hashed and installed;
    status shows the text member's version; the same envelope again is
    up-to-date; a newer one installs; the installed envelope is the one
    served."""
    repo, trust, image = suit_release(bin_dir, tmp_path, "c7964")
    server = procs.server(repo)
    state = tmp_path / "state"
    run = cli.update(bin_dir, trust, "c7964", state, "--origin", server.uri(), "--format", "suit", "--block-size", "64")
    cli.assert_updated(run, "1.0.0", 20_000)
    assert run.json["source"].endswith("/c7964/manifest.suit"), run.json
    assert (state / "installed" / image.name).read_bytes() == image.read_bytes()
    folder = repo / ".well-known" / "firmware" / cli.MANUFACTURER / "c7964"
    assert (state / "installed" / "manifest.suit").read_bytes() == (folder / "manifest.suit").read_bytes()
    assert cli.status(bin_dir, state).json["version"] == "1.0.0"
    again = cli.update(bin_dir, trust, "c7964", state, "--origin", server.uri(), "--format", "suit")
    assert again.returncode == 0 and again.json["result"] == "up-to-date", again.describe()
    _, _, newer = suit_release(bin_dir, tmp_path, "c7964", "1.1.0", size=9_000, seed=5)
    import time
    time.sleep(1.2)  # the server's rescan
    third = cli.update(bin_dir, trust, "c7964", state, "--origin", server.uri(), "--format", "suit")
    cli.assert_updated(third, "1.1.0", 9_000)
    assert (state / "installed" / newer.name).read_bytes() == newer.read_bytes()


@pytest.mark.parametrize("fault", ["flip-bit:5", "etag-change:5", "truncate:5", "extend:30", "wrong-size2",
                                   "wrong-block:5", "duplicate:5"])
def test_update_format_suit_under_malicious_faults(bin_dir, procs, tmp_path, fault):
    """The malicious server's faults give the same results for SUIT as for
    the other formats (test_client_faults' table), and nothing is installed."""
    from test_client_faults import FAULT_CODES
    result = FAULT_CODES.get(fault.partition(":")[0], "transfer-failed")
    repo, trust, _ = suit_release(bin_dir, tmp_path, "c7965")
    bad = procs.malicious(repo, fault)
    state = tmp_path / "state"
    run = cli.update(bin_dir, trust, "c7965", state, "--origin", bad.uri(), "--format", "suit", "--block-size", "64",
                     "--timeout", 10)
    assert run.returncode == 1 and run.json["result"] == result, run.describe()
    assert not (state / "installed").exists() or not any((state / "installed").iterdir())


def test_update_format_suit_refuses_another_products_envelope(bin_dir, procs, tmp_path):
    """An authentic envelope for c7966 placed where c7967's belongs: the
    vendor/class conditions fail (wrong-device), nothing is fetched; a
    device given c7966's ids with --vendor-id/--class-id installs it."""
    repo, trust, _ = suit_release(bin_dir, tmp_path, "c7966")
    base = repo / ".well-known" / "firmware" / cli.MANUFACTURER
    (base / "c7967").mkdir()
    (base / "c7967" / "manifest.suit").write_bytes((base / "c7966" / "manifest.suit").read_bytes())
    import shutil
    shutil.copytree(base / "c7966" / "1.0.0", base / "c7967" / "1.0.0")  # its relative image URI
    server = procs.server(repo)
    run = cli.update(bin_dir, trust, "c7967", tmp_path / "state", "--origin", server.uri(), "--format", "suit")
    assert run.returncode == 1 and run.json["result"] == "wrong-device", run.describe()
    assert run.json["bytesTransferred"] == 0
    # --vendor-id/--class-id override the UUID5s: a device provisioned with c7966's ids takes it.
    import uuid
    vendor = uuid.uuid5(uuid.NAMESPACE_DNS, cli.MANUFACTURER)
    ids = ["--vendor-id", str(vendor), "--class-id", str(uuid.uuid5(vendor, "c7966"))]
    taken = cli.update(bin_dir, trust, "c7967", tmp_path / "state2", "--origin", server.uri(), "--format", "suit", *ids)
    cli.assert_updated(taken, "1.0.0")
    bad = cli.update(bin_dir, trust, "c7967", tmp_path / "state3", "--origin", server.uri(), "--format", "suit",
                     "--vendor-id", "not-a-uuid")
    assert bad.returncode == 2 and "--vendor-id not-a-uuid" in bad.stderr, bad.describe()


def test_a_suit_body_for_a_cose_request_is_refused(bin_dir, procs, tmp_path):
    """A server answering a request for manifest.cbor with the (authentic)
    SUIT envelope: the device reads a body only as the format it asked for
    (bad-manifest), so a server cannot choose the reader whose rules it
    likes; and the other way round."""
    repo, trust, _ = suit_release(bin_dir, tmp_path, "c7968")
    folder = repo / ".well-known" / "firmware" / cli.MANUFACTURER / "c7968"
    suit_bytes, cose_bytes = (folder / "manifest.suit").read_bytes(), (folder / "manifest.cbor").read_bytes()
    (folder / "manifest.cbor").write_bytes(suit_bytes)
    (folder / "manifest.suit").write_bytes(cose_bytes)
    server = procs.server(repo)
    for fmt in ("cbor", "suit"):
        run = cli.update(bin_dir, trust, "c7968", tmp_path / f"state-{fmt}", "--origin", server.uri(), "--format", fmt)
        assert run.returncode == 1 and run.json["result"] == "bad-manifest", run.describe()
        assert run.json["bytesTransferred"] == 0


def test_a_suit_release_signed_by_an_adopted_key_retires_the_old_one(bin_dir, procs, tmp_path):
    """K1 signs 1.0.0 (COSE) announcing K2: adopted. K2 signs 1.1.0 with
    --suit and the device updates with --format suit: K1 is retired as after
    a COSE release (the rules run on the installed SUIT envelope too)."""
    k1, k2 = tmp_path / "k1", tmp_path / "k2"
    cli.keygen(bin_dir, k1)
    cli.keygen(bin_dir, k2)
    image = tmp_path / "fw.bin"
    image.write_bytes(b"r" * 4000)
    repo = tmp_path / "repo"
    cli.publish(bin_dir, repo, k1 / "private.pem", "c7969", "1.0.0", image=image, extra=["--key-info", k2 / "public.pem"])
    server = procs.server(repo)
    state = tmp_path / "state"
    cli.assert_updated(cli.update(bin_dir, k1 / "public.pem", "c7969", state, "--origin", server.uri()), "1.0.0")
    image2 = tmp_path / "fw2.bin"
    image2.write_bytes(b"s" * 4000)
    cli.publish(bin_dir, repo, k2 / "private.pem", "c7969", "1.1.0", image=image2, extra=["--suit"])
    import time
    time.sleep(1.2)  # the server's rescan
    run = cli.update(bin_dir, k1 / "public.pem", "c7969", state, "--origin", server.uri(), "--format", "suit")
    cli.assert_updated(run, "1.1.0")
    status = cli.run_binary(bin_dir, cli.CLIENT, "status", "--state", state, "--json", "--trust", k1 / "public.pem",
                            timeout=30, parse_json=True)
    statuses = sorted(row["status"] for row in status.json["trust"])
    assert statuses == ["adopted", "retired"], status.json["trust"]


def test_update_format_suit_split_release_names_components_as_cbor_does(bin_dir, procs, tmp_path):
    """A split release (boot, app) installed from manifest.suit lands under
    the component names, as from manifest.cbor: the same files whatever the
    format."""
    repo, keys, boot, app = split_suit_release(bin_dir, tmp_path, "c7970")
    server = procs.server(repo)
    installed = {}
    for fmt in ("cbor", "suit"):
        state = tmp_path / f"state-{fmt}"
        cli.assert_updated(cli.update(bin_dir, keys / "public.pem", "c7970", state, "--origin", server.uri(), "--format", fmt),
                           "2.0.0")
        installed[fmt] = sorted(p.name for p in (state / "installed").iterdir() if not p.name.startswith(("manifest", "release")))
        assert (state / "installed" / "boot").read_bytes() == boot.read_bytes()
        assert (state / "installed" / "app").read_bytes() == app.read_bytes()
    assert installed["cbor"] == installed["suit"] == ["app", "boot"], installed
