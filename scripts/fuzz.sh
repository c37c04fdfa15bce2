#!/usr/bin/env bash
# Runs every fuzz target of the repository (every Go module), one after
# the other, each for a bounded time (default 20 s):
#
#   scripts/fuzz.sh            # 20 s per target (CI)
#   scripts/fuzz.sh 600        # 10 min per target (maintainers, before a release)
#   FUZZ_MINIMIZE=60s scripts/fuzz.sh 3600
#
# Each target first replays its checked-in seeds (testdata/fuzz/<Target>/)
# and then mutates them. A failure stops nothing: every target runs, and the
# script exits non-zero if any failed. Go writes the failing input to
# <package>/testdata/fuzz/<Target>/<hash>; reproduce it with
#   go test ./<package> -run '<Target>/<hash>'
# and, once fixed, keep the file: it becomes a regression seed.
#
# FUZZ_MINIMIZE bounds the minimization of each new input (default 100
# runs): the Go default (60 s) would spend a short run minimizing instead of
# fuzzing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

secs="${1:-20}"
case "$secs" in
'' | *[!0-9]*) echo "usage: $0 [seconds per target]" >&2; exit 2 ;;
esac
minimize="${FUZZ_MINIMIZE:-100x}"

# Every `func FuzzXxx(f *testing.F)` in the module's test files, so a new
# target is fuzzed without editing this script. Today: FuzzAuthorize,
# FuzzExtractToken (authz), FuzzParseSet (authz/jwks), FuzzCaddyfile
# (caddymodule), and any other the packages define.
mapfile -t targets < <(
	grep -rH --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . |
		grep -v -e '/node_modules/' -e '/testdata/' |
		sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+).*#\1 \2#' | sort -u
)
if ((${#targets[@]} == 0)); then
	echo "no fuzz targets found" >&2
	exit 1
fi

failed=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== fuzz $name ($pkg, ${secs}s)"
	start=$(date +%s)
	# go test runs in the package's own module (the nearest go.mod):
	# the repository has several.
	mod="$pkg"
	while [ ! -f "$mod/go.mod" ]; do mod="$(dirname "$mod")"; done
	rel="$pkg"
	[ "$mod" = . ] || rel=".${pkg#"$mod"}"
	if ! (cd "$mod" && go test "$rel" -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" \
		-fuzzminimizetime "$minimize" -timeout "$((secs + 600))s"); then
		failed+=("$name")
	fi
	echo "== $name took $(($(date +%s) - start))s"
done

if ((${#failed[@]})); then
	echo "FAIL: fuzz targets with findings: ${failed[*]}" >&2
	exit 1
fi
echo "ok: all fuzz targets ran ${secs}s without a finding"
