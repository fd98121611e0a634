#!/bin/bash
# Usage: lint_package.sh BUILD_DIR VERSION
#
# Packages BUILD_DIR (configured and built) with cpack, without building,
# the way install_package.sh does, and checks the real package as Debian
# would: lintian reports no error in migwatch_VERSION-REVISION_ARCH.deb nor in
# its -dbgsym package (warnings are printed), the binary is stripped and its
# debug information is in the -dbgsym package under its build ID, and the
# manual page documents every command the binary has. check_package.sh checks
# the rest of the package's contents around a stand-in binary.
set -euo pipefail

build=${1:?usage: lint_package.sh BUILD_DIR VERSION}
version=${2:?usage: lint_package.sh BUILD_DIR VERSION}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
for tool in cpack dpkg-deb lintian readelf gzip; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/install-build-deps.sh installs it)"
done
[[ -f $build/CPackConfig.cmake ]] || fail "$build has no CPackConfig.cmake: configure it with cmake first"

source "$(dirname "${BASH_SOURCE[0]}")/debian_package.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# CPACK_CMAKE_GENERATOR=Ninja: no preinstall target, no rebuild (see
# install_package.sh).
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work" -D CPACK_CMAKE_GENERATOR=Ninja >"$work/cpack.log" 2>&1 ||
	{ cat "$work/cpack.log"; fail "cpack could not build the package"; }
deb=$(echo "$work"/migwatch_"$version"-*_*.deb)
dbgsym=$(echo "$work"/migwatch-dbgsym_"$version"-*_*.ddeb)
[[ -f $deb && -f $dbgsym ]] || { cat "$work/cpack.log"; fail "cpack made no migwatch_${version}-REVISION_ARCH.deb and migwatch-dbgsym_....ddeb"; }

lintian_clean "$deb" "$dbgsym"

mkdir "$work/root" "$work/dbgsym"
dpkg-deb --extract "$deb" "$work/root"
dpkg-deb --extract "$dbgsym" "$work/dbgsym"
# The debug file holds DWARF unless the build type has no -g (the default,
# an empty CMAKE_BUILD_TYPE in the cache, is RelWithDebInfo).
debug_info=debug-info
grep -qx -e 'CMAKE_BUILD_TYPE:STRING=Release' -e 'CMAKE_BUILD_TYPE:STRING=MinSizeRel' "$build/CMakeCache.txt" &&
	debug_info=
check_debug_split "$work/root" "$work/dbgsym" $debug_info
binary=$work/root/usr/sbin/migwatch

man=$(gzip -dc "$work/root/usr/share/man/man8/migwatch.8.gz") || fail "no usr/share/man/man8/migwatch.8.gz"
commands=$("$binary" --help | sed -n '/^Subcommands:$/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
[[ -n $commands ]] || fail "migwatch --help lists no commands"
for command in $commands; do
	grep -q "^\\.SS \"Command $command:\"" <<<"$man" || fail "migwatch.8 lacks the options of migwatch $command"
done
echo "OK: ${deb##*/} and ${dbgsym##*/}: no lintian error, stripped binary, debug file $debug_file, manual page with the commands $(echo $commands)"
