#!/usr/bin/env bash
# The overhead of diskstats, measured on this machine, next to what it cannot beat:
#
#   floor      the CPU time of just reading /proc/diskstats once, from a minimal C loop
#              (both ways: pread on a kept descriptor, as diskstats does, and open/read/close);
#   loop       diskstats -l 0 -n N (all devices, and one device): CPU time per sample;
#   one-shot   diskstats -d DEV (the cron mode): CPU time of a whole run, process start included;
#   seed       the lab report's Python tool (its diskstats.py, listing 3.7, ported to Python 3; only written into
#              the temporary directory, never part of the project), if python3 exists;
#   sadc       sysstat's collector for one sample, if installed;
#   static     with STATIC=1, the one-shot run of a statically linked build;
#   textfile   the loop with --prometheus FILE too (the textfile replaced every sample).
#
# CPU time is user + system of the measured process, from wait4(2)'s rusage (microsecond
# resolution); each figure is the median of several runs. Usage:
#   scripts/bench-diskstats.sh [SAMPLES]      (default 10000; RUNS, ONESHOTS, PY_N, PROM_N, STATIC=1)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-10000}
RUNS=${RUNS:-5}
ONESHOTS=${ONESHOTS:-200}
PY_N=${PY_N:-2000}
PROM_N=${PROM_N:-2000}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-diskstats.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

echo "building diskstats (release)..." >&2
cargo build --release -q -p diskstats
BIN=$PWD/target/release/diskstats

CC=${CC:-cc}
command -v "$CC" >/dev/null || { echo "bench-diskstats: needs a C compiler ($CC) for the floor loop" >&2; exit 1; }

# cputime CMD...: runs CMD, prints "user_us sys_us wall_us" of that process.
cat >"$TMP/cputime.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) { execvp(argv[1], argv + 1); perror(argv[1]); _exit(127); }
  int status; struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 1; }
  clock_gettime(CLOCK_MONOTONIC, &b);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "cputime: %s failed (status %d)\n", argv[1], status);
    return 1;
  }
  long u = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec;
  long s = ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
  long w = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
  printf("%ld %ld %ld\n", u, s, w);
  return 0;
}
EOF

# floor N MODE [BYTES FILE]: reads /proc/diskstats N times to end of file. MODE pread = one
# descriptor re-read from offset 0 (what diskstats does), open = open/read/close each time,
# append = pread and then one locked append of BYTES to FILE (flock, fstat, write, unlock:
# the least any tool can do that appends each sample safely beside cron runs).
cat >"$TMP/floor.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
static char buf[1 << 16], row[1 << 16];
int main(int argc, char **argv) {
  long n = atol(argv[1]);
  int keep = strcmp(argv[2], "open") != 0;
  int append = strcmp(argv[2], "append") == 0;
  long size = append ? atol(argv[3]) : 0;
  int out = -1;
  if (append) {
    if (size <= 0 || size > (long)sizeof row) { fprintf(stderr, "floor: bad size\n"); return 1; }
    memset(row, '0', size); row[size - 1] = '\n';
    out = open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) { perror(argv[4]); return 1; }
  }
  int fd = keep ? open("/proc/diskstats", O_RDONLY) : -1;
  long bytes = 0;
  struct stat st;
  for (long i = 0; i < n; i++) {
    if (!keep) fd = open("/proc/diskstats", O_RDONLY);
    if (fd < 0) { perror("/proc/diskstats"); return 1; }
    off_t off = 0; ssize_t r;
    while ((r = pread(fd, buf, sizeof buf, off)) > 0) off += r;
    if (r < 0) { perror("read"); return 1; }
    bytes += off;
    if (!keep) close(fd);
    if (append) {
      if (flock(out, LOCK_EX) || fstat(out, &st) || write(out, row, size) != size || flock(out, LOCK_UN)) {
        perror(argv[4]); return 1;
      }
    }
  }
  return bytes == 0;
}
EOF
"$CC" -O2 -o "$TMP/cputime" "$TMP/cputime.c"
"$CC" -O2 -o "$TMP/floor" "$TMP/floor.c"

# median of the CPU (user+sys) microseconds of RUNS runs of CMD...
median_cpu() {
  local runs=$1; shift
  for _ in $(seq "$runs"); do
    "$TMP/cputime" "$@" | awk '{print $1 + $2}'
  done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

per() { awk -v t="$1" -v n="$2" 'BEGIN {printf "%.2f", t / n}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

DEVICES=$(awk 'END {print NR}' /proc/diskstats)
# A real disk for the one-device figures: the first that is not loop, ram or zram.
DEV=$(awk '$3 !~ /^(loop|ram|zram)/ {print $3; exit}' /proc/diskstats)
DEV=${DEV:-$(awk '{print $3; exit}' /proc/diskstats)}

STATIC_BIN=""
if [ "${STATIC:-0}" = 1 ]; then
  # The same binary linked statically (no dynamic loader at start-up), for cron installs.
  echo "building a static diskstats..." >&2
  host=$(rustc -vV | awk '/^host:/ {print $2}')
  RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release -q -p diskstats --target "$host" --target-dir "$PWD/target/static"
  STATIC_BIN="$PWD/target/static/$host/release/diskstats"
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "measuring (N=$N samples, $RUNS rounds; $ONESHOTS one-shot runs)..." >&2
# The bytes diskstats appends per sample (all devices), for the read + append floor.
"$BIN" -q -l 0 -n 100 -o "$TMP/probe"
probe="$TMP/probe/mon_diskstats.csv"
sample_bytes=$(( ($(wc -c <"$probe") - $(head -1 "$probe" | wc -c)) / 100 ))

# The loops and their floors run interleaved, round after round, so that all of them see the
# same conditions on a shared machine; each figure is the median over the rounds.
cpu1() { "$TMP/cputime" "$@" | awk '{print $1 + $2}'; }
: >"$TMP/loops"
for _ in $(seq "$RUNS"); do
  rm -rf "$TMP/out-all" "$TMP/out-dev" "$TMP/append.out" "$TMP/out-prom"
  echo "pread $(cpu1 "$TMP/floor" "$N" pread)" >>"$TMP/loops"
  echo "open $(cpu1 "$TMP/floor" "$N" open)" >>"$TMP/loops"
  echo "append $(cpu1 "$TMP/floor" "$N" append "$sample_bytes" "$TMP/append.out")" >>"$TMP/loops"
  echo "all $(cpu1 "$BIN" -q -l 0 -n "$N" -o "$TMP/out-all")" >>"$TMP/loops"
  echo "dev $(cpu1 "$BIN" -q -l 0 -n "$N" -d "$DEV" -o "$TMP/out-dev")" >>"$TMP/loops"
  echo "prom_all $(cpu1 "$BIN" -q -l 0 -n "$PROM_N" -o "$TMP/out-prom" --prometheus "$TMP/out-prom/all.prom")" >>"$TMP/loops"
  echo "prom_dev $(cpu1 "$BIN" -q -l 0 -n "$PROM_N" -d "$DEV" -o "$TMP/out-prom" --prometheus "$TMP/out-prom/dev.prom")" >>"$TMP/loops"
done
rows_all=$(($(wc -l <"$TMP/out-all/mon_diskstats.csv") - 1))
[ "$rows_all" -eq $((N * DEVICES)) ] || { echo "bench-diskstats: expected $((N * DEVICES)) rows, found $rows_all" >&2; exit 1; }
med_of() { awk -v k="$1" '$1 == k {print $2}' "$TMP/loops" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
floor_pread=$(per "$(med_of pread)" "$N")
floor_open=$(per "$(med_of open)" "$N")
floor_append=$(per "$(med_of append)" "$N")
loop_all=$(per "$(med_of all)" "$N")
loop_dev=$(per "$(med_of dev)" "$N")
prom_all=$(per "$(med_of prom_all)" "$PROM_N")
prom_dev=$(per "$(med_of prom_dev)" "$PROM_N")
# One-shot runs, interleaved with /bin/true (the cost of starting any process at all).
: >"$TMP/once"
for _ in $(seq "$ONESHOTS"); do
  echo "true $(cpu1 /bin/true)" >>"$TMP/once"
  echo "dev $(cpu1 "$BIN" -d "$DEV" -o "$TMP/out-cron")" >>"$TMP/once"
  echo "all $(cpu1 "$BIN" -o "$TMP/out-cron")" >>"$TMP/once"
  if [ -n "$STATIC_BIN" ]; then
    echo "static $(cpu1 "$STATIC_BIN" -d "$DEV" -o "$TMP/out-static")" >>"$TMP/once"
  fi
done
once_of() { awk -v k="$1" '$1 == k {print $2}' "$TMP/once" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
oneshot=$(once_of dev)
oneshot_all=$(once_of all)
true_once=$(once_of true)
static_once=""
[ -n "$STATIC_BIN" ] && static_once=$(once_of static)
rows=$(($(wc -l <"$TMP/out-cron/mon_$DEV.csv") - 1))
[ "$rows" -eq "$ONESHOTS" ] || { echo "bench-diskstats: expected $ONESHOTS rows, found $rows" >&2; exit 1; }

seed_loop="" seed_once=""
if command -v python3 >/dev/null 2>&1; then
  # The lab report's tool (its `diskstats.py`, listing 3.7), ported to Python 3 as literally as
  # possible: print() and next() for Python 3, csv.writer instead of the listing's DictWriter (which
  # cannot write the lists it is given), the -o path it describes, and -n to stop the loop.
  cat >"$TMP/diskstats_seed.py" <<'EOF'
from datetime import datetime
import os, re, csv
import argparse
from time import sleep

DISKSTATS_PATH = '/proc/diskstats'
HEADERS = ['datetime', 'major_number', 'minor_number', 'device_name', 'read_completed_successfully',
           'reads_merged', 'sectors_read', 'time_spent_reading(ms)', 'writes_completed',
           'writes_merged', 'sectors_written', 'time_spent_writing(ms)', 'IO_currently_in_progress',
           'time_spent_doing_IO(ms)', 'weighted_time_spent_doing_IO']
lastread_timestamp = None

def read_diskstats():
    global lastread_timestamp
    devs = []
    with open(DISKSTATS_PATH, 'r') as f:
        for line in f.readlines():
            devs.append(dict(zip(HEADERS[1:], re.split(r'\s+', line.strip()))))
    lastread_timestamp = datetime.now()
    return devs

def find_device(data, device):
    return next(item for item in data if item['device_name'] == device)

def write_diskstats(data, device=None, path=""):
    csv_data = []
    if device:
        if len(device) > 1:
            filename = "{}mon_diskstats{}".format(path, "_".join(device))
            if not os.path.isfile(filename):
                csv_data = [HEADERS]
            data = [find_device(data, dev) for dev in device]
            for dev in data:
                tmp = [dev[h] for h in HEADERS[1:]]
                tmp.insert(0, lastread_timestamp.isoformat())
                csv_data.append(tmp)
        else:
            data = find_device(data, device[0])
            filename = "{}mon_{}".format(path, device[0].strip())
            if not os.path.isfile(filename):
                csv_data = [HEADERS]
            tmp = [data[h] for h in HEADERS[1:]]
            tmp.insert(0, lastread_timestamp.isoformat())
            csv_data.append(tmp)
    else:
        filename = "{}mon_diskstats".format(path)
        if not os.path.isfile(filename):
            csv_data = [HEADERS]
        for dev in data:
            tmp = [dev[h] for h in HEADERS[1:]]
            tmp.insert(0, lastread_timestamp.isoformat())
            csv_data.append(tmp)
    with open(filename, 'a') as f:
        csv.writer(f).writerows(csv_data)

def main():
    parser = argparse.ArgumentParser(description='Parser tool for /proc/diskstats')
    parser.add_argument('-l', '--loop', type=float, metavar='sleep')
    parser.add_argument('-d', '--device', metavar='name', nargs='+', default=None)
    parser.add_argument('-o', '--outdir', metavar='outdir', default="")
    parser.add_argument('-n', type=int, default=0)
    args = parser.parse_args()
    if args.loop is not None:
        for _ in range(args.n):
            print("Gathering data for {}".format(args.device))
            read_and_write = read_diskstats()
            write_diskstats(read_and_write, args.device, args.outdir)
            sleep(args.loop)
    else:
        write_diskstats(read_diskstats(), args.device, args.outdir)

if __name__ == '__main__':
    main()
EOF
  mkdir -p "$TMP/seed"
  # The loop's "Gathering data" lines go to /dev/null; printing them is part of its cost.
  seed_loop=$(per "$(for _ in 1 2 3; do "$TMP/cputime" sh -c 'exec python3 "$0" -l 0 -n "$1" -o "$2" >/dev/null' "$TMP/diskstats_seed.py" "$PY_N" "$TMP/seed/" | awk '{print $1 + $2}'; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" "$PY_N")
  seed_once=$(median_cpu 20 python3 "$TMP/diskstats_seed.py" -d "$DEV" -o "$TMP/seed/")
fi

sadc_once=""
SADC=$(command -v sadc || ls /usr/lib/sysstat/sadc /usr/libexec/sysstat/sadc 2>/dev/null | head -1 || true)
if [ -n "$SADC" ] && [ -x "$SADC" ]; then
  sadc_once=$(median_cpu 20 "$SADC" -S DISK 1 1 "$TMP/sadc.data")
fi

us() { awk -v v="$1" 'BEGIN {printf "%.1f", v}'; }
echo
echo "diskstats overhead on $(uname -srm), $(nproc) CPUs, $DEVICES lines in /proc/diskstats, one device = $DEV"
echo "load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CPU time = user + sys; per sample unless said otherwise; medians ($RUNS interleaved rounds of $N samples; $ONESHOTS one-shot runs)"
echo
printf '%-58s %12s %9s\n' "what" "CPU µs" "× floor"
printf '%-58s %12s %9s\n' "floor: pread /proc/diskstats to EOF, kept descriptor" "$floor_pread" "1.00"
printf '%-58s %12s %9s\n' "floor: open + read to EOF + close" "$floor_open" "$(ratio "$floor_open" "$floor_pread")"
printf '%-58s %12s %9s\n' "floor: pread + locked append of $sample_bytes bytes" "$floor_append" "$(ratio "$floor_append" "$floor_pread")"
printf '%-58s %12s %9s\n' "diskstats -l 0 -n $N (all devices)" "$loop_all" "$(ratio "$loop_all" "$floor_pread")"
printf '%-58s %12s %9s\n' "diskstats -l 0 -n $N -d $DEV" "$loop_dev" "$(ratio "$loop_dev" "$floor_pread")"
printf '%-58s %12s %9s\n' "diskstats -l 0 -n $PROM_N --prometheus FILE (all devices)" "$prom_all" "$(ratio "$prom_all" "$floor_pread")"
printf '%-58s %12s %9s\n' "diskstats -l 0 -n $PROM_N -d $DEV --prometheus FILE" "$prom_dev" "$(ratio "$prom_dev" "$floor_pread")"
printf '%-58s %12s\n' "diskstats -d $DEV (one-shot run, whole process)" "$(us "$oneshot")"
printf '%-58s %12s\n' "diskstats (one-shot run, all devices, whole process)" "$(us "$oneshot_all")"
[ -n "$static_once" ] && printf '%-58s %12s\n' "diskstats -d $DEV, static build (one-shot run)" "$(us "$static_once")"
printf '%-58s %12s\n' "/bin/true (one run: the cost of starting any process)" "$(us "$true_once")"
if [ -n "$seed_loop" ]; then
  printf '%-58s %12s %9s\n' "seed diskstats.py -l 0 (all devices), per sample" "$seed_loop" "$(ratio "$seed_loop" "$floor_pread")"
  printf '%-58s %12s\n' "seed diskstats.py -d $DEV (one-shot run, whole process)" "$(us "$seed_once")"
fi
[ -n "$sadc_once" ] && printf '%-58s %12s\n' "sadc -S DISK 1 1 (one sample, whole process)" "$(us "$sadc_once")"
echo
echo "targets:"
check() { if awk -v a="$2" -v b="$3" "BEGIN {exit !(a $4 b)}"; then echo "  ok    $1"; else echo "  MISS  $1"; fi; }
check "loop per sample within 1.5× the pread floor ($loop_all vs $(awk -v f="$floor_pread" 'BEGIN {printf "%.2f", 1.5 * f}'))" "$loop_all" "$(awk -v f="$floor_pread" 'BEGIN {print 1.5 * f}')" "<="
check "loop per sample within 1.5× the open/read/close floor ($loop_all vs $(awk -v f="$floor_open" 'BEGIN {printf "%.2f", 1.5 * f}'))" "$loop_all" "$(awk -v f="$floor_open" 'BEGIN {print 1.5 * f}')" "<="
check "loop per sample, one device, within 1.5× the pread floor ($loop_dev)" "$loop_dev" "$(awk -v f="$floor_pread" 'BEGIN {print 1.5 * f}')" "<="
echo "  info  diskstats' own work per sample (all devices) beyond reading and appending: $(awk -v a="$loop_all" -v b="$floor_append" 'BEGIN {printf "%.2f", a - b}') µs"
echo "  info  the textfile per sample (all devices): $(awk -v a="$prom_all" -v b="$loop_all" 'BEGIN {printf "%.2f", a - b}') µs, $(awk -v a="$prom_all" 'BEGIN {printf "%.3f", a / 1e4}') % of a CPU at -l 1"
check "one-shot run under 2 ms ($(us "$oneshot") µs)" "$oneshot" 2000 "<"
if [ -n "$seed_loop" ]; then
  check "loop at least 10× below the lab report's ($(ratio "$seed_loop" "$loop_all")×)" "$(ratio "$seed_loop" "$loop_all")" 10 ">="
  check "one-shot at least 10× below the lab report's ($(ratio "$seed_once" "$oneshot")×)" "$(ratio "$seed_once" "$oneshot")" 10 ">="
fi
[ -n "$sadc_once" ] && check "one-shot below sadc's one sample ($(us "$oneshot") vs $(us "$sadc_once") µs)" "$oneshot" "$sadc_once" "<"
exit 0
