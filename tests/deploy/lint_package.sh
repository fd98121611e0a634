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

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# CPACK_CMAKE_GENERATOR=Ninja: no preinstall target, no rebuild (see
# install_package.sh).
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work" -D CPACK_CMAKE_GENERATOR=Ninja >"$work/cpack.log" 2>&1 ||
	{ cat "$work/cpack.log"; fail "cpack could not build the package"; }
deb=$(echo "$work"/migwatch_"$version"-*_*.deb)
dbgsym=$(echo "$work"/migwatch-dbgsym_"$version"-*_*.ddeb)
[[ -f $deb && -f $dbgsym ]] || { cat "$work/cpack.log"; fail "cpack made no migwatch_${version}-REVISION_ARCH.deb and migwatch-dbgsym_....ddeb"; }

failures=0
for package in "$deb" "$dbgsym"; do
	echo "lintian ${package##*/}:"
	status=0
	lintian --display-info --fail-on error "$package" >"$work/lintian.log" 2>&1 || status=$?
	grep -v -e '^N:' -e '^running with root privileges' "$work/lintian.log" || true
	if ((status != 0)); then
		echo "FAIL: lintian found errors in ${package##*/} (exit status $status)" >&2
		failures=$((failures + 1))
	fi
done
((failures == 0)) || exit 1

mkdir "$work/root" "$work/dbgsym"
dpkg-deb --extract "$deb" "$work/root"
dpkg-deb --extract "$dbgsym" "$work/dbgsym"
binary=$work/root/usr/sbin/migwatch
sections=$(readelf -SW "$binary")
grep -q -e ' \.symtab ' -e ' \.debug_' -e ' \.comment ' <<<"$sections" && fail "usr/sbin/migwatch is not stripped"
build_id=$(readelf -n "$binary" | sed -n 's/.*Build ID: \([0-9a-f]*\)/\1/p')
[[ -n $build_id ]] || fail "usr/sbin/migwatch has no build ID"
debug_file=usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug
[[ -f $work/dbgsym/$debug_file ]] || fail "the -dbgsym package lacks $debug_file"

man=$(gzip -dc "$work/root/usr/share/man/man8/migwatch.8.gz") || fail "no usr/share/man/man8/migwatch.8.gz"
commands=$("$binary" --help | sed -n '/^Subcommands:$/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
[[ -n $commands ]] || fail "migwatch --help lists no commands"
for command in $commands; do
	grep -q "^\\.SS \"Command $command:\"" <<<"$man" || fail "migwatch.8 lacks the options of migwatch $command"
done
echo "OK: ${deb##*/} and ${dbgsym##*/}: no lintian error, stripped binary, debug file $debug_file, manual page with the commands $(echo $commands)"
