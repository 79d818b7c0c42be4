#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages httpbench needs, only when some are missing, then checks
# that every tool is really there. Idempotent. Runs apt-get as root, or through sudo.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config g++ clang libclang-rt-14-dev
  libgtest-dev libbenchmark-dev libboost-context-dev libst-dev libpth-dev liburing-dev
  libev-dev libuv1-dev
  # clients and comparison servers
  apache2-utils wrk httperf curl nginx-light lighttpd h2o apache2 nodejs
  # harness, plots, report
  python3 python3-matplotlib python3-numpy python3-pytest python3-pytest-xdist python3-tqdm poppler-utils
  # pinning and process tools used by tests and the harness; system-call counts and profiles
  util-linux procps strace linux-perf
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then
    sudo=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run 'make deps' as root (or with passwordless sudo), or install them with apt-get" >&2
    exit 1
  fi
  # Installing nginx, lighttpd, h2o or apache2 must not start them as system services (they
  # would take port 80 and stay running): a policy-rc.d that says "no" for the install.
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    added_policy=1
  fi
  trap '[[ $added_policy == 1 ]] && "${sudo[@]}" rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Check the tools themselves, not only the package database.
status=0
for tool in meson ninja pkg-config g++ clang++ ab wrk curl node taskset /usr/bin/python3 pdftoppm; do
  if ! command -v "$tool" >/dev/null; then
    echo "deps: '$tool' is still missing after installing" >&2
    status=1
  fi
done
for lib in boost gtest benchmark st liburing libuv; do
  case $lib in
    boost) pkg-config --exists boost 2>/dev/null || [[ -e /usr/include/boost/context/fiber.hpp ]] || { echo "deps: Boost.Context headers missing" >&2; status=1; } ;;
    *) pkg-config --exists "$lib" 2>/dev/null || [[ $lib == benchmark || $lib == gtest ]] || { echo "deps: pkg-config cannot find $lib" >&2; status=1; } ;;
  esac
done
[[ -e /usr/include/pth.h ]] || { echo "deps: GNU Pth (pth.h) missing" >&2; status=1; }
[[ -e /usr/include/ev.h ]] || { echo "deps: libev (ev.h) missing" >&2; status=1; }
/usr/bin/python3 -c 'import matplotlib, numpy, pytest, xdist' 2>/dev/null ||
  { echo "deps: /usr/bin/python3 cannot import matplotlib, numpy, pytest and xdist (pytest-xdist)" >&2; status=1; }
exit $status
