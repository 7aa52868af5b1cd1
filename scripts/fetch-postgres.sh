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

bin="$(found)"
if [[ -z "$bin" ]]; then
  [[ -z "${AGOGOSML_PG_BIN:-}" ]] || { log "no initdb in AGOGOSML_PG_BIN=$AGOGOSML_PG_BIN"; exit 1; }
  as_root=()
  if [[ "$(id -u)" != 0 ]]; then  # e.g. a CI runner's user with password-less sudo
    sudo -n true 2>/dev/null || { log "PostgreSQL is missing: install Debian's postgresql (as root)"; exit 1; }
    as_root=(sudo -n)
  fi
  # One at a time: a second caller waits for the first one's install.
  exec 9>/tmp/.agogosml-fetch-postgres.lock
  flock 9
  bin="$(found)"
  if [[ -z "$bin" ]]; then
    log "installing Debian's postgresql package"
    "${as_root[@]}" apt-get update -qq >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin="$(found)"
  fi
fi
[[ -n "$bin" ]] || { log "no PostgreSQL server binaries after installing"; exit 1; }
echo "PG_BIN=$bin"
