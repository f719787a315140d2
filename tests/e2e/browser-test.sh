#!/usr/bin/env bash
# The headless-Chromium suite of web/ (web/tests/browser.rs) against a real
# native seed: starts `aemp run` (global, known secret and web secret) and
# `web_peer test-peer` (a native node with ports for the test), passes the
# seed's WebSocket URL and web secret to the test at compile time
# (option_env!), runs `wasm-pack test --headless --chrome web`, prints the
# measured numbers, and stops both processes (trap).
# Needs the wasm toolchain on PATH (scripts/setup-wasm.sh).
# AEMP_E2E_PROFILE=release: optimised native binaries and wasm (for numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/e2e
mkdir -p "$out"
profile=${AEMP_E2E_PROFILE:-debug}
export PERL_ANYEVENT_MP_RC="$PWD/$out/no-such-rc"   # no rc file of the user's
flag=(); [[ $profile == release ]] && flag=(--release)
cargo build -q "${flag[@]}" -p aemp --bin aemp --example web_peer
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Waits (deadline 60 s) for a line matching $2 in file $1 and prints it.
wait_line() {
    for _ in $(seq 600); do
        if line=$(grep -m1 -E "$2" "$1"); then echo "$line"; return 0; fi
        sleep 0.1
    done
    echo "browser-test: no '$2' in $1 within 60 s" >&2; cat "$1" >&2; return 1
}

secret="bt-$RANDOM$RANDOM"
web_secret="bt-web-$RANDOM$RANDOM"
target/$profile/aemp run nodeid aemp-test-seed binds 127.0.0.1:0 secret "$secret" \
    web_secret "$web_secret" services '["AnyEvent::MP::Global::"]' \
    >"$out/bt-seed.out" 2>"$out/bt-seed.err" &
pids+=($!)
addr=$(wait_line "$out/bt-seed.out" '^listen tcp ' | sed 's/^listen tcp //')
target/$profile/examples/web_peer test-peer "$addr" "$secret" >"$out/bt-peer.out" 2>"$out/bt-peer.err" &
pids+=($!)
wait_line "$out/bt-peer.out" '^ready$' >/dev/null

export AEMP_TEST_SEED_WS="ws://$addr/" AEMP_TEST_WEB_SECRET="$web_secret"
echo "browser-test: seed $AEMP_TEST_SEED_WS, $(grep '^peer ' "$out/bt-peer.out")"
wasm-pack test "${flag[@]}" --headless --chrome web
grep '^report ' "$out/bt-peer.out" | sed "s/^report /browser-test ($profile): /" || {
    echo "browser-test: the native-seed test reported no numbers" >&2
    exit 1
}
