#!/usr/bin/env bash
# Build a Go tool once from the Go module proxy into ~/.cache/agogosml/bin and print its path.
# usage: scripts/go-tool.sh NAME MODULE/PATH/TO/CMD VERSION
set -euo pipefail
name="$1" package="$2" version="$3"
bin_dir="${AGOGOSML_TOOLS_BIN:-$HOME/.cache/agogosml/bin}"
target="$bin_dir/$name-$version"
if [ ! -x "$target" ]; then
  command -v go >/dev/null || { echo "go-tool: Go is needed to build $name" >&2; exit 1; }
  build_dir="$(mktemp -d)"
  trap 'rm -rf "$build_dir"' EXIT
  echo "go-tool: building $package@$version" >&2
  GOBIN="$build_dir" go install -trimpath -ldflags='-s -w' "$package@$version" >&2
  mkdir -p "$bin_dir"
  mv "$build_dir/$name" "$target"
fi
echo "$target"
