#!/usr/bin/env bash
# Make sure a real PostgreSQL server's binaries (initdb, pg_ctl, postgres) are on this
# machine, for the tests that use tests/monitor/postgres.py. Idempotent: it installs only
# when they are missing, from Debian's `postgresql` package (apt-get, as root or with sudo).
# AGOGOSML_PG_BIN=/path/to/bin picks a folder that holds them.
#
# Prints one line on stdout, PG_BIN=absolute-path, so `eval "$(scripts/fetch-postgres.sh)"`
# works:
#   PG_BIN=/usr/lib/postgresql/15/bin
# Progress and errors go to stderr.
set -euo pipefail
log() { echo "fetch-postgres: $*" >&2; }

found() {  # the newest folder holding the server's binaries, if any
  if [[ -n "${AGOGOSML_PG_BIN:-}" ]]; then
    [[ -x "$AGOGOSML_PG_BIN/initdb" ]] && echo "$AGOGOSML_PG_BIN"
    return 0
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
      echo "$dir"
      return 0
    fi
  done
  local initdb
  initdb="$(command -v initdb || true)"
  if [[ -n "$initdb" ]]; then
    dir="$(dirname "$(readlink -f "$initdb")")"
    [[ -x "$dir/pg_ctl" && -x "$dir/postgres" ]] && echo "$dir"
  fi
  return 0
}

if [[ -n "${AGOGOSML_PG_BIN:-}" ]]; then
  bin="$(found)"
  [[ -n "$bin" ]] || { log "no initdb in AGOGOSML_PG_BIN=$AGOGOSML_PG_BIN"; exit 1; }
else
  source "$(dirname "$0")/apt-install.sh"
  bin="$(apt_install_once postgresql found)"
fi
[[ -n "$bin" ]] || { log "no PostgreSQL server binaries after installing"; exit 1; }
echo "PG_BIN=$bin"
