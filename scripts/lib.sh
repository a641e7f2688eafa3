# Shared helpers for scripts/*: idempotent installs of what the build and tests need.
# Nothing here downloads a prebuilt binary: the wasm tools are built from crates.io,
# the browser comes from Debian, the test driver from npm.

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# The wasm-bindgen version Cargo.lock pins; the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_toolchain() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local want have
  want=$(wasm_bindgen_version)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
  if [ "$have" != "$want" ]; then
    log "building wasm-bindgen-cli $want from crates.io (a few minutes, once)"
    # Not --locked: its lockfile pins a crate version the registry no longer serves.
    cargo install wasm-bindgen-cli --version "=$want"
  fi
}

# wasm-opt from npm's binaryen (a WebAssembly build of it; Debian's is too old).
# Optional: it shrinks the release bundle from ~2.8 MB to ~1.1 MB (~420 KB gzipped).
ensure_wasm_opt() {
  if [ ! -x .tools/node_modules/.bin/wasm-opt ]; then
    log "installing wasm-opt (npm binaryen) into .tools"
    npm install --prefix .tools --no-audit --no-fund --silent binaryen@132.0.0 \
      || log "wasm-opt unavailable; the bundle stays unoptimised"
  fi
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

ensure_e2e_deps() {
  if [ ! -d end2end/node_modules/playwright-core ]; then
    log "installing the browser-test driver (playwright-core, no browser download)"
    (cd end2end && npm ci --no-audit --no-fund --silent)
  fi
}
