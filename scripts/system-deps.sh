#!/bin/sh
# Installs the Debian packages Weft's tests and benchmarks need, when they are missing.
#
#   nginx       a reverse proxy to compare against in benchmarks
#   wrk         an HTTP load generator for benchmarks
#   prometheus  ships `promtool`, which checks every /metrics exposition in the tests
#   curl        for scripts and docs examples that talk to the mesh by hand
#   chromium    the headless browser the dashboard's tests drive (through playwright-core,
#               never a browser download of its own)
#   python3-jwt PyJWT: an issuer Weft did not write, for the end-user authentication tests
#   tcpdump     captures loopback traffic to show sidecars' mutual TLS is not readable
#   openssl     s_client, x509 and verify check the mesh's certificates from outside; makes the
#               end-user issuer's keys
#   libjemalloc2 the allocator the sidecar runs with, as in its image (sidecar/node-flags.ts);
#               optional (no command: on a machine without dpkg it counts as present, and
#               the sidecar falls back to glibc's malloc)
#
# Idempotent and quick when everything is present (one dpkg look-up, no apt-get). When
# something is missing it runs apt-get as root, quietly and without prompts; not as root, it
# names what is missing and how to install it, and exits non-zero. `npm test` and `.ci/run`
# call it first, so `npm install && npm test` works on a fresh Debian machine.
set -eu

# Debian package, then the command it provides (a package counts as present on a machine
# without dpkg, e.g. macOS, when its command is on PATH).
PACKAGES="nginx:nginx wrk:wrk prometheus:promtool curl:curl chromium:chromium python3-jwt:python3 tcpdump:tcpdump openssl:openssl libjemalloc2:true"

installed() {
  # dpkg answers "install ok installed" only for a fully installed package.
  if command -v dpkg-query >/dev/null 2>&1; then
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
  else
    command -v "$2" >/dev/null 2>&1 || [ -x "/usr/sbin/$2" ] || [ -x "/usr/local/sbin/$2" ]
  fi
}

missing=""
for entry in $PACKAGES; do
  package=${entry%%:*}
  cmd=${entry#*:}
  installed "$package" "$cmd" || missing="$missing $package"
done
missing=${missing# }
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "weft: the tests need these system packages, which are missing: $missing" >&2
  echo "weft: install them as root, e.g. 'sudo sh scripts/system-deps.sh' or 'sudo apt-get install $missing'" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "weft: the tests need these packages, which are missing: $missing; this machine has no apt-get, so install them with its own package manager" >&2
  exit 1
fi

echo "weft: installing system packages: $missing" >&2
export DEBIAN_FRONTEND=noninteractive
# -qq keeps apt quiet except for errors; the package lists may be absent on a fresh image.
apt-get update -qq >&2
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
for entry in $PACKAGES; do
  package=${entry%%:*}
  cmd=${entry#*:}
  if ! installed "$package" "$cmd"; then
    echo "weft: apt-get finished but $package is still not installed" >&2
    exit 1
  fi
done
