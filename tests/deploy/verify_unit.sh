#!/bin/bash
# Usage: verify_unit.sh UNIT_FILE [BINARY]
#
# systemd-analyze verify of migwatch.service. verify fails when ExecStart's
# binary does not exist and loads every unit the service depends on
# (sysinit.target, ...), so the unit is checked inside a scratch root holding
# the host's units, the unit under test and BINARY at /usr/sbin/migwatch
# (a stand-in script if BINARY is empty or not given). Warnings count as
# failures: systemd-analyze reports unknown keys and bad values on stderr
# but still exits 0.
set -euo pipefail

unit=${1:?usage: verify_unit.sh UNIT_FILE [BINARY]}
binary=${2:-}

if ! command -v systemd-analyze >/dev/null; then
	echo "FAIL: systemd-analyze is not installed, cannot verify $unit" >&2
	exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/lib/systemd" "$root/usr/sbin"
cp -a /lib/systemd/system "$root/lib/systemd/"
cp "$unit" "$root/lib/systemd/system/migwatch.service"
if [[ -n $binary ]]; then
	if [[ ! -x $binary ]]; then
		echo "FAIL: $binary does not exist or is not executable (build it first)" >&2
		exit 1
	fi
	cp "$binary" "$root/usr/sbin/migwatch"
else
	echo "note: no binary given, /usr/sbin/migwatch is a stand-in script"
	printf '#!/bin/sh\nexit 0\n' >"$root/usr/sbin/migwatch"
	chmod 755 "$root/usr/sbin/migwatch"
fi

status=0
# --man=no: Documentation=man:migwatch(8) names the page the package
# installs; install_package.sh verifies the installed unit with it.
output=$(systemd-analyze verify --man=no --root="$root" migwatch.service 2>&1) || status=$?
if [[ $status -ne 0 || -n $output ]]; then
	printf '%s\n' "$output"
	echo "FAIL: systemd-analyze verify of $unit (exit status $status)" >&2
	exit 1
fi
echo "OK: systemd-analyze verify of $unit"
