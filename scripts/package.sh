#!/usr/bin/env bash
# Builds the Debian package of the three tools, webscaler-tools_<version>_<arch>.deb, with
# dpkg-deb (no debhelper, no cargo-deb). The version is the workspace's (Cargo.toml); each
# binary's --version must say the same.
#
# What goes where (docs/packaging.md):
#   /usr/bin/{webscaler,lbbench,diskstats}               stripped binaries
#   /usr/share/man/man1/TOOL[-SUBCOMMAND...].1.gz         from `TOOL man --dir`
#   /usr/share/bash-completion/completions/TOOL           from `TOOL completions bash`
#   /usr/share/zsh/vendor-completions/_TOOL               ... zsh
#   /usr/share/fish/vendor_completions.d/TOOL.fish        ... fish
#   /etc/webscaler/webscaler.toml                         conffile (etc/webscaler.toml)
#   /etc/cron.d/diskstats                                 conffile, entry disabled (etc/diskstats.cron)
#   /etc/logrotate.d/webscaler-tools                      conffile (etc/webscaler-tools.logrotate)
#   /lib/systemd/system/webscaler.service                 etc/webscaler.service, binaries in /usr/bin
#   /usr/share/doc/webscaler-tools/                       copyright, changelog, README, docs, examples
#   /usr/share/lintian/overrides/webscaler-tools          one override (packaging/debian/lintian-overrides)
# Maintainer scripts (packaging/debian/): postinst creates the system user webscaler; the
# service is neither enabled nor started; purge removes /var/lib/webscaler and
# /var/log/webscaler.
#
# Usage: scripts/package.sh [--profile PROFILE | --bin-dir DIR] [-o DIR]
#   --profile PROFILE  build the binaries with `cargo build --profile PROFILE` first
#                      (default: release)
#   --bin-dir DIR      package the binaries already built in DIR (e.g. target/debug): no build
#   -o, --out-dir DIR  where the .deb goes (default: <target dir>/debian)
# Environment: DEB_MAINTAINER (the Maintainer field), SOURCE_DATE_EPOCH (file times and the
# changelog's date; default: the last commit's time, so a rebuild gives the same .deb).
# Prints the path of the .deb on its last line. Check it with `lintian PATH`.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'package: error: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '/^# Usage:/,/^# Prints/p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

PACKAGE=webscaler-tools
TOOLS=(webscaler lbbench diskstats)
CARGO=${CARGO:-cargo}
profile=release
bin_dir=""
out_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || usage >&2; profile=$2; shift 2 ;;
    --bin-dir) [ $# -ge 2 ] || usage >&2; bin_dir=$2; shift 2 ;;
    -o|--out-dir) [ $# -ge 2 ] || usage >&2; out_dir=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
for cmd in dpkg-deb dpkg-shlibdeps strip gzip jq; do
  command -v "$cmd" >/dev/null || die "$cmd not found (scripts/setup.sh installs it)"
done

metadata=$("$CARGO" metadata --no-deps --format-version 1)
version=$(jq -r '.packages[] | select(.name == "webscaler") | .version' <<<"$metadata")
target_dir=$(jq -r '.target_directory' <<<"$metadata")
[ -n "$version" ] || die "no version for webscaler in cargo metadata"
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-webscaler-tools developers <packaging@example.invalid>}
out_dir=${out_dir:-$target_dir/debian}

if [ -z "$bin_dir" ]; then
  case "$profile" in
    dev|debug) bin_dir=$target_dir/debug ;;
    *) bin_dir=$target_dir/$profile ;;
  esac
  printf 'package: cargo build --profile %s\n' "$profile" >&2
  "$CARGO" build --quiet --profile "$profile" "${TOOLS[@]/#/--bin=}" >&2
fi
for t in "${TOOLS[@]}"; do
  [ -x "$bin_dir/$t" ] || die "$bin_dir/$t does not exist or is not executable"
  got=$("$bin_dir/$t" --version)
  [ "$got" = "$t $version" ] || die "$bin_dir/$t --version says '$got', the workspace is at $version (rebuild it)"
done

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

# Debian 12 and older keep units in /lib (lintian there flags /usr/lib); later ones in /usr/lib.
# Both are read by systemd on a merged-/usr system.
. /etc/os-release
case "${VERSION_CODENAME:-}" in
  buster|bullseye|bookworm) unit_dir=/lib/systemd/system ;;
  *) unit_dir=/usr/lib/systemd/system ;;
esac

umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/debian/$PACKAGE   # the layout dpkg-shlibdeps expects
doc=$root/usr/share/doc/$PACKAGE
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d" "$doc/examples"
chmod 755 "$work" "$root"

for t in "${TOOLS[@]}"; do
  install -m 755 "$bin_dir/$t" "$root/usr/bin/$t"
  strip --remove-section=.comment --remove-section=.note "$root/usr/bin/$t"
  bin=$root/usr/bin/$t
  "$bin" man --dir "$work/man" >/dev/null
  "$bin" completions bash >"$root/usr/share/bash-completion/completions/$t"
  "$bin" completions zsh >"$root/usr/share/zsh/vendor-completions/_$t"
  "$bin" completions fish >"$root/usr/share/fish/vendor_completions.d/$t.fish"
done
for page in "$work"/man/*.1; do
  gzip -9n <"$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
done

install -D -m 644 etc/webscaler.toml "$root/etc/webscaler/webscaler.toml"
install -D -m 644 etc/diskstats.cron "$root/etc/cron.d/diskstats"
install -D -m 644 etc/webscaler-tools.logrotate "$root/etc/logrotate.d/$PACKAGE"
install -d "$root$unit_dir"
sed -E 's#^(Exec[A-Za-z]*=[-@+!:]*)/usr/local/bin/#\1/usr/bin/#' etc/webscaler.service \
  >"$root$unit_dir/webscaler.service"
chmod 644 "$root$unit_dir/webscaler.service"
if grep -q '^Exec[A-Za-z]*=.*/usr/local/' "$root$unit_dir/webscaler.service"; then
  die "the packaged unit still runs something from /usr/local"
fi

install -m 644 packaging/debian/copyright "$doc/copyright"
install -D -m 644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/$PACKAGE"
gzip -9n <README.md >"$doc/README.md.gz"
for f in docs/*.md; do gzip -9n <"$f" >"$doc/$(basename "$f").gz"; done
install -m 644 etc/clouds.yaml.example etc/openstack.cfg.example etc/clouddata.txt "$doc/examples/"
changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
gzip -9n >"$doc/changelog.gz" <<CHANGELOG
$PACKAGE ($version) unstable; urgency=medium

  * Version $version of the workspace, packaged by scripts/package.sh.

 -- $maintainer  $changelog_date
CHANGELOG

install -m 755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
  "$root/DEBIAN/"
(cd "$root" && find etc -type f -printf '/%p\n' | sort) >"$root/DEBIAN/conffiles"

shlibs=$(cd "$work" && mkdir -p debian && printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' \
  "$PACKAGE" "$PACKAGE" >debian/control &&
  dpkg-shlibdeps -O "${TOOLS[@]/#/-edebian/$PACKAGE/usr/bin/}" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependency"
rm "$work/debian/control"
installed_size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)

cat >"$root/DEBIAN/control" <<CONTROL
Package: $PACKAGE
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $shlibs, adduser
Recommends: haproxy, httperf
Suggests: sysstat, pound, nginx-light | nginx, logrotate, cron | cron-daemon
Section: admin
Priority: optional
Description: HAProxy autoscaler, load-balancer benchmark and disk sampler
 webscaler keeps the number of web servers behind HAProxy matched to the
 request rate, on OpenStack or on local processes, and logs every interval to
 CSV. A systemd unit runs it as the system user webscaler (not enabled).
 .
 lbbench benchmarks HTTP load balancers (HAProxy, Pound, nginx) with httperf:
 rate sweeps, CPU sampling, a comparison lab on loopback and HTML reports.
 .
 diskstats samples /proc/diskstats to CSV, in a loop or from cron (a cron.d
 entry is included, disabled), and reports the samples as iostat -x does.
CONTROL

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
  xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out_dir"
deb=$out_dir/${PACKAGE}_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
printf 'package: built %s (%s KiB installed)\n' "$deb" "$installed_size" >&2
printf '%s\n' "$deb"
