"""Reading the two signed envelopes of a manifest, independently of our
code: COSE_Sign1 (manifest.cbor, read with the strict reader and checked
against cbor2) and flattened JWS (manifest.json); base64url and kids.
Re-signing a published manifest with changed fields (``resign_cose``,
``resign_jws``), with python ``cryptography``, for hostile-but-signed cases."""

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


# ---------------------------------------------------------------------------
# Re-signing: a published manifest with changed fields, signed again with the
# release key (ES256 or EdDSA PEM from keygen), as a careless or hostile
# signer would. The payload is edited as decoded by the strict reader (tag 1
# stays ``cbor.Tag(1, seconds)``) and written back in its key order.
# ---------------------------------------------------------------------------

def _to_cbor2(value):
    if isinstance(value, cbor.Tag):
        return cbor2.CBORTag(value.tag, _to_cbor2(value.value))
    if isinstance(value, dict):
        return {k: _to_cbor2(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cbor2(v) for v in value]
    return value


def _sign(key_path: Path, data: bytes) -> bytes:
    """ES256 (raw r||s, 64 bytes) or Ed25519 over ``data`` with a PEM private key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise ValueError(f"{key_path}: only ES256 and EdDSA keys can re-sign")


def resign_cose(source: Path, key_path: Path, edit, out: Path | None = None) -> bytes:
    """manifest.cbor at ``source`` with ``edit(payload)`` applied to its
    payload map (integer keys; edit in place or return a new map), signed
    again with ``key_path`` under the same headers. Written to ``out`` (default:
    over ``source``); returns the new envelope's bytes."""
    envelope = read_cose(source)
    payload = cbor.decode(envelope.payload, deterministic=False)
    edited = edit(payload)
    payload = payload if edited is None else edited
    payload_bytes = cbor2.dumps(_to_cbor2(payload))
    signature = _sign(key_path, sig_structure(envelope.protected, payload_bytes))
    data = cose_sign1(envelope.protected, envelope.unprotected, payload_bytes, signature)
    Path(out or source).write_bytes(data)
    return data


def resign_jws(source: Path, key_path: Path, edit=None, out: Path | None = None,
               protected: str | None = None) -> bytes:
    """manifest.json at ``source`` with ``edit(payload)`` applied to its
    payload object, signed again with ``key_path``. ``protected`` replaces the
    protected header's JSON text as given (e.g. with a member twice). Written
    to ``out`` (default: over ``source``); returns the new document's bytes."""
    jws = read_jws(source)
    payload = jws.payload
    if edit is not None:
        edited = edit(payload)
        payload = payload if edited is None else edited
    header_text = protected if protected is not None else json.dumps(jws.header, separators=(",", ":"))
    protected_b64 = b64u(header_text.encode("utf-8"))
    payload_b64 = b64u(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    signature = _sign(key_path, f"{protected_b64}.{payload_b64}".encode("ascii"))
    data = json.dumps({"protected": protected_b64, "payload": payload_b64, "signature": b64u(signature)}).encode()
    Path(out or source).write_bytes(data)
    return data
