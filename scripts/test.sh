#!/usr/bin/env bash
# The one command that checks and tests all of aemp-rs (README's test command,
# called by .ci/run). It installs what it needs first; every install step is
# idempotent and skipped when the exact tool is already present.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
start=$(date +%s)
step() { echo "== [$(($(date +%s) - start))s] $*"; }

step "toolchain: rustfmt, clippy, wasm32 target"
installed_components=$(rustup component list --installed 2>/dev/null || true)
grep -q '^rustfmt' <<<"$installed_components" || rustup component add rustfmt
grep -q '^clippy' <<<"$installed_components" || rustup component add clippy
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (workspace: unit, simulation, multi-process)"
cargo test --workspace

step "the sans-IO core builds for wasm32-unknown-unknown"
cargo build -p aemp-core --target wasm32-unknown-unknown

step "rustdoc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "wasm toolchain (wasm-pack, wasm-bindgen-cli, wasm-opt, chromium)"
bash scripts/setup-wasm.sh
export PATH="$PWD/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step "wasm-pack test --node web (kernel semantics through the JS API, in Node)"
wasm-pack test --node web

step "wasm-pack test --headless --chrome web (in headless Chromium, against a native seed)"
bash tests/e2e/browser-test.sh

step "wasm-pack build web --target web (the npm package)"
wasm-pack build web --target web

step "end-to-end chat: two headless Chromium tabs on two seeds (tests/e2e)"
bash tests/e2e/run.sh

step "all checks passed"
