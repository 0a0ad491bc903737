#!/usr/bin/env bash
# Installs what the tools and their tests need on Debian 12 (bookworm) or 13 (trixie).
# Idempotent: anything already installed is skipped. Must run as root.
#
# Pound: Debian 13 and later ship a `pound` package, installed with apt. Debian 12 has none,
# so the Debian 13 binary is unpacked with a private copy of the libraries it needs
# (libc 2.41, OpenSSL 3.5, ...) under $POUND_PREFIX and patched with patchelf to use them.
# Nothing system-wide changes: no trixie package is ever installed.
set -euo pipefail

POUND_PREFIX=${POUND_PREFIX:-/opt/pound}
# python3-openstackclient (with python3-openstacksdk): the real `openstack` CLI, the oracle of
# webscaler's config-resolution test (crates/webscaler/tests/cloud_config_oracle.rs), and
# the SDK that checks the fake OpenStack (tests/cloud_fake_sdk.rs); both run offline.
# dpkg-dev (dpkg-shlibdeps, strip), lintian, man-db, adduser, logrotate, systemd-container:
# scripts/package.sh builds the Debian package, and its tests
# (crates/common/tests/debian_package.rs) check it with lintian, install it, read its man
# pages, rotate its logs, and boot the machine's OS in a container (systemd-nspawn) to run
# the packaged service under systemd.
# openssh-client: `lbbench lab --hosts` reaches the lab's hosts with the system's ssh.
APT_PACKAGES=(haproxy httperf socat sysstat curl procps iproute2 valgrind jq python3-openstackclient python3-openstacksdk
  dpkg-dev lintian man-db adduser logrotate systemd-container openssh-client)

# Daemons the tests start themselves, each with its own config, port and data directory; their
# packaged services are never used. A fresh install is made without starting them (see
# install_without_services) and, where systemd runs, left disabled; a package that was
# installed before is left as it was.
# openssh-server: scripts/netns-lab.sh runs an sshd of its own in each network namespace.
# prometheus, prometheus-node-exporter: promtool checks webscaler's /metrics and diskstats'
# textfile, and a test starts a Prometheus server that scrapes webscaler and a node_exporter
# reading the textfile.
# keepalived: the HAProxy pair behind a virtual IP (etc/keepalived/), each host's keepalived
# started in a network namespace by crates/webscaler/tests/run_pair.rs.
# Each entry is "package:unit unit...", the units to leave disabled.
DAEMON_PACKAGES=(
  "openssh-server:ssh.service ssh.socket"
  "prometheus:prometheus.service"
  "prometheus-node-exporter:prometheus-node-exporter.service"
  "keepalived:keepalived.service"
)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"
[ -r /etc/os-release ] || die "not a Debian system (/etc/os-release is missing)"
# shellcheck disable=SC1091
. /etc/os-release
case "${ID:-}:${ID_LIKE:-}" in
  debian:*|*:*debian*) ;;
  *) die "not a Debian system (ID=${ID:-unknown}); install haproxy, httperf, pound, nginx, socat, sysstat by hand" ;;
esac
CODENAME=${VERSION_CODENAME:-}
# nginx: Debian 12's smallest build is nginx-light; Debian 13 folded the flavours into nginx.
case "$CODENAME" in
  bookworm|bullseye) APT_PACKAGES+=(nginx-light) ;;
  *) APT_PACKAGES+=(nginx) ;;
esac

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    :
  else
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  apt_update_once
  say "installing: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "apt packages already installed: ${APT_PACKAGES[*]}"
fi

# The packaged services are never used: the tools start their own processes with their own
# configs. Where systemd runs, make sure they are not holding ports.
if [ -d /run/systemd/system ]; then
  for svc in haproxy nginx; do
    if systemctl is-active --quiet "$svc" 2>/dev/null; then
      say "stopping the packaged $svc service (the tools run their own)"
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
fi

# Installs packages without starting any service during the install: a policy-rc.d that
# forbids it (exit 101, the convention of invoke-rc.d and deb-systemd-invoke), for the length
# of the install, where the machine has none.
install_without_services() {
  local policy_made=0 status=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# scripts/setup.sh: no service starts during the install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_made=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
  [ "$policy_made" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "$status" -eq 0 ] || die "cannot install $* (apt-get exited $status)"
}

fresh=()
units=()
for entry in "${DAEMON_PACKAGES[@]}"; do
  pkg=${entry%%:*}
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    fresh+=("$pkg")
    read -r -a pkg_units <<<"${entry#*:}"
    units+=("${pkg_units[@]}")
  fi
done
if [ ${#fresh[@]} -gt 0 ]; then
  apt_update_once
  say "installing (their services are not started): ${fresh[*]}"
  install_without_services "${fresh[@]}"
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "${units[@]}" >/dev/null 2>&1 || true
  fi
else
  say "daemon packages already installed: ${DAEMON_PACKAGES[*]%%:*}"
fi
[ -x /usr/sbin/sshd ] || die "openssh-server was installed but /usr/sbin/sshd is missing"

pound_works() { command -v pound >/dev/null 2>&1 && pound -V 2>&1 | grep -q '^pound'; }

install_pound_private_root() {
  local arch
  arch=$(dpkg --print-architecture)
  [ "$arch" = amd64 ] || [ "$arch" = arm64 ] || die "pound: no Debian 13 binary for $arch"
  if ! command -v patchelf >/dev/null 2>&1; then
    apt_update_once
    say "installing patchelf"
    apt-get install -y -qq --no-install-recommends patchelf >/dev/null
  fi
  local mirror tmp
  # The mirror the system already uses (deb822 "URIs:" or one-line "deb URL"), never a comment.
  mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | sed -nE 's/^URIs:[[:space:]]*([^[:space:]]+).*/\1/p; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
    | grep -E '/debian/?$' | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp"/{lists/partial,cache/archives/partial,sources.list.d,debs}
  cat >"$tmp/trixie.sources" <<SRC
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Targets: Packages
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat >"$tmp/apt.conf" <<CONF
Dir::Etc::sourcelist "$tmp/trixie.sources";
Dir::Etc::sourceparts "$tmp/sources.list.d";
Dir::State::Lists "$tmp/lists";
Dir::Cache "$tmp/cache";
APT::Sandbox::User "root";
Acquire::Languages "none";
CONF
  say "pound: fetching the Debian 13 package and its libraries from $mirror (private root $POUND_PREFIX)"
  APT_CONFIG="$tmp/apt.conf" apt-get update -qq
  (cd "$tmp/debs" && APT_CONFIG="$tmp/apt.conf" apt-get download -qq \
      pound libssl3t64 libadns1t64 libc6 libcrypt1 libpcre2-8-0 libzstd1 zlib1g)
  rm -rf "$POUND_PREFIX"
  mkdir -p "$POUND_PREFIX/root" "$POUND_PREFIX/bin"
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$POUND_PREFIX/root"; done
  local libdir
  libdir=$(dirname "$(find "$POUND_PREFIX/root/usr/lib" -name 'ld-linux*.so.*' | head -n1)")
  local loader
  loader=$(find "$libdir" -maxdepth 1 -name 'ld-linux*.so.*' | head -n1)
  for b in usr/sbin/pound usr/bin/poundctl; do
    cp "$POUND_PREFIX/root/$b" "$POUND_PREFIX/bin/"
    patchelf --set-interpreter "$loader" --force-rpath \
      --set-rpath "$libdir:$POUND_PREFIX/root/usr/lib" "$POUND_PREFIX/bin/$(basename "$b")"
  done
  cp "$POUND_PREFIX/root/usr/share/pound/poundctl.tmpl" "$POUND_PREFIX/" 2>/dev/null || true
  ln -sf "$POUND_PREFIX/bin/pound" /usr/local/sbin/pound
  ln -sf "$POUND_PREFIX/bin/poundctl" /usr/local/bin/poundctl
}

if pound_works; then
  say "pound already installed: $(pound -V 2>&1 | head -n1)"
elif apt-cache show pound >/dev/null 2>&1 || { apt_update_once; apt-cache show pound >/dev/null 2>&1; }; then
  say "installing pound with apt"
  apt-get install -y -qq --no-install-recommends pound >/dev/null
else
  case "$CODENAME" in
    bookworm) install_pound_private_root ;;
    *) die "pound: no package for Debian '$CODENAME' and no known private-root recipe" ;;
  esac
fi
pound_works || die "pound was installed but 'pound -V' does not run"

if ! command -v cargo >/dev/null 2>&1; then
  die "cargo not found: install the Rust toolchain (rustup, Rust >= 1.89) for the build"
fi

httperf_version=$(dpkg-query -W -f='${Version}' httperf 2>/dev/null || echo unknown)
say "ready: $(haproxy -v | head -n1 | cut -d' ' -f1-3); httperf $httperf_version; $(pound -V 2>&1 | head -n1); $(nginx -v 2>&1); $(/usr/sbin/sshd -V 2>&1 | head -n1)"
