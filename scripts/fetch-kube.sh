#!/usr/bin/env bash
# Make sure a real Kubernetes API server (kube-apiserver, no kubelet) and etcd are on
# this machine, for the tests that use tests/k8s/fixtures.py. Idempotent: it builds or installs only what is missing.
#
#   kube-apiserver  built from the k8s.io/kubernetes Go module (Go module proxy) through
#                   tools/kube-apiserver/go.mod, into ~/.cache/agogosml/bin/kube-apiserver-vX.Y.Z
#                   (first build: about 6 minutes on 2 cores; later runs: instant).
#   etcd            an `etcd` already on PATH (3.4 or newer); else Debian's etcd-server
#                   package (apt-get, as root); else built from go.etcd.io/etcd/server/v3
#                   through the same module into ~/.cache/agogosml/bin/etcd-vX.Y.Z.
#                   AGOGOSML_ETCD=/path/to/etcd picks one; AGOGOSML_ETCD=source forces the build.
#
# Prints two lines on stdout, each NAME=absolute-path, so `eval "$(scripts/fetch-kube.sh)"`
# works:
#   ETCD=/usr/bin/etcd
#   KUBE_APISERVER=/root/.cache/agogosml/bin/kube-apiserver-v1.37.2
# Progress and errors go to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
mod="$here/tools/kube-apiserver"
bin="${AGOGOSML_KUBE_BIN:-$HOME/.cache/agogosml/bin}"
log() { echo "fetch-kube: $*" >&2; }

required() {  # the version of module $1 that go.mod requires
  awk -v m="$1" '$1 == "require" && $2 == m {print $3} $1 == m && $2 ~ /^v/ {print $2}' "$mod/go.mod"
}
k8s_version="$(required k8s.io/kubernetes)"
etcd_version="$(required go.etcd.io/etcd/server/v3)"
[[ -n "$k8s_version" && -n "$etcd_version" ]] || { log "cannot read versions from $mod/go.mod"; exit 1; }

# One at a time: a second caller waits for the first one's build instead of repeating it.
mkdir -p "$bin"
exec 9>"$bin/.fetch-kube.lock"
flock 9

go_build() {  # go_build OUTPUT PACKAGE [extra ldflags]
  command -v go >/dev/null || { log "Go 1.26+ is needed to build $2"; exit 1; }
  local tmp="$1.tmp.$$"
  log "building $2 into $1 (first time only)"
  local start=$SECONDS
  (cd "$mod" && GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags="-s -w ${3:-}" \
    -o "$tmp" "$2") >&2
  mv -f "$tmp" "$1"
  log "built $(basename "$1") in $((SECONDS - start))s"
}

# etcd 3.4+ serves the v3 API that kube-apiserver needs.
usable_etcd() {
  local v
  v="$("$1" --version 2>/dev/null | awk '/^etcd Version:/ {print $3}')" || return 1
  [[ "$v" =~ ^3\.([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 4))
}

build_etcd() {
  etcd="$bin/etcd-$etcd_version"
  [[ -x "$etcd" ]] || go_build "$etcd" ./etcd
}

etcd="${AGOGOSML_ETCD:-}"
if [[ "$etcd" == source ]]; then
  build_etcd
elif [[ -n "$etcd" ]]; then
  usable_etcd "$etcd" || { log "AGOGOSML_ETCD=$etcd is not etcd 3.4 or newer"; exit 1; }
elif command -v etcd >/dev/null && usable_etcd "$(command -v etcd)"; then
  etcd="$(command -v etcd)"
elif [[ -x "$bin/etcd-$etcd_version" ]]; then
  etcd="$bin/etcd-$etcd_version"
elif command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
  log "installing Debian's etcd-server"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2
  if command -v etcd >/dev/null && usable_etcd "$(command -v etcd)"; then
    etcd="$(command -v etcd)"
  else
    build_etcd
  fi
else
  build_etcd
fi

apiserver="$bin/kube-apiserver-$k8s_version"
if [[ ! -x "$apiserver" ]]; then
  minor="${k8s_version#v1.}"
  minor="${minor%%.*}"
  pkg=k8s.io/component-base/version
  go_build "$apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
    "-X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
fi

echo "ETCD=$etcd"
echo "KUBE_APISERVER=$apiserver"
