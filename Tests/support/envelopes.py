"""Reading the two signed envelopes of a manifest, independently of our
code: COSE_Sign1 (manifest.cbor, read with the strict reader and checked
against cbor2) and flattened JWS (manifest.json); base64url and kids."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import namedtuple
from pathlib import Path

import cbor2

from support import cbor

Cose = namedtuple("Cose", "data protected unprotected payload signature tbs")
Jws = namedtuple("Jws", "doc header payload_bytes payload signature signing_input")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict: unpadded base64url only."""
    assert isinstance(text, str), f"base64url member is not a string: {text!r}"
    assert re.fullmatch(r"[A-Za-z0-9_-]*", text), f"not unpadded base64url: {text[:60]!r}"
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def kid(public_key_bytes: bytes) -> bytes:
    """A key id: the first 8 bytes of SHA-256 over the key's encoding
    (SubjectPublicKeyInfo DER, or the raw HSS public key)."""
    return hashlib.sha256(public_key_bytes).digest()[:8]


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The COSE_Sign1 to-be-signed bytes (RFC 9052 §4.4), no external AAD."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


def cose_sign1(protected: bytes, unprotected: dict, payload: bytes, signature: bytes) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))


def read_cose(path: Path) -> Cose:
    """manifest.cbor -> (data, protected bytes, unprotected map, payload,
    signature, to-be-signed); the strict reader and cbor2 must agree."""
    data = Path(path).read_bytes()
    envelope = cbor.decode(data, deterministic=False)
    assert isinstance(envelope, cbor.Tag), f"{path}: not tagged"
    assert envelope.tag == 18, f"{path}: tag {envelope.tag}, expected 18 (COSE_Sign1)"
    assert isinstance(envelope.value, list) and len(envelope.value) == 4
    protected, unprotected, payload, signature = envelope.value
    assert isinstance(protected, bytes) and isinstance(unprotected, dict)
    assert isinstance(payload, bytes) and isinstance(signature, bytes)
    via_cbor2 = cbor2.loads(data)
    assert isinstance(via_cbor2, cbor2.CBORTag) and via_cbor2.tag == 18
    assert via_cbor2.value == [protected, unprotected, payload, signature]
    return Cose(data, protected, unprotected, payload, signature, sig_structure(protected, payload))


def read_jws(path: Path) -> Jws:
    """manifest.json (flattened JWS with exactly protected, payload and
    signature) -> (doc, header, payload bytes, payload, signature, signing input)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    assert set(doc) == {"protected", "payload", "signature"}, f"JWS members: {sorted(doc)}"
    header = json.loads(b64u_decode(doc["protected"]))
    payload_bytes = b64u_decode(doc["payload"])
    signing_input = (doc["protected"] + "." + doc["payload"]).encode("ascii")
    return Jws(doc, header, payload_bytes, json.loads(payload_bytes), b64u_decode(doc["signature"]), signing_input)
