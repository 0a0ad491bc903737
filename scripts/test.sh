#!/usr/bin/env bash
# The project's one test command: installs what the tests need, then runs the format check,
# clippy, and every test of the workspace (unit, integration, CLI; the integration tests run
# the real HAProxy, Pound, nginx and httperf on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "setup (system packages)"
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/setup.sh
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo -n bash scripts/setup.sh
else
  echo "test: not root and no passwordless sudo: not running scripts/setup.sh;" \
       "tests that need haproxy, pound, nginx or httperf fail if those are missing" >&2
fi

# httperf needs many descriptors for the load tests.
ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace "$@"

printf '\n==> all checks passed in %ss\n' "$(( $(date +%s) - start ))"
