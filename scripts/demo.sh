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

step "diskstats: 10 samples 0.2 s apart while 64 MiB are written, then report and plot"
DS="$OUT/diskstats"
mkdir -p "$DS"
rm -f "$DS/mon_diskstats.csv"
"$BIN/diskstats" -l 0.2 -n 10 -o "$DS" &
ds_pid=$!
dd if=/dev/zero of="$DS/io.tmp" bs=1M count=64 conv=fsync status=none
wait "$ds_pid"
rm -f "$DS/io.tmp"
"$BIN/diskstats" report "$DS/mon_diskstats.csv"
"$BIN/diskstats" report --csv "$DS/mon_diskstats.csv" >"$DS/report.csv"
"$BIN/diskstats" plot "$DS/mon_diskstats.csv" -o "$DS/diskstats.svg"

step "lbbench: the lab report's HAProxy-vs-Pound comparison, with nginx, reduced (lbbench lab --quick, about 1.5 min)"
LAB="$OUT/lab-quick"
rm -rf "$LAB"   # a fresh run each time (the same command would otherwise resume the old one)
"$BIN/lbbench" lab --quick -o "$LAB"
echo "lab report: $LAB/report.html (CSV files, CPU files and raw httperf outputs next to it)"

step "done: outputs are in $OUT"
