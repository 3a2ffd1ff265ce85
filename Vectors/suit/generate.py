#!/usr/bin/env python3
"""Generate and self-check the SUIT test vectors in Vectors/suit/.

    python3 Vectors/suit/generate.py           # (re)write everything, then check it
    python3 Vectors/suit/generate.py --check   # only check what is on disk

Independent of the Swift code: envelopes are built with cbor2 (canonical
encoding) and signed with cryptography; the check uses
Tests/support/suit_checker.py, which has its own CBOR reader.  Everything is
deterministic (RFC 6979 ECDSA, keys derived from fixed seeds), so regenerating
gives byte-identical files.

spec/   the draft's Appendix examples: example{N}.txt as published, example{N}.cbor
        decoded from the last hex block ("Envelope with COSE authentication object")
ours/   our own envelopes for manufacturer example.com, model c7960
index.json  every vector with its expected result
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import uuid

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
import suit_checker  # noqa: E402

DRAFT = "draft-ietf-suit-manifest-33"
SPEC = os.path.join(HERE, "spec")
OURS = os.path.join(HERE, "ours")

MANUFACTURER = "example.com"
MODEL = "c7960"
VENDOR_ID = uuid.uuid5(uuid.NAMESPACE_DNS, MANUFACTURER)
CLASS_ID = uuid.uuid5(VENDOR_ID, MODEL)
SEQUENCE = 1700000000
DEVICE_CURRENT_SEQUENCE = 1600000000       # what the simulated device last installed
VERSION = "1.0.0"
IMAGE_NAME = "fw-a.bin"
IMAGE_SIZE = 5000
URI = f"coap://[::1]/.well-known/firmware/{MANUFACTURER}/{MODEL}/{VERSION}/{IMAGE_NAME}"
COMPONENT = [b"\x00"]

# labels (draft-ietf-suit-manifest-33 IANA section); see README.md
ENV_AUTH, ENV_MANIFEST, ENV_INSTALL, ENV_TEXT = 2, 3, 20, 23
M_VERSION, M_SEQ, M_COMMON, M_VALIDATE, M_INSTALL, M_TEXT = 1, 2, 3, 7, 20, 23
C_COMPONENTS, C_SHARED = 2, 4
COND_VENDOR, COND_CLASS, COND_IMAGE = 1, 2, 3
DIR_OVERRIDE, DIR_FETCH, DIR_COPY, DIR_RUN_SEQUENCE = 20, 21, 22, 32
P_VENDOR, P_CLASS, P_DIGEST, P_SIZE, P_URI = 1, 2, 3, 14, 21
SHA256 = -16
REC_ALL = 15          # Rec-Pass|Rec-Fail|Sys-Pass|Sys-Fail, as the draft's examples use for conditions
REC_FAIL = 2          # as the draft's examples use for directive-fetch
TEXT_MANIFEST_DESCRIPTION = 1
TEXT_VENDOR_NAME, TEXT_MODEL_NAME, TEXT_VENDOR_DOMAIN, TEXT_MODEL_INFO = 1, 2, 3, 4
TEXT_COMPONENT_VERSION = 6
TAG_ENVELOPE, TAG_SIGN1 = 107, 18


def enc(obj) -> bytes:
    return cbor2.dumps(obj, canonical=True)


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def suit_digest_of_bstr(content: bytes) -> list:
    """SUIT_Digest over the bstr-wrapped element (CBOR bstr header + content)."""
    return [SHA256, sha256(enc(content))]


# ---------------------------------------------------------------------------
# keys and images
# ---------------------------------------------------------------------------

def spec_private_key():
    with open(os.path.join(SPEC, "key.pem"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def derived_es256(label: str):
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    d = int.from_bytes(sha256(label.encode()), "big") % (n - 1) + 1
    return ec.derive_private_key(d, ec.SECP256R1())


def derived_ed25519(label: str):
    return ed25519.Ed25519PrivateKey.from_private_bytes(sha256(label.encode()))


def write_key(priv, stem: str) -> None:
    d = os.path.join(OURS, "keys")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, stem + "-private.pem"), "wb") as f:
        f.write(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    with open(os.path.join(d, stem + "-public.pem"), "wb") as f:
        f.write(priv.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))


def image_bytes() -> bytes:
    out = b"".join(sha256(b"coap-fw suit fw-a " + i.to_bytes(4, "big")) for i in range(IMAGE_SIZE // 32 + 1))
    return out[:IMAGE_SIZE]


# ---------------------------------------------------------------------------
# envelope construction
# ---------------------------------------------------------------------------

def sign(priv, alg: int, digest_bstr_content: bytes) -> bytes:
    protected = enc({1: alg})
    tbs = enc(["Signature1", protected, b"", digest_bstr_content])
    if isinstance(priv, ec.EllipticCurvePrivateKey):
        der = priv.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = utils.decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        sig = priv.sign(tbs)
    return enc(cbor2.CBORTag(TAG_SIGN1, [protected, {}, None, sig]))


def shared_sequence(vendor: bytes, klass: bytes, image: bytes, conditions: bool = True) -> list:
    return [
        DIR_OVERRIDE, {P_VENDOR: vendor, P_CLASS: klass,
                       P_DIGEST: enc([SHA256, sha256(image)]), P_SIZE: len(image)},
    ] + ([COND_VENDOR, REC_ALL, COND_CLASS, REC_ALL] if conditions else [])


def install_sequence() -> list:
    return [DIR_OVERRIDE, {P_URI: URI}, DIR_FETCH, REC_FAIL, COND_IMAGE, REC_ALL]


def text_map() -> dict:
    return {"en": {
        TEXT_MANIFEST_DESCRIPTION: f"coap-fw test firmware {IMAGE_NAME} for {MANUFACTURER} {MODEL}",
        tuple(COMPONENT): {
            TEXT_VENDOR_NAME: MANUFACTURER,
            TEXT_MODEL_NAME: MODEL,
            TEXT_VENDOR_DOMAIN: MANUFACTURER,
            TEXT_MODEL_INFO: MODEL,
            TEXT_COMPONENT_VERSION: VERSION,
        },
    }}


def build(image: bytes, *, vendor=None, klass=None, seq=SEQUENCE, install=None, validate=None,
          text="inline", install_mode="inline", version=1, key=None, alg=-7, tagged=True,
          extra_envelope=None, identity_conditions=True) -> bytes:
    vendor = vendor or VENDOR_ID.bytes
    klass = klass or CLASS_ID.bytes
    common = enc({C_COMPONENTS: [COMPONENT], C_SHARED: enc(shared_sequence(vendor, klass, image, identity_conditions))})
    install_b = enc(install if install is not None else install_sequence())
    validate_b = enc(validate if validate is not None else [COND_IMAGE, REC_ALL])
    text_b = enc(text_map())
    manifest = {M_VERSION: version, M_SEQ: seq, M_COMMON: common, M_VALIDATE: validate_b}
    envelope_extra = {}
    if install_mode == "inline":
        manifest[M_INSTALL] = install_b
    else:
        manifest[M_INSTALL] = suit_digest_of_bstr(install_b)
        if install_mode == "severed":
            envelope_extra[ENV_INSTALL] = install_b
    if text == "inline":
        manifest[M_TEXT] = text_b
    elif text in ("severed", "stripped"):
        manifest[M_TEXT] = suit_digest_of_bstr(text_b)
        if text == "severed":
            envelope_extra[ENV_TEXT] = text_b
    elif text == "unauthenticated":       # member in the envelope, nothing in the manifest
        envelope_extra[ENV_TEXT] = text_b
    manifest_b = enc(manifest)
    digest_b = enc(suit_digest_of_bstr(manifest_b))
    priv = key or spec_private_key()
    auth = enc([digest_b, sign(priv, alg, digest_b)])
    env = {ENV_AUTH: auth, ENV_MANIFEST: manifest_b, **envelope_extra, **(extra_envelope or {})}
    return enc(cbor2.CBORTag(TAG_ENVELOPE, env) if tagged else env)


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) == 1, (old, data.count(old))
    return data.replace(old, new)


# ---------------------------------------------------------------------------
# spec examples
# ---------------------------------------------------------------------------

SPEC_EXAMPLES = {
    "example0": ("3f1a07859c4e5921a956974329659868bc13f067", "Secure Boot: shared-sequence + validate + invoke"),
    "example1": ("851267aee8404b471edf9e3be6aec536770d1845", "Simultaneous download and installation of payload"),
    "example2": ("851267aee8404b471edf9e3be6aec536770d1845", "Download, installation, secure boot, severed install and text"),
    "example3": ("3f1a07859c4e5921a956974329659868bc13f067", "A/B images with try-each on component-slot"),
    "example4": ("3f1a07859c4e5921a956974329659868bc13f067", "Load from external storage: three components, payload-fetch, copy, load"),
    "example5": ("3f1a07859c4e5921a956974329659868bc13f067", "Two images"),
    "example1-es256": ("3f1a07859c4e5921a956974329659868bc13f067", "example1 as signed in draft-31 (ES256 -7)"),
    "example2-es256": ("3f1a07859c4e5921a956974329659868bc13f067", "example2 as signed in draft-31 (ES256 -7)"),
}


def envelope_from_txt(path: str) -> bytes:
    with open(path) as f:
        t = f.read()
    blocks = [b for b in re.findall(r"~~~[^\n]*\n(.*?)~~~", t, re.S) if re.fullmatch(r"[0-9a-fA-F\s]+", b)]
    if not blocks:
        raise SystemExit(f"{path}: no hex block")
    return bytes.fromhex("".join(blocks[-1].split()))


def write_spec() -> list:
    entries = []
    for name, (commit, why) in SPEC_EXAMPLES.items():
        data = envelope_from_txt(os.path.join(SPEC, name + ".txt"))
        with open(os.path.join(SPEC, name + ".cbor"), "wb") as f:
            f.write(data)
        entries.append({"name": f"spec-{name}", "file": f"spec/{name}.cbor", "key": "spec/public.pem",
                        "images": None, "device": False, "profile": "spec", "expect": "ok",
                        "installable": False,
                        "why": f"{why}; published signature verifies with the published key; image digests are "
                               f"sample patterns, so without images it verifies but cannot install "
                               f"(suit-wg/manifest-spec examples/{name.split('-')[0]}.txt @ {commit[:7]})"})
    return entries


# ---------------------------------------------------------------------------
# our vectors
# ---------------------------------------------------------------------------

def write_ours() -> list:
    os.makedirs(os.path.join(OURS, "images"), exist_ok=True)
    image = image_bytes()
    tampered_image = bytearray(image)
    tampered_image[1000] ^= 0x01
    with open(os.path.join(OURS, "images", IMAGE_NAME), "wb") as f:
        f.write(image)
    with open(os.path.join(OURS, "images", "fw-a-tampered.bin"), "wb") as f:
        f.write(bytes(tampered_image))
    wrong = derived_es256("coap-fw suit wrong-key es256")
    edk = derived_ed25519("coap-fw suit ed25519")
    write_key(wrong, "wrong-es256")
    write_key(edk, "ed25519")

    img = {"0": f"ours/images/{IMAGE_NAME}"}
    vectors: list[tuple] = []   # (name, bytes, key, images, profile, expect, extra, why, spec_expect)

    def add(name, data, expect, why, *, key="spec/public.pem", images=img, profile="device",
            spec_expect=None, **extra):
        vectors.append((name, data, key, images, profile, expect, extra, why, spec_expect))

    positive = build(image)
    add("ok", positive, "ok",
        "positive: ES256 with the published key, text inline in the manifest, image fw-a.bin installs",
        installable=True, spec_expect="ok")
    add("ok-untagged", build(image, tagged=False), "ok",
        "positive without the optional SUIT_Envelope tag 107", installable=True, spec_expect="ok")
    add("ok-esp256", build(image, alg=-9), "ok",
        "positive signed with the fully specified ESP256 (-9) id, same published P-256 key",
        installable=True, spec_expect="ok")
    add("ok-eddsa", build(image, key=edk, alg=-8), "ok",
        "positive signed with EdDSA (-8), Ed25519 key ours/keys/ed25519-public.pem",
        key="ours/keys/ed25519-public.pem", installable=True, spec_expect="ok")
    add("ok-ed25519", build(image, key=edk, alg=-19), "ok",
        "positive signed with the fully specified Ed25519 (-19) id",
        key="ours/keys/ed25519-public.pem", installable=True, spec_expect="ok")
    severed = build(image, text="severed")
    add("ok-text-severed", severed, "ok",
        "text severed: SUIT_Digest of the text bstr in manifest key 23, the text itself in envelope key 23",
        installable=True, spec_expect="ok")
    add("ok-text-stripped", build(image, text="stripped"), "ok",
        "text severed and then removed from the envelope: digest stays in the manifest, still authentic",
        installable=True, spec_expect="ok")
    add("ok-install-severed", build(image, install_mode="severed"), "ok",
        "install sequence severed: its digest in manifest key 20, the sequence in envelope key 20",
        installable=True, spec_expect="ok")
    add("install-stripped", build(image, install_mode="stripped"), "bad-manifest",
        "install severed and then removed from the envelope: authentic, but the sequence an update must run is missing "
        "(the device refuses rather than skip it)")
    add("no-identity-conditions", build(image, identity_conditions=False), "bad-manifest",
        "authentic, but the shared sequence sets vendor-id and class-id without condition-vendor-identifier and "
        "condition-class-identifier: RFC 9124 wants both checked; a device given its ids refuses it")

    # negatives
    uri_b = URI.encode()
    add("tampered-manifest", replace_once(positive, uri_b, uri_b.replace(b"fw-a.bin", b"fw-b.bin")),
        "digest-mismatch", "one byte of the URI inside the manifest changed after signing",
        member="manifest", spec_expect="digest-mismatch")
    add("tampered-text", replace_once(severed, b"\x651.0.0", b"\x651.0.1"),
        "digest-mismatch", "one byte of the severed text member changed (version 1.0.0 -> 1.0.1)",
        member="text", spec_expect="digest-mismatch")
    marker = b"\xa0\xf6\x58\x40"                      # unprotected {}, payload nil, bstr(64) signature
    assert positive.count(marker) == 1
    sig_off = positive.index(marker) + len(marker) + 63  # last byte of the 64-byte signature
    t = bytearray(positive)
    t[sig_off] ^= 0x01
    add("tampered-signature", bytes(t), "bad-signature", "last byte of the ECDSA signature flipped",
        member="authentication-wrapper", spec_expect="bad-signature")
    add("wrong-key", build(image, key=wrong), "bad-signature",
        "well formed, signed with an unrelated P-256 key (ours/keys/wrong-es256-*.pem)",
        member="authentication-wrapper", spec_expect="bad-signature")
    other_vendor = uuid.uuid5(uuid.NAMESPACE_DNS, "example.org")
    add("wrong-vendor", build(image, vendor=other_vendor.bytes, klass=uuid.uuid5(other_vendor, MODEL).bytes),
        "wrong-device", "authentic, but vendor-id = UUID5(DNS, 'example.org') (class-id derived from it)",
        command="condition-vendor-identifier", spec_expect="ok")
    add("wrong-class", build(image, klass=uuid.uuid5(VENDOR_ID, "c7961").bytes),
        "wrong-device", "authentic, right vendor, class-id = UUID5(vendor-id, 'c7961')",
        command="condition-class-identifier", spec_expect="ok")
    add("rollback", build(image, seq=1), "rollback",
        f"authentic, sequence number 1 < the device's current {DEVICE_CURRENT_SEQUENCE} (positive uses {SEQUENCE})",
        member="manifest-sequence-number", spec_expect="ok")
    add("unsupported-copy",
        build(image, install=[DIR_OVERRIDE, {P_URI: URI}, DIR_FETCH, REC_FAIL, DIR_COPY, REC_FAIL, COND_IMAGE, REC_ALL]),
        "bad-manifest", "authentic, install uses directive-copy (22), which the device does not implement "
                        "(and no source-component is set)",
        command="directive-copy", spec_expect="bad-manifest")
    add("unsupported-run-sequence",
        build(image, install=[DIR_RUN_SEQUENCE, enc(install_sequence())]),
        "bad-manifest", "authentic, install wraps the fetch in directive-run-sequence (32), not implemented by "
                        "the device (valid in the full spec profile)",
        command="directive-run-sequence", spec_expect="ok")
    add("unknown-command",
        build(image, install=[DIR_OVERRIDE, {P_URI: URI}, DIR_FETCH, REC_FAIL, 99, REC_ALL, COND_IMAGE, REC_ALL]),
        "bad-manifest", "authentic, install contains command 99, registered nowhere",
        command="unknown(99)", spec_expect="bad-manifest")
    add("missing-reporting-policy", build(image, validate=[COND_IMAGE, None]),
        "bad-manifest", "authentic, condition-image-match followed by nil instead of a reporting policy (pre-draft-12 style)",
        command="condition-image-match", spec_expect="bad-manifest")
    add("manifest-version-2", build(image, version=2), "bad-manifest",
        "authentic, manifest-version 2 (only 1 is defined)", member="manifest-version", spec_expect="bad-manifest")
    add("text-unauthenticated", build(image, text="unauthenticated"), "bad-manifest",
        "text member in the envelope but no text digest in the manifest",
        member="text", spec_expect="bad-manifest")
    add("truncated", positive[:-7], "bad-manifest", "positive envelope with its last 7 bytes cut off",
        member="envelope", spec_expect="bad-manifest")
    add("trailing-bytes", positive + b"\x00", "bad-manifest", "positive envelope followed by one extra 0x00 byte",
        member="envelope", spec_expect="bad-manifest")
    add("image-tampered", positive, "digest-mismatch",
        "positive envelope, but the fetched image has one bit flipped (images/fw-a-tampered.bin)",
        images={"0": "ours/images/fw-a-tampered.bin"}, command="condition-image-match",
        spec_expect="digest-mismatch")

    entries = []
    for name, data, key, images, profile, expect, extra, why, spec_expect in vectors:
        path = f"ours/{name}.cbor"
        with open(os.path.join(HERE, path), "wb") as f:
            f.write(data)
        e = {"name": name, "file": path, "key": key, "images": images, "device": True,
             "profile": profile, "expect": expect}
        e.update(extra)
        if spec_expect:
            e["expect_spec_profile_no_device"] = spec_expect
        e["why"] = why
        entries.append(e)
    return entries


def write_index(entries: list) -> None:
    index = {
        "draft": DRAFT,
        "note": "paths relative to Vectors/suit/; 'device': true means check with the device context below; "
                "'profile' is suit_checker's command profile; 'images' maps component index to an image file",
        "device": {"manufacturer": MANUFACTURER, "model": MODEL,
                   "vendor_id": VENDOR_ID.hex, "vendor_uuid": str(VENDOR_ID),
                   "class_id": CLASS_ID.hex, "class_uuid": str(CLASS_ID),
                   "current_sequence": DEVICE_CURRENT_SEQUENCE, "slot": 0},
        "positive": {"sequence": SEQUENCE, "uri": URI, "image": f"ours/images/{IMAGE_NAME}",
                     "image_size": IMAGE_SIZE, "image_sha256": sha256(image_bytes()).hex(),
                     "text_version": VERSION},
        "vectors": entries,
    }
    with open(os.path.join(HERE, "index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------------
# self-check
# ---------------------------------------------------------------------------

def check_all() -> int:
    with open(os.path.join(HERE, "index.json")) as f:
        index = json.load(f)
    dev = index["device"]
    device = {"vendor_id": bytes.fromhex(dev["vendor_id"]), "class_id": bytes.fromhex(dev["class_id"]),
              "current_sequence": dev["current_sequence"], "slot": dev["slot"]}
    failures = 0

    def read(p):
        with open(os.path.join(HERE, p), "rb") as fh:
            return fh.read()

    for e in index["vectors"]:
        data, pem = read(e["file"]), read(e["key"])
        images = {int(k): read(v) for k, v in (e["images"] or {}).items()}
        result, detail = suit_checker.check(data, pem, images or None,
                                            device=device if e["device"] else None, profile=e["profile"])
        problems = []
        if result != e["expect"]:
            problems.append(f"got {result} ({detail.get('message')}), expected {e['expect']}")
        for field in ("member", "command"):
            if field in e and detail.get(field) != e[field]:
                problems.append(f"{field} {detail.get(field)!r} != {e[field]!r}")
        if "installable" in e and result == "ok" and detail["installable"] != e["installable"]:
            problems.append(f"installable {detail['installable']} != {e['installable']}")
        if "expect_spec_profile_no_device" in e:
            r2, d2 = suit_checker.check(data, pem, images or None, device=None, profile="spec")
            if r2 != e["expect_spec_profile_no_device"]:
                problems.append(f"spec profile/no device: got {r2} ({d2.get('message')}), "
                                f"expected {e['expect_spec_profile_no_device']}")
        if e["name"].startswith("ok") and not e["name"].startswith("spec"):
            # cross-check with cbor2 and with the expected field values
            env = cbor2.loads(data)
            env = env.value if isinstance(env, cbor2.CBORTag) else env
            if cbor2.dumps(cbor2.loads(data), canonical=True) != data:
                problems.append("not canonical per cbor2")
            exp = index["positive"]
            if (detail["sequence"] != exp["sequence"] or detail["uris"] != [exp["uri"]]
                    or detail["image_digest"] != exp["image_sha256"] or detail["image_size"] != exp["image_size"]
                    or detail["vendor_id"] != dev["vendor_id"] or detail["class_id"] != dev["class_id"]):
                problems.append("decoded fields differ from the intended ones")
            if "text_version" in detail and detail["text_version"] != exp["text_version"]:
                problems.append("text version")
        status = "FAIL" if problems else "ok  "
        print(f"{status} {e['name']:<28} {result:<16} {'; '.join(problems)}")
        failures += bool(problems)
    print(f"{len(index['vectors'])} vectors, {failures} failure(s)")
    return 1 if failures else 0


def main() -> int:
    if "--check" not in sys.argv[1:]:
        entries = write_spec() + write_ours()
        write_index(entries)
    return check_all()


if __name__ == "__main__":
    sys.exit(main())
