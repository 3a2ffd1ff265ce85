#!/usr/bin/env python3
"""Test vectors for the device verifier (`DeviceVerifier.check`): HSS-LMS
signed COSE_Sign1 manifests, each paired with a device (identity, installed
release, slot) and the exact result the device must give.

Independent of the Swift code: the manifests are built with cbor2, signed
with pyhsslms 2.0.0 (RFC 8554 HSS, one level of LMS_SHA256_M32_H5 /
LMOTS_SHA256_N32_W8) over the RFC 9052 Sig_structure. pyhsslms' randomness
is replaced by a SHA-256 counter DRBG, so a rerun writes identical bytes.

usage: python3 Vectors/device/generate.py    (writes next to itself)
"""
import hashlib
import json
from pathlib import Path

import cbor2
import pyhsslms
from pyhsslms import pyhsslms as _pyhsslms_module

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent / "images"
TIMESTAMP = 1764000000  # 2025-11-24T16:00:00Z, as in Vectors/manifests
H5, W8 = b"\x00\x00\x00\x05", b"\x00\x00\x00\x04"


class Drbg:
    """SHA-256 in counter mode; stands in for pyhsslms' randBytes."""

    def __init__(self, seed: bytes):
        self.key = hashlib.sha256(b"drbg" + seed).digest()
        self.counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self.key + self.counter.to_bytes(8, "big")).digest()
            self.counter += 1
        return out[:n]


def manifest(images: dict, **changes) -> bytes:
    fw = images["firmware.bin"]
    m = {1: "1.0", 2: cbor2.CBORTag(1, TIMESTAMP), 3: "example.com", 4: "c7960", 5: "1.2.3",
         6: "1.2.3/firmware.bin",
         7: {1: [{1: -16, 2: hashlib.sha256(fw).digest()}, {1: -44, 2: hashlib.sha512(fw).digest()}]},
         9: len(fw)}
    if changes.get("split"):
        for k in (6, 7, 9):
            del m[k]
        boot, app = images["boot.bin"], images["app.bin"]
        m[10] = [{1: "boot", 2: "1.2.3/boot.bin", 3: len(boot), 4: [{1: -16, 2: hashlib.sha256(boot).digest()}]},
                 {1: "app", 2: "1.2.3/app.bin", 3: len(app),
                  4: [{1: -16, 2: hashlib.sha256(app).digest()}, {1: -43, 2: hashlib.sha384(app).digest()}]}]
    m.update(changes.get("set", {}))
    return cbor2.dumps(m, canonical=True)


class Signer:
    def __init__(self, drbg: Drbg):
        _pyhsslms_module.randBytes = drbg  # pyhsslms looks it up at call time
        self.key = pyhsslms.HssPrivateKey(levels=1, lms_type=H5, lmots_type=W8)
        self.public = self.key.publicKey().serialize()
        self.kid = hashlib.sha256(self.public).digest()[:8]

    def cose(self, payload: bytes, alg: int = -46) -> bytes:
        protected = cbor2.dumps({1: alg})
        to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
        signature = self.key.sign(to_be_signed)
        assert pyhsslms.HssPublicKey.deserialize(self.public).verify(to_be_signed, signature)
        return cbor2.dumps(cbor2.CBORTag(18, [protected, {4: self.kid}, payload, signature]))


def device(manufacturer="example.com", model="c7960", installed=None, slot=None) -> dict:
    return {"manufacturer": manufacturer, "model": model, "installed": installed, "slot": slot}


def main() -> None:
    images = {n: (IMAGES / n).read_bytes() for n in ("firmware.bin", "boot.bin", "app.bin")}
    drbg = Drbg(b"coap-fw device verifier vectors, v1")
    trusted, other = Signer(drbg), Signer(drbg)
    (HERE / "hss-public.bin").write_bytes(trusted.public)

    files = {
        "hss-valid": trusted.cose(manifest(images)),
        "hss-multi-component": trusted.cose(manifest(images, split=True)),
        "hss-wrong-key": other.cose(manifest(images)),
        "hss-alg-es256": trusted.cose(manifest(images), alg=-7),
        "hss-payload-bad-version": trusted.cose(manifest(images, set={5: 123})),
        "hss-payload-no-digest": trusted.cose(manifest(images, set={7: {1: []}})),
    }
    valid = files["hss-valid"]
    tampered = bytearray(valid)
    tampered[valid.index(b"1.2.3/firmware.bin")] ^= 0x01  # inside the signed payload
    files["hss-tampered-payload"] = bytes(tampered)
    files["hss-truncated"] = valid[: len(valid) * 3 // 5]
    files["hss-untagged"] = valid[1:]  # the array without tag 18 (0xd2)
    for name, data in files.items():
        (HERE / f"{name}.cbor").write_bytes(data)

    later = {"version": "1.0.0", "timestamp": TIMESTAMP + 1}
    cases = [
        ("accepted: nothing installed", "hss-valid", device(), "accepted", ["firmware.bin"]),
        ("accepted: older release installed", "hss-valid", device(installed={"version": "1.2.2", "timestamp": TIMESTAMP - 1}), "accepted", ["firmware.bin"]),
        ("accepted: slot exactly the image size", "hss-valid", device(slot=len(images["firmware.bin"])), "accepted", ["firmware.bin"]),
        ("accepted: two components", "hss-multi-component", device(), "accepted", ["boot.bin", "app.bin"]),
        ("up-to-date: the installed version again", "hss-valid", device(installed={"version": "1.2.3", "timestamp": TIMESTAMP}), "up-to-date", []),
        ("wrong-device: other model", "hss-valid", device(model="c7961"), "wrong-device", []),
        ("wrong-device: other manufacturer", "hss-valid", device(manufacturer="example.org"), "wrong-device", []),
        ("rollback: lower version", "hss-valid", device(installed={"version": "1.3.0", "timestamp": TIMESTAMP - 1}), "rollback", []),
        ("rollback: older timestamp, higher version", "hss-valid", device(installed=later), "rollback", []),
        ("too-large: slot one byte short", "hss-valid", device(slot=len(images["firmware.bin"]) - 1), "too-large", []),
        ("bad-signature: payload byte flipped", "hss-tampered-payload", device(), "bad-signature", []),
        ("bad-signature: another HSS key", "hss-wrong-key", device(), "bad-signature", []),
        ("bad-signature: alg says ES256", "hss-alg-es256", device(), "bad-signature", []),
        ("bad-manifest: firmwareVersion is an integer (signed)", "hss-payload-bad-version", device(), "bad-manifest", []),
        ("bad-manifest: empty digest list (signed)", "hss-payload-no-digest", device(), "bad-manifest", []),
        ("bad-manifest: truncated envelope", "hss-truncated", device(), "bad-manifest", []),
        ("bad-manifest: no tag 18", "hss-untagged", device(), "bad-manifest", []),
    ]
    index = [{"name": name, "file": f"device/{file}.cbor", "trust": "device/hss-public.bin", "device": dev,
              "expect": expect, "images": [f"images/{i}" for i in imgs]} for name, file, dev, expect, imgs in cases]
    (HERE / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"device vectors: {len(files)} envelopes, {len(index)} cases")


if __name__ == "__main__":
    main()
