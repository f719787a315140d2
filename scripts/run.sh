#!/usr/bin/env bash
# Runs a local seed node that also serves the browser pages (README's run
# command): builds web/pkg (the wasm-pack --target web output the pages
# load from /pkg/) when it is missing or older than its sources, then runs
# `aemp run` with the given arguments (none: a seed on 127.0.0.1:4040 —
# open http://127.0.0.1:4040/ for the chat, /net.html for the network view).
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=web/pkg/aemp_web_bg.wasm
if [[ ! -f $wasm || -n $(find web/src web/Cargo.toml node-core/src -newer "$wasm" -print -quit) ]]; then
    echo "run.sh: building web/pkg (wasm-pack build web --target web)" >&2
    bash scripts/setup-wasm.sh --no-browser >&2
    export PATH="$PWD/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
    wasm-pack build web --target web >&2
fi
exec cargo run --release -p aemp -- run "$@"
