#!/usr/bin/env python3
"""Sums what one input object contributes to each output section of a GNU
ld map file: the device core's own flash (text + rodata) and RAM (data, bss)
after --gc-sections, without newlib or the test program.

usage: core-size.py device.map core.o
"""
import re
import sys

def main() -> None:
    path, obj = sys.argv[1], sys.argv[2]
    totals = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    lines = open(path).read().split("\n")
    in_memory_map = False
    pending = None
    for line in lines:
        if line.startswith("Linker script and memory map"):
            in_memory_map = True
            continue
        if not in_memory_map or line.startswith("/DISCARD/"):
            continue
        # " .text.name  0xADDR  0xSIZE file" (possibly split over two lines)
        m = re.match(r"^ (\.\S+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)", line)
        if m is None:
            m1 = re.match(r"^ (\.\S+)$", line)
            if m1:
                pending = m1.group(1)
                continue
            m2 = re.match(r"^\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)", line)
            if m2 and pending:
                section, size, source = pending, int(m2.group(1), 16), m2.group(2)
                pending = None
            else:
                pending = None
                continue
        else:
            section, size, source = m.group(1), int(m.group(2), 16), m.group(3)
        if not source.endswith(obj):
            continue
        for kind in ("text", "rodata", "data", "bss"):
            if section.startswith("." + kind):
                totals[kind] += size
                break
    flash = totals["text"] + totals["rodata"] + totals["data"]
    ram = totals["data"] + totals["bss"]
    print(f"   text  rodata    data     bss  | flash = text+rodata+data, static RAM = data+bss")
    print(f"{totals['text']:7d} {totals['rodata']:7d} {totals['data']:7d} {totals['bss']:7d}  | flash {flash} bytes ({flash / 1024:.1f} KiB), static RAM {ram} bytes")
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write(f"{flash} {ram}\n")

if __name__ == "__main__":
    main()
