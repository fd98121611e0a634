#!/bin/bash
# Usage: check_package.sh SOURCE_DIR
#
# Builds the Debian package from deploy/install.cmake around a stand-in
# migwatch executable (a small C program, so that dpkg-shlibdeps has an ELF
# file to compute dependencies from) and checks its files, control fields,
# conffiles and maintainer scripts. The maintainer scripts run against
# stand-ins for deb-systemd-helper, deb-systemd-invoke and systemctl; the
# last two fail on purpose: a failing or absent systemd must not fail the
# installation.
set -euo pipefail

src=$(cd "${1:?usage: check_package.sh SOURCE_DIR}" && pwd)

for tool in cmake cpack cc dpkg-deb dpkg-shlibdeps; do
	if ! command -v "$tool" >/dev/null; then
		echo "FAIL: $tool is not installed, cannot build the package" >&2
		exit 1
	fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

mkdir "$work/project"
cat >"$work/project/stand_in.c" <<'C'
int main(void) { return 0; }
C
cat >"$work/project/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(migwatch VERSION 0.1.0 DESCRIPTION "package layout check" LANGUAGES C)
include(GNUInstallDirs)
add_executable(migwatch stand_in.c)
install(TARGETS migwatch RUNTIME DESTINATION \${CMAKE_INSTALL_SBINDIR})
include("$src/deploy/install.cmake")
CMAKE
cmake -S "$work/project" -B "$work/build" >"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/build" >>"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
(cd "$work/build" && cpack -G DEB) >>"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
deb=$(echo "$work"/build/migwatch_0.1.0_*.deb)
[[ -f $deb ]] || { cat "$work/cmake.log"; echo "FAIL: no migwatch_0.1.0_*.deb" >&2; exit 1; }

files=$(dpkg-deb --fsys-tarfile "$deb" | tar -t)
for path in \
	./usr/sbin/migwatch \
	./lib/systemd/system/migwatch.service \
	./etc/default/migwatch \
	./usr/share/migwatch/prometheus/migwatch.rules.yml \
	./usr/share/migwatch/prometheus/thresholds.json \
	./usr/share/migwatch/prometheus/generate.py \
	./usr/share/migwatch/prometheus/README.md \
	./usr/share/migwatch/dashboards/migwatch-host.json \
	./usr/share/migwatch/dashboards/migwatch-vms.json \
	./usr/share/migwatch/dashboards/migwatch-health.json \
	./usr/share/migwatch/dashboards/README.md; do
	grep -qxF "$path" <<<"$files" || fail "package lacks $path"
done
for path in lib/systemd/system/migwatch.service etc/default/migwatch usr/share/migwatch/prometheus/migwatch.rules.yml; do
	case $path in
	lib/*) original=$src/deploy/systemd/migwatch.service ;;
	etc/*) original=$src/deploy/default/migwatch ;;
	*) original=$src/monitoring/migwatch.rules.yml ;;
	esac
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./$path" | cmp -s - "$original" || fail "$path differs from $original"
done

field() { dpkg-deb --field "$deb" "$1"; }
[[ $(field Package) == migwatch ]] || fail "Package: $(field Package)"
[[ $(field Section) == admin ]] || fail "Section: $(field Section)"
[[ -n $(field Maintainer) ]] || fail "no Maintainer"
[[ -n $(field Description) ]] || fail "no Description"
depends=$(field Depends)
[[ $depends == *libc6* ]] || fail "Depends lacks the shared library dependencies (dpkg-shlibdeps): $depends"
[[ $depends == *init-system-helpers* ]] || fail "Depends lacks init-system-helpers: $depends"

dpkg-deb --control "$deb" "$work/control"
[[ $(cat "$work/control/conffiles") == /etc/default/migwatch ]] || fail "conffiles: $(cat "$work/control/conffiles")"
for script in postinst prerm postrm; do
	[[ -x $work/control/$script ]] || fail "$script missing or not executable"
done

# Maintainer scripts, run with stand-ins that log their arguments.
mkdir "$work/bin"
for cmd in deb-systemd-helper deb-systemd-invoke systemctl; do
	status=0
	[[ $cmd == deb-systemd-helper ]] || status=1
	printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit %s\n' "$cmd" "$work/calls" "$status" >"$work/bin/$cmd"
	chmod 755 "$work/bin/$cmd"
done
run() {
	: >"$work/calls"
	PATH="$work/bin:$PATH" sh "$work/control/$1" "${@:2}" || fail "$* exited with status $?"
}
expect_call() { grep -qxF "$1" "$work/calls" || fail "$2 did not run '$1'; it ran: $(tr '\n' ';' <"$work/calls")"; }
systemd_running=false
[[ -d /run/systemd/system ]] && systemd_running=true

run postinst configure ""
expect_call "deb-systemd-helper enable migwatch.service" "postinst configure"
if $systemd_running; then
	expect_call "systemctl --system daemon-reload" "postinst configure"
	expect_call "deb-systemd-invoke start migwatch.service" "postinst configure"
elif grep -q -e '^systemctl' -e '^deb-systemd-invoke' "$work/calls"; then
	fail "postinst configure called systemd without systemd running: $(tr '\n' ';' <"$work/calls")"
fi
run postinst configure 0.0.9
$systemd_running && expect_call "deb-systemd-invoke restart migwatch.service" "postinst upgrade"
run prerm remove
$systemd_running && expect_call "deb-systemd-invoke stop migwatch.service" "prerm remove"
run postrm remove
expect_call "deb-systemd-helper mask migwatch.service" "postrm remove"
run postrm purge
expect_call "deb-systemd-helper purge migwatch.service" "postrm purge"

if ((failures)); then
	exit 1
fi
echo "OK: $(basename "$deb")"
