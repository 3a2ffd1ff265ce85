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

from support import cli
from support.cli import assert_installed, assert_updated
from support.envelopes import b64u, cose_sign1, kid as kid_of, read_cose, read_jws, sig_structure
from support.files import snapshot, write_random_file
from support.paths import MANUFACTURER, SERVER, model_dir

COSE_ALG_HSS_LMS = -46
MAGIC = b"CFWHSSK1"

# RFC 8554 §5.1 / §4.1 type codes (SHA-256, n = m = 32)
LMS_CODE_BY_HEIGHT = {5: 5, 10: 6, 15: 7, 20: 8}
HEIGHT_BY_LMS_CODE = {5: 5, 6: 10, 7: 15, 8: 20, 9: 25}
LMOTS_CODE_BY_W = {1: 1, 2: 2, 4: 3, 8: 4}
P_BY_LMOTS_CODE = {1: 265, 2: 133, 3: 67, 4: 34}  # RFC 8554 Table 1, n = 32
N = M = 32
PUBLIC_LEN = 60


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


def signed_pairs(d: Path) -> list[tuple[bytes, bytes]]:
    """(signature, signed bytes) of manifest.cbor and manifest.json in ``d``."""
    cose, jws = read_cose(d / "manifest.cbor"), read_jws(d / "manifest.json")
    return [(cose.signature, cose.tbs), (jws.signature, jws.signing_input)]


# ---------------------------------------------------------------------------
# running the binaries
# ---------------------------------------------------------------------------


def hss_keygen(bin_dir, out: Path, levels=None, height=None, w=None, expect_ok=True):
    args = []
    for flag, value in (("--levels", levels), ("--height", height), ("--w", w)):
        if value is not None:
            args += [flag, value]
    return cli.keygen(bin_dir, out, "HSS-LMS", *args, check=expect_ok)


def publish(bin_dir, repo, key, model, version, image, expect_ok=True):
    return cli.publish(bin_dir, repo, key, model, version, image=image, check=expect_ok)


def assert_verified(bin_dir, trusts, manifest, *images):
    proc = cli.verify(bin_dir, trusts, manifest, *images)
    assert proc.returncode == 0 and proc.json and proc.json.get("result") == "verified", proc.describe()
    return proc.json


def assert_refused(bin_dir, trusts, manifest, results=("bad-signature",)):
    proc = cli.verify(bin_dir, trusts, manifest)
    assert proc.returncode == 1, proc.describe()
    assert proc.json and proc.json.get("result") in results, proc.describe()


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
def test_keygen_files(bin_dir, tmp_path, levels, height, w):
    out = tmp_path / "keys"
    proc = hss_keygen(bin_dir, out, levels, height, w)
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
    assert kids == [kid_of(public).hex()], proc.describe()
    remaining = re.findall(r"signatures remaining:\s*(\d+) of (\d+)", proc.stdout)
    assert remaining == [(str(2 ** (L * H)), str(2 ** (L * H)))], proc.describe()

    # A second keygen into the same folder must not overwrite a stateful key.
    again = hss_keygen(bin_dir, out, levels, height, w, expect_ok=False)
    assert again.returncode != 0, again.describe()
    assert private_path.read_bytes() == private and (out / "public.hss").read_bytes() == public


@pytest.mark.parametrize("args", [("--levels", 3, "--w", 1), ("--levels", 8, "--height", 20, "--w", 1),
                                  ("--levels", 0), ("--levels", 9), ("--height", 25), ("--height", 7),
                                  ("--w", 3), ("--w", 16)])
def test_keygen_refuses_bad_parameter_sets(bin_dir, tmp_path, args):
    out = tmp_path / "keys"
    proc = cli.keygen(bin_dir, out, "HSS-LMS", *args, check=False)
    assert proc.returncode == 2, proc.describe()
    assert not (out / "private.hss").exists() and not (out / "public.hss").exists(), proc.describe()


# ---------------------------------------------------------------------------
# 2. publish, verified by pyhsslms; mutations refused by both
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("levels,height,w", [(1, 5, 8), (2, 5, 4)], ids=["L1-H5-W8", "L2-H5-W4"])
def test_publish_verified_by_pyhsslms(bin_dir, tmp_path, image, levels, height, w):
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, levels, height, w)
    public_path = keys / "public.hss"
    public = public_path.read_bytes()
    key = keys / "private.hss"
    repo = tmp_path / "repo"
    proc = publish(bin_dir, repo, key, "m-hss", "1.2.3", image)
    capacity = 2 ** (levels * height)
    assert re.search(rf"signatures remaining:\s*{capacity - 2} of {capacity}\b", proc.stdout), proc.describe()
    assert read_counter(key) == 2, f"counter {read_counter(key)} after one publish"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    d = model_dir(repo, "m-hss")
    # COSE_Sign1
    _, protected, unprotected, payload, cose_sig, tbs = read_cose(d / "manifest.cbor")
    assert cbor2.loads(protected) == {1: COSE_ALG_HSS_LMS}, protected.hex()
    assert unprotected == {4: kid_of(public)}, unprotected
    manifest = cbor2.loads(payload)
    assert manifest[4] == "m-hss" and manifest[5] == "1.2.3", manifest
    assert pyhsslms.HssPublicKey.deserialize(public).verify(tbs, cose_sig) is True
    # JWS
    jws_doc, header, _, jws_payload, jws_sig, signing_input = read_jws(d / "manifest.json")
    assert header == {"alg": "HSS-LMS", "kid": b64u(kid_of(public))}, header
    assert jws_payload["firmwareVersion"] == "1.2.3"
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
        out = assert_verified(bin_dir, public_path, d / name, image)
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
    bad_dir = tmp_path / "mutated"
    bad_dir.mkdir()
    for label, off in offsets.items():
        # COSE
        sig = bytearray(cose_sig)
        sig[off] ^= 0x01
        assert not pyhsslms_verify(public, tbs, bytes(sig)), f"pyhsslms accepted a flipped {label} byte"
        bad = bad_dir / f"{label}.cbor"
        bad.write_bytes(cbor_bytes[: len(cbor_bytes) - len(cose_sig)] + bytes(sig))
        assert_refused(bin_dir, public_path, bad)
        # JWS
        sig = bytearray(jws_sig)
        sig[off] ^= 0x80
        assert not pyhsslms_verify(public, signing_input, bytes(sig)), f"pyhsslms accepted a flipped {label} byte (JWS)"
        bad = bad_dir / f"{label}.json"
        bad.write_text(json.dumps({**jws_doc, "signature": b64u(bytes(sig))}))
        assert_refused(bin_dir, public_path, bad)

    # A signature cut short / extended by a byte is refused too.
    for label, sig in (("short", cose_sig[:-1]), ("long", cose_sig + b"\x00")):
        bad = bad_dir / f"{label}.cbor"
        bad.write_bytes(cose_sign1(protected, unprotected, payload, sig))
        assert_refused(bin_dir, public_path, bad, ("bad-signature", "bad-manifest"))

    # The publish did not touch anything but the counter.
    assert read_counter(key) == 2


def test_eight_levels_across_tree_boundaries(bin_dir, tmp_path, image):
    """The deepest hierarchy (8 levels, H5/W8: 2^40 signatures, the largest
    signature that fits a manifest), counter set so that the two signatures
    of one publish straddle the boundary of all seven lower trees at once."""
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 8, 5, 8)
    key = keys / "private.hss"
    public = (keys / "public.hss").read_bytes()
    start = 2**35 - 1
    set_counter(key, start)
    repo = tmp_path / "repo"
    proc = publish(bin_dir, repo, key, "m-deep", "1.0.0", image)
    assert re.search(rf"signatures remaining:\s*{2**40 - start - 2} of {2**40}\b", proc.stdout), proc.describe()
    assert read_counter(key) == start + 2
    d = model_dir(repo, "m-deep")
    (cose_sig, tbs), (jws_sig, signing_input) = signed_pairs(d)
    assert len(cose_sig) == len(jws_sig) == expected_signature_len(8, 5, 8)
    assert pyhsslms_verify(public, tbs, cose_sig), "pyhsslms refuses the 8-level COSE signature"
    assert pyhsslms_verify(public, signing_input, jws_sig), "pyhsslms refuses the 8-level JWS signature"
    paths = sorted(parse_hss_signature(sig)["path"] for sig in (cose_sig, jws_sig))
    # 2^35 - 1 = top leaf 0, all seven lower levels at their last leaf; 2^35
    # = top leaf 1, every lower tree fresh.
    assert paths == [(0,) + (31,) * 7, (1,) + (0,) * 7], paths
    for name in ("manifest.cbor", "manifest.json"):
        assert_verified(bin_dir, keys / "public.hss", d / name, image)


def test_oversized_json_envelope_refused(bin_dir, tmp_path):
    """With 8-level signatures a manifest with as many components as a
    device reads (4), long names and three digests each no longer fits
    16 KiB as JWS: publish refuses and writes no manifest."""
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 8, 5, 8)
    args = []
    for i in range(4):
        part = tmp_path / (f"part-{i}-with-a-rather-long-file-name".ljust(60, "x") + ".bin")
        part.write_bytes(os.urandom(100))
        args += ["--component", f"component-{i}-with-a-long-name".ljust(64, "x") + f"={part}"]
    args += ["--digest", "sha256", "--digest", "sha384", "--digest", "sha512"]
    repo = tmp_path / "repo"
    proc = cli.publish(bin_dir, repo, keys / "private.hss", "m-big", "1.0.0", extra=args, check=False)
    assert proc.returncode != 0, proc.describe()
    assert "16384" in proc.stderr or "limit" in proc.stderr, proc.describe()
    assert not list(repo.rglob("manifest.*")), proc.describe()


@pytest.mark.parametrize("field,value", [
    ("nspk", 1), ("nspk", 7), ("nspk", 0xFFFFFFFF),
    ("q", 32), ("q", 0xFFFFFFFF), ("q", 0x80000000),
    ("ots-type", 0), ("ots-type", 3), ("ots-type", 0xFFFFFFFF),
    ("lms-type", 0), ("lms-type", 6), ("lms-type", 9), ("lms-type", 0xFFFFFFFF),
    ("cut", 0), ("cut", 4), ("cut", 8), ("cut", 500),
])
def test_malformed_signature_fields(bin_dir, tmp_path, signed_repo, field, value):
    """Structurally broken HSS signatures are refused (exit 1), never crash."""
    public = signed_repo["public"].read_bytes()
    _, protected, unprotected, payload, sig, tbs = read_cose(signed_repo["dir"] / "manifest.cbor")
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
    bad.write_bytes(cose_sign1(protected, unprotected, payload, bad_sig))
    assert_refused(bin_dir, signed_repo["public"], bad, ("bad-signature", "bad-manifest"))
    doc = read_jws(signed_repo["dir"] / "manifest.json").doc
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "signature": b64u(bad_sig)}))
    assert_refused(bin_dir, signed_repo["public"], bad, ("bad-signature", "bad-manifest"))


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


def test_pyhsslms_signed_manifest_verifies(bin_dir, tmp_path, image, pyhss_key):
    public = pyhss_key.publicKey().serialize()
    assert len(public) == PUBLIC_LEN
    trust = tmp_path / "pyhsslms-public.hss"
    trust.write_bytes(public)
    kid = kid_of(public)
    image_bytes = image.read_bytes()

    # COSE_Sign1 made here with cbor2
    protected = cbor2.dumps({1: COSE_ALG_HSS_LMS})
    payload = manifest_cbor("m-py", "2.0.1", image_bytes)
    tbs = sig_structure(protected, payload)
    sig = pyhss_key.sign(tbs)
    assert parse_hss_signature(sig)["path"] == (1, 1), parse_hss_signature(sig)["path"]
    cose = tmp_path / "py.cbor"
    cose.write_bytes(cose_sign1(protected, {4: kid}, payload, sig))

    # flattened JWS made here
    header = b64u(json.dumps({"alg": "HSS-LMS", "kid": b64u(kid)}, separators=(",", ":")).encode())
    body = b64u(manifest_json("m-py", "2.0.1", image_bytes))
    jws_sig = pyhss_key.sign(f"{header}.{body}".encode("ascii"))
    jws = tmp_path / "py.json"
    jws.write_text(json.dumps({"protected": header, "payload": body, "signature": b64u(jws_sig)}))

    other_keys = tmp_path / "other"
    hss_keygen(bin_dir, other_keys, 2, 5, 8)  # same parameter set, different key
    other = other_keys / "public.hss"

    for manifest in (cose, jws):
        out = assert_verified(bin_dir, trust, manifest, image)
        assert out.get("kid") == kid.hex() and out.get("alg") == "HSS-LMS", out
        assert out["manifest"]["model"] == "m-py" and out["manifest"]["firmwareVersion"] == "2.0.1", out
        assert_refused(bin_dir, other, manifest)
        # With both keys trusted, the right one is found.
        assert_verified(bin_dir, [other, trust], manifest)

    # The same signature under the other key's kid (so the verifier tries
    # that key) must fail: the kid is no shortcut around the signature.
    wrong_kid = tmp_path / "py-wrong-kid.cbor"
    wrong_kid.write_bytes(cose_sign1(protected, {4: kid_of(other.read_bytes())}, payload, sig))
    assert_refused(bin_dir, [other, trust], wrong_kid)

    # A signature made by pyhsslms over another payload does not carry over.
    swapped = tmp_path / "py-swapped.cbor"
    payload2 = manifest_cbor("m-py", "2.0.2", image_bytes)
    swapped.write_bytes(cose_sign1(protected, {4: kid}, payload2, sig))
    assert_refused(bin_dir, trust, swapped)


# ---------------------------------------------------------------------------
# 4. concurrent publishes never share a leaf
# ---------------------------------------------------------------------------

RACE_ROUNDS = 5


def test_concurrent_publish_distinct_leaves(bin_dir, tmp_path, image):
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 2, 5, 8)
    key = keys / "private.hss"
    public = (keys / "public.hss").read_bytes()
    start = 26  # 20 signatures from 26 cross the first bottom tree's end (32)
    set_counter(key, start)

    signatures = []
    for r in range(RACE_ROUNDS):
        procs = []
        for side, model in (("a", "m-race-a"), ("b", "m-race-b")):
            repo = tmp_path / f"repo-{r}-{side}"
            args = [bin_dir / SERVER, *cli.publish_args(repo, key, model, f"1.0.{r}", image=image)]
            procs.append((repo, model, subprocess.Popen(args, stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE, text=True)))
        for repo, model, p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, f"round {r}: publish into {repo} failed ({p.returncode})\n{out}\n{err}"
        for repo, model, _ in procs:
            (cose_sig, tbs), (jws_sig, signing_input) = signed_pairs(model_dir(repo, model))
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


def test_concurrent_publish_at_capacity(bin_dir, tmp_path, image):
    """Two publishes racing for the last two leaves: at most one release, no
    leaf twice, no half-written release, counter at capacity."""
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 1, 5, 8)
    public = (keys / "public.hss").read_bytes()
    template = (keys / "private.hss").read_bytes()
    for r in range(RACE_ROUNDS):
        key = tmp_path / f"key-{r}.hss"
        key.write_bytes(template)
        set_counter(key, 30)
        procs = []
        for side in "ab":
            repo = tmp_path / f"repo-{r}-{side}"
            args = [bin_dir / SERVER, *cli.publish_args(repo, key, "m-last", "1.0.0", image=image)]
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
                for sig, msg in signed_pairs(d):
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


def test_exhaustion(bin_dir, tmp_path, image):
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 1, 5, 8)
    key = keys / "private.hss"
    public = (keys / "public.hss").read_bytes()
    repo = tmp_path / "repo"
    used = []
    for i in range(16):
        proc = publish(bin_dir, repo, key, "m-ex", f"1.0.{i}", image)
        assert re.search(rf"signatures remaining:\s*{32 - 2 * (i + 1)} of 32\b", proc.stdout), proc.describe()
        assert read_counter(key) == 2 * (i + 1)
        (cose_sig, tbs), (jws_sig, signing_input) = signed_pairs(model_dir(repo, "m-ex"))
        assert pyhsslms_verify(public, tbs, cose_sig) and pyhsslms_verify(public, signing_input, jws_sig)
        used += [parse_hss_signature(cose_sig)["index"], parse_hss_signature(jws_sig)["index"]]
    assert sorted(used) == list(range(32)), used

    key_before = key.read_bytes()
    repo_before = snapshot(repo, dirs=False)
    proc = publish(bin_dir, repo, key, "m-ex", "1.0.16", image, expect_ok=False)
    assert proc.returncode == 1, proc.describe()
    assert str(key) in proc.stderr and "HSS-LMS key" in proc.stderr, proc.describe()
    assert re.search(r"\b0 signature", proc.stderr), proc.describe()
    assert key.read_bytes() == key_before and read_counter(key) == 32
    assert snapshot(repo, dirs=False) == repo_before, "a refused publish changed the repository"


@pytest.mark.parametrize("counter,left", [(31, 1), (32, 0), (33, 0), (2**64 - 1, 0)])
def test_refused_before_signing(bin_dir, tmp_path, image, counter, left):
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 1, 5, 8)
    key = keys / "private.hss"
    set_counter(key, counter)
    before = key.read_bytes()
    repo = tmp_path / "repo"
    proc = publish(bin_dir, repo, key, "m-x", "1.0.0", image, expect_ok=False)
    assert proc.returncode == 1, proc.describe()
    assert str(key) in proc.stderr and "HSS-LMS key" in proc.stderr, proc.describe()
    assert re.search(rf"\b{left} signature", proc.stderr), proc.describe()
    assert key.read_bytes() == before, "the key file changed on a refused publish"
    assert snapshot(repo, dirs=False) == {}, "a refused publish wrote into the repository"


def test_refused_release_spends_no_leaf(bin_dir, tmp_path, image):
    """A publish refused for a reason of its own (version already out, a
    rollback) reserves nothing: leaves are taken only right before signing."""
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 1, 5, 8)
    key = keys / "private.hss"
    repo = tmp_path / "repo"
    publish(bin_dir, repo, key, "m-r", "1.0.1", image)
    assert read_counter(key) == 2
    for version in ("1.0.1", "1.0.0"):
        proc = publish(bin_dir, repo, key, "m-r", version, image, expect_ok=False)
        assert proc.returncode != 0, proc.describe()
        assert read_counter(key) == 2, f"refused publish of {version} spent leaves"


# ---------------------------------------------------------------------------
# 6. corrupted key files
# ---------------------------------------------------------------------------


def _set_u32(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack(">I", value) + data[offset + 4:]


# Damage to the fields both key files start with (u32 levels, u32 LMS type,
# u32 LM-OTS type), at their offset in public.hss; private.hss has them
# after its 8-byte magic.
HEADER_DAMAGE = {"levels-0": (0, 0), "levels-2": (0, 2), "levels-9": (0, 9), "lms-type": (4, 0x0F),
                 "lmots-type": (8, 0)}
PRIVATE_DAMAGE = {
    "truncated": lambda d: d[:100],
    "empty": lambda d: b"",
    "extra-byte": lambda d: d[:-8] + b"\x00" + d[-8:],
    "no-counter": lambda d: d[:-8],
    "wrong-magic": lambda d: b"CFWHSSK2" + d[8:],
    **{how: (lambda d, at=at, v=v: _set_u32(d, len(MAGIC) + at, v)) for how, (at, v) in HEADER_DAMAGE.items()},
}
# levels-2 in a public key is well formed (test_wellformed_but_wrong_public_key).
PUBLIC_DAMAGE = {
    "truncated": lambda d: d[:59],
    "extra-byte": lambda d: d + b"\x00",
    "empty": lambda d: b"",
    **{how: (lambda d, at=at, v=v: _set_u32(d, at, v)) for how, (at, v) in HEADER_DAMAGE.items() if how != "levels-2"},
}


@pytest.mark.parametrize("how", list(PRIVATE_DAMAGE))
def test_corrupted_private_key(bin_dir, tmp_path, image, how):
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 1, 5, 8)
    bad = tmp_path / f"bad-{how}.hss"
    bad.write_bytes(PRIVATE_DAMAGE[how]((keys / "private.hss").read_bytes()))
    os.chmod(bad, 0o600)
    before = bad.read_bytes()
    repo = tmp_path / "repo"
    proc = publish(bin_dir, repo, bad, "m-bad", "1.0.0", image, expect_ok=False)
    assert proc.returncode == 2, proc.describe()
    assert str(bad) in proc.stderr, proc.describe()
    assert bad.read_bytes() == before, "publish modified a corrupted key file"
    assert snapshot(repo, dirs=False) == {}, "publish with a corrupted key wrote into the repository"


def test_private_key_readable_by_others(bin_dir, tmp_path, image):
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, 1, 5, 8)
    key = keys / "private.hss"
    os.chmod(key, 0o644)
    proc = publish(bin_dir, tmp_path / "repo", key, "m-mode", "1.0.0", image, expect_ok=False)
    assert proc.returncode == 2 and str(key) in proc.stderr, proc.describe()
    assert read_counter(key) == 0


@pytest.fixture(scope="module")
def signed_repo(tmp_path_factory, bin_dir):
    """A 1-level H5/W8 key and one published release (shared by the
    read-only tests below)."""
    root = tmp_path_factory.mktemp("hss-signed")
    keys = root / "keys"
    hss_keygen(bin_dir, keys, 1, 5, 8)
    img = root / "firmware.bin"
    write_random_file(img, 2048 + 3)
    repo = root / "repo"
    publish(bin_dir, repo, keys / "private.hss", "m-s", "1.0.0", img)
    return {"keys": keys, "public": keys / "public.hss", "repo": repo, "image": img,
            "dir": model_dir(repo, "m-s")}


@pytest.mark.parametrize("how", list(PUBLIC_DAMAGE))
def test_corrupted_public_key(bin_dir, tmp_path, signed_repo, how):
    bad = tmp_path / f"bad-{how}.hss"
    bad.write_bytes(PUBLIC_DAMAGE[how](signed_repo["public"].read_bytes()))
    for name in ("manifest.cbor", "manifest.json"):
        proc = cli.verify(bin_dir, bad, signed_repo["dir"] / name)
        assert proc.returncode == 2, proc.describe()
        assert str(bad) in proc.stderr, proc.describe()


def test_wellformed_but_wrong_public_key(bin_dir, tmp_path, signed_repo):
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
            assert_refused(bin_dir, trust, signed_repo["dir"] / name)
    # And a PEM key of another algorithm does not verify an HSS manifest.
    pem_keys = tmp_path / "es256"
    cli.keygen(bin_dir, pem_keys)
    assert_refused(bin_dir, pem_keys / "public.pem", signed_repo["dir"] / "manifest.cbor")


# ---------------------------------------------------------------------------
# 7. serve + update with an HSS trust anchor
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("levels,height,w", [(2, 5, 4), (8, 5, 8)], ids=["L2-H5-W4", "L8-H5-W8"])
def test_update_end_to_end(bin_dir, server, tmp_path, levels, height, w):
    """L8: a ~15 KiB manifest.json, fetched block-wise like the image."""
    keys = tmp_path / "keys"
    hss_keygen(bin_dir, keys, levels, height, w)
    repo = tmp_path / "repo"
    img = tmp_path / "images" / "hss-fw.bin"
    size = 24 * 1024 + 333
    write_random_file(img, size)
    publish(bin_dir, repo, keys / "private.hss", "m-e2e", "3.1.4", img)
    other = tmp_path / "other-keys"
    hss_keygen(bin_dir, other, levels, height, w)

    srv = server(repo)
    origin = f"coap://127.0.0.1:{srv.port}"
    for fmt in ("cbor", "json"):
        # Untrusted key first: nothing may be installed.
        state = tmp_path / f"state-{fmt}"
        wrong = cli.update(bin_dir, other / "public.hss", "m-e2e", state, "--origin", origin,
                           "--format", fmt, "--timeout", 10)
        assert wrong.returncode == 1 and wrong.json and wrong.json["result"] == "bad-signature", wrong.describe()
        assert not (state / "installed" / img.name).exists(), wrong.describe()

        run = cli.update(bin_dir, keys / "public.hss", "m-e2e", state, "--origin", origin,
                         "--format", fmt, "--block-size", 512, "--timeout", 10)
        assert_updated(run, "3.1.4", size)
        assert_installed(bin_dir, state, "3.1.4", [(img.name, img, size)])
        assert (state / "installed" / img.name).read_bytes() == img.read_bytes()
    assert srv.alive(), srv.describe()
