"""`coap-fw-server serve` robustness (issue #5 "Server robustness").

- test_garbage_manifest_served_as_is_and_rejected: manifest.cbor (or .json)
  swapped for garbage while the server runs (random bytes, one block and
  several; a truncated COSE_Sign1; CBOR that is not COSE; tag 18 around
  a malformed array; an empty file). The server serves exactly those bytes
  (coap-client-notls), and `coap-fw-client update` answers bad-manifest
  (exit 1) with nothing installed or staged.
- test_image_deleted_during_slow_transfer: an image is os.unlink'ed (or its
  whole version folder removed) while aiocoap fetches it block by block,
  slowly. The transfer either completes with the original bytes under one
  ETag (the server still has it mapped) or stops with a CoAP error code
  after a correct prefix; the server stays up, a new fetch of the deleted
  path is 4.04, other files are still served. (A file truncated in place
  while mapped is not something we promise to survive: not tested.)
- test_500_sequential_clients: 500 coap-client-notls processes one after
  the other fetch a manifest (new process each time; half of them from one
  fixed local port, half with 64-byte blocks). Every answer is right, the
  server's VmRSS grows by at most 5 MiB between fetch 50 and fetch 500, and
  it is still alive and serving.
- test_etag_is_the_same_8_bytes_for_every_block: for an image whose SHA-256
  starts with a 0x00 byte, block 0 (ETag added by libcoap) and a block asked
  for on a fresh session (ETag added by our handler) must carry the same
  ETag bytes, sha256[:8] (docs/design.md "ETag").
- test_update_of_image_whose_sha256_starts_with_zero: such an image of
  33,000 64-byte blocks (more than the client's 30,000 requests per
  session) must install; a changing ETag encoding makes every new session
  look like a changed image.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import cbor2
import pytest

from support import cli, coap
from support.files import write_random_file
from support.paths import MANUFACTURER
from support.ports import free_udp_port
from support.procs import crashes, proc_status_kib

MODEL = "robust1"
BASE = f".well-known/firmware/{MANUFACTURER}/{MODEL}"


@pytest.fixture
def release(bin_dir, tmp_path):
    """Keys and a repository with 1.0.0 of MODEL (image fw.bin, 32 KiB + 5)
    and of a second model."""
    rel = cli.make_release(bin_dir, tmp_path, model=MODEL, size=32 * 1024 + 5)
    other = tmp_path / "in2" / "other.bin"
    write_random_file(other, 9000)
    cli.publish(bin_dir, rel.repo, rel.key, MODEL + "b", "1.0.0", image=other)
    return {"keys": rel.keys, "repo": rel.repo, "image": rel.image, "other": other}


def replace_file(path: Path, data: bytes):
    """Like a deployment tool: a new file renamed over the old (new inode)."""
    temp = path.with_name(path.name + ".swap")
    temp.write_bytes(data)
    os.replace(temp, path)


# ---------------------------------------------------------------------------
# (a) a manifest swapped for garbage
# ---------------------------------------------------------------------------

def garbage_for(kind: str, original: bytes) -> bytes:
    if kind == "random-small":
        return b"\x9f\x00" + os.urandom(300)
    if kind == "random-large":
        return os.urandom(5000)
    if kind == "truncated":
        return original[:len(original) // 2]
    if kind == "cbor-not-cose":
        return cbor2.dumps({1: "1.0", 3: MANUFACTURER, 4: MODEL, 5: "9.9.9"})
    if kind == "tag18-garbage":
        # tag 18 around a three-member array of the wrong types: structurally
        # broken (a well-formed envelope with a bad signature would be bad-signature)
        return cbor2.dumps(cbor2.CBORTag(18, [1, "x", os.urandom(40)]))
    if kind == "empty":
        return b""
    if kind == "json-garbage":
        return b'{"protected": "!!!", "payload": 12, "signature": [' + os.urandom(20).hex().encode()
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["random-small", "random-large", "truncated", "cbor-not-cose",
                                  "tag18-garbage", "empty", "json-garbage"])
def test_garbage_manifest_served_as_is_and_rejected(kind, release, bin_dir, server, coap_get, tmp_path):
    fmt = "json" if kind == "json-garbage" else "cbor"
    repo = release["repo"]
    manifest = repo / BASE / f"manifest.{fmt}"
    srv = server(repo)
    uri = srv.uri(f"{BASE}/manifest.{fmt}")
    _, before = coap_get(uri, tmp_path / "before", "-b", "64")
    assert before == manifest.read_bytes(), "the good manifest was not served"  # now mapped by the server

    garbage = garbage_for(kind, manifest.read_bytes())
    replace_file(manifest, garbage)
    for block in (64, 1024):
        proc, got = coap_get(uri, tmp_path / "after", "-b", block)
        got = b"" if got is None and not garbage else got
        assert got == garbage, (
            f"block {block}: served {len(got) if got is not None else None} bytes, expected the "
            f"{len(garbage)} garbage bytes as they are on disk\n{proc.stderr[-2000:]}")

    state = tmp_path / "state"
    run = cli.update(bin_dir, release["keys"] / "public.pem", MODEL, state,
                     "--origin", f"coap://127.0.0.1:{srv.port}", "--format", fmt, "--timeout", 10)
    assert run.returncode == 1, f"expected exit 1\n{run.describe()}"
    assert run.json and run.json.get("result") == "bad-manifest", f"expected bad-manifest\n{run.describe()}"
    assert run.json.get("bytesTransferred") == 0, run.describe()
    assert not crashes(run.stderr), run.describe()
    assert not (state / "installed").exists(), "something was installed from a garbage manifest"
    assert cli.status(bin_dir, state).json["version"] is None
    staged = [p.name for p in (state / "staging").iterdir()] if (state / "staging").exists() else []
    assert not staged, f"staging after a garbage manifest: {staged}"
    assert srv.alive(), srv.describe()


# ---------------------------------------------------------------------------
# (b) an image deleted while it is being served
# ---------------------------------------------------------------------------

async def slow_block_fetch(uri: str, szx: int, delay: float, on_block, max_blocks: int = 100_000):
    """GET ``uri`` one Block2 request at a time (a fresh request each, as a
    constrained client would), sleeping ``delay`` between blocks. Returns
    (payload bytes, [etags], error code text or None)."""
    import aiocoap
    from aiocoap.optiontypes import BlockOption

    ctx = await aiocoap.Context.create_client_context()
    try:
        body, etags, number = bytearray(), [], 0
        while number < max_blocks:
            request = aiocoap.Message(code=aiocoap.GET, uri=uri)
            request.opt.block2 = BlockOption.BlockwiseTuple(number, False, szx)
            response = await asyncio.wait_for(ctx.request(request, handle_blockwise=False).response, 30)
            if not response.code.is_successful():
                return bytes(body), etags, str(response.code)
            block = response.opt.block2
            etags.append(bytes(response.opt.etag or b""))
            if block is None:
                return bytes(response.payload), etags, None
            if block.block_number != number:
                return bytes(body), etags, f"block {block.block_number} when {number} was asked for"
            body += response.payload
            if not block.more:
                return bytes(body), etags, None
            number += 1
            on_block(number)
            await asyncio.sleep(delay)
        return bytes(body), etags, "too many blocks"
    finally:
        await ctx.shutdown()


@pytest.mark.parametrize("how", ["unlink-file", "remove-version-folder"])
def test_image_deleted_during_slow_transfer(how, release, bin_dir, server, coap_get, tmp_path):
    repo = release["repo"]
    image_path = repo / BASE / "1.0.0" / "fw.bin"
    original = image_path.read_bytes()
    srv = server(repo)
    deleted_at = {}

    def on_block(number):
        if number == 100 and not deleted_at:
            if how == "unlink-file":
                os.unlink(image_path)
            else:
                shutil.rmtree(image_path.parent)
            deleted_at["block"] = number

    # 64-byte blocks, 3 ms apart: 513 blocks, about 2-3 s; deleted at block 100.
    body, etags, error = asyncio.run(slow_block_fetch(srv.uri(f"{BASE}/1.0.0/fw.bin"), 2, 0.003, on_block))
    assert deleted_at, "the transfer ended before the file could be deleted"
    assert not image_path.exists()
    outcome = "completed" if error is None else f"stopped after {len(body)} bytes: {error}"
    print(f"\n{how} at block {deleted_at['block']}: transfer {outcome}; ETags {sorted(set(e.hex() for e in etags))}")
    assert srv.alive(), f"server died while a deleted file was being served\n{srv.describe()}"
    if error is None:
        assert body == original, f"completed transfer has wrong bytes ({len(body)} of {len(original)})"
        assert len(set(etags)) == 1, f"ETag changed during the transfer: {set(etags)}"
    else:
        assert error.startswith("4.") or error.startswith("5."), f"not a clean CoAP error: {error}"
        assert original.startswith(body), "bytes received before the failure are not the image's"
    assert not crashes(srv.log()), srv.describe()

    # the server is still fine: the deleted path is gone, other files are served
    assert coap.probe("127.0.0.1", srv.port, f"{BASE}/1.0.0/fw.bin", timeout=2) == "4.04"
    _, data = coap_get(srv.uri(f".well-known/firmware/{MANUFACTURER}/{MODEL}b/1.0.0/other.bin"), tmp_path / "o", "-b", "64")
    assert data == release["other"].read_bytes(), "another image is no longer served correctly"
    _, data = coap_get(srv.uri(f"{BASE}/manifest.cbor"), tmp_path / "m")
    assert data == (repo / BASE / "manifest.cbor").read_bytes()
    assert srv.alive(), srv.describe()


# ---------------------------------------------------------------------------
# (c) 500 sequential clients
# ---------------------------------------------------------------------------

def test_500_sequential_clients(release, bin_dir, server, tmp_path):
    repo = release["repo"]
    srv = server(repo)
    uri = srv.uri(f"{BASE}/manifest.cbor")
    expected = (repo / BASE / "manifest.cbor").read_bytes()
    fixed_port = free_udp_port()
    out = tmp_path / "fetched"
    bad, rss = [], {}
    started = time.monotonic()
    for i in range(1, 501):
        args = ["coap-client-notls", "-B", "10"]
        if i % 2 == 0:
            args += ["-p", str(fixed_port)]   # the same local port as the previous even client
        if i % 4 in (0, 3):
            args += ["-b", "64"]              # block-wise at 64 bytes
        if out.exists():
            out.unlink()
        proc = subprocess.run([*args, "-o", str(out), uri], capture_output=True, text=True, timeout=30)
        got = out.read_bytes() if out.exists() else None
        if got != expected:
            bad.append((i, " ".join(args), len(got) if got is not None else None, proc.stderr[-300:]))
        if i in (50, 500):
            rss[i] = proc_status_kib(srv.pid)
    elapsed = time.monotonic() - started
    print(f"\n500 sequential clients in {elapsed:.1f} s; server VmRSS after 50: {rss[50]} KiB, "
          f"after 500: {rss[500]} KiB (+{rss[500] - rss[50]} KiB); wrong answers: {len(bad)}")
    assert not bad, f"{len(bad)} of 500 fetches got wrong bytes, first: {bad[:5]}"
    assert rss[500] - rss[50] <= 5 * 1024, f"server VmRSS grew {rss[500] - rss[50]} KiB from fetch 50 to 500"
    assert srv.alive(), srv.describe()
    assert coap.probe("127.0.0.1", srv.port, f"{BASE}/manifest.cbor", timeout=2) == "2.05"
    assert not crashes(srv.log()), srv.describe()


# ---------------------------------------------------------------------------
# (d) ETag encoding when the content's SHA-256 starts with 0x00
# ---------------------------------------------------------------------------

def data_with_zero_first_hash_byte(size: int) -> bytes:
    """Random bytes whose SHA-256 begins with 0x00 (1 in 256 random images)."""
    prefix = os.urandom(size - 4)
    base = hashlib.sha256(prefix)
    for n in range(1 << 20):
        tail = n.to_bytes(4, "big")
        h = base.copy()
        h.update(tail)
        if h.digest()[0] == 0:
            return prefix + tail
    raise AssertionError("no such content found")


def publish_zero_hash_image(bin_dir, root: Path, size: int):
    """Keys and a repository with MODEL 1.0.0 = zero.bin, an image of
    ``size`` bytes whose SHA-256 starts with 0x00; (keys, repo, content)."""
    keys = root / "keys"
    cli.keygen(bin_dir, keys)
    repo = root / "repo"
    image = root / "in" / "zero.bin"
    image.parent.mkdir(parents=True)
    content = data_with_zero_first_hash_byte(size)
    image.write_bytes(content)
    cli.publish(bin_dir, repo, keys / "private.pem", MODEL, "1.0.0", image=image)
    return keys, repo, content


def test_etag_is_the_same_for_every_block(bin_dir, server, tmp_path):
    """An image whose SHA-256 starts with 0x00: the ETag (sha256[:8] as a
    number, sent without leading zero bytes as libcoap encodes it) must be the
    same bytes on a block-0 transfer and on one that reaches the server mid-body."""
    _, repo, content = publish_zero_hash_image(bin_dir, tmp_path, 5000)
    srv = server(repo)
    want = hashlib.sha256(content).digest()[:8].lstrip(b"\x00")
    path = f"{BASE}/1.0.0/zero.bin"
    seen = {}
    for number in (0, 5, 0, 77):
        # one CON GET with Block2 (64-byte blocks) from a fresh socket: a new server session
        response = coap.request("127.0.0.1", srv.port, path, options=[(coap.BLOCK2, coap.block2(number, 2))],
                                timeout=3)
        assert response is not None, f"block {number}: no answer"
        assert response.code_text == "2.05", f"block {number}: code {response.code_text}"
        seen.setdefault(number, []).append(response.option(coap.ETAG))
    print(f"\nsha256[:8] {want.hex()}; ETags: " + ", ".join(
        f"block {n}: {[e.hex() if e is not None else None for e in v]}" for n, v in seen.items()))
    bad = {n: [e.hex() if e is not None else None for e in v] for n, v in seen.items() if any(e != want for e in v)}
    assert not bad, (f"ETag is not sha256(content)[:8] = {want.hex()} (leading zeros dropped) on every block: {bad} "
                     "(a block-0 transfer and a transfer reaching the server mid-body must carry the same ETag)")


def test_update_of_image_whose_sha256_starts_with_zero(bin_dir, server, tmp_path):
    keys, repo, content = publish_zero_hash_image(bin_dir, tmp_path, 33_000 * 64 + 10)
    srv = server(repo)
    state = tmp_path / "state"
    run = cli.update(bin_dir, keys / "public.pem", MODEL, state, "--origin", f"coap://127.0.0.1:{srv.port}",
                     "--block-size", 64, "--timeout", 10, timeout=180)
    assert run.returncode == 0 and run.json and run.json.get("result") == "updated", (
        f"update of a {len(content)}-byte image whose SHA-256 starts with 00 "
        f"({hashlib.sha256(content).hexdigest()[:16]}...) failed\n{run.describe()}")
    assert run.json["bytesTransferred"] == len(content), run.describe()
    assert (state / "installed" / "zero.bin").read_bytes() == content
