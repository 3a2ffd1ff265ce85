#!/usr/bin/env python3
"""Fetch one resource with aiocoap's client, asking for a block size in the
first request (PEERS.md: aiocoap-client cannot), and write it to a file.

    python3 bench/aiocoap_fetch.py URI OUT [SZX]
"""
import asyncio
import sys

import aiocoap
from aiocoap.optiontypes import BlockOption


async def main(uri, out, szx):
    ctx = await aiocoap.Context.create_client_context()
    req = aiocoap.Message(code=aiocoap.GET, uri=uri)
    req.opt.block2 = BlockOption.BlockwiseTuple(0, False, szx)
    resp = await ctx.request(req).response
    if not resp.code.is_successful():
        print(f"{uri}: {resp.code}", file=sys.stderr)
        return 1
    with open(out, "wb") as f:
        f.write(resp.payload)
    await ctx.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 6)))
