#!/bin/bash
# Usage: install_package.sh BUILD_DIR VERSION
#
# Installs the real Debian package on this machine the way an operator
# would, then removes it:
#  1. packages BUILD_DIR (configured and built) with cpack, without
#     building, into a scratch directory;
#  2. apt-get install -y ./migwatch_VERSION-REVISION_ARCH.deb, as the README
#     says: apt resolves the dependencies from the machine's own apt sources
#     (on a machine set up by deploy/install-build-deps.sh every one of them
#     is installed already; those it would add are listed first);
#  3. /usr/sbin/migwatch --version prints "migwatch VERSION";
#  4. postinst enabled the unit, and systemd-analyze verify accepts the
#     installed unit with the installed binary at its ExecStart path;
#  5. dpkg --purge removes every file it installed and every trace of the
#     unit's enablement.
# Needs root; exits 77 (skipped) when not root and MIGWATCH_ALLOW_SKIP=1.
# Refuses to run if a migwatch package is installed already: it would be
# replaced and removed.
set -euo pipefail

build=${1:?usage: install_package.sh BUILD_DIR VERSION}
version=${2:?usage: install_package.sh BUILD_DIR VERSION}
# Where postinst's deb-systemd-helper enable puts the link (WantedBy=).
wants_link=/etc/systemd/system/multi-user.target.wants/migwatch.service

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

if [[ $(id -u) -ne 0 ]]; then
	if [[ ${MIGWATCH_ALLOW_SKIP:-} == 1 ]]; then
		echo "SKIP: not root (apt-get installs the package)"
		exit 77
	fi
	fail "must run as root: apt-get installs the package (set MIGWATCH_ALLOW_SKIP=1 to skip explicitly)"
fi
for tool in cpack apt-get dpkg dpkg-deb dpkg-query flock systemd-analyze man; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/install-build-deps.sh installs it)"
done
[[ -f $build/CPackConfig.cmake ]] || fail "$build has no CPackConfig.cmake: configure it with cmake first"

# Two test runs on one machine would install and purge under each other.
exec {lock}>>/run/lock/migwatch-install-package-test.lock
flock "$lock"

# dpkg's state of the migwatch package: installed, config-files, ...;
# not-installed or nothing when it has none of its files on the system.
state() { dpkg-query -W -f '${db:Status-Status}' migwatch 2>/dev/null || true; }
absent() {
	local s
	s=$(state)
	[[ -z $s || $s == not-installed ]]
}
absent || fail "a migwatch package is on this machine already (dpkg state: $(state)): this test would replace and purge it; remove it first with dpkg --purge migwatch"

work=$(mktemp -d)
cleanup() {
	absent || dpkg --purge migwatch >/dev/null || echo "FAIL: cannot purge the migwatch package" >&2
	rm -rf "$work"
}
trap cleanup EXIT

# With the Makefile generator the tree was built with, cpack first runs its
# preinstall target, a full build; Ninja's generator has no such target, so
# naming it packages the tree as built, without rebuilding the binaries that
# tests running in parallel use. (cmake_install.cmake does not depend on the
# generator.)
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work" -D CPACK_CMAKE_GENERATOR=Ninja >"$work/cpack.log" 2>&1 ||
	{ cat "$work/cpack.log"; fail "cpack could not build the package"; }
deb=$(echo "$work"/migwatch_"$version"-*_*.deb)
[[ -f $deb ]] || { cat "$work/cpack.log"; fail "cpack made no migwatch_${version}-REVISION_*.deb"; }
echo "built ${deb##*/}; Depends: $(dpkg-deb --field "$deb" Depends)"

# apt reads the file as its unprivileged user: the scratch directory must be
# open to it.
chmod 755 "$work"
others=$(apt-get install -s "$deb" | sed -n 's/^Inst \([^ ]*\) .*/\1/p' | grep -vx migwatch || true)
[[ -z $others ]] || echo "note: apt-get installs these dependencies too (they stay installed): $(echo $others)"
apt-get install -y -q --no-install-recommends "$deb" || fail "apt-get install ${deb##*/} failed"
[[ $(state) == installed ]] || fail "dpkg state of migwatch after apt-get install: $(state), expected installed"
files=$(dpkg-query -L migwatch)

output=$(/usr/sbin/migwatch --version) || fail "/usr/sbin/migwatch --version exited with status $?: $output"
[[ $output == "migwatch $version "* ]] || fail "/usr/sbin/migwatch --version printed '$output', expected 'migwatch $version ...'"
echo "OK: /usr/sbin/migwatch --version: $output"

[[ -L $wants_link ]] || fail "postinst did not enable migwatch.service ($wants_link is missing)"
# systemd-analyze verify checks Documentation=man:migwatch(8) with man.
man -w migwatch >/dev/null || fail "man does not find the installed manual page migwatch(8)"
status=0
verify=$(systemd-analyze verify /lib/systemd/system/migwatch.service 2>&1) || status=$?
[[ $status -eq 0 && -z $verify ]] ||
	fail "systemd-analyze verify of the installed unit (status $status): $verify"
echo "OK: installed and enabled, systemd-analyze verify accepts the installed unit"

dpkg --purge migwatch || fail "dpkg --purge migwatch failed"
absent || fail "dpkg state of migwatch after --purge: $(state)"
left=()
while IFS= read -r path; do
	# Directories such as /usr/sbin belong to other packages too.
	[[ -d $path || ! -e $path ]] || left+=("$path")
done <<<"$files"
# Enablement links, a mask, deb-systemd-helper's state.
mapfile -t -O ${#left[@]} left < <(find /etc/systemd/system /var/lib/systemd -name 'migwatch*' 2>/dev/null)
((${#left[@]} == 0)) || fail "dpkg --purge left: ${left[*]}"
echo "OK: dpkg --purge removed every file"
