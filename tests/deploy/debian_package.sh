# Checks of a built migwatch package and its -dbgsym package, sourced by
# check_package.sh (around a stand-in binary) and lint_package.sh (the real
# one). The caller defines fail MESSAGE.

# lintian_clean PACKAGE...: prints lintian's tags, informational and
# overridden ones included, and fails on any error or warning that the
# package does not override (deploy/debian/lintian-overrides, each with its
# reason).
lintian_clean() {
	local package status output
	for package; do
		echo "lintian ${package##*/}:"
		# Two runs: with --show-overrides, lintian fails on overridden tags too.
		output=$(lintian --display-info --show-overrides "$package" 2>&1) || true
		grep -v -e '^N:' -e '^running with root privileges' <<<"$output" || true
		status=0
		lintian --fail-on error,warning "$package" >/dev/null 2>&1 || status=$?
		((status == 0)) || fail "lintian found errors or warnings in ${package##*/} (exit status $status)"
	done
}

# check_debug_split ROOT DBGSYM_ROOT [debug-info]: ROOT/usr/sbin/migwatch
# is stripped as dh_strip would, and links (.gnu_debuglink) to its debug file
# in DBGSYM_ROOT under its build ID, which holds DWARF when debug-info is
# given (a Release build has the symbol table only). Sets debug_file.
check_debug_split() {
	local binary=$1/usr/sbin/migwatch sections build_id
	debug_file=
	sections=$(readelf -SW "$binary")
	if grep -q -e ' \.symtab ' -e ' \.debug_' -e ' \.comment ' <<<"$sections"; then
		fail "usr/sbin/migwatch is not stripped"
	fi
	build_id=$(readelf -n "$binary" | sed -n 's/.*Build ID: \([0-9a-f]*\)/\1/p')
	[[ -n $build_id ]] || { fail "usr/sbin/migwatch has no build ID"; return 0; }
	debug_file=usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug
	[[ -f $2/$debug_file ]] || { fail "the -dbgsym package lacks $debug_file"; return 0; }
	if [[ ${3:-} == debug-info ]]; then
		sections=$(readelf -SW "$2/$debug_file")
		grep -q ' \.debug_info ' <<<"$sections" || fail "$debug_file holds no debug information"
	fi
	[[ $(readelf -p .gnu_debuglink "$binary" 2>/dev/null) == *"${build_id:2}.debug"* ]] ||
		fail "usr/sbin/migwatch has no .gnu_debuglink to its debug file"
}
