#!/usr/bin/env bash
# The scaling policies compared offline: `webscaler simulate` (the controller of `webscaler
# run` on a simulated cloud, balancer and clock: 80-s boots, 5-s ticks, the seed's quota of
# 13) on the seed's trace (listing 1.7) and on the synthetic traces of benches-data/, with the
# seed's policy and with the default policy, side by side. Then it checks issue 9's target on
# the seed trace (at least 50 % less under-provisioning, at most 10 % more server-seconds,
# jitter about 0) and times a day-long trace.
#
#   scripts/bench-scaler.sh [extra simulate options for both policies, e.g. --boot-delay 40s]
#
# Needs jq (scripts/setup.sh installs it). Exit status 1 if the target is not met.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p webscaler
WS=$PWD/target/release/webscaler
DATA=benches-data
TRACES=(seed-trace trace-step trace-spike trace-noisy trace-ramp trace-dips trace-day)
KEYS=(accuracy_under accuracy_over timeshare_under timeshare_over jitter server_seconds actions underprovisioned_seconds)

sim() { # TRACE POLICY [options]: the metrics as JSON
  local trace=$1 policy=$2
  shift 2
  "$WS" simulate --trace "$DATA/$trace.csv" --policy "$policy" --json "$@" 2>/dev/null
}
change() { # OLD NEW: relative change, or the difference when OLD is 0
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == 0) { if (b == 0) print "±0"; else printf "%+.3f\n", b - a }
    else printf "%+.0f%%\n", 100 * (b / a - 1) }'
}

echo "# webscaler simulate: the seed's policy against the default policy"
echo
echo "80-s boots, 5-s ticks (the seed's policy decides every 60 s), quota 13, threshold 10 req/s."
echo "Demand = clamp(ceil(rate / 10), 2, 13); supply = servers taking traffic in the balancer."
[ $# -eq 0 ] || echo "Extra options for both: $*"
declare -A SEED DEF
for t in "${TRACES[@]}"; do
  SEED[$t]=$(sim "$t" seed "$@")
  DEF[$t]=$(sim "$t" default "$@")
  echo
  echo "## $t.csv"
  echo
  echo "| metric | seed | default | change |"
  echo "|---|---:|---:|---:|"
  for k in "${KEYS[@]}"; do
    a=$(jq ".$k" <<<"${SEED[$t]}")
    b=$(jq ".$k" <<<"${DEF[$t]}")
    case $k in
      server_seconds | actions | underprovisioned_seconds) fmt='%.0f' ;;
      *) fmt='%.3f' ;;
    esac
    if [ "$k" = jitter ]; then
      c=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%+.3f\n", b - a }')
    else
      c=$(change "$a" "$b")
    fi
    # shellcheck disable=SC2059 # the format is ours
    printf "| %s | $fmt | $fmt | %s |\n" "$k" "$a" "$b" "$c"
  done
done

echo
echo "## All traces"
echo
echo "| trace | accuracy_U seed → default | server-s seed → default | jitter/min seed → default | actions seed → default |"
echo "|---|---|---|---|---|"
for t in "${TRACES[@]}"; do
  s=${SEED[$t]} d=${DEF[$t]}
  printf '| %s | %.3f → %.3f (%s) | %.0f → %.0f (%s) | %+.3f → %+.3f | %d → %d |\n' "$t" \
    "$(jq .accuracy_under <<<"$s")" "$(jq .accuracy_under <<<"$d")" \
    "$(change "$(jq .accuracy_under <<<"$s")" "$(jq .accuracy_under <<<"$d")")" \
    "$(jq .server_seconds <<<"$s")" "$(jq .server_seconds <<<"$d")" \
    "$(change "$(jq .server_seconds <<<"$s")" "$(jq .server_seconds <<<"$d")")" \
    "$(jq .jitter <<<"$s")" "$(jq .jitter <<<"$d")" \
    "$(jq .actions <<<"$s")" "$(jq .actions <<<"$d")"
done

echo
echo "## Speed"
echo
best=""
for _ in 1 2 3 4 5; do
  start=$(date +%s%N)
  "$WS" simulate --trace "$DATA/trace-day.csv" --json >/dev/null 2>&1
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
done
ticks=$(( 86400 / 5 + 1 ))
echo "trace-day.csv (24 h, $ticks ticks of 5 s, default policy): the whole \`webscaler simulate\` process in $best ms (best of 5)"

echo
echo "## Target (issue 9) on the seed trace"
echo
s=${SEED[seed-trace]} d=${DEF[seed-trace]}
verdict=$(jq -rn --argjson s "$s" --argjson d "$d" '
  ($d.accuracy_under / $s.accuracy_under) as $u | ($d.server_seconds / $s.server_seconds) as $c
  | [ "accuracy_U \(($u - 1) * 100 | round)% (target ≤ -50%): \(if $u <= 0.5 then "met" else "NOT met" end)",
      "server-seconds \(($c - 1) * 100 | round | if . >= 0 then "+\(.)" else tostring end)% (target ≤ +10%): \(if $c <= 1.1 then "met" else "NOT met" end)",
      "jitter \($d.jitter) per minute (target about 0): \(if ($d.jitter | fabs) <= 0.05 then "met" else "NOT met" end)" ]
  | .[]')
echo "$verdict" | sed 's/^/- /'
! grep -q "NOT met" <<<"$verdict"
