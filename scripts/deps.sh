#!/usr/bin/env bash
# Installs, on Debian, the packages Vigil needs to build (clang and libelf for the eBPF sensor)
# and, with --test, the real components the test suite runs against. Skips what is installed.
set -euo pipefail
build=(clang llvm libelf-dev zlib1g-dev pkg-config make)
test_pkgs=(docker.io postgresql prometheus prometheus-alertmanager poppler-utils busybox-static file iproute2 procps)
want=("${build[@]}")
if [ "${1:-}" = "--test" ]; then want+=("${test_pkgs[@]}"); fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
