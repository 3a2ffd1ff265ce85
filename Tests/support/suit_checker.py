#!/usr/bin/env python3
"""Independent SUIT envelope checker (draft-ietf-suit-manifest-33 labels).

Written from the IETF draft text only (suit-wg/manifest-spec, see
Vectors/suit/SOURCES.md); it shares no code with the Swift implementation and
uses nothing but the standard library and ``cryptography``.  ``cbor2`` is not
needed here: the checker has its own small, strict CBOR reader, because it must
see the *encoded* bytes of every bstr (digests are taken over the bstr-wrapped
encoding, header included) and must reject what cbor2 would silently accept
(trailing bytes, indefinite lengths, non-deterministic encodings, duplicate
keys).

    check(envelope_bytes, public_key_pem, images=None, *, device=None,
          profile="spec") -> (result, detail)

result is one of

    "ok"               authentic, well formed, every check that could be made passed
    "bad-signature"    no COSE_Sign1 block verifies with the key (or alg unsupported)
    "bad-manifest"     malformed envelope / manifest / command sequence, or a
                       command, parameter or member that is unknown or not in the
                       profile; detail names "member" and/or "command"
    "digest-mismatch"  SUIT_Digest of the manifest or of a severable member does
                       not match, or condition-image-match fails against a
                       supplied image
    "rollback"         (only with device["current_sequence"]) sequence number lower
    "wrong-device"    (only with device vendor_id/class_id/device_id) an identifier
                       condition fails

images: {component_index: bytes} and/or {uri: bytes} (also matched by the URI's
last path segment).  Without images, image-match cannot be evaluated; the
result can still be "ok" but detail["installable"] is False.

device: {"vendor_id": bytes16, "class_id": bytes16, "device_id": bytes16,
         "current_sequence": int, "slot": int (default 0)}

profile: "spec"   every command/parameter registered in draft-33 is accepted;
         "device" only what the coap-fw updater implements (DEVICE_COMMANDS,
                  DEVICE_PARAMETERS); anything else is "bad-manifest".

CLI:
    python3 Tests/support/suit_checker.py ENVELOPE --key PEM [--image [IDX=|URI=]FILE]...
        [--vendor-id HEX] [--class-id HEX] [--current-sequence N] [--profile spec|device]
prints one JSON object; exit status 0 for "ok", 1 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import sys
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

# ---------------------------------------------------------------------------
# Labels (draft-ietf-suit-manifest-33, IANA Considerations section)
# ---------------------------------------------------------------------------

ENVELOPE_KEYS = {2: "authentication-wrapper", 3: "manifest", 16: "payload-fetch",
                 20: "install", 23: "text"}
ENVELOPE_RESERVED = {0: "unset", 1: "delegation (reserved)"}
MANIFEST_KEYS = {1: "manifest-version", 2: "manifest-sequence-number", 3: "common",
                 4: "reference-uri", 7: "validate", 8: "load", 9: "invoke",
                 16: "payload-fetch", 20: "install", 23: "text"}
SEVERABLE = (16, 20, 23)                 # may be a SUIT_Digest in the manifest
COMMON_KEYS = {2: "components", 4: "shared-sequence"}

CONDITIONS = {1: "condition-vendor-identifier", 2: "condition-class-identifier",
              3: "condition-image-match", 5: "condition-component-slot",
              6: "condition-check-content", 14: "condition-abort",
              24: "condition-device-identifier"}
DIRECTIVES = {12: "directive-set-component-index", 15: "directive-try-each",
              18: "directive-write", 20: "directive-override-parameters",
              21: "directive-fetch", 22: "directive-copy", 23: "directive-invoke",
              31: "directive-swap", 32: "directive-run-sequence"}
COMMANDS = {**CONDITIONS, **DIRECTIVES}
REPORTING = set(CONDITIONS) | {18, 21, 22, 23, 31}   # argument = SUIT_Reporting_Policy

PARAMETERS = {1: "vendor-id", 2: "class-id", 3: "image-digest", 5: "component-slot",
              12: "strict-order", 13: "soft-failure", 14: "image-size", 18: "content",
              21: "uri", 22: "source-component", 23: "invoke-args", 24: "device-id"}

TEXT_KEYS = {1: "manifest-description", 2: "update-description",
             3: "manifest-json-source", 4: "manifest-yaml-source"}
TEXT_COMPONENT_KEYS = {1: "vendor-name", 2: "model-name", 3: "vendor-domain",
                       4: "model-info", 5: "component-description", 6: "component-version"}

DIGEST_ALGS = {-16: "sha256", -43: "sha384", -44: "sha512"}     # COSE algorithm ids
SIG_ALGS = {-7: "ES256", -9: "ESP256", -8: "EdDSA", -19: "Ed25519"}

# What the coap-fw device updater implements (profile="device").
DEVICE_COMMANDS = {1, 2, 3, 12, 20, 21}
DEVICE_PARAMETERS = {1, 2, 3, 14, 21}
DEVICE_SECTIONS = (16, 20, 7)            # the Update Procedure

CUSTOM_LIMIT = -256                      # labels <= -256 are private use / custom

SECTION_NAMES = {"shared": "shared-sequence", 16: "payload-fetch", 20: "install",
                 7: "validate", 8: "load", 9: "invoke"}


class Fail(Exception):
    def __init__(self, result: str, message: str, **where: Any) -> None:
        super().__init__(message)
        self.result = result
        self.message = message
        self.where = where


def bad(message: str, **where: Any) -> Fail:
    return Fail("bad-manifest", message, **where)


# ---------------------------------------------------------------------------
# Strict CBOR reader (RFC 8949, deterministic encoding, definite lengths only)
# ---------------------------------------------------------------------------

class CborError(Exception):
    pass


class Bstr(bytes):
    """bytes that remember their full encoding (header + content) in .raw"""
    raw: bytes


class Tag:
    __slots__ = ("tag", "value")

    def __init__(self, tag: int, value: Any) -> None:
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"Tag({self.tag}, {self.value!r})"


class _Undefined:
    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()
MAX_DEPTH = 64


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        raise CborError("map used as a map key")
    if isinstance(v, Tag):
        return ("tag", v.tag, _hashable(v.value))
    return v


def _read(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise CborError("nesting too deep")
    if pos >= len(data):
        raise CborError("truncated")
    start = pos
    ib = data[pos]
    pos += 1
    major, info = ib >> 5, ib & 0x1F
    if info < 24:
        arg = info
    elif info in (24, 25, 26, 27):
        n = 1 << (info - 24)
        if pos + n > len(data):
            raise CborError("truncated")
        arg = int.from_bytes(data[pos:pos + n], "big")
        pos += n
        if major != 7:
            minimum = {1: 24, 2: 0x100, 4: 0x10000, 8: 0x100000000}[n]
            if arg < minimum:
                raise CborError("non-minimal length/integer encoding")
    elif info == 31:
        raise CborError("indefinite-length item")
    else:
        raise CborError("reserved additional information value")

    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        if pos + arg > len(data):
            raise CborError("truncated")
        content = data[pos:pos + arg]
        pos += arg
        if major == 3:
            try:
                return content.decode("utf-8"), pos
            except UnicodeDecodeError as e:
                raise CborError("invalid UTF-8 in text string") from e
        b = Bstr(content)
        b.raw = data[start:pos]
        return b, pos
    if major == 4:
        if arg > len(data) - pos:
            raise CborError("truncated")
        out = []
        for _ in range(arg):
            v, pos = _read(data, pos, depth + 1)
            out.append(v)
        return out, pos
    if major == 5:
        if arg > len(data) - pos:
            raise CborError("truncated")
        m: dict = {}
        prev_key_enc = None
        for _ in range(arg):
            kstart = pos
            k, pos = _read(data, pos, depth + 1)
            kenc = data[kstart:pos]
            if prev_key_enc is not None:
                if kenc == prev_key_enc:
                    raise CborError("duplicate map key")
                if kenc < prev_key_enc:
                    raise CborError("map keys not in deterministic (bytewise) order")
            prev_key_enc = kenc
            v, pos = _read(data, pos, depth + 1)
            hk = _hashable(k)
            if hk in m:
                raise CborError("duplicate map key")
            m[hk] = v
        return m, pos
    if major == 6:
        v, pos = _read(data, pos, depth + 1)
        return Tag(arg, v), pos
    # major 7
    if info < 24:
        if arg == 20:
            return False, pos
        if arg == 21:
            return True, pos
        if arg == 22:
            return None, pos
        if arg == 23:
            return UNDEFINED, pos
        raise CborError(f"unassigned simple value {arg}")
    if info == 24:
        raise CborError(f"unassigned simple value {arg}")
    if info == 25:
        return struct.unpack(">e", data[pos - 2:pos])[0], pos
    if info == 26:
        return struct.unpack(">f", data[pos - 4:pos])[0], pos
    return struct.unpack(">d", data[pos - 8:pos])[0], pos


def cbor_loads(data: bytes) -> Any:
    value, pos = _read(bytes(data), 0, 0)
    if pos != len(data):
        raise CborError(f"{len(data) - pos} trailing byte(s) after the item")
    return value


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError("too large")


def _enc_bstr(b: bytes) -> bytes:
    return _head(2, len(b)) + b


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """["Signature1", body_protected, external_aad = h'', payload] (RFC 9052 §4.4)"""
    ctx = b"Signature1"
    return (_head(4, 4) + _head(3, len(ctx)) + ctx + _enc_bstr(protected)
            + _enc_bstr(b"") + _enc_bstr(payload))


def decode_member(b: Any, what: str, **where: Any) -> Any:
    if not isinstance(b, Bstr):
        raise bad(f"{what} must be a bstr-wrapped CBOR item", **where)
    try:
        return cbor_loads(b)
    except CborError as e:
        raise bad(f"{what}: {e}", **where) from None


# ---------------------------------------------------------------------------
# Digests and signatures
# ---------------------------------------------------------------------------

def parse_digest(v: Any, what: str, **where: Any) -> tuple[int, bytes]:
    if (not isinstance(v, list) or len(v) < 2 or not isinstance(v[0], int)
            or isinstance(v[0], bool) or not isinstance(v[1], bytes)):
        raise bad(f"{what}: SUIT_Digest must be [algorithm-id, digest-bytes]", **where)
    alg, dig = v[0], bytes(v[1])
    if alg not in DIGEST_ALGS:
        raise bad(f"{what}: unsupported digest algorithm {alg}", **where)
    if len(dig) != hashlib.new(DIGEST_ALGS[alg]).digest_size:
        raise bad(f"{what}: digest length {len(dig)} does not fit algorithm {alg}", **where)
    return alg, dig


def digest_of(alg: int, data: bytes) -> bytes:
    return hashlib.new(DIGEST_ALGS[alg], data).digest()


def load_public_key(pem: Any) -> Any:
    if isinstance(pem, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        return pem
    if isinstance(pem, str):
        pem = pem.encode()
    if b"PRIVATE KEY" in pem:
        return serialization.load_pem_private_key(pem, None).public_key()
    return serialization.load_pem_public_key(pem)


def verify_sign1(block: Any, payload: bytes, key: Any) -> tuple[bool, str]:
    """block: decoded SUIT_Authentication_Block. Returns (verified, reason)."""
    if not isinstance(block, Tag):
        return False, "authentication block is not a tagged COSE structure"
    if block.tag != 18:
        return False, f"unsupported authentication block (CBOR tag {block.tag}; only COSE_Sign1_Tagged 18)"
    s = block.value
    if not isinstance(s, list) or len(s) != 4:
        return False, "COSE_Sign1 must be an array of 4"
    prot, unprot, body, sig = s
    if not isinstance(prot, bytes) or not isinstance(unprot, dict) or not isinstance(sig, bytes):
        return False, "COSE_Sign1 member types"
    if body is not None:
        return False, "COSE_Sign1 payload must be nil (detached)"
    try:
        ph = cbor_loads(prot) if len(prot) else {}
    except CborError as e:
        return False, f"protected header: {e}"
    if not isinstance(ph, dict):
        return False, "protected header is not a map"
    if 2 in ph:
        return False, "crit header parameter not supported"
    alg = ph.get(1)
    if alg is None:
        return False, "no alg in the protected header"
    if alg not in SIG_ALGS:
        return False, f"unsupported signature algorithm {alg!r}"
    tbs = sig_structure(bytes(prot), payload)
    try:
        if alg in (-7, -9):
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                return False, f"alg {alg} needs a P-256 key"
            if len(sig) != 64:
                return False, "ECDSA P-256 signature must be 64 bytes (r||s)"
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                             int.from_bytes(sig[32:], "big"))
            key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        else:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False, f"alg {alg} needs an Ed25519 key"
            key.verify(bytes(sig), tbs)
    except InvalidSignature:
        return False, f"{SIG_ALGS[alg]} signature does not verify"
    return True, SIG_ALGS[alg]


# ---------------------------------------------------------------------------
# Command sequences: structural parse
# ---------------------------------------------------------------------------

def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _j(v: Any) -> Any:
    """JSON-able rendering of a decoded CBOR value."""
    if isinstance(v, bytes):
        return bytes(v).hex()
    if isinstance(v, list):
        return [_j(x) for x in v]
    if isinstance(v, tuple):
        return [_j(x) for x in v]
    if isinstance(v, dict):
        return {str(_j(k)) if not isinstance(k, str) else k: _j(x) for k, x in v.items()}
    if isinstance(v, Tag):
        return {"tag": v.tag, "value": _j(v.value)}
    if v is UNDEFINED:
        return "undefined"
    return v


class Ctx:
    def __init__(self, ncomponents: int, profile: str) -> None:
        self.n = ncomponents
        self.profile = profile
        self.flat: list[dict] = []
        self.uris: list[str] = []


def check_params(arg: Any, path: str, ctx: Ctx, top_level: bool) -> dict:
    if not isinstance(arg, dict) or not arg:
        raise bad("override-parameters argument must be a non-empty map", command="directive-override-parameters", section=path)
    out = {}
    for k, v in arg.items():
        if not isinstance(k, int) or isinstance(k, bool):
            raise bad(f"parameter key {k!r} is not an integer", command="directive-override-parameters", section=path)
        if k <= CUSTOM_LIMIT:
            name = f"custom({k})"
            if not isinstance(v, (int, bytes, str)) or isinstance(v, Tag):
                raise bad(f"custom parameter {k} has a bad type", command="directive-override-parameters", section=path)
        elif k in PARAMETERS:
            name = PARAMETERS[k]
        else:
            raise bad(f"unknown parameter {k}", command="directive-override-parameters", parameter=k, section=path)
        if ctx.profile == "device" and k not in DEVICE_PARAMETERS:
            raise bad(f"parameter {name} ({k}) not supported by the device", command="directive-override-parameters", parameter=k, section=path)
        w = dict(command="directive-override-parameters", parameter=name, section=path)
        if k in (1,):
            ok = (isinstance(v, bytes) and len(v) == 16) or (isinstance(v, Tag) and v.tag == 112 and isinstance(v.value, bytes))
            if not ok:
                raise bad("vendor-id must be a 16-byte UUID or a CBOR PEN (tag 112)", **w)
        elif k in (2, 24):
            if not (isinstance(v, bytes) and len(v) == 16):
                raise bad(f"{name} must be a 16-byte UUID bstr", **w)
        elif k == 3:
            d = decode_member(v, "image-digest", **w)
            parse_digest(d, "image-digest", **w)
        elif k in (5, 14, 22):
            if not _is_uint(v):
                raise bad(f"{name} must be an unsigned integer", **w)
            if k == 22 and v >= ctx.n:
                raise bad("source-component out of range", **w)
        elif k in (12, 13):
            if not isinstance(v, bool):
                raise bad(f"{name} must be a boolean", **w)
            if k == 13 and top_level:
                raise bad("soft-failure may only be set inside try-each or run-sequence", **w)
        elif k in (18, 23):
            if not isinstance(v, bytes):
                raise bad(f"{name} must be a bstr", **w)
        elif k == 21:
            if not isinstance(v, str):
                raise bad("uri must be a text string", **w)
            ctx.uris.append(v)
        out[k] = v
    return out


def parse_sequence(raw: Any, path: str, ctx: Ctx, top_level: bool) -> list:
    """Returns [(cmd, arg)] with nested sequences parsed; appends to ctx.flat."""
    seq = decode_member(raw, f"{path} command sequence", member=path.split("/")[0], section=path)
    if not isinstance(seq, list) or not seq:
        raise bad(f"{path}: a command sequence must be a non-empty array", section=path)
    if len(seq) % 2:
        raise bad(f"{path}: command sequence has an odd number of items (command without argument)", section=path)
    out = []
    for i in range(0, len(seq), 2):
        cmd, arg = seq[i], seq[i + 1]
        where = f"{path}[{i // 2}]"
        if not isinstance(cmd, int) or isinstance(cmd, bool):
            raise bad(f"{where}: command id {cmd!r} is not an integer", section=path)
        if cmd <= CUSTOM_LIMIT:
            name = f"custom({cmd})"
        elif cmd in COMMANDS:
            name = COMMANDS[cmd]
        else:
            raise bad(f"{where}: unknown command {cmd}", command=f"unknown({cmd})", section=path)
        if ctx.profile == "device" and cmd not in DEVICE_COMMANDS:
            raise bad(f"{where}: {name} ({cmd}) is not supported by the device", command=name, section=path)
        if top_level and i == 0 and ctx.n > 1 and cmd != 12:
            raise bad(f"{path}: with more than one component a sequence must begin with set-component-index",
                      command=name, section=path)
        entry = {"section": path, "id": cmd, "name": name}
        if cmd in REPORTING:
            if not _is_uint(arg) or arg > 15:
                raise bad(f"{where}: {name} needs a reporting policy (uint 0..15), got {arg!r}", command=name, section=path)
            entry["arg"] = arg
            ctx.flat.append(entry)
            out.append((cmd, arg))
        elif cmd == 12:
            if arg is True:
                pass
            elif _is_uint(arg):
                if arg >= ctx.n:
                    raise bad(f"{where}: component index {arg} out of range", command=name, section=path)
            elif isinstance(arg, list) and arg and all(_is_uint(x) and x < ctx.n for x in arg):
                pass
            else:
                raise bad(f"{where}: bad component index {arg!r}", command=name, section=path)
            entry["arg"] = _j(arg)
            ctx.flat.append(entry)
            out.append((cmd, arg))
        elif cmd == 20:
            params = check_params(arg, path, ctx, top_level)
            entry["arg"] = {PARAMETERS.get(k, f"custom({k})"): _param_json(k, v) for k, v in params.items()}
            ctx.flat.append(entry)
            out.append((cmd, params))
        elif cmd == 15:
            if not isinstance(arg, list) or not arg:
                raise bad(f"{where}: try-each argument must be a non-empty array", command=name, section=path)
            entry["arg"] = len(arg)
            ctx.flat.append(entry)
            branches = []
            for j, b in enumerate(arg):
                if b is None and j == len(arg) - 1:
                    branches.append(None)
                    continue
                branches.append(parse_sequence(b, f"{path}/try-each[{j}]", ctx, False))
            out.append((cmd, branches))
        elif cmd == 32:
            ctx.flat.append(entry)
            out.append((cmd, parse_sequence(arg, f"{path}/run-sequence", ctx, False)))
        else:  # custom
            if not (arg is None or isinstance(arg, (int, bytes, str))) or isinstance(arg, bool):
                raise bad(f"{where}: custom command argument type", command=name, section=path)
            entry["arg"] = _j(arg)
            ctx.flat.append(entry)
            out.append((cmd, arg))
    return out


def _param_json(k: int, v: Any) -> Any:
    if k == 3:
        alg, dig = parse_digest(cbor_loads(v), "image-digest")
        return {"alg": alg, "digest": dig.hex()}
    return _j(v)


# ---------------------------------------------------------------------------
# Execution (Update Procedure), enough to evaluate conditions
# ---------------------------------------------------------------------------

class Machine:
    def __init__(self, components: list, images: dict, device: dict, integrated: dict) -> None:
        self.components = components
        self.n = len(components)
        self.params: list[dict] = [{} for _ in components]
        self.device = device
        self.images = images
        self.integrated = integrated
        self.content: list[bytes | None] = [images.get(i) for i in range(self.n)]
        self.unchecked: list[str] = []
        self.fetched: list[str] = []
        self.identity_checked: dict[int, set] = {}  # component -> {"vendor_id", "class_id"} that held
        self.invoked: list[int] = []

    def lookup_uri(self, uri: str, idx: int) -> bytes | None:
        if uri in self.integrated:
            return self.integrated[uri]
        if uri in self.images:
            return self.images[uri]
        base = uri.rstrip("/").rsplit("/", 1)[-1]
        if base in self.images:
            return self.images[base]
        return self.images.get(idx)

    def run(self, seq: list, section: str, soft: bool = False) -> None:
        current: list[int] = [0]
        for cmd, arg in seq:
            if cmd == 12:
                current = list(range(self.n)) if arg is True else (list(arg) if isinstance(arg, list) else [arg])
                continue
            for idx in current:
                self.one(cmd, arg, idx, section)

    def cond_fail(self, result: str, msg: str, cmd: int, section: str) -> Fail:
        return Fail(result, msg, command=COMMANDS.get(cmd, str(cmd)), section=section)

    def one(self, cmd: int, arg: Any, idx: int, section: str) -> None:
        p = self.params[idx]
        name = COMMANDS.get(cmd, f"custom({cmd})")
        if cmd == 20:
            p.update(arg)
        elif cmd in (1, 2, 24):
            pk = {1: 1, 2: 2, 24: 24}[cmd]
            dk = {1: "vendor_id", 2: "class_id", 24: "device_id"}[cmd]
            if pk not in p:
                raise bad(f"{name} without {PARAMETERS[pk]} set", command=name, section=section)
            want = self.device.get(dk)
            if want is not None:
                have = p[pk].value if isinstance(p[pk], Tag) else p[pk]
                if bytes(have) != bytes(want):
                    raise self.cond_fail("wrong-device", f"{PARAMETERS[pk]} {bytes(have).hex()} does not match the device ({bytes(want).hex()})", cmd, section)
                self.identity_checked.setdefault(idx, set()).add(dk)
        elif cmd == 3:
            if 3 not in p:
                raise bad("condition-image-match without image-digest set", command=name, section=section)
            alg, dig = parse_digest(cbor_loads(p[3]), "image-digest")
            data = self.content[idx]
            if data is None:
                self.unchecked.append(f"{section}: image-match on component {idx} (no image)")
                return
            if 14 in p and len(data) != p[14]:
                raise self.cond_fail("digest-mismatch", f"component {idx}: image is {len(data)} bytes, image-size says {p[14]}", cmd, section)
            if digest_of(alg, data) != dig:
                raise self.cond_fail("digest-mismatch", f"component {idx}: image digest does not match", cmd, section)
        elif cmd == 5:
            if 5 not in p:
                raise bad("condition-component-slot without component-slot set", command=name, section=section)
            if p[5] != self.device.get("slot", 0):
                raise self.cond_fail("condition-failed", f"slot {p[5]} is not the current slot", cmd, section)
        elif cmd == 6:
            if 18 not in p:
                raise bad("condition-check-content without content set", command=name, section=section)
            if self.content[idx] is None:
                self.unchecked.append(f"{section}: check-content on component {idx}")
            elif self.content[idx] != p[18]:
                raise self.cond_fail("condition-failed", "content does not match", cmd, section)
        elif cmd == 14:
            raise self.cond_fail("condition-failed", "condition-abort", cmd, section)
        elif cmd == 21:
            if 21 not in p:
                raise bad("directive-fetch without uri set", command=name, section=section)
            self.fetched.append(p[21])
            self.content[idx] = self.lookup_uri(p[21], idx)
        elif cmd in (22, 31):
            if 22 not in p:
                raise bad(f"{name} without source-component set", command=name, section=section)
            src = p[22]
            if cmd == 22:
                self.content[idx] = self.content[src]
            else:
                self.content[idx], self.content[src] = self.content[src], self.content[idx]
        elif cmd == 18:
            if 18 not in p:
                raise bad("directive-write without content set", command=name, section=section)
            self.content[idx] = bytes(p[18])
        elif cmd == 23:
            self.invoked.append(idx)
        elif cmd == 15:
            last: Fail | None = None
            for branch in arg:
                if branch is None:
                    return
                saved = ([dict(x) for x in self.params], list(self.content))
                try:
                    self.run_nested(branch, idx, section + "/try-each")
                    return
                except Fail as f:
                    if f.result == "bad-manifest":
                        raise
                    self.params, self.content = saved
                    last = f
            assert last is not None
            raise last
        elif cmd == 32:
            try:
                self.run_nested(arg, idx, section + "/run-sequence")
            except Fail as f:
                if f.result == "bad-manifest":
                    raise
                if not self.params[idx].get(13, False):
                    raise
        # custom commands: nothing to simulate

    def run_nested(self, seq: list, idx: int, section: str) -> None:
        current = [idx]
        for cmd, arg in seq:
            if cmd == 12:
                current = list(range(self.n)) if arg is True else (list(arg) if isinstance(arg, list) else [arg])
                continue
            for i in current:
                self.one(cmd, arg, i, section)


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------

LTAG = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")


def parse_text(t: Any, components: list) -> dict:
    if not isinstance(t, dict) or not t:
        raise bad("text must be a map of language tags", member="text")
    out: dict = {}
    comp_keys = {tuple(c) for c in components}
    for lang, lmap in t.items():
        if not isinstance(lang, str) or not LTAG.fullmatch(lang):
            raise bad(f"text: {lang!r} is not a language tag", member="text")
        if not isinstance(lmap, dict):
            raise bad("text: language entry must be a map", member="text")
        lo: dict = {}
        for k, v in lmap.items():
            if isinstance(k, int) and not isinstance(k, bool):
                if not isinstance(v, str):
                    raise bad(f"text: value for key {k} must be text", member="text")
                lo[TEXT_KEYS.get(k, f"key({k})")] = v
            elif isinstance(k, tuple) and all(isinstance(x, bytes) for x in k):
                if k not in comp_keys:
                    raise bad("text: component identifier not in common.components", member="text")
                if not isinstance(v, dict):
                    raise bad("text: component entry must be a map", member="text")
                co = {}
                for ck, cv in v.items():
                    if not isinstance(ck, int) or not isinstance(cv, str):
                        raise bad("text: component text map must be int => text", member="text")
                    co[TEXT_COMPONENT_KEYS.get(ck, f"key({ck})")] = cv
                lo.setdefault("components", {})["/".join(bytes(x).hex() for x in k)] = co
            else:
                raise bad(f"text: bad key {k!r}", member="text")
        out[lang] = lo
    return out


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------

def check(envelope_bytes: bytes, public_key_pem: Any, images: dict | None = None, *,
          device: dict | None = None, profile: str = "spec") -> tuple[str, dict]:
    detail: dict = {"sequence": None, "vendor_id": None, "class_id": None, "components": [],
                    "image_digest": None, "image_digest_alg": None, "image_size": None,
                    "uris": [], "commands": [], "installable": False}
    try:
        _check(bytes(envelope_bytes), public_key_pem, images or {}, device or {}, profile, detail)
    except Fail as f:
        detail["message"] = f.message
        for k, v in f.where.items():
            detail[k] = v
        result = f.result
        if result == "condition-failed":       # a plain condition failure outside try-each
            result = "bad-manifest"
        return result, detail
    return "ok", detail


def _check(data: bytes, key_pem: Any, images: dict, device: dict, profile: str, detail: dict) -> None:
    if profile not in ("spec", "device"):
        raise ValueError("profile must be 'spec' or 'device'")
    # -- envelope
    try:
        env = cbor_loads(data)
    except CborError as e:
        raise bad(f"envelope: {e}", member="envelope") from None
    if isinstance(env, Tag):
        if env.tag != 107:
            raise bad(f"envelope: unexpected CBOR tag {env.tag} (SUIT_Envelope_Tagged is 107)", member="envelope")
        env = env.value
        detail["tagged"] = True
    else:
        detail["tagged"] = False
    if not isinstance(env, dict):
        raise bad("envelope is not a map", member="envelope")
    integrated = {}
    for k, v in env.items():
        if isinstance(k, str):
            if not isinstance(v, bytes):
                raise bad(f"integrated payload {k!r} must be a bstr", member=k)
            integrated[k] = bytes(v)
        elif not isinstance(k, int) or isinstance(k, bool):
            raise bad(f"envelope key {k!r} is neither int nor text", member="envelope")
        elif k not in ENVELOPE_KEYS:
            raise bad(f"unsupported envelope member {k} {ENVELOPE_RESERVED.get(k, '')}".strip(), member=str(k))
        elif not isinstance(v, Bstr):
            raise bad(f"envelope member {ENVELOPE_KEYS[k]} must be a bstr", member=ENVELOPE_KEYS[k])
    detail["integrated_payloads"] = sorted(integrated)
    if 2 not in env:
        raise bad("no authentication-wrapper", member="authentication-wrapper")
    if 3 not in env:
        raise bad("no manifest", member="manifest")

    # -- authentication wrapper and signature
    aw = decode_member(env[2], "authentication-wrapper", member="authentication-wrapper")
    if not isinstance(aw, list) or not aw or not isinstance(aw[0], Bstr):
        raise bad("authentication-wrapper must be [bstr .cbor SUIT_Digest, * bstr .cbor block]", member="authentication-wrapper")
    suit_digest = decode_member(aw[0], "authentication-wrapper digest", member="authentication-wrapper")
    alg, expected = parse_digest(suit_digest, "authentication-wrapper digest", member="authentication-wrapper")
    if len(aw) < 2:
        raise Fail("bad-signature", "no authentication block in the authentication-wrapper", member="authentication-wrapper")
    key = load_public_key(key_pem)
    reasons = []
    verified_with = None
    for i, blk in enumerate(aw[1:]):
        b = decode_member(blk, f"authentication block {i}", member="authentication-wrapper")
        ok, why = verify_sign1(b, bytes(aw[0]), key)
        if ok:
            verified_with = why
            break
        reasons.append(why)
    if verified_with is None:
        raise Fail("bad-signature", "; ".join(reasons), member="authentication-wrapper")
    detail["signature_alg"] = verified_with

    # -- manifest digest (over the bstr-wrapped manifest: header + content)
    if digest_of(alg, env[3].raw) != expected:
        raise Fail("digest-mismatch", "manifest digest does not match the authentication-wrapper", member="manifest")

    manifest = decode_member(env[3], "manifest", member="manifest")
    if not isinstance(manifest, dict):
        raise bad("manifest is not a map", member="manifest")
    for k in manifest:
        if not isinstance(k, int) or isinstance(k, bool) or k not in MANIFEST_KEYS:
            raise bad(f"unknown manifest member {k!r}", member=str(k))
    if manifest.get(1) != 1 or isinstance(manifest.get(1), bool):
        raise bad(f"unsupported manifest-version {manifest.get(1)!r}", member="manifest-version")
    seq_no = manifest.get(2)
    if not _is_uint(seq_no):
        raise bad("manifest-sequence-number missing or not a uint", member="manifest-sequence-number")
    detail["sequence"] = seq_no
    if 4 in manifest:
        if not isinstance(manifest[4], str):
            raise bad("reference-uri must be text", member="reference-uri")
        detail["reference_uri"] = manifest[4]
    if 3 not in manifest:
        raise bad("no common", member="common")
    common = decode_member(manifest[3], "common", member="common")
    if not isinstance(common, dict):
        raise bad("common is not a map", member="common")
    for k in common:
        if k not in COMMON_KEYS:
            raise bad(f"unknown common member {k!r}", member="common")
    comps = common.get(2)
    if (not isinstance(comps, list) or not comps
            or not all(isinstance(c, list) and all(isinstance(x, bytes) for x in c) for c in comps)):
        raise bad("components must be a non-empty array of component identifiers ([* bstr])", member="components")
    if len({tuple(c) for c in comps}) != len(comps):
        raise bad("duplicate component identifier", member="components")
    detail["components"] = [[bytes(x).hex() for x in c] for c in comps]

    # -- severable members: digests in the manifest, content in the envelope
    members: dict[int, Bstr] = {}
    severed: dict[int, str] = {}
    for k in SEVERABLE:
        name = MANIFEST_KEYS[k]
        in_m, in_e = manifest.get(k), env.get(k)
        if isinstance(in_m, list):
            malg, mdig = parse_digest(in_m, f"{name} digest", member=name)
            if in_e is None:
                severed[k] = "severed (absent)"
                continue
            if digest_of(malg, in_e.raw) != mdig:
                raise Fail("digest-mismatch", f"severable member {name} does not match its digest in the manifest", member=name)
            members[k] = in_e
            severed[k] = "severed (present, digest ok)"
        elif in_m is not None:
            if not isinstance(in_m, Bstr):
                raise bad(f"{name} must be a bstr or a SUIT_Digest", member=name)
            if in_e is not None:
                raise bad(f"{name} is both in the manifest and in the envelope", member=name)
            members[k] = in_m
        elif in_e is not None:
            raise bad(f"envelope member {name} has no digest in the manifest", member=name)
    detail["severable"] = {MANIFEST_KEYS[k]: v for k, v in severed.items()}

    # -- rollback
    cur = device.get("current_sequence")
    if cur is not None and seq_no < cur:
        raise Fail("rollback", f"sequence number {seq_no} is lower than the device's {cur}", member="manifest-sequence-number")

    # -- text
    if 23 in members:
        t = decode_member(members[23], "text", member="text")
        detail["text"] = parse_text(t, comps)
        for lang in detail["text"].values():
            for comp in lang.get("components", {}).values():
                if "component-version" in comp:
                    detail.setdefault("text_version", comp["component-version"])

    # -- command sequences (structure)
    ctx = Ctx(len(comps), profile)
    sequences: dict[Any, list] = {}
    sections: list[Any] = []
    if 4 in common:
        sections.append("shared")
    sections += [k for k in (16, 20, 7, 8, 9) if k in manifest]
    for s in sections:
        raw = common[4] if s == "shared" else (members.get(s) if s in SEVERABLE else manifest[s])
        if raw is None:
            continue                              # severed and absent
        if s != "shared" and not isinstance(raw, Bstr):
            raise bad(f"{SECTION_NAMES[s]} must be a bstr-wrapped command sequence", member=SECTION_NAMES[s])
        if profile == "device" and s not in ("shared",) + DEVICE_SECTIONS:
            # the updater does not run Invocation-only sequences; parse them in spec profile only
            continue
        sequences[s] = parse_sequence(raw, SECTION_NAMES[s], ctx, True)
    detail["commands"] = ctx.flat
    detail["uris"] = ctx.uris

    # -- execute the Update Procedure: shared + each of payload-fetch, install, validate
    m = Machine(comps, images, device, integrated)
    shared = sequences.get("shared", [])
    if shared:
        m.run(shared, "shared-sequence")
    p0 = m.params[0]
    if 1 in p0:
        detail["vendor_id"] = bytes(p0[1].value if isinstance(p0[1], Tag) else p0[1]).hex()
    if 2 in p0:
        detail["class_id"] = bytes(p0[2]).hex()
    if 3 in p0:
        a, d = parse_digest(cbor_loads(p0[3]), "image-digest")
        detail["image_digest"], detail["image_digest_alg"] = d.hex(), a
    if 14 in p0:
        detail["image_size"] = p0[14]
    detail["parameters"] = [{PARAMETERS.get(k, str(k)): _param_json(k, v) for k, v in pp.items()} for pp in m.params]
    ran = []
    for s in (16, 20, 7):
        if s in sequences:
            if shared:
                m.run(shared, "shared-sequence")
            m.run(sequences[s], SECTION_NAMES[s])
            ran.append(SECTION_NAMES[s])
    detail["ran"] = ran
    detail["fetched"] = m.fetched
    detail["unchecked"] = m.unchecked
    has_install = 20 in sequences or 16 in sequences
    detail["installable"] = has_install and not m.unchecked
    if profile == "device":
        # What the coap-fw updater adds to the draft: a severed sequence it must
        # run may not be left out, and (given the device's ids) RFC 9124's two
        # identity conditions must have held for every component it touches.
        for k in (16, 20):
            if severed.get(k) == "severed (absent)":
                raise bad(f"{SECTION_NAMES[k]} is severed and not delivered", member=SECTION_NAMES[k])
        needed = {dk for dk in ("vendor_id", "class_id") if device.get(dk) is not None}
        if needed:
            for idx in range(len(comps)):
                if needed - m.identity_checked.get(idx, set()):
                    raise bad(f"component {idx}: no {' and '.join(sorted(needed - m.identity_checked.get(idx, set())))} condition held",
                              member="shared-sequence")


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Independent SUIT envelope checker")
    ap.add_argument("envelope")
    ap.add_argument("--key", required=True, help="PEM public (or private) key")
    ap.add_argument("--image", action="append", default=[],
                    help="FILE (component 0), IDX=FILE or URI=FILE; repeatable")
    ap.add_argument("--vendor-id", help="device vendor id (32 hex digits or UUID)")
    ap.add_argument("--class-id", help="device class id (32 hex digits or UUID)")
    ap.add_argument("--current-sequence", type=int)
    ap.add_argument("--slot", type=int)
    ap.add_argument("--profile", choices=("spec", "device"), default="spec")
    a = ap.parse_args(argv)
    images: dict = {}
    for spec in a.image:
        k, sep, f = spec.partition("=")
        if not sep:
            k, f = "0", spec
        with open(f, "rb") as fh:
            images[int(k) if k.isdigit() else k] = fh.read()
    device: dict = {}
    for name in ("vendor_id", "class_id"):
        v = getattr(a, name)
        if v:
            device[name] = bytes.fromhex(v.replace("-", ""))
    if a.current_sequence is not None:
        device["current_sequence"] = a.current_sequence
    if a.slot is not None:
        device["slot"] = a.slot
    with open(a.envelope, "rb") as fh:
        data = fh.read()
    with open(a.key, "rb") as fh:
        pem = fh.read()
    result, detail = check(data, pem, images or None, device=device, profile=a.profile)
    out = {"result": result}
    out.update(detail)
    print(json.dumps(out, indent=2, sort_keys=False))
    return 0 if result == "ok" else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
