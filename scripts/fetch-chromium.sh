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

if [[ -n "${AGOGOSML_CHROMIUM:-}" ]]; then
  browser="$(found)"
  [[ -n "$browser" ]] || { log "not executable: AGOGOSML_CHROMIUM=$AGOGOSML_CHROMIUM"; exit 1; }
else
  source "$(dirname "$0")/apt-install.sh"
  browser="$(apt_install_once chromium found)"
fi
[[ -n "$browser" ]] || { log "no Chromium after installing"; exit 1; }
echo "CHROMIUM=$browser"
