#!/usr/bin/env bash
# The main job end to end on one machine, on an embedded default release:
# create a signing key, publish a demo release into a repository folder,
# and verify it offline as a device would.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
DEMO=${DEMO:-demo}

rm -rf "$DEMO"
mkdir -p "$DEMO/images"
# The embedded default: a 256 KiB demo image with a recognisable pattern.
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) % 256 for i in range(262144)))' > "$DEMO/images/firmware.bin"

echo "== keygen"
"$BIN/coap-fw-server" keygen --alg ES256 --out "$DEMO/keys"
echo "== publish"
"$BIN/coap-fw-server" publish --repo "$DEMO/repo" --key "$DEMO/keys/private.pem" \
    --manufacturer example.com --model c7960 --version 1.0.0 --image "$DEMO/images/firmware.bin"
M="$DEMO/repo/.well-known/firmware/example.com/c7960"
echo "== verify (COSE_Sign1)"
"$BIN/coap-fw-client" verify --trust "$DEMO/keys/public.pem" "$M/manifest.cbor" --image "$DEMO/images/firmware.bin"
echo "== verify (JWS)"
"$BIN/coap-fw-client" verify --trust "$DEMO/keys/public.pem" "$M/manifest.json" --image "$M/1.0.0/firmware.bin"
echo "== demo done: repository in $DEMO/repo"
