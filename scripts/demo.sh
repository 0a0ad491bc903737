#!/usr/bin/env bash
# The main job, end to end on 127.0.0.1: builds the tools in release mode, then
#   1. webscaler: `webscaler run` (embedded HAProxy, local backends, 5-s ticks, a 20-s
#      scale-down window) under the lab report's load profile (its listing 1.2) played 6.67x
#      faster by `lbbench profile` (3 minutes); its CSV, the lab report's "Scaling of servers"
#      chart (its figure 1.4) as SVG, and a summary;
#   2. diskstats: samples every 0.1 s during a 64 MiB write, their report and plot;
#   3. lbbench: the HAProxy-vs-Pound(-vs-nginx) lab, reduced (`lbbench lab --quick`).
# Needs only a fresh Debian machine with the package registries (scripts/setup.sh installs
# the rest). Outputs go to ${DEMO_OUT:-demo-out/}. Everything it starts is stopped when it
# ends, fails or is interrupted; a step that fails stops the demo with its error.
set -euo pipefail
cd "$(dirname "$0")/.."

demo_start=$(date +%s)
step() { printf '\n==> [%3ds] %s\n' "$(( $(date +%s) - demo_start ))" "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# What the demo started, stopped by PID on exit, error or Ctrl-C.
WS_PID=""        # webscaler run
WS_DOWN=""       # its state directory, for `webscaler down` (its HAProxy and backends outlive it)
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$WS_PID" ] && kill -0 "$WS_PID" 2>/dev/null; then
    echo "demo: stopping webscaler run (pid $WS_PID)" >&2
    kill -TERM "$WS_PID" 2>/dev/null || true
    # It finishes its tick and exits.
    for _ in $(seq 1 300); do kill -0 "$WS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$WS_PID" 2>/dev/null || true
    wait "$WS_PID" 2>/dev/null || true
  fi
  if [ -n "$WS_DOWN" ]; then
    "$BIN/webscaler" down --state-dir "$WS_DOWN" >&2 || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "setup (system packages)"
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/setup.sh
else
  sudo -n bash scripts/setup.sh
fi

step "cargo build --release"
build_start=$(date +%s)
cargo build --release --workspace
build_secs=$(( $(date +%s) - build_start ))
BIN=$PWD/target/release
OUT=${DEMO_OUT:-$PWD/demo-out}
mkdir -p "$OUT"

for tool in webscaler lbbench diskstats; do
  step "$tool --version"
  "$BIN/$tool" --version
done

# --- webscaler ----------------------------------------------------------------------------
WS="$OUT/webscaler"
WS_STATE="$WS/state"
CSV="$WS/webscaler.csv"
SPEED=6.67
mkdir -p "$WS"
WS_ARGS=(--provider local --state-dir "$WS_STATE" --max-backends 13)
free_port() {
  local p
  for p in $(seq 18080 18180); do
    if [ -z "$(ss -Hltn "sport = :$p")" ]; then echo "$p"; return 0; fi
  done
  die "no free port in 18080-18180"
}

step "webscaler run (embedded HAProxy, local backends, every 5 s, scale-down window 20 s)"
# What an interrupted demo may have left: its HAProxy and backends outlive `webscaler run`.
"$BIN/webscaler" down --state-dir "$WS_STATE"
WS_DOWN=$WS_STATE
PORT=$(free_port)
rm -f "$CSV" "$WS/figure.svg" "$WS/profile.json" "$WS/run.log"
"$BIN/webscaler" run "${WS_ARGS[@]}" --frontend "127.0.0.1:$PORT" --interval 5s \
  --scale-down-window 20s -o "$CSV" 2>"$WS/run.log" &
WS_PID=$!
# Ready when the two minimum backends take traffic (the last tick saw them) and the frontend
# answers through them.
ready=""
for _ in $(seq 1 600); do
  kill -0 "$WS_PID" 2>/dev/null || { cat "$WS/run.log" >&2; die "webscaler run exited"; }
  if jq -e '.last.haactive >= 2' "$WS_STATE/status.json" >/dev/null 2>&1 &&
     [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" = 200 ]; then
    ready=1; break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { tail -n 20 "$WS/run.log" >&2; die "the frontend 127.0.0.1:$PORT did not answer in 60 s"; }
echo "frontend http://127.0.0.1:$PORT/ answers; log: $WS/run.log"

step "lbbench profile: the lab report's load (benches-data/seed-profile.toml) ${SPEED}x faster"
profile_start=$(date +%s.%N)
"$BIN/lbbench" profile benches-data/seed-profile.toml --server 127.0.0.1 --port "$PORT" \
  --speed "$SPEED" --json >"$WS/profile.json"
# Let the tick after the last stage land in the CSV, then stop.
sleep 6
kill -TERM "$WS_PID"
ws_status=0
wait "$WS_PID" || ws_status=$?
WS_PID=""
[ "$ws_status" -eq 0 ] || { tail -n 20 "$WS/run.log" >&2; die "webscaler run exited with status $ws_status"; }
tail -n 3 "$WS/run.log"
# The explicit teardown: the embedded HAProxy stopped, the local backends deleted.
"$BIN/webscaler" down --state-dir "$WS_STATE"
WS_DOWN=""

step "webscaler plot: the lab report's "Scaling of servers" chart (its figure 1.4)"
"$BIN/webscaler" plot "$CSV" -o "$WS/figure.svg"

# The summary. CSV columns: 1 diffpt, 2 haactive, 3 active, 4 epoch, 5 acu, 6 date, 7 diff,
# 8 needed, 9 pending, 10 stopped, 11 action, 12 rate.
min_servers=2
peak_rate=$(awk -F, 'NR > 1 && $12 != "" && $12 + 0 > m { m = $12 + 0 } END { printf "%.1f", m }' "$CSV")
peak_backends=$(awk -F, 'NR > 1 && $2 + 0 > m { m = $2 + 0 } END { print m + 0 }' "$CSV")
errors=$(jq '.errors' "$WS/profile.json")
status_5xx=$(jq '.status_5xx' "$WS/profile.json")
# The first load step that needs more than the minimum servers (threshold 10 req/s): the
# first stage start at which the running stages add up to more than 10 x min req/s.
step_at=$(jq --argjson need "$((10 * min_servers))" '
  [.stages as $s | $s[] | (.started_s // .start_s) as $t
   | { t: $t, rate: ([$s[] | select((.started_s // .start_s) <= $t
                                     and (.started_s // .start_s) + .duration_s > $t) | .rate] | add) }]
  | map(select(.rate > $need)) | (min_by(.t) | .t) // empty' "$WS/profile.json")
[ -n "$step_at" ] || die "the profile never needs more than $min_servers servers"
step_wall=$(awk -v a="$profile_start" -v b="$step_at" 'BEGIN { printf "%.3f", a + b }')
# The first backend made ready in HAProxy (it takes traffic from then on) after the profile
# started: the log line of its tick, `<date> webscaler: tick N: ...; node-3 ready, ...`.
first_ready=$(awk -v t0="$(date -d "@${profile_start%.*}" +%Y-%m-%dT%H:%M:%S)" \
  '$1 >= t0 && / node-[0-9]+ ready/ { print $1; exit }' "$WS/run.log")
[ -n "$first_ready" ] || die "no backend was added (see $WS/run.log)"
first_wall=$(date -d "$first_ready" +%s.%N)
reaction=$(awk -v a="$first_wall" -v b="$step_wall" 'BEGIN { printf "%.1f", a - b }')
rows=$(($(wc -l <"$CSV") - 1))
cat <<SUMMARY

webscaler demo summary
  CSV (one row per tick):  $CSV ($rows ticks)
  figure 1.4 (SVG):        $WS/figure.svg
  load profile results:    $WS/profile.json
  webscaler log:           $WS/run.log
  peak request rate:       $peak_rate req/s
  peak backends in HAProxy: $peak_backends (threshold 10 req/s per server, quota 13)
  httperf errors:          $errors (and $status_5xx 5xx replies)
  first load step needing more than $min_servers servers: $(printf '%.1f' "$step_at") s into the profile
  first added backend taking traffic: ${reaction} s after that step (measure at a 5-s tick,
                           create, add to HAProxy with checks, ready at the next tick)
SUMMARY

step "diskstats: samples 0.1 s apart while 64 MiB are written, then report and plot"
DS="$OUT/diskstats"
bash scripts/demo-diskstats.sh "$BIN" "$DS"

step "lbbench: the lab report's HAProxy-vs-Pound comparison, with nginx, reduced (lbbench lab --quick, about 1.5 min)"
LAB="$OUT/lab-quick"
rm -rf "$LAB"   # a fresh run each time (the same command would otherwise resume the old one)
"$BIN/lbbench" lab --quick -o "$LAB"
echo "lab report: $LAB/report.html (CSV files, CPU files and raw httperf outputs next to it)"

step "done in $(( $(date +%s) - demo_start )) s (the build took ${build_secs} s): outputs are in $OUT"
