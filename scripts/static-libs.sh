#!/usr/bin/env bash
# scripts/static-libs.sh DIR: a folder holding only the static archives that
# `make release` links into the binaries (libcoap-3-openssl, libssl, libcrypto,
# libstdc++). The linker looks for -lNAME in each -L folder in turn, shared
# library first; DIR comes before the system folders and has no .so, so these
# four are linked statically and every other library stays shared.
# Why: a client linked this way maps only the parts of them it uses (issue #11,
# docs/benchmarks.md "Client memory").
set -euo pipefail
dir=${1:?usage: static-libs.sh DIR}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
mkdir -p "$dir"
for lib in libcoap-3-openssl.a libssl.a libcrypto.a; do
    [ -f "/usr/lib/$multiarch/$lib" ] || { echo "static-libs: /usr/lib/$multiarch/$lib is missing (apt-get install libcoap3-dev libssl-dev)" >&2; exit 1; }
    ln -sf "/usr/lib/$multiarch/$lib" "$dir/$lib"
done
stdcxx=$(clang -print-file-name=libstdc++.a)
[ -f "$stdcxx" ] || { echo "static-libs: libstdc++.a not found (apt-get install libstdc++-12-dev)" >&2; exit 1; }
ln -sf "$stdcxx" "$dir/libstdc++.a"
