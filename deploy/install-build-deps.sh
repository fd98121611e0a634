#!/usr/bin/env bash
# Installs everything migwatch needs to build, run and test, from Debian 12's
# own archive. Run as root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-build-deps.sh: run as root (apt-get installs packages)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

packages=(
  # build
  cmake make g++ pkg-config clang llvm bpftool
  libbpf-dev libelf-dev zlib1g-dev
  prometheus-cpp-dev libcivetweb-dev libcli11-dev libspdlog-dev libyaml-cpp-dev
  libsystemd-dev libcrypt-dev libssl-dev libncurses-dev libcap-ng-dev
  help2man  # the manual page migwatch.8
  # tests
  libgtest-dev libgmock-dev libclang-rt-14-dev
  prometheus curl python3 systemd tmux procps util-linux
  apache2-utils  # htpasswd: bcrypt hashes for the basic auth test
  dpkg-dev file lintian
  man-db  # systemd-analyze verify looks up the unit's Documentation= page
  # benchmarks (tests/bench): the tools migwatch is compared with
  bpftrace linux-perf
  # kernel matrix: Debian kernels booted under QEMU
  qemu-system-x86 busybox-static cpio gzip
  # a systemd host under QEMU (tests/vm/systemd_host.py): its root file system
  mmdebstrap debian-archive-keyring
)
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
