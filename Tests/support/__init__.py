"""coap-fw's Python test kit: everything the interop tests (Tests/interop),
the fault matrix (Tests/faults) and the benchmarks (bench/) share.

It is imported as the package ``support``, with ``Tests`` on the path once:
pytest's ``pythonpath`` (Tests/interop/pytest.ini) and ``PYTHONPATH`` in the
Makefile. A script run by hand needs the same: ``PYTHONPATH=Tests python3 ...``.

    paths             repository layout, binaries, SPEC §4 names and URIs
    files             digests, random images, content ETags, tree snapshots
    ports             free UDP ports
    procs             the process wrapper (log file, clean-exit check), the
                      crash markers, waiting, /proc memory figures
    servers           a group of started processes: our server, aiocoap's
                      file server, the malicious server, the peers' file
                      servers, anything else
    coap              the one hand-written CoAP message encoder/decoder, probes
    cli               coap-fw-server / coap-fw-client wrappers, libcoap's client
    cbor              a strict CBOR reader
    envelopes         COSE_Sign1 and JWS readers, base64url, kids
    netns             network-namespace pairs, netem, the user-space relay
                      (Tests/faults/relay.py) and its counters
    malicious_server  a script: a deliberately faulty CoAP firmware server
    peers             CoAPthon3 and txThings (two more CoAP stacks): a file
                      server script and one-GET clients
"""
