#!/usr/bin/env python3
"""Independent generator of signed-manifest test vectors for coap-fw.

Written in Python against pycose / cbor2 / cryptography rather than the
Swift code, so that a Swift bug cannot be mirrored in its own test data.
Formats follow SPEC §2 (manifest) and §3 (COSE_Sign1 / flattened JWS).

    python3 Vectors/generate.py           # (re)generate everything, then check
    python3 Vectors/generate.py --check   # only re-verify what is on disk

Keys and images are created once and kept; manifests are rewritten each
run (ECDSA signatures are randomised, everything else is deterministic).
"""
import argparse
import base64
import datetime
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)
from pycose.algorithms import EdDSA, Es256
from pycose.headers import KID, Algorithm
from pycose.keys import CoseKey
from pycose.messages import Sign1Message

HERE = Path(__file__).resolve().parent
KEYS, IMAGES, OUT = HERE / "keys", HERE / "images", HERE / "manifests"
MAX_MANIFEST = 16384          # the decoder's size limit for a signed manifest
TIMESTAMP = 1764000000
TIMESTAMP_TEXT = "2025-11-24T16:00:00Z"
assert datetime.datetime.fromtimestamp(TIMESTAMP, datetime.timezone.utc) \
    .strftime("%Y-%m-%dT%H:%M:%SZ") == TIMESTAMP_TEXT

IMAGE_SPECS = {  # name -> (size, byte i = (i*a + b) % 256)
    "firmware.bin": (3000, 7, 3), "boot.bin": (1500, 13, 1), "app.bin": (2500, 5, 11)}

# Algorithm tables (COSE id / JWS name -> key family). Fully specified ids
# (RFC 9864) are the same primitives as their polymorphic counterparts.
COSE_ALGS = {-7: "ec", -9: "ec", -8: "ed", -19: "ed"}
JWS_ALGS = {"ES256": "ec", "ESP256": "ec", "EdDSA": "ed", "Ed25519": "ed"}
DIGESTS = {-16: hashlib.sha256, -43: hashlib.sha384, -44: hashlib.sha512}
JSON_DIGESTS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------- fixtures

class Key:
    """A key pair on disk; kid = first 8 bytes of SHA-256(DER SPKI) (SPEC §3)."""

    def __init__(self, stem: str, private):
        self.stem, self.private = stem, private
        self.public = private.public_key()
        spki = self.public.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = hashlib.sha256(spki).digest()[:8]
        self.family = "ec" if isinstance(private, ec.EllipticCurvePrivateKey) else "ed"
        self.trust = f"keys/{stem}-public.pem"

    def sign(self, data: bytes) -> bytes:
        if self.family == "ed":
            return self.private.sign(data)
        # COSE and JWS both want fixed-width r||s, not the DER that OpenSSL emits.
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def cose_key(self) -> CoseKey:
        return CoseKey.from_pem_private_key((KEYS / f"{self.stem}-private.pem").read_text())


def load_or_create_keys() -> dict:
    KEYS.mkdir(parents=True, exist_ok=True)
    makers = {"es256": lambda: ec.generate_private_key(ec.SECP256R1()),
              "ed25519": ed25519.Ed25519PrivateKey.generate,
              "other-es256": lambda: ec.generate_private_key(ec.SECP256R1())}
    keys = {}
    for stem, make in makers.items():
        priv_path, pub_path = KEYS / f"{stem}-private.pem", KEYS / f"{stem}-public.pem"
        if not priv_path.exists():
            private = make()
            priv_path.write_bytes(private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            pub_path.write_bytes(private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            print(f"created key   keys/{stem}-private.pem")
        # git does not keep 0600, so re-apply it on every run.
        os.chmod(priv_path, 0o600)
        keys[stem] = Key(stem, serialization.load_pem_private_key(priv_path.read_bytes(), None))
    return keys


def load_or_create_images() -> dict:
    IMAGES.mkdir(parents=True, exist_ok=True)
    images = {}
    for name, (size, a, b) in IMAGE_SPECS.items():
        data = bytes((i * a + b) % 256 for i in range(size))
        path = IMAGES / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        images[name] = data
    return images


# ---------------------------------------------------------------- manifests

def cbor_single(img: dict, extra=None) -> dict:
    fw = img["firmware.bin"]
    m = {1: "1.0", 2: cbor2.CBORTag(1, TIMESTAMP), 3: "example.com", 4: "c7960",
         5: "1.2.3", 6: "1.2.3/firmware.bin",
         7: {1: [{1: -16, 2: hashlib.sha256(fw).digest()},
                 {1: -44, 2: hashlib.sha512(fw).digest()}]},
         9: len(fw)}
    m.update(extra or {})
    return m


def cbor_multi(img: dict) -> dict:
    m = cbor_single(img)
    for k in (6, 7, 9):
        del m[k]
    boot, app = img["boot.bin"], img["app.bin"]
    m[10] = [{1: "boot", 2: "1.2.3/boot.bin", 3: len(boot),
              4: [{1: -16, 2: hashlib.sha256(boot).digest()}]},
             {1: "app", 2: "1.2.3/app.bin", 3: len(app),
              4: [{1: -16, 2: hashlib.sha256(app).digest()},
                  {1: -43, 2: hashlib.sha384(app).digest()}]}]
    return m


def enc(obj) -> bytes:
    return cbor2.dumps(obj, canonical=True)


def map_bytes(pairs, indefinite=False) -> bytes:
    """Hand-encode a map so that duplicate keys / indefinite length survive
    (cbor2 would collapse or normalise them)."""
    assert len(pairs) < 24
    head = b"\xbf" if indefinite else bytes([0xa0 + len(pairs)])
    body = b"".join(enc(k) + enc(v) for k, v in pairs)
    return head + body + (b"\xff" if indefinite else b"")


def json_single(img: dict) -> dict:
    fw = img["firmware.bin"]
    return {"manifestVersion": "1.0", "timestamp": TIMESTAMP_TEXT,
            "manufacturer": "example.com", "model": "c7960", "firmwareVersion": "1.2.3",
            "firmwareLocation": "1.2.3/firmware.bin",
            "firmwareCryptoInfo": {"commitHash": [
                {"digestAlgo": "sha256", "hash": hashlib.sha256(fw).hexdigest()}]},
            "firmwareSize": len(fw)}


def json_multi(img: dict) -> dict:
    m = json_single(img)
    for k in ("firmwareLocation", "firmwareCryptoInfo", "firmwareSize"):
        del m[k]
    boot, app = img["boot.bin"], img["app.bin"]
    m["components"] = [
        {"name": "boot", "location": "1.2.3/boot.bin", "size": len(boot),
         "commitHash": [{"digestAlgo": "sha256", "hash": hashlib.sha256(boot).hexdigest()}]},
        {"name": "app", "location": "1.2.3/app.bin", "size": len(app),
         "commitHash": [{"digestAlgo": "sha256", "hash": hashlib.sha256(app).hexdigest()},
                        {"digestAlgo": "sha384", "hash": hashlib.sha384(app).hexdigest()}]}]
    return m


def jtext(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------- envelopes

def cose_pycose(payload: bytes, key: Key, tag=True) -> bytes:
    """The reference path: let pycose build and sign the COSE_Sign1."""
    alg = Es256 if key.family == "ec" else EdDSA
    msg = Sign1Message(phdr={Algorithm: alg}, uhdr={KID: key.kid}, payload=payload,
                       key=key.cose_key())
    return msg.encode(tag=tag)


def cose_manual(payload: bytes, key: Key, alg: int) -> bytes:
    """For what pycose 1.1 cannot express (-9, -19) or refuses (lying alg)."""
    protected = cbor2.dumps({1: alg})
    sig = key.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
    return cbor2.dumps(cbor2.CBORTag(18, [protected, {4: key.kid}, payload, sig]))


def jws(payload: bytes, key: Key, alg: str) -> dict:
    protected = b64url(jtext({"alg": alg, "kid": b64url(key.kid)}))
    body = b64url(payload)
    sig = key.sign(f"{protected}.{body}".encode("ascii"))
    return {"protected": protected, "payload": body, "signature": b64url(sig)}


def tamper_jws_payload(obj: dict) -> dict:
    """Change one base64url character so that only the sha256 hex changes and
    stays lowercase hex: the payload is still a well-formed manifest, so the
    only failure left is the signature, whatever order a verifier checks in."""
    orig = json.loads(b64url_decode(obj["payload"]))
    p = obj["payload"]
    for i in range(len(p) // 2, len(p) - 4):
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
            if c == p[i]:
                continue
            cand = p[:i] + c + p[i + 1:]
            try:
                m = json.loads(b64url_decode(cand).decode("utf-8"))
                h = m["firmwareCryptoInfo"]["commitHash"][0]["hash"]
            except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError):
                continue
            want = json.loads(json.dumps(orig))  # deep copy with only the hash swapped
            want["firmwareCryptoInfo"]["commitHash"][0]["hash"] = h
            if m == want and m != orig and len(h) == 64 and all(x in "0123456789abcdef" for x in h):
                return dict(obj, payload=cand)
    raise RuntimeError("no plausible one-character tamper found")


# ---------------------------------------------------------------- diagnostic notation

def diag(buf: bytes) -> str:
    """CBOR diagnostic notation (RFC 8949 §8) of raw bytes, written here
    rather than via cbor2 so duplicate keys, indefinite lengths and
    trailing bytes are shown exactly as encoded."""
    text, end = _item(buf, 0, 0)
    if end != len(buf):
        text += f"\n# followed by {len(buf) - end} trailing byte(s): h'{buf[end:].hex()}'"
    return text


def _arg(buf, pos):
    ib = buf[pos]
    major, ai = ib >> 5, ib & 31
    if ai < 24:
        return major, ai, pos + 1
    if ai == 31:
        return major, None, pos + 1
    n = 1 << (ai - 24)
    return major, int.from_bytes(buf[pos + 1:pos + 1 + n], "big"), pos + 1 + n


def _item(buf, pos, depth):
    major, val, pos = _arg(buf, pos)
    pad, inner = "  " * depth, "  " * (depth + 1)
    if major == 0:
        return str(val), pos
    if major == 1:
        return str(-1 - val), pos
    if major in (2, 3):
        if val is None:
            parts = []
            while buf[pos] != 0xff:
                s, pos = _item(buf, pos, depth)
                parts.append(s)
            return "(_ " + ", ".join(parts) + ")", pos + 1
        raw = buf[pos:pos + val]
        return (f"h'{raw.hex()}'" if major == 2 else json.dumps(raw.decode(), ensure_ascii=False)), pos + val
    if major in (4, 5):
        entries, n = [], 0
        while (buf[pos] != 0xff) if val is None else n < val:
            s, pos = _item(buf, pos, depth + 1)
            if major == 5:
                v, pos = _item(buf, pos, depth + 1)
                s = f"{s}: {v}"
            entries.append(s)
            n += 1
        if val is None:
            pos += 1
        o, c = ("[", "]") if major == 4 else ("{", "}")
        o += "_" if val is None else ""
        if not entries:
            return o + c, pos
        if major == 4 and not any(e[0] in "[{" for e in entries):
            return o + (" " if val is None else "") + ", ".join(entries) + c, pos
        return o + "\n" + ",\n".join(inner + e for e in entries) + "\n" + pad + c, pos
    if major == 6:
        s, pos = _item(buf, pos, depth)
        return f"{val}({s})", pos
    return {20: "false", 21: "true", 22: "null", 23: "undefined"}.get(val, f"simple({val})"), pos


# ---------------------------------------------------------------- the vectors

def build(keys: dict, img: dict) -> list:
    es, ed, other = keys["es256"], keys["ed25519"], keys["other-es256"]
    fw_img, multi_img = ["images/firmware.bin"], ["images/boot.bin", "images/app.bin"]
    vectors = []

    def add(name, fmt, data, expect, purpose, field=None, trust=es, images=None, payload=None):
        vectors.append(dict(name=name, format=fmt, data=data, trust=trust, expect=expect,
                            field=field, images=(images or fw_img) if expect == "ok" else [],
                            purpose=purpose, payload=payload))

    single = enc(cbor_single(img))
    valid = cose_pycose(single, es)

    # -- COSE: accepted
    add("cose-es256-valid", "cbor", valid, "ok", "ES256 (-7) COSE_Sign1 over a single-image manifest", payload=single)
    add("cose-eddsa-valid", "cbor", cose_pycose(single, ed), "ok", "EdDSA (-8) COSE_Sign1, Ed25519 key", trust=ed, payload=single)
    add("cose-esp256-valid", "cbor", cose_manual(single, es, -9), "ok", "fully specified ESP256 (-9) is accepted like ES256", payload=single)
    add("cose-ed25519-valid", "cbor", cose_manual(single, ed, -19), "ok", "fully specified Ed25519 (-19) is accepted like EdDSA", trust=ed, payload=single)
    multi = enc(cbor_multi(img))
    add("cose-es256-multi-component", "cbor", cose_pycose(multi, es), "ok",
        "two components (boot: sha256; app: sha256+sha384), no keys 6/7/9", images=multi_img, payload=multi)
    p = enc(cbor_single(img, {99: "x"}))
    add("cose-unknown-noncritical-key", "cbor", cose_pycose(p, es), "ok", "unknown key 99 not listed as critical is ignored", payload=p)

    # -- COSE: signature failures (envelope well formed)
    t = bytearray(valid)  # flip a bit of the SHA-256 digest: payload stays a well-formed manifest
    t[valid.index(hashlib.sha256(img["firmware.bin"]).digest())] ^= 0x01
    add("cose-tampered-payload", "cbor", bytes(t), "bad-signature", "one payload byte (inside the sha256 digest) flipped after signing",
        payload=cbor2.loads(bytes(t)).value[2])
    add("cose-wrong-key", "cbor", cose_pycose(single, other), "bad-signature", "signed by an unrelated ES256 key (its own kid); trust is es256", payload=single)
    add("cose-wrong-alg", "cbor", cose_manual(single, ed, -7), "bad-signature", "protected alg says ES256 (-7) but the signature is Ed25519; trust is ed25519",
        trust=ed, payload=single)
    add("cose-unsupported-alg", "cbor", cose_manual(single, es, -35), "bad-signature",
        "alg -35 (ES384) is not supported; signature is a genuine ES256 one, so only the alg check rejects it",
        field="alg", payload=single)

    # -- COSE: malformed envelopes
    add("cose-untagged", "cbor", cose_pycose(single, es, tag=False), "bad-manifest", "valid COSE_Sign1 array without tag 18", field="COSE_Sign1", payload=single)
    add("cose-truncated", "cbor", valid[:len(valid) * 6 // 10], "bad-manifest", "valid message cut to 60% of its length", field="COSE_Sign1", payload=single)
    add("cose-trailing-garbage", "cbor", valid + b"\x00garbage", "bad-manifest", "valid message followed by 8 extra bytes", field="COSE_Sign1", payload=single)
    p = enc(cbor_single(img, {99: "x" * 17000}))
    add("cose-oversized", "cbor", cose_pycose(p, es), "bad-manifest", f"properly signed but the file exceeds {MAX_MANIFEST} bytes (17000-char unknown key 99)",
        field="manifest", payload=p)

    # -- COSE: validly signed (ES256) payloads that break the manifest rules
    m = cbor_single(img)
    items = sorted(m.items())
    fw, mm = img["firmware.bin"], cbor_multi(img)
    bad_payloads = [
        ("wrong-type", enc({**m, 5: 123}), "firmwareVersion", "firmwareVersion (5) is an integer"),
        ("missing-model", enc({k: v for k, v in m.items() if k != 4}), "model", "model (4) absent"),
        ("duplicate-key", map_bytes(items[:4] + [(4, "other")] + items[4:]), "model", 'model (4) twice ("c7960" then "other")'),
        ("indefinite-map", map_bytes(items, indefinite=True), "manifest", "top-level map uses indefinite length (0xbf...0xff), not deterministic"),
        ("timestamp-untagged", enc({**m, 2: TIMESTAMP}), "timestamp", "timestamp (2) is a bare integer without tag 1"),
        ("bad-hash-length", enc({**m, 7: {1: [{1: -16, 2: hashlib.sha256(fw).digest()[:31]}, m[7][1][1]]}}),
         "firmwareCryptoInfo.commitHash[0].hash", "sha256 digest is 31 bytes"),
        ("unknown-digest-alg", enc({**m, 7: {1: [{1: -17, 2: hashlib.sha256(fw).digest()}, m[7][1][1]]}}),
         "firmwareCryptoInfo.commitHash[0].digestAlgo", "digestAlgo -17 (SHA-512/256) is not supported"),
        ("bad-version", enc({**m, 5: "1.2"}), "firmwareVersion", 'firmwareVersion "1.2" is not major.minor.revision'),
        ("unknown-critical", enc({**m, 11: [99], 99: "x"}), "critical", "critical (11) lists unknown key 99"),
        ("trailing-bytes", single + b"\x01", "manifest", "payload is the valid map followed by one extra byte"),
        ("not-map", enc([1, 2]), "manifest", "payload is the array [1, 2]"),
        ("component-missing-size", enc({**mm, 10: [mm[10][0], {k: v for k, v in mm[10][1].items() if k != 3}]}),
         "components[1].size", "second component has no size (3)"),
        ("no-image", enc({k: v for k, v in m.items() if k != 9}), "firmwareSize", "keys 6 and 7 present but neither firmwareSize (9) nor components (10)"),
    ]
    for suffix, p, field, why in bad_payloads:
        add(f"cose-payload-{suffix}", "cbor", cose_pycose(p, es), "bad-manifest", f"validly signed ES256; {why}", field=field, payload=p)

    # -- JWS
    jsingle = jtext(json_single(img))
    jvalid = jtext(jws(jsingle, es, "ES256"))
    add("jws-es256-valid", "json", jvalid, "ok", "ES256 flattened JWS over a single-image manifest")
    add("jws-eddsa-valid", "json", jtext(jws(jsingle, ed, "EdDSA")), "ok", "EdDSA flattened JWS, Ed25519 key", trust=ed)
    add("jws-esp256-valid", "json", jtext(jws(jsingle, es, "ESP256")), "ok", 'fully specified "ESP256" is accepted like ES256')
    add("jws-ed25519-valid", "json", jtext(jws(jsingle, ed, "Ed25519")), "ok", 'fully specified "Ed25519" is accepted like EdDSA', trust=ed)
    add("jws-es256-multi-component", "json", jtext(jws(jtext(json_multi(img)), es, "ES256")), "ok",
        "two components (boot: sha256; app: sha256+sha384)", images=multi_img)
    add("jws-tampered-payload", "json", jtext(tamper_jws_payload(json.loads(jvalid))), "bad-signature",
        "one base64url character of the payload changed after signing (still a plausible manifest)")
    add("jws-wrong-key", "json", jtext(jws(jsingle, other, "ES256")), "bad-signature", "signed by an unrelated ES256 key (its own kid); trust is es256")
    add("jws-wrong-alg", "json", jtext(jws(jsingle, ed, "ES256")), "bad-signature", 'header alg "ES256" but the signature is Ed25519; trust is ed25519', trust=ed)
    add("jws-unsupported-alg", "json", jtext(jws(jsingle, es, "RS256")), "bad-signature",
        'alg "RS256" is not supported; signature is a genuine ES256 one, so only the alg check rejects it', field="alg")
    add("jws-truncated", "json", jvalid[:len(jvalid) * 6 // 10], "bad-manifest", "valid JWS cut to 60% of its length", field="JWS")
    add("jws-trailing-garbage", "json", jvalid + b"garbage", "bad-manifest", 'valid JWS followed by "garbage"', field="JWS")
    nosig = json.loads(jvalid)
    del nosig["signature"]
    add("jws-missing-signature", "json", jtext(nosig), "bad-manifest", 'no "signature" member', field="JWS.signature")
    jm = json_single(img)
    dup = jtext(jm).replace(b'"model":"c7960",', b'"model":"c7960","model":"other",')
    assert dup.count(b'"model"') == 2
    bad_hash = json.loads(jtext(jm))
    bad_hash["firmwareCryptoInfo"]["commitHash"][0]["hash"] = "zz" + jm["firmwareCryptoInfo"]["commitHash"][0]["hash"][2:]
    jbad = [
        ("wrong-type", jtext(dict(jm, firmwareVersion=123)), "firmwareVersion", "firmwareVersion is a number"),
        ("missing-model", jtext({k: v for k, v in jm.items() if k != "model"}), "model", '"model" absent'),
        ("duplicate-key", dup, "model", '"model" twice ("c7960" then "other")'),
        ("bad-timestamp", jtext(dict(jm, timestamp="yesterday")), "timestamp", 'timestamp "yesterday" is not RFC 3339'),
        ("bad-hash-hex", jtext(bad_hash), "firmwareCryptoInfo.commitHash[0].hash", 'sha256 hash starts with "zz" (not hex)'),
    ]
    for suffix, p, field, why in jbad:
        add(f"jws-payload-{suffix}", "json", jtext(jws(p, es, "ES256")), "bad-manifest", f"validly signed ES256; {why}", field=field)
    add("jws-oversized", "json", jtext(jws(jtext(dict(jm, padding="x" * 17000)), es, "ES256")), "bad-manifest",
        f'properly signed but the file exceeds {MAX_MANIFEST} bytes (17000-char unknown "padding")', field="manifest")
    return vectors


def write(vectors: list):
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():  # drop vectors that no longer exist
        old.unlink()
    index = []
    for v in vectors:
        fname = f"{v['name']}.{v['format']}"
        (OUT / fname).write_bytes(v["data"])
        if v["format"] == "cbor":
            (OUT / f"{v['name']}.diag").write_text(
                f"# {v['name']}: {v['purpose']}\n"
                f"# expect {v['expect']}{' (' + v['field'] + ')' if v['field'] else ''}; payload of the COSE_Sign1:\n"
                + diag(v["payload"]) + "\n")
        index.append({"name": v["name"], "file": f"manifests/{fname}", "format": v["format"],
                      "trust": v["trust"].trust, "expect": v["expect"], "field": v["field"],
                      "images": v["images"], "purpose": v["purpose"]})
        print(f"{v['name']:40} {v['expect']:14} {v['field'] or '-':45} {len(v['data']):6} bytes")
    (OUT / "index.json").write_text(json.dumps(index, indent=2) + "\n")


# ---------------------------------------------------------------- independent check

def load_cbor_strict(data: bytes):
    """cbor2.loads ignores trailing bytes; a verifier must not."""
    fp = io.BytesIO(data)
    obj = cbor2.CBORDecoder(fp).decode()
    if fp.tell() != len(data):
        raise ValueError("trailing bytes")
    return obj


def verify_raw(public, family: str, data: bytes, sig: bytes) -> bool:
    try:
        if family == "ed":
            if not isinstance(public, ed25519.Ed25519PublicKey):
                return False
            public.verify(sig, data)
        else:
            if not isinstance(public, ec.EllipticCurvePublicKey) or len(sig) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def verify_cose(data: bytes, pem: bytes):
    """Returns the payload if the COSE_Sign1 verifies, else None."""
    obj = load_cbor_strict(data)
    if not (isinstance(obj, cbor2.CBORTag) and obj.tag == 18 and len(obj.value) == 4):
        raise ValueError("not a tagged COSE_Sign1")
    protected, _unprot, payload, sig = obj.value
    alg = cbor2.loads(protected)[1]
    if alg not in COSE_ALGS:
        return None
    public = serialization.load_pem_public_key(pem)
    ok = verify_raw(public, COSE_ALGS[alg], cbor2.dumps(["Signature1", protected, b"", payload]), sig)
    if alg in (-7, -8):  # second opinion from pycose for the algorithms it knows
        msg = Sign1Message.decode(data)
        msg.key = CoseKey.from_pem_public_key(pem.decode())
        try:
            assert msg.verify_signature() == ok, "pycose disagrees"
        except Exception as e:  # pycose raises on key-type / alg mismatch
            assert not ok, f"pycose rejected a signature cryptography accepted: {e}"
    return payload if ok else None


def verify_jws(data: bytes, pem: bytes):
    obj = json.loads(data)
    header = json.loads(b64url_decode(obj["protected"]))
    if header["alg"] not in JWS_ALGS:
        return None
    public = serialization.load_pem_public_key(pem)
    ok = verify_raw(public, JWS_ALGS[header["alg"]], f"{obj['protected']}.{obj['payload']}".encode("ascii"),
                    b64url_decode(obj["signature"]))
    return b64url_decode(obj["payload"]) if ok else None


def header_kid(data: bytes, fmt: str) -> bytes:
    if fmt == "cbor":
        return cbor2.loads(data).value[1][4]
    return b64url_decode(json.loads(b64url_decode(json.loads(data)["protected"]))["kid"])


def spki_kid(pem: bytes) -> bytes:
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()[:8]


def image_claims(payload: bytes, fmt: str) -> list:
    """(size, [(hashfn, digest)]) per image, in install order."""
    if fmt == "cbor":
        m = cbor2.loads(payload)
        if 10 in m:
            return [(c[3], [(DIGESTS[h[1]], h[2]) for h in c[4]]) for c in m[10]]
        return [(m[9], [(DIGESTS[h[1]], h[2]) for h in m[7][1]])]
    m = json.loads(payload)
    if "components" in m:
        return [(c["size"], [(JSON_DIGESTS[h["digestAlgo"]], bytes.fromhex(h["hash"])) for h in c["commitHash"]])
                for c in m["components"]]
    return [(m["firmwareSize"], [(JSON_DIGESTS[h["digestAlgo"]], bytes.fromhex(h["hash"]))
                                 for h in m["firmwareCryptoInfo"]["commitHash"]])]


def check() -> int:
    """Re-read everything from disk and confirm each vector fails (or not)
    for the reason index.json claims."""
    failures = 0
    for v in json.loads((OUT / "index.json").read_text()):
        data, pem = (HERE / v["file"]).read_bytes(), (HERE / v["trust"]).read_bytes()
        verify = verify_cose if v["format"] == "cbor" else verify_jws
        try:
            if v["field"] in ("COSE_Sign1", "JWS", "JWS.signature"):
                try:
                    verify(data, pem)
                    raise AssertionError("envelope unexpectedly parsed")
                except (ValueError, KeyError, EOFError, cbor2.CBORDecodeError):
                    pass
            else:
                payload = verify(data, pem)
                if v["expect"] == "bad-signature":
                    assert payload is None, "signature unexpectedly verifies"
                else:  # ok, or a payload defect behind a good signature
                    assert payload is not None, "signature does not verify"
                if v["expect"] == "ok":
                    assert header_kid(data, v["format"]) == spki_kid(pem), "kid"
                    claims = image_claims(payload, v["format"])
                    assert len(claims) == len(v["images"]), "image count"
                    for (size, digests), path in zip(claims, v["images"]):
                        blob = (HERE / path).read_bytes()
                        assert size == len(blob), f"size of {path}"
                        assert all(fn(blob).digest() == d for fn, d in digests), f"digest of {path}"
                # only the *-oversized vectors may trip the size limit
                assert (len(data) > MAX_MANIFEST) == v["name"].endswith("-oversized"), "size limit"
            status = "ok"
        except Exception as e:  # report all problems, not just the first
            status, failures = f"FAIL: {e!r}", failures + 1
        print(f"check {v['name']:40} {status}")
    print(f"{failures} check failure(s)")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only verify the vectors on disk")
    args = ap.parse_args()
    if not args.check:
        keys, img = load_or_create_keys(), load_or_create_images()
        write(build(keys, img))
    return 1 if check() else 0


if __name__ == "__main__":
    sys.exit(main())
