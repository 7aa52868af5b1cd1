# Sourced by the fetch-* scripts that need a Debian package: `apt_install_once PACKAGE
# FOUND_FUNCTION` installs PACKAGE with apt-get (as root, or with password-less sudo) unless
# FOUND_FUNCTION already prints where it is, one caller at a time; it then prints what
# FOUND_FUNCTION prints (empty if the install did not help). Progress goes to stderr.

apt_install_once() {
  local package="$1" found_function="$2" found
  found="$("$found_function")"
  if [[ -n "$found" ]]; then
    echo "$found"
    return 0
  fi
  local as_root=()
  if [[ "$(id -u)" != 0 ]]; then  # e.g. a CI runner's user with password-less sudo
    sudo -n true 2>/dev/null || {
      echo "$package is missing: install Debian's $package (as root)" >&2
      return 1
    }
    as_root=(sudo -n)
  fi
  # One at a time: a second caller waits for the first one's install.
  exec 9>"/tmp/.agogosml-apt-$package.lock"
  flock 9
  found="$("$found_function")"
  if [[ -z "$found" ]]; then
    echo "installing Debian's $package package" >&2
    "${as_root[@]}" apt-get update -qq >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2
    found="$("$found_function")"
  fi
  echo "$found"
}
