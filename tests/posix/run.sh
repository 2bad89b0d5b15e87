#!/usr/bin/env bash
# Runs the POSIX conformance suite against a directory on any filesystem (tmpfs, XFS, a daxfs
# mount). Each test works in a fresh subdirectory of DIR and removes it.
#
#   tests/posix/run.sh [--known-gaps FILE] DIR [OTHER_DIR] [-- GTEST_OPTIONS...]
#
#   DIR        a directory on the filesystem under test (as root, make it searchable by others,
#              e.g. mode 0755 up to /, or the checks as uid 65534 are skipped with the reason)
#   OTHER_DIR  optional: a directory on another filesystem, for the EXDEV checks
#   --known-gaps FILE  tests expected to fail for now, one per line with the gap they wait for
#              (tests/posix/daxfs-known-gaps.txt): every other test must pass, and every listed
#              one must still fail (one that passes fails the run: remove its line)
#   GTEST_OPTIONS, e.g. --gtest_filter='Rename.*' (not with --known-gaps)
# The binary is $POSIX_TEST, else build/release/tests/posix/posix_test. Exit status: 0 when every
# test passed or was skipped (each skip prints its reason; skips are listed at the end, never
# counted as passes) and, with --known-gaps, every listed test failed; 1 otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '2,18p' "$0" >&2; exit 2; }
gaps=""
if [ "${1:-}" = "--known-gaps" ]; then
  [ $# -ge 2 ] || usage
  gaps=$2
  shift 2
fi
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then usage; fi
dir=$1
shift
other=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then other=$1; shift; fi
[ "${1:-}" = "--" ] && shift
bin=${POSIX_TEST:-$here/../../build/release/tests/posix/posix_test}
if [ ! -x "$bin" ]; then
  echo "run.sh: $bin not found: build it (cmake --build --preset release --target posix_test) or set POSIX_TEST" >&2
  exit 2
fi
[ -d "$dir" ] || { echo "run.sh: $dir is not a directory" >&2; exit 2; }
export DAXFS_POSIX_DIR=$dir
if [ -n "$other" ]; then export DAXFS_POSIX_OTHER_DIR=$other; else unset DAXFS_POSIX_OTHER_DIR; fi
[ -n "$gaps" ] || exec "$bin" --gtest_color=no "$@"

# ---- with known gaps -----------------------------------------------------------------------
[ -r "$gaps" ] || { echo "run.sh: cannot read $gaps" >&2; exit 2; }
for a in "$@"; do
  case "$a" in --gtest_filter*) echo "run.sh: --gtest_filter cannot be combined with --known-gaps" >&2; exit 2 ;; esac
done
# Lines "Suite.Test  REASON" (# comments and blank lines aside); every test needs its reason.
bad=$(awk '!/^[[:space:]]*(#|$)/ && NF < 2 { print FILENAME ":" FNR ": " $1 }' "$gaps")
[ -z "$bad" ] || { echo "run.sh: a known gap without its reason: $bad" >&2; exit 2; }
mapfile -t listed < <(awk '!/^[[:space:]]*(#|$)/ { print $1 }' "$gaps")
if [ ${#listed[@]} -eq 0 ]; then  # no gap left: every test must pass
  echo "== posix_test: $gaps lists no known gap: every test must pass"
  exec "$bin" --gtest_color=no "$@"
fi
mapfile -t all < <("$bin" --gtest_list_tests | awk '/^[^ ]/ { suite = $1 } /^  / { print suite $1 }')
declare -A known=()
for t in "${all[@]}"; do known[$t]=1; done
status=0
for t in "${listed[@]}"; do
  # (not `printf | grep -q`: with pipefail, grep's early exit makes printf's SIGPIPE a failure)
  [ -n "${known[$t]:-}" ] || { echo "run.sh: $gaps: no test $t (renamed? remove or fix the line)" >&2; status=1; }
done
filter=$(IFS=:; echo "${listed[*]}")
log=$(mktemp /tmp/posix-known-gaps.XXXXXX)
trap 'rm -f "$log"' EXIT

echo "== posix_test without the ${#listed[@]} known gaps of $gaps: every test must pass"
"$bin" --gtest_color=no --gtest_filter="-$filter" "$@" || status=1

echo "== the ${#listed[@]} known gaps of $gaps: each must still fail"
"$bin" --gtest_color=no --gtest_filter="$filter" "$@" > "$log" 2>&1 || true
cat "$log"
closed=() expected=0
for t in "${listed[@]}"; do
  if grep -qE "^\[  FAILED  \] ${t//./\\.} \(" "$log"; then
    expected=$((expected + 1))
  elif grep -qE "^\[ +(OK|SKIPPED) +\] ${t//./\\.} \(" "$log"; then
    closed+=("$t")
  fi
done
echo "== known gaps: $expected of ${#listed[@]} failed as expected (reasons in $gaps)"
awk '!/^[[:space:]]*(#|$)/ { t = $1; $1 = ""; printf "   expected failure %s:%s\n", t, $0 }' "$gaps"
if [ ${#closed[@]} -gt 0 ]; then
  for t in "${closed[@]}"; do
    echo "run.sh: $t is listed in $gaps but did not fail: its gap closed? remove its line" >&2
  done
  status=1
fi
[ $((expected + ${#closed[@]})) -eq ${#listed[@]} ] || { echo "run.sh: not every known-gap test ran" >&2; status=1; }
exit $status
