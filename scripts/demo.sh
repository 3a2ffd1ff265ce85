#!/usr/bin/env bash
# The main job end to end on one machine, on an embedded default release:
# a manufacturer creates a key and publishes a release; a border router
# serves the repository over CoAP on loopback; a device discovers the
# server (through --resolve, as DNS would), verifies the signed manifest,
# downloads the image block by block and installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
DEMO=${DEMO:-demo}
PORT=${PORT:-56830}

rm -rf "$DEMO"
mkdir -p "$DEMO/images"
# The embedded default: a 512 KiB demo image with a recognisable pattern.
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) % 256 for i in range(524288)))' > "$DEMO/images/firmware.bin"

echo "== 1. manufacturer: keygen"
"$BIN/coap-fw-server" keygen --alg ES256 --out "$DEMO/keys"
echo "== 2. manufacturer: publish release 1.0.0"
"$BIN/coap-fw-server" publish --repo "$DEMO/repo" --key "$DEMO/keys/private.pem" \
    --manufacturer example.com --model c7960 --version 1.0.0 --image "$DEMO/images/firmware.bin"
M="$DEMO/repo/.well-known/firmware/example.com/c7960"
"$BIN/coap-fw-client" verify --trust "$DEMO/keys/public.pem" "$M/manifest.cbor" --image "$DEMO/images/firmware.bin"

echo "== 3. border router: serve the repository on coap://127.0.0.1:$PORT"
"$BIN/coap-fw-server" serve --repo "$DEMO/repo" --listen "127.0.0.1:$PORT" -v 2> "$DEMO/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    coap-client-notls -B 1 "coap://127.0.0.1:$PORT/.well-known/core" 2>/dev/null | grep -q firmware && break
    sleep 0.1
done

echo "== 4. device: discover _firmware.lan, verify, download, install"
"$BIN/coap-fw-client" update --trust "$DEMO/keys/public.pem" --manufacturer example.com --model c7960 \
    --state "$DEMO/device" --domain lan --resolve "_firmware.lan:127.0.0.1:$PORT" --json
"$BIN/coap-fw-client" status --state "$DEMO/device"
cmp "$DEMO/device/installed/firmware.bin" "$DEMO/images/firmware.bin"
echo "installed image matches the published one byte for byte"

echo "== 5. device: run again (nothing new)"
"$BIN/coap-fw-client" update --trust "$DEMO/keys/public.pem" --manufacturer example.com --model c7960 \
    --state "$DEMO/device" --domain lan --resolve "_firmware.lan:127.0.0.1:$PORT"
kill -TERM $SERVER
wait $SERVER || true
trap - EXIT
echo "== demo done: repository $DEMO/repo, device state $DEMO/device, server log $DEMO/server.log"
