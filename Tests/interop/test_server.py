"""`coap-fw-server serve` against real peers over loopback (issue #3, SPEC §4, §5, §7).

Every test here talks to a running server process with somebody else's CoAP
stack: libcoap's command-line clients (`coap-client-notls`,
`coap-client-openssl`), aiocoap's Python API, or hand-made UDP datagrams.
Bodies are compared by SHA-256 with what is on disk. libcoap's client exits 0
even when it fails, so its output file is always checked.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import aiocoap
import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption, UintOption

from support import cli, coap, paths
from support.files import content_etag, sha256, write_random_file
from support.paths import LIBCOAP_CLIENT, LIBCOAP_DTLS_CLIENT, MANUFACTURER, MODEL, SERVER
from support.ports import free_udp_port

BlockwiseTuple = BlockOption.BlockwiseTuple

CF_COSE_SIGN1 = 18
CF_JSON = 50
CF_OCTET_STREAM = 42


def model_path(kind: str = "firmware", model: str = MODEL) -> str:
    return paths.model_path(model, kind=kind)


def segments(path: str) -> tuple[str, ...]:
    return tuple(path.strip("/").split("/"))


def aio(coro):
    return asyncio.run(coro)


class Client:
    """A thin aiocoap wrapper for raw requests with explicit Uri-Path tuples."""

    def __init__(self, ctx):
        self.ctx = ctx

    @classmethod
    async def create(cls):
        return cls(await aiocoap.Context.create_client_context())

    async def close(self):
        await self.ctx.shutdown()

    def message(self, base: str, path, *, code=Code.GET, block=None, accept=None,
                options=(), observe=None, payload=b""):
        msg = Message(code=code, uri=base, payload=payload)
        msg.opt.uri_path = tuple(segments(path) if isinstance(path, str) else path)
        if block is not None:
            msg.opt.block2 = BlockwiseTuple(*block)
        if accept is not None:
            msg.opt.accept = accept
        if observe is not None:
            msg.opt.observe = observe
        for opt in options:
            msg.opt.add_option(opt)
        return msg

    async def request(self, base, path, *, blockwise=False, timeout=30, **kw):
        msg = self.message(base, path, **kw)
        req = self.ctx.request(msg, handle_blockwise=blockwise)
        return await asyncio.wait_for(req.response, timeout)

    async def fetch(self, base, path, szx=6, **kw):
        """Whole body through aiocoap's own block-wise handling, asking for
        2**(szx+4)-byte blocks in the first request."""
        return await self.request(base, path, blockwise=True, block=(0, False, szx), **kw)

    async def fetch_blocks(self, base, path, szx, *, pace=None, after_block=None, timeout=30):
        """Block by block without aiocoap's block-wise layer: every block is
        its own request (Block2 num/szx). ``pace(num)`` returns the time to
        wait before asking for block ``num``. Returns [(num, etag, payload,
        size2, more)]."""
        blocks = []
        num = 0
        while True:
            if pace is not None and num:
                await asyncio.sleep(max(0.0, pace(num)))
            r = await self.request(base, path, block=(num, False, szx), timeout=timeout)
            assert r.code == Code.CONTENT, f"block {num} of {path}: {r.code} {r.payload[:60]!r}"
            b2 = r.opt.block2
            assert b2 is not None, f"block {num} of {path} has no Block2 option"
            assert b2.block_number == num and b2.size_exponent == szx, (
                f"asked for block {num} (szx {szx}), got {b2}")
            blocks.append((num, r.opt.etag, r.payload, r.opt.size2, b2.more))
            if after_block is not None:
                await after_block(num, r)
            if not b2.more:
                return blocks
            num += 1


def assert_etag_names(response, content: bytes, what: str):
    """An ETag, when the server sends one, is sha256(content)[:8]. Bodies
    that fit one block may come without (RFC 7252 makes ETag optional; the
    block-wise ones are checked to carry it)."""
    etag = response.opt.etag
    assert etag is None or etag == content_etag(content), (
        f"{what}: ETag {etag.hex()} is not sha256(content)[:8] = {content_etag(content).hex()}")


def base_uri(server, host=None) -> str:
    return server.uri("", host=host)


def write_random(path: Path, size: int) -> bytes:
    write_random_file(path, size)
    return path.read_bytes()


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, cur, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def link_format(text: str) -> dict[str, dict[str, str]]:
    """RFC 6690 link format -> {target: {attr: value}} (quotes stripped)."""
    links = {}
    for link in _split_outside_quotes(text.strip(), ","):
        params = _split_outside_quotes(link.strip(), ";")
        target = params[0].strip()
        assert target.startswith("<") and target.endswith(">"), f"bad link {link!r} in {text!r}"
        attrs = {}
        for param in params[1:]:
            name, _, value = param.partition("=")
            attrs[name.strip()] = value.strip().strip('"')
        links[target[1:-1]] = attrs
    return links


# ---------------------------------------------------------------------------
# A repository with three releases and one server for the read-only tests
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(bin_dir, tmp_path_factory, module_procs):
    """Published with our own publisher: example.com/c7960 1.0.0 (200 KiB
    image), example.com/small 1.0.0 (20 KiB), example.com/c64 1.0.0 (64 KiB).
    Served on 127.0.0.1 and ::1 (same port) for the whole module. Tests using
    it must not change the repository."""
    root = tmp_path_factory.mktemp("shared")
    keys = root / "keys"
    cli.keygen(bin_dir, keys)
    repo = root / "repo"
    images = {}
    for model, size in (("c7960", 200 * 1024 + 123), ("small", 20 * 1024 + 7), ("c64", 64 * 1024)):
        src = root / "src" / model / "fw.bin"
        data = write_random(src, size)
        cli.publish(bin_dir, repo, keys / "private.pem", model, "1.0.0", image=src)
        path = f"{model_path(model=model)}/1.0.0/fw.bin"
        assert (repo / path).read_bytes() == data
        images[model] = SimpleNamespace(path=path, data=data)
    server = module_procs.server(repo, hosts=["127.0.0.1", "::1"])
    mdir = repo / model_path()
    return SimpleNamespace(
        repo=repo, server=server, images=images, big=images["c7960"], small=images["small"],
        img64=images["c64"], cbor=(mdir / "manifest.cbor").read_bytes(),
        json=(mdir / "manifest.json").read_bytes(), keys=keys,
    )


@pytest.fixture
def own_release(bin_dir, tmp_path):
    """A fresh repository with example.com/c7960 1.0.0 (image of ``size``
    bytes); returns a namespace with repo, key, image path and bytes, and a
    ``publish(version, size)`` for further releases."""

    def make(size=4096, name="fw.bin"):
        keys = tmp_path / "own-keys"
        if not keys.exists():
            cli.keygen(bin_dir, keys)
        repo = tmp_path / "own-repo"
        ns = SimpleNamespace(repo=repo, key=keys / "private.pem")

        def publish(version, size, name=name):
            src = tmp_path / "src" / version / name
            data = write_random(src, size)
            cli.publish(bin_dir, repo, ns.key, MODEL, version, image=src)
            return SimpleNamespace(path=f"{model_path()}/{version}/{name}", data=data)

        ns.publish = publish
        ns.first = publish("1.0.0", size)
        ns.cbor_path = repo / model_path() / "manifest.cbor"
        ns.json_path = repo / model_path() / "manifest.json"
        return ns

    return make


# ---------------------------------------------------------------------------
# 1. libcoap's client, block sizes 16..1024
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("block", [16, 64, 256, 1024])
def test_libcoap_fetches_manifest_and_image(shared, coap_get, tmp_path, block):
    image = shared.small if block == 16 else shared.big
    for path, want in (
        (f"{model_path()}/manifest.cbor", shared.cbor),
        (f"{model_path()}/manifest.json", shared.json),
        (image.path, image.data),
    ):
        proc, got = coap_get(shared.server.uri(path), tmp_path / "out.bin", "-b", block)
        assert got is not None, f"coap-client -b {block} {path} wrote nothing\n{proc.stderr}"
        assert (len(got), sha256(got)) == (len(want), sha256(want)), (
            f"coap-client -b {block} {path}: {len(got)} bytes, expected {len(want)}\n{proc.stderr}")


def test_libcoap_fetches_over_ipv6(shared, coap_get, tmp_path):
    proc, got = coap_get(shared.server.uri(shared.big.path, host="::1"), tmp_path / "v6.bin", "-b", 512)
    assert got is not None and sha256(got) == sha256(shared.big.data), proc.stderr


# ---------------------------------------------------------------------------
# 2. coaps with a pre-shared key (libcoap's OpenSSL build)
# ---------------------------------------------------------------------------

PSK_IDENTITY = "device-42"
PSK_KEY = "correct horse battery staple"


def write_psk(path: Path) -> Path:
    path.write_text(f"# test keys\nother-device:{b'something else'.hex()}\n"
                    f"{PSK_IDENTITY}:{PSK_KEY.encode().hex()}\n")
    return path


def udp_ports_of(pid: int) -> set[int]:
    """UDP ports bound by process ``pid`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_dtls_psk_fetch_and_wrong_key(shared, server, coap_get, tmp_path):
    srv = server(shared.repo, dtls=True, psk_file=write_psk(tmp_path / "psk.txt"))
    for block in (1024, 256):
        proc, got = coap_get(srv.coaps_uri(shared.big.path), tmp_path / "dtls.bin", "-b", block,
                             "-u", PSK_IDENTITY, "-k", PSK_KEY, client=LIBCOAP_DTLS_CLIENT)
        assert got is not None and (len(got), sha256(got)) == (len(shared.big.data), sha256(shared.big.data)), (
            f"coaps -b {block}: got {None if got is None else len(got)} bytes\n{proc.stderr}\n{srv.describe()}")
    proc, got = coap_get(srv.coaps_uri(f"{model_path()}/manifest.cbor"), tmp_path / "m.cbor",
                         "-u", PSK_IDENTITY, "-k", PSK_KEY, client=LIBCOAP_DTLS_CLIENT)
    assert got == shared.cbor, proc.stderr

    for identity, key in ((PSK_IDENTITY, "wrong key"), ("stranger", PSK_KEY)):
        proc, got = coap_get(srv.coaps_uri(shared.big.path), tmp_path / "bad.bin", "-u", identity,
                             "-k", key, client=LIBCOAP_DTLS_CLIENT, timeout=5)
        assert not got, f"identity {identity!r} key {key!r} got {len(got)} bytes"
    # and the server still serves the right key afterwards
    proc, got = coap_get(srv.coaps_uri(shared.small.path), tmp_path / "again.bin", "-u", PSK_IDENTITY,
                         "-k", PSK_KEY, client=LIBCOAP_DTLS_CLIENT)
    assert got == shared.small.data, proc.stderr


def test_dtls_only_with_no_plain(shared, server, coap_get, tmp_path):
    psk = write_psk(tmp_path / "psk.txt")

    def dtls_ready(srv):
        proc, got = coap_get(srv.coaps_uri(".well-known/core"), tmp_path / "core.txt", "-u",
                             PSK_IDENTITY, "-k", PSK_KEY, client=LIBCOAP_DTLS_CLIENT, timeout=2)
        return bool(got)

    srv = server(shared.repo, plain=False, dtls=True, psk_file=psk, ready=dtls_ready)
    proc, got = coap_get(srv.coaps_uri(shared.small.path), tmp_path / "s.bin", "-b", 64, "-u",
                         PSK_IDENTITY, "-k", PSK_KEY, client=LIBCOAP_DTLS_CLIENT)
    assert got == shared.small.data, proc.stderr
    assert udp_ports_of(srv.pid) == {srv.dtls_port}, (
        f"--no-plain server binds UDP ports {udp_ports_of(srv.pid)}, expected only {srv.dtls_port}")


# ---------------------------------------------------------------------------
# 3. aiocoap's client
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("szx", [2, 6], ids=["64", "1024"])
def test_aiocoap_fetch_with_etag_and_size2(shared, szx):
    size = 1 << (szx + 4)
    data = shared.big.data
    base = base_uri(shared.server)

    async def body():
        c = await Client.create()
        try:
            r = await c.fetch(base, shared.big.path, szx)
            assert r.code == Code.CONTENT
            assert sha256(r.payload) == sha256(data), f"{len(r.payload)} bytes, expected {len(data)}"
            assert int(r.opt.content_format) == CF_OCTET_STREAM
            assert r.opt.etag == content_etag(data), f"ETag {r.opt.etag!r}"

            first = await c.request(base, shared.big.path, block=(0, False, szx))
            assert first.code == Code.CONTENT
            assert first.opt.block2 == BlockwiseTuple(0, True, szx)
            assert first.payload == data[:size]
            assert first.opt.size2 == len(data), f"Size2 {first.opt.size2}"
            assert first.opt.etag == content_etag(data)
            assert int(first.opt.content_format) == CF_OCTET_STREAM

            last_num = (len(data) - 1) // size
            last = await c.request(base, shared.big.path, block=(last_num, False, szx))
            assert last.opt.block2 == BlockwiseTuple(last_num, False, szx)
            assert last.payload == data[last_num * size:]
            assert last.opt.etag == content_etag(data)

            for name, want, cf in (("manifest.cbor", shared.cbor, CF_COSE_SIGN1),
                                   ("manifest.json", shared.json, CF_JSON)):
                r = await c.fetch(base, f"{model_path()}/{name}", szx)
                assert r.code == Code.CONTENT and r.payload == want, name
                assert int(r.opt.content_format) == cf, f"{name}: Content-Format {r.opt.content_format}"
                if r.opt.block2 is not None or szx < 6:  # went block-wise: ETag required
                    assert r.opt.etag == content_etag(want), f"{name}: ETag {r.opt.etag!r}"
                assert_etag_names(r, want, name)
                assert r.opt.max_age is not None, f"{name}: no Max-Age on a manifest"
        finally:
            await c.close()

    aio(body())


# ---------------------------------------------------------------------------
# 4. Accept negotiation, the /.well-known/manifest alias, /.well-known/core
# ---------------------------------------------------------------------------


def test_accept_negotiation_and_alias(shared, coap_get, tmp_path):
    base = base_uri(shared.server)

    async def body():
        c = await Client.create()
        try:
            for kind in ("firmware", "manifest"):
                neg = f"{model_path(kind)}/manifest"
                for accept, want, cf in ((CF_JSON, shared.json, CF_JSON),
                                         (60, shared.cbor, CF_COSE_SIGN1),
                                         (CF_COSE_SIGN1, shared.cbor, CF_COSE_SIGN1),
                                         (None, shared.cbor, CF_COSE_SIGN1)):
                    r = await c.fetch(base, neg, accept=accept)
                    assert r.code == Code.CONTENT, f"{neg} Accept {accept}: {r.code}"
                    assert r.payload == want, f"{neg} Accept {accept}: wrong body"
                    assert int(r.opt.content_format) == cf, f"{neg} Accept {accept}: cf {r.opt.content_format}"
                    assert_etag_names(r, want, f"{neg} Accept {accept}")
                for accept in (0, 42, 40, 61):
                    r = await c.request(base, neg, accept=accept)
                    assert r.code == Code.NOT_ACCEPTABLE, f"{neg} Accept {accept}: {r.code}"
                    assert shared.cbor not in r.payload and shared.json not in r.payload
                for name, want in (("manifest.cbor", shared.cbor), ("manifest.json", shared.json)):
                    r = await c.fetch(base, f"{model_path(kind)}/{name}")
                    assert r.code == Code.CONTENT and r.payload == want, f"{kind}/{name}"
        finally:
            await c.close()

    aio(body())

    # libcoap's -A as well, and the alias at a small block size
    proc, got = coap_get(shared.server.uri(f"{model_path()}/manifest"), tmp_path / "j", "-A", "50")
    assert got == shared.json, proc.stderr
    proc, got = coap_get(shared.server.uri(f"{model_path('manifest')}/manifest.json"), tmp_path / "a",
                         "-b", 32)
    assert got == shared.json, proc.stderr


def test_well_known_core_lists_manifests(shared, coap_get, tmp_path):
    proc, got = coap_get(shared.server.uri(".well-known/core"), tmp_path / "core.txt")
    assert got, proc.stderr
    links = link_format(got.decode())
    for model in shared.images:
        for kind in ("firmware", "manifest"):
            for name, ct in (("manifest.cbor", "18"), ("manifest.json", "50"), ("manifest", None)):
                target = f"/{model_path(kind, model=model)}/{name}"
                assert target in links, f"{target} missing from /.well-known/core: {got.decode()}"
                attrs = links[target]
                assert attrs.get("rt") == "firmware.manifest", f"{target}: {attrs}"
                assert "ct" in attrs, f"{target} has no ct=: {attrs}"
                if ct is not None:
                    assert ct in attrs["ct"].split(), f"{target}: ct={attrs['ct']}"
    for target in links:
        assert "/../" not in target and "/./" not in target, f"odd link {target}"
    # the listing itself is link format
    base = base_uri(shared.server)

    async def body():
        c = await Client.create()
        try:
            r = await c.fetch(base, ".well-known/core")
            assert r.code == Code.CONTENT and int(r.opt.content_format) == 40
        finally:
            await c.close()

    aio(body())


# ---------------------------------------------------------------------------
# 5. Observe: a published release notifies observers
# ---------------------------------------------------------------------------


def test_observers_notified_of_new_release(own_release, server, bin_dir, tmp_path):
    rel = own_release(6000)
    srv = server(rel.repo)
    base = base_uri(srv)
    old_cbor, old_json = rel.cbor_path.read_bytes(), rel.json_path.read_bytes()
    obs_file = tmp_path / "observed.bin"

    async def body():
        lib = await asyncio.create_subprocess_exec(
            LIBCOAP_CLIENT, "-s", "9", "-B", "30", "-o", str(obs_file),
            srv.uri(f"{model_path()}/manifest.cbor"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        c = await Client.create()
        observations = {}
        try:
            for label, path, accept in (("json", f"{model_path()}/manifest.json", None),
                                        ("alias-cbor", f"{model_path('manifest')}/manifest.cbor", None),
                                        ("negotiated-json", f"{model_path()}/manifest", CF_JSON)):
                msg = c.message(base, path, observe=0, accept=accept)
                req = c.ctx.request(msg)
                first = await asyncio.wait_for(req.response, 10)
                assert first.code == Code.CONTENT and first.opt.observe is not None, (
                    f"{label}: {first.code}, Observe {first.opt.observe}")
                assert first.payload == (old_json if "json" in label else old_cbor)
                observations[label] = req
            deadline = time.monotonic() + 5
            while not (obs_file.exists() and obs_file.read_bytes().startswith(old_cbor)):
                assert time.monotonic() < deadline, "coap-client -s did not register"
                await asyncio.sleep(0.1)

            new = await asyncio.to_thread(rel.publish, "1.1.0", 7000)
            new_cbor, new_json = rel.cbor_path.read_bytes(), rel.json_path.read_bytes()
            assert new_cbor != old_cbor
            published_at = time.monotonic()

            async def next_with(label, req, want):
                async for note in req.observation:
                    if note.payload == want:
                        return note
                    assert note.payload in (old_cbor, old_json), f"{label}: unexpected body"
                raise AssertionError(f"{label}: observation ended without the new manifest")

            for label, req in observations.items():
                want = new_json if "json" in label else new_cbor
                left = max(0.1, 10 - (time.monotonic() - published_at))
                try:
                    note = await asyncio.wait_for(next_with(label, req, want), left)
                except asyncio.TimeoutError:
                    raise AssertionError(f"{label}: no notification with the new manifest within 10 s "
                                         f"of publishing\n{srv.describe()}")
                assert note.code == Code.CONTENT
                want_cf = CF_JSON if "json" in label else CF_COSE_SIGN1
                assert int(note.opt.content_format) == want_cf
                assert_etag_names(note, want, f"{label} notification")
            _, err = await asyncio.wait_for(lib.communicate(), 30)
            return new, new_cbor, err
        finally:
            for req in observations.values():
                req.observation.cancel()
            if lib.returncode is None:
                lib.kill()
                await lib.wait()
            await c.close()

    new, new_cbor, err = aio(body())
    observed = obs_file.read_bytes()
    assert observed.startswith(old_cbor) and observed.endswith(new_cbor), (
        f"coap-client -s wrote {len(observed)} bytes; expected the old manifest ({len(old_cbor)}) "
        f"then the new one ({len(new_cbor)})\n{err.decode(errors='replace')}")


# ---------------------------------------------------------------------------
# 6. A repository written by something else
# ---------------------------------------------------------------------------


def write_foreign_repo(root: Path, vectors_dir: Path) -> SimpleNamespace:
    """SPEC §4 layout written with plain Python file operations: the vectors'
    signed manifests and images, nothing from our publisher."""
    repo = root / "foreign"
    mdir = repo / ".well-known" / "firmware" / "example.com" / "c7960"
    (mdir / "1.2.3").mkdir(parents=True)
    ns = SimpleNamespace(
        repo=repo,
        cbor=(vectors_dir / "manifests" / "cose-es256-valid.cbor").read_bytes(),
        jws=(vectors_dir / "manifests" / "jws-es256-valid.json").read_bytes(),
        image=(vectors_dir / "images" / "firmware.bin").read_bytes(),
    )
    (mdir / "manifest.cbor").write_bytes(ns.cbor)
    (mdir / "manifest.json").write_bytes(ns.jws)
    (mdir / "1.2.3" / "firmware.bin").write_bytes(ns.image)
    ns.big = write_random(mdir / "1.2.3" / "big.bin", 50_000)
    # a second vendor with only a CBOR manifest, read-only for its owner
    other = repo / ".well-known" / "firmware" / "other.org" / "m1"
    (other / "0.0.1").mkdir(parents=True)
    (other / "manifest.cbor").write_bytes(ns.cbor)
    (other / "0.0.1" / "firmware.bin").write_bytes(ns.image)
    os.chmod(other / "manifest.cbor", 0o400)
    return ns


def test_serves_repository_written_by_other_tool(vectors_dir, server, coap_get, tmp_path):
    f = write_foreign_repo(tmp_path, vectors_dir)
    srv = server(f.repo)
    for path, want in (
        (".well-known/firmware/example.com/c7960/manifest.cbor", f.cbor),
        (".well-known/firmware/example.com/c7960/manifest.json", f.jws),
        (".well-known/manifest/example.com/c7960/manifest.cbor", f.cbor),
        (".well-known/firmware/example.com/c7960/1.2.3/firmware.bin", f.image),
        (".well-known/firmware/example.com/c7960/1.2.3/big.bin", f.big),
        (".well-known/firmware/other.org/m1/manifest.cbor", f.cbor),
        (".well-known/firmware/other.org/m1/0.0.1/firmware.bin", f.image),
    ):
        for block in (64, 1024):
            proc, got = coap_get(srv.uri(path), tmp_path / "out", "-b", block)
            assert got is not None and sha256(got) == sha256(want), (
                f"{path} -b {block}: {None if got is None else len(got)} bytes, expected {len(want)}\n"
                f"{proc.stderr}\n{srv.describe()}")
    proc, got = coap_get(srv.uri(".well-known/firmware/example.com/c7960/manifest"), tmp_path / "n",
                         "-A", "50")
    assert got == f.jws
    proc, got = coap_get(srv.uri(".well-known/core"), tmp_path / "core")
    links = link_format(got.decode())
    for target in ("/.well-known/firmware/example.com/c7960/manifest.cbor",
                   "/.well-known/firmware/other.org/m1/manifest.cbor"):
        assert links.get(target, {}).get("rt") == "firmware.manifest", got.decode()


def test_well_known_core_lists_only_what_exists(vectors_dir, server, coap_get, tmp_path):
    """other.org/m1 has a manifest.cbor and no manifest.json: every link and
    every ct= the listing announces must answer 2.05."""
    f = write_foreign_repo(tmp_path, vectors_dir)
    srv = server(f.repo)
    proc, got = coap_get(srv.uri(".well-known/core"), tmp_path / "core")
    links = link_format(got.decode())
    missing = []
    for target, attrs in links.items():
        for ct in attrs.get("ct", "").split() or [None]:
            args = ["-A", ct] if ct is not None and target.endswith("/manifest") else []
            proc, body = coap_get(srv.uri(target), tmp_path / "listed", *args)
            if not body:
                missing.append(f"{target} (ct {ct}): {proc.stdout.strip() or proc.stderr.strip()}")
    assert not missing, ("/.well-known/core lists resources that do not answer 2.05:\n"
                         + "\n".join(missing) + f"\nlisting: {got.decode()}")


# ---------------------------------------------------------------------------
# 7. New releases while serving; an image replaced under a transfer
# ---------------------------------------------------------------------------


def wait_for_body(srv, path, want, *, timeout=6.0, szx=2):
    """Poll ``path`` with aiocoap until its body is ``want``; returns the
    response. Fails after ``timeout`` seconds."""

    async def body():
        c = await Client.create()
        try:
            deadline = time.monotonic() + timeout
            last = None
            while time.monotonic() < deadline:
                last = await c.fetch(base_uri(srv), path, szx)
                if last.code == Code.CONTENT and last.payload == want:
                    return last
                await asyncio.sleep(0.2)
            got = "nothing" if last is None else f"{last.code}, {len(last.payload)} bytes"
            raise AssertionError(f"{path}: still {got} {timeout} s after the change on disk\n{srv.describe()}")
        finally:
            await c.close()

    return aio(body())


def test_new_release_served_without_restart(own_release, server, coap_get, tmp_path):
    rel = own_release(30_000)
    srv = server(rel.repo)
    old_cbor = rel.cbor_path.read_bytes()
    proc, got = coap_get(srv.uri(f"{model_path()}/manifest.cbor"), tmp_path / "m0")
    assert got == old_cbor

    new = rel.publish("1.1.0", 45_000)
    new_cbor, new_json = rel.cbor_path.read_bytes(), rel.json_path.read_bytes()
    assert new_cbor != old_cbor
    r = wait_for_body(srv, f"{model_path()}/manifest.cbor", new_cbor)
    assert r.opt.etag == content_etag(new_cbor) != content_etag(old_cbor)
    wait_for_body(srv, f"{model_path()}/manifest.json", new_json)
    wait_for_body(srv, f"{model_path('manifest')}/manifest.cbor", new_cbor)
    for image in (new, rel.first):
        proc, got = coap_get(srv.uri(image.path), tmp_path / "img", "-b", 256)
        assert got is not None and sha256(got) == sha256(image.data), (
            f"{image.path}: {None if got is None else len(got)} bytes\n{proc.stderr}\n{srv.describe()}")
    proc, got = coap_get(srv.uri(".well-known/core"), tmp_path / "core")
    assert f"/{model_path()}/manifest.cbor" in got.decode()
    assert srv.alive()


def test_image_replaced_during_transfer_never_mixes(own_release, server, tmp_path):
    size, szx, block = 40 * 1024 + 100, 6, 1024
    rel = own_release(size)
    srv = server(rel.repo)
    target = rel.repo / rel.first.path
    old = rel.first.data
    new = os.urandom(size + 3000)  # other content, other length
    nblocks_old = (len(old) + block - 1) // block
    replace_at = nblocks_old // 2
    events = []

    async def body():
        c = await Client.create()
        try:
            async def maybe_replace(num, response):
                if num == replace_at and not events:
                    tmp = target.parent / ".fw.bin.new"
                    tmp.write_bytes(new)
                    os.replace(tmp, target)
                    events.append(("replaced", num, time.monotonic()))

            # pace so that the rest of the transfer spans several of the
            # server's re-scans (about one per second)
            attempts = []
            blocks = await c.fetch_blocks(base_uri(srv), rel.first.path, szx,
                                          pace=lambda n: 0.12, after_block=maybe_replace)
            attempts.append(blocks)
            # a well-behaved client restarts when the ETag changes
            etags = [b[1] for b in blocks]
            if len(set(etags)) > 1:
                attempts.append(await c.fetch_blocks(base_uri(srv), rel.first.path, szx))
            return attempts
        finally:
            await c.close()

    attempts = aio(body())
    assert events, "the image was never replaced"
    print(f"in-flight replacement: {len(attempts)} attempt(s); ETags of the first: "
          f"{sorted({b[1].hex() if b[1] else 'none' for b in attempts[0]})}")
    contents = {content_etag(old): old, content_etag(new): new}
    first = attempts[0]
    for num, etag, payload, size2, more in first:
        assert etag in contents, (
            f"block {num}: ETag {etag!r} is neither sha256(old)[:8] nor sha256(new)[:8]")
        body = contents[etag]
        assert payload == body[num * block:(num + 1) * block], (
            f"block {num} (ETag {etag.hex()}) does not match the content its ETag names")
        assert more == ((num + 1) * block < len(body))
    final = attempts[-1]
    etags = {b[1] for b in final}
    assert len(etags) == 1, f"transfer {len(attempts)} still saw ETags {sorted(e.hex() for e in etags)}"
    assembled = b"".join(b[2] for b in final)
    assert sha256(assembled) in (sha256(old), sha256(new)), "assembled bytes match neither image"
    assert content_etag(assembled) == final[0][1]
    # afterwards the new content is what is served, under its own ETag
    r = wait_for_body(srv, rel.first.path, new)
    assert r.opt.etag == content_etag(new)


# ---------------------------------------------------------------------------
# 8. Path safety
# ---------------------------------------------------------------------------

SECRET = b"TOP-SECRET-" + os.urandom(8).hex().encode()


def test_paths_cannot_escape_repository(own_release, server, tmp_path):
    rel = own_release(5000)
    repo = rel.repo
    mdir = repo / model_path()
    vdir = mdir / "1.0.0"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET + b" outside")
    (outside / "manifest.cbor").write_bytes(SECRET + b" outside manifest")
    for where in (repo, repo / ".well-known", repo / ".well-known" / "firmware",
                  repo / ".well-known" / "firmware" / MANUFACTURER, mdir):
        (where / "secret").write_bytes(SECRET + b" " + str(where.relative_to(tmp_path)).encode())
    (mdir / ".staging-1").mkdir()
    (mdir / ".staging-1" / "fw.bin").write_bytes(SECRET + b" staging")
    (vdir / ".hidden").write_bytes(SECRET + b" hidden")
    (vdir / "evil.bin").symlink_to(outside / "secret")
    (vdir / "evil-rel.bin").symlink_to(os.path.relpath(outside / "secret", vdir))
    (mdir / "9.9.9").symlink_to(outside, target_is_directory=True)
    (repo / ".well-known" / "firmware" / MANUFACTURER / "evil").symlink_to(outside, target_is_directory=True)
    (vdir / "good.bin").symlink_to("fw.bin")
    (vdir / "good-abs.bin").symlink_to(vdir / "fw.bin")
    files_in_repo = {p.read_bytes() for p in repo.rglob("*") if p.is_file()}

    srv = server(repo)
    base = base_uri(srv)
    m = model_path()
    bad = [
        (".well-known", "firmware", "..", "..", "etc", "passwd"),
        (".well-known", "firmware", "..", "..", "..", "..", "..", "..", "..", "etc", "passwd"),
        (".well-known", "firmware", "..", "..", "secret"),
        (".well-known", "firmware", "..", "secret"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "..", "secret"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "..", "..", "..", "..", "secret"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "..", "..", "..", "..", "..", "secret"),
        (".well-known", "manifest", "..", "firmware", MANUFACTURER, MODEL, "manifest.cbor"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "..", "manifest.cbor"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "", "manifest.cbor"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "", "fw.bin"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "fw.bin", ""),
        ("", ".well-known", "firmware", MANUFACTURER, MODEL, "manifest.cbor"),
        (".well-known", "firmware", MANUFACTURER, MODEL, ".", "manifest.cbor"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", ".", "fw.bin"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "%2e%2e", "%2e%2e", "%2e%2e", "secret"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "%2E%2E", "secret"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "%2e%2e", "manifest.cbor"),
        (".well-known", "firmware", MANUFACTURER, MODEL, ".staging-1", "fw.bin"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", ".hidden"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0/fw.bin"),
        (".well-known", "firmware", MANUFACTURER, f"{MODEL}/1.0.0", "fw.bin"),
        (".well-known", "firmware", f"{MANUFACTURER}/{MODEL}", "manifest.cbor"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "../secret"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0\\fw.bin"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "..\\secret"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "fw.bin\x00"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "evil.bin"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0", "evil-rel.bin"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "9.9.9", "secret"),
        (".well-known", "firmware", MANUFACTURER, "evil", "manifest.cbor"),
        (".well-known", "manifest", MANUFACTURER, "evil", "manifest.cbor"),
        (".well-known", "firmware", MANUFACTURER, "evil", "manifest"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "secret"),
        (".well-known", "firmware", MANUFACTURER, MODEL, "1.0.0"),
        (".well-known", "firmware", MANUFACTURER, MODEL),
        (".well-known", "firmware"),
        (".well-known", "secret"),
        ("secret",),
        (str(outside / "secret"),),
        (".well-known", "firmware", str(outside)[1:], "secret"),
    ]

    async def body():
        c = await Client.create()
        try:
            failures = []
            for path in bad:
                for block in (None, (0, False, 6)):
                    r = await c.request(base, path, block=block)
                    leaked = SECRET in r.payload or (r.payload and r.payload in files_in_repo)
                    if r.code not in (Code.NOT_FOUND, Code.BAD_REQUEST) or leaked:
                        failures.append(f"{path!r}: {r.code} {r.payload[:50]!r}")
            assert not failures, "paths not refused:\n" + "\n".join(failures)

            for name in ("good.bin", "good-abs.bin", "fw.bin"):
                r = await c.fetch(base, f"{m}/1.0.0/{name}")
                assert r.code == Code.CONTENT and r.payload == rel.first.data, (
                    f"symlink {name} inside the repository: {r.code}")
            core = (await c.fetch(base, ".well-known/core")).payload.decode()
            assert "staging" not in core and "secret" not in core, core
            assert "/evil/" not in core, (
                "/.well-known/core lists example.com/evil, a model folder that is a symlink "
                f"out of the repository (its resources answer 4.04):\n{core}")
        finally:
            await c.close()

    aio(body())


# ---------------------------------------------------------------------------
# 9. Malformed and unexpected input
# ---------------------------------------------------------------------------


def test_unknown_critical_options_are_bad_option(shared):
    base = base_uri(shared.server)
    path = f"{model_path()}/manifest.cbor"

    async def body():
        c = await Client.create()
        try:
            for number in (9, 65001, 2049):
                r = await c.request(base, path, options=[UintOption(number, 1)])
                assert r.code == Code.BAD_OPTION, f"critical option {number}: {r.code}"
                assert shared.cbor not in r.payload
            r = await c.request(base, shared.small.path, block=(0, False, 6),
                                options=[UintOption(9, 7)])
            assert r.code == Code.BAD_OPTION, f"critical option 9 on an image: {r.code}"
            # an unknown *elective* option is ignored
            r = await c.request(base, path, options=[UintOption(65000, 1)])
            assert r.code == Code.CONTENT and r.payload == shared.cbor, f"elective 65000: {r.code}"
        finally:
            await c.close()

    aio(body())


def test_other_methods_not_allowed(shared):
    """The repository is read-only over CoAP: PUT, POST, DELETE (and FETCH,
    PATCH, iPATCH) on manifests, images and the listing are 4.05; on a path
    that does not exist 4.04 or 4.05, except DELETE, which RFC 7252 §5.8.4
    says SHOULD be 2.02 when the resource did not exist (libcoap does so);
    nothing on disk may change either way."""
    base = base_uri(shared.server)
    before = {p: p.read_bytes() for p in shared.repo.rglob("*") if p.is_file()}

    async def body():
        c = await Client.create()
        try:
            failures = []
            for path in (f"{model_path()}/manifest.cbor", f"{model_path()}/manifest.json",
                         f"{model_path()}/manifest", f"{model_path('manifest')}/manifest.cbor",
                         shared.small.path, ".well-known/core", f"{model_path()}/9.9.9/none.bin"):
                allowed = ((Code.METHOD_NOT_ALLOWED, Code.NOT_FOUND) if "none.bin" in path
                           else (Code.METHOD_NOT_ALLOWED,))
                for code in (Code.PUT, Code.POST, Code.DELETE, Code.FETCH, Code.PATCH, Code.iPATCH):
                    r = await c.request(base, path, code=code, payload=b"overwrite attempt")
                    ok = allowed + ((Code.DELETED,) if "none.bin" in path and code == Code.DELETE else ())
                    if r.code not in ok:
                        failures.append(f"{code} {path}: {r.code}")
            return failures
        finally:
            await c.close()

    failures = aio(body())
    after = {p: p.read_bytes() for p in shared.repo.rglob("*") if p.is_file()}
    assert after == before, "a PUT/POST/DELETE changed the repository"
    assert not failures, "\n".join(failures)


def test_block_beyond_end_is_a_client_error(shared):
    """A Block2 number past the end of the body is the client's mistake:
    a 4.xx answer (libcoap itself uses 4.00), never content and never 5.00."""
    base = base_uri(shared.server)
    data = shared.small.data

    async def body():
        c = await Client.create()
        try:
            results = []
            for num, szx in (((len(data) + 1023) // 1024, 6), (0xFFFFF, 6), (0xFFFFF, 0), (5000, 2)):
                r = await c.request(base, shared.small.path, block=(num, False, szx))
                results.append((num, szx, r.code, r.payload[:40]))
            return results
        finally:
            await c.close()

    results = aio(body())
    wrong = [r for r in results if r[2].class_ != 4]
    assert not wrong, "Block2 beyond the end of a 20 KiB image: " + "; ".join(
        f"num {n} szx {s} -> {code} {p!r}" for n, s, code, p in wrong)
    assert shared.server.alive()


def garbage_datagrams(rng: random.Random, count: int, image_path: str):
    img = coap.uri_path_options(image_path)
    manifest = coap.uri_path_options(f"{model_path()}/manifest.cbor")

    def rbytes(n):
        return bytes(rng.getrandbits(8) for _ in range(n))

    def hdr(tkl=None, code=1, mtype=None):
        tkl = rng.randint(0, 8) if tkl is None else tkl
        mtype = rng.randint(0, 3) if mtype is None else mtype
        return bytes([0x40 | (mtype << 4) | tkl, code]) + rbytes(2) + rbytes(min(tkl, 8))

    for i in range(count):
        kind = i % 14
        if kind == 0:
            yield rbytes(rng.randint(0, 1400))
        elif kind == 1:  # truncated headers
            yield rbytes(rng.randint(0, 3))
        elif kind == 2:  # wrong version
            yield bytes([(rng.choice([0, 2, 3]) << 6) | rng.randint(0, 63)]) + rbytes(rng.randint(1, 60))
        elif kind == 3:  # reserved token lengths 9..15
            yield bytes([0x40 | rng.randint(9, 15), 1]) + rbytes(rng.randint(2, 40))
        elif kind == 4:  # bad option delta / length nibbles (15 that is not the payload marker)
            opt = bytes([rng.choice([0xF0 | rng.randint(0, 14), (rng.randint(0, 14) << 4) | 0x0F])])
            yield hdr(code=1) + b"\xb4tool"[: rng.randint(0, 5)] + opt + rbytes(rng.randint(0, 20))
        elif kind == 5:  # extended delta/length running past the end
            yield hdr(code=1) + rng.choice([b"\xd0", b"\xe0\x01", b"\x0d", b"\x0e\xff",
                                            b"\xbd\xf0abc", b"\x1e\x00\x10" + rbytes(10)])
        elif kind == 6:  # huge / malformed Block2 on an image
            num = rng.choice([0xFFFFF, 0x7FFFF, rng.randint(100, 0xFFFFF), 1 << 19])
            szx = rng.randint(0, 7)
            value = rng.choice([coap.block2(num, szx), rbytes(4), rbytes(5), b"", b"\x00\x00\x00"])
            yield coap.encode(0, 1, rng.getrandbits(16), rbytes(rng.randint(0, 8)),
                               img + [(23, value)])
        elif kind == 7:  # zero-length tokens, valid and not so valid requests
            opts = rng.choice([img, manifest, coap.uri_path_options(".well-known/core"), []])
            extra = rng.choice([[], [(23, coap.block2(rng.randint(0, 50), rng.randint(0, 6)))],
                                [(6, b"")], [(6, b"\x00\x00\x00\x00")], [(17, b"\x32")],
                                [(17, b"\x00\x00\x00\x00\x00")], [(4, rbytes(8))], [(60, rbytes(4))]])
            yield coap.encode(rng.choice([0, 1]), 1, rng.getrandbits(16), b"", opts + extra)
        elif kind == 8:  # payload marker with no payload
            yield coap.encode(0, 1, rng.getrandbits(16), rbytes(2), manifest) + b"\xff"
        elif kind == 9:  # odd codes and types
            code = rng.choice([0, 5, 6, 7, 8, 31, 0x41, 0x45, 0x84, 0xA0, 0xE1, 0xFF])
            yield coap.encode(rng.randint(0, 3), code, rng.getrandbits(16),
                               rbytes(rng.randint(0, 8)), rng.choice([[], manifest, img]),
                               rbytes(rng.randint(0, 30)))
        elif kind == 10:  # empty message with a token or options (format error)
            yield bytes([0x40 | (rng.randint(0, 3) << 4) | rng.randint(1, 8), 0]) + rbytes(10)
        elif kind == 11:  # strange Uri-Path segments
            seg = rng.choice([b"..", b".", b"", rbytes(8), b"\xff\xfe\xc0\xaf", b"a" * 255,
                              b"%00", b"/etc/passwd", b"\x00", "é".encode() * 100])
            opts = coap.uri_path_options(model_path()) + [(11, seg)] * rng.randint(1, 3)
            yield coap.encode(0, 1, rng.getrandbits(16), rbytes(4), opts)
        elif kind == 12:  # many options, unknown options, proxy options
            opts = list(img)
            for _ in range(rng.randint(1, 40)):
                opts.append((rng.choice([1, 3, 4, 5, 6, 7, 8, 12, 14, 15, 17, 20, 28, 35, 39, 60,
                                         rng.randint(1, 65000)]), rbytes(rng.randint(0, 12))))
            yield coap.encode(rng.randint(0, 1), 1, rng.getrandbits(16), rbytes(2), opts)
        else:  # very many Uri-Path options, or an observe on an image with Block2
            if rng.random() < 0.5:
                yield coap.encode(0, 1, rng.getrandbits(16), rbytes(3), [(11, b"x")] * 300)
            else:
                yield coap.encode(0, 1, rng.getrandbits(16), rbytes(3),
                                   img + [(6, b""), (23, coap.block2(rng.randint(0, 0xFFFFF), 6))])


def test_garbage_datagrams_do_not_hurt(own_release, server, coap_get, tmp_path):
    rel = own_release(64 * 1024)
    srv = server(rel.repo)
    rng = random.Random(0xC0A9)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
    received = 0
    sent = 0
    try:
        for s in socks:
            s.setblocking(False)
        for i, datagram in enumerate(garbage_datagrams(rng, 4000, rel.first.path)):
            socks[i % len(socks)].sendto(datagram, ("127.0.0.1", srv.port))
            sent += 1
            if i % 50 == 49:
                time.sleep(0.01)
                for s in socks:
                    while True:
                        try:
                            s.recv(2048)
                            received += 1
                        except (BlockingIOError, ConnectionRefusedError):
                            break
                assert srv.alive(), f"server died after {sent} garbage datagrams\n{srv.describe()}"
    finally:
        for s in socks:
            s.close()
    assert srv.alive(), srv.describe()
    assert received > 0, "the server answered none of the well-formed requests among the garbage"
    # still healthy: answers at once, serves whole bodies to libcoap and aiocoap
    assert coap.probe("127.0.0.1", srv.port, timeout=2) == "2.05"
    proc, got = coap_get(srv.uri(rel.first.path), tmp_path / "after.bin", "-b", 256)
    assert got is not None and sha256(got) == sha256(rel.first.data), proc.stderr

    async def body():
        c = await Client.create()
        try:
            r = await c.fetch(base_uri(srv), rel.first.path, 6)
            assert r.code == Code.CONTENT and r.payload == rel.first.data
        finally:
            await c.close()

    aio(body())
    assert srv.alive()


# ---------------------------------------------------------------------------
# 10. 200 clients at once
# ---------------------------------------------------------------------------


def test_200_concurrent_libcoap_clients(shared, tmp_path):
    n = 200
    want = sha256(shared.img64.data)
    procs = []
    started = time.monotonic()
    for i in range(n):
        host = "127.0.0.1" if i % 2 == 0 else "::1"
        out = tmp_path / f"out-{i}.bin"
        procs.append((out, subprocess.Popen(
            [LIBCOAP_CLIENT, "-B", "50", "-b", "1024", "-o", str(out),
             shared.server.uri(shared.img64.path, host=host)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    bad = []
    for out, p in procs:
        _, err = p.communicate(timeout=70)
        got = out.read_bytes() if out.exists() else None
        if got is None or sha256(got) != want:
            bad.append(f"{p.args[-1]}: {None if got is None else len(got)} bytes; "
                       f"{err.decode(errors='replace')[-200:]}")
    elapsed = time.monotonic() - started
    assert not bad, f"{len(bad)} of {n} clients got a wrong body:\n" + "\n".join(bad[:10])
    assert elapsed < 60, f"200 concurrent 64 KiB fetches took {elapsed:.1f} s"
    assert shared.server.alive()


# ---------------------------------------------------------------------------
# 11. A transfer lasting longer than libcoap's 93-second block state
# ---------------------------------------------------------------------------


def test_slow_transfer_over_120_seconds(own_release, server):
    block, szx, nblocks, duration = 1024, 6, 130, 125.0
    size = (nblocks - 1) * block + 700
    rel = own_release(size)
    srv = server(rel.repo)
    data = rel.first.data
    start = {}

    def pace(num):  # block num is asked for at start + num * step
        return start["t"] + num * duration / (nblocks - 1) - time.monotonic()

    async def body():
        c = await Client.create()
        try:
            start["t"] = time.monotonic()
            blocks = await c.fetch_blocks(base_uri(srv), rel.first.path, szx, pace=pace, timeout=30)
            return blocks, time.monotonic() - start["t"]
        finally:
            await c.close()

    blocks, elapsed = aio(body())
    assert elapsed >= 120, f"the transfer took only {elapsed:.1f} s"
    assert [b[0] for b in blocks] == list(range(nblocks)), "blocks out of order / restarted"
    etags = [b[1] for b in blocks]
    changed = [i for i in range(1, nblocks) if etags[i] != etags[0]]
    hexes = ["none" if e is None else e.hex() for e in etags]
    assert not changed, (
        f"ETag changed from block {changed[0]} on (about {changed[0] * duration / (nblocks - 1):.0f} s "
        f"into the transfer; {len(changed)} of {nblocks} blocks differ): {hexes[0]} -> "
        f"{hexes[changed[0]]}; per block: {' '.join(f'{i}:{h[:6]}' for i, h in enumerate(hexes))}\n"
        + srv.describe())
    assert etags[0] == content_etag(data)
    assert blocks[0][3] == size, f"Size2 on block 0: {blocks[0][3]}"
    assembled = b"".join(b[2] for b in blocks)
    assert sha256(assembled) == sha256(data)
    assert srv.alive()


def test_resumed_transfer_blocks_carry_the_same_etag(shared):
    """What the server sends when it has no transfer state for a block
    (libcoap dropped it after ~93 s, or a device resumes at block N after a
    reboot, SPEC §6): block N from a fresh client endpoint must carry the
    same content ETag as block 0, or ETag-checking clients see a changed
    resource."""
    base = base_uri(shared.server)
    data = shared.big.data

    async def one_block(num, szx=6):
        c = await Client.create()  # a new socket: a new session on the server
        try:
            return await c.request(base, shared.big.path, block=(num, False, szx))
        finally:
            await c.close()

    async def body():
        return [(num, await one_block(num)) for num in (0, 1, 7, 150, (len(data) - 1) // 1024)]

    bad = []
    for num, r in aio(body()):
        assert r.code == Code.CONTENT and r.payload == data[num * 1024:(num + 1) * 1024], f"block {num}"
        if r.opt.etag != content_etag(data):
            bad.append(f"block {num}: ETag {None if r.opt.etag is None else r.opt.etag.hex()}")
    assert not bad, (f"blocks asked for without prior transfer state, expected ETag "
                     f"{content_etag(data).hex()}: " + "; ".join(bad))


# ---------------------------------------------------------------------------
# 12. Start-up errors and shutdown
# ---------------------------------------------------------------------------


def test_sigint_stops_within_two_seconds(own_release, server, tmp_path):
    rel = own_release(50_000)
    srv = server(rel.repo)
    # an observer and a half-done transfer are active when the signal comes
    observer = subprocess.Popen([LIBCOAP_CLIENT, "-s", "30", "-B", "40",
                                 srv.uri(f"{model_path()}/manifest.cbor")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async def half():
            c = await Client.create()
            try:
                for num in range(10):
                    r = await c.request(base_uri(srv), rel.first.path, block=(num, False, 4))
                    assert r.code == Code.CONTENT
            finally:
                await c.close()

        aio(half())
        time.sleep(0.5)
        t0 = time.monotonic()
        rc = srv.stop(signal.SIGINT, timeout=2.0)
        elapsed = time.monotonic() - t0
    finally:
        observer.terminate()
        observer.wait(5)
    assert rc == 0 and elapsed <= 2.0, f"SIGINT: exit {rc} after {elapsed:.2f} s\n{srv.describe()}"
    srv.assert_clean_exit()


def run_serve_expecting_exit(bin_dir, *args, timeout=8):
    proc = subprocess.Popen([str(bin_dir / SERVER), "serve", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"serve {' '.join(map(str, args))} kept running (should have refused "
                             f"to start)\n{err}")
    return proc.returncode, out + err


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_repo_is_usage_error(bin_dir, tmp_path, kind):
    repo = tmp_path / "no-such-repo"
    if kind == "file":
        repo = tmp_path / "a-file"
        repo.write_text("not a folder")
    rc, output = run_serve_expecting_exit(bin_dir, "--repo", repo, "--listen",
                                          f"127.0.0.1:{free_udp_port()}")
    assert rc == 2, f"--repo {repo}: exit {rc}\n{output}"
    assert str(repo) in output, f"the message does not name {repo}:\n{output}"


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:notaport",
                                    "127.0.0.1:70000", "[::1:5683"])
def test_bad_listen_is_usage_error(bin_dir, tmp_path, listen):
    repo = tmp_path / "repo"
    repo.mkdir()
    rc, output = run_serve_expecting_exit(bin_dir, "--repo", repo, "--listen", listen)
    assert rc == 2, f"--listen {listen}: exit {rc}\n{output}"
    assert output.strip(), "no message"
