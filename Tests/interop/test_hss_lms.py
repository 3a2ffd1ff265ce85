"""HSS/LMS hash-based signatures (RFC 8554, COSE alg -46) end to end.

Our `coap-fw-server keygen --alg HSS-LMS` / `publish` and `coap-fw-client
verify` / `update` are checked against an independent implementation,
pyhsslms, and against the stateful-key rules (SPEC §3, §7):

- keygen: file sizes, mode, counter, kid, capacity for several parameter sets;
  parameter sets whose signatures do not fit a manifest are refused;
- publish -> pyhsslms verifies both envelopes; each signature uses its own
  leaf and the counter on disk counts them; a flipped byte anywhere in the
  signature is refused by pyhsslms and by our verifier;
- pyhsslms signs -> our verifier accepts, and refuses under another key;
- concurrent publishes with one key never reuse a leaf;
- exhaustion: a full key refuses before signing and changes nothing;
- corrupted private / public key files are usage errors naming the file;
- serve + update with --trust public.hss installs the published image;
- structurally broken signatures (bad Nspk, q, type codes, truncation) and
  the deepest hierarchy (8 levels, across all subtree boundaries at once).

The HSS signature is parsed here from RFC 8554 §6.2 / §5.4 by hand, not with
our code or pyhsslms, to read the leaf indices.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import struct
import subprocess
from pathlib import Path

import cbor2
import pyhsslms
import pytest

from client_support import (
    assert_installed,
    assert_updated,
    client_update,
    start_our_server,
    stop_our_server,
    write_random_file,
)

SERVER = "coap-fw-server"
CLIENT = "coap-fw-client"
MANUFACTURER = "example.com"

COSE_ALG_HSS_LMS = -46
MAGIC = b"CFWHSSK1"

# RFC 8554 §5.1 / §4.1 type codes (SHA-256, n = m = 32)
LMS_CODE_BY_HEIGHT = {5: 5, 10: 6, 15: 7, 20: 8}
HEIGHT_BY_LMS_CODE = {5: 5, 6: 10, 7: 15, 8: 20, 9: 25}
LMOTS_CODE_BY_W = {1: 1, 2: 2, 4: 3, 8: 4}
P_BY_LMOTS_CODE = {1: 265, 2: 133, 3: 67, 4: 34}  # RFC 8554 Table 1, n = 32
N = M = 32
PUBLIC_LEN = 60


def describe(proc) -> str:
    args = proc.args if isinstance(proc.args, (list, tuple)) else [proc.args]
    return (
        f"command: {' '.join(map(str, args))}\n"
        f"exit: {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def kid_of(public: bytes) -> bytes:
    return hashlib.sha256(public).digest()[:8]


def private_len(levels: int) -> int:
    return len(MAGIC) + 4 + 8 * levels + 16 + 32 + PUBLIC_LEN + 8


def read_counter(key: Path) -> int:
    return struct.unpack(">Q", key.read_bytes()[-8:])[0]


def set_counter(key: Path, value: int) -> None:
    data = bytearray(key.read_bytes())
    data[-8:] = struct.pack(">Q", value)
    key.write_bytes(bytes(data))
    os.chmod(key, 0o600)


def pyhsslms_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """pyhsslms raises ValueError on some malformed signatures: that is a refusal too."""
    try:
        return bool(pyhsslms.HssPublicKey.deserialize(public).verify(message, signature))
    except (ValueError, IndexError, KeyError):
        return False


# ---------------------------------------------------------------------------
# RFC 8554 signature layout, parsed independently
# ---------------------------------------------------------------------------


def u32(data: bytes, pos: int) -> int:
    return struct.unpack(">I", data[pos : pos + 4])[0]


def parse_hss_signature(sig: bytes) -> dict:
    """Walks an HSS signature (RFC 8554 §6.2): u32 Nspk, then Nspk times
    (LMS signature, LMS public key), then the bottom LMS signature. Returns the
    per-level q values and heights, the global leaf index and the offsets of
    the bottom signature's fields (for mutations)."""
    nspk = u32(sig, 0)
    assert 0 <= nspk <= 7, f"Nspk {nspk} out of range"
    pos = 4
    levels = []
    for level in range(nspk + 1):
        start = pos
        q = u32(sig, pos)
        ots_type = u32(sig, pos + 4)
        assert ots_type in P_BY_LMOTS_CODE, f"level {level}: LM-OTS type {ots_type}"
        p = P_BY_LMOTS_CODE[ots_type]
        c_off = pos + 8
        y_off = c_off + N
        pos = y_off + N * p
        lms_type = u32(sig, pos)
        assert lms_type in HEIGHT_BY_LMS_CODE, f"level {level}: LMS type {lms_type}"
        h = HEIGHT_BY_LMS_CODE[lms_type]
        path_off = pos + 4
        pos = path_off + M * h
        assert q < 2**h, f"level {level}: q {q} >= 2^{h}"
        entry = {"q": q, "h": h, "q_off": start, "c_off": c_off, "y_off": y_off,
                 "type_off": path_off - 4, "path_off": path_off, "ots_type": ots_type,
                 "lms_type": lms_type}
        if level < nspk:  # the signed public key of the next level
            entry["pub_off"] = pos
            assert u32(sig, pos) in HEIGHT_BY_LMS_CODE and u32(sig, pos + 4) in P_BY_LMOTS_CODE
            pos += 8 + 16 + M
        levels.append(entry)
    assert pos == len(sig), f"HSS signature has {len(sig) - pos} trailing/missing byte(s)"
    index = 0
    for entry in levels:
        index = (index << entry["h"]) | entry["q"]
    return {"levels": levels, "index": index, "path": tuple(e["q"] for e in levels)}


def expected_signature_len(levels: int, height: int, w: int) -> int:
    p = P_BY_LMOTS_CODE[LMOTS_CODE_BY_W[w]]
    lms_sig = 4 + 4 + N * (p + 1) + 4 + M * height
    return 4 + levels * lms_sig + (levels - 1) * (8 + 16 + M)


# ---------------------------------------------------------------------------
# envelopes
# ---------------------------------------------------------------------------


def model_dir(repo: Path, model: str) -> Path:
    return repo / ".well-known" / "firmware" / MANUFACTURER / model


def cose_parts(path: Path):
    """(protected bytes, unprotected map, payload, signature, to-be-signed)."""
    msg = cbor2.loads(path.read_bytes())
    assert isinstance(msg, cbor2.CBORTag) and msg.tag == 18, f"{path}: not a COSE_Sign1 (tag 18): {msg!r}"
    protected, unprotected, payload, signature = msg.value
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    return protected, unprotected, payload, signature, tbs


def jws_parts(path: Path):
    """(protected header dict, payload bytes, signature, signing input)."""
    doc = json.loads(path.read_text())
    assert set(doc) >= {"protected", "payload", "signature"}, doc.keys()
    header = json.loads(b64u_decode(doc["protected"]))
    signing_input = (doc["protected"] + "." + doc["payload"]).encode("ascii")
    return header, b64u_decode(doc["payload"]), b64u_decode(doc["signature"]), signing_input


def all_signatures(repo: Path, model: str) -> list[bytes]:
    d = model_dir(repo, model)
    return [cose_parts(d / "manifest.cbor")[3], jws_parts(d / "manifest.json")[2]]


def tree_snapshot(root: Path) -> dict:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------
# running the binaries
# ---------------------------------------------------------------------------


def hss_keygen(run, out: Path, levels=None, height=None, w=None, expect_ok=True):
    args = ["keygen", "--alg", "HSS-LMS", "--out", out]
    if levels is not None:
        args += ["--levels", levels]
    if height is not None:
        args += ["--height", height]
    if w is not None:
        args += ["--w", w]
    proc = run(SERVER, *args)
    if expect_ok:
        assert proc.returncode == 0, describe(proc)
    return proc


def publish_args(bin_dir: Path, repo: Path, key: Path, model: str, version: str, image: Path):
    return [str(bin_dir / SERVER), "publish", "--repo", str(repo), "--key", str(key),
            "--manufacturer", MANUFACTURER, "--model", model, "--version", version,
            "--image", str(image)]


def publish(run, repo, key, model, version, image, expect_ok=True):
    proc = run(SERVER, "publish", "--repo", repo, "--key", key, "--manufacturer", MANUFACTURER,
               "--model", model, "--version", version, "--image", image)
    if expect_ok:
        assert proc.returncode == 0, describe(proc)
    return proc


def verify_json(run, trusts, manifest: Path, *images):
    args = ["verify"]
    for t in trusts if isinstance(trusts, (list, tuple)) else [trusts]:
        args += ["--trust", t]
    args.append(manifest)
    for image in images:
        args += ["--image", image]
    args.append("--json")
    proc = run(CLIENT, *args)
    try:
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
    except json.JSONDecodeError:
        out = None
    return proc, out


def assert_verified(run, trusts, manifest, *images):
    proc, out = verify_json(run, trusts, manifest, *images)
    assert proc.returncode == 0 and out and out.get("result") == "verified", describe(proc)
    return out


def assert_bad_signature(run, trusts, manifest):
    proc, out = verify_json(run, trusts, manifest)
    assert proc.returncode == 1, describe(proc)
    assert out and out.get("result") == "bad-signature", describe(proc)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "firmware.bin"
    write_random_file(path, 3000 + 17)
    return path


# ---------------------------------------------------------------------------
# 1. keygen
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "levels,height,w",
    [(1, 5, 8), (1, 10, 4), (2, 5, 4), (3, 5, 8), (None, None, None)],
    ids=["L1-H5-W8", "L1-H10-W4", "L2-H5-W4", "L3-H5-W8", "defaults"],
)
def test_keygen_files(run, tmp_path, levels, height, w):
    out = tmp_path / "keys"
    proc = hss_keygen(run, out, levels, height, w)
    L, H, W = levels or 1, height or 10, w or 4

    public = (out / "public.hss").read_bytes()
    private_path = out / "private.hss"
    private = private_path.read_bytes()

    # public key: u32 L || u32 lms type || u32 lmots type || I[16] || T1[32]
    assert len(public) == PUBLIC_LEN, len(public)
    assert u32(public, 0) == L
    assert u32(public, 4) == LMS_CODE_BY_HEIGHT[H], f"lms type {u32(public, 4)} for H{H}"
    assert u32(public, 8) == LMOTS_CODE_BY_W[W], f"lmots type {u32(public, 8)} for W{W}"
    assert pyhsslms.HssPublicKey.deserialize(public).maxSignatures() == 2 ** (L * H)

    # private key layout
    assert len(private) == private_len(L), f"private.hss is {len(private)} bytes, expected {private_len(L)}"
    assert private[:8] == MAGIC
    assert u32(private, 8) == L
    for i in range(L):
        assert u32(private, 12 + 8 * i) == LMS_CODE_BY_HEIGHT[H], f"level {i} lms type"
        assert u32(private, 16 + 8 * i) == LMOTS_CODE_BY_W[W], f"level {i} lmots type"
    embedded_public = private[12 + 8 * L + 48 : 12 + 8 * L + 48 + PUBLIC_LEN]
    assert embedded_public == public, "private.hss does not embed public.hss"
    assert private[-8:] == b"\x00" * 8, f"counter is {private[-8:].hex()}, expected 0"
    mode = stat.S_IMODE(private_path.stat().st_mode)
    assert mode == 0o600, f"private.hss mode {oct(mode)}"

    kids = re.findall(r"^\s*kid:\s*([0-9a-f]+)\s*$", proc.stdout, re.M)
    assert kids == [kid_of(public).hex()], describe(proc)
    remaining = re.findall(r"signatures remaining:\s*(\d+) of (\d+)", proc.stdout)
    assert remaining == [(str(2 ** (L * H)), str(2 ** (L * H)))], describe(proc)

    # A second keygen into the same folder must not overwrite a stateful key.
    again = hss_keygen(run, out, levels, height, w, expect_ok=False)
    assert again.returncode != 0, describe(again)
    assert private_path.read_bytes() == private and (out / "public.hss").read_bytes() == public


@pytest.mark.parametrize("args", [("--levels", 3, "--w", 1), ("--levels", 8, "--height", 20, "--w", 1),
                                  ("--levels", 0), ("--levels", 9), ("--height", 25), ("--height", 7),
                                  ("--w", 3), ("--w", 16)])
def test_keygen_refuses_bad_parameter_sets(run, tmp_path, args):
    out = tmp_path / "keys"
    proc = run(SERVER, "keygen", "--alg", "HSS-LMS", "--out", out, *args)
    assert proc.returncode == 2, describe(proc)
    assert not (out / "private.hss").exists() and not (out / "public.hss").exists(), describe(proc)


# ---------------------------------------------------------------------------
# 2. publish, verified by pyhsslms; mutations refused by both
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("levels,height,w", [(1, 5, 8), (2, 5, 4)], ids=["L1-H5-W8", "L2-H5-W4"])
def test_publish_verified_by_pyhsslms(run, tmp_path, image, levels, height, w):
    keys = tmp_path / "keys"
    hss_keygen(run, keys, levels, height, w)
    public_path = keys / "public.hss"
    public = public_path.read_bytes()
    key = keys / "private.hss"
    repo = tmp_path / "repo"
    proc = publish(run, repo, key, "m-hss", "1.2.3", image)
    capacity = 2 ** (levels * height)
    assert re.search(rf"signatures remaining:\s*{capacity - 2} of {capacity}\b", proc.stdout), describe(proc)
    assert read_counter(key) == 2, f"counter {read_counter(key)} after one publish"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    d = model_dir(repo, "m-hss")
    # COSE_Sign1
    protected, unprotected, payload, cose_sig, tbs = cose_parts(d / "manifest.cbor")
    assert cbor2.loads(protected) == {1: COSE_ALG_HSS_LMS}, protected.hex()
    assert unprotected == {4: kid_of(public)}, unprotected
    manifest = cbor2.loads(payload)
    assert manifest[4] == "m-hss" and manifest[5] == "1.2.3", manifest
    assert pyhsslms.HssPublicKey.deserialize(public).verify(tbs, cose_sig) is True
    # JWS
    header, jws_payload, jws_sig, signing_input = jws_parts(d / "manifest.json")
    assert header == {"alg": "HSS-LMS", "kid": b64u(kid_of(public))}, header
    assert json.loads(jws_payload)["firmwareVersion"] == "1.2.3"
    assert pyhsslms.HssPublicKey.deserialize(public).verify(signing_input, jws_sig) is True

    # Two signatures, two leaves: the first two of the key, bottom q differs.
    expected_len = expected_signature_len(levels, height, w)
    parsed = []
    for sig in (cose_sig, jws_sig):
        assert len(sig) == expected_len, f"signature is {len(sig)} bytes, expected {expected_len}"
        parsed.append(parse_hss_signature(sig))
    assert parsed[0]["levels"][-1]["q"] != parsed[1]["levels"][-1]["q"], [p["path"] for p in parsed]
    assert sorted(p["index"] for p in parsed) == [0, 1], [p["path"] for p in parsed]

    # Our verifier accepts both, with the image.
    for name in ("manifest.cbor", "manifest.json"):
        out = assert_verified(run, public_path, d / name, image)
        assert out.get("alg") == "HSS-LMS" and out.get("kid") == kid_of(public).hex(), out

    # Flip one byte in each part of the bottom LMS signature (and, for two
    # levels, the signed public key and top-level signature): refused by both.
    bottom = parsed[0]["levels"][-1]
    offsets = {
        "q": bottom["q_off"] + 3,
        "C": bottom["c_off"] + 5,
        "y": bottom["y_off"] + N * 3 + 7,
        "path": bottom["path_off"] + M * (height - 1) + 1,
    }
    if levels > 1:
        top = parsed[0]["levels"][0]
        offsets["top-y"] = top["y_off"] + 11
        offsets["signed-pub-I"] = top["pub_off"] + 8 + 3
        offsets["signed-pub-T"] = top["pub_off"] + 8 + 16 + 20
    cbor_bytes = (d / "manifest.cbor").read_bytes()
    assert cbor_bytes.endswith(cose_sig), "COSE signature is not the last item of manifest.cbor"
    jws_doc = json.loads((d / "manifest.json").read_text())
    bad_dir = tmp_path / "mutated"
    bad_dir.mkdir()
    for label, off in offsets.items():
        # COSE
        sig = bytearray(cose_sig)
        sig[off] ^= 0x01
        assert not pyhsslms_verify(public, tbs, bytes(sig)), f"pyhsslms accepted a flipped {label} byte"
        bad = bad_dir / f"{label}.cbor"
        bad.write_bytes(cbor_bytes[: len(cbor_bytes) - len(cose_sig)] + bytes(sig))
        assert_bad_signature(run, public_path, bad)
        # JWS
        sig = bytearray(jws_sig)
        sig[off] ^= 0x80
        assert not pyhsslms_verify(public, signing_input, bytes(sig)), f"pyhsslms accepted a flipped {label} byte (JWS)"
        bad = bad_dir / f"{label}.json"
        bad.write_text(json.dumps({**jws_doc, "signature": b64u(bytes(sig))}))
        assert_bad_signature(run, public_path, bad)

    # A signature cut short / extended by a byte is refused too.
    for label, sig in (("short", cose_sig[:-1]), ("long", cose_sig + b"\x00")):
        bad = bad_dir / f"{label}.cbor"
        bad.write_bytes(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, sig])))
        proc, out = verify_json(run, public_path, bad)
        assert proc.returncode == 1 and out and out.get("result") in ("bad-signature", "bad-manifest"), describe(proc)

    # The publish did not touch anything but the counter.
    assert read_counter(key) == 2


def test_eight_levels_across_tree_boundaries(run, tmp_path, image):
    """The deepest hierarchy (8 levels, H5/W8: 2^40 signatures, the largest
    signature that fits a manifest), counter set so that the two signatures
    of one publish straddle the boundary of all seven lower trees at once."""
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 8, 5, 8)
    key = keys / "private.hss"
    public = (keys / "public.hss").read_bytes()
    start = 2**35 - 1
    set_counter(key, start)
    repo = tmp_path / "repo"
    proc = publish(run, repo, key, "m-deep", "1.0.0", image)
    assert re.search(rf"signatures remaining:\s*{2**40 - start - 2} of {2**40}\b", proc.stdout), describe(proc)
    assert read_counter(key) == start + 2
    d = model_dir(repo, "m-deep")
    _, _, _, cose_sig, tbs = cose_parts(d / "manifest.cbor")
    _, _, jws_sig, signing_input = jws_parts(d / "manifest.json")
    assert len(cose_sig) == len(jws_sig) == expected_signature_len(8, 5, 8)
    assert pyhsslms_verify(public, tbs, cose_sig), "pyhsslms refuses the 8-level COSE signature"
    assert pyhsslms_verify(public, signing_input, jws_sig), "pyhsslms refuses the 8-level JWS signature"
    paths = sorted(parse_hss_signature(sig)["path"] for sig in (cose_sig, jws_sig))
    # 2^35 - 1 = top leaf 0, all seven lower levels at their last leaf; 2^35
    # = top leaf 1, every lower tree fresh.
    assert paths == [(0,) + (31,) * 7, (1,) + (0,) * 7], paths
    for name in ("manifest.cbor", "manifest.json"):
        assert_verified(run, keys / "public.hss", d / name, image)


def test_oversized_json_envelope_refused(run, tmp_path):
    """With 8-level signatures a manifest with as many components as a
    device reads (4), long names and three digests each no longer fits
    16 KiB as JWS: publish refuses and writes no manifest."""
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 8, 5, 8)
    args = []
    for i in range(4):
        part = tmp_path / (f"part-{i}-with-a-rather-long-file-name".ljust(60, "x") + ".bin")
        part.write_bytes(os.urandom(100))
        args += ["--component", f"component-{i}-with-a-long-name".ljust(64, "x") + f"={part}"]
    args += ["--digest", "sha256", "--digest", "sha384", "--digest", "sha512"]
    repo = tmp_path / "repo"
    proc = run(SERVER, "publish", "--repo", repo, "--key", keys / "private.hss", "--manufacturer",
               MANUFACTURER, "--model", "m-big", "--version", "1.0.0", *args)
    assert proc.returncode != 0, describe(proc)
    assert "16384" in proc.stderr or "limit" in proc.stderr, describe(proc)
    assert not list(repo.rglob("manifest.*")), describe(proc)


@pytest.mark.parametrize("field,value", [
    ("nspk", 1), ("nspk", 7), ("nspk", 0xFFFFFFFF),
    ("q", 32), ("q", 0xFFFFFFFF), ("q", 0x80000000),
    ("ots-type", 0), ("ots-type", 3), ("ots-type", 0xFFFFFFFF),
    ("lms-type", 0), ("lms-type", 6), ("lms-type", 9), ("lms-type", 0xFFFFFFFF),
    ("cut", 0), ("cut", 4), ("cut", 8), ("cut", 500),
])
def test_malformed_signature_fields(run, tmp_path, signed_repo, field, value):
    """Structurally broken HSS signatures are refused (exit 1), never crash."""
    public = signed_repo["public"].read_bytes()
    protected, unprotected, payload, sig, tbs = cose_parts(signed_repo["dir"] / "manifest.cbor")
    bottom = parse_hss_signature(sig)["levels"][-1]
    offsets = {"nspk": 0, "q": bottom["q_off"], "ots-type": bottom["q_off"] + 4, "lms-type": bottom["type_off"]}
    if field == "cut":
        bad_sig = sig[:value]
    else:
        data = bytearray(sig)
        data[offsets[field] : offsets[field] + 4] = struct.pack(">I", value)
        bad_sig = bytes(data)
    assert not pyhsslms_verify(public, tbs, bad_sig)
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, bad_sig])))
    proc, out = verify_json(run, signed_repo["public"], bad)
    assert proc.returncode == 1 and out and out.get("result") in ("bad-signature", "bad-manifest"), describe(proc)
    header, jws_payload, _, _ = jws_parts(signed_repo["dir"] / "manifest.json")
    doc = json.loads((signed_repo["dir"] / "manifest.json").read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "signature": b64u(bad_sig)}))
    proc, out = verify_json(run, signed_repo["public"], bad)
    assert proc.returncode == 1 and out and out.get("result") in ("bad-signature", "bad-manifest"), describe(proc)


# ---------------------------------------------------------------------------
# 3. the other direction: pyhsslms signs, we verify
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pyhss_key():
    """A two-level pyhsslms key (H5 / W8), with 33 signatures burnt so that
    the next one sits at top-level leaf 1, bottom leaf 1."""
    key = pyhsslms.HssPrivateKey(levels=2, lms_type=pyhsslms.lms_sha256_m32_h5,
                                 lmots_type=pyhsslms.lmots_sha256_n32_w8)
    for i in range(33):
        key.sign(b"burn %d" % i)
    return key


def manifest_cbor(model: str, version: str, image_bytes: bytes) -> bytes:
    """A manifest per SPEC §2, deterministic CBOR."""
    return cbor2.dumps({
        1: "1.0",
        2: cbor2.CBORTag(1, 1764000000),
        3: MANUFACTURER,
        4: model,
        5: version,
        6: f"{version}/firmware.bin",
        7: {1: [{1: -16, 2: hashlib.sha256(image_bytes).digest()}]},
        9: len(image_bytes),
    }, canonical=True)


def manifest_json(model: str, version: str, image_bytes: bytes) -> bytes:
    return json.dumps({
        "manifestVersion": "1.0",
        "timestamp": "2025-11-24T16:00:00Z",
        "manufacturer": MANUFACTURER,
        "model": model,
        "firmwareVersion": version,
        "firmwareLocation": f"{version}/firmware.bin",
        "firmwareCryptoInfo": {"commitHash": [{"digestAlgo": "sha256",
                                                "hash": hashlib.sha256(image_bytes).hexdigest()}]},
        "firmwareSize": len(image_bytes),
    }, separators=(",", ":")).encode()


def test_pyhsslms_signed_manifest_verifies(run, tmp_path, image, pyhss_key):
    public = pyhss_key.publicKey().serialize()
    assert len(public) == PUBLIC_LEN
    trust = tmp_path / "pyhsslms-public.hss"
    trust.write_bytes(public)
    kid = kid_of(public)
    image_bytes = image.read_bytes()

    # COSE_Sign1 made here with cbor2
    protected = cbor2.dumps({1: COSE_ALG_HSS_LMS})
    payload = manifest_cbor("m-py", "2.0.1", image_bytes)
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    sig = pyhss_key.sign(tbs)
    assert parse_hss_signature(sig)["path"] == (1, 1), parse_hss_signature(sig)["path"]
    cose = tmp_path / "py.cbor"
    cose.write_bytes(cbor2.dumps(cbor2.CBORTag(18, [protected, {4: kid}, payload, sig])))

    # flattened JWS made here
    header = b64u(json.dumps({"alg": "HSS-LMS", "kid": b64u(kid)}, separators=(",", ":")).encode())
    body = b64u(manifest_json("m-py", "2.0.1", image_bytes))
    jws_sig = pyhss_key.sign(f"{header}.{body}".encode("ascii"))
    jws = tmp_path / "py.json"
    jws.write_text(json.dumps({"protected": header, "payload": body, "signature": b64u(jws_sig)}))

    other_keys = tmp_path / "other"
    hss_keygen(run, other_keys, 2, 5, 8)  # same parameter set, different key
    other = other_keys / "public.hss"

    for manifest in (cose, jws):
        out = assert_verified(run, trust, manifest, image)
        assert out.get("kid") == kid.hex() and out.get("alg") == "HSS-LMS", out
        assert out["manifest"]["model"] == "m-py" and out["manifest"]["firmwareVersion"] == "2.0.1", out
        assert_bad_signature(run, other, manifest)
        # With both keys trusted, the right one is found.
        assert_verified(run, [other, trust], manifest)

    # The same signature under the other key's kid (so the verifier tries
    # that key) must fail: the kid is no shortcut around the signature.
    wrong_kid = tmp_path / "py-wrong-kid.cbor"
    wrong_kid.write_bytes(cbor2.dumps(cbor2.CBORTag(
        18, [protected, {4: kid_of(other.read_bytes())}, payload, sig])))
    proc, out = verify_json(run, [other, trust], wrong_kid)
    assert proc.returncode == 1 and out and out.get("result") == "bad-signature", describe(proc)

    # A signature made by pyhsslms over another payload does not carry over.
    swapped = tmp_path / "py-swapped.cbor"
    payload2 = manifest_cbor("m-py", "2.0.2", image_bytes)
    swapped.write_bytes(cbor2.dumps(cbor2.CBORTag(18, [protected, {4: kid}, payload2, sig])))
    assert_bad_signature(run, trust, swapped)


# ---------------------------------------------------------------------------
# 4. concurrent publishes never share a leaf
# ---------------------------------------------------------------------------

RACE_ROUNDS = 5


def test_concurrent_publish_distinct_leaves(run, bin_dir, tmp_path, image):
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 2, 5, 8)
    key = keys / "private.hss"
    public = (keys / "public.hss").read_bytes()
    start = 26  # 20 signatures from 26 cross the first bottom tree's end (32)
    set_counter(key, start)

    signatures = []
    for r in range(RACE_ROUNDS):
        procs = []
        for side, model in (("a", "m-race-a"), ("b", "m-race-b")):
            repo = tmp_path / f"repo-{r}-{side}"
            args = publish_args(bin_dir, repo, key, model, f"1.0.{r}", image)
            procs.append((repo, model, subprocess.Popen(args, stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE, text=True)))
        for repo, model, p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, f"round {r}: publish into {repo} failed ({p.returncode})\n{out}\n{err}"
        for repo, model, _ in procs:
            d = model_dir(repo, model)
            _, _, _, cose_sig, tbs = cose_parts(d / "manifest.cbor")
            _, _, jws_sig, signing_input = jws_parts(d / "manifest.json")
            assert pyhsslms_verify(public, tbs, cose_sig), f"round {r} {repo}: COSE signature invalid"
            assert pyhsslms_verify(public, signing_input, jws_sig), f"round {r} {repo}: JWS signature invalid"
            signatures += [(r, repo.name, "cose", cose_sig), (r, repo.name, "jws", jws_sig)]

    made = len(signatures)
    assert made == 4 * RACE_ROUNDS
    indices = [(parse_hss_signature(s)["index"], parse_hss_signature(s)["path"], r, name, fmt)
               for r, name, fmt, s in signatures]
    by_index = {}
    for idx, path, r, name, fmt in indices:
        by_index.setdefault(idx, []).append(f"round {r} {name} {fmt} path {path}")
    reused = {i: who for i, who in by_index.items() if len(who) > 1}
    assert not reused, f"one-time leaves used more than once: {reused}"
    assert sorted(by_index) == list(range(start, start + made)), sorted(by_index)
    assert read_counter(key) == start + made, f"counter {read_counter(key)} != {start + made}"


def test_concurrent_publish_at_capacity(run, bin_dir, tmp_path, image):
    """Two publishes racing for the last two leaves: at most one release, no
    leaf twice, no half-written release, counter at capacity."""
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 1, 5, 8)
    public = (keys / "public.hss").read_bytes()
    template = (keys / "private.hss").read_bytes()
    for r in range(RACE_ROUNDS):
        key = tmp_path / f"key-{r}.hss"
        key.write_bytes(template)
        set_counter(key, 30)
        procs = []
        for side in "ab":
            repo = tmp_path / f"repo-{r}-{side}"
            args = publish_args(bin_dir, repo, key, "m-last", "1.0.0", image)
            procs.append((repo, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                 text=True)))
        results = []
        for repo, p in procs:
            out, err = p.communicate(timeout=60)
            results.append((repo, p.returncode, out, err))
        leaves = []
        ok = 0
        for repo, rc, out, err in results:
            d = model_dir(repo, "m-last")
            manifests = sorted(p.name for p in d.glob("manifest*")) if d.exists() else []
            if rc == 0:
                ok += 1
                assert manifests == ["manifest.cbor", "manifest.json"], manifests
                for sig, msg in ((cose_parts(d / "manifest.cbor")[3], cose_parts(d / "manifest.cbor")[4]),
                                 (jws_parts(d / "manifest.json")[2], jws_parts(d / "manifest.json")[3])):
                    assert pyhsslms_verify(public, msg, sig)
                    leaves.append(parse_hss_signature(sig)["index"])
            else:
                assert rc == 1, f"round {r}: exit {rc}\n{out}\n{err}"
                assert "exhausted" in err or re.search(r"\b[01] signature", err), f"round {r}: {err}"
                assert str(key) in err, f"round {r}: message does not name the key file: {err}"
                assert manifests == [], f"round {r}: failed publish left {manifests} in {d}"
        assert ok <= 1, f"round {r}: both publishes succeeded with 2 signatures left: {results}"
        assert len(leaves) == len(set(leaves)) and set(leaves) <= {30, 31}, leaves
        assert read_counter(key) == 32, f"round {r}: counter {read_counter(key)}"


# ---------------------------------------------------------------------------
# 5. exhaustion
# ---------------------------------------------------------------------------


def test_exhaustion(run, tmp_path, image):
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 1, 5, 8)
    key = keys / "private.hss"
    public = (keys / "public.hss").read_bytes()
    repo = tmp_path / "repo"
    used = []
    for i in range(16):
        proc = publish(run, repo, key, "m-ex", f"1.0.{i}", image)
        assert re.search(rf"signatures remaining:\s*{32 - 2 * (i + 1)} of 32\b", proc.stdout), describe(proc)
        assert read_counter(key) == 2 * (i + 1)
        d = model_dir(repo, "m-ex")
        _, _, _, cose_sig, tbs = cose_parts(d / "manifest.cbor")
        _, _, jws_sig, signing_input = jws_parts(d / "manifest.json")
        assert pyhsslms_verify(public, tbs, cose_sig) and pyhsslms_verify(public, signing_input, jws_sig)
        used += [parse_hss_signature(cose_sig)["index"], parse_hss_signature(jws_sig)["index"]]
    assert sorted(used) == list(range(32)), used

    key_before = key.read_bytes()
    repo_before = tree_snapshot(repo)
    proc = publish(run, repo, key, "m-ex", "1.0.16", image, expect_ok=False)
    assert proc.returncode == 1, describe(proc)
    assert str(key) in proc.stderr and "HSS-LMS key" in proc.stderr, describe(proc)
    assert re.search(r"\b0 signature", proc.stderr), describe(proc)
    assert key.read_bytes() == key_before and read_counter(key) == 32
    assert tree_snapshot(repo) == repo_before, "a refused publish changed the repository"


@pytest.mark.parametrize("counter,left", [(31, 1), (32, 0), (33, 0), (2**64 - 1, 0)])
def test_refused_before_signing(run, tmp_path, image, counter, left):
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 1, 5, 8)
    key = keys / "private.hss"
    set_counter(key, counter)
    before = key.read_bytes()
    repo = tmp_path / "repo"
    proc = publish(run, repo, key, "m-x", "1.0.0", image, expect_ok=False)
    assert proc.returncode == 1, describe(proc)
    assert str(key) in proc.stderr and "HSS-LMS key" in proc.stderr, describe(proc)
    assert re.search(rf"\b{left} signature", proc.stderr), describe(proc)
    assert key.read_bytes() == before, "the key file changed on a refused publish"
    assert tree_snapshot(repo) == {}, "a refused publish wrote into the repository"


def test_refused_release_spends_no_leaf(run, tmp_path, image):
    """A publish refused for a reason of its own (version already out, a
    rollback) reserves nothing: leaves are taken only right before signing."""
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 1, 5, 8)
    key = keys / "private.hss"
    repo = tmp_path / "repo"
    publish(run, repo, key, "m-r", "1.0.1", image)
    assert read_counter(key) == 2
    for version in ("1.0.1", "1.0.0"):
        proc = publish(run, repo, key, "m-r", version, image, expect_ok=False)
        assert proc.returncode != 0, describe(proc)
        assert read_counter(key) == 2, f"refused publish of {version} spent leaves"


# ---------------------------------------------------------------------------
# 6. corrupted key files
# ---------------------------------------------------------------------------


def _corrupt_private(good: bytes, how: str) -> bytes:
    data = bytearray(good)
    if how == "truncated":
        return bytes(data[:100])
    if how == "empty":
        return b""
    if how == "extra-byte":
        return bytes(data[:-8]) + b"\x00" + bytes(data[-8:])
    if how == "no-counter":
        return bytes(data[:-8])
    if how == "wrong-magic":
        data[0:8] = b"CFWHSSK2"
    elif how == "levels-0":
        data[8:12] = struct.pack(">I", 0)
    elif how == "levels-2":
        data[8:12] = struct.pack(">I", 2)
    elif how == "levels-9":
        data[8:12] = struct.pack(">I", 9)
    elif how == "lms-type":
        data[12:16] = struct.pack(">I", 0x0F)
    elif how == "lmots-type":
        data[16:20] = struct.pack(">I", 0)
    else:
        raise AssertionError(how)
    return bytes(data)


@pytest.mark.parametrize("how", ["truncated", "empty", "extra-byte", "no-counter", "wrong-magic",
                                 "levels-0", "levels-2", "levels-9", "lms-type", "lmots-type"])
def test_corrupted_private_key(run, tmp_path, image, how):
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 1, 5, 8)
    bad = tmp_path / f"bad-{how}.hss"
    bad.write_bytes(_corrupt_private((keys / "private.hss").read_bytes(), how))
    os.chmod(bad, 0o600)
    before = bad.read_bytes()
    repo = tmp_path / "repo"
    proc = publish(run, repo, bad, "m-bad", "1.0.0", image, expect_ok=False)
    assert proc.returncode == 2, describe(proc)
    assert str(bad) in proc.stderr, describe(proc)
    assert bad.read_bytes() == before, "publish modified a corrupted key file"
    assert tree_snapshot(repo) == {}, "publish with a corrupted key wrote into the repository"


def test_private_key_readable_by_others(run, tmp_path, image):
    keys = tmp_path / "keys"
    hss_keygen(run, keys, 1, 5, 8)
    key = keys / "private.hss"
    os.chmod(key, 0o644)
    proc = publish(run, tmp_path / "repo", key, "m-mode", "1.0.0", image, expect_ok=False)
    assert proc.returncode == 2 and str(key) in proc.stderr, describe(proc)
    assert read_counter(key) == 0


@pytest.fixture(scope="module")
def signed_repo(tmp_path_factory, run):
    """A 1-level H5/W8 key and one published release (shared by the
    read-only tests below)."""
    root = tmp_path_factory.mktemp("hss-signed")
    keys = root / "keys"
    hss_keygen(run, keys, 1, 5, 8)
    img = root / "firmware.bin"
    write_random_file(img, 2048 + 3)
    repo = root / "repo"
    publish(run, repo, keys / "private.hss", "m-s", "1.0.0", img)
    return {"keys": keys, "public": keys / "public.hss", "repo": repo, "image": img,
            "dir": model_dir(repo, "m-s")}


def _corrupt_public(good: bytes, how: str) -> bytes:
    data = bytearray(good)
    if how == "truncated":
        return bytes(data[:59])
    if how == "extra-byte":
        return bytes(data) + b"\x00"
    if how == "empty":
        return b""
    if how == "levels-0":
        data[0:4] = struct.pack(">I", 0)
    elif how == "levels-9":
        data[0:4] = struct.pack(">I", 9)
    elif how == "lms-type":
        data[4:8] = struct.pack(">I", 0x0F)
    elif how == "lmots-type":
        data[8:12] = struct.pack(">I", 0)
    else:
        raise AssertionError(how)
    return bytes(data)


@pytest.mark.parametrize("how", ["truncated", "extra-byte", "empty", "levels-0", "levels-9",
                                 "lms-type", "lmots-type"])
def test_corrupted_public_key(run, tmp_path, signed_repo, how):
    bad = tmp_path / f"bad-{how}.hss"
    bad.write_bytes(_corrupt_public(signed_repo["public"].read_bytes(), how))
    for name in ("manifest.cbor", "manifest.json"):
        proc, _ = verify_json(run, bad, signed_repo["dir"] / name)
        assert proc.returncode == 2, describe(proc)
        assert str(bad) in proc.stderr, describe(proc)


def test_wellformed_but_wrong_public_key(run, tmp_path, signed_repo):
    """Valid RFC 8554 public keys that are not the signer's: bad-signature."""
    good = signed_repo["public"].read_bytes()
    variants = {
        "levels-2": struct.pack(">I", 2) + good[4:],
        "other-T": good[:-1] + bytes([good[-1] ^ 1]),
        "other-I": good[:12] + bytes([good[12] ^ 1]) + good[13:],
        "lmots-w4": good[:8] + struct.pack(">I", 3) + good[12:],
    }
    for label, data in variants.items():
        trust = tmp_path / f"{label}.hss"
        trust.write_bytes(data)
        for name in ("manifest.cbor", "manifest.json"):
            assert_bad_signature(run, trust, signed_repo["dir"] / name)
    # And a PEM key of another algorithm does not verify an HSS manifest.
    pem_keys = tmp_path / "es256"
    proc = run(SERVER, "keygen", "--alg", "ES256", "--out", pem_keys)
    assert proc.returncode == 0, describe(proc)
    assert_bad_signature(run, pem_keys / "public.pem", signed_repo["dir"] / "manifest.cbor")


# ---------------------------------------------------------------------------
# 7. serve + update with an HSS trust anchor
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("levels,height,w", [(2, 5, 4), (8, 5, 8)], ids=["L2-H5-W4", "L8-H5-W8"])
def test_update_end_to_end(run, bin_dir, tmp_path, levels, height, w):
    """L8: a ~15 KiB manifest.json, fetched block-wise like the image."""
    keys = tmp_path / "keys"
    hss_keygen(run, keys, levels, height, w)
    repo = tmp_path / "repo"
    img = tmp_path / "images" / "hss-fw.bin"
    size = 24 * 1024 + 333
    write_random_file(img, size)
    publish(run, repo, keys / "private.hss", "m-e2e", "3.1.4", img)
    other = tmp_path / "other-keys"
    hss_keygen(run, other, levels, height, w)

    logs = tmp_path / "logs"
    logs.mkdir()
    server = start_our_server(bin_dir, repo, logs)
    try:
        origin = f"coap://127.0.0.1:{server.port}"
        for fmt in ("cbor", "json"):
            # Untrusted key first: nothing may be installed.
            state = tmp_path / f"state-{fmt}"
            wrong = client_update(bin_dir, other / "public.hss", "m-e2e", state, "--origin", origin,
                                  "--format", fmt, "--timeout", 10)
            assert wrong.returncode == 1 and wrong.json and wrong.json["result"] == "bad-signature", wrong.describe()
            assert not (state / "installed" / img.name).exists(), wrong.describe()

            run_ = client_update(bin_dir, keys / "public.hss", "m-e2e", state, "--origin", origin,
                                 "--format", fmt, "--block-size", 512, "--timeout", 10)
            assert_updated(run_, "3.1.4", size)
            assert_installed(bin_dir, state, "3.1.4", [(img.name, img, size)])
            assert (state / "installed" / img.name).read_bytes() == img.read_bytes()
        assert server.alive(), server.describe()
    finally:
        problems = stop_our_server(server)
    assert not problems, "\n\n".join(problems)
