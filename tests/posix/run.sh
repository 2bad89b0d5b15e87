#!/usr/bin/env bash
# Runs the POSIX conformance suite against a directory on any filesystem (tmpfs, XFS, a daxfs
# mount). Each test works in a fresh subdirectory of DIR and removes it.
#
#   tests/posix/run.sh DIR [OTHER_DIR] [-- GTEST_OPTIONS...]
#
#   DIR        a directory on the filesystem under test (as root, make it searchable by others,
#              e.g. mode 0755 up to /, or the checks as uid 65534 are skipped with the reason)
#   OTHER_DIR  optional: a directory on another filesystem, for the EXDEV checks
#   GTEST_OPTIONS, e.g. --gtest_filter='Rename.*'
# The binary is $POSIX_TEST, else build/release/tests/posix/posix_test. Exit status: 0 when every
# test passed or was skipped (each skip prints its reason; skips are listed at the end, never
# counted as passes), 1 otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then sed -n '2,14p' "$0" >&2; exit 2; fi
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
exec "$bin" --gtest_color=no "$@"
