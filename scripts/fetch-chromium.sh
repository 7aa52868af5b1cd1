#!/usr/bin/env bash
# Make sure a real headless Chromium is on this machine, for the dashboard's browser tests.
# Idempotent: installs Debian's `chromium` package only when no browser is found (apt-get,
# as root or with password-less sudo). AGOGOSML_CHROMIUM=/path/to/chromium picks one.
#
# Prints one line on stdout, CHROMIUM=absolute-path. Progress and errors go to stderr.
set -euo pipefail
log() { echo "fetch-chromium: $*" >&2; }

found() {
  if [[ -n "${AGOGOSML_CHROMIUM:-}" ]]; then
    [[ -x "$AGOGOSML_CHROMIUM" ]] && echo "$AGOGOSML_CHROMIUM"
    return 0
  fi
  local name
  for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null; then command -v "$name"; return 0; fi
  done
  return 0
}

browser="$(found)"
if [[ -z "$browser" ]]; then
  [[ -z "${AGOGOSML_CHROMIUM:-}" ]] || { log "not executable: AGOGOSML_CHROMIUM=$AGOGOSML_CHROMIUM"; exit 1; }
  as_root=()
  if [[ "$(id -u)" != 0 ]]; then
    sudo -n true 2>/dev/null || { log "Chromium is missing: install Debian's chromium (as root)"; exit 1; }
    as_root=(sudo -n)
  fi
  exec 9>/tmp/.agogosml-fetch-chromium.lock
  flock 9
  browser="$(found)"
  if [[ -z "$browser" ]]; then
    log "installing Debian's chromium package"
    "${as_root[@]}" apt-get update -qq >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
    browser="$(found)"
  fi
fi
[[ -n "$browser" ]] || { log "no Chromium after installing"; exit 1; }
echo "CHROMIUM=$browser"
