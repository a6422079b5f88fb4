#!/usr/bin/env bash
# Writes seglossd(1) to stdout: the template (docs/seglossd.1.in) with @VERSION@ and the
# OPTIONS section filled from `seglossd --help`, whose option lines read
#   --flag   SEGLOSS_VAR   what it does (default ...)
# so the page cannot drift from the binary's own flag table.
#   scripts/gen_manpage.sh build/seglossd docs/seglossd.1.in > build/seglossd.1
set -euo pipefail
bin=$1 template=$2
version=$("$bin" --version | awk '{print $NF}')
options=$("$bin" --help | awk '
    /^  --[a-z]/ && $2 ~ /^SEGLOSS_/ {
        flag = $1; var = $2
        $1 = ""; $2 = ""; sub(/^ +/, "")
        gsub(/\\/, "\\\\"); gsub(/-/, "\\-")
        gsub(/-/, "\\-", flag)
        printf ".TP\n.BR \"%s \" \"(%s)\"\n%s\n", flag, var, $0
    }')
[ -n "$options" ] || { echo "gen_manpage.sh: no options in $bin --help" >&2; exit 1; }
while IFS= read -r line; do
    case $line in
        @OPTIONS@) printf '%s\n' "$options" ;;
        *) printf '%s\n' "${line//@VERSION@/$version}" ;;
    esac
done < "$template"
