#!/usr/bin/env bash
# Build Helm v3 from the Go module proxy, once, into a cache outside the clone, and print
# the binary's path. GOPATH and GOMODCACHE keep Go's defaults (~/go, outside the clone).
# The link flags are those of Helm's own release build, so `helm version` names the
# version and `helm template` assumes the Kubernetes version Helm was built against
# (a plain `go install` leaves v3.x and Kubernetes 1.20).
set -euo pipefail
version="${AGOGOSML_HELM_VERSION:-v3.22.0}"
bindir="${AGOGOSML_HELM_BIN_DIR:-$HOME/.cache/agogosml/bin}"
helm="$bindir/helm"
built() { "$helm" version --template '{{.Version}}' 2>/dev/null || true; }
if [ ! -x "$helm" ] || [ "$(built)" != "$version" ]; then
  command -v go >/dev/null || { echo "fetch-helm: Go is needed (go install builds Helm)" >&2; exit 1; }
  echo "fetch-helm: building helm.sh/helm/v3/cmd/helm@$version into $bindir" >&2
  gomod="$(go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
  client_go="$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")"   # v0.MINOR.PATCH
  k8s_minor="$(echo "$client_go" | cut -d. -f2)"
  ldflags="-w -s -X helm.sh/helm/v3/internal/version.version=$version"
  for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1"
    ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
  done
  mkdir -p "$bindir"
  GOBIN="$bindir" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$version" >&2
  [ "$(built)" = "$version" ] || { echo "fetch-helm: built helm is not $version" >&2; exit 1; }
fi
echo "$helm"
