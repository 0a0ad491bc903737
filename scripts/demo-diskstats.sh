#!/usr/bin/env bash
# The diskstats part of the demo: samples every 0.1 s while 64 MiB are written, then the
# report (text and CSV) and the plot, all in OUT_DIR.
#   usage: scripts/demo-diskstats.sh BIN_DIR OUT_DIR
# The write starts once the sampler has its first sample, and goes to the disk as it is
# made (O_DIRECT, or O_DSYNC where the file system has no O_DIRECT), so the samples taken
# during it show it; the sampler runs on for half a second after it.
set -euo pipefail
BIN=$1
DS=$2
mkdir -p "$DS"
rm -f "$DS/mon_diskstats.csv"
"$BIN/diskstats" -q -l 0.1 -o "$DS" &
DS_PID=$!
trap 'kill -TERM "$DS_PID" 2>/dev/null || true; rm -f "$DS/io.tmp"' EXIT
for _ in $(seq 1 200); do
  [ "$(wc -l <"$DS/mon_diskstats.csv" 2>/dev/null || echo 0)" -ge 2 ] && break
  sleep 0.05
done
dd if=/dev/zero of="$DS/io.tmp" bs=1M count=64 oflag=direct conv=fsync status=none 2>/dev/null \
  || dd if=/dev/zero of="$DS/io.tmp" bs=1M count=64 oflag=dsync status=none
sleep 0.5
kill -TERM "$DS_PID"
wait "$DS_PID"
trap - EXIT
rm -f "$DS/io.tmp"
"$BIN/diskstats" report "$DS/mon_diskstats.csv"
"$BIN/diskstats" report --csv "$DS/mon_diskstats.csv" >"$DS/report.csv"
"$BIN/diskstats" plot "$DS/mon_diskstats.csv" -o "$DS/diskstats.svg"
