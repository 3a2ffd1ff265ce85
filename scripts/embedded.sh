#!/bin/sh
# `make embedded`: compiles Sources/CoapFirmwareDevice (the whole folder,
# the device's one rule set) and the board glue Embedded/Device.swift with
# Embedded Swift for a Cortex-M4 (armv7em-none-none-eabi, -Osize, whole
# module), links them into a bare-metal image for qemu's mps2-an386 board
# that verifies a real HSS-LMS-signed manifest and image, and runs it.
# usage: scripts/embedded.sh BIN_DIR OUT_DIR   (BIN_DIR holds coap-fw-server)
set -eu
BIN=${1:-.build/debug}
OUT=${2:-.build-embedded}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
CPU="-mcpu=cortex-m4 -mthumb -mfloat-abi=soft"
NEWLIB=/usr/lib/arm-none-eabi/newlib/thumb/v7e-m/nofp

EMBEDDED="-enable-experimental-feature Embedded -target armv7em-none-none-eabi -Osize -wmo -parse-as-library
    -module-name CoapFirmwareDevice -package-name coap_fw -Xfrontend -function-sections -Xcc -mfloat-abi=soft"

echo "== Embedded Swift: Sources/CoapFirmwareDevice + Embedded/Device.swift -> $OUT/core.o"
swiftc $EMBEDDED $(find "$ROOT/Sources/CoapFirmwareDevice" -name '*.swift' | sort) "$ROOT/Embedded/Device.swift" -c -o "$OUT/core.o"
arm-none-eabi-size "$OUT/core.o"

echo "== bare-metal image for qemu mps2-an386 (Cortex-M4)"
python3 "$ROOT/Embedded/qemu/make-fixture.py" "$BIN" "$OUT"
arm-none-eabi-gcc $CPU -Os -ffunction-sections -fdata-sections -I"$OUT" -c "$ROOT/Embedded/qemu/main.c" -o "$OUT/main.o"
arm-none-eabi-gcc $CPU -Os -c "$ROOT/Embedded/qemu/startup.c" -o "$OUT/startup.o"
arm-none-eabi-gcc $CPU --specs=rdimon.specs -nostartfiles -T "$ROOT/Embedded/qemu/link.ld" \
    -Wl,--gc-sections -Wl,--no-enum-size-warning -Wl,--no-warn-execstack -Wl,-Map="$OUT/device.map" \
    "$OUT/startup.o" "$OUT/main.o" "$OUT/core.o" "$NEWLIB/rdimon-crt0.o" -o "$OUT/device.elf"
echo "-- the whole image (core + test program + fixture data + newlib):"
arm-none-eabi-size "$OUT/device.elf"
echo "-- what the device core itself puts in flash and RAM (from the link map, after --gc-sections):"
python3 "$ROOT/Embedded/qemu/core-size.py" "$OUT/device.map" core.o "$OUT/core-size.txt"

echo "== run under qemu-system-arm -M mps2-an386 (semihosting)"
timeout 300 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$OUT/device.elf" | tee "$OUT/qemu.log"
grep -q DEVICE-CORE-OK "$OUT/qemu.log"

# The budgets of issues #6 and #14: the whole core, SUIT included, under
# 40 KiB of flash; its static RAM, one 1024-byte block buffer and the peak
# stack of HSS-LMS (H10/W4) verification, of the COSE manifest or of the SUIT
# envelope, whichever is deeper, under 8 KiB. The manifest buffers (the
# envelopes, here 2.7 KiB each) are the caller's and are reported apart.
read FLASH STATIC < "$OUT/core-size.txt"
STACK=$(sed -n 's/^manifest: .*peak stack \([0-9]*\) bytes/\1/p' "$OUT/qemu.log")
SUIT_STACK=$(sed -n 's/^SUIT envelope: .*peak stack \([0-9]*\) bytes/\1/p' "$OUT/qemu.log")
[ "$SUIT_STACK" -gt "$STACK" ] && STACK=$SUIT_STACK
RAM=$((STATIC + 1024 + STACK))
echo "== budget: flash $FLASH bytes (limit 40960); RAM $STATIC static + 1024 block + $STACK stack = $RAM bytes (limit 8192)"
[ "$FLASH" -le 40960 ] && [ "$RAM" -le 8192 ] || { echo "embedded: over budget" >&2; exit 1; }
