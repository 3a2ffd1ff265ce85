"""`coap-fw-server keygen` / `publish` checked with independent implementations.

What our publisher writes is decoded and verified here with pycose (COSE_Sign1),
cbor2 plus the test kit's strict CBOR reader (support.cbor: deterministic
encoding, RFC 8949 §4.2.1), and cryptography (JWS signatures, key numbers,
kids). Nothing here uses our Swift code except through the two binaries.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlparse, unquote

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pycose.keys import EC2Key, OKPKey
from pycose.keys.curves import Ed25519 as CoseEd25519
from pycose.keys.curves import P256 as CoseP256
from pycose.messages import Sign1Message

from support import cli
from support.cbor import CBORError, Tag, decode as cbor_decode
from support.envelopes import b64u, b64u_decode, kid, read_cose, read_jws
from support.files import snapshot
from support.paths import MANUFACTURER, MODEL, model_dir

TS_RFC3339 = "2025-11-24T16:00:00Z"
TS_EPOCH = 1764000000  # the same instant

COSE_ALG = {"ES256": -7, "EdDSA": -8}
DIGESTS = {  # JSON name -> (COSE id, hashlib constructor, digest length)
    "sha256": (-16, hashlib.sha256, 32),
    "sha384": (-43, hashlib.sha384, 48),
    "sha512": (-44, hashlib.sha512, 64),
}
DIGEST_BY_COSE_ID = {v[0]: k for k, v in DIGESTS.items()}

# CBOR manifest keys (SPEC §2)
K_MANIFEST_VERSION, K_TIMESTAMP, K_MANUFACTURER, K_MODEL, K_VERSION = 1, 2, 3, 4, 5
K_LOCATION, K_CRYPTO, K_KEY_INFO, K_SIZE, K_COMPONENTS, K_CRITICAL = 6, 7, 8, 9, 10, 11
KNOWN_KEYS = set(range(1, 12))


# ---------------------------------------------------------------------------
# The strict CBOR reader (support.cbor) used below
# ---------------------------------------------------------------------------


def test_strict_cbor_reader_self_check():
    """The reader used below must itself catch non-deterministic input."""
    assert cbor_decode(bytes.fromhex("a201010202")) == {1: 1, 2: 2}
    assert cbor_decode(b"\xc1\x1a" + TS_EPOCH.to_bytes(4, "big")) == Tag(1, TS_EPOCH)
    assert cbor_decode(bytes.fromhex("a3012020062122")) == {1: -1, -1: 6, -2: -3}
    for bad in (
        "a202020101",  # keys out of order
        "a201010102",  # duplicate key
        "1801",  # 1 not in shortest form
        "190017",  # 23 in two bytes
        "bf0101ff",  # indefinite map
        "0101",  # trailing byte
        "62c328",  # invalid UTF-8
        "f93c00",  # half float
    ):
        with pytest.raises(CBORError):
            cbor_decode(bytes.fromhex(bad))


# ---------------------------------------------------------------------------
# Keys, encodings
# ---------------------------------------------------------------------------


def pem_der(path: Path) -> bytes:
    """The DER body of a single-block PEM file, read without cryptography."""
    text = path.read_text()
    m = re.search(r"-----BEGIN ([A-Z ]+)-----\s*(.*?)\s*-----END \1-----", text, re.S)
    assert m, f"{path} is not PEM"
    return base64.b64decode("".join(m.group(2).split()))


def load_public(path: Path):
    return serialization.load_pem_public_key(path.read_bytes())


def spki_der(pub) -> bytes:
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def kid_of(pub) -> bytes:
    return kid(spki_der(pub))


def ec_xy(pub) -> tuple[bytes, bytes]:
    nums = pub.public_numbers()
    return nums.x.to_bytes(32, "big"), nums.y.to_bytes(32, "big")


def ed_x(pub) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def pycose_key(pub):
    if isinstance(pub, ec.EllipticCurvePublicKey):
        x, y = ec_xy(pub)
        return EC2Key(crv=CoseP256, x=x, y=y)
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return OKPKey(crv=CoseEd25519, x=ed_x(pub))
    raise AssertionError(f"unexpected key type {type(pub)}")


def verify_raw(pub, alg: str, signature: bytes, message: bytes) -> None:
    """Verify with cryptography; raises InvalidSignature."""
    if alg == "ES256":
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        assert len(signature) == 64, f"ES256 signature is {len(signature)} bytes, not raw r||s (64)"
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        pub.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    elif alg == "EdDSA":
        assert isinstance(pub, ed25519.Ed25519PublicKey)
        assert len(signature) == 64, f"Ed25519 signature is {len(signature)} bytes"
        pub.verify(signature, message)
    else:
        raise AssertionError(alg)


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_jwk(pub) -> dict:
    if isinstance(pub, ec.EllipticCurvePublicKey):
        x, y = ec_xy(pub)
        return {"kty": "EC", "crv": "P-256", "x": b64u(x), "y": b64u(y)}
    return {"kty": "OKP", "crv": "Ed25519", "x": b64u(ed_x(pub))}


def expected_cose_key(pub) -> dict:
    if isinstance(pub, ec.EllipticCurvePublicKey):
        x, y = ec_xy(pub)
        return {1: 2, -1: 1, -2: x, -3: y}
    return {1: 1, -1: 6, -2: ed_x(pub)}


# ---------------------------------------------------------------------------
# Publishing and reading a release
# ---------------------------------------------------------------------------


def publish(bin_dir, repo: Path, key: Path, version: str, *, timestamp=TS_RFC3339, model=MODEL, **kw):
    """support.cli.publish of MODEL at this file's fixed timestamp; the exit
    status is the test's to check."""
    return cli.publish(bin_dir, repo, key, model, version, timestamp=timestamp, check=False, **kw)


def write_image(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def resolve_location(manifest_path: Path, location: str) -> Path:
    """RFC 3986 reference resolution against the manifest's own (file) URI."""
    uri = urljoin(manifest_path.resolve().as_uri(), location)
    parsed = urlparse(uri)
    assert parsed.scheme == "file", f"location {location!r} resolved to non-file URI {uri}"
    return Path(unquote(parsed.path))


def check_cbor_digests(entries, image_bytes: bytes, digest_names, where: str):
    assert isinstance(entries, list), f"{where}: commitHash is not an array"
    got_names = []
    for i, entry in enumerate(entries):
        assert isinstance(entry, dict) and set(entry) == {1, 2}, f"{where}[{i}]: {entry!r}"
        assert entry[1] in DIGEST_BY_COSE_ID, f"{where}[{i}]: digestAlgo {entry[1]}"
        name = DIGEST_BY_COSE_ID[entry[1]]
        got_names.append(name)
        _, fn, length = DIGESTS[name]
        assert isinstance(entry[2], bytes) and len(entry[2]) == length, f"{where}[{i}].hash"
        assert entry[2] == fn(image_bytes).digest(), f"{where}[{i}]: {name} does not match the image"
    assert got_names == list(digest_names), f"{where}: digests {got_names}, expected {list(digest_names)}"


def check_json_digests(entries, image_bytes: bytes, digest_names, where: str):
    assert isinstance(entries, list), f"{where}: commitHash is not an array"
    got_names = []
    for i, entry in enumerate(entries):
        assert isinstance(entry, dict) and set(entry) == {"digestAlgo", "hash"}, f"{where}[{i}]: {entry!r}"
        name = entry["digestAlgo"]
        assert name in DIGESTS, f"{where}[{i}]: digestAlgo {name!r}"
        got_names.append(name)
        _, fn, length = DIGESTS[name]
        assert re.fullmatch(r"[0-9a-f]{%d}" % (2 * length), entry["hash"]), (
            f"{where}[{i}]: hash is not {2 * length} lowercase hex digits: {entry['hash']!r}"
        )
        assert entry["hash"] == fn(image_bytes).hexdigest(), f"{where}[{i}]: {name} does not match"
    assert got_names == list(digest_names), f"{where}: digests {got_names}, expected {list(digest_names)}"


def cbor_to_json_model(m: dict) -> dict:
    """Map a decoded CBOR manifest to what its JSON twin should contain."""

    def hashes_(entries):
        return [{"digestAlgo": DIGEST_BY_COSE_ID[e[1]], "hash": e[2].hex()} for e in entries]

    def jwk(cose_key):
        if cose_key.get(1) == 2:
            return {"kty": "EC", "crv": "P-256", "x": b64u(cose_key[-2]), "y": b64u(cose_key[-3])}
        return {"kty": "OKP", "crv": "Ed25519", "x": b64u(cose_key[-2])}

    out = {
        "manifestVersion": m[K_MANIFEST_VERSION],
        "timestamp": rfc3339(m[K_TIMESTAMP].value),
        "manufacturer": m[K_MANUFACTURER],
        "model": m[K_MODEL],
        "firmwareVersion": m[K_VERSION],
    }
    if K_LOCATION in m:
        out["firmwareLocation"] = m[K_LOCATION]
    if K_CRYPTO in m:
        out["firmwareCryptoInfo"] = {"commitHash": hashes_(m[K_CRYPTO][1])}
    if K_KEY_INFO in m:
        out["key-info"] = jwk(m[K_KEY_INFO])
    if K_SIZE in m:
        out["firmwareSize"] = m[K_SIZE]
    if K_COMPONENTS in m:
        out["components"] = [
            {"name": c[1], "location": c[2], "size": c[3], "commitHash": hashes_(c[4])}
            for c in m[K_COMPONENTS]
        ]
    if K_CRITICAL in m:
        out["critical"] = m[K_CRITICAL]
    return out


def check_release(repo: Path, signer_pub_path: Path, alg: str, version: str, *,
                  images, single: bool, digest_names=("sha256",), timestamp=TS_EPOCH,
                  key_info_pub=None, model=MODEL):
    """Independently verify and decode both manifests of a published release.

    ``images`` is a list of (name, source file); for a single image the name
    is the file's basename. Returns (cbor payload dict, json payload dict).
    """
    signer = load_public(signer_pub_path)
    kid = kid_of(signer)
    mdir = model_dir(repo, model=model)
    cbor_path, json_path = mdir / "manifest.cbor", mdir / "manifest.json"
    assert cbor_path.is_file() and json_path.is_file(), f"manifests missing under {mdir}"

    # ---- COSE_Sign1 -------------------------------------------------------
    data, protected, unprotected, payload, signature, sig_structure = read_cose(cbor_path)
    assert cbor_decode(protected) == {1: COSE_ALG[alg]}, f"protected header {protected.hex()}"
    assert cbor2.loads(protected) == {1: COSE_ALG[alg]}
    assert unprotected == {4: kid}, f"unprotected header {unprotected!r}, kid should be {kid.hex()}"

    msg = Sign1Message.decode(data)
    msg.key = pycose_key(signer)
    assert msg.verify_signature(), "pycose rejects the COSE_Sign1 signature"
    assert msg.payload == payload
    # and once more by hand, with cryptography over the Sig_structure
    verify_raw(signer, alg, signature, sig_structure)

    # deterministic payload: our strict reader, and the cbor2 round trip
    m = cbor_decode(payload, deterministic=True)
    assert cbor2.dumps(cbor2.loads(payload), canonical=True, datetime_as_timestamp=True) == payload

    assert isinstance(m, dict)
    assert set(m) <= KNOWN_KEYS, f"unexpected payload keys {sorted(set(m) - KNOWN_KEYS)}"
    assert m[K_MANIFEST_VERSION] == "1.0"
    assert m[K_TIMESTAMP] == Tag(1, timestamp), f"timestamp {m[K_TIMESTAMP]!r}, expected tag 1 {timestamp}"
    assert type(m[K_TIMESTAMP].value) is int
    assert m[K_MANUFACTURER] == MANUFACTURER
    assert m[K_MODEL] == model
    assert m[K_VERSION] == version
    assert K_CRITICAL not in m, "publisher should not mark anything critical"

    if key_info_pub is None:
        assert K_KEY_INFO not in m
    else:
        assert m[K_KEY_INFO] == expected_cose_key(key_info_pub), f"key-info {m[K_KEY_INFO]!r}"

    if single:
        (name, src), = images
        blob = src.read_bytes()
        assert K_COMPONENTS not in m
        assert m[K_LOCATION] == f"{version}/{src.name}"
        assert m[K_SIZE] == len(blob) == src.stat().st_size
        assert isinstance(m[K_CRYPTO], dict) and set(m[K_CRYPTO]) == {1}
        check_cbor_digests(m[K_CRYPTO][1], blob, digest_names, "firmwareCryptoInfo.commitHash")
        published = resolve_location(cbor_path, m[K_LOCATION])
        assert published.is_file(), f"{m[K_LOCATION]} -> {published} does not exist"
        assert published.read_bytes() == blob
    else:
        comps = m[K_COMPONENTS]
        assert isinstance(comps, list) and len(comps) == len(images)
        for i, ((name, src), c) in enumerate(zip(images, comps)):
            blob = src.read_bytes()
            assert set(c) == {1, 2, 3, 4}, f"components[{i}] keys {sorted(c)}"
            assert c[1] == name
            assert c[2] == f"{version}/{src.name}"
            assert c[3] == len(blob)
            check_cbor_digests(c[4], blob, digest_names, f"components[{i}].commitHash")
            published = resolve_location(cbor_path, c[2])
            assert published.is_file(), f"{c[2]} -> {published} does not exist"
            assert published.read_bytes() == blob

    # ---- JWS ---------------------------------------------------------------
    _, header, _, jm, jsig, signing_input = read_jws(json_path)
    assert header == {"alg": alg, "kid": b64u(kid)}, f"JWS header {header!r}"
    try:
        verify_raw(signer, alg, jsig, signing_input)
    except InvalidSignature:
        pytest.fail(f"cryptography rejects the JWS signature of {json_path}")

    assert jm["manifestVersion"] == "1.0"
    assert jm["timestamp"] == rfc3339(timestamp)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", jm["timestamp"])
    assert jm["manufacturer"] == MANUFACTURER
    assert jm["model"] == model
    assert jm["firmwareVersion"] == version
    if key_info_pub is None:
        assert "key-info" not in jm
    else:
        assert jm["key-info"] == expected_jwk(key_info_pub)
    if single:
        (name, src), = images
        blob = src.read_bytes()
        assert "components" not in jm
        assert jm["firmwareLocation"] == f"{version}/{src.name}"
        assert jm["firmwareSize"] == len(blob)
        assert type(jm["firmwareSize"]) is int
        check_json_digests(jm["firmwareCryptoInfo"]["commitHash"], blob, digest_names,
                           "firmwareCryptoInfo.commitHash")
        assert resolve_location(json_path, jm["firmwareLocation"]).read_bytes() == blob
    else:
        assert len(jm["components"]) == len(images)
        for i, ((name, src), c) in enumerate(zip(images, jm["components"])):
            blob = src.read_bytes()
            assert set(c) == {"name", "location", "size", "commitHash"}
            assert c["name"] == name
            assert c["location"] == f"{version}/{src.name}"
            assert c["size"] == len(blob)
            check_json_digests(c["commitHash"], blob, digest_names, f"components[{i}].commitHash")
            assert resolve_location(json_path, c["location"]).read_bytes() == blob

    # ---- both describe the same release --------------------------------------
    assert cbor_to_json_model(m) == jm
    return m, jm


# ---------------------------------------------------------------------------
# keygen
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_keygen_writes_matching_pem_pair(alg, keygen):
    out, proc = keygen(alg)
    priv_path, pub_path = out / "private.pem", out / "public.pem"

    assert priv_path.stat().st_mode & 0o777 == 0o600, oct(priv_path.stat().st_mode)
    assert "BEGIN PRIVATE KEY" in priv_path.read_text(), "private key is not PKCS#8 PEM"
    assert "BEGIN PUBLIC KEY" in pub_path.read_text(), "public key is not SPKI PEM"

    priv = serialization.load_pem_private_key(priv_path.read_bytes(), password=None)
    pub = load_public(pub_path)
    if alg == "ES256":
        assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"
    else:
        assert isinstance(pub, ed25519.Ed25519PublicKey)
    assert spki_der(priv.public_key()) == spki_der(pub), "public.pem does not belong to private.pem"
    assert pem_der(pub_path) == spki_der(pub)

    lines = dict(
        line.split(":", 1) for line in proc.stdout.splitlines() if re.match(r"^[a-z ]+:", line)
    )
    assert lines.get("algorithm", "").strip() == alg, proc.stdout
    printed_kid = lines.get("kid", "").strip()
    assert re.fullmatch(r"[0-9a-f]{16}", printed_kid), proc.stdout
    assert printed_kid == hashlib.sha256(pem_der(pub_path)).digest()[:8].hex()


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_keygen_refuses_to_overwrite_without_force(alg, keygen, bin_dir):
    out, _ = keygen(alg)
    before = snapshot(out)
    proc = cli.keygen(bin_dir, out, alg, check=False)
    assert proc.returncode == 1, proc.describe()
    assert snapshot(out) == before, "a refused keygen changed the key files"

    cli.keygen(bin_dir, out, alg, "--force")
    assert (out / "private.pem").read_bytes() != before["private.pem"]
    assert (out / "public.pem").read_bytes() != before["public.pem"]
    assert (out / "private.pem").stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------------------
# publish: single image and components
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg,timestamp", [("ES256", TS_RFC3339), ("EdDSA", str(TS_EPOCH))])
@pytest.mark.parametrize("size", [3000, 100000])
def test_single_image_release_interop(alg, timestamp, size, keygen, bin_dir, tmp_path, fw_repo):
    keys, _ = keygen(alg)
    image = write_image(tmp_path / "in" / f"fw-{size}.bin", size)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.2.3", image=image,
                   timestamp=timestamp, digests=["sha256", "sha512"])
    assert proc.returncode == 0, proc.describe()

    check_release(fw_repo, keys / "public.pem", alg, "1.2.3", images=[(image.name, image)],
                  single=True, digest_names=("sha256", "sha512"))

    # the version folder holds exactly the image
    assert sorted(p.name for p in (model_dir(fw_repo) / "1.2.3").iterdir()) == [image.name]

    # and our own client accepts what our publisher wrote, with the image
    for name in ("manifest.cbor", "manifest.json"):
        v = cli.verify(bin_dir, keys / "public.pem", model_dir(fw_repo) / name, image)
        assert v.returncode == 0, v.describe()
        out = v.json
        assert out["result"] == "verified" and out["imagesChecked"] == 1
        assert out["alg"] == alg and out["kid"] == kid_of(load_public(keys / "public.pem")).hex()


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_multi_component_release_interop(alg, keygen, bin_dir, tmp_path, fw_repo):
    keys, _ = keygen(alg)
    comps = [
        ("bootloader", write_image(tmp_path / "in" / "boot.img", 3000)),
        ("application", write_image(tmp_path / "in" / "app.img", 100000)),
        ("config", write_image(tmp_path / "in" / "cfg.bin", 517)),
    ]
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "2.0.1", components=comps,
                   digests=["sha256", "sha512"])
    assert proc.returncode == 0, proc.describe()

    m, _ = check_release(fw_repo, keys / "public.pem", alg, "2.0.1", images=comps,
                         single=False, digest_names=("sha256", "sha512"))
    # SPEC §2: with components, 6/7/9 describe nothing else
    assert sorted(p.name for p in (model_dir(fw_repo) / "2.0.1").iterdir()) == sorted(
        src.name for _, src in comps
    )

    v = cli.verify(bin_dir, keys / "public.pem", model_dir(fw_repo) / "manifest.cbor", *[src for _, src in comps])
    assert v.returncode == 0, v.describe()
    assert v.json["imagesChecked"] == 3


def test_default_digest_is_sha256(keygen, bin_dir, tmp_path, fw_repo):
    keys, _ = keygen("ES256")
    image = write_image(tmp_path / "in" / "firmware.bin", 3000)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0", image=image)
    assert proc.returncode == 0, proc.describe()
    check_release(fw_repo, keys / "public.pem", "ES256", "1.0.0",
                  images=[(image.name, image)], single=True, digest_names=("sha256",))


def test_sha384_digest(keygen, bin_dir, tmp_path, fw_repo):
    keys, _ = keygen("EdDSA")
    image = write_image(tmp_path / "in" / "firmware.bin", 4097)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0", image=image,
                   digests=["sha384", "sha256"])
    assert proc.returncode == 0, proc.describe()
    check_release(fw_repo, keys / "public.pem", "EdDSA", "1.0.0",
                  images=[(image.name, image)], single=True, digest_names=("sha384", "sha256"))


@pytest.mark.parametrize("signer,announced", [
    ("ES256", "ES256"), ("ES256", "EdDSA"), ("EdDSA", "ES256"), ("EdDSA", "EdDSA"),
])
def test_key_info_announces_next_key(signer, announced, keygen, bin_dir, tmp_path, fw_repo):
    keys, _ = keygen(signer, "current")
    nxt, _ = keygen(announced, "next")
    image = write_image(tmp_path / "in" / "firmware.bin", 3000)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0", image=image,
                   extra=["--key-info", nxt / "public.pem"])
    assert proc.returncode == 0, proc.describe()
    next_pub = load_public(nxt / "public.pem")
    m, jm = check_release(fw_repo, keys / "public.pem", signer, "1.0.0",
                          images=[(image.name, image)], single=True, key_info_pub=next_pub)

    # coordinates straight from cryptography's public numbers
    if announced == "ES256":
        nums = next_pub.public_numbers()
        assert int.from_bytes(m[K_KEY_INFO][-2], "big") == nums.x
        assert int.from_bytes(m[K_KEY_INFO][-3], "big") == nums.y
        assert int.from_bytes(b64u_decode(jm["key-info"]["x"]), "big") == nums.x
        assert int.from_bytes(b64u_decode(jm["key-info"]["y"]), "big") == nums.y
        rebuilt = ec.EllipticCurvePublicNumbers(
            int.from_bytes(m[K_KEY_INFO][-2], "big"), int.from_bytes(m[K_KEY_INFO][-3], "big"),
            ec.SECP256R1()).public_key()
    else:
        rebuilt = ed25519.Ed25519PublicKey.from_public_bytes(m[K_KEY_INFO][-2])
        assert b64u_decode(jm["key-info"]["x"]) == ed_x(next_pub)
    assert kid_of(rebuilt) == kid_of(next_pub)


# ---------------------------------------------------------------------------
# publish: refusals leave the repository untouched
# ---------------------------------------------------------------------------


@pytest.fixture
def published(keygen, bin_dir, tmp_path, fw_repo):
    """A repository with release 1.0.0 (one 3000-byte image), ES256."""
    keys, _ = keygen("ES256")
    image = write_image(tmp_path / "in" / "firmware.bin", 3000)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0", image=image)
    assert proc.returncode == 0, proc.describe()
    return keys, image


def assert_refused(proc, status: int, *needles: str):
    assert proc.returncode == status, proc.describe()
    text = (proc.stderr + proc.stdout).lower()
    for needle in needles:
        assert needle.lower() in text, f"expected {needle!r} in the message\n{proc.describe()}"


def test_republish_same_version_refused(published, bin_dir, tmp_path, fw_repo):
    keys, _ = published
    before = snapshot(fw_repo)
    other = write_image(tmp_path / "in2" / "firmware.bin", 3000)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0", image=other)
    assert_refused(proc, 1, "already published")
    assert snapshot(fw_repo) == before, "a refused publish changed the repository"


@pytest.mark.parametrize("first,second", [("2.0.0", "1.9.9"), ("1.10.0", "1.9.0"), ("1.0.10", "1.0.9")])
def test_lower_version_refused_as_rollback(first, second, keygen, bin_dir, tmp_path, fw_repo):
    keys, _ = keygen("EdDSA")
    image = write_image(tmp_path / "in" / "firmware.bin", 3000)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", first, image=image)
    assert proc.returncode == 0, proc.describe()
    before = snapshot(fw_repo)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", second, image=image,
                   timestamp="2025-11-25T00:00:00Z")
    assert_refused(proc, 1, "rollback")
    assert snapshot(fw_repo) == before, "a refused publish changed the repository"


def test_higher_version_compares_numerically(keygen, bin_dir, tmp_path, fw_repo):
    keys, _ = keygen("ES256")
    image = write_image(tmp_path / "in" / "firmware.bin", 3000)
    assert publish(bin_dir, fw_repo, keys / "private.pem", "1.9.0", image=image).returncode == 0
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.10.0", image=image,
                   timestamp="2025-11-25T00:00:00Z")
    assert proc.returncode == 0, proc.describe()
    check_release(fw_repo, keys / "public.pem", "ES256", "1.10.0", images=[(image.name, image)],
                  single=True, timestamp=TS_EPOCH + 8 * 3600)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_insecure_key_mode_refused(mode, published, bin_dir, tmp_path, fw_repo):
    keys, image = published
    before = snapshot(fw_repo)
    key = keys / "private.pem"
    os.chmod(key, mode)
    proc = publish(bin_dir, fw_repo, key, "1.1.0", image=image)
    assert_refused(proc, 2, "chmod")
    assert str(key) in proc.stderr + proc.stdout, "the message should name the key file"
    assert snapshot(fw_repo) == before

    proc = publish(bin_dir, fw_repo, key, "1.1.0", image=image, extra=["--allow-insecure-key"])
    assert proc.returncode == 0, proc.describe()
    check_release(fw_repo, keys / "public.pem", "ES256", "1.1.0", images=[(image.name, image)],
                  single=True)


@pytest.mark.parametrize("version", ["1.2", "1.2.3.4", "1.two.3", "1..3"])
def test_bad_version_is_usage_error(version, published, bin_dir, fw_repo):
    keys, image = published
    before = snapshot(fw_repo)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", version, image=image)
    assert_refused(proc, 2, version)
    assert snapshot(fw_repo) == before


def test_missing_image_is_usage_error(published, bin_dir, tmp_path, fw_repo):
    keys, _ = published
    before = snapshot(fw_repo)
    missing = tmp_path / "no-such-dir" / "missing.bin"
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.1.0", image=missing)
    assert_refused(proc, 2, str(missing))
    assert snapshot(fw_repo) == before


def test_missing_component_is_usage_error(published, bin_dir, tmp_path, fw_repo):
    keys, image = published
    before = snapshot(fw_repo)
    missing = tmp_path / "absent-app.bin"
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.1.0",
                   components=[("boot", image), ("app", missing)])
    assert_refused(proc, 2, str(missing))
    assert snapshot(fw_repo) == before


def test_no_image_is_usage_error(published, bin_dir, fw_repo):
    keys, _ = published
    before = snapshot(fw_repo)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.1.0")
    assert proc.returncode == 2, proc.describe()
    assert proc.stderr.strip(), "a usage error should say what is wrong"
    assert snapshot(fw_repo) == before


def test_no_image_into_empty_repo_writes_nothing(keygen, bin_dir, fw_repo):
    keys, _ = keygen("EdDSA")
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0")
    assert proc.returncode == 2, proc.describe()
    assert not model_dir(fw_repo).exists() or not any(model_dir(fw_repo).iterdir())


# ---------------------------------------------------------------------------
# publish --force
# ---------------------------------------------------------------------------


def test_force_republish_replaces_version_folder(published, bin_dir, tmp_path, fw_repo):
    keys, old_image = published
    vdir = model_dir(fw_repo) / "1.0.0"
    old_cbor = (model_dir(fw_repo) / "manifest.cbor").read_bytes()

    # same file name, new content
    same_name = write_image(tmp_path / "in2" / "firmware.bin", 5000)
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0", image=same_name,
                   timestamp="2025-11-24T17:00:00Z", extra=["--force"])
    assert proc.returncode == 0, proc.describe()
    assert (model_dir(fw_repo) / "manifest.cbor").read_bytes() != old_cbor
    assert sorted(p.name for p in vdir.iterdir()) == ["firmware.bin"]
    assert (vdir / "firmware.bin").read_bytes() == same_name.read_bytes()
    check_release(fw_repo, keys / "public.pem", "ES256", "1.0.0",
                  images=[(same_name.name, same_name)], single=True, timestamp=TS_EPOCH + 3600)

    # different file names: the old image must be gone
    comps = [("boot", write_image(tmp_path / "in3" / "boot.bin", 1200)),
             ("app", write_image(tmp_path / "in3" / "app.bin", 2400))]
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0", components=comps,
                   timestamp="2025-11-24T18:00:00Z", extra=["--force"])
    assert proc.returncode == 0, proc.describe()
    assert sorted(p.name for p in vdir.iterdir()) == ["app.bin", "boot.bin"], (
        f"version folder after --force: {sorted(p.name for p in vdir.iterdir())}"
    )
    check_release(fw_repo, keys / "public.pem", "ES256", "1.0.0", images=comps, single=False,
                  timestamp=TS_EPOCH + 7200)


def test_force_allows_lower_version(keygen, bin_dir, tmp_path, fw_repo):
    keys, _ = keygen("EdDSA")
    image = write_image(tmp_path / "in" / "firmware.bin", 3000)
    assert publish(bin_dir, fw_repo, keys / "private.pem", "2.0.0", image=image).returncode == 0
    proc = publish(bin_dir, fw_repo, keys / "private.pem", "1.0.0", image=image,
                   timestamp="2025-11-24T19:00:00Z", extra=["--force"])
    assert proc.returncode == 0, proc.describe()
    check_release(fw_repo, keys / "public.pem", "EdDSA", "1.0.0", images=[(image.name, image)],
                  single=True, timestamp=TS_EPOCH + 3 * 3600)
