#!/usr/bin/env bash
# Make sure a Prometheus server binary is on this machine, for the rollout gate's
# Prometheus tests (tests/rollout). Idempotent.
#
#   prometheus  one already on PATH; else the one in ~/.cache/agogosml/bin; else taken out
#               of Debian's `prometheus` package (apt-get download + dpkg-deb -x: no
#               install, so no service is started and no dependency is pulled in).
#               AGOGOSML_PROMETHEUS=/path/to/prometheus picks one.
#
# Prints one line on stdout, PROMETHEUS=absolute-path. Progress and errors go to stderr.
set -euo pipefail
bin="${AGOGOSML_KUBE_BIN:-$HOME/.cache/agogosml/bin}"
log() { echo "fetch-prometheus: $*" >&2; }

if [[ -n "${AGOGOSML_PROMETHEUS:-}" ]]; then
  echo "PROMETHEUS=$AGOGOSML_PROMETHEUS"
  exit 0
fi
if command -v prometheus >/dev/null; then
  echo "PROMETHEUS=$(command -v prometheus)"
  exit 0
fi
mkdir -p "$bin"
exec 9>"$bin/.fetch-prometheus.lock"
flock 9
if [[ -x "$bin/prometheus" ]]; then
  echo "PROMETHEUS=$bin/prometheus"
  exit 0
fi
command -v apt-get >/dev/null || { log "no prometheus on PATH and no apt-get to fetch Debian's"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "taking prometheus out of Debian's package"
if ! (cd "$work" && apt-get download prometheus >&2 2>/dev/null); then
  [[ "$(id -u)" == 0 ]] || { log "apt-get download failed; run apt-get update as root"; exit 1; }
  apt-get update -qq >&2
  (cd "$work" && apt-get download prometheus >&2)
fi
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
install -m 0755 "$work/root/usr/bin/prometheus" "$bin/prometheus.tmp.$$"
mv -f "$bin/prometheus.tmp.$$" "$bin/prometheus"
log "$("$bin/prometheus" --version 2>&1 | head -1)"
echo "PROMETHEUS=$bin/prometheus"
