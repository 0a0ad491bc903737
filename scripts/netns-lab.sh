#!/usr/bin/env bash
# A lab of hosts on one machine, for `lbbench lab --hosts`: one network namespace per host
# (clients, a balancer, backends), each joined by a veth pair to a bridge on a private /24,
# with an sshd of its own (its own port, config and host key; the system's ssh service is not
# used) that lets in a key made for this lab. Prints the hosts file for `lbbench lab --hosts`.
#
#   scripts/netns-lab.sh up [--name NAME] [--clients N] [--backends N] [--dir DIR]
#                           [--lbbench PATH] [--sysctl KEY=VALUE]...
#   scripts/netns-lab.sh down NAME|DIR        remove everything `up` made
#   scripts/netns-lab.sh cut NAME|DIR HOST    kill HOST's sshd and its connections (a lost host)
#   scripts/netns-lab.sh restore NAME|DIR HOST  start HOST's sshd again
#   scripts/netns-lab.sh status NAME|DIR      the namespaces, their addresses and processes
#
# Hosts are named client-1.., balancer, backend-1..; namespace NAME-HOST. The files (keys,
# sshd configs and logs, known_hosts, an ssh_config for `ssh -F DIR/ssh_config HOST`, and
# hosts.toml) are in DIR (default: ${TMPDIR:-/tmp}/netns-lab-NAME). Interface names are made
# from a hash of NAME and the subnet is one of 10.200-249.x.0/24 not in use, chosen under a
# lock, so labs with different names never collide. The namespaces have no route out of the
# subnet. `--sysctl` sets a per-namespace sysctl in every host (for example
# `--sysctl net.ipv4.ip_local_port_range="1024 65535"`). Needs root, iproute2 and
# openssh-server (scripts/setup.sh installs it).
set -euo pipefail

SSHD=/usr/sbin/sshd
say() { printf 'netns-lab: %s\n' "$*" >&2; }
die() { printf 'netns-lab: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

valid_name() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$ ]]; }
short_id() { printf '%s' "$1" | md5sum | cut -c1-7; }
bridge_of() { printf 'nl%s' "$(short_id "$1")"; }

# The state dir of a lab given by NAME or by its DIR; sets NAME and DIR.
find_lab() {
  local arg=$1
  if [ -f "$arg/lab.env" ]; then
    DIR=$(cd "$arg" && pwd)
    NAME=$(sed -n 's/^NAME=//p' "$DIR/lab.env")
  else
    valid_name "$arg" || die "not a lab name or directory: $arg"
    NAME=$arg
    DIR=${TMPDIR:-/tmp}/netns-lab-$NAME
  fi
}

namespaces_of() {
  ip netns list 2>/dev/null | awk '{print $1}' |
    grep -E "^$(printf '%s' "$1" | sed 's/[.]/\\./g')-(client-[0-9]+|balancer|backend-[0-9]+)$" || true
}

# Stops every process in a namespace: SIGTERM, up to 3 s, then SIGKILL.
kill_namespace() {
  local ns=$1 pids i
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for i in $(seq 30); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

down() {
  find_lab "${1:-}"
  local ns bridge
  for ns in $(namespaces_of "$NAME"); do
    kill_namespace "$ns"
    ip netns del "$ns" 2>/dev/null || true
  done
  bridge=$(bridge_of "$NAME")
  if ip link show "$bridge" >/dev/null 2>&1; then
    ip link del "$bridge"
  fi
  if [ -f "$DIR/lab.env" ]; then
    rm -rf "$DIR"
  fi
  say "removed the lab $NAME"
}

# Starts the sshd of HOST (in its namespace) and waits until it listens.
start_sshd() {
  local host=$1 ns="$NAME-$1" i
  rm -f "$DIR/$host/sshd.pid"
  ip netns exec "$ns" "$SSHD" -f "$DIR/$host/sshd_config" -E "$DIR/$host/sshd.log" ||
    die "sshd did not start in $ns: $(tail -n 3 "$DIR/$host/sshd.log" 2>/dev/null)"
  for i in $(seq 100); do
    [ -s "$DIR/$host/sshd.pid" ] && return 0
    sleep 0.05
  done
  die "sshd in $ns wrote no pid file: $(tail -n 3 "$DIR/$host/sshd.log" 2>/dev/null)"
}

cut_host() {
  find_lab "${1:-}"
  local host=${2:-} ns pids p
  [ -n "$host" ] || usage
  ns="$NAME-$host"
  ip netns pids "$ns" >/dev/null 2>&1 || die "no namespace $ns"
  pids=""
  for p in $(ip netns pids "$ns"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sshd ] && pids="$pids $p"
  done
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  say "killed the sshd of $host and its connections (pids$pids)"
}

restore_host() {
  find_lab "${1:-}"
  local host=${2:-}
  [ -n "$host" ] || usage
  [ -f "$DIR/$host/sshd_config" ] || die "no host $host in $DIR"
  start_sshd "$host"
  say "sshd of $host started again"
}

status() {
  find_lab "${1:-}"
  local ns p
  for ns in $(namespaces_of "$NAME"); do
    printf '%s %s\n' "$ns" "$(ip -n "$ns" -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}')"
    for p in $(ip netns pids "$ns"); do
      printf '  %s %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-100)"
    done
  done
}

toml_str() { # a TOML basic string
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

up() {
  NAME="lab-$$"; local clients=2 backends=2 lbbench="" dir="" sysctls=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) NAME=${2:?--name needs a value}; shift 2 ;;
      --clients) clients=${2:?}; shift 2 ;;
      --backends) backends=${2:?}; shift 2 ;;
      --dir) dir=${2:?}; shift 2 ;;
      --lbbench) lbbench=${2:?}; shift 2 ;;
      --sysctl) sysctls+=("${2:?}"); shift 2 ;;
      *) usage ;;
    esac
  done
  valid_name "$NAME" || die "--name must be letters, digits, '.', '_' or '-' (at most 48): $NAME"
  [[ "$clients" =~ ^[0-9]+$ && "$clients" -ge 1 && "$clients" -le 40 ]] || die "--clients must be 1..40"
  [[ "$backends" =~ ^[0-9]+$ && "$backends" -ge 1 && "$backends" -le 40 ]] || die "--backends must be 1..40"
  [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"
  [ -x "$SSHD" ] || die "$SSHD is missing: install openssh-server (scripts/setup.sh does)"
  command -v ssh-keygen >/dev/null || die "ssh-keygen is missing: install openssh-client"
  if [ -n "$lbbench" ]; then
    [ -x "$lbbench" ] || die "--lbbench $lbbench is not an executable file"
    lbbench=$(cd "$(dirname "$lbbench")" && pwd)/$(basename "$lbbench")
  fi
  DIR=${dir:-${TMPDIR:-/tmp}/netns-lab-$NAME}
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  [ ! -e "$DIR/lab.env" ] || die "$DIR already holds a lab (scripts/netns-lab.sh down $DIR)"
  [ -z "$(namespaces_of "$NAME")" ] || die "namespaces of a lab named $NAME exist (scripts/netns-lab.sh down $NAME)"
  local bridge
  bridge=$(bridge_of "$NAME")
  ! ip link show "$bridge" >/dev/null 2>&1 || die "the interface $bridge exists (a lab named $NAME, or a hash clash)"

  local hosts=()
  for i in $(seq "$clients"); do hosts+=("client-$i"); done
  hosts+=(balancer)
  for i in $(seq "$backends"); do hosts+=("backend-$i"); done

  # From here on, a failure removes whatever was made.
  LAB_MADE=0
  trap '[ "$LAB_MADE" = 1 ] || { say "failed; removing what was made"; down "$DIR" >/dev/null 2>&1 || true; }' EXIT
  printf 'NAME=%s\n' "$NAME" >"$DIR/lab.env"

  # A free subnet, chosen and taken under a lock so two labs made at once cannot pick the same.
  local h a b subnet=""
  exec 9>/run/netns-lab.lock
  flock 9
  h=$((16#$(short_id "$NAME")))
  for try in $(seq 0 99); do
    a=$((200 + (h + try) % 50)); b=$(((h / 50 + try * 7) % 256))
    if ! ip -4 -o addr show | grep -q " 10\.$a\.$b\." && ! ip -4 route show | grep -q "^10\.$a\.$b\."; then
      subnet="10.$a.$b"; break
    fi
  done
  [ -n "$subnet" ] || die "no free 10.200-249.x.0/24 subnet"
  ip link add "$bridge" type bridge
  ip addr add "$subnet.1/24" dev "$bridge"
  ip link set "$bridge" up
  exec 9>&-
  printf 'SUBNET=%s.0/24\nBRIDGE=%s\n' "$subnet" "$bridge" >>"$DIR/lab.env"

  ssh-keygen -q -t ed25519 -N '' -C "netns-lab $NAME" -f "$DIR/id_ed25519"
  cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
  : >"$DIR/known_hosts"
  : >"$DIR/ssh_config"
  mkdir -p /run/sshd
  local user i=0 host ns ip port veth
  user=$(id -un)
  for host in "${hosts[@]}"; do
    i=$((i + 1))
    ns="$NAME-$host"; ip="$subnet.$((10 + i))"; port=$((2200 + i)); veth="${bridge}v$i"
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$bridge" up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    for s in "${sysctls[@]}"; do
      ip netns exec "$ns" sysctl -q -w "$s" >/dev/null || die "sysctl -w $s failed in $ns"
    done
    mkdir -p "$DIR/$host"
    ssh-keygen -q -t ed25519 -N '' -C "$ns" -f "$DIR/$host/host_key"
    printf '[%s]:%s %s\n' "$ip" "$port" "$(cut -d' ' -f1-2 "$DIR/$host/host_key.pub")" >>"$DIR/known_hosts"
    cat >"$DIR/$host/sshd_config" <<CONF
# sshd of the netns lab $NAME, host $host (namespace $ns)
ListenAddress $ip:$port
HostKey $DIR/$host/host_key
PidFile $DIR/$host/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
MaxSessions 64
MaxStartups 64:30:128
LogLevel ERROR
CONF
    cat >>"$DIR/ssh_config" <<CONF
Host $host
  HostName $ip
  Port $port
  User $user
  IdentityFile $DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes

CONF
    printf '%s %s %s\n' "$host" "$ip" "$port" >>"$DIR/hosts.list"
    start_sshd "$host"
  done

  # Each sshd must let the lab's key in: one `ssh HOST true` per host.
  for host in "${hosts[@]}"; do
    ssh -F "$DIR/ssh_config" -o ConnectTimeout=5 "$host" true ||
      die "cannot log in to $host: $(tail -n 3 "$DIR/$host/sshd.log" 2>/dev/null)"
  done

  {
    printf '# The netns lab %s (scripts/netns-lab.sh): %s client(s), a balancer and %s backend host(s)\n' \
      "$NAME" "$clients" "$backends"
    printf '# in network namespaces on %s.0/24. Remove it with: scripts/netns-lab.sh down %s\n' "$subnet" "$NAME"
    [ -z "$lbbench" ] || printf 'lbbench = %s\n' "$(toml_str "$lbbench")"
    printf 'known_hosts = %s\n' "$(toml_str "$DIR/known_hosts")"
    while read -r host ip port; do
      case "$host" in
        client-*) printf '\n[[client]]\n' ;;
        balancer) printf '\n[balancer]\n' ;;
        backend-*) printf '\n[[backend]]\n' ;;
      esac
      printf 'name = "%s"\nssh = "%s"\nport = %s\nuser = %s\nidentity = %s\naddress = "%s"\n' \
        "$host" "$ip" "$port" "$(toml_str "$user")" "$(toml_str "$DIR/id_ed25519")" "$ip"
    done <"$DIR/hosts.list"
  } >"$DIR/hosts.toml"
  LAB_MADE=1
  say "lab $NAME is up: ${#hosts[@]} namespaces on $subnet.0/24 (bridge $bridge); files in $DIR"
  say "try: lbbench lab --hosts $DIR/hosts.toml --check"
  cat "$DIR/hosts.toml"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) [ $# -eq 2 ] || usage; [ "$(id -u)" -eq 0 ] || die "must run as root"; down "$2" ;;
  cut) [ $# -eq 3 ] || usage; cut_host "$2" "$3" ;;
  restore) [ $# -eq 3 ] || usage; restore_host "$2" "$3" ;;
  status) [ $# -eq 2 ] || usage; status "$2" ;;
  *) usage ;;
esac
