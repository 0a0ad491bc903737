#!/usr/bin/env bash
# Benchmark: the CPU cost of `lbbench backend` (the lab report's perf.php) under httperf.
#
# Runs the release build of the backend on a free port on 127.0.0.1, drives it with httperf
# at RATE req/s of `/perf.php?sleep=SLEEP` for DURATION seconds (one request per connection,
# as in the lab), and reads the backend's utime+stime from /proc/PID/stat before and after.
# httperf sends `Connection: close`, so the server closes first and holds the TIME_WAIT
# entries; otherwise 40,000 connections a run to one port exhaust the client's ports when
# runs follow each other within a minute.
# Prints the backend's CPU as % of one core and as CPU-seconds per 1,000 requests, with
# httperf's own verdict (replies, errors, reply time) and the machine's load average, since
# other work on the machine skews the figure.
#
# Target: under 25% of one core at 2,000 req/s with sleep=0.2, so the backend is never what
# limits the lab.
#
# Usage: scripts/bench-backend.sh [--rate 2000] [--sleep 0.2] [--duration 20] [--threads N]
#                                 [--bin PATH]   (default: the release build, built first)
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=2000
SLEEP=0.2
DURATION=20
THREADS=
BIN=
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --sleep) SLEEP=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench-backend: unknown argument: $1" >&2; exit 2 ;;
  esac
done

die() { echo "bench-backend: $*" >&2; exit 1; }
command -v httperf >/dev/null || die "httperf is not installed (Debian package httperf; scripts/setup.sh installs it)"
[ -r /proc/self/stat ] || die "/proc is not mounted"

if [ -z "$BIN" ]; then
  cargo build --release --quiet -p lbbench --bin lbbench
  BIN=${CARGO_TARGET_DIR:-target}/release/lbbench
fi
[ -x "$BIN" ] || die "no lbbench binary at $BIN"

ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
WORK=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

args=(backend --port 0 --name bench --grace 2s)
[ -n "$THREADS" ] && args+=(--threads "$THREADS")
"$BIN" "${args[@]}" 2>"$WORK/backend.log" &
PID=$!

# Wait (with a deadline) for the "listening on 127.0.0.1:PORT" line.
PORT=
for _ in $(seq 1 200); do
  PORT=$(sed -nE 's/.*listening on 127\.0\.0\.1:([0-9]+)$/\1/p' "$WORK/backend.log")
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || die "the backend exited: $(cat "$WORK/backend.log")"
  sleep 0.05
done
[ -n "$PORT" ] || die "the backend did not report its port within 10 s"

# utime + stime (fields 14 and 15) of the whole process, in clock ticks. The command name
# (field 2) may contain spaces, so count the fields after the closing parenthesis.
cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
TCK=$(getconf CLK_TCK)
CONNS=$(( RATE * DURATION ))

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(cpu_ticks "$PID")
w0=$(date +%s.%N)
httperf --hog --server 127.0.0.1 --port "$PORT" --uri "/perf.php?sleep=$SLEEP&rounds=1" \
  --rate "$RATE" --num-conns "$CONNS" --num-calls 1 --timeout 5 --add-header 'Connection: close\n' >"$WORK/httperf.txt" 2>"$WORK/httperf.err" \
  || die "httperf failed: $(cat "$WORK/httperf.err")"
w1=$(date +%s.%N)
t1=$(cpu_ticks "$PID")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

replies=$(sed -nE 's/^Total: connections [0-9]+ requests [0-9]+ replies ([0-9]+) .*/\1/p' "$WORK/httperf.txt")
errors=$(sed -nE 's/^Errors: total ([0-9]+) .*/\1/p' "$WORK/httperf.txt")
reply_ms=$(sed -nE 's/^Reply time \[ms\]: response ([0-9.]+) .*/\1/p' "$WORK/httperf.txt")
rate_avg=$(sed -nE 's/^Reply rate \[replies\/s\]: min [0-9.]+ avg ([0-9.]+) .*/\1/p' "$WORK/httperf.txt")
[ -n "$replies" ] && [ -n "$errors" ] || die "cannot read httperf's report: $(head -c 2000 "$WORK/httperf.txt")"

case "$THREADS" in
  "") threads_label="1 (the default)" ;;
  0) threads_label="one per CPU ($(nproc))" ;;
  *) threads_label=$THREADS ;;
esac
awk -v t0="$t0" -v t1="$t1" -v tck="$TCK" -v w0="$w0" -v w1="$w1" -v replies="$replies" \
    -v errors="$errors" -v reply_ms="$reply_ms" -v rate_avg="$rate_avg" -v rate="$RATE" \
    -v sleep="$SLEEP" -v threads="$threads_label" -v cores="$(nproc)" \
    -v lb="$load_before" -v la="$load_after" 'BEGIN {
  cpu = (t1 - t0) / tck; wall = w1 - w0
  printf "backend: lbbench backend (release), threads: %s, machine: %d cores\n", threads, cores
  printf "load: %d req/s of /perf.php?sleep=%s for %.1f s (httperf): %d replies, %d errors, reply time %.1f ms, reply rate %.1f/s\n", rate, sleep, wall, replies, errors, reply_ms, rate_avg
  printf "load average before: %s, after: %s\n", lb, la
  printf "backend CPU: %.2f s = %.1f%% of one core\n", cpu, 100 * cpu / wall
  if (replies > 0) printf "backend CPU per 1,000 requests: %.4f CPU-seconds\n", cpu / (replies / 1000)
}'
