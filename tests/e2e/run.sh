#!/usr/bin/env bash
# The end-to-end chat test (tests/e2e/chat.mjs): installs playwright-core
# (pinned, into tests/e2e/node_modules) if missing, builds `aemp`,
# `web_peer` and web/pkg, and drives two headless Chromium tabs
# (/usr/bin/chromium). Screenshots: target/e2e/*.png.
# Needs the wasm toolchain on PATH (scripts/setup-wasm.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
PLAYWRIGHT_CORE_VERSION=1.65.1
have=$(node -p 'require("./tests/e2e/node_modules/playwright-core/package.json").version' 2>/dev/null || true)
if [[ "$have" != "$PLAYWRIGHT_CORE_VERSION" ]]; then
    npm install --prefix tests/e2e --no-audit --no-fund --no-save "playwright-core@$PLAYWRIGHT_CORE_VERSION"
fi
cargo build -q -p aemp --bin aemp --example web_peer
[[ -f web/pkg/aemp_web_bg.wasm ]] || wasm-pack build web --target web
node tests/e2e/chat.mjs target/debug/aemp target/debug/examples/web_peer
