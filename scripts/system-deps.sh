#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real (none are Python packages).
# Needs root (or passwordless sudo) the first time; a no-op once they are installed.
set -euo pipefail

packages=()
# Each entry: "<command that must exist>:<Debian package that provides it>".
for entry in ${QOPS_SYSTEM_DEPS:-}; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || packages+=("${entry##*:}")
done
[[ ${#packages[@]} -eq 0 ]] && exit 0

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo -n)
fi
if [[ " ${packages[*]} " == *" postgresql "* ]]; then
    # The tests start PostgreSQL themselves, in a temporary directory: no "main" cluster
    # (a system service owned by root's postgres user) is created on installation.
    "${sudo_cmd[@]}" mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" |
        "${sudo_cmd[@]}" tee /etc/postgresql-common/createcluster.d/qops-no-main-cluster.conf >/dev/null
fi
echo "installing Debian packages: ${packages[*]}" >&2
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
