#!/bin/bash
# Usage: check_package.sh SOURCE_DIR
#
# Builds the Debian package from deploy/install.cmake around a stand-in
# migwatch executable (a small C program with debug information, so that
# dpkg-shlibdeps has an ELF file to compute dependencies from, help2man a
# --help to read and the -dbgsym package debug information to hold) and checks
# its files, control fields, conffiles and maintainer scripts, the
# documentation Debian requires (copyright, changelog.Debian.gz, manual
# page), the stripped binary and its -dbgsym package, and that lintian finds
# no error in either package (its warnings are printed). The maintainer scripts run against
# stand-ins for deb-systemd-helper, deb-systemd-invoke and systemctl; the
# last two fail on purpose: a failing or absent systemd must not fail the
# installation.
set -euo pipefail

src=$(cd "${1:?usage: check_package.sh SOURCE_DIR}" && pwd)

for tool in cmake cpack cc dpkg-deb dpkg-shlibdeps help2man gzip file objcopy readelf lintian; do
	if ! command -v "$tool" >/dev/null; then
		echo "FAIL: $tool is not installed, cannot build the package" >&2
		exit 1
	fi
done

source "$(dirname "${BASH_SOURCE[0]}")/debian_package.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

mkdir "$work/project"
cat >"$work/project/stand_in.c" <<'C'
#include <stdio.h>
#include <string.h>
int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    puts("migwatch 0.1.0 (revision stand-in)");
  } else if (argc == 2 && strcmp(argv[1], "--help") == 0) {
    puts("migwatch: stand-in.\nUsage: migwatch [OPTIONS] [SUBCOMMAND]\n\nOptions:\n"
         "  -h,--help                   Print this help message and exit\n"
         "  --stand-in-flag             A flag of the stand-in\n\nSubcommands:\n"
         "  probe                       A command of the stand-in\n");
  } else if (argc == 3 && strcmp(argv[1], "probe") == 0 && strcmp(argv[2], "--help") == 0) {
    puts("A command of the stand-in\nUsage: migwatch probe [OPTIONS]\n\nOptions:\n"
         "  --stand-in-probe-option     An option of the probe command\n");
  }
  return 0;
}
C
cat >"$work/project/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(migwatch VERSION 0.1.0 DESCRIPTION "package layout check" LANGUAGES C)
include(GNUInstallDirs)
add_executable(migwatch stand_in.c)
install(TARGETS migwatch RUNTIME DESTINATION \${CMAKE_INSTALL_SBINDIR})
include("$src/deploy/install.cmake")
CMAKE
cmake -S "$work/project" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/build" >>"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
(cd "$work/build" && cpack -G DEB) >>"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
# The revision comes from deploy/debian/changelog.
revision=$(sed -n '1s/^migwatch (0\.1\.0-\([^)]*\)).*/\1/p' "$src/deploy/debian/changelog")
[[ -n $revision ]] || { echo "FAIL: deploy/debian/changelog does not start with an entry for 0.1.0-REVISION" >&2; exit 1; }
version=0.1.0-$revision
deb=$(echo "$work"/build/migwatch_"$version"_*.deb)
[[ -f $deb ]] || { cat "$work/cmake.log"; echo "FAIL: no migwatch_${version}_*.deb" >&2; exit 1; }
dbgsym=$(echo "$work"/build/migwatch-dbgsym_"$version"_*.ddeb)
[[ -f $dbgsym ]] || { cat "$work/cmake.log"; echo "FAIL: no migwatch-dbgsym_${version}_*.ddeb" >&2; exit 1; }

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
	./usr/share/migwatch/dashboards/README.md \
	./usr/share/doc/migwatch/copyright \
	./usr/share/doc/migwatch/changelog.Debian.gz \
	./usr/share/man/man8/migwatch.8.gz; do
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

mkdir "$work/root"
dpkg-deb --extract "$deb" "$work/root"
cmp -s "$work/root/usr/share/doc/migwatch/copyright" "$src/deploy/debian/copyright" ||
	fail "usr/share/doc/migwatch/copyright differs from deploy/debian/copyright"
head -1 "$src/deploy/debian/copyright" | grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/$' ||
	fail "deploy/debian/copyright is not in the machine-readable format (DEP-5)"
# gzip -9n: no file name, no time stamp (byte 3 holds the flags, 4-7 the time).
for gz in usr/share/doc/migwatch/changelog.Debian.gz usr/share/man/man8/migwatch.8.gz; do
	[[ $(od -An -tx1 -j3 -N5 "$work/root/$gz" | tr -d ' ') == 0000000000 ]] ||
		fail "$gz holds a file name or time stamp (compress with gzip -9n)"
done
gzip -dc "$work/root/usr/share/doc/migwatch/changelog.Debian.gz" | cmp -s - "$src/deploy/debian/changelog" ||
	fail "changelog.Debian.gz is not deploy/debian/changelog"
# The manual page is the stand-in's help, its command's options included.
man=$(gzip -dc "$work/root/usr/share/man/man8/migwatch.8.gz")
for text in '^\.TH MIGWATCH "8"' 'stand\\-in\\-flag' 'Command probe' 'stand\\-in\\-probe\\-option'; do
	grep -q "$text" <<<"$man" || fail "migwatch.8 lacks $text"
done

# The binary is stripped; its debug information is in the -dbgsym package,
# under its build ID, and the binary links to it.
mkdir "$work/dbgsym"
dpkg-deb --extract "$dbgsym" "$work/dbgsym"
check_debug_split "$work/root" "$work/dbgsym" debug-info
[[ $(dpkg-deb --field "$dbgsym" Package) == migwatch-dbgsym ]] || fail "dbgsym Package: $(dpkg-deb --field "$dbgsym" Package)"
[[ $(dpkg-deb --field "$dbgsym" Depends) == "migwatch (= $version)" ]] ||
	fail "dbgsym Depends: $(dpkg-deb --field "$dbgsym" Depends), expected migwatch (= $version)"
[[ $(dpkg-deb --info "$dbgsym" md5sums) == *"  $debug_file" ]] ||
	fail "dbgsym md5sums: $(dpkg-deb --info "$dbgsym" md5sums)"

field() { dpkg-deb --field "$deb" "$1"; }
[[ $(field Package) == migwatch ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version), expected $version"
[[ $(field Section) == admin ]] || fail "Section: $(field Section)"
[[ $(field Maintainer) =~ ^[^\<]+\ \<[^@\>]+@[^\>]+\>$ ]] || fail "Maintainer is not 'Name <address>': $(field Maintainer)"
[[ $(field Maintainer) != *@localhost* ]] || fail "Maintainer is on localhost: $(field Maintainer)"
[[ -n $(field Description) ]] || fail "no Description"
depends=$(field Depends)
[[ $depends == *libc6* ]] || fail "Depends lacks the shared library dependencies (dpkg-shlibdeps): $depends"
[[ $depends == *init-system-helpers* ]] || fail "Depends lacks init-system-helpers: $depends"
[[ $depends == *python3* ]] || fail "Depends lacks python3 (prometheus/generate.py): $depends"

# lintian: no error in either package (the stand-in's binary is the real
# one's only in kind; lint_package.sh checks the real package).
lintian_clean "$deb" "$dbgsym"

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
echo "OK: $(basename "$deb") $(basename "$dbgsym")"
