"""Self-checks of the test kit's own encoders and parsers (Tests/support),
which the other tests trust: the hand-written CoAP encoder/decoder, the
relay-counter reader and the netem arguments. (The strict CBOR reader's
check is in test_publish_interop.py, next to its use.)"""

from __future__ import annotations

import hashlib
import socket

import pytest

from support import coap
from support.files import content_etag
from support.netns import netem_args, relay_stats
from support.ports import free_udp_port


def test_coap_encoding_round_trip():
    """Option deltas and lengths of 0..12, 13..268 (one extra byte) and 269+
    (two extra bytes), a payload, and RFC 7252 §3's fixed header bytes."""
    options = [(coap.URI_PATH, b"a" * 12), (coap.URI_PATH, b"b" * 13), (coap.BLOCK2, coap.block2(5, 6, more=True)),
               (300, b"c" * 269), (2049, b"")]
    data = coap.encode(coap.CON, coap.GET, 0x1234, b"\x01\x02", options, b"body")
    assert data[:6] == bytes([0x42, 0x01, 0x12, 0x34, 0x01, 0x02])
    assert data[6:8] == bytes([0xBC, 0x61])  # delta 11, length 12, then the value
    message = coap.decode(data)
    assert (message.mtype, message.code, message.mid, message.token) == (coap.CON, 1, 0x1234, b"\x01\x02")
    assert message.options == options and message.payload == b"body"
    assert message.option(coap.URI_PATH) == b"b" * 13 and message.option(coap.ETAG) is None
    assert coap.block2(5, 6, more=True) == bytes([0x5E]) and coap.block2(0, 0) == b""
    assert coap.uint(0x1FFFF) == b"\x01\xff\xff"
    assert coap.code_text(0x45) == "2.05" and coap.code_text(0x84) == "4.04"


@pytest.mark.parametrize("data", [b"", b"\x40\x01\x00", b"\x80\x01\x00\x00", b"\x49\x01\x00\x00",
                                  b"\x40\x01\x00\x00\xf1\x00"],
                         ids=["empty", "short-header", "version-2", "token-length-9", "reserved-nibble"])
def test_coap_decoder_refuses_malformed_messages(data):
    with pytest.raises(ValueError):
        coap.decode(data)


def test_coap_request_to_nobody_is_none():
    port = free_udp_port()
    assert coap.request("127.0.0.1", port, ".well-known/core", timeout=0.3) is None
    assert coap.probe("127.0.0.1", port, timeout=0.3) is None


def test_free_port_on_both_loopbacks_binds_on_both():
    port = free_udp_port("both")
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((host, port))


def test_relay_stats_reads_the_last_counters_line():
    log = ('relay 10.78.1.1:5690 -> 10.78.1.1:5683 seed 7 up {"loss": 0.1}\n'
           'relay stats {"up": {"dropped": 1}}\nnoise\nrelay stats {"up": {"dropped": 3}, "seed": 7}\n')
    assert relay_stats(log) == {"up": {"dropped": 3}, "seed": 7}
    assert relay_stats("relay started\n") is None


def test_netem_arguments():
    assert netem_args(0.05, 0.1, 0.05, 0.05) == ["loss", "5%", "delay", "100ms", "duplicate", "5%", "reorder", "5%"]
    assert netem_args(0.0, 0.0, 0.0, 0.05) == ["delay", "1ms", "reorder", "5%"]  # something to jump ahead of
    assert netem_args(0.0, 0.0) == ["delay", "0ms"]


def test_content_etag_drops_leading_zero_bytes():
    """sha256[:8] as a number (libcoap's encoding): no leading zero bytes."""
    data = next(d for d in (str(i).encode() for i in range(100_000)) if hashlib.sha256(d).digest()[0] == 0)
    digest = hashlib.sha256(data).digest()
    assert content_etag(data) == digest[:8].lstrip(b"\x00") and len(content_etag(data)) < 8
    assert content_etag(b"x") == hashlib.sha256(b"x").digest()[:8]
