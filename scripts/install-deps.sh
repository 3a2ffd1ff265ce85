#!/usr/bin/env bash
# Installs what coap-fw needs on Debian bookworm, idempotently: the C
# libraries and peer tools from Debian, and the Python packages the
# interop tests and vector generator use. Run as root (CI is root).
set -euo pipefail

APT_PACKAGES="pkg-config libcoap3-dev libcoap3-bin libcbor-dev libssl-dev libstdc++-12-dev iproute2 python3 python3-pip time"
# `make embedded`: the bare-metal Cortex-M build of the device core and its qemu run.
APT_PACKAGES="$APT_PACKAGES gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
# pycose 1.1 breaks on cbor2 6 (tuples for tagged arrays): pin cbor2<6.
# pyhsslms: the independent HSS/LMS implementation of the interop tests and Vectors/lms.
# coapthon3, txthings (on Twisted): two more CoAP stacks as interop peers (Tests/support/peers.py).
PIP_PACKAGES="pytest pytest-xdist cbor2<6 pycose==1.1.0 cryptography aiocoap==0.4.17 pyhsslms==2.0.0"
PIP_PACKAGES="$PIP_PACKAGES coapthon3==1.0.2 txthings==0.3.0 twisted==26.10.0"

missing=""
for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: apt-get install$missing"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if ! python3 -c 'import pytest, xdist, cbor2, pycose, cryptography, aiocoap, pyhsslms, coapthon, txthings.coap, twisted; import importlib.metadata as m; assert int(m.version("cbor2").split(".")[0]) < 6' 2>/dev/null; then
    echo "install-deps: pip install $PIP_PACKAGES"
    python3 -m pip install -q --disable-pip-version-check $PIP_PACKAGES \
        || python3 -m pip install -q --disable-pip-version-check --break-system-packages $PIP_PACKAGES
fi

command -v swift >/dev/null || { echo "install-deps: swift (6.x) is not on PATH; install the Swift toolchain first" >&2; exit 1; }
