#!/usr/bin/env python3
"""Seeds the fuzz corpora from Vectors/ (issues #5, #13): envelopes as they
are (also for the device's own check), their payloads (CBOR and JSON
manifests) for the manifest readers, parser strings, block sequences,
resume records and PSK files. Writes Fuzz/corpus/<target>/; run once, then
`make fuzz` grows and minimises the corpora, which are kept in git."""
import base64
import hashlib
import json
from pathlib import Path

import cbor2

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent / "Vectors" / "manifests"
DEVICE_VECTORS = HERE.parent / "Vectors" / "device"


def put(target, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def b64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


for f in sorted(VECTORS.iterdir()) + sorted(DEVICE_VECTORS.iterdir()):
    if f.suffix not in (".cbor", ".json") or f.name == "index.json":
        continue
    data = f.read_bytes()
    put("envelope", data)
    if f.suffix == ".cbor":
        put("device", data)
    try:
        if f.suffix == ".cbor":
            msg = cbor2.loads(data)
            value = msg.value if hasattr(msg, "value") else msg
            if isinstance(value, list) and len(value) == 4 and isinstance(value[2], bytes):
                put("manifest-view", value[2])
        else:
            jws = json.loads(data)
            put("manifest-json", b64(jws["payload"]))
    except Exception:
        pass  # broken vectors are seeds only as envelopes

for text in ["1.2.3", "0.0.0", "01.2.3", "2025-11-24T16:00:00Z", "2025-11-24T17:00:00+01:00",
             "coap://_firmware.lan/.well-known/firmware/m/x/manifest.cbor\n../1.2.3/fw.bin",
             "coaps://[::1]:5684/a/b?c=d\n/x/./y/../z", "coap://h/a%20b\ncoap://other/x", "AAEC", "00ff"]:
    put("parsers", text.encode())

# blocks: size hi, size lo, szx, second size, then 8-byte block records.
for size, szx in [(3000, 6), (0, 2), (1024, 6), (100, 0)]:
    blocks = bytes([size >> 8, size & 0xFF, szx, 10])
    bs = 16 << szx
    n = 0
    done = 0
    while done < size or n == 0:
        count = min(bs, size - done)
        more = done + count < size
        blocks += bytes([n & 0xFF, n >> 8, (szx << 1) | int(more), 1, 0, 0, count >> 8, count & 0xFF])
        done += count
        n += 1
        if not more:
            break
    put("blocks", blocks)
# resume: staging/resume.json records as the client writes them, and near misses.
for text in ['{"manifest":"' + "ab" * 32 + '","component":0,"offset":4096,"blockSize":1024,"etag":"0011223344556677"}',
             '{"manifest":"x","component":1,"offset":0,"blockSize":16}',
             '{"manifest":"x","component":0,"offset":18446744073709551616,"blockSize":1024}',
             '{"manifest":"x","component":9223372036854775808,"offset":0,"blockSize":1024}',
             '{"manifest":"x","component":0,"offset":1e3,"blockSize":-1}']:
    put("resume", text.encode())

# psk-file: --psk-file contents.
for text in ["client:00112233445566778899aabbccddeeff\n", "# comment\n\nid:with:colons:0a0b\r\nsecond:ff\n",
             "bad line\n", "x:\n", ":00\n", "\ufeffid:00\n"]:
    put("psk-file", text.encode())

print("seeded", ", ".join(f"{d.name}: {len(list(d.iterdir()))}" for d in sorted((HERE / "corpus").iterdir())))
