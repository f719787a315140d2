#!/usr/bin/env bash
# Idempotent install of the wasm toolchain of aemp-rs (see the project's
# toolchain notes): the wasm32 target, wasm-pack 0.15.1, wasm-bindgen-cli at
# exactly the wasm-bindgen version of Cargo.lock, wasm-opt from npm
# binaryen@132 into .tools/ (NOT Debian's binaryen 108, whose output crashes
# at load), and Debian chromium + chromium-driver for the headless browser
# tests. Every step is skipped when the exact version is already present.
#
# Usage: scripts/setup-wasm.sh [--no-browser]
# Afterwards put wasm-opt on PATH:  export PATH="$PWD/.tools/node_modules/.bin:$PATH"
# (this script prints that line; `source`-ing it is not needed).
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_PACK_VERSION=0.15.1
BINARYEN_VERSION=132.0.0
want_browser=1
[[ "${1:-}" == "--no-browser" ]] && want_browser=0

start=$(date +%s)
say() { echo "== setup-wasm [$(($(date +%s) - start))s] $*"; }

if [[ -n "${CARGO_INSTALL_ROOT:-}" ]]; then
    export PATH="$CARGO_INSTALL_ROOT/bin:$PATH"
fi

# --- rustup target -----------------------------------------------------------
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "wasm32-unknown-unknown target: present"
else
    say "wasm32-unknown-unknown target: installing"
    rustup target add wasm32-unknown-unknown
fi

# --- wasm-pack ---------------------------------------------------------------
have_wp=$(wasm-pack --version 2>/dev/null | awk '{print $2}' || true)
if [[ "$have_wp" == "$WASM_PACK_VERSION" ]]; then
    say "wasm-pack $WASM_PACK_VERSION: present"
else
    say "wasm-pack $WASM_PACK_VERSION: installing (was: ${have_wp:-none}; ~2 min)"
    cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked
fi

# --- wasm-bindgen-cli (must equal the crate version in Cargo.lock) ------------
WB=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p' | head -n1)
if [[ -z "$WB" ]]; then
    # Not locked yet: take the exact pin from the workspace Cargo.toml.
    WB=$(sed -n 's/^wasm-bindgen *= *"=\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
fi
[[ -n "$WB" ]] || { echo "setup-wasm: cannot find the wasm-bindgen version" >&2; exit 1; }
have_wb=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
have_wbr=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}' || true)
if [[ "$have_wb" == "$WB" && "$have_wbr" == "$WB" ]]; then
    say "wasm-bindgen-cli $WB: present"
else
    say "wasm-bindgen-cli $WB: installing (was: ${have_wb:-none}; ~3 min)"
    # --locked can fail on this registry mirror (missing brand-new deps);
    # fall back to a plain resolve.
    cargo install wasm-bindgen-cli --version "$WB" --locked \
        || cargo install wasm-bindgen-cli --version "$WB"
fi

# --- wasm-opt from npm binaryen ----------------------------------------------
have_wo=$(.tools/node_modules/.bin/wasm-opt --version 2>/dev/null | awk '{print $3}' || true)
if [[ "$have_wo" == "${BINARYEN_VERSION%%.*}" ]]; then
    say "wasm-opt ${BINARYEN_VERSION%%.*} (.tools/): present"
else
    say "wasm-opt: installing npm binaryen@$BINARYEN_VERSION into .tools/ (was: ${have_wo:-none})"
    mkdir -p .tools
    npm install --prefix .tools --no-audit --no-fund --no-save "binaryen@$BINARYEN_VERSION"
fi
if command -v wasm-opt >/dev/null && [[ "$(command -v wasm-opt)" != "$PWD/.tools/"* ]]; then
    other=$(wasm-opt --version 2>/dev/null || true)
    case "$other" in
        *"version ${BINARYEN_VERSION%%.*}"*) ;;
        *) say "WARNING: another wasm-opt ($(command -v wasm-opt): $other) is on PATH;" \
               "put .tools/node_modules/.bin first (Debian's binaryen 108 breaks the output)" ;;
    esac
fi

# --- chromium + chromedriver (headless browser tests) -------------------------
if [[ $want_browser == 1 ]]; then
    if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
        say "chromium + chromedriver: present"
    elif command -v apt-get >/dev/null; then
        say "chromium + chromedriver: installing via apt (~45 s)"
        sudo_cmd=()
        [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y chromium chromium-driver
    else
        say "chromium + chromedriver: missing and no apt-get; browser tests will not run"
    fi
fi

say "done. Use: export PATH=\"$PWD/.tools/node_modules/.bin:\$PATH\""
