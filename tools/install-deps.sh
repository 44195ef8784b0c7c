#!/usr/bin/env bash
# Installs the Debian 12 packages emr builds and tests with; does nothing when all are present.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev libcpp-httplib-dev libboost-json1.81-dev libboost-url1.81-dev libtoml11-dev libargon2-dev
  libsqlite3-dev libpq-dev postgresql-15 haproxy libgtest-dev libcli11-dev libspdlog-dev libssl-dev
  clang libclang-rt-14-dev clang-format
  curl jq sqlite3 python3 prometheus
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The Node SDK test needs node and npm; a machine may already have them from elsewhere.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
# The tests start PostgreSQL clusters of their own; the package must not create and start the
# system's "main" cluster as a service.
if printf '%s\n' "${missing[@]}" | grep -q '^postgresql'; then
  $SUDO mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
# Nor may HAProxy's start as a service: the tests start their own, on loopback ports.
no_services=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  no_services=1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ -n "$no_services" ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit 0
