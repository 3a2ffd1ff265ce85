"""Free UDP ports."""

from __future__ import annotations

import socket


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that is free on ``host`` right now; ``host="both"`` asks for
    one that is free on 127.0.0.1 and on ::1 alike."""
    hosts = ["127.0.0.1", "::1"] if host == "both" else [host]
    for _ in range(50):
        socks = []
        try:
            port = 0
            for h in hosts:
                s = socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((h, port))
                port = s.getsockname()[1]
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no free UDP port found on {hosts}")
