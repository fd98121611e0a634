#!/bin/sh
# Usage: MIGWATCH_BINARY=PATH man-help.sh --help|--version
#
# What help2man reads to write migwatch.8: the binary's own --help followed by
# the options of each of its commands, one "Command NAME:" section each, and
# "migwatch VERSION" (without the revision) for --version.
set -eu
binary=${MIGWATCH_BINARY:?MIGWATCH_BINARY is the migwatch executable}

case ${1:-} in
--version)
	"$binary" --version | cut -d' ' -f1-2
	;;
--help)
	"$binary" --help
	# The commands: the first word of each line of the Subcommands: section.
	for command in $("$binary" --help | sed -n '/^Subcommands:$/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'); do
		printf '\nCommand %s:\n' "$command"
		"$binary" "$command" --help | sed '1,/^Options:$/d;/^$/d'
	done
	;;
*)
	echo "usage: MIGWATCH_BINARY=PATH $0 --help|--version" >&2
	exit 2
	;;
esac
